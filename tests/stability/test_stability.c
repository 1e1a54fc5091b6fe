/* test_stability.c - the textbook formulas users write, compiled to f32
 * kernels and run at extreme inputs (|x| up to 1e4) where evaluating them
 * as written gives inf or NaN (or, for log(1 + x) and exp(x) - 1, loses every
 * digit). lossc's stabilize pass must turn each into a form whose loss AND
 * gradient match the true value, computed here independently in double with
 * stable formulas.
 *
 * Tolerance: f32 kernels against exact doubles, 2e-5 relative + 1e-6
 * absolute per element (a few ulp of f32 plus the reductions' rounding). */
#include "testutil.h"

#include "runtime/lossc.h"

#include <stdlib.h>

#define RTOL 2e-5
#define ATOL 1e-6

static const float XS[] = {-1e4f, -3000.5f, -100.f, -30.f, -17.5f, -1.f, -1e-10f, 0.f,
                           1e-10f, 1e-3f, 0.75f, 15.f, 88.f, 89.f, 200.f, 1e4f};
#define NX ((int64_t)(sizeof XS / sizeof XS[0]))

static lossc_ctx *ctx;

static DLTensor tensor(void *data, int ndim, int64_t *shape)
{
    DLTensor t = {0};
    t.data = data;
    t.device.device_type = kDLCPU;
    t.ndim = ndim;
    t.dtype = (DLDataType){kDLFloat, 32, 1};
    t.shape = shape;
    return t;
}

/* Compile `src` (one loss of x: f32[...] and maybe y), run forward+backward
 * on x (and y), return the loss and write d loss / d x into gx. */
static double run(const char *src, float *x, int ndim, int64_t *shape, float *y, float *gx)
{
    lossc_loss *l;
    const char *wrt[1] = {"x"};
    lossc_compile_opts o = {.filename = "stability.loss", .wrt = wrt, .nwrt = 1};
    if (lossc_compile(ctx, src, &o, &l) != LOSSC_OK)
        fail_msg("compile: %s", lossc_ctx_error(ctx));
    float loss = NAN;
    DLTensor tx = tensor(x, ndim, shape), tg = tensor(gx, ndim, shape);
    DLTensor ty = tensor(y, ndim, shape), tl = tensor(&loss, 0, NULL);
    lossc_status st = lossc_bind_input(l, "x", &tx);
    if (!st && y)
        st = lossc_bind_input(l, "y", &ty);
    if (!st)
        st = lossc_bind_output(l, "loss", &tl);
    if (!st)
        st = lossc_bind_grad(l, "x", &tg);
    if (!st)
        st = lossc_forward_backward(l);
    if (st)
        fail_msg("run: %s", lossc_loss_error(l));
    lossc_loss_free(l);
    return loss;
}

/* Stable references in double. */
static double softplus(double x) { return log1p(exp(-fabs(x))) + fmax(x, 0); }
static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

typedef double (*fn1)(double);

/* sum over XS of f(x), with gradient df: checks the kernel on every element. */
static void check_elementwise(const char *src, fn1 f, fn1 df)
{
    float x[NX], g[NX];
    int64_t n = NX;
    memcpy(x, XS, sizeof x);
    double want = 0;
    for (int i = 0; i < NX; i++)
        want += f(x[i]);
    double got = run(src, x, 1, &n, NULL, g);
    assert_close(got, want, RTOL, ATOL * NX);
    for (int i = 0; i < NX; i++) {
        if (!tu_close(g[i], df(x[i]), RTOL, ATOL))
            fail_msg("%s\n  d/dx at x = %g: got %.9g, want %.9g", src, x[i], g[i], df(x[i]));
    }
}

static double log_sigmoid(double x) { return -softplus(-x); }
static double d_log_sigmoid(double x) { return sigmoid(-x); }
static double log_one_minus_sigmoid(double x) { return -softplus(x); }
static double d_log_one_minus_sigmoid(double x) { return -sigmoid(x); }
static double d_sigmoid(double x) { return sigmoid(x) * sigmoid(-x); }

static void test_log_sigmoid(void **state)
{
    (void)state;
    check_elementwise("loss t(x: f32[N]) { return sum(log(sigmoid(x))) }", log_sigmoid,
                      d_log_sigmoid);
}

static void test_log_one_minus_sigmoid(void **state)
{
    (void)state;
    check_elementwise("loss t(x: f32[N]) { return sum(log(1 - sigmoid(x))) }",
                      log_one_minus_sigmoid, d_log_one_minus_sigmoid);
}

static void test_exp_over_one_plus_exp(void **state)
{
    (void)state;
    check_elementwise("loss t(x: f32[N]) { return sum(exp(x) / (1 + exp(x))) }", sigmoid,
                      d_sigmoid);
}

/* log(1 + x) and exp(x) - 1 at tiny x: as written in f32, 1 + 1e-10 == 1, so
 * the result would be 0 instead of 1e-10. Checked elementwise through an
 * extra output so that tiny values are not drowned in a sum. */
static void check_values(const char *expr, const float *xs, int k, fn1 f, fn1 df);

static void check_tiny(const char *expr, fn1 f, fn1 df)
{
    static const float tiny[] = {1e-10f, -1e-10f, 3e-8f, -2.5e-7f, 1e-5f, 0.5f, 2.f};
    check_values(expr, tiny, sizeof tiny / sizeof tiny[0], f, df);
}

/* expr and its derivative at each of xs (at most 32), each within RTOL. */
static void check_values(const char *expr, const float *xs, int k, fn1 f, fn1 df)
{
    char src[256];
    snprintf(src, sizeof src,
             "loss t(x: f32[N]) {\n    out v = %s\n    return sum(%s)\n}\n", expr, expr);
    lossc_loss *l;
    lossc_compile_opts o = {.filename = "tiny.loss"};
    if (lossc_compile(ctx, src, &o, &l) != LOSSC_OK)
        fail_msg("compile: %s", lossc_ctx_error(ctx));
    float x[32], v[32], g[32], loss;
    assert_true(k <= 32);
    memcpy(x, xs, sizeof(float) * (size_t)k);
    int64_t n = k;
    DLTensor tx = tensor(x, 1, &n), tv = tensor(v, 1, &n), tg = tensor(g, 1, &n);
    DLTensor tl = tensor(&loss, 0, NULL);
    lossc_status st = lossc_bind_input(l, "x", &tx);
    if (!st) st = lossc_bind_output(l, "v", &tv);
    if (!st) st = lossc_bind_output(l, "loss", &tl);
    if (!st) st = lossc_bind_grad(l, "x", &tg);
    if (!st) st = lossc_forward_backward(l);
    if (st)
        fail_msg("run: %s", lossc_loss_error(l));
    for (int i = 0; i < k; i++) {
        if (!tu_close(v[i], f(x[i]), RTOL, 0))
            fail_msg("%s at x = %g: got %.9g, want %.9g", expr, x[i], v[i], f(x[i]));
        if (!tu_close(g[i], df(x[i]), RTOL, 0))
            fail_msg("d/dx %s at x = %g: got %.9g, want %.9g", expr, x[i], g[i], df(x[i]));
    }
    lossc_loss_free(l);
}

static double d_log1p(double x) { return 1 / (1 + x); }

static void test_log_one_plus_x(void **state)
{
    (void)state;
    check_tiny("log(1 + x)", log1p, d_log1p);
    check_tiny("log(x + 1)", log1p, d_log1p);
}

static void test_exp_minus_one(void **state)
{
    (void)state;
    check_tiny("exp(x) - 1", expm1, exp);
}

/* Textbook binary cross-entropy on sigmoid probabilities, mean over N. */
/* tanh'(x) = 1 - tanh(x)^2 cancels where tanh rounds near +-1: in f32 it
 * is 0 beyond |x| = 9.01 and a few ulps of 1 before that, while the true
 * derivative, 4 e^-2|x| / (1 + e^-2|x|)^2, stays a normal float up to
 * |x| = 43. */
static double d_tanh(double x)
{
    double e = exp(-2 * fabs(x));
    return 4 * e / ((1 + e) * (1 + e));
}

static void test_tanh_saturated(void **state)
{
    (void)state;
    static const float xs[] = {-43.f, -20.f, -12.f, -9.f, -6.f, -0.5f, -1e-10f, 0.f,
                               1e-10f, 0.5f, 6.f, 9.f, 12.f, 20.f, 43.f};
    check_values("tanh(x)", xs, sizeof xs / sizeof xs[0], tanh, d_tanh);
}

static void test_textbook_bce(void **state)
{
    (void)state;
    const char *src = "loss t(x: f32[N], y: f32[N]) {\n"
                      "    return mean(-(y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))))\n"
                      "}\n";
    float x[NX], y[NX], g[NX];
    int64_t n = NX;
    memcpy(x, XS, sizeof x);
    double want = 0;
    for (int i = 0; i < NX; i++) {
        y[i] = (float)((i * 7) % 5) / 4; /* 0, 0.75, 0.5, 0.25, 1, ... */
        want += softplus(x[i]) - x[i] * (double)y[i];
    }
    want /= NX;
    assert_close(run(src, x, 1, &n, y, g), want, RTOL, ATOL);
    for (int i = 0; i < NX; i++) {
        double d = (sigmoid(x[i]) - y[i]) / NX;
        if (!tu_close(g[i], d, RTOL, ATOL))
            fail_msg("BCE d/dx at x = %g, y = %g: got %.9g, want %.9g", x[i], y[i], g[i], d);
    }
}

/* A focal loss written from the paper: -alpha_t (1 - p_t)^gamma log(p_t). */
static void test_textbook_focal(void **state)
{
    (void)state;
    const char *src =
        "loss t(x: f32[N], y: f32[N]) {\n"
        "    let p = sigmoid(x)\n"
        "    let pt = where(y > 0.5, p, 1 - p)\n"
        "    return sum(-0.25 * (1 - pt)^2 * log(pt))\n"
        "}\n";
    float x[NX], y[NX], g[NX];
    int64_t n = NX;
    memcpy(x, XS, sizeof x);
    double want = 0;
    for (int i = 0; i < NX; i++) {
        y[i] = (float)(i % 2);
        double z = y[i] > 0.5 ? x[i] : -x[i]; /* p_t = sigmoid(z) */
        double q = sigmoid(-z);                /* 1 - p_t */
        want += 0.25 * q * q * softplus(-z);
    }
    assert_close(run(src, x, 1, &n, y, g), want, RTOL, ATOL * NX);
    for (int i = 0; i < NX; i++) {
        double s = y[i] > 0.5 ? 1 : -1, z = s * x[i];
        double pt = sigmoid(z), q = sigmoid(-z);
        /* d/dz [0.25 q^2 softplus(-z)] with dq/dz = -pt q, d softplus(-z)/dz = -q */
        double d = s * 0.25 * (2 * q * (-pt * q) * softplus(-z) - q * q * q);
        if (!tu_close(g[i], d, RTOL, ATOL))
            fail_msg("focal d/dx at x = %g: got %.9g, want %.9g", x[i], g[i], d);
    }
}

/* log(softmax(x)) and log(sum(exp(x))) over rows with entries up to 1e4. */
/* logsumexp of a row of c, with the max shift. */
static double row_lse(const float *x, int c)
{
    double m = -INFINITY, s = 0;
    for (int k = 0; k < c; k++)
        m = fmax(m, x[k]);
    for (int k = 0; k < c; k++)
        s += exp(x[k] - m);
    return m + log(s);
}

static void test_log_softmax_and_logsumexp(void **state)
{
    (void)state;
    enum { R = 4, C = 4 };
    float x[R * C] = {1e4f, -1e4f, 0, 3, 90, 89, 88, -5, -1e4f, -9999, -9998.5f, -1e4f,
                      0.5f, 0.25f, 0, -0.25f};
    float g[R * C];
    int64_t shape[2] = {R, C};
    double lse[R], want_lsm = 0, want_lse = 0;
    for (int r = 0; r < R; r++) {
        lse[r] = row_lse(&x[r * C], C);
        want_lse += lse[r];
        for (int c = 0; c < C; c++)
            want_lsm += x[r * C + c] - lse[r];
    }
    double got = run("loss t(x: f32[N, C]) { return sum(log(softmax(x, axis=C))) }", x, 2,
                     shape, NULL, g);
    assert_close(got, want_lsm, RTOL, 1e-3);
    for (int i = 0; i < R * C; i++) {
        double d = 1 - C * exp(x[i] - lse[i / C]);
        if (!tu_close(g[i], d, RTOL, ATOL))
            fail_msg("log_softmax d/dx[%d]: got %.9g, want %.9g", i, g[i], d);
    }
    got = run("loss t(x: f32[N, C]) { return sum(log(sum(exp(x), axis=C))) }", x, 2, shape,
              NULL, g);
    assert_close(got, want_lse, RTOL, 1e-3);
    for (int i = 0; i < R * C; i++) {
        double d = exp(x[i] - lse[i / C]);
        if (!tu_close(g[i], d, RTOL, ATOL))
            fail_msg("logsumexp d/dx[%d]: got %.9g, want %.9g", i, g[i], d);
    }
}

/* A row's sum over a shifted value, sum[C]((x - lse(x)) * q), as the
 * gradient of mean(log1p(log_softmax(x)^2)) has it (q = 2 / (1 + l^2) / n
 * varies along the row): with logits near 1000 the
 * shifted values are O(1) but x is not, so the sum must not be taken as
 * sum(x q) - lse * sum(q), which cancels away ~1000 * C ulps. */
static void test_shifted_row_sum(void **state)
{
    (void)state;
    enum { R = 4, C = 10 };
    float x[R * C], g[R * C];
    for (int i = 0; i < R * C; i++)
        x[i] = 1000 + (float)((i * 7919) % 23) / 8;
    int64_t shape[2] = {R, C};
    double want = 0, lsm[R * C], p[R * C];
    for (int r = 0; r < R; r++) {
        double lse = row_lse(&x[r * C], C);
        for (int c = 0; c < C; c++) {
            lsm[r * C + c] = x[r * C + c] - lse;
            p[r * C + c] = exp(lsm[r * C + c]);
            want += log1p(lsm[r * C + c] * lsm[r * C + c]) / (R * C);
        }
    }
    double got = run("loss t(x: f32[N, C]) {\n"
                     "    let l = log_softmax(x, axis=C)\n    return mean(log1p(l * l))\n}\n",
                     x, 2, shape, NULL, g);
    assert_close(got, want, RTOL, 0);
    for (int r = 0; r < R; r++) {
        double q[C], sum = 0;
        for (int c = 0; c < C; c++) {
            double l = lsm[r * C + c];
            q[c] = 2 * l / (1 + l * l) / (R * C);
            sum += q[c];
        }
        for (int c = 0; c < C; c++) {
            int i = r * C + c;
            double d = q[c] - p[i] * sum;
            if (!tu_close(g[i], d, RTOL, 1e-7))
                fail_msg("d/dx[%d] (x = %g): got %.9g, want %.9g", i, x[i], g[i], d);
        }
    }
}

static int setup(void **state)
{
    (void)state;
    return lossc_ctx_new(&ctx, NULL) == LOSSC_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lossc_ctx_free(ctx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_sigmoid),
        cmocka_unit_test(test_log_one_minus_sigmoid),
        cmocka_unit_test(test_exp_over_one_plus_exp),
        cmocka_unit_test(test_log_one_plus_x),
        cmocka_unit_test(test_exp_minus_one),
        cmocka_unit_test(test_tanh_saturated),
        cmocka_unit_test(test_textbook_bce),
        cmocka_unit_test(test_textbook_focal),
        cmocka_unit_test(test_log_softmax_and_logsumexp),
        cmocka_unit_test(test_shifted_row_sum),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
