/* test_api.c - the C API end to end with real kernels: compile errors and
 * their statuses, the kernel cache, introspection, run-time errors with
 * their messages (nothing written), bitwise determinism across thread
 * counts, the upstream gradient, forward-only and wrt subsets, strided
 * tensors, gradcheck.
 * Reference values are double loops written here. */
#include "testutil.h"

#include "runtime/lossc.h"

#include <float.h>
#include <pthread.h>
#include <stdlib.h>

static const char *HUBER =
    "loss huber(pred: f32[N], target: f32[N], delta: f32 = 1.0) {\n"
    "    let d = pred - target\n"
    "    let a = abs(d)\n"
    "    return mean(where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta)))\n"
    "}\n";

static const char *CE =
    "loss ce(logits: f32[N, C], y: i64[N], weight: f32[C], reduction: str = \"mean\") {\n"
    "    let lsm = logits - logsumexp(logits, axis=C)\n"
    "    let w[n] = weight[y[n]]\n"
    "    let nll[n] = -w[n] * lsm[n, y[n]]\n"
    "    if reduction == \"none\" { return nll }\n"
    "    if reduction == \"sum\" { return sum(nll) }\n"
    "    return sum(nll) / sum(w)\n"
    "}\n";

static const DLDataType F32 = {kDLFloat, 32, 1}, F64 = {kDLFloat, 64, 1}, I64 = {kDLInt, 64, 1};

static DLTensor tensor(void *data, DLDataType dt, int ndim, int64_t *shape)
{
    return (DLTensor){.data = data, .device = {kDLCPU, 0}, .ndim = ndim, .dtype = dt,
                      .shape = shape};
}

#define assert_has(text, part)                                                     \
    do {                                                                           \
        const char *t_ = (text);                                                   \
        if (!strstr(t_, (part)))                                                   \
            fail_msg("\"%s\" lacks \"%s\"", t_, (part));                           \
    } while (0)

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) * 0x1p-53 * 4 - 2);
}

/* ---- compiling --------------------------------------------------------------------- */

static void test_compile_errors(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    lossc_loss *l = (lossc_loss *)1;
    assert_int_equal(lossc_ctx_new(&ctx, NULL), LOSSC_OK);
    assert_int_equal(lossc_compile(ctx, "loss f(x: f32[N]) { return mean(x +) }", NULL, &l),
                     LOSSC_ERR_SYNTAX);
    assert_null(l);
    assert_has(lossc_ctx_error(ctx), "<source>:1:");
    assert_has(lossc_ctx_error(ctx), "error:");
    lossc_compile_opts o = {.filename = "bad.loss"};
    assert_int_equal(lossc_compile(ctx, "loss f(x: f32[N]) { return mean(x + nope) }", &o, &l),
                     LOSSC_ERR_COMPILE);
    assert_has(lossc_ctx_error(ctx), "bad.loss:1:");
    assert_has(lossc_ctx_error(ctx), "nope");
    o = (lossc_compile_opts){.entry = "hubr"};
    assert_int_equal(lossc_compile(ctx, HUBER, &o, &l), LOSSC_ERR_UNKNOWN_NAME);
    assert_has(lossc_ctx_error(ctx), "no loss named 'hubr' (it defines: huber)");
    char two[1024];
    snprintf(two, sizeof two, "%s%s", HUBER, CE);
    assert_int_equal(lossc_compile(ctx, two, NULL, &l), LOSSC_ERR_ARG);
    assert_has(lossc_ctx_error(ctx), "defines 2 losses (huber, ce)");
    const char *bad_set[] = {"reduction"};
    o = (lossc_compile_opts){.settings = bad_set, .nsettings = 1};
    assert_int_equal(lossc_compile(ctx, CE, &o, &l), LOSSC_ERR_ARG);
    assert_has(lossc_ctx_error(ctx), "not NAME=VALUE");
    const char *bad_scalar[] = {"delta=two"};
    o = (lossc_compile_opts){.settings = bad_scalar, .nsettings = 1};
    assert_int_equal(lossc_compile(ctx, HUBER, &o, &l), LOSSC_ERR_ARG);
    assert_has(lossc_ctx_error(ctx), "not a number");
    const char *wrt_bad[] = {"prediction"}, *wrt_int[] = {"y"};
    o = (lossc_compile_opts){.wrt = wrt_bad, .nwrt = 1};
    assert_int_equal(lossc_compile(ctx, HUBER, &o, &l), LOSSC_ERR_UNKNOWN_NAME);
    o = (lossc_compile_opts){.wrt = wrt_int, .nwrt = 1};
    assert_int_equal(lossc_compile(ctx, CE, &o, &l), LOSSC_ERR_COMPILE);
    assert_has(lossc_ctx_error(ctx), "y");
    assert_int_equal(lossc_compile_file(ctx, "/nonexistent.loss", NULL, &l), LOSSC_ERR_IO);
    assert_has(lossc_ctx_error(ctx), "/nonexistent.loss");
    assert_int_equal(lossc_compile(ctx, NULL, NULL, &l), LOSSC_ERR_NULL);
    assert_int_equal(lossc_compile(NULL, HUBER, NULL, &l), LOSSC_ERR_NULL);
    o = (lossc_compile_opts){.kernels = 8};
    assert_int_equal(lossc_compile(ctx, HUBER, &o, &l), LOSSC_ERR_ARG);
    lossc_ctx_free(ctx);
}

static void test_cache(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    assert_int_equal(lossc_ctx_new(&ctx, &(lossc_ctx_opts){.threads = 1}), LOSSC_OK);
    lossc_loss *a, *b, *c, *d;
    int64_t hits, misses;
    double ms;
    assert_int_equal(lossc_compile(ctx, HUBER, NULL, &a), LOSSC_OK);
    assert_false(lossc_loss_cache_hit(a));
    lossc_ctx_cache_stats(ctx, &hits, &misses, &ms);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 2); /* forward, forward+backward */
    assert_true(ms > 0);
    assert_true(lossc_loss_compile_ms(a) > 0);
    /* the same loss again: both kernels from the cache */
    assert_int_equal(lossc_compile(ctx, HUBER, NULL, &b), LOSSC_OK);
    assert_true(lossc_loss_cache_hit(b));
    lossc_ctx_cache_stats(ctx, &hits, &misses, NULL);
    assert_int_equal(hits, 2);
    assert_int_equal(misses, 2);
    /* a numeric scalar is a run-time value: still a hit, and it is bound */
    const char *set[] = {"delta=0.5"};
    lossc_compile_opts o = {.settings = set, .nsettings = 1, .kernels = LOSSC_KERNEL_FORWARD};
    assert_int_equal(lossc_compile(ctx, HUBER, &o, &c), LOSSC_OK);
    assert_true(lossc_loss_cache_hit(c));
    float p[2] = {0, 0}, t[2] = {2, 0}, la, lc;
    int64_t n[1] = {2};
    DLTensor tp = tensor(p, F32, 1, n), tt = tensor(t, F32, 1, n);
    DLTensor ta = tensor(&la, F32, 0, NULL), tc = tensor(&lc, F32, 0, NULL);
    lossc_bind_input(a, "pred", &tp), lossc_bind_input(a, "target", &tt);
    lossc_bind_input(c, "pred", &tp), lossc_bind_input(c, "target", &tt);
    lossc_bind_output(a, "loss", &ta), lossc_bind_output(c, "loss", &tc);
    assert_int_equal(lossc_forward(a), LOSSC_OK);
    assert_int_equal(lossc_forward(c), LOSSC_OK);
    assert_close(la, (1 * (2 - 0.5)) / 2, 1e-6, 0);
    assert_close(lc, (0.5 * (2 - 0.25)) / 2, 1e-6, 0);
    /* a str parameter is compile time: another kernel */
    const char *sum[] = {"reduction=sum"}, *mean[] = {"reduction=mean"};
    o = (lossc_compile_opts){.settings = sum, .nsettings = 1, .kernels = LOSSC_KERNEL_FORWARD};
    assert_int_equal(lossc_compile(ctx, CE, &o, &d), LOSSC_OK);
    assert_false(lossc_loss_cache_hit(d));
    lossc_loss_free(d);
    o.settings = mean;
    assert_int_equal(lossc_compile(ctx, CE, &o, &d), LOSSC_OK);
    assert_false(lossc_loss_cache_hit(d));
    o.settings = sum;
    assert_int_equal(lossc_compile(ctx, CE, &o, &d), LOSSC_OK);
    assert_true(lossc_loss_cache_hit(d));
    lossc_ctx_free(ctx); /* frees a, b, c, d */
}

static void test_introspection(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    lossc_loss *l;
    assert_int_equal(lossc_ctx_new(&ctx, NULL), LOSSC_OK);
    assert_int_equal(lossc_compile(ctx, CE, NULL, &l), LOSSC_OK);
    assert_string_equal(lossc_loss_name(l), "ce");
    const char *in_names[] = {"logits", "y", "weight", "dloss"};
    assert_int_equal(lossc_num_inputs(l), 4);
    for (int i = 0; i < 4; i++) {
        lossc_info info;
        assert_int_equal(lossc_input_info(l, i, &info), LOSSC_OK);
        assert_string_equal(info.name, in_names[i]);
    }
    lossc_info info;
    lossc_input_info(l, 0, &info);
    assert_int_equal(info.ndim, 2);
    assert_string_equal(info.dims[0], "N");
    assert_string_equal(info.dims[1], "C");
    lossc_input_info(l, 1, &info);
    assert_int_equal(info.dtype.code, kDLInt);
    assert_int_equal(info.dtype.bits, 64);
    /* gradients for the float inputs only */
    const char *out_names[] = {"loss", "grad_logits", "grad_weight"};
    assert_int_equal(lossc_num_outputs(l), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lossc_output_info(l, i, &info), LOSSC_OK);
        assert_string_equal(info.name, out_names[i]);
    }
    assert_string_equal(info.of, "weight");
    lossc_ctx_free(ctx);
}

/* ---- running ---------------------------------------------------------------------------- */

enum { CN = 100003, CC = 10 };

typedef struct ce_data {
    float *x, w[CC], loss, *gx, gw[CC];
    int64_t *y;
    int64_t sx[2], sy[1], sw[1];
} ce_data;

static ce_data *ce_make(uint64_t seed)
{
    ce_data *d = calloc(1, sizeof *d);
    d->x = malloc(sizeof(float) * CN * CC);
    d->gx = malloc(sizeof(float) * CN * CC);
    d->y = malloc(sizeof(int64_t) * CN);
    for (int i = 0; i < CN * CC; i++)
        d->x[i] = frand(&seed) * 3;
    for (int i = 0; i < CN; i++)
        d->y[i] = (int64_t)((frand(&seed) + 2) / 4 * CC) % CC;
    for (int c = 0; c < CC; c++)
        d->w[c] = 0.5f + (float)c / CC;
    d->sx[0] = CN, d->sx[1] = CC, d->sy[0] = CN, d->sw[0] = CC;
    return d;
}

static void ce_free(ce_data *d)
{
    free(d->x);
    free(d->gx);
    free(d->y);
    free(d);
}

static lossc_loss *ce_bound(lossc_ctx *ctx, ce_data *d)
{
    lossc_loss *l;
    assert_int_equal(lossc_compile(ctx, CE, NULL, &l), LOSSC_OK);
    DLTensor tx = tensor(d->x, F32, 2, d->sx), ty = tensor(d->y, I64, 1, d->sy);
    DLTensor tw = tensor(d->w, F32, 1, d->sw), tl = tensor(&d->loss, F32, 0, NULL);
    DLTensor tgx = tensor(d->gx, F32, 2, d->sx), tgw = tensor(d->gw, F32, 1, d->sw);
    assert_int_equal(lossc_bind_input(l, "logits", &tx), LOSSC_OK);
    assert_int_equal(lossc_bind_input(l, "y", &ty), LOSSC_OK);
    assert_int_equal(lossc_bind_input(l, "weight", &tw), LOSSC_OK);
    assert_int_equal(lossc_bind_output(l, "loss", &tl), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(l, "logits", &tgx), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(l, "weight", &tgw), LOSSC_OK);
    return l;
}

/* Weighted cross-entropy of n rows of nc classes in double (w NULL: no
 * weights), the independent reference. */
static double ce_rows_ref(const float *x, const int64_t *y, const float *w, int n, int nc)
{
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * nc;
        double m = r[0], s = 0, wy = w ? w[y[i]] : 1;
        for (int c = 1; c < nc; c++)
            m = fmax(m, r[c]);
        for (int c = 0; c < nc; c++)
            s += exp(r[c] - m);
        num += wy * (m + log(s) - r[y[i]]);
        den += wy;
    }
    return num / den;
}

static double ce_ref(const ce_data *d) { return ce_rows_ref(d->x, d->y, d->w, CN, CC); }

/* Issue #5 item 5: the same bits for 1, 2 and 7 threads. */
static void test_threads_bitwise(void **state)
{
    (void)state;
    ce_data *d[3];
    int threads[3] = {1, 2, 7};
    for (int k = 0; k < 3; k++) {
        d[k] = ce_make(42);
        lossc_ctx *ctx;
        assert_int_equal(lossc_ctx_new(&ctx, &(lossc_ctx_opts){.threads = threads[k]}), LOSSC_OK);
        lossc_loss *l = ce_bound(ctx, d[k]);
        assert_int_equal(lossc_forward_backward(l), LOSSC_OK);
        lossc_ctx_free(ctx);
    }
    assert_close(d[0]->loss, ce_ref(d[0]), 1e-5, 0);
    for (int k = 1; k < 3; k++) {
        assert_memory_equal(&d[k]->loss, &d[0]->loss, sizeof(float));
        assert_memory_equal(d[k]->gx, d[0]->gx, sizeof(float) * CN * CC);
        assert_memory_equal(d[k]->gw, d[0]->gw, sizeof d[0]->gw);
    }
    for (int k = 0; k < 3; k++)
        ce_free(d[k]);
}

static void test_run_time_errors(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    assert_int_equal(lossc_ctx_new(&ctx, &(lossc_ctx_opts){.threads = 2}), LOSSC_OK);
    ce_data *d = ce_make(1);
    lossc_loss *l = ce_bound(ctx, d);
    memset(d->gx, 0xA5, sizeof(float) * CN * CC);
    memset(d->gw, 0xA5, sizeof d->gw);
    memset(&d->loss, 0xA5, sizeof d->loss);
    d->y[3] = 12;
    assert_int_equal(lossc_forward_backward(l), LOSSC_ERR_INDEX);
    assert_has(lossc_loss_error(l), "label out of range: y[3] = 12 is not in [0, 10) (input 'y', dim C, <source>:");
    for (size_t i = 0; i < sizeof(float) * CN * CC; i++)
        if (((unsigned char *)d->gx)[i] != 0xA5)
            fail_msg("grad_logits byte %zu written", i);
    for (size_t i = 0; i < sizeof d->gw; i++)
        assert_int_equal(((unsigned char *)d->gw)[i], 0xA5);
    assert_int_equal(((unsigned char *)&d->loss)[0], 0xA5);
    d->y[3] = -1;
    assert_int_equal(lossc_forward(l), LOSSC_ERR_INDEX);
    assert_has(lossc_loss_error(l), "y[3] = -1");
    d->y[3] = 0;
    /* sizes that disagree */
    int64_t sy[1] = {CN - 1};
    DLTensor ty = tensor(d->y, I64, 1, sy);
    assert_int_equal(lossc_bind_input(l, "y", &ty), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(l), LOSSC_ERR_SHAPE);
    assert_string_equal(lossc_loss_error(l), "input 'y' has N = 100002 but 'logits' has N = 100003");
    assert_int_equal(((unsigned char *)&d->loss)[0], 0xA5);
    ce_free(d);
    /* through the library: the index is computed (ignore_index), the runtime
     * still finds which input holds the bad label */
    lossc_loss *lib;
    assert_int_equal(lossc_compile(ctx, "loss wce(logits: f32[N, C], y: i64[N]) {\n"
                                        "    return cross_entropy(logits, y)\n}\n",
                                   NULL, &lib),
                     LOSSC_OK);
    float x[8] = {0}, lv = 0;
    int64_t y[4] = {0, 1, 0, -3}, sx[2] = {4, 2}, s4[1] = {4};
    DLTensor tx = tensor(x, F32, 2, sx), tly = tensor(y, I64, 1, s4), tl = tensor(&lv, F32, 0, NULL);
    lossc_bind_input(lib, "logits", &tx), lossc_bind_input(lib, "y", &tly);
    lossc_bind_output(lib, "loss", &tl);
    assert_int_equal(lossc_forward(lib), LOSSC_ERR_INDEX);
    assert_has(lossc_loss_error(lib), "y[3] = -3 is not in [0, 2) (input 'y', dim C");
    y[3] = -100; /* ignore_index */
    assert_int_equal(lossc_forward(lib), LOSSC_OK);
    assert_close(lv, log(2.0), 1e-6, 0);
    lossc_ctx_free(ctx);
}

static void test_fixed_dim_and_forward_only(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    assert_int_equal(lossc_ctx_new(&ctx, NULL), LOSSC_OK);
    const char *set[] = {"C=10"};
    lossc_compile_opts o = {.settings = set, .nsettings = 1, .kernels = LOSSC_KERNEL_FORWARD};
    lossc_loss *l;
    assert_int_equal(lossc_compile(ctx, CE, &o, &l), LOSSC_OK);
    lossc_info info;
    lossc_input_info(l, 0, &info);
    assert_int_equal(info.fixed[1], 10);
    float x[12] = {0}, w[4] = {1, 1, 1, 1}, g[12], loss;
    int64_t y[3] = {0, 1, 2}, sx[2] = {3, 4}, sy[1] = {3}, sw[1] = {4};
    DLTensor tx = tensor(x, F32, 2, sx), ty = tensor(y, I64, 1, sy), tw = tensor(w, F32, 1, sw);
    DLTensor tl = tensor(&loss, F32, 0, NULL), tg = tensor(g, F32, 2, sx);
    lossc_bind_input(l, "logits", &tx), lossc_bind_input(l, "y", &ty);
    lossc_bind_input(l, "weight", &tw), lossc_bind_output(l, "loss", &tl);
    assert_int_equal(lossc_forward(l), LOSSC_ERR_SHAPE);
    assert_has(lossc_loss_error(l), "input 'logits' has C = 4 but C is fixed to 10");
    assert_int_equal(lossc_bind_grad(l, "logits", &tg), LOSSC_ERR_ARG);
    assert_has(lossc_loss_error(l), "forward-only");
    assert_int_equal(lossc_forward_backward(l), LOSSC_ERR_ARG);
    lossc_ctx_free(ctx);
}

/* wrt subset, reduction "none" with and without an upstream gradient. */
static void test_wrt_and_dloss(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    assert_int_equal(lossc_ctx_new(&ctx, NULL), LOSSC_OK);
    const char *set[] = {"reduction=none"}, *wrt[] = {"logits"};
    lossc_compile_opts o = {.settings = set, .nsettings = 1, .wrt = wrt, .nwrt = 1};
    lossc_loss *l;
    assert_int_equal(lossc_compile(ctx, CE, &o, &l), LOSSC_OK);
    assert_int_equal(lossc_num_outputs(l), 2); /* loss[N], grad_logits */
    float x[6] = {1, 2, 3, 0, 0, 0}, w[3] = {1, 2, 3}, g[6], nll[2], dl[2] = {10, 100};
    int64_t y[2] = {2, 0}, sx[2] = {2, 3}, sy[1] = {2}, sw[1] = {3};
    DLTensor tx = tensor(x, F32, 2, sx), ty = tensor(y, I64, 1, sy), tw = tensor(w, F32, 1, sw);
    DLTensor tl = tensor(nll, F32, 1, sy), tg = tensor(g, F32, 2, sx), td = tensor(dl, F32, 1, sy);
    lossc_bind_input(l, "logits", &tx), lossc_bind_input(l, "y", &ty);
    lossc_bind_input(l, "weight", &tw), lossc_bind_output(l, "loss", &tl);
    assert_int_equal(lossc_bind_grad(l, "weight", &tg), LOSSC_ERR_ARG);
    assert_has(lossc_loss_error(l), "not differentiated with respect to 'weight'");
    assert_int_equal(lossc_bind_grad(l, "logits", &tg), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(l), LOSSC_OK);
    double lse0 = log(exp(1.0) + exp(2.0) + exp(3.0)), lse1 = log(3.0);
    assert_close(nll[0], 3 * (lse0 - 3), 1e-6, 0);
    assert_close(nll[1], 1 * (lse1 - 0), 1e-6, 0);
    /* d nll[1] / d x[1, 0] = w (softmax - 1) = 1/3 - 1 */
    assert_close(g[3], 1.0 / 3 - 1, 1e-6, 0);
    assert_int_equal(lossc_bind_input(l, "dloss", &td), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(l), LOSSC_OK);
    assert_close(g[3], 100 * (1.0 / 3 - 1), 1e-6, 0);
    assert_close(g[2], 10 * 3 * (exp(3.0 - lse0) - 1), 1e-5, 0);
    lossc_ctx_free(ctx);
}

/* Two losses of one context run from two threads at once (they meet at the
 * pool; one runs its chunks inline): the same bits as alone. */
typedef struct racer {
    lossc_loss *l;
    int failures;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 10; i++)
        r->failures += lossc_forward_backward(r->l) != LOSSC_OK;
    return NULL;
}

static void test_concurrent_losses(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    assert_int_equal(lossc_ctx_new(&ctx, &(lossc_ctx_opts){.threads = 2}), LOSSC_OK);
    ce_data *a = ce_make(3), *b = ce_make(4), *ref = ce_make(3);
    lossc_loss *la = ce_bound(ctx, a), *lb = ce_bound(ctx, b), *lr = ce_bound(ctx, ref);
    assert_int_equal(lossc_forward_backward(lr), LOSSC_OK);
    racer ra = {la, 0}, rb = {lb, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &ra);
    pthread_create(&tb, NULL, race, &rb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(ra.failures + rb.failures, 0);
    assert_memory_equal(&a->loss, &ref->loss, sizeof(float));
    assert_memory_equal(a->gx, ref->gx, sizeof(float) * CN * CC);
    assert_close(b->loss, ce_ref(b), 1e-5, 0);
    ce_free(a), ce_free(b), ce_free(ref);
    lossc_ctx_free(ctx);
}

/* Rows padded to C + 3 (a slice of a wider array): the same bits as dense. */
static void test_strided(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    assert_int_equal(lossc_ctx_new(&ctx, &(lossc_ctx_opts){.threads = 2}), LOSSC_OK);
    ce_data *d = ce_make(5);
    lossc_loss *l = ce_bound(ctx, d);
    assert_int_equal(lossc_forward_backward(l), LOSSC_OK);
    enum { LD = CC + 3 };
    float *xp = malloc(sizeof(float) * CN * LD), *gp = malloc(sizeof(float) * CN * LD), loss;
    for (int i = 0; i < CN; i++)
        for (int c = 0; c < LD; c++) {
            xp[i * LD + c] = c < CC ? d->x[i * CC + c] : NAN;
            gp[i * LD + c] = -1;
        }
    int64_t strides[2] = {LD, 1};
    DLTensor tx = tensor(xp, F32, 2, d->sx), tg = tensor(gp, F32, 2, d->sx);
    DLTensor tl = tensor(&loss, F32, 0, NULL);
    tx.strides = strides, tg.strides = strides;
    assert_int_equal(lossc_bind_input(l, "logits", &tx), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(l, "logits", &tg), LOSSC_OK);
    assert_int_equal(lossc_bind_output(l, "loss", &tl), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(l), LOSSC_OK);
    assert_memory_equal(&loss, &d->loss, sizeof loss);
    for (int i = 0; i < CN; i++) {
        assert_memory_equal(&gp[i * LD], &d->gx[i * CC], sizeof(float) * CC);
        for (int c = CC; c < LD; c++)
            assert_true(gp[i * LD + c] == -1); /* the padding is not written */
    }
    free(xp);
    free(gp);
    ce_free(d);
    lossc_ctx_free(ctx);
}

static void test_gradcheck(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    assert_int_equal(lossc_ctx_new(&ctx, NULL), LOSSC_OK);
    lossc_loss *l;
    assert_int_equal(lossc_compile(ctx, HUBER, NULL, &l), LOSSC_OK);
    enum { M = 37 };
    float p[M], t[M];
    uint64_t seed = 9;
    for (int i = 0; i < M; i++)
        p[i] = frand(&seed), t[i] = frand(&seed);
    int64_t n[1] = {M};
    DLTensor tp = tensor(p, F32, 1, n), tt = tensor(t, F32, 1, n);
    lossc_bind_input(l, "pred", &tp), lossc_bind_input(l, "target", &tt);
    const lossc_gradcheck_result *r;
    int nr, ok;
    assert_int_equal(lossc_gradcheck(l, -1, 1, 0, -1, &r, &nr, &ok), LOSSC_OK);
    assert_true(ok);
    assert_int_equal(nr, 3); /* pred, target, delta */
    assert_string_equal(r[2].input, "delta");
    assert_int_equal(r[0].fd_checked, M);
    lossc_ctx_free(ctx);
}

/* A loss constant in its input (a sum of softmax rows): the reference
 * gradient is 0 to f64 rounding, the f32 kernel's a few ulps of its terms,
 * which the check must accept (the default tolerance, rtol times the largest
 * reference element, would demand f64's noise). A loss with small but
 * nonzero gradients keeps the relative check (test_gradcheck in
 * test_rt_run.c: a 1% error fails). */
static void test_gradcheck_constant(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    assert_int_equal(lossc_ctx_new(&ctx, NULL), LOSSC_OK);
    lossc_loss *l;
    static const char *src = "loss k(x: f32[N, C]) { return sum(softmax(x * x, axis=C)) }";
    assert_int_equal(lossc_compile(ctx, src, NULL, &l), LOSSC_OK);
    enum { N = 13, C = 7 };
    float x[N * C];
    uint64_t seed = 3;
    for (int i = 0; i < N * C; i++)
        x[i] = 3 * frand(&seed);
    int64_t n[2] = {N, C};
    DLTensor tx = tensor(x, F32, 2, n);
    assert_int_equal(lossc_bind_input(l, "x", &tx), LOSSC_OK);
    const lossc_gradcheck_result *r;
    int nr, ok;
    assert_int_equal(lossc_gradcheck(l, -1, 1, 0, -1, &r, &nr, &ok), LOSSC_OK);
    assert_int_equal(nr, 1);
    assert_true(r[0].ref_max_abs > 0); /* the kernel's rounding is there... */
    assert_true(r[0].ref_max_abs < 64 * FLT_EPSILON * N / (N * C)); /* ...and tiny */
    assert_true(ok);

    /* A loss that is 0 everywhere, each term 0.7 - 0.7: the gradient of s
     * sums 19 terms 1/19 - 1/19 in an order of its own in each of them */
    static const char *zero =
        "loss z(v: f64[N], s: f64 = 0.7) {\n"
        "    return mean(clamp(s, min=-1, max=1) - max(s, log(1 + v * v)))\n}\n";
    lossc_loss *lz;
    assert_int_equal(lossc_compile(ctx, zero, NULL, &lz), LOSSC_OK);
    double v[19];
    for (int i = 0; i < 19; i++)
        v[i] = 0.5 * frand(&seed);
    int64_t n19[1] = {19};
    DLTensor tv = tensor(v, F64, 1, n19);
    assert_int_equal(lossc_bind_input(lz, "v", &tv), LOSSC_OK);
    assert_int_equal(lossc_gradcheck(lz, -1, 1, 0, -1, &r, &nr, &ok), LOSSC_OK);
    assert_true(ok);
    lossc_ctx_free(ctx);
}

/* ---- versions compiled on demand ------------------------------------------------------- */

/* Cross-entropy's sweep has a body for rows of many classes (compiled by
 * lossc_compile) and one for rows of a few (compiled by the first run that
 * has them): the loss's compile time counts it, once; a failed compile is an
 * error of the run that writes nothing. */
static void test_versions_on_demand(void **state)
{
    (void)state;
    unsetenv("LOSSC_CG_ROWS"); /* forcing a body (developers) compiles only that one */
    enum { N = 50, MANY = 40, FEW = 5 };
    static const char *src = "loss ce(logits: f32[N, C], y: i64[N]) {\n"
                             "    return cross_entropy(logits, y)\n}\n";
    float x[N * MANY], g[N * MANY], lv;
    int64_t y[N];
    uint64_t seed = 3;
    for (int i = 0; i < N * MANY; i++)
        x[i] = frand(&seed) * 2;
    for (int i = 0; i < N; i++)
        y[i] = i % FEW;
    for (int fail = 0; fail < 2; fail++) {
        lossc_ctx *ctx;
        assert_int_equal(lossc_ctx_new(&ctx, NULL), LOSSC_OK);
        lossc_loss *l;
        lossc_compile_opts o = {.kernels = LOSSC_KERNEL_BACKWARD};
        assert_int_equal(lossc_compile(ctx, src, &o, &l), LOSSC_OK);
        double ms = lossc_loss_compile_ms(l), total, total0;
        lossc_ctx_cache_stats(ctx, NULL, NULL, &total0);
        int64_t sy[1] = {N}, sx[2] = {N, MANY};
        DLTensor tx = tensor(x, F32, 2, sx), ty = tensor(y, I64, 1, sy);
        DLTensor tl = tensor(&lv, F32, 0, NULL), tg = tensor(g, F32, 2, sx);
        lossc_bind_input(l, "y", &ty), lossc_bind_output(l, "loss", &tl);
        lossc_bind_input(l, "logits", &tx), lossc_bind_grad(l, "logits", &tg);
        if (!fail) {
            assert_int_equal(lossc_forward_backward(l), LOSSC_OK);
            assert_close(lv, ce_rows_ref(x, y, NULL, N, MANY), 1e-5, 0);
            assert_true(lossc_loss_compile_ms(l) == ms); /* compiled with the kernel */
        }
        sx[1] = FEW;
        tx = tensor(x, F32, 2, sx), tg = tensor(g, F32, 2, sx);
        lossc_bind_input(l, "logits", &tx), lossc_bind_grad(l, "logits", &tg);
        lv = 12345;
        memset(g, 0xA5, sizeof g);
        if (fail) {
            setenv("LOSSC_CG_LAZY_FAIL", "1", 1);
            assert_int_equal(lossc_forward_backward(l), LOSSC_ERR_COMPILE);
            unsetenv("LOSSC_CG_LAZY_FAIL");
            assert_has(lossc_loss_error(l), "LOSSC_CG_LAZY_FAIL");
            assert_true(lv == 12345);
            for (size_t i = 0; i < sizeof g; i++)
                assert_int_equal(((unsigned char *)g)[i], 0xA5);
        }
        assert_int_equal(lossc_forward_backward(l), LOSSC_OK);
        assert_close(lv, ce_rows_ref(x, y, NULL, N, FEW), 1e-5, 0);
        double ms2 = lossc_loss_compile_ms(l);
        assert_true(ms2 > ms);
        lossc_ctx_cache_stats(ctx, NULL, NULL, &total);
        assert_close(total - total0, ms2 - ms, 0.01, 0);
        assert_int_equal(lossc_forward_backward(l), LOSSC_OK);
        assert_true(lossc_loss_compile_ms(l) == ms2); /* once */
        lossc_ctx_free(ctx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_introspection),
        cmocka_unit_test(test_threads_bitwise),
        cmocka_unit_test(test_run_time_errors),
        cmocka_unit_test(test_fixed_dim_and_forward_only),
        cmocka_unit_test(test_wrt_and_dloss),
        cmocka_unit_test(test_concurrent_losses),
        cmocka_unit_test(test_strided),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_gradcheck_constant),
        cmocka_unit_test(test_versions_on_demand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
