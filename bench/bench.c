/* bench.c - one benchmark case in its own process: lossc forward+backward
 * against the hand-written fused C loop and the memory-bandwidth bound, all
 * measured in this run. Prints one JSON object (bench/run merges the cases,
 * adds PyTorch and draws the table).
 *
 *   lossc_bench --case ce --n 65536 --c 1000 --threads 2 --reps 20
 *
 * --check 1 (for tests) compiles once and measures the bandwidth on a small
 * array: the values, not the timings, are what a test looks at.
 *
 * Peak extra memory is the growth of the resident-set high-water mark while
 * the lossc kernel runs, with inputs and gradients already allocated and
 * touched (and the compiler's memory already counted before). */
#include "handc.h"
#include "runtime/lossc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct bench_case {
    const char *name, *file, *entry, *first, *second;
    int rows;   /* inputs are [N, C] logits and [N] labels */
    int sweeps; /* memory sweeps the math needs (Dice: 2) */
} bench_case;

static const bench_case cases[] = {
    {"mse", "mse.loss", "mse", "pred", "target", 0, 1},
    {"huber", "huber.loss", "huber", "pred", "target", 0, 1},
    {"bce", "bce.loss", "bce", "x", "y", 0, 1},
    {"focal", "focal.loss", "focal", "x", "y", 0, 1},
    {"ce", "ce.loss", "ce", "logits", "y", 1, 1},
    {"dice", "dice.loss", "dice", "x", "t", 0, 2},
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static DLTensor tensor(void *data, DLDataTypeCode code, int bits, int ndim, int64_t *shape)
{
    DLTensor t = {0};
    t.data = data;
    t.device.device_type = kDLCPU;
    t.ndim = ndim;
    t.dtype.code = (uint8_t)code;
    t.dtype.bits = (uint8_t)bits;
    t.dtype.lanes = 1;
    t.shape = shape;
    return t;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "lossc_bench: %s: %s\n", what, msg);
    exit(1);
}

static char *source_of(const char *dir, const char *file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, "cannot open");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n)
        die(path, "cannot read");
    s[n] = '\0';
    fclose(f);
    return s;
}

/* The tensors of a run: inputs, loss, gradient. */
typedef struct bench_data {
    DLTensor x, y, loss, grad;
} bench_data;

/* The forward+backward loss of a case in ctx, bound to d. */
static lossc_loss *compile_bound(lossc_ctx *ctx, const bench_case *bc, const char *src,
                                 const bench_data *d)
{
    const char *wrt[1] = {bc->first};
    lossc_compile_opts o = {.entry = bc->entry, .filename = bc->file, .wrt = wrt, .nwrt = 1,
                            .kernels = LOSSC_KERNEL_BACKWARD};
    lossc_loss *l;
    if (lossc_compile(ctx, src, &o, &l) != LOSSC_OK)
        die("compile", lossc_ctx_error(ctx));
    if (lossc_bind_input(l, bc->first, &d->x) || lossc_bind_input(l, bc->second, &d->y) ||
        lossc_bind_output(l, "loss", &d->loss) || lossc_bind_grad(l, bc->first, &d->grad))
        die("bind", lossc_loss_error(l));
    return l;
}

/* Median compile time of the forward+backward kernel in a fresh context
 * each time (so the kernel cache cannot answer): lossc_compile and what the
 * first run compiles (a sweep's version for these sizes, see jit.c), as
 * lossc_loss_compile_ms counts them. */
static double compile_ms(const bench_case *bc, const char *src, int threads, const bench_data *d,
                         int runs)
{
    double t[7];
    for (int r = 0; r < runs; r++) {
        lossc_ctx *ctx;
        lossc_ctx_opts co = {.threads = threads};
        if (lossc_ctx_new(&ctx, &co) != LOSSC_OK)
            die("context", "cannot create");
        lossc_loss *l = compile_bound(ctx, bc, src, d);
        if (lossc_forward_backward(l) != LOSSC_OK)
            die("run", lossc_loss_error(l));
        t[r] = lossc_loss_compile_ms(l);
        lossc_loss_free(l);
        lossc_ctx_free(ctx);
    }
    return median(t, runs);
}

/* The hand-written fused loop of a case (bench/handc.c). */
static double hand_c(const bench_case *bc, const float *x, const void *y, float *g, int64_t n,
                     int64_t c)
{
    switch (bc - cases) {
    case 0: return hc_mse(x, y, g, n);
    case 1: return hc_huber(x, y, g, n);
    case 2: return hc_bce(x, y, g, n);
    case 3: return hc_focal(x, y, g, n);
    case 4: return hc_ce(x, y, g, n, c);
    default: return hc_dice(x, y, g, n);
    }
}

/* The arithmetic alone: lossc and the hand-written loop on one thread, on
 * the first elements (rows) of the data, few enough that inputs and
 * gradients stay in this core's caches (CACHE_BYTES), timed per run, scaled
 * to all n and divided by the thread count, as if the threads shared the
 * work perfectly. One thread, because waking the pool's workers costs tens
 * of microseconds on this VM, as much as the run itself. When this time
 * exceeds the bandwidth bound, no kernel that computes the same values the
 * same way can reach the bound on this machine. */
enum { CACHE_BYTES = 512 << 10, CACHE_RUNS = 101 };

static void in_cache(const bench_case *bc, const char *src, const bench_data *d, int64_t n,
                     int64_t c, double bytes_per, int threads, double *lossc_ms, double *hand_ms)
{
    int64_t m = (int64_t)(CACHE_BYTES / bytes_per);
    m = m < 1 ? 1 : m > n ? n : m;
    int64_t shx[2] = {m, c}, shy[1] = {m};
    bench_data s = *d;
    s.x.shape = shx;
    s.y.shape = shy;
    s.grad.shape = shx;
    lossc_ctx *ctx;
    lossc_ctx_opts co = {.threads = 1};
    if (lossc_ctx_new(&ctx, &co) != LOSSC_OK)
        die("context", "cannot create");
    lossc_loss *l = compile_bound(ctx, bc, src, &s);
    hc_set_threads(1);
    static double t[CACHE_RUNS], th[CACHE_RUNS];
    float *g2 = malloc(sizeof(float) * (size_t)(bc->rows ? m * c : m));
    for (int r = -3; r < CACHE_RUNS; r++) { /* the first runs warm up */
        double t0 = now_ms();
        if (lossc_forward_backward(l) != LOSSC_OK)
            die("run", lossc_loss_error(l));
        if (r >= 0)
            t[r] = now_ms() - t0;
    }
    for (int r = -3; r < CACHE_RUNS; r++) {
        double t0 = now_ms();
        hand_c(bc, s.x.data, s.y.data, g2, m, c);
        if (r >= 0)
            th[r] = now_ms() - t0;
    }
    free(g2);
    hc_set_threads(threads);
    lossc_loss_free(l);
    lossc_ctx_free(ctx);
    double scale = (double)n / (double)m / threads;
    *lossc_ms = median(t, CACHE_RUNS) * scale;
    *hand_ms = median(th, CACHE_RUNS) * scale;
}

int main(int argc, char **argv)
{
    const char *name = NULL, *dir = "bench/losses";
    int64_t n = 1 << 24, c = 1;
    int threads = 2, reps = 20, check = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--case")) name = argv[i + 1];
        else if (!strcmp(argv[i], "--n")) n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--c")) c = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--losses")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--check")) check = atoi(argv[i + 1]);
        else die("usage", argv[i]);
    }
    const bench_case *bc = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (name && !strcmp(cases[i].name, name))
            bc = &cases[i];
    if (!bc)
        die("usage", "--case mse|huber|bce|focal|ce|dice");
    if (reps > 64)
        reps = 64;
    if (reps < 1)
        reps = 1;
    char *src = source_of(dir, bc->file);
    int64_t elems = bc->rows ? n * c : n;
    float *x = malloc(sizeof(float) * (size_t)elems), *g = malloc(sizeof(float) * (size_t)elems);
    float *g2 = malloc(sizeof(float) * (size_t)elems);
    void *y = bc->rows ? malloc(sizeof(int64_t) * (size_t)n) : malloc(sizeof(float) * (size_t)n);
    srand(1);
    for (int64_t i = 0; i < elems; i++) {
        x[i] = (float)(((double)rand() / RAND_MAX - 0.5) * 4);
        g[i] = g2[i] = 0;
    }
    for (int64_t i = 0; i < n; i++) {
        if (bc->rows)
            ((int64_t *)y)[i] = rand() % c;
        else
            ((float *)y)[i] = (float)rand() / RAND_MAX;
    }
    float loss = 0;
    int64_t shx[2] = {n, c}, shy[1] = {n};
    bench_data d = {
        .x = tensor(x, kDLFloat, 32, bc->rows ? 2 : 1, shx),
        .y = bc->rows ? tensor(y, kDLInt, 64, 1, shy) : tensor(y, kDLFloat, 32, 1, shy),
        .loss = tensor(&loss, kDLFloat, 32, 0, NULL),
        .grad = tensor(g, kDLFloat, 32, bc->rows ? 2 : 1, shx),
    };
    double cms = compile_ms(bc, src, threads, &d, check ? 1 : 7);

    lossc_ctx *ctx;
    lossc_ctx_opts co = {.threads = threads};
    if (lossc_ctx_new(&ctx, &co) != LOSSC_OK)
        die("context", "cannot create");
    lossc_loss *l = compile_bound(ctx, bc, src, &d);

    hc_set_threads(threads);
    double hloss = 0;
    /* This machine's bandwidth drifts over seconds (other tenants), so lossc
     * and the hand-written loop run in alternating blocks, each block after
     * one untimed run of its own: every timed run follows a run of the same
     * code (the other one leaves the cache in another state: dirty gradient
     * lines after the hand loop, none after lossc's streaming stores). */
    enum { BLOCKS = 4 };
    double rss0 = peak_rss_mb(), t[64], th[64];
    int nt = 0, nth = 0;
    for (int blk = 0; blk < BLOCKS; blk++) {
        int per = (reps + BLOCKS - 1 - blk) / BLOCKS; /* reps split over the blocks */
        for (int r = -1; r < per; r++) {
            double t0 = now_ms();
            if (lossc_forward_backward(l) != LOSSC_OK)
                die("run", lossc_loss_error(l));
            if (r >= 0)
                t[nt++] = now_ms() - t0;
        }
        for (int r = -1; r < per; r++) {
            double t0 = now_ms();
            hloss = hand_c(bc, x, y, g2, n, c);
            if (r >= 0)
                th[nth++] = now_ms() - t0;
        }
    }
    double extra_mb = peak_rss_mb() - rss0;
    double maxdiff = 0;
    for (int64_t i = 0; i < elems; i++)
        maxdiff = fmax(maxdiff, fabs((double)g[i] - g2[i]));

    double bytes_per = bc->rows ? (8.0 * (double)c + 8.0) : (bc->sweeps == 2 ? 20.0 : 12.0);
    double cache_ms, hand_cache_ms;
    in_cache(bc, src, &d, n, c, bytes_per, threads, &cache_ms, &hand_cache_ms);

    double triad = check ? hc_triad_gbs(1 << 16, 2) : hc_triad_gbs(1 << 25, 10);
    double bytes = bytes_per * (double)n;
    double bound_ms = bytes / (triad * 1e9) * 1e3;
    char shape[64];
    if (bc->rows)
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)n, (long long)c);
    else
        snprintf(shape, sizeof shape, "%lld", (long long)n);
    printf("{\"loss\": \"%s\", \"shape\": \"%s\", \"lossc_ms\": %.4f, \"hand_c_ms\": %.4f, "
           "\"bound_ms\": %.4f, \"compile_ms\": %.3f, \"lossc_extra_mb\": %.2f, "
           "\"lossc_cache_ms\": %.4f, \"hand_c_cache_ms\": %.4f, "
           "\"triad_gbs\": %.2f, \"bytes\": %.0f, \"threads\": %d, \"lossc_value\": %.9g, "
           "\"hand_c_value\": %.9g, \"grad_max_abs_diff\": %.3g}\n",
           bc->name, shape, median(t, reps), median(th, reps), bound_ms, cms,
           extra_mb < 0 ? 0 : extra_mb, cache_ms, hand_cache_ms, triad, bytes, threads,
           (double)loss, hloss, maxdiff);
    lossc_loss_free(l);
    lossc_ctx_free(ctx);
    free(x), free(g), free(g2), free(y), free(src);
    return 0;
}
