/* test_stabilize.c - pass_stabilize: golden IR for each rewrite, and values at
 * extreme inputs (|x| up to 1e4) where the textbook formula evaluated by the
 * f64 interpreter is inf or NaN and the rewritten graph is finite and right,
 * gradients included (through the whole pipeline).
 *
 * Tolerance for values: 1e-12 relative (both sides are f64 evaluations of
 * the same real function; the reference is the closed form in C). The f32
 * kernel-level versions of these checks belong with codegen: the graphs
 * built here (bce_textbook, focal_textbook) are meant to be reused there.
 */
#include "passtest.h"

#include <stdlib.h>

/* ---- golden IR ---------------------------------------------------------------------- */

static char *body(const ir_graph *r)
{
    char *text = pt_print(r), *p = text;
    while (!strncmp(p, "graph ", 6) || !strncmp(p, "dims ", 5) || !strncmp(p, "input ", 6))
        p = strchr(p, '\n') + 1;
    char *b = sup_strdup(p);
    sup_free(text);
    return b;
}

static void golden(pt *t, ir_node *e, const char *want)
{
    assert_non_null(e);
    ir_output_add(t->g, "r", IR_OUT_EXTRA, -1, e);
    ir_graph *r = pass_stabilize(t->g);
    strbuf why;
    sb_init(&why);
    if (!ir_verify(r, &why))
        fail_msg("the result does not verify: %s", sb_str(&why));
    sb_free(&why);
    char *got = body(r);
    assert_text_equal(got, want);
    sup_free(got);
    ir_graph_free(r);
    ir_graph_free(t->g);
}

static ir_node *sigm(pt *t, ir_node *x) { return U(t, SIGMOID, x); }

static void test_log_sigmoid(void **state)
{
    (void)state;
    pt t = pt_new();
    golden(&t, U(&t, LOG, sigm(&t, t.x)),
           "%5 = neg %0 : f32[N, C]\n"
           "%6 = softplus %5 : f32[N, C]\n"
           "%7 = neg %6 : f32[N, C]\n"
           "output r = %7\n");
    t = pt_new(); /* log(1 - sigmoid(x)) -> -softplus(x) */
    golden(&t, U(&t, LOG, B(&t, SUB, K(&t, 1), sigm(&t, t.x))),
           "%5 = softplus %0 : f32[N, C]\n"
           "%6 = neg %5 : f32[N, C]\n"
           "output r = %6\n");
    t = pt_new(); /* 1 - sigmoid(x) alone -> sigmoid(-x) */
    golden(&t, B(&t, SUB, K(&t, 1), sigm(&t, t.x)),
           "%5 = neg %0 : f32[N, C]\n"
           "%6 = sigmoid %5 : f32[N, C]\n"
           "output r = %6\n");
}

static void test_log1p_expm1(void **state)
{
    (void)state;
    pt t = pt_new();
    golden(&t, U(&t, LOG, B(&t, ADD, K(&t, 1), t.x)),
           "%5 = log1p %0 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new();
    golden(&t, U(&t, LOG, B(&t, ADD, t.x, K(&t, 1))),
           "%5 = log1p %0 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new(); /* log(1 - x) -> log1p(-x) */
    golden(&t, U(&t, LOG, B(&t, SUB, K(&t, 1), t.x)),
           "%5 = neg %0 : f32[N, C]\n"
           "%6 = log1p %5 : f32[N, C]\n"
           "output r = %6\n");
    t = pt_new(); /* log(1 + exp(x)) -> softplus(x) */
    golden(&t, U(&t, LOG, B(&t, ADD, K(&t, 1), U(&t, EXP, t.x))),
           "%5 = softplus %0 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new();
    golden(&t, B(&t, SUB, U(&t, EXP, t.x), K(&t, 1)),
           "%5 = expm1 %0 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new();
    golden(&t, B(&t, ADD, U(&t, EXP, t.x), K(&t, -1)),
           "%5 = expm1 %0 : f32[N, C]\n"
           "output r = %5\n");
}

static void test_where_branches(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *c = B(&t, GT, t.w, K(&t, 0.5));
    ir_node *p = sigm(&t, t.x);
    ir_node *q = W(&t, c, p, B(&t, SUB, K(&t, 1), p));
    ir_node *l = U(&t, LOG, q);
    golden(&t, B(&t, MUL, U(&t, LOG, B(&t, SUB, K(&t, 1), q)), l),
           "%5 = const 0.5 : f32\n"
           "%6 = gt %1, %5 : bool[C]\n"
           "%7 = neg %0 : f32[N, C]\n"
           "%8 = softplus %7 : f32[N, C]\n"
           "%9 = neg %8 : f32[N, C]\n"
           "%10 = softplus %0 : f32[N, C]\n"
           "%11 = neg %10 : f32[N, C]\n"
           "%12 = where %6, %9, %11 : f32[N, C]\n" /* log(q) */
           "%13 = where %6, %11, %9 : f32[N, C]\n" /* log(1 - q) */
           "%14 = mul %13, %12 : f32[N, C]\n"
           "output r = %14\n");
}

static void test_sigmoid_forms(void **state)
{
    (void)state;
    pt t = pt_new(); /* exp(x) / (1 + exp(x)) */
    ir_node *e = U(&t, EXP, t.x);
    golden(&t, B(&t, DIV, e, B(&t, ADD, K(&t, 1), e)),
           "%5 = sigmoid %0 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new(); /* 1 / (1 + exp(-x)) */
    ir_node *den = B(&t, ADD, K(&t, 1), U(&t, EXP, U(&t, NEG, t.x)));
    golden(&t, B(&t, DIV, K(&t, 1), den),
           "%5 = sigmoid %0 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new(); /* ... and then log of it */
    den = B(&t, ADD, K(&t, 1), U(&t, EXP, U(&t, NEG, t.x)));
    golden(&t, U(&t, LOG, B(&t, DIV, K(&t, 1), den)),
           "%5 = neg %0 : f32[N, C]\n"
           "%6 = softplus %5 : f32[N, C]\n"
           "%7 = neg %6 : f32[N, C]\n"
           "output r = %7\n");
}

/* softmax written out, its log, and cross-entropy from it */
static ir_node *softmax_naive(pt *t, ir_node *x)
{
    ir_node *e = U(t, EXP, x);
    return B(t, DIV, e, R(t, SUM, e, BIT(t->C)));
}

static void test_log_softmax_and_lse(void **state)
{
    (void)state;
    pt t = pt_new();
    golden(&t, U(&t, LOG, R(&t, SUM, U(&t, EXP, t.x), BIT(t.C))),
           "%5 = logsumexp[C] %0 : f32[N]\n"
           "output r = %5\n");
    t = pt_new();
    golden(&t, U(&t, LOG, softmax_naive(&t, t.x)),
           "%5 = logsumexp[C] %0 : f32[N]\n"
           "%6 = sub %0, %5 : f32[N, C]\n"
           "output r = %6\n");
    t = pt_new(); /* -log(softmax(x)[n, y[n]]): the log moves inside the gather */
    ir_node *p = ir_gather(t.g, softmax_naive(&t, t.x), BIT(t.C), &t.y, PT_L);
    golden(&t, U(&t, NEG, U(&t, LOG, p)),
           "%5 = logsumexp[C] %0 : f32[N]\n"
           "%6 = sub %0, %5 : f32[N, C]\n"
           "%7 = gather[C] %6, %4 : f32[N]\n"
           "%8 = neg %7 : f32[N]\n"
           "output r = %8\n");
    t = pt_new(); /* a log of a gather with no stable form stays as it is */
    p = ir_gather(t.g, t.x, BIT(t.C), &t.y, PT_L);
    golden(&t, U(&t, LOG, p),
           "%5 = gather[C] %0, %4 : f32[N]\n"
           "%6 = log %5 : f32[N]\n"
           "output r = %6\n");
}

/* ---- values at extreme inputs -------------------------------------------------------- */

/* -(y log(sigmoid(x)) + (1 - y) log(1 - sigmoid(x))), elementwise on x: [N, C]
 * with the label w: [C] (0 or 1). */
static ir_node *bce_textbook(pt *t)
{
    ir_node *p = sigm(t, t->x);
    ir_node *a = B(t, MUL, t->w, U(t, LOG, p));
    ir_node *q = B(t, SUB, K(t, 1), t->w);
    ir_node *b = B(t, MUL, q, U(t, LOG, B(t, SUB, K(t, 1), p)));
    return U(t, NEG, B(t, ADD, a, b));
}

static double bce_ref(double x, double y) { return fmax(x, 0) - x * y + log1p(exp(-fabs(x))); }

/* Binary focal loss, alpha = 0.25, gamma = 2, written from the paper. */
static ir_node *focal_textbook(pt *t)
{
    ir_node *p = sigm(t, t->x);
    ir_node *q = B(t, SUB, K(t, 1), p);
    ir_node *pos = B(t, MUL, B(t, MUL, K(t, 0.25), B(t, POW, q, K(t, 2))), U(t, LOG, p));
    ir_node *neg = B(t, MUL, B(t, MUL, K(t, 0.75), B(t, POW, p, K(t, 2))), U(t, LOG, q));
    ir_node *l = B(t, ADD, B(t, MUL, t->w, pos), B(t, MUL, B(t, SUB, K(t, 1), t->w), neg));
    return U(t, NEG, l);
}

/* The same focal loss, the way it is often written: p_t by a where. */
static ir_node *focal_where(pt *t)
{
    ir_node *p = sigm(t, t->x);
    ir_node *pos = B(t, GT, t->w, K(t, 0.5));
    ir_node *pt_ = W(t, pos, p, B(t, SUB, K(t, 1), p));
    ir_node *at = W(t, pos, K(t, 0.25), K(t, 0.75));
    ir_node *mod = B(t, POW, B(t, SUB, K(t, 1), pt_), K(t, 2));
    return U(t, NEG, B(t, MUL, B(t, MUL, at, mod), U(t, LOG, pt_)));
}

static double softplus_ref(double x) { return fmax(x, 0) + log1p(exp(-fabs(x))); }
static double sigmoid_ref(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

static double focal_ref(double x, double y)
{
    double p = sigmoid_ref(x), q = sigmoid_ref(-x);
    double logp = -softplus_ref(-x), logq = -softplus_ref(x);
    return -(y * 0.25 * q * q * logp + (1 - y) * 0.75 * p * p * logq);
}

/* x = [[-1e4, -1e3, -1], [1, 50, 1e4]], labels w = [0, 1, 1] */
static const double X[6] = {-1e4, -1e3, -1, 1, 50, 1e4}, Y[3] = {0, 1, 1};
static const int64_t SIZES[2] = {2, 3};

/* Evaluate output 0 of g at X, Y (plus dloss = ones if g has it). */
static double *eval(const ir_graph *g, double **all)
{
    double v[2] = {0, 0}, s = 0, y[2] = {0, 0}, ones[6] = {1, 1, 1, 1, 1, 1};
    const double *in[PT_NIN + 1] = {X, Y, v, &s, y, ones};
    pt_interp(g, SIZES, in, all);
    return all[0];
}

static void check_extremes(ir_node *(*build)(pt *), double (*ref)(double, double),
                           bool overflows, const char *what)
{
    pt t = pt_new();
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, build(&t));
    double *out[4];
    /* the textbook formula, as written: not finite somewhere */
    bool bad = false;
    eval(t.g, out);
    for (int i = 0; i < 6; i++)
        bad |= !isfinite(out[0][i]);
    pt_free_outputs(t.g, out);
    if (bad != overflows)
        fail_msg("%s: the formula as written was expected %s", what,
                 overflows ? "to overflow" : "to stay finite");
    /* stabilized (pipeline without backward): finite and equal to the closed form */
    ir_graph *g = pt_pipeline(ir_rebuild(t.g, NULL, NULL), false, 0);
    eval(g, out);
    for (int i = 0; i < 6; i++)
        if (!tu_close(out[0][i], ref(X[i], Y[i % 3]), 1e-12, 1e-300))
            fail_msg("%s(%g, %g) = %.17g, want %.17g", what, X[i], Y[i % 3], out[0][i],
                     ref(X[i], Y[i % 3]));
    pt_free_outputs(g, out);
    ir_graph_free(g);
    /* the gradient (elementwise loss: a reduction="none" upstream of ones) is
     * finite and matches central differences of the closed form */
    g = pt_pipeline(t.g, true, 1u << PT_X);
    eval(g, out);
    for (int i = 0; i < 6; i++) {
        double x = X[i], y = Y[i % 3], h = 1e-5 * fmax(1, fabs(x));
        double fd = (ref(x + h, y) - ref(x - h, y)) / (2 * h);
        if (!isfinite(out[1][i]) || !tu_close(out[1][i], fd, 1e-6, 1e-9))
            fail_msg("%s: d/dx at (%g, %g) = %.17g, want %.17g", what, x, y, out[1][i], fd);
    }
    pt_free_outputs(g, out);
    ir_graph_free(g);
}

static void test_bce_extremes(void **state)
{
    (void)state;
    check_extremes(bce_textbook, bce_ref, true, "textbook BCE");
}

/* BCE stabilized by hand, max(x, 0) - x * y + log1p(exp(-|x|)): finite as
 * written, and it must stay as accurate. Merging max(x, 0) + log1p(...)
 * into softplus(x) would make its gradient sigmoid(x) - y, but the loss at
 * x = 50, y = 1 would become softplus(50) - 50 = 0 instead of 1.9e-22. */
static ir_node *bce_by_hand(pt *t)
{
    ir_node *sp = U(t, LOG1P, U(t, EXP, U(t, NEG, U(t, ABS, t->x))));
    ir_node *relu = B(t, MAX, t->x, K(t, 0));
    return B(t, ADD, B(t, SUB, relu, B(t, MUL, t->x, t->w)), sp);
}

static void test_bce_by_hand_extremes(void **state)
{
    (void)state;
    check_extremes(bce_by_hand, bce_ref, false, "BCE stabilized by hand");
}

static void test_focal_extremes(void **state)
{
    (void)state;
    check_extremes(focal_textbook, focal_ref, true, "textbook focal");
}

static void test_focal_where_extremes(void **state)
{
    (void)state;
    check_extremes(focal_where, focal_ref, true, "focal with where");
}

static ir_node *log_softmax_textbook(pt *t) { return U(t, LOG, softmax_naive(t, t->x)); }

/* log(softmax(x)) over C at x = [[-1e4, -1e3, -1], [1, 50, 1e4]] */
static void test_log_softmax_extremes(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, log_softmax_textbook(&t));
    double *out[2];
    eval(t.g, out);
    assert_true(isnan(out[0][5])); /* inf / inf */
    pt_free_outputs(t.g, out);
    ir_graph *g = pt_pipeline(t.g, false, 0);
    eval(g, out);
    for (int n = 0; n < 2; n++) {
        const double *x = X + 3 * n;
        double m = fmax(x[0], fmax(x[1], x[2]));
        double lse = m + log(exp(x[0] - m) + exp(x[1] - m) + exp(x[2] - m));
        for (int c = 0; c < 3; c++)
            assert_close(out[0][3 * n + c], x[c] - lse, 1e-12, 0);
    }
    pt_free_outputs(g, out);
    ir_graph_free(g);
}

/* log(1 + exp(x)) at 1e4 and exp(x)/(1 + exp(x)) at 1e4: inf and NaN naively */
static void test_softplus_sigmoid_extremes(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *e = U(&t, EXP, t.x);
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, U(&t, LOG, B(&t, ADD, K(&t, 1), e)));
    ir_output_add(t.g, "sig", IR_OUT_EXTRA, -1, B(&t, DIV, e, B(&t, ADD, K(&t, 1), e)));
    double *out[2];
    eval(t.g, out);
    assert_true(isinf(out[0][5]) && isnan(out[1][5]));
    pt_free_outputs(t.g, out);
    ir_graph *g = pt_pipeline(t.g, false, 0);
    eval(g, out);
    for (int i = 0; i < 6; i++) {
        assert_close(out[0][i], softplus_ref(X[i]), 1e-12, 1e-300);
        assert_close(out[1][i], sigmoid_ref(X[i]), 1e-12, 1e-300);
    }
    pt_free_outputs(g, out);
    ir_graph_free(g);
}

/* log1p and expm1 are about accuracy, not overflow: at x = 1e-20 the naive
 * forms give exactly 0, a relative error of 1. */
static void test_log1p_expm1_accuracy(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *tiny = B(&t, MUL, t.x, K(&t, 1e-20));
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, U(&t, LOG, B(&t, ADD, K(&t, 1), tiny)));
    ir_output_add(t.g, "em1", IR_OUT_EXTRA, -1, B(&t, SUB, U(&t, EXP, tiny), K(&t, 1)));
    double *out[2];
    eval(t.g, out);
    assert_true(out[0][3] == 0 && out[1][3] == 0);
    pt_free_outputs(t.g, out);
    ir_graph *g = pt_pipeline(t.g, false, 0);
    eval(g, out);
    assert_close(out[0][3], 1e-20, 1e-15, 0);
    assert_close(out[1][3], 1e-20, 1e-15, 0);
    pt_free_outputs(g, out);
    ir_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_sigmoid),
        cmocka_unit_test(test_log1p_expm1),
        cmocka_unit_test(test_sigmoid_forms),
        cmocka_unit_test(test_where_branches),
        cmocka_unit_test(test_log_softmax_and_lse),
        cmocka_unit_test(test_bce_extremes),
        cmocka_unit_test(test_bce_by_hand_extremes),
        cmocka_unit_test(test_focal_extremes),
        cmocka_unit_test(test_focal_where_extremes),
        cmocka_unit_test(test_log_softmax_extremes),
        cmocka_unit_test(test_softplus_sigmoid_extremes),
        cmocka_unit_test(test_log1p_expm1_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
