/* test_npy.c - .npy round trips for every dtype lossc uses, byte-for-byte
 * agreement with numpy's own writer (headers as numpy 1.24 writes them),
 * format versions 2.0 and 3.0, and malformed files refused with a message. */
#include "testutil.h"

#include "cli/npy.h"

static const DLDataType F32 = {kDLFloat, 32, 1}, F64 = {kDLFloat, 64, 1},
                        I32 = {kDLInt, 32, 1}, I64 = {kDLInt, 64, 1}, B1 = {kDLUInt, 8, 1};

static bool parse(const strbuf *img, cli_npy *a, strbuf *err)
{
    sb_clear(err);
    return cli_npy_parse((const unsigned char *)img->data, img->len, a, err);
}

static void test_round_trip_every_dtype(void **state)
{
    (void)state;
    const DLDataType types[] = {F32, F64, I32, I64, B1};
    const int64_t shapes[][3] = {{0, 0, 0}, {5, 0, 0}, {2, 3, 4}, {0, 3, 0}};
    const int ranks[] = {0, 1, 3, 2};
    strbuf img, err;
    sb_init(&img);
    sb_init(&err);
    for (size_t t = 0; t < SUP_ARRAY_LEN(types); t++)
        for (size_t s = 0; s < SUP_ARRAY_LEN(ranks); s++) {
            cli_npy a, b;
            cli_npy_alloc(&a, types[t], ranks[s], shapes[s]);
            unsigned char *p = a.data;
            size_t bytes = (size_t)a.count * cli_npy_itemsize(types[t]);
            for (size_t i = 0; i < bytes; i++)
                p[i] = types[t].code == kDLUInt ? (unsigned char)(i % 2) : (unsigned char)(i * 37);
            sb_clear(&img);
            cli_npy_format(&a, &img);
            assert_int_equal(img.len % 64, bytes % 64); /* data starts 64-aligned */
            assert_true(parse(&img, &b, &err));
            assert_memory_equal(&b.dtype, &a.dtype, sizeof a.dtype);
            assert_int_equal(b.ndim, a.ndim);
            assert_int_equal(b.count, a.count);
            for (int k = 0; k < a.ndim; k++)
                assert_int_equal(b.shape[k], a.shape[k]);
            if (bytes)
                assert_memory_equal(b.data, a.data, bytes);
            cli_npy_free(&a);
            cli_npy_free(&b);
        }
    sb_free(&img);
    sb_free(&err);
}

/* The header numpy 1.24's np.save writes, padded to 118 bytes + magic. */
static void test_same_bytes_as_numpy(void **state)
{
    (void)state;
    float v[6] = {0, 0.25f, 0.5f, 0.75f, 1, 1.25f};
    cli_npy a;
    cli_npy_alloc(&a, F32, 2, (int64_t[]){2, 3});
    memcpy(a.data, v, sizeof v);
    strbuf img;
    sb_init(&img);
    cli_npy_format(&a, &img);
    const char *want = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    assert_int_equal(img.len, 152);
    assert_memory_equal(img.data, "\x93NUMPY\x01\x00\x76\x00", 10);
    assert_memory_equal(img.data + 10, want, strlen(want));
    for (size_t i = 10 + strlen(want); i < 127; i++)
        assert_int_equal(img.data[i], ' ');
    assert_int_equal(img.data[127], '\n');
    assert_memory_equal(img.data + 128, v, sizeof v);
    sb_clear(&img);
    cli_npy_free(&a);
    cli_npy_alloc(&a, I64, 0, NULL);
    cli_npy_format(&a, &img);
    assert_non_null(strstr(img.data + 10, "'shape': (), }"));
    sb_clear(&img);
    cli_npy_free(&a);
    cli_npy_alloc(&a, I32, 1, (int64_t[]){3});
    cli_npy_format(&a, &img);
    assert_non_null(strstr(img.data + 10, "'shape': (3,), }"));
    cli_npy_free(&a);
    sb_free(&img);
}

/* A file image with the given version and header text and n data bytes. */
static void image(strbuf *img, int major, const char *header, size_t n)
{
    sb_clear(img);
    size_t hl = strlen(header);
    sb_putn(img, "\x93NUMPY", 6);
    sb_putc(img, (char)major);
    sb_putc(img, 0);
    for (int b = 0; b < (major == 1 ? 2 : 4); b++)
        sb_putc(img, (char)((hl >> (8 * b)) & 0xff));
    sb_puts(img, header);
    for (size_t i = 0; i < n; i++)
        sb_putc(img, (char)(i + 1));
}

static void test_versions_and_spelling(void **state)
{
    (void)state;
    strbuf img, err;
    sb_init(&img);
    sb_init(&err);
    cli_npy a;
    image(&img, 2, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }\n", 12);
    assert_true(parse(&img, &a, &err));
    assert_int_equal(a.count, 3);
    cli_npy_free(&a);
    image(&img, 3, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n", 8);
    assert_true(parse(&img, &a, &err));
    assert_int_equal(a.dtype.bits, 64);
    cli_npy_free(&a);
    /* keys in another order, double quotes, no trailing comma, Python 2 longs */
    image(&img, 1, "{\"shape\":(2L,2L),\"fortran_order\":False,\"descr\":\"|b1\"}", 4);
    assert_true(parse(&img, &a, &err));
    assert_int_equal(a.ndim, 2);
    assert_int_equal(((uint8_t *)a.data)[1], 1); /* nonzero bytes read as true */
    cli_npy_free(&a);
    /* fortran_order is harmless for rank <= 1 */
    image(&img, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8);
    assert_true(parse(&img, &a, &err));
    cli_npy_free(&a);
    sb_free(&img);
    sb_free(&err);
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        int major;
        const char *header;
        size_t n;
        const char *msg;
    } bad[] = {
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "Fortran order"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "big-endian"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4, "'<f2' is not supported"},
        {1, "{'descr': '<u4', 'fortran_order': False, 'shape': (2,), }", 8, "not supported"},
        {1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 8, "not supported"},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, "structured"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, "data is 8 bytes"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 8, "data is 8 bytes"},
        {1, "{'descr': '<f4', 'shape': (2,), }", 8, "missing 'fortran_order'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,-1), }", 8, "bad shape"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,3", 24, "malformed"},
        {1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8, "True or False"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, "unknown key"},
        {1, "{'descr': '<f4, 'fortran_order': False, 'shape': (2,), }", 8, "is not supported"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4,
         "more than 8 dims"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 4,
         "too large"},
        {4, "{}", 0, "version 4.0"},
    };
    strbuf img, err;
    sb_init(&img);
    sb_init(&err);
    cli_npy a;
    for (size_t i = 0; i < SUP_ARRAY_LEN(bad); i++) {
        image(&img, bad[i].major, bad[i].header, bad[i].n);
        if (parse(&img, &a, &err))
            fail_msg("case %zu parsed", i);
        if (!strstr(sb_str(&err), bad[i].msg))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, sb_str(&err), bad[i].msg);
        assert_null(a.data);
    }
    /* truncations of a good file at every length */
    image(&img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    for (size_t len = 0; len < img.len; len++) {
        sb_clear(&err);
        assert_false(cli_npy_parse((const unsigned char *)img.data, len, &a, &err));
        assert_true(err.len > 0);
    }
    sb_clear(&err);
    assert_false(cli_npy_parse((const unsigned char *)"PK\x03\x04 not npy", 16, &a, &err));
    assert_non_null(strstr(sb_str(&err), "not a .npy file"));
    sb_clear(&err);
    assert_false(cli_npy_read("/nonexistent/x.npy", &a, &err));
    assert_non_null(strstr(sb_str(&err), "/nonexistent/x.npy: cannot read"));
    sb_free(&img);
    sb_free(&err);
}

/* Random byte changes to a good file: parsed or refused, never a crash
 * (run under ASan by the sanitizer build). */
static void test_mutations(void **state)
{
    (void)state;
    cli_npy a;
    cli_npy_alloc(&a, F64, 2, (int64_t[]){3, 2});
    strbuf good, img, err;
    sb_init(&good);
    sb_init(&img);
    sb_init(&err);
    cli_npy_format(&a, &good);
    cli_npy_free(&a);
    uint64_t s = 99;
    int parsed = 0;
    for (int round = 0; round < 20000; round++) {
        sb_clear(&img);
        sb_putn(&img, good.data, good.len);
        int changes = 1 + round % 4;
        for (int k = 0; k < changes; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(s >> 33) % 128; /* the header, mostly */
            img.data[at] = (char)(s >> 13);
        }
        size_t len = round % 7 == 0 ? (size_t)(s >> 40) % img.len : img.len;
        sb_clear(&err);
        if (cli_npy_parse((const unsigned char *)img.data, len, &a, &err)) {
            parsed++;
            assert_true(a.count * (int64_t)cli_npy_itemsize(a.dtype) <= (int64_t)len);
            cli_npy_free(&a);
        } else {
            assert_true(err.len > 0);
        }
    }
    assert_true(parsed > 0); /* changes in the padding still parse */
    sb_free(&good);
    sb_free(&img);
    sb_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_dtype),
        cmocka_unit_test(test_same_bytes_as_numpy),
        cmocka_unit_test(test_versions_and_spelling),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
