/* cg_harness.h - run a graph through the JIT and through ir_interp on the
 * same random inputs and compare, output by output, with stated tolerances.
 *
 * Inputs are generated in double, rounded to their dtype, and that rounded
 * value is what the interpreter sees: the comparison measures the kernel's
 * arithmetic, not the rounding of the inputs. A float output element passes
 * when |got - want| <= rtol * |want| + atol * max|want over the output|
 * (NaN matches NaN, inf the same inf); int and bool outputs must be exact.
 */
#ifndef CG_HARNESS_H
#define CG_HARNESS_H

#include "testutil.h"

#include "codegen/codegen.h"
#include "ir/ir.h"

#include <pthread.h>
#include <stdlib.h>

static src_loc L_;

/* ---- one JIT per test program (cmocka group setup and teardown) ---------------- */

static cg_jit *g_jit;

static inline int jit_setup(void **state)
{
    (void)state;
    strbuf err;
    sb_init(&err);
    g_jit = cg_jit_create(NULL, &err);
    if (!g_jit)
        fprintf(stderr, "jit: %s\n", sb_str(&err));
    sb_free(&err);
    return g_jit ? 0 : -1;
}

static inline int jit_teardown(void **state)
{
    (void)state;
    cg_jit_destroy(g_jit);
    return 0;
}

/* ---- random numbers ---------------------------------------------------------- */

static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}
static inline double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }

/* ---- typed buffers ------------------------------------------------------------- */

static inline void put_typed(int dt, void *buf, int64_t i, double v)
{
    switch (dt) {
    case DT_BOOL: ((uint8_t *)buf)[i] = v != 0; break;
    case DT_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case DT_I64: ((int64_t *)buf)[i] = (int64_t)v; break;
    case DT_F32: ((float *)buf)[i] = (float)v; break;
    default: ((double *)buf)[i] = v; break;
    }
}

static inline double get_typed(int dt, const void *buf, int64_t i)
{
    switch (dt) {
    case DT_BOOL: return ((const uint8_t *)buf)[i];
    case DT_I32: return ((const int32_t *)buf)[i];
    case DT_I64: return (double)((const int64_t *)buf)[i];
    case DT_F32: return ((const float *)buf)[i];
    default: return ((const double *)buf)[i];
    }
}

/* ---- a case ------------------------------------------------------------------------ */

enum { GEN_UNIFORM, GEN_INDEX, GEN_BOOL, GEN_FIXED, GEN_SPECIAL, GEN_SPECIAL_SMALL };
enum { CG_MAX_IO = 96 }; /* inputs + outputs of a test graph */

typedef struct cg_case {
    ir_graph *g;
    int64_t size[IR_MAX_DIMS]; /* per root dim id */
    int gen[CG_MAX_IO];           /* per input: GEN_* */
    double lo[CG_MAX_IO], hi[CG_MAX_IO]; /* UNIFORM: [lo, hi); INDEX: [0, hi); FIXED: lo */
    double rtol, atol; /* atol: relative to the output's largest magnitude */
    double abs_tol;    /* plus an absolute tolerance (denormals) */
    uint64_t seed;
    /* results of the last run */
    void *in[CG_MAX_IO], *out[CG_MAX_IO];
    int64_t in_count[CG_MAX_IO], out_count[CG_MAX_IO];
    int32_t status;
    lk_error error;
} cg_case;

static inline int64_t dims_count(const cg_case *c, ir_dimset s)
{
    int64_t n = 1;
    IR_DIMSET_FOREACH(d, s)
        n *= c->size[ir_dim_root(c->g, d)];
    return n;
}

static const double special_values[] = {0.0, -0.0, 1.0, -1.0, 0.5, 3.0, -7.0, 1e30, -1e30,
                                        1e-30, INFINITY, -INFINITY, NAN, 88.0, -104.0, 2.5};
/* without huge finite values: sums of them do not cancel catastrophically */
static const double special_small[] = {0.0, -0.0, 1.0, -1.0, 0.5, 3.0, -7.0, 2.5, 0.25,
                                       INFINITY, -INFINITY, NAN, 1.5, -2.0};

/* Inputs of the case as doubles (rounded to their dtype), in memory order. */
static inline double **make_inputs(cg_case *c)
{
    ir_graph *g = c->g;
    uint64_t s = c->seed ? c->seed : 0x9e3779b97f4a7c15ull;
    double **data = calloc((size_t)g->ninputs + 1, sizeof *data);
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        int64_t n = dims_count(c, ir_input_dims(in));
        c->in_count[i] = n;
        data[i] = malloc(sizeof(double) * (size_t)(n ? n : 1));
        c->in[i] = malloc(ir_dtype_size(in->dtype) * (size_t)(n ? n : 1));
        for (int64_t k = 0; k < n; k++) {
            double v;
            switch (c->gen[i]) {
            case GEN_INDEX: v = floor(rng_unit(&s) * c->hi[i]); break;
            case GEN_BOOL: v = rng_unit(&s) < 0.5; break;
            case GEN_FIXED: v = c->lo[i]; break;
            case GEN_SPECIAL: v = special_values[rng_next(&s) % SUP_ARRAY_LEN(special_values)]; break;
            case GEN_SPECIAL_SMALL:
                v = special_small[rng_next(&s) % SUP_ARRAY_LEN(special_small)];
                break;
            default: v = c->lo[i] + (c->hi[i] - c->lo[i]) * rng_unit(&s); break;
            }
            put_typed(in->dtype, c->in[i], k, v);
            data[i][k] = get_typed(in->dtype, c->in[i], k);
        }
    }
    return data;
}

static inline void free_case_buffers(cg_case *c)
{
    for (int i = 0; i < CG_MAX_IO; i++) {
        free(c->in[i]);
        free(c->out[i]);
        c->in[i] = c->out[i] = NULL;
    }
}

/* Run the kernel on the case's inputs (outputs pre-filled with 0xA5 bytes). */
/* The kernel's buffer and size tables for c's current buffers. */
typedef struct cg_call {
    void *bufs[2 * CG_MAX_IO];
    int64_t dims[IR_MAX_DIMS];
} cg_call;

static inline void cg_call_pack(const cg_case *c, cg_call *k)
{
    const ir_graph *g = c->g;
    for (int i = 0; i < g->ninputs; i++)
        k->bufs[i] = c->in[i];
    for (int o = 0; o < g->noutputs; o++)
        k->bufs[g->ninputs + o] = c->out[o];
    for (int d = 0; d < g->ndims; d++)
        k->dims[d] = c->size[ir_dim_root(g, d)];
}

static inline int32_t run_kernel(cg_case *c, lk_kernel_fn fn, lk_parallel_fn par, void *pool)
{
    ir_graph *g = c->g;
    if (g->ninputs > CG_MAX_IO || g->noutputs > CG_MAX_IO)
        fail_msg("test graph too large for the harness");
    for (int o = 0; o < g->noutputs; o++) {
        int64_t n = dims_count(c, g->outputs[o].node->dims);
        c->out_count[o] = n;
        size_t bytes = ir_dtype_size((ir_dtype)g->outputs[o].node->dtype) * (size_t)(n ? n : 1);
        free(c->out[o]);
        c->out[o] = malloc(bytes);
        memset(c->out[o], 0xA5, bytes);
    }
    cg_call k;
    cg_call_pack(c, &k);
    memset(&c->error, 0, sizeof c->error);
    lk_args args = {k.bufs, k.dims, par, pool, &c->error};
    c->status = fn(&args);
    return c->status;
}

static inline bool value_close(double got, double want, double rtol, double atol)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= rtol * fabs(want) + atol;
}

/* Compare the kernel's outputs with the interpreter's. */
static inline void check_against_interp(cg_case *c, double **data)
{
    ir_graph *g = c->g;
    double *want[CG_MAX_IO];
    strbuf err;
    sb_init(&err);
    if (!ir_interp(g, c->size, (const double *const *)data, want, &err))
        fail_msg("interpreter: %s", sb_str(&err));
    sb_free(&err);
    for (int o = 0; o < g->noutputs; o++) {
        int dt = g->outputs[o].node->dtype;
        double scale = 0;
        for (int64_t k = 0; k < c->out_count[o]; k++)
            if (isfinite(want[o][k]) && fabs(want[o][k]) > scale)
                scale = fabs(want[o][k]);
        bool exact = !ir_dtype_is_float((ir_dtype)dt);
        /* an f32 output is never closer than its own rounding (2 ulp) */
        double rtol = dt == DT_F32 && c->rtol < 2.4e-7 ? 2.4e-7 : c->rtol;
        for (int64_t k = 0; k < c->out_count[o]; k++) {
            double got = get_typed(dt, c->out[o], k), w = want[o][k];
            if (dt == DT_F32 && isfinite(w) && fabs(w) > 3.4028234663852886e38)
                w = w > 0 ? INFINITY : -INFINITY; /* beyond f32 */
            bool ok = exact ? got == w || (isnan(got) && isnan(w))
                            : value_close(got, w, rtol, c->atol * scale + c->abs_tol);
            if (!ok)
                fail_msg("%s: output %s[%lld] = %.9g, interpreter %.17g (rtol %g, atol %g x %g)",
                         g->name, g->outputs[o].name, (long long)k, got, w, c->rtol, c->atol,
                         scale);
        }
        sup_free(want[o]);
    }
}

static inline void free_inputs(cg_case *c, double **data)
{
    for (int i = 0; i < c->g->ninputs; i++)
        free(data[i]);
    free(data);
}

/* Compile c's graph (the test fails if it does not compile). */
static inline lk_kernel_fn compile_case(cg_jit *jit, cg_case *c, cg_kernel_info *info)
{
    strbuf err;
    sb_init(&err);
    lk_kernel_fn fn = cg_jit_compile(jit, c->g, c->g->name, info, &err);
    if (!fn)
        fail_msg("compile %s: %s", c->g->name, sb_str(&err));
    sb_free(&err);
    return fn;
}

/* Compile, run serially, compare with the interpreter. */
static inline void run_and_check(cg_jit *jit, cg_case *c)
{
    cg_kernel_info info;
    lk_kernel_fn fn = compile_case(jit, c, &info);
    double **data = make_inputs(c);
    int32_t st = run_kernel(c, fn, NULL, NULL);
    if (st != LK_OK)
        fail_msg("%s: kernel returned %d (check %d, value %lld)", c->g->name, st, c->error.check,
                 (long long)c->error.value);
    check_against_interp(c, data);
    free_inputs(c, data);
    cg_kernel_info_free(&info);
}

/* ---- parallel runners for the determinism tests ----------------------------------- */

typedef struct tpool {
    int nthreads;
    lk_task_fn fn;
    void *ctx;
    int64_t nchunks;
    int64_t next; /* atomic */
} tpool;

static void *tpool_worker(void *arg)
{
    tpool *p = arg;
    for (;;) {
        int64_t c = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (c >= p->nchunks)
            return NULL;
        p->fn(p->ctx, c);
    }
}

/* lk_parallel_fn: pool is a tpool with nthreads set; threads take chunks
 * dynamically, so the order is whatever the scheduler makes it. */
static inline void tpool_parallel(void *pool, lk_task_fn fn, void *ctx, int64_t nchunks)
{
    tpool *p = pool;
    p->fn = fn;
    p->ctx = ctx;
    p->nchunks = nchunks;
    p->next = 0;
    pthread_t th[64];
    int n = p->nthreads < 64 ? p->nthreads : 64;
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, tpool_worker, p);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* lk_parallel_fn: serially, in a shuffled order (pool: a uint64_t seed). */
static inline void shuffled_parallel(void *pool, lk_task_fn fn, void *ctx, int64_t nchunks)
{
    uint64_t *seed = pool;
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(nchunks + 1));
    for (int64_t i = 0; i < nchunks; i++)
        order[i] = i;
    for (int64_t i = nchunks - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_next(seed) % (uint64_t)(i + 1));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int64_t i = 0; i < nchunks; i++)
        fn(ctx, order[i]);
    free(order);
}

/* ---- graph building shorthands ----------------------------------------------------------- */

static inline ir_node *B(ir_graph *g, ir_op op, ir_node *a, ir_node *b)
{
    ir_node *r = ir_binary(g, op, a, b, L_);
    if (!r)
        fail_msg("builder: %s", ir_graph_error(g));
    return r;
}
static inline ir_node *U(ir_graph *g, ir_op op, ir_node *a)
{
    ir_node *r = ir_unary(g, op, a, L_);
    if (!r)
        fail_msg("builder: %s", ir_graph_error(g));
    return r;
}
static inline ir_node *K(ir_graph *g, ir_dtype dt, double v) { return ir_const(g, dt, v, L_); }
static inline ir_node *R(ir_graph *g, ir_op op, ir_node *x, ir_dimset axes)
{
    ir_node *r = ir_reduce(g, op, x, axes, L_);
    if (!r)
        fail_msg("builder: %s", ir_graph_error(g));
    return r;
}
static inline ir_node *IN(ir_graph *g, const char *name, ir_input_kind kind, ir_dtype dt,
                          int ndim, const int *order)
{
    int k = ir_input_add(g, name, kind, dt, ndim, order, L_);
    return ir_input_node(g, k);
}
/* N as a float of x's dtype */
static inline ir_node *SIZE(ir_graph *g, int dim, ir_dtype dt)
{
    return ir_cast(g, dt, ir_dimsize(g, dim, L_), L_);
}

#endif
