/* test_codegen.c - JIT kernels against the f64 interpreter.
 *
 * Sizes 1, 7, 1000 and 1000003 (no multiple of any vector width) for the
 * elementwise losses; rows of 1, 3, 10, 37 and 1000 classes for
 * cross-entropy. Tolerances: f32 outputs within 2e-5 relative plus 2e-5 of
 * the output's largest magnitude (sums are accumulated in f32 vector lanes
 * within a chunk, in f64 across chunks); f64 within 1e-12 of each.
 */
#include "cg_losses.h"

#include <stdlib.h>
#include <string.h>


static void tolerances(cg_case *c, ir_dtype T)
{
    c->rtol = T == DT_F32 ? 2e-5 : 1e-12;
    c->atol = T == DT_F32 ? 2e-5 : 1e-12;
}

static const int64_t sizes_1d[] = {1, 7, 1000, 1000003};

static void check_elementwise(ir_graph *(*make)(ir_dtype), double lo1, double hi1, int gen2,
                              double lo2, double hi2)
{
    for (int ti = 0; ti < 2; ti++) {
        ir_dtype T = ti ? DT_F64 : DT_F32;
        for (size_t si = 0; si < SUP_ARRAY_LEN(sizes_1d); si++) {
            cg_case c = {.g = make(T), .seed = 17 + si};
            c.size[0] = sizes_1d[si];
            tolerances(&c, T);
            c.gen[0] = GEN_UNIFORM, c.lo[0] = lo1, c.hi[0] = hi1;
            c.gen[1] = gen2, c.lo[1] = lo2, c.hi[1] = hi2;
            for (int i = 2; i < c.g->ninputs; i++)
                c.gen[i] = GEN_FIXED, c.lo[i] = i == 2 ? 0.75 : 1.0;
            run_and_check(g_jit, &c);
            free_case_buffers(&c);
            ir_graph_free(c.g);
        }
    }
}

static void test_mse(void **state)
{
    (void)state;
    check_elementwise(loss_mse, -3, 3, GEN_UNIFORM, -3, 3);
}

static void test_huber(void **state)
{
    (void)state;
    check_elementwise(loss_huber, -3, 3, GEN_UNIFORM, -3, 3);
}

static void test_bce_logits(void **state)
{
    (void)state;
    check_elementwise(loss_bce_logits, -30, 30, GEN_BOOL, 0, 1);
}

/* Outputs of 16 MB or more of a memory-bound sweep are written with
 * non-temporal stores on full iterations (plain and masked stores
 * elsewhere): sizes past that bound, not multiples of a vector, in f32 and
 * f64. */
static void test_streamed_outputs(void **state)
{
    (void)state;
    static const struct { ir_graph *(*make)(ir_dtype); ir_dtype T; int64_t n; } cases[] = {
        {loss_mse, DT_F32, (16 << 20) / 4 + 13},
        {loss_huber, DT_F64, (16 << 20) / 8 + 5},
    };
    for (size_t k = 0; k < SUP_ARRAY_LEN(cases); k++) {
        cg_case c = {.g = cases[k].make(cases[k].T), .seed = 5 + k};
        c.size[0] = cases[k].n;
        tolerances(&c, cases[k].T);
        c.gen[0] = GEN_UNIFORM, c.lo[0] = -3, c.hi[0] = 3;
        c.gen[1] = GEN_UNIFORM, c.lo[1] = -3, c.hi[1] = 3;
        for (int i = 2; i < c.g->ninputs; i++)
            c.gen[i] = GEN_FIXED, c.lo[i] = 1.0;
        run_and_check(g_jit, &c);
        free_case_buffers(&c);
        ir_graph_free(c.g);
    }
    /* cross-entropy past the bound: an exp per element, so plain stores,
     * and rows that prefetch the next one (see store_kinds below) */
    cg_case c = {.g = loss_ce(DT_F32, false, true), .seed = 9};
    c.size[0] = 4099;
    c.size[1] = 1025;
    tolerances(&c, DT_F32);
    c.gen[0] = GEN_UNIFORM, c.lo[0] = -20, c.hi[0] = 20;
    c.gen[1] = GEN_INDEX, c.hi[1] = 1025;
    c.gen[2] = GEN_FIXED, c.lo[2] = 1.5;
    run_and_check(g_jit, &c);
    free_case_buffers(&c);
    ir_graph_free(c.g);
}

static void test_dice(void **state)
{
    (void)state;
    check_elementwise(loss_dice, -5, 5, GEN_BOOL, 0, 1);
}

static void check_ce(bool weighted, bool rows)
{
    /* with W = 8 (f32 AVX2) and 4: rows of 1, 2, W - 1, W, 2W - 1, 2W
     * classes and the stage buffers' 64 (and 65: too many to stage); rows
     * that just fit the row cache's 16 KB stack buffer (2048 f64, 4096 f32)
     * and rows one longer, cached in the output row; in row counts that are
     * no multiple of W */
    static const int64_t shapes[][2] = {{1, 1}, {7, 3}, {1000, 10}, {100003, 10},
                                        {1000, 37}, {300, 1000}, {5, 17}, {13, 2},
                                        {1001, 15}, {9, 8}, {17, 16}, {33, 64},
                                        {11, 65}, {3, 7}, {3, 2048}, {2, 2049},
                                        {3, 4096}, {2, 4097}};
    for (int ti = 0; ti < 2; ti++) {
        ir_dtype T = ti ? DT_F64 : DT_F32;
        for (size_t si = 0; si < SUP_ARRAY_LEN(shapes); si++) {
            cg_case c = {.g = loss_ce(T, weighted, rows), .seed = 3 + si};
            c.size[0] = shapes[si][0];
            c.size[1] = shapes[si][1];
            tolerances(&c, T);
            c.gen[0] = GEN_UNIFORM, c.lo[0] = -20, c.hi[0] = 20;
            c.gen[1] = GEN_INDEX, c.hi[1] = (double)shapes[si][1];
            int k = 2;
            if (weighted)
                c.gen[k] = GEN_UNIFORM, c.lo[k] = 0.1, c.hi[k] = 2, k++;
            c.gen[k] = GEN_FIXED, c.lo[k] = 1.5;
            run_and_check(g_jit, &c);
            free_case_buffers(&c);
            ir_graph_free(c.g);
        }
    }
}

/* Both bodies of the row sweep (along rows, across short rows), forced, and
 * the automatic choice. */
static void check_ce_bodies(bool weighted, bool rows)
{
    static const char *const how[] = {"along", "across", NULL};
    for (int i = 0; i < 3; i++) {
        if (how[i])
            setenv("LOSSC_CG_ROWS", how[i], 1);
        else
            unsetenv("LOSSC_CG_ROWS");
        check_ce(weighted, rows);
    }
    unsetenv("LOSSC_CG_ROWS");
}

static void test_cross_entropy(void **state)
{
    (void)state;
    check_ce_bodies(false, true);
}

static void test_cross_entropy_weighted(void **state)
{
    (void)state;
    check_ce_bodies(true, false);
}

static void test_infonce(void **state)
{
    (void)state;
    static const int64_t shapes[][2] = {{1, 1}, {2, 3}, {7, 5}, {64, 33}, {130, 16}};
    for (int ti = 0; ti < 2; ti++) {
        ir_dtype T = ti ? DT_F64 : DT_F32;
        for (size_t si = 0; si < SUP_ARRAY_LEN(shapes); si++) {
            cg_case c = {.g = loss_infonce(T), .seed = 5 + si};
            c.size[0] = shapes[si][0];
            c.size[1] = shapes[si][1];
            tolerances(&c, T);
            c.gen[0] = GEN_UNIFORM, c.lo[0] = -1, c.hi[0] = 1;
            c.gen[1] = GEN_FIXED, c.lo[1] = 0.1;
            run_and_check(g_jit, &c);
            free_case_buffers(&c);
            ir_graph_free(c.g);
        }
    }
}

/* The across-rows body of cross-entropy stages its rows (see row_cache in
 * codegen/lower.h): no scatter for the gradient, one exp per element. */
static void test_cross_entropy_staged(void **state)
{
    (void)state;
    ir_graph *g = loss_ce(DT_F32, false, true);
    cg_options o = {.cpu = "x86-64-v3"};
    strbuf out, err;
    sb_init(&out);
    sb_init(&err);
    assert_true(cg_print_llvm(g, &o, &out, &err));
    const char *ir = sb_str(&out);
    assert_null(strstr(ir, "llvm.masked.scatter"));
    /* the across body (the function with the stage buffers): exp's range
     * reduction by log2(e) on one line, the sum's loop */
    const char *fn = strstr(ir, "%stage.out = alloca");
    assert_non_null(fn);
    const char *end = strstr(fn, "\n}\n");
    assert_non_null(end);
    int exps = 0;
    for (const char *q = fn; (q = strstr(q, "float 0x3FF7154760000000")) && q < end;
         q = strchr(q, '\n'))
        exps++;
    assert_int_equal(exps, 1);
    sb_free(&out);
    sb_free(&err);
    ir_graph_free(g);
}

static char *llvm_ir(ir_graph *g)
{
    cg_options o = {.cpu = "x86-64-v3"};
    strbuf out, err;
    sb_init(&out);
    sb_init(&err);
    assert_true(cg_print_llvm(g, &o, &out, &err));
    char *ir = strdup(sb_str(&out));
    sb_free(&out);
    sb_free(&err);
    ir_graph_free(g);
    return ir;
}

/* Does `what` occur in the function of ir that contains `marker`? */
static bool in_function(const char *ir, const char *marker, const char *what)
{
    const char *fn = strstr(ir, marker);
    assert_non_null(fn);
    const char *end = strstr(fn, "\n}\n"), *hit = strstr(fn, what);
    assert_non_null(end);
    return hit && hit < end;
}

/* Non-temporal stores only where the sweep is bound by memory (MSE, Huber),
 * not where it computes a transcendental per element (BCE, cross-entropy,
 * Dice); the along-rows body of cross-entropy prefetches the next row. */
static void test_store_kinds(void **state)
{
    (void)state;
    static const struct { ir_graph *(*make)(ir_dtype); bool streamed; } cases[] = {
        {loss_mse, true}, {loss_huber, true}, {loss_bce_logits, false}, {loss_dice, false},
    };
    for (size_t k = 0; k < SUP_ARRAY_LEN(cases); k++) {
        char *ir = llvm_ir(cases[k].make(DT_F32));
        assert_int_equal(strstr(ir, "!nontemporal") != NULL, cases[k].streamed);
        assert_null(strstr(ir, "llvm.prefetch"));
        free(ir);
    }
    char *ir = llvm_ir(loss_ce(DT_F32, false, true));
    assert_null(strstr(ir, "!nontemporal"));
    /* the along body has the row cache, the across body the stage buffers */
    assert_true(in_function(ir, "%row.cache = alloca", "call void @llvm.prefetch"));
    assert_false(in_function(ir, "%stage.out = alloca", "call void @llvm.prefetch"));
    free(ir);
    /* info_nce: the positive pair's dot product reads row i in a loop of the
     * row and prefetches; the similarities' dot products, nested in the loop
     * over j, would repeat a prefetch N times per row and have none */
    ir = llvm_ir(loss_infonce(DT_F32));
    int prefetches = 0;
    for (const char *q = ir; (q = strstr(q, "call void @llvm.prefetch")); q++)
        prefetches++;
    assert_int_equal(prefetches, 1);
    free(ir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_huber),
        cmocka_unit_test(test_bce_logits),
        cmocka_unit_test(test_dice),
        cmocka_unit_test(test_streamed_outputs),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_cross_entropy_weighted),
        cmocka_unit_test(test_cross_entropy_staged),
        cmocka_unit_test(test_store_kinds),
        cmocka_unit_test(test_infonce),
    };
    return cmocka_run_group_tests(tests, jit_setup, jit_teardown);
}
