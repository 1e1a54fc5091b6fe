/* cg_bench - a developer's measurement of the kernels (not a test; timings
 * are never asserted). For each case: JIT compile time (median of 5), kernel
 * time (median of REPS) with 1 and T threads through a persistent pool, the
 * bytes that must move (inputs read once, gradients written once), and the
 * bound those bytes give at the triad bandwidth measured in the same run.
 *
 *   cg_bench [threads=2] [reps=9] [filter]
 *   valgrind --tool=callgrind --collect-atstart=no cg_bench --ir CASE
 *       one serial kernel call at 1/64 of the size, counted by callgrind
 *       (instructions per element do not depend on the machine's load)
 */
#include "cg_harness.h"

#include "frontend/frontend.h"
#include "passes/passes.h"

#include <stdatomic.h>
#include <time.h>
#include <valgrind/callgrind.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- a persistent pool: workers spin on a generation counter ----------------- */

typedef struct pool {
    int n;
    pthread_t th[64];
    atomic_long gen, next, done;
    lk_task_fn fn;
    void *ctx;
    int64_t nchunks;
    atomic_int stop;
} pool;

static void pool_work(pool *p)
{
    for (;;) {
        long c = atomic_fetch_add(&p->next, 1);
        if (c >= p->nchunks)
            return;
        p->fn(p->ctx, c);
        atomic_fetch_add(&p->done, 1);
    }
}

static void *pool_main(void *arg)
{
    pool *p = arg;
    long seen = 0;
    while (!atomic_load(&p->stop)) {
        long g = atomic_load(&p->gen);
        if (g == seen) {
            __builtin_ia32_pause();
            continue;
        }
        seen = g;
        pool_work(p);
    }
    return NULL;
}

static void pool_parallel(void *pp, lk_task_fn fn, void *ctx, int64_t nchunks)
{
    pool *p = pp;
    p->fn = fn;
    p->ctx = ctx;
    p->nchunks = nchunks;
    atomic_store(&p->done, 0);
    atomic_store(&p->next, 0);
    atomic_fetch_add(&p->gen, 1);
    pool_work(p);
    while (atomic_load(&p->done) < nchunks)
        __builtin_ia32_pause();
}

static void pool_start(pool *p, int n)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    for (int i = 0; i < n - 1; i++)
        pthread_create(&p->th[i], NULL, pool_main, p);
}

static void pool_stop(pool *p)
{
    atomic_store(&p->stop, 1);
    for (int i = 0; i < p->n - 1; i++)
        pthread_join(p->th[i], NULL);
}

/* ---- triad bandwidth ----------------------------------------------------------------- */

typedef struct triad_ctx {
    float *a, *b, *c;
    int64_t n;
} triad_ctx;

static void triad_chunk(void *ctx, int64_t k)
{
    triad_ctx *t = ctx;
    int64_t per = t->n / 64, lo = k * per, hi = k == 63 ? t->n : lo + per;
    for (int64_t i = lo; i < hi; i++)
        t->a[i] = t->b[i] + 3.0f * t->c[i];
}

static double triad_gbs(pool *p)
{
    int64_t n = (int64_t)1 << 25;
    triad_ctx t = {malloc(4 * (size_t)n), malloc(4 * (size_t)n), malloc(4 * (size_t)n), n};
    for (int64_t i = 0; i < n; i++)
        t.a[i] = 0, t.b[i] = 1, t.c[i] = 2;
    double best = 1e30;
    for (int r = 0; r < 7; r++) {
        double t0 = now_ms();
        pool_parallel(p, triad_chunk, &t, 64);
        double ms = now_ms() - t0;
        if (ms < best)
            best = ms;
    }
    free(t.a), free(t.b), free(t.c);
    return 12.0 * (double)n / (best * 1e6);
}

/* ---- cases ------------------------------------------------------------------------------ */

typedef struct bcase {
    const char *name, *src, *entry;
    const char *dims[4];
    int64_t sizes[4];
} bcase;

static const bcase cases[] = { /* the lead's bench/losses, at bench/run's sizes */
    {"mse", "bench/losses/mse.loss", NULL, {"N"}, {1 << 24}},
    {"huber", "bench/losses/huber.loss", NULL, {"N"}, {1 << 24}},
    {"bce", "bench/losses/bce.loss", NULL, {"N"}, {1 << 24}},
    {"focal", "bench/losses/focal.loss", NULL, {"N"}, {1 << 24}},
    {"ce_1000", "bench/losses/ce.loss", NULL, {"N", "C"}, {65536, 1000}},
    {"ce_10", "bench/losses/ce.loss", NULL, {"N", "C"}, {1 << 20, 10}},
    {"dice", "bench/losses/dice.loss", NULL, {"N"}, {1 << 24}},
    {"focal2", "/tmp/focal2.loss", NULL, {"N"}, {1 << 24}},
    {"f_exp", "loss f(x: f32[N]) { return sum(exp(x)) }", NULL, {"N"}, {1 << 24}},
    {"f_log", "loss f(x: f32[N]) { return sum(log(x)) }", NULL, {"N"}, {1 << 24}},
    {"f_sigmoid", "loss f(x: f32[N]) { return sum(sigmoid(x)) }", NULL, {"N"}, {1 << 24}},
    {"f_softplus", "loss f(x: f32[N]) { return sum(softplus(x)) }", NULL, {"N"}, {1 << 24}},
};

static ir_graph *compile_source(const bcase *bc)
{
    size_t len;
    char *text = strstr(bc->src, ".loss") ? sup_read_file(bc->src, &len) : sup_strdup(bc->src);
    if (!text)
        return NULL;
    len = strlen(text);
    diag_set ds;
    diag_init(&ds);
    int fid = diag_add_file(&ds, bc->name, text, len);
    fe_options o = {.entry = bc->entry};
    ir_graph *g = fe_compile(&ds, fid, &o);
    strbuf err;
    sb_init(&err);
    if (!g) {
        diag_format_all(&ds, &err);
        fprintf(stderr, "%s", sb_str(&err));
    } else {
        pass_options po = {.backward = true, .wrt = 1}; /* the first input only */
        g = pass_pipeline(g, &po, &err);
        if (!g)
            fprintf(stderr, "%s: %s\n", bc->name, sb_str(&err));
    }
    sb_free(&err);
    diag_free(&ds);
    sup_free(text);
    return g;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

/* One serial call under callgrind's collection (sizes / 64). */
static int count_one(const char *name)
{
    strbuf err;
    sb_init(&err);
    for (size_t k = 0; k < SUP_ARRAY_LEN(cases); k++) {
        const bcase *bc = &cases[k];
        if (strcmp(bc->name, name))
            continue;
        ir_graph *g = compile_source(bc);
        cg_jit *jit = cg_jit_create(NULL, &err);
        cg_kernel_info info;
        lk_kernel_fn fn = cg_jit_compile(jit, g, g->name, &info, &err);
        cg_case c = {.g = g, .seed = 1};
        int64_t elems = 1;
        for (int d = 0; d < 4 && bc->dims[d]; d++) {
            int64_t s = d == 0 ? bc->sizes[d] / 64 : bc->sizes[d];
            c.size[ir_dim_find(g, bc->dims[d])] = s;
            elems *= s;
        }
        for (int i = 0; i < g->ninputs; i++) {
            c.gen[i] = GEN_UNIFORM, c.lo[i] = 0.05, c.hi[i] = 0.95;
            if (ir_dtype_is_int(g->inputs[i].dtype))
                c.gen[i] = GEN_INDEX, c.hi[i] = (double)c.size[ir_dim_find(g, "C")];
            else if (g->inputs[i].ndim == 0)
                c.gen[i] = GEN_FIXED,
                c.lo[i] = g->inputs[i].has_default ? g->inputs[i].default_value : 1;
        }
        double **data = make_inputs(&c);
        run_kernel(&c, fn, NULL, NULL); /* warm: outputs allocated */
        cg_call call;
        cg_call_pack(&c, &call);
        lk_error e;
        lk_args a = {call.bufs, call.dims, NULL, NULL, &e};
        CALLGRIND_TOGGLE_COLLECT;
        fn(&a);
        CALLGRIND_TOGGLE_COLLECT;
        printf("%s: %lld elements (see callgrind's Ir / elements)\n", name, (long long)elems);
        free_inputs(&c, data);
        free_case_buffers(&c);
        cg_kernel_info_free(&info);
        cg_jit_destroy(jit);
        ir_graph_free(g);
    }
    sb_free(&err);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "--ir"))
        return count_one(argv[2]);
    int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 9;
    const char *filter = argc > 3 ? argv[3] : NULL;
    pool p1, pt;
    pool_start(&p1, 1);
    pool_start(&pt, threads);
    double bw = triad_gbs(&pt);
    printf("triad bandwidth (%d threads): %.1f GB/s\n", threads, bw);
    printf("%-11s %9s %8s %8s %8s %7s %7s\n", "case", "compile", "1 thr", "T thr", "bound",
           "GB/s", "bound/T");
    strbuf err;
    sb_init(&err);
    for (size_t k = 0; k < SUP_ARRAY_LEN(cases); k++) {
        const bcase *bc = &cases[k];
        if (filter && !strstr(bc->name, filter))
            continue;
        ir_graph *g = compile_source(bc);
        if (!g)
            continue;
        cg_jit *jit = cg_jit_create(NULL, &err);
        double cms[5];
        lk_kernel_fn fn = NULL;
        cg_kernel_info info;
        for (int r = 0; r < 5; r++) {
            fn = cg_jit_compile(jit, g, g->name, &info, &err);
            if (!fn)
                break;
            cms[r] = info.compile_ms;
            cg_kernel_info_free(&info);
        }
        if (!fn) {
            fprintf(stderr, "%s: %s\n", bc->name, sb_str(&err));
            continue;
        }
        cg_case c = {.g = g, .seed = 1};
        for (int d = 0; d < 4 && bc->dims[d]; d++)
            c.size[ir_dim_find(g, bc->dims[d])] = bc->sizes[d];
        double bytes = 0;
        for (int i = 0; i < g->ninputs; i++) {
            const ir_input *in = &g->inputs[i];
            c.gen[i] = GEN_UNIFORM, c.lo[i] = 0.05, c.hi[i] = 0.95;
            if (ir_dtype_is_int(in->dtype)) {
                int C = ir_dim_find(g, "C");
                c.gen[i] = GEN_INDEX, c.hi[i] = C >= 0 ? (double)c.size[C] : 2;
            } else if (in->ndim == 0) {
                c.gen[i] = GEN_FIXED, c.lo[i] = in->has_default ? in->default_value : 1;
            }
        }
        double **data = make_inputs(&c);
        for (int i = 0; i < g->ninputs; i++)
            if (g->inputs[i].ndim)
                bytes += (double)c.in_count[i] * (double)ir_dtype_size(g->inputs[i].dtype);
        run_kernel(&c, fn, NULL, NULL);
        for (int o = 0; o < g->noutputs; o++)
            if (g->outputs[o].node->dims)
                bytes += (double)c.out_count[o] *
                         (double)ir_dtype_size((ir_dtype)g->outputs[o].node->dtype);
        /* time the kernel call alone, on buffers already touched */
        cg_call call;
        cg_call_pack(&c, &call);
        lk_error e;
        lk_args a1 = {call.bufs, call.dims, pool_parallel, &p1, &e};
        lk_args at = {call.bufs, call.dims, pool_parallel, &pt, &e};
        double t1[64], tt[64];
        for (int r = 0; r < reps && r < 64; r++) {
            double t0 = now_ms();
            fn(&a1);
            t1[r] = now_ms() - t0;
            t0 = now_ms();
            fn(&at);
            tt[r] = now_ms() - t0;
        }
        double m1 = median(t1, reps), mt = median(tt, reps), bound = bytes / (bw * 1e6);
        printf("%-11s %7.1fms %6.2fms %6.2fms %6.2fms %7.1f %7.2f\n", bc->name, median(cms, 5),
               m1, mt, bound, bytes / (mt * 1e6), bound / mt);
        free_inputs(&c, data);
        free_case_buffers(&c);
        cg_jit_destroy(jit);
        ir_graph_free(g);
    }
    sb_free(&err);
    pool_stop(&p1);
    pool_stop(&pt);
    return 0;
}
