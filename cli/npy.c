/* npy.c - reading and writing NumPy .npy files.
 *
 * The format: the magic "\x93NUMPY", a major and minor version byte, the
 * header length (2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0), then
 * the header: a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ending in '\n', then the raw data. The header is
 * parsed with a small tokenizer rather than by searching for substrings, so
 * keys in any order and odd spacing are fine and malformed headers are
 * reported instead of half-read.
 */
#include "cli/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t cli_npy_itemsize(DLDataType dt) { return (dt.bits + 7u) / 8u; }

const char *cli_npy_descr(DLDataType dt)
{
    if (dt.lanes != 1)
        return NULL;
    if (dt.code == kDLFloat && dt.bits == 32)
        return "<f4";
    if (dt.code == kDLFloat && dt.bits == 64)
        return "<f8";
    if (dt.code == kDLInt && dt.bits == 32)
        return "<i4";
    if (dt.code == kDLInt && dt.bits == 64)
        return "<i8";
    if (dt.code == kDLUInt && dt.bits == 8)
        return "|b1";
    return NULL;
}

/* ---- the header ------------------------------------------------------------------- */

typedef struct hdr {
    const char *p, *end;
    strbuf *err;
} hdr;

static void skip_ws(hdr *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static bool expect(hdr *h, char c)
{
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    sb_printf(h->err, "malformed header: expected '%c'", c);
    return false;
}

static bool accept(hdr *h, char c)
{
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

/* A quoted Python string (no escapes appear in npy headers). */
static bool parse_str(hdr *h, char *buf, size_t cap)
{
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) {
        sb_puts(h->err, "malformed header: expected a string");
        return false;
    }
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (n + 1 >= cap) {
            sb_puts(h->err, "malformed header: string too long");
            return false;
        }
        buf[n++] = *h->p++;
    }
    if (h->p >= h->end) {
        sb_puts(h->err, "malformed header: unterminated string");
        return false;
    }
    h->p++;
    buf[n] = '\0';
    return true;
}

static bool parse_bool(hdr *h, bool *v)
{
    skip_ws(h);
    if ((size_t)(h->end - h->p) >= 4 && memcmp(h->p, "True", 4) == 0) {
        h->p += 4, *v = true;
        return true;
    }
    if ((size_t)(h->end - h->p) >= 5 && memcmp(h->p, "False", 5) == 0) {
        h->p += 5, *v = false;
        return true;
    }
    sb_puts(h->err, "malformed header: fortran_order must be True or False");
    return false;
}

/* (), (3,), (3, 4) -- also accepts a trailing 'L' as old Python 2 files have */
static bool parse_shape(hdr *h, cli_npy *a)
{
    if (!expect(h, '('))
        return false;
    a->ndim = 0;
    while (!accept(h, ')')) {
        if (a->ndim == LOSSC_MAX_RANK) {
            sb_printf(h->err, "the array has more than %d dims", LOSSC_MAX_RANK);
            return false;
        }
        skip_ws(h);
        char *endp;
        errno = 0;
        long long v = h->p < h->end ? strtoll(h->p, &endp, 10) : 0;
        if (h->p >= h->end || endp == h->p || endp > h->end || errno || v < 0) {
            sb_puts(h->err, "malformed header: bad shape");
            return false;
        }
        h->p = endp;
        if (h->p < h->end && (*h->p == 'L' || *h->p == 'l'))
            h->p++;
        a->shape[a->ndim++] = v;
        if (!accept(h, ',')) {
            if (!expect(h, ')'))
                return false;
            break;
        }
    }
    return true;
}

static bool parse_descr(const char *d, cli_npy *a, strbuf *err)
{
    static const struct {
        const char *descr;
        DLDataType dt;
    } types[] = {
        {"f4", {kDLFloat, 32, 1}}, {"f8", {kDLFloat, 64, 1}}, {"i4", {kDLInt, 32, 1}},
        {"i8", {kDLInt, 64, 1}},   {"b1", {kDLUInt, 8, 1}},
    };
    char order = d[0];
    const char *t = d + 1;
    if (order == '>' && strcmp(t, "b1") != 0) {
        sb_printf(err, "dtype '%s' is big-endian: lossc reads little-endian files "
                       "(convert with arr.astype(arr.dtype.newbyteorder('<')))", d);
        return false;
    }
    if (order == '<' || order == '|' || order == '=' || order == '>')
        for (size_t i = 0; i < SUP_ARRAY_LEN(types); i++)
            if (strcmp(t, types[i].descr) == 0) {
                a->dtype = types[i].dt;
                return true;
            }
    sb_printf(err, "dtype '%s' is not supported: lossc reads float32, float64, int32, "
                   "int64 and bool (convert with arr.astype(np.float32) or similar)", d);
    return false;
}

static bool parse_header(const char *text, size_t len, cli_npy *a, strbuf *err)
{
    hdr h = {text, text + len, err};
    bool have_descr = false, have_order = false, have_shape = false, fortran = false;
    char key[64], descr[64];
    if (!expect(&h, '{'))
        return false;
    while (!accept(&h, '}')) {
        if (!parse_str(&h, key, sizeof key) || !expect(&h, ':'))
            return false;
        if (strcmp(key, "descr") == 0) {
            skip_ws(&h);
            if (h.p < h.end && *h.p == '[') {
                sb_puts(err, "structured dtypes (records) are not supported");
                return false;
            }
            if (!parse_str(&h, descr, sizeof descr) || !parse_descr(descr, a, err))
                return false;
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (!parse_bool(&h, &fortran))
                return false;
            have_order = true;
        } else if (strcmp(key, "shape") == 0) {
            if (!parse_shape(&h, a))
                return false;
            have_shape = true;
        } else {
            sb_printf(err, "malformed header: unknown key '%s'", key);
            return false;
        }
        if (!accept(&h, ',')) {
            if (!expect(&h, '}'))
                return false;
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape) {
        sb_printf(err, "malformed header: missing '%s'",
                  !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
        return false;
    }
    if (fortran && a->ndim > 1) {
        sb_puts(err, "the array is in Fortran order: lossc reads C order "
                     "(save np.ascontiguousarray(arr))");
        return false;
    }
    return true;
}

/* ---- reading ------------------------------------------------------------------------ */

static bool numel(int ndim, const int64_t *shape, int64_t *out)
{
    int64_t n = 1;
    for (int k = 0; k < ndim; k++)
        if (shape[k] < 0 || __builtin_mul_overflow(n, shape[k], &n))
            return false;
    *out = n;
    return true;
}

bool cli_npy_parse(const unsigned char *b, size_t len, cli_npy *a, strbuf *err)
{
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
        sb_puts(err, "not a .npy file (no \\x93NUMPY magic)");
        return false;
    }
    int major = b[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) {
            sb_puts(err, "truncated header");
            return false;
        }
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    } else {
        sb_printf(err, "unsupported .npy format version %d.%d", major, b[7]);
        return false;
    }
    if (hlen > len - off) {
        sb_puts(err, "truncated header");
        return false;
    }
    /* a NUL-terminated copy, so number parsing cannot run into the data */
    char *text = sup_malloc(hlen + 1);
    memcpy(text, b + off, hlen);
    text[hlen] = '\0';
    bool ok = parse_header(text, hlen, a, err);
    sup_free(text);
    if (!ok)
        return false;
    off += hlen;
    int64_t n;
    if (!numel(a->ndim, a->shape, &n)) {
        sb_puts(err, "the shape is too large");
        return false;
    }
    size_t isz = cli_npy_itemsize(a->dtype);
    if ((uint64_t)n > (SIZE_MAX - 1) / isz || (size_t)n * isz != len - off) {
        sb_printf(err, "the data is %zu bytes but shape and dtype need %llu", len - off,
                  (unsigned long long)n * isz);
        return false;
    }
    a->count = n;
    a->data = sup_malloc((size_t)n * isz + 1);
    memcpy(a->data, b + off, (size_t)n * isz);
    if (a->dtype.code == kDLUInt) /* numpy bools are 0/1 bytes; normalize anything else */
        for (int64_t i = 0; i < n; i++)
            ((uint8_t *)a->data)[i] = ((uint8_t *)a->data)[i] != 0;
    return true;
}

bool cli_npy_read(const char *path, cli_npy *a, strbuf *err)
{
    size_t len;
    char *bytes = sup_read_file(path, &len);
    if (!bytes) {
        sb_printf(err, "%s: cannot read: %s", path, strerror(errno));
        return false;
    }
    strbuf why;
    sb_init(&why);
    bool ok = cli_npy_parse((const unsigned char *)bytes, len, a, &why);
    if (!ok)
        sb_printf(err, "%s: %s", path, sb_str(&why));
    sb_free(&why);
    sup_free(bytes);
    return ok;
}

/* ---- writing ------------------------------------------------------------------------- */

void cli_npy_format(const cli_npy *a, strbuf *out)
{
    strbuf h;
    sb_init(&h);
    sb_printf(&h, "{'descr': '%s', 'fortran_order': False, 'shape': (", cli_npy_descr(a->dtype));
    for (int k = 0; k < a->ndim; k++)
        sb_printf(&h, "%s%lld", k ? ", " : "", (long long)a->shape[k]);
    sb_puts(&h, a->ndim == 1 ? ",), }" : "), }");
    /* numpy pads so that the data starts on a 64-byte boundary */
    while ((10 + h.len + 1) % 64 != 0)
        sb_putc(&h, ' ');
    sb_putc(&h, '\n');
    sb_putn(out, "\x93NUMPY\x01\x00", 8);
    sb_putc(out, (char)(h.len & 0xff));
    sb_putc(out, (char)(h.len >> 8));
    sb_putn(out, h.data, h.len);
    sb_putn(out, a->data, (size_t)a->count * cli_npy_itemsize(a->dtype));
    sb_free(&h);
}

bool cli_npy_write(const char *path, const cli_npy *a, strbuf *err)
{
    strbuf img;
    sb_init(&img);
    cli_npy_format(a, &img);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(img.data, 1, img.len, f) == img.len;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        sb_printf(err, "%s: cannot write: %s", path, strerror(errno));
    sb_free(&img);
    return ok;
}

void cli_npy_alloc(cli_npy *a, DLDataType dt, int ndim, const int64_t *shape)
{
    memset(a, 0, sizeof *a);
    a->dtype = dt;
    a->ndim = ndim;
    a->count = 1;
    for (int k = 0; k < ndim; k++) {
        a->shape[k] = shape[k];
        a->count *= shape[k];
    }
    a->data = sup_calloc((size_t)a->count + 1, cli_npy_itemsize(dt));
}

void cli_npy_free(cli_npy *a)
{
    sup_free(a->data);
    memset(a, 0, sizeof *a);
}

DLTensor cli_npy_tensor(cli_npy *a)
{
    return (DLTensor){.data = a->data, .device = {kDLCPU, 0}, .ndim = a->ndim,
                      .dtype = a->dtype, .shape = a->shape};
}
