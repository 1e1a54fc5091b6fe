/* test_autodiff.c - reverse mode through pass_pipeline, operator by operator,
 * against central finite differences of the f64 interpreter (ad_gradcheck),
 * first order and second order (double backward through grad()).
 *
 * Tolerances: an element passes when |analytic - numeric| <= 1e-6 + 1e-5 *
 * |numeric| (step h = 1e-6 * max(1, |x|)). In f64 the finite difference is
 * good to about 1e-9 here, so these are tight but not flaky; the test fails
 * for any wrong rule (a sign, a missing factor, a missing broadcast sum).
 */
#include "passtest.h"

#include <stdint.h>
#include <stdlib.h>

#define ATOL 1e-6
#define RTOL 1e-5

/* ---- generators ---------------------------------------------------------------- */

static double hash01(int input, int64_t i, int salt)
{
    uint64_t z = (uint64_t)input * 0x9e3779b97f4a7c15ull + (uint64_t)i * 0xbf58476d1ce4e5b9ull +
                 (uint64_t)salt * 0x94d049bb133111ebull + 12345;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53;
}

/* Positive values in [0.3, 2.3]: for log, sqrt, pow bases, divisors. */
static double gen_pos(void *ud, const ir_graph *g, int input, int64_t i)
{
    (void)ud, (void)g;
    return 0.3 + 2 * hash01(input, i, 1);
}

/* ---- the operator table ------------------------------------------------------------ */

typedef ir_node *(*build_fn)(pt *t);

typedef struct op_case {
    const char *name;
    build_fn build;
    ad_gradcheck_gen gen; /* NULL: N(0, 1) */
} op_case;

static ir_node *b_neg(pt *t) { return U(t, NEG, t->x); }
static ir_node *b_abs(pt *t) { return U(t, ABS, t->x); }
static ir_node *b_relu(pt *t) { return B(t, MUL, U(t, RELU, t->x), t->x); }
static ir_node *b_exp(pt *t) { return U(t, EXP, t->x); }
static ir_node *b_expm1(pt *t) { return U(t, EXPM1, t->x); }
static ir_node *b_log(pt *t) { return U(t, LOG, t->x); }
static ir_node *b_log1p(pt *t) { return U(t, LOG1P, t->x); }
static ir_node *b_sqrt(pt *t) { return U(t, SQRT, t->x); }
static ir_node *b_rsqrt(pt *t) { return U(t, RSQRT, t->x); }
static ir_node *b_tanh(pt *t) { return U(t, TANH, t->x); }
static ir_node *b_sigmoid(pt *t) { return U(t, SIGMOID, t->x); }
static ir_node *b_softplus(pt *t) { return U(t, SOFTPLUS, t->x); }
/* sign, floor, ceil contribute nothing: the gradient is the other factor's */
static ir_node *b_sign(pt *t) { return B(t, MUL, U(t, SIGN, t->x), t->x); }
static ir_node *b_floor(pt *t) { return B(t, MUL, U(t, FLOOR, B(t, MUL, t->x, K(t, 3))), t->x); }
static ir_node *b_ceil(pt *t) { return B(t, ADD, U(t, CEIL, t->x), U(t, EXP, t->x)); }
static ir_node *b_cast(pt *t)
{
    ir_node *d = ir_cast(t->g, DT_F64, t->x, PT_L);
    ir_node *e = ir_unary(t->g, OP_TANH, d, PT_L);
    return ir_cast(t->g, DT_F32, B(t, MUL, e, ir_cast(t->g, DT_F64, t->w, PT_L)), PT_L);
}
static ir_node *b_add(pt *t) { return B(t, ADD, t->x, t->w); }
static ir_node *b_sub(pt *t) { return B(t, SUB, t->x, t->v); }
static ir_node *b_mul(pt *t) { return B(t, MUL, t->x, t->w); }
static ir_node *b_div(pt *t) { return B(t, DIV, t->x, t->w); }
static ir_node *b_mod(pt *t) { return B(t, MOD, B(t, MUL, t->x, K(t, 3)), t->w); }
static ir_node *b_floordiv(pt *t) { return B(t, MUL, B(t, FLOORDIV, t->x, t->w), t->x); }
static ir_node *b_pow(pt *t) { return B(t, POW, t->x, t->w); }
static ir_node *b_pow_const(pt *t) { return B(t, POW, t->x, K(t, 3)); }
static ir_node *b_pow_frac(pt *t) { return B(t, POW, t->x, K(t, 2.5)); }
static ir_node *b_min(pt *t) { return B(t, MIN, t->x, t->w); }
static ir_node *b_max(pt *t) { return B(t, MAX, t->x, t->v); }
static ir_node *b_where(pt *t)
{
    return W(t, B(t, GT, t->x, t->w), B(t, MUL, t->x, t->x), U(t, EXP, t->w));
}
static ir_node *b_clamp(pt *t) /* how the frontend builds clamp(x, lo, hi) */
{
    ir_node *lo = U(t, NEG, t->w), *hi = t->v;
    return W(t, B(t, LT, t->x, lo), lo, W(t, B(t, GT, t->x, hi), hi, t->x));
}
static ir_node *b_expand(pt *t)
{
    ir_node *e = ir_expand(t->g, U(t, TANH, t->v), BIT(t->N) | BIT(t->C), PT_L);
    return B(t, MUL, e, t->x);
}
static ir_node *b_rename(pt *t) /* s[i, j] = sum_C x[i, C] * x[j, C] / s */
{
    int i = ir_dim_add(t->g, "i", -1, t->N, PT_L), j = ir_dim_add(t->g, "j", -1, t->N, PT_L);
    ir_node *xi = ir_rename(t->g, t->x, t->N, i, PT_L), *xj = ir_rename(t->g, t->x, t->N, j, PT_L);
    return B(t, MUL, R(t, SUM, B(t, MUL, xi, xj), BIT(t->C)), t->s);
}
static ir_node *b_norm(pt *t) { return U(t, SQRT, R(t, SUM, B(t, MUL, t->x, t->x), BIT(t->C))); }
static ir_node *b_pnorm(pt *t)
{
    ir_node *s = R(t, SUM, B(t, POW, U(t, ABS, t->x), K(t, 3)), BIT(t->C));
    return B(t, POW, s, K(t, 1. / 3));
}
static ir_node *b_sum(pt *t) { return B(t, MUL, R(t, SUM, B(t, MUL, t->x, t->x), BIT(t->C)), t->v); }
static ir_node *b_sum_all(pt *t) { return B(t, MUL, pt_sum_all(t, t->x), t->s); }
static ir_node *b_prod(pt *t) { return R(t, PROD, t->x, BIT(t->C)); }
static ir_node *b_amax(pt *t) { return R(t, RMAX, t->x, BIT(t->C)); }
static ir_node *b_amin(pt *t) { return B(t, MUL, R(t, RMIN, t->x, BIT(t->N)), t->w); }
static ir_node *b_lse(pt *t) { return R(t, LSE, t->x, BIT(t->C)); }
static ir_node *b_ce(pt *t) /* cross-entropy: lse(x) - x[n, y[n]] */
{
    ir_node *picked = ir_gather(t->g, t->x, BIT(t->C), &t->y, PT_L);
    return B(t, SUB, R(t, LSE, t->x, BIT(t->C)), picked);
}
static ir_node *b_gather_w(pt *t) /* weight[y[n]] * v[n]: a scatter-add back to C */
{
    return B(t, MUL, ir_gather(t->g, t->w, BIT(t->C), &t->y, PT_L), t->v);
}
static ir_node *b_gather_clash(pt *t) /* torch.gather(x, C, idx[N, C]) */
{
    ir_node *c = ir_dimsize(t->g, t->C, PT_L);
    ir_node *idx = B(t, MOD, B(t, ADD, t->y, ir_iota(t->g, t->C, PT_L)), c);
    ir_node *gx = ir_gather(t->g, t->x, BIT(t->C), &idx, PT_L);
    return B(t, MUL, gx, U(t, EXP, t->x));
}
static ir_node *b_gather_2d(pt *t) /* x[N - 1 - n, y[n]] */
{
    ir_node *one = ir_const(t->g, DT_I64, 1, PT_L);
    ir_node *rev = B(t, SUB, B(t, SUB, ir_dimsize(t->g, t->N, PT_L), one),
                     ir_iota(t->g, t->N, PT_L));
    ir_node *idx[2] = {rev, t->y};
    return ir_gather(t->g, t->x, BIT(t->N) | BIT(t->C), idx, PT_L);
}
static ir_node *b_scalar(pt *t) { return B(t, ADD, B(t, MUL, t->x, t->s), B(t, MUL, t->s, t->s)); }
static ir_node *b_softmax_ce(pt *t) /* log_softmax the long way, mean over N */
{
    ir_node *m = R(t, RMAX, t->x, BIT(t->C));
    ir_node *e = U(t, EXP, B(t, SUB, t->x, m));
    ir_node *p = B(t, DIV, e, R(t, SUM, e, BIT(t->C)));
    ir_node *nll = U(t, NEG, U(t, LOG, ir_gather(t->g, p, BIT(t->C), &t->y, PT_L)));
    ir_node *n = ir_cast(t->g, DT_F32, ir_dimsize(t->g, t->N, PT_L), PT_L);
    return B(t, DIV, R(t, SUM, nll, BIT(t->N)), n);
}

static const op_case cases[] = {
    {"neg", b_neg, NULL},           {"abs", b_abs, NULL},
    {"relu", b_relu, NULL},         {"exp", b_exp, NULL},
    {"expm1", b_expm1, NULL},       {"log", b_log, gen_pos},
    {"log1p", b_log1p, gen_pos},    {"sqrt", b_sqrt, gen_pos},
    {"rsqrt", b_rsqrt, gen_pos},    {"tanh", b_tanh, NULL},
    {"sigmoid", b_sigmoid, NULL},   {"softplus", b_softplus, NULL},
    {"sign", b_sign, NULL},         {"floor", b_floor, NULL},
    {"ceil", b_ceil, NULL},         {"cast", b_cast, NULL},
    {"add", b_add, NULL},           {"sub", b_sub, NULL},
    {"mul", b_mul, NULL},           {"div", b_div, gen_pos},
    {"mod", b_mod, gen_pos},        {"floordiv", b_floordiv, gen_pos},
    {"pow", b_pow, gen_pos},        {"pow_const", b_pow_const, NULL},
    {"pow_frac", b_pow_frac, gen_pos},
    {"min", b_min, NULL},           {"max", b_max, NULL},
    {"where", b_where, NULL},       {"clamp", b_clamp, NULL},
    {"expand", b_expand, NULL},     {"rename", b_rename, NULL},
    {"norm", b_norm, NULL},         {"pnorm", b_pnorm, NULL},
    {"sum", b_sum, NULL},           {"sum_all", b_sum_all, NULL},
    {"prod", b_prod, NULL},         {"amax", b_amax, NULL},
    {"amin", b_amin, NULL},         {"logsumexp", b_lse, NULL},
    {"cross_entropy", b_ce, NULL},  {"gather_weight", b_gather_w, NULL},
    {"gather_clash", b_gather_clash, NULL},
    {"gather_2d", b_gather_2d, NULL},
    {"scalar_param", b_scalar, NULL},
    {"softmax_ce", b_softmax_ce, NULL},
};

static ad_gradcheck_opts opts_for(const op_case *c)
{
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    o.atol = ATOL;
    o.rtol = RTOL;
    o.gen = c->gen;
    /* LOSSC_TEST_SEED=k reruns every check at other random points */
    const char *seed = getenv("LOSSC_TEST_SEED");
    o.seed = seed ? strtoull(seed, NULL, 10) : 1;
    return o;
}

/* First order: the loss is the expression itself (often not a scalar, so the
 * checker also feeds a random upstream gradient, as reduction="none" does). */
static void test_first_order(void **state)
{
    (void)state;
    for (size_t k = 0; k < SUP_ARRAY_LEN(cases); k++) {
        pt t = pt_new();
        ir_node *e = cases[k].build(&t);
        assert_non_null(e);
        ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, e);
        ad_gradcheck_opts o = opts_for(&cases[k]);
        pt_gradcheck(t.g, &o, cases[k].name);
        ir_graph_free(t.g);
    }
}

/* Second order: loss = sum over float inputs p of sum(grad(inner, p)^2) with
 * inner = sum(tanh(e)). Its gradient is 2 H grad(inner): a Hessian-vector
 * product, checked against finite differences of the compiled gradient. (The
 * tanh keeps magnitudes moderate: with inner = sum(e * e), x^3 makes a loss
 * of order 1e5 whose finite differences carry 1e-5 of rounding noise.) */
static void test_second_order(void **state)
{
    (void)state;
    for (size_t k = 0; k < SUP_ARRAY_LEN(cases); k++) {
        pt t = pt_new();
        ir_node *e = cases[k].build(&t);
        ir_node *inner = pt_sum_all(&t, U(&t, TANH, e));
        ir_node *params[4] = {t.x, t.w, t.v, t.s}, *loss = NULL;
        for (int p = 0; p < 4; p++) {
            ir_node *gp = pt_grad(&t, inner, params[p]);
            ir_node *sq = pt_sum_all(&t, B(&t, MUL, gp, gp));
            loss = loss ? B(&t, ADD, loss, sq) : sq;
        }
        assert_non_null(loss);
        ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, loss);
        ad_gradcheck_opts o = opts_for(&cases[k]);
        pt_gradcheck(t.g, &o, cases[k].name);
        ir_graph_free(t.g);
    }
}


/* ---- conventions at kinks and ties (PyTorch's; docs/autodiff.md) ------------------------ */

/* Gradients of the scalar loss e w.r.t. x and w at explicit 2 x 3 data. */
static void grads_at(pt *t, ir_node *e, const double *x, const double *w, double *gx,
                     double *gw)
{
    ir_output_add(t->g, "loss", IR_OUT_LOSS, -1, pt_sum_all(t, e));
    ir_graph *g = pt_pipeline(t->g, true, (1u << PT_X) | (1u << PT_W));
    double v[2] = {0, 0}, s = 0, y[2] = {0, 0}, dl = 1;
    const double *in[PT_NIN + 1] = {x, w, v, &s, y, &dl};
    int64_t sizes[2] = {2, 3};
    double *out[3];
    pt_interp(g, sizes, in, out);
    memcpy(gx, out[1], 6 * sizeof *gx);
    memcpy(gw, out[2], 3 * sizeof *gw);
    pt_free_outputs(g, out);
    ir_graph_free(g);
}

static void assert_values(const double *got, const double *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        if (!tu_close(got[i], want[i], 1e-15, 0))
            fail_msg("%s[%d] = %.17g, want %.17g", what, i, got[i], want[i]);
}

static void test_kinks(void **state)
{
    (void)state;
    double gx[6], gw[3], w0[3] = {0, 0, 0};
    pt t;

    /* abs'(0) = 0 (also at -0), relu'(0) = 0 */
    double xa[6] = {0, -1, 2, 0, 3, -0.0};
    t = pt_new();
    grads_at(&t, U(&t, ABS, t.x), xa, w0, gx, gw);
    assert_values(gx, (double[]){0, -1, 1, 0, 1, 0}, 6, "abs'");
    t = pt_new();
    grads_at(&t, U(&t, RELU, t.x), xa, w0, gx, gw);
    assert_values(gx, (double[]){0, 0, 1, 0, 1, 0}, 6, "relu'");

    /* binary max/min: a tie gives g/2 to each side (torch.maximum) */
    double xm[6] = {1, 2, 3, 1, -2, 9}, wm[3] = {1, 0, 5};
    t = pt_new();
    grads_at(&t, B(&t, MAX, t.x, t.w), xm, wm, gx, gw);
    assert_values(gx, (double[]){0.5, 1, 0, 0.5, 0, 1}, 6, "max'_x");
    assert_values(gw, (double[]){1, 1, 1}, 3, "max'_w");
    t = pt_new();
    grads_at(&t, B(&t, MIN, t.x, t.w), xm, wm, gx, gw);
    assert_values(gx, (double[]){0.5, 0, 1, 0.5, 1, 0}, 6, "min'_x");
    assert_values(gw, (double[]){1, 1, 1}, 3, "min'_w");

    /* amax / amin: g split evenly among tied extrema (torch.amax) */
    double xt[6] = {1, 3, 3, 2, 2, 2};
    t = pt_new();
    grads_at(&t, R(&t, RMAX, t.x, BIT(t.C)), xt, w0, gx, gw);
    assert_values(gx, (double[]){0, 0.5, 0.5, 1. / 3, 1. / 3, 1. / 3}, 6, "amax'");
    t = pt_new();
    grads_at(&t, R(&t, RMIN, t.x, BIT(t.N)), xt, w0, gx, gw);
    assert_values(gx, (double[]){1, 0, 0, 0, 1, 1}, 6, "amin'");

    /* clamp(x, -1, 1) as the frontend builds it passes the gradient at its bounds */
    double xc[6] = {-1, 1, 0, -2, 2, 1};
    t = pt_new();
    ir_node *lo = K(&t, -1), *hi = K(&t, 1);
    grads_at(&t, W(&t, B(&t, LT, t.x, lo), lo, W(&t, B(&t, GT, t.x, hi), hi, t.x)), xc, w0,
             gx, gw);
    assert_values(gx, (double[]){1, 1, 1, 0, 0, 1}, 6, "clamp'");

    /* where: the gradient goes to the chosen branch only */
    t = pt_new();
    grads_at(&t, W(&t, B(&t, GT, t.x, K(&t, 0)), t.x, t.w), xc, wm, gx, gw);
    assert_values(gx, (double[]){0, 1, 0, 0, 1, 1}, 6, "where'_x");
    assert_values(gw, (double[]){2, 0, 1}, 3, "where'_w");

    /* pow(a, b): d/da = 0 where b == 0; d/db = 0 where a == 0 and b >= 0 */
    double xp[6] = {0, 0, 0, 2, 2, 2}, wp[3] = {0, 2, 0.5};
    t = pt_new();
    grads_at(&t, B(&t, POW, t.x, t.w), xp, wp, gx, gw);
    assert_values(gx, (double[]){0, 0, INFINITY, 0, 4, 0.5 / sqrt(2)}, 6, "pow'_a");
    assert_values(gw, (double[]){log(2), 4 * log(2), sqrt(2) * log(2)}, 3, "pow'_b");

    /* the 2-norm sqrt(sum(x * x)) at the zero vector: 0, as torch.norm; a
     * plain sqrt at 0 keeps sqrt'(0) = inf */
    double xnorm[6] = {0, 0, 0, 3, 0, 4};
    t = pt_new();
    grads_at(&t, U(&t, SQRT, R(&t, SUM, B(&t, MUL, t.x, t.x), BIT(t.C))), xnorm, w0, gx, gw);
    assert_values(gx, (double[]){0, 0, 0, 0.6, 0, 0.8}, 6, "norm'");
    t = pt_new(); /* the p-norm, p = 3, as the frontend builds it */
    ir_node *p3 = R(&t, SUM, B(&t, POW, U(&t, ABS, t.x), K(&t, 3)), BIT(t.C));
    grads_at(&t, B(&t, POW, p3, K(&t, 1. / 3)), xnorm, w0, gx, gw);
    double n3 = cbrt(91);
    assert_values(gx, (double[]){0, 0, 0, 9 / (n3 * n3), 0, 16 / (n3 * n3)}, 6, "3-norm'");
    t = pt_new();
    grads_at(&t, U(&t, SQRT, t.x), xnorm, w0, gx, gw);
    assert_values(gx, (double[]){INFINITY, INFINITY, INFINITY, 0.5 / sqrt(3), INFINITY, 0.25},
                  6, "sqrt'");

    /* prod with zeros (PyTorch's prod_backward): one zero in a group gets the
     * product of the others, every other element 0; two zeros: all 0 */
    double xz[6] = {2, 0, 3, 0, 0, 5};
    t = pt_new();
    grads_at(&t, R(&t, PROD, t.x, BIT(t.C)), xz, w0, gx, gw);
    assert_values(gx, (double[]){0, 6, 0, 0, 0, 0}, 6, "prod'");
    double xn[6] = {1, 2, 3, -1, 4, 0.5};
    t = pt_new();
    grads_at(&t, R(&t, PROD, t.x, BIT(t.C)), xn, w0, gx, gw);
    assert_values(gx, (double[]){6, 3, 2, 2, -0.5, -4}, 6, "prod' (no zero)");
}

/* ---- the frame: dloss, gradient outputs, wrt ------------------------------------------ */

static void test_frame(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *e = B(&t, MUL, R(&t, SUM, B(&t, MUL, t.x, t.w), BIT(t.C)), t.s); /* [N] */
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, e);
    ir_output_add(t.g, "acc", IR_OUT_EXTRA, -1, R(&t, SUM, t.x, BIT(t.C)));
    ir_graph *g = pt_pipeline(t.g, true, 0);
    /* inputs: the five of the entry, then dloss with the loss's dims */
    assert_int_equal(g->ninputs, PT_NIN + 1);
    const ir_input *dl = &g->inputs[PT_NIN];
    assert_string_equal(dl->name, "dloss");
    assert_int_equal(dl->kind, IR_IN_DLOSS);
    assert_int_equal(dl->dtype, DT_F32);
    assert_int_equal(dl->node->dims, BIT(t.N));
    /* outputs: loss, acc, then one gradient per float input in input order */
    const char *want[] = {"loss", "acc", "grad_x", "grad_w", "grad_v", "grad_s"};
    assert_int_equal(g->noutputs, 6);
    for (int k = 0; k < 6; k++)
        assert_string_equal(g->outputs[k].name, want[k]);
    assert_int_equal(g->outputs[4].node->dims, BIT(t.N));
    assert_int_equal(g->outputs[5].node->dims, 0);
    ir_graph_free(g);
}

/* The cone of output k: every node it depends on. */
static bool cone_has(const ir_graph *g, int k, const ir_node *target)
{
    bool *in = sup_calloc(g->nnodes + 1, 1), found = false;
    in[g->outputs[k].node->id] = true;
    for (uint32_t id = g->nnodes; id-- > 0;) {
        if (!in[id])
            continue;
        found |= g->nodes[id] == target;
        for (int i = 0; i < g->nodes[id]->nops; i++)
            in[g->nodes[id]->ops[i]->id] = true;
    }
    sup_free(in);
    return found;
}

static int count_op(const ir_graph *g, int op)
{
    bool *live = sup_malloc(g->nnodes + 1);
    ir_mark_live(g, live);
    int n = 0;
    for (uint32_t id = 0; id < g->nnodes; id++)
        n += live[id] && g->nodes[id]->op == op;
    sup_free(live);
    return n;
}

/* Gradients of a subset: what only other inputs' gradients need is not built.
 * loss = sum(exp(x) * w) + sum(sqrt(v) * s): asking for x alone must not
 * build the VJP of sqrt (a div), nor read v or s in grad_x. */
static void test_wrt_subset(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *a = pt_sum_all(&t, B(&t, MUL, U(&t, EXP, t.x), t.w));
    ir_node *b = pt_sum_all(&t, B(&t, MUL, U(&t, SQRT, t.v), t.s));
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, B(&t, ADD, a, b));
    ir_graph *full = pt_pipeline(ir_rebuild(t.g, NULL, NULL), true, 0);
    ir_graph *g = pt_pipeline(t.g, true, 1u << PT_X);
    assert_int_equal(g->noutputs, 2);
    assert_string_equal(g->outputs[1].name, "grad_x");
    assert_false(cone_has(g, 1, g->inputs[PT_V].node));
    assert_false(cone_has(g, 1, g->inputs[PT_S].node));
    assert_int_equal(count_op(g, OP_DIV), 0);
    assert_true(count_op(full, OP_DIV) > 0); /* the full gradient does build it */
    assert_true(g->nnodes < full->nnodes);
    ir_graph_free(g);
    ir_graph_free(full);
}

/* An input the loss does not read gets a zero gradient of its type. */
static void test_zero_gradient(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, t.x));
    ir_graph *g = pt_pipeline(t.g, true, (1u << PT_X) | (1u << PT_W));
    const ir_node *gw = g->outputs[2].node;
    assert_int_equal(gw->op, OP_EXPAND);
    assert_true(ir_is_const_value(gw->ops[0], 0));
    assert_int_equal(gw->dims, BIT(t.C));
    ir_graph_free(g);
}

static void test_integer_wrt_is_an_error(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, t.x));
    strbuf err;
    sb_init(&err);
    pass_options o = {.backward = true, .wrt = 1u << PT_Y, .verify = true};
    assert_null(pass_pipeline(t.g, &o, &err));
    assert_non_null(strstr(sb_str(&err), "'y' (i64)"));
    sb_free(&err);
}

/* The upstream gradient is honoured per element: grad_x = dloss[n] * w[c]. */
static void test_dloss_values(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, R(&t, SUM, B(&t, MUL, t.x, t.w), BIT(t.C)));
    ir_graph *g = pt_pipeline(t.g, true, 1u << PT_X);
    double x[6] = {1, 2, 3, 4, 5, 6}, w[3] = {1, 10, 100}, v[2] = {0}, s = 0, y[2] = {0};
    double dl[2] = {2, -3};
    const double *in[PT_NIN + 1] = {x, w, v, &s, y, dl};
    int64_t sizes[2] = {2, 3};
    double *out[2];
    pt_interp(g, sizes, in, out);
    double want[6] = {2, 20, 200, -3, -30, -300};
    for (int k = 0; k < 6; k++)
        assert_close(out[1][k], want[k], 0, 0);
    pt_free_outputs(g, out);
    ir_graph_free(g);
}

/* A gradient penalty (issue #4): loss + lambda * sum(grad(inner, x)^2). */
static void test_gradient_penalty(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *z = B(&t, MUL, t.x, t.w);
    ir_node *base = pt_sum_all(&t, B(&t, MUL, z, z));
    ir_node *inner = pt_sum_all(&t, U(&t, TANH, B(&t, ADD, z, t.v)));
    ir_node *gx = pt_grad(&t, inner, t.x);
    ir_node *pen = B(&t, MUL, t.s, pt_sum_all(&t, B(&t, MUL, gx, gx)));
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, B(&t, ADD, base, pen));
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    o.atol = ATOL;
    o.rtol = RTOL;
    pt_gradcheck(t.g, &o, "gradient penalty");
    ir_graph_free(t.g);
}

/* grad(grad(...)): a nested grad() is expanded first. */
static void test_nested_grad(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *f = pt_sum_all(&t, B(&t, MUL, U(&t, EXP, t.x), t.w));
    ir_node *inner = pt_sum_all(&t, B(&t, MUL, pt_grad(&t, f, t.x), t.x));
    ir_node *outer = pt_grad(&t, inner, t.w); /* = sum over N of exp(x) * x */
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, B(&t, MUL, outer, outer)));
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    o.atol = ATOL;
    o.rtol = RTOL;
    pt_gradcheck(t.g, &o, "nested grad");
    /* and the expansion leaves no grad() behind */
    ir_graph *g = pass_expand_grad(t.g);
    assert_int_equal(count_op(g, OP_GRAD), 0);
    ir_graph_free(g);
    ir_graph_free(t.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_order),
        cmocka_unit_test(test_second_order),
        cmocka_unit_test(test_kinks),
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_wrt_subset),
        cmocka_unit_test(test_zero_gradient),
        cmocka_unit_test(test_integer_wrt_is_an_error),
        cmocka_unit_test(test_dloss_values),
        cmocka_unit_test(test_gradient_penalty),
        cmocka_unit_test(test_nested_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
