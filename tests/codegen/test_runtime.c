/* test_runtime.c - what a kernel promises besides its numbers:
 *   - bitwise identical results for 1, 2 and 7 threads and any chunk order,
 *     and whether the kernel was compiled whole or in parts (jit.c);
 *   - an out-of-range gather index returns LK_ERR_INDEX naming the check,
 *     the value and its position, with no output written at all;
 *   - a scalar input left NULL takes its default;
 *   - cg_kernel_info describes the checks and the sweeps;
 *   - a sweep's other version is compiled once, by the first call needing it,
 *     also when several threads make that call at once; when that compile
 *     fails the call returns LK_ERR_COMPILE having written nothing.
 */
#include "cg_losses.h"


/* Outputs of one run, copied. */
static void **snapshot(cg_case *c)
{
    void **s = calloc((size_t)c->g->noutputs + 1, sizeof *s);
    for (int o = 0; o < c->g->noutputs; o++) {
        size_t n = ir_dtype_size((ir_dtype)c->g->outputs[o].node->dtype) *
                   (size_t)(c->out_count[o] ? c->out_count[o] : 1);
        s[o] = malloc(n);
        memcpy(s[o], c->out[o], n);
    }
    return s;
}

static void assert_same(cg_case *c, void **a, const char *how)
{
    for (int o = 0; o < c->g->noutputs; o++) {
        size_t n = ir_dtype_size((ir_dtype)c->g->outputs[o].node->dtype) *
                   (size_t)(c->out_count[o] ? c->out_count[o] : 1);
        if (memcmp(a[o], c->out[o], n) != 0)
            fail_msg("%s: output %s differs %s", c->g->name, c->g->outputs[o].name, how);
    }
}

static void free_snapshot(cg_case *c, void **s)
{
    for (int o = 0; o < c->g->noutputs; o++)
        free(s[o]);
    free(s);
}

static void check_deterministic(cg_case *c)
{
    cg_kernel_info info;
    lk_kernel_fn fn = compile_case(g_jit, c, &info);
    double **data = make_inputs(c);
    assert_int_equal(run_kernel(c, fn, NULL, NULL), LK_OK);
    void **ref = snapshot(c);
    static const int threads[] = {1, 2, 7};
    for (size_t t = 0; t < SUP_ARRAY_LEN(threads); t++) {
        tpool pool = {.nthreads = threads[t]};
        assert_int_equal(run_kernel(c, fn, tpool_parallel, &pool), LK_OK);
        char how[64];
        snprintf(how, sizeof how, "with %d threads", threads[t]);
        assert_same(c, ref, how);
    }
    for (uint64_t seed = 1; seed <= 3; seed++) {
        uint64_t s = seed * 7919;
        assert_int_equal(run_kernel(c, fn, shuffled_parallel, &s), LK_OK);
        assert_same(c, ref, "in a shuffled chunk order");
    }
    /* compiled in one part, and in three (kernel and sweeps apart) */
    static const char *const parts[] = {"1", "3"};
    for (size_t k = 0; k < SUP_ARRAY_LEN(parts); k++) {
        setenv("LOSSC_CG_THREADS", parts[k], 1);
        lk_kernel_fn fk = compile_case(g_jit, c, NULL);
        unsetenv("LOSSC_CG_THREADS");
        assert_int_equal(run_kernel(c, fk, NULL, NULL), LK_OK);
        char how[64];
        snprintf(how, sizeof how, "compiled in up to %s parts", parts[k]);
        assert_same(c, ref, how);
    }
    free_snapshot(c, ref);
    free_inputs(c, data);
    free_case_buffers(c);
    cg_kernel_info_free(&info);
}

static void test_threads_bitwise(void **state)
{
    (void)state;
    /* the last: outputs large enough for non-temporal stores */
    ir_graph *gs[5] = {loss_mse(DT_F32), loss_dice(DT_F32), loss_ce(DT_F32, true, true),
                       loss_ce(DT_F64, false, false), loss_mse(DT_F32)};
    for (int k = 0; k < 5; k++) {
        cg_case c = {.g = gs[k], .seed = 99};
        c.gen[0] = GEN_UNIFORM, c.lo[0] = -4, c.hi[0] = 4;
        if (k < 2 || k == 4) {
            c.size[0] = k == 4 ? (16 << 20) / 4 + 3 : 1000003;
            c.gen[1] = GEN_BOOL;
            c.gen[2] = GEN_FIXED, c.lo[2] = 1;
        } else {
            c.size[0] = 200003;
            c.size[1] = 10;
            c.gen[1] = GEN_INDEX, c.hi[1] = 10;
            c.gen[2] = GEN_UNIFORM, c.lo[2] = 0.5, c.hi[2] = 1.5;
            c.gen[3] = GEN_FIXED, c.lo[3] = 1;
        }
        check_deterministic(&c);
        ir_graph_free(c.g);
    }
}

/* Labels out of range: LK_ERR_INDEX, the first bad label by position, and
 * every output byte still as it was. */
static void check_bad_labels(bool weighted, lk_parallel_fn par, void *pool)
{
    cg_case c = {.g = loss_ce(DT_F32, weighted, true), .seed = 7};
    c.size[0] = 100003;
    c.size[1] = 10;
    c.gen[0] = GEN_UNIFORM, c.lo[0] = -1, c.hi[0] = 1;
    c.gen[1] = GEN_INDEX, c.hi[1] = 10;
    c.gen[2] = GEN_UNIFORM, c.lo[2] = 1, c.hi[2] = 2;
    c.gen[3] = GEN_FIXED, c.lo[3] = 1;
    cg_kernel_info info;
    lk_kernel_fn fn = compile_case(g_jit, &c, &info);
    assert_int_equal(info.nchecks, 1);
    assert_string_equal(info.checks[0].input, "y");
    assert_int_equal(info.checks[0].dim, 1); /* C */
    double **data = make_inputs(&c);
    int64_t *y = c.in[1];
    y[90001] = 12;
    y[4321] = -1;
    y[99999] = 10;
    assert_int_equal(run_kernel(&c, fn, par, pool), LK_ERR_INDEX);
    assert_int_equal(c.error.code, LK_ERR_INDEX);
    assert_int_equal(c.error.check, 0);
    assert_int_equal(c.error.value, -1);
    assert_int_equal(c.error.position, 4321);
    for (int o = 0; o < c.g->noutputs; o++) {
        const uint8_t *b = c.out[o];
        size_t n = 4 * (size_t)(c.out_count[o] ? c.out_count[o] : 1);
        for (size_t k = 0; k < n; k++)
            if (b[k] != 0xA5)
                fail_msg("output %s was written at byte %zu", c.g->outputs[o].name, k);
    }
    free_inputs(&c, data);
    free_case_buffers(&c);
    cg_kernel_info_free(&info);
    ir_graph_free(c.g);
}

static void test_range_error_writes_nothing(void **state)
{
    (void)state;
    check_bad_labels(false, NULL, NULL);
    check_bad_labels(true, NULL, NULL);
    tpool pool = {.nthreads = 2};
    check_bad_labels(true, tpool_parallel, &pool);
}

/* x[k] for a scalar index k: a check in the serial part of the kernel. */
static void test_scalar_index_check(void **state)
{
    (void)state;
    ir_graph *g = ir_graph_new("pick");
    int N = ir_dim_add(g, "N", -1, -1, L_);
    ir_node *x = IN(g, "x", IR_IN_TENSOR, DT_F64, 1, &N);
    ir_node *k = IN(g, "k", IR_IN_SCALAR, DT_I32, 0, NULL);
    ir_node *v = ir_gather(g, x, ir_dimbit(N), &k, L_);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, v);
    ir_output_add(g, "scaled", IR_OUT_EXTRA, -1, B(g, OP_MUL, x, v));
    cg_case c = {.g = g};
    c.size[0] = 5;
    c.gen[0] = GEN_UNIFORM, c.lo[0] = 1, c.hi[0] = 2;
    c.gen[1] = GEN_FIXED, c.lo[1] = 3;
    cg_kernel_info info;
    lk_kernel_fn fn = compile_case(g_jit, &c, &info);
    double **data = make_inputs(&c);
    assert_int_equal(run_kernel(&c, fn, NULL, NULL), LK_OK);
    assert_true(((double *)c.out[0])[0] == ((double *)c.in[0])[3]);
    *(int32_t *)c.in[1] = 5;
    assert_int_equal(run_kernel(&c, fn, NULL, NULL), LK_ERR_INDEX);
    assert_int_equal(c.error.value, 5);
    assert_int_equal(((uint8_t *)c.out[1])[0], 0xA5);
    free_inputs(&c, data);
    free_case_buffers(&c);
    cg_kernel_info_free(&info);
    ir_graph_free(g);
}

/* Huber's delta left NULL is its default, 1. */
static void test_scalar_default(void **state)
{
    (void)state;
    cg_case c = {.g = loss_huber(DT_F64), .seed = 5};
    c.size[0] = 33;
    c.gen[0] = GEN_UNIFORM, c.lo[0] = -3, c.hi[0] = 3;
    c.gen[1] = GEN_UNIFORM, c.lo[1] = -3, c.hi[1] = 3;
    c.gen[2] = GEN_FIXED, c.lo[2] = 1.0;
    c.gen[3] = GEN_FIXED, c.lo[3] = 1.0;
    cg_kernel_info info;
    lk_kernel_fn fn = compile_case(g_jit, &c, &info);
    double **data = make_inputs(&c);
    assert_int_equal(run_kernel(&c, fn, NULL, NULL), LK_OK);
    double with = *(double *)c.out[0];
    free(c.in[2]);
    c.in[2] = NULL;
    assert_int_equal(run_kernel(&c, fn, NULL, NULL), LK_OK);
    assert_true(*(double *)c.out[0] == with);
    assert_int_equal(info.nsweeps, 1);
    free_inputs(&c, data);
    free_case_buffers(&c);
    cg_kernel_info_free(&info);
    ir_graph_free(c.g);
}

/* sum((1 - sigmoid(x))^gamma * x), gamma a scalar with default 2, and a
 * gradient-like output with the exponent gamma - 1. */
static ir_graph *focal_like(void)
{
    ir_graph *g = ir_graph_new("focal_like");
    int N = ir_dim_add(g, "N", -1, -1, L_);
    ir_node *x = IN(g, "x", IR_IN_TENSOR, DT_F32, 1, &N);
    int kg = ir_input_add(g, "gamma", IR_IN_SCALAR, DT_F32, 0, NULL, L_);
    g->inputs[kg].has_default = true;
    g->inputs[kg].default_value = 2.0;
    ir_node *gamma = ir_input_node(g, kg);
    ir_node *q = B(g, OP_SUB, K(g, DT_F32, 1), U(g, OP_SIGMOID, x));
    ir_node *l = B(g, OP_MUL, B(g, OP_POW, q, gamma), x);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, R(g, OP_SUM, l, ir_dimbit(N)));
    ir_output_add(g, "grad_x", IR_OUT_GRAD, 0,
                  B(g, OP_MUL, B(g, OP_POW, q, B(g, OP_SUB, gamma, K(g, DT_F32, 1))), x));
    return g;
}

/* A scalar with a default that feeds a pow exponent gets a specialized
 * body (gamma = 2: x * x); other values take the general one. Both agree
 * with the interpreter: f32 within 2e-5 relative plus 2e-5 of the largest. */
static void test_specialized_default(void **state)
{
    (void)state;
    ir_graph *g = focal_like();
    const double gammas[] = {2.0, 1.5, 0.0, 2.0000002};
    for (size_t i = 0; i < SUP_ARRAY_LEN(gammas); i++) {
        cg_case c = {.g = g, .seed = 3, .rtol = 2e-5, .atol = 2e-5};
        c.size[0] = 10007;
        c.gen[0] = GEN_UNIFORM, c.lo[0] = -4, c.hi[0] = 4;
        c.gen[1] = GEN_FIXED, c.lo[1] = gammas[i];
        run_and_check(g_jit, &c);
        free_case_buffers(&c);
    }
    ir_graph_free(g);
}

static void test_sweep_counts(void **state)
{
    (void)state;
    struct {
        ir_graph *g;
        int sweeps;
    } k[] = {{loss_mse(DT_F32), 1},          {loss_huber(DT_F32), 1},
             {loss_bce_logits(DT_F32), 1},   {loss_dice(DT_F32), 2},
             {loss_ce(DT_F32, false, 0), 2}, {loss_ce(DT_F32, true, 0), 2}};
    for (size_t i = 0; i < SUP_ARRAY_LEN(k); i++) {
        cg_case c = {.g = k[i].g};
        cg_kernel_info info;
        compile_case(g_jit, &c, &info);
        if (info.nsweeps != k[i].sweeps)
            fail_msg("%s: %d sweeps, want %d", k[i].g->name, info.nsweeps, k[i].sweeps);
        assert_true(info.compile_ms > 0);
        cg_kernel_info_free(&info);
        ir_graph_free(k[i].g);
    }
}

/* ---- versions compiled on demand (jit.c) ------------------------------------------ */

static int lazy_compiles(void)
{
    int n;
    cg_jit_lazy_stats(g_jit, &n, NULL);
    return n;
}

/* Run fn serially on c (fresh inputs from its seed), compare with the interpreter. */
static void run_checked(cg_case *c, lk_kernel_fn fn)
{
    double **data = make_inputs(c);
    if (run_kernel(c, fn, NULL, NULL) != LK_OK)
        fail_msg("%s: kernel returned %d", c->g->name, c->status);
    check_against_interp(c, data);
    free_inputs(c, data);
    free_case_buffers(c);
}

static cg_case ce_case(ir_graph *g, int64_t n, int64_t classes)
{
    cg_case c = {.g = g, .seed = 11, .rtol = 2e-5, .atol = 2e-5};
    c.size[0] = n;
    c.size[1] = classes;
    c.gen[0] = GEN_UNIFORM, c.lo[0] = -5, c.hi[0] = 5;
    c.gen[1] = GEN_INDEX, c.hi[1] = (double)classes;
    c.gen[2] = GEN_FIXED, c.lo[2] = 1;
    return c;
}

/* One compiled kernel called with sizes and scalars that switch a sweep's
 * version: right results each time, and each version compiled once. */
static void test_lazy_versions(void **state)
{
    (void)state;
    ir_graph *ce = loss_ce(DT_F32, false, true);
    cg_case c = ce_case(ce, 1000, 1000);
    lk_kernel_fn fn = compile_case(g_jit, &c, NULL);
    int n0 = lazy_compiles();
    run_checked(&c, fn); /* along rows: compiled with the kernel */
    assert_int_equal(lazy_compiles(), n0);
    c = ce_case(ce, 1000, 10);
    run_checked(&c, fn); /* across rows: compiled now */
    assert_int_equal(lazy_compiles(), n0 + 1);
    c = ce_case(ce, 333, 1000);
    run_checked(&c, fn);
    c = ce_case(ce, 77, 3);
    run_checked(&c, fn);
    assert_int_equal(lazy_compiles(), n0 + 1);
    ir_graph_free(ce);

    /* focal's gamma: the default (x * x) with the kernel, others on demand */
    ir_graph *g = focal_like();
    const double gammas[] = {2.0, 3.0, 2.0, 0.5};
    const int compiled[] = {0, 1, 1, 1};
    c = (cg_case){.g = g};
    fn = compile_case(g_jit, &c, NULL);
    n0 = lazy_compiles();
    for (size_t i = 0; i < SUP_ARRAY_LEN(gammas); i++) {
        c = (cg_case){.g = g, .seed = 3, .rtol = 2e-5, .atol = 2e-5};
        c.size[0] = 5003;
        c.gen[0] = GEN_UNIFORM, c.lo[0] = -4, c.hi[0] = 4;
        c.gen[1] = GEN_FIXED, c.lo[1] = gammas[i];
        run_checked(&c, fn);
        assert_int_equal(lazy_compiles(), n0 + compiled[i]);
    }
    ir_graph_free(g);
}

typedef struct first_call {
    cg_case c;
    lk_kernel_fn fn;
    pthread_barrier_t *start;
    int32_t status;
} first_call;

static void *call_first(void *arg)
{
    first_call *f = arg;
    pthread_barrier_wait(f->start);
    f->status = run_kernel(&f->c, f->fn, NULL, NULL);
    return NULL;
}

/* Threads calling a kernel at once, each the first call needing a version:
 * one compile, the same results everywhere. */
static void test_lazy_concurrent(void **state)
{
    (void)state;
    enum { T = 4 };
    ir_graph *ce = loss_ce(DT_F32, false, true);
    first_call calls[T];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, T);
    cg_case c0 = ce_case(ce, 2000, 7);
    lk_kernel_fn fn = compile_case(g_jit, &c0, NULL);
    int n0 = lazy_compiles();
    double **data[T];
    pthread_t th[T];
    for (int t = 0; t < T; t++) {
        calls[t] = (first_call){.c = ce_case(ce, 2000, 7), .fn = fn, .start = &start};
        data[t] = make_inputs(&calls[t].c);
    }
    for (int t = 0; t < T; t++)
        pthread_create(&th[t], NULL, call_first, &calls[t]);
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(lazy_compiles(), n0 + 1);
    for (int t = 0; t < T; t++) {
        assert_int_equal(calls[t].status, LK_OK);
        check_against_interp(&calls[t].c, data[t]);
        if (t)
            assert_memory_equal(calls[t].c.out[1], calls[0].c.out[1], 4 * 2000 * 7);
    }
    for (int t = 0; t < T; t++) {
        free_inputs(&calls[t].c, data[t]);
        free_case_buffers(&calls[t].c);
    }
    pthread_barrier_destroy(&start);
    ir_graph_free(ce);
}

/* A version that fails to compile: LK_ERR_COMPILE before anything is
 * written, the message for the caller; a later call compiles it. */
static void test_lazy_failure(void **state)
{
    (void)state;
    ir_graph *ce = loss_ce(DT_F32, false, true);
    cg_case c = ce_case(ce, 500, 5);
    lk_kernel_fn fn = compile_case(g_jit, &c, NULL);
    double **data = make_inputs(&c);
    cg_jit_take_lazy(NULL);
    setenv("LOSSC_CG_LAZY_FAIL", "1", 1);
    assert_int_equal(run_kernel(&c, fn, NULL, NULL), LK_ERR_COMPILE);
    unsetenv("LOSSC_CG_LAZY_FAIL");
    assert_int_equal(c.error.code, LK_ERR_COMPILE);
    assert_int_equal(c.error.check % 2, 0); /* the slot of version 0 (across rows) */
    for (int o = 0; o < c.g->noutputs; o++)
        for (size_t k = 0; k < 4 * (size_t)(c.out_count[o] ? c.out_count[o] : 1); k++)
            if (((const uint8_t *)c.out[o])[k] != 0xA5)
                fail_msg("output %s was written at byte %zu", c.g->outputs[o].name, k);
    strbuf msg;
    sb_init(&msg);
    assert_true(cg_jit_take_lazy(&msg) == 0);
    assert_non_null(strstr(sb_str(&msg), "LOSSC_CG_LAZY_FAIL"));
    sb_free(&msg);
    assert_int_equal(run_kernel(&c, fn, NULL, NULL), LK_OK);
    assert_true(cg_jit_take_lazy(NULL) > 0);
    check_against_interp(&c, data);
    free_inputs(&c, data);
    free_case_buffers(&c);
    ir_graph_free(ce);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_bitwise),
        cmocka_unit_test(test_range_error_writes_nothing),
        cmocka_unit_test(test_scalar_index_check),
        cmocka_unit_test(test_scalar_default),
        cmocka_unit_test(test_specialized_default),
        cmocka_unit_test(test_sweep_counts),
        cmocka_unit_test(test_lazy_versions),
        cmocka_unit_test(test_lazy_concurrent),
        cmocka_unit_test(test_lazy_failure),
    };
    return cmocka_run_group_tests(tests, jit_setup, jit_teardown);
}
