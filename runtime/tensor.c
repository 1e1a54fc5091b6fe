/* tensor.c - what the runtime needs to know about a DLTensor: its element
 * type in lossc's terms, its size, whether it is dense, the bytes it spans
 * (for the aliasing check), and copies between strided and dense layouts. */
#include "runtime/rt.h"

#include <stdio.h>
#include <string.h>

enum { DL_BOOL_CODE = 6 }; /* kDLBool, added to DLPack after 0.6 */

DLDataType rt_dl_dtype(ir_dtype t)
{
    switch (t) {
    case DT_BOOL: return (DLDataType){kDLUInt, 8, 1};
    case DT_I32: return (DLDataType){kDLInt, 32, 1};
    case DT_I64: return (DLDataType){kDLInt, 64, 1};
    case DT_F32: return (DLDataType){kDLFloat, 32, 1};
    case DT_F64: return (DLDataType){kDLFloat, 64, 1};
    default: return (DLDataType){kDLOpaqueHandle, 0, 0};
    }
}

int rt_ir_dtype(DLDataType t)
{
    if (t.lanes != 1)
        return -1;
    if (t.code == kDLFloat && t.bits == 32)
        return DT_F32;
    if (t.code == kDLFloat && t.bits == 64)
        return DT_F64;
    if (t.code == kDLInt && t.bits == 32)
        return DT_I32;
    if (t.code == kDLInt && t.bits == 64)
        return DT_I64;
    if ((t.code == kDLUInt || t.code == DL_BOOL_CODE) && t.bits == 8)
        return DT_BOOL;
    return -1;
}

const char *rt_dl_dtype_name(DLDataType t, char *buf, size_t n)
{
    int d = rt_ir_dtype(t);
    if (d >= 0)
        snprintf(buf, n, "%s", ir_dtype_name((ir_dtype)d));
    else
        snprintf(buf, n, "an unsupported dtype (DLPack code %u, %u bits, %u lanes)",
                 t.code, t.bits, t.lanes);
    return buf;
}

bool rt_numel(int ndim, const int64_t *shape, int64_t *out)
{
    int64_t n = 1;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] < 0 || __builtin_mul_overflow(n, shape[k], &n))
            return false;
    }
    *out = n;
    return true;
}

static size_t elem_size(const DLTensor *t) { return (t->dtype.bits + 7u) / 8u; }

bool rt_is_contiguous(const DLTensor *t)
{
    if (!t->strides)
        return true;
    int64_t want = 1;
    for (int k = t->ndim - 1; k >= 0; k--) {
        if (t->shape[k] != 1 && t->strides[k] != want)
            return false;
        want *= t->shape[k];
    }
    return true;
}

static int64_t stride_of(const DLTensor *t, int k)
{
    if (t->strides)
        return t->strides[k];
    int64_t s = 1;
    for (int j = k + 1; j < t->ndim; j++)
        s *= t->shape[j];
    return s;
}

void rt_extent(const DLTensor *t, uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t base = (uintptr_t)t->data + (uintptr_t)t->byte_offset;
    int64_t n;
    if (!rt_numel(t->ndim, t->shape, &n) || n == 0) {
        *lo = *hi = base;
        return;
    }
    /* Element offsets reach from the sum of the negative strides' extremes
     * to the sum of the positive ones'. */
    int64_t minoff = 0, maxoff = 0;
    for (int k = 0; k < t->ndim; k++) {
        int64_t span = stride_of(t, k) * (t->shape[k] - 1);
        if (span < 0)
            minoff += span;
        else
            maxoff += span;
    }
    int64_t es = (int64_t)elem_size(t);
    *lo = base + (uintptr_t)(minoff * es);
    *hi = base + (uintptr_t)((maxoff + 1) * es);
}

bool rt_self_overlaps(const DLTensor *t)
{
    /* Sorted by |stride|, each dim must step over everything the smaller
     * ones reach. Sufficient, not necessary: rare interleaved layouts that
     * do not overlap are refused too. */
    int64_t st[LOSSC_MAX_RANK], sz[LOSSC_MAX_RANK];
    int m = 0;
    for (int k = 0; k < t->ndim; k++) {
        if (t->shape[k] <= 1)
            continue;
        int64_t s = stride_of(t, k);
        st[m] = s < 0 ? -s : s;
        sz[m++] = t->shape[k];
    }
    for (int i = 1; i < m; i++) /* insertion sort: at most 8 entries */
        for (int j = i; j > 0 && st[j - 1] > st[j]; j--) {
            int64_t a = st[j], b = sz[j];
            st[j] = st[j - 1], sz[j] = sz[j - 1];
            st[j - 1] = a, sz[j - 1] = b;
        }
    int64_t reach = 1; /* elements spanned by the dims so far */
    for (int i = 0; i < m; i++) {
        if (st[i] < reach)
            return true;
        reach = st[i] * (sz[i] - 1) + reach;
    }
    return false;
}

/* Walk every element in C order, calling back with the element's byte
 * address in t; `dense` advances by one element each time. */
static void walk(const DLTensor *t, void *dense, bool to_dense)
{
    int64_t n;
    if (!rt_numel(t->ndim, t->shape, &n) || n == 0)
        return;
    size_t es = elem_size(t);
    char *base = (char *)t->data + t->byte_offset;
    char *d = dense;
    int64_t idx[LOSSC_MAX_RANK] = {0}, st[LOSSC_MAX_RANK];
    for (int k = 0; k < t->ndim; k++)
        st[k] = stride_of(t, k) * (int64_t)es;
    int64_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        if (to_dense)
            memcpy(d, base + off, es);
        else
            memcpy(base + off, d, es);
        d += es;
        /* odometer increment, innermost dim first */
        for (int k = t->ndim - 1; k >= 0; k--) {
            off += st[k];
            if (++idx[k] < t->shape[k])
                break;
            off -= st[k] * t->shape[k];
            idx[k] = 0;
        }
    }
}

void rt_gather(const DLTensor *t, void *dense) { walk(t, dense, true); }
void rt_scatter(const DLTensor *t, const void *dense) { walk(t, (void *)dense, false); }

void rt_format_shape(strbuf *sb, int ndim, const int64_t *shape)
{
    sb_putc(sb, '[');
    for (int k = 0; k < ndim; k++)
        sb_printf(sb, "%s%lld", k ? ", " : "", (long long)shape[k]);
    sb_putc(sb, ']');
}
