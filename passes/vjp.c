/* vjp.c - the vector-Jacobian product of every operator, as IR.
 *
 * One rule per operator, in a table indexed by op and built from ir/ops.def:
 * every op must have a VJP_<NAME> entry below, so adding an operator without
 * deciding its derivative does not compile.
 *
 * In each rule n is the node, g its adjoint (n's dtype and dims) and x, a, b
 * its operands. Rules
 *   - reuse forward values (exp's VJP is g * n, not g * exp(x)): hash-consing
 *     shares them and the fusing scheduler recomputes what is cheap;
 *   - rely on broadcasting by name: a reduced value combines with its
 *     operand without an explicit expand, and ad_accum sums a contribution
 *     over the dims its operand was broadcast along;
 *   - write scatters densely (gather's VJP is a where over iota), never as
 *     materialized temporaries;
 *   - follow PyTorch at kinks and ties (docs/autodiff.md): abs'(0) = 0,
 *     relu'(0) = 0, binary max/min give g/2 to each side of a tie, amax/amin
 *     split g evenly among tied extrema, pow masks what PyTorch masks.
 * Rules only build IR that has rules itself, so gradients differentiate
 * again (double backward).
 */
#include "passes/ad.h"

#include <stdio.h>
#include <string.h>

/* ---- small builders: operands are never NULL-checked, the builders
 * propagate NULL and ad_accum turns it into a failure ---------------------- */

static ir_node *K(ad_ctx *c, const ir_node *like, double v)
{
    return ir_const(ad_graph(c), (ir_dtype)like->dtype, v, like->loc);
}

static ir_node *un(ad_ctx *c, ir_op op, ir_node *x, const ir_node *at)
{
    return ir_unary(ad_graph(c), op, x, at->loc);
}

static ir_node *bin(ad_ctx *c, ir_op op, ir_node *a, ir_node *b, const ir_node *at)
{
    return ir_binary(ad_graph(c), op, a, b, at->loc);
}

static ir_node *sel(ad_ctx *c, ir_node *cond, ir_node *a, ir_node *b, const ir_node *at)
{
    return ir_where(ad_graph(c), cond, a, b, at->loc);
}

#define X0 (n->ops[0])
#define X1 (n->ops[1])

/* ---- elementwise, one operand ------------------------------------------------- */

static void vjp_neg(ad_ctx *c, ir_node *n, ir_node *g) { ad_accum_neg(c, n, 0, g); }

/* PyTorch: grad * sgn(x), so abs'(0) = 0. */
static void vjp_abs(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, bin(c, OP_MUL, g, un(c, OP_SIGN, X0, n), n));
}

/* PyTorch's threshold_backward: the gradient passes where x > 0 only. */
static void vjp_relu(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, sel(c, bin(c, OP_GT, X0, K(c, n, 0), n), g, K(c, n, 0), n));
}

static void vjp_exp(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, bin(c, OP_MUL, g, n, n));
}

static void vjp_expm1(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, bin(c, OP_MUL, g, bin(c, OP_ADD, n, K(c, n, 1), n), n));
}

static void vjp_log(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, bin(c, OP_DIV, g, X0, n));
}

static void vjp_log1p(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, bin(c, OP_DIV, g, bin(c, OP_ADD, X0, K(c, n, 1), n), n));
}

/* A sum of squares, sum(x * x) or x * x: what sqrt makes a 2-norm of. */
static bool sum_of_squares(const ir_node *x)
{
    if (x->op == OP_SUM)
        x = x->ops[0];
    return x->op == OP_MUL && x->ops[0] == x->ops[1];
}

/* sqrt'(0) = inf, as in PyTorch; but the 2-norm sqrt(sum(x * x)) follows
 * torch.norm, whose gradient at the zero vector is 0 (not inf * 0 = NaN):
 * there the factor is masked to 0 where the norm is 0. */
static void vjp_sqrt(ad_ctx *c, ir_node *n, ir_node *g)
{
    ir_node *d = bin(c, OP_DIV, g, bin(c, OP_MUL, n, K(c, n, 2), n), n);
    if (sum_of_squares(X0))
        d = sel(c, bin(c, OP_EQ, n, K(c, n, 0), n), K(c, n, 0), d, n);
    ad_accum(c, n, 0, d);
}

/* d/dx x^(-1/2) = -1/2 * rsqrt(x)^3 */
static void vjp_rsqrt(ad_ctx *c, ir_node *n, ir_node *g)
{
    ir_node *cube = bin(c, OP_MUL, bin(c, OP_MUL, n, n, n), n, n);
    ad_accum(c, n, 0, bin(c, OP_MUL, bin(c, OP_MUL, g, K(c, n, -0.5), n), cube, n));
}

/* tanh' = 1 - tanh^2 = 4 sigmoid(2x) sigmoid(-2x). The first form cancels:
 * where tanh(x) rounds to within an ulp of +-1 (|x| > 8.3 in f32, 18.7 in
 * f64) it gives 0 or a multiple of the ulp instead of ~4e^-2|x|. The
 * second is a product of two accurate factors (both made from one
 * exp(-2|x|) by the kernels: see logistic_piece in codegen/lower_expr.c). */
static void vjp_tanh(ad_ctx *c, ir_node *n, ir_node *g)
{
    ir_node *x2 = bin(c, OP_MUL, X0, K(c, n, 2), n);
    ir_node *d = bin(c, OP_MUL, un(c, OP_SIGMOID, x2, n),
                     un(c, OP_SIGMOID, un(c, OP_NEG, x2, n), n), n);
    ad_accum(c, n, 0, bin(c, OP_MUL, g, bin(c, OP_MUL, d, K(c, n, 4), n), n));
}

static void vjp_sigmoid(ad_ctx *c, ir_node *n, ir_node *g)
{
    ir_node *d = bin(c, OP_MUL, n, bin(c, OP_SUB, K(c, n, 1), n, n), n);
    ad_accum(c, n, 0, bin(c, OP_MUL, g, d, n));
}

static void vjp_softplus(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, bin(c, OP_MUL, g, un(c, OP_SIGMOID, X0, n), n));
}

/* Between floats the adjoint is cast back; from an int or bool operand
 * nothing flows (autodiff never marks such an operand). */
static void vjp_cast(ad_ctx *c, ir_node *n, ir_node *g)
{
    if (ad_wants(c, n, 0))
        ad_accum(c, n, 0, ir_cast(ad_graph(c), (ir_dtype)X0->dtype, g, n->loc));
}

/* ---- elementwise, two operands -------------------------------------------------- */

static void vjp_add(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, g);
    ad_accum(c, n, 1, g);
}

static void vjp_sub(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, g);
    ad_accum_neg(c, n, 1, g);
}

static void vjp_mul(ad_ctx *c, ir_node *n, ir_node *g)
{
    if (ad_wants(c, n, 0))
        ad_accum(c, n, 0, bin(c, OP_MUL, g, X1, n));
    if (ad_wants(c, n, 1))
        ad_accum(c, n, 1, bin(c, OP_MUL, g, X0, n));
}

/* d/db a/b = -(a/b)/b: reuses the quotient and never squares b. */
static void vjp_div(ad_ctx *c, ir_node *n, ir_node *g)
{
    if (ad_wants(c, n, 0))
        ad_accum(c, n, 0, bin(c, OP_DIV, g, X1, n));
    if (ad_wants(c, n, 1)) {
        ir_node *t = bin(c, OP_MUL, g, bin(c, OP_DIV, n, X1, n), n);
        ad_accum(c, n, 1, un(c, OP_NEG, t, n));
    }
}

/* a mod b = a - b * floor(a / b) on floats (PyTorch's remainder). */
static void vjp_mod(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, g);
    if (ad_wants(c, n, 1)) {
        ir_node *q = bin(c, OP_FLOORDIV, X0, X1, n);
        ad_accum(c, n, 1, un(c, OP_NEG, bin(c, OP_MUL, g, q, n), n));
    }
}

/* sum(|x|^p): what pow(., 1/p) makes a p-norm of. */
static bool power_sum(const ir_node *a)
{
    return a->op == OP_SUM && a->ops[0]->op == OP_POW && a->ops[0]->ops[0]->op == OP_ABS;
}

/* PyTorch's pow_backward_self: zero where the exponent is 0 (0 * a^-1 would be
 * NaN at a = 0); pow_backward_exponent: zero where a == 0 and b >= 0 (log 0).
 * The p-norm sum(|x|^p)^(1/p) follows torch.norm: gradient 0 at the zero
 * vector, so there the factor is masked where the sum is 0. */
static void vjp_pow(ad_ctx *c, ir_node *n, ir_node *g)
{
    ir_node *a = X0, *b = X1, *zero = K(c, n, 0);
    if (ad_wants(c, n, 0)) {
        ir_node *d = bin(c, OP_MUL, b, bin(c, OP_POW, a, bin(c, OP_SUB, b, K(c, n, 1), n), n), n);
        ir_node *t = bin(c, OP_MUL, g, d, n);
        ir_node *mask = bin(c, OP_EQ, b, zero, n);
        if (power_sum(a))
            mask = bin(c, OP_OR, mask, bin(c, OP_EQ, a, zero, n), n);
        ad_accum(c, n, 0, sel(c, mask, zero, t, n));
    }
    if (ad_wants(c, n, 1)) {
        ir_node *t = bin(c, OP_MUL, g, bin(c, OP_MUL, n, un(c, OP_LOG, a, n), n), n);
        ir_node *mask = bin(c, OP_AND, bin(c, OP_EQ, a, zero, n), bin(c, OP_GE, b, zero, n), n);
        ad_accum(c, n, 1, sel(c, mask, zero, t, n));
    }
}

/* torch.maximum / torch.minimum: where(a == b, g/2, g), masked to 0 on the
 * side that lost. `lose_a` is the comparison under which a lost. */
static void minmax(ad_ctx *c, ir_node *n, ir_node *g, ir_op lose_a, ir_op lose_b)
{
    ir_node *a = X0, *b = X1, *zero = K(c, n, 0);
    ir_node *split = sel(c, bin(c, OP_EQ, a, b, n), bin(c, OP_MUL, g, K(c, n, 0.5), n), g, n);
    if (ad_wants(c, n, 0))
        ad_accum(c, n, 0, sel(c, bin(c, lose_a, a, b, n), zero, split, n));
    if (ad_wants(c, n, 1))
        ad_accum(c, n, 1, sel(c, bin(c, lose_b, a, b, n), zero, split, n));
}

static void vjp_max(ad_ctx *c, ir_node *n, ir_node *g) { minmax(c, n, g, OP_LT, OP_GT); }
static void vjp_min(ad_ctx *c, ir_node *n, ir_node *g) { minmax(c, n, g, OP_GT, OP_LT); }

/* The gradient goes to the chosen branch only, none to the condition. */
static void vjp_where(ad_ctx *c, ir_node *n, ir_node *g)
{
    ir_node *cond = n->ops[0], *zero = K(c, n, 0);
    if (ad_wants(c, n, 1))
        ad_accum(c, n, 1, sel(c, cond, g, zero, n));
    if (ad_wants(c, n, 2))
        ad_accum(c, n, 2, sel(c, cond, zero, g, n));
}

/* ---- structural ---------------------------------------------------------------------- */

static void vjp_expand(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, ir_reduce(ad_graph(c), OP_SUM, g, n->attr.axes, n->loc));
}

static void vjp_rename(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, ir_rename(ad_graph(c), g, n->attr.dim2, n->attr.dim, n->loc));
}

/* ---- reductions ------------------------------------------------------------------------ */

static void vjp_sum(ad_ctx *c, ir_node *n, ir_node *g)
{
    ad_accum(c, n, 0, ir_expand(ad_graph(c), g, X0->dims, n->loc));
}

/* PyTorch's prod_backward without materializing anything: with no zero in a
 * group the gradient is g * prod / x; with exactly one zero only that element
 * gets g * (product of the others); with two or more every element gets 0. */
static void vjp_prod(ad_ctx *c, ir_node *n, ir_node *g)
{
    ir_graph *G = ad_graph(c);
    ir_node *x = X0, *zero = K(c, n, 0);
    ir_node *is0 = bin(c, OP_EQ, x, zero, n);
    ir_node *others = ir_reduce(G, OP_PROD, sel(c, is0, K(c, n, 1), x, n), n->attr.axes, n->loc);
    ir_node *zeros = ir_reduce(G, OP_SUM, ir_cast(G, (ir_dtype)n->dtype, is0, n->loc),
                               n->attr.axes, n->loc);
    ir_node *only = bin(c, OP_AND, is0, bin(c, OP_EQ, zeros, K(c, n, 1), n), n);
    ir_node *d = sel(c, bin(c, OP_EQ, zeros, zero, n), bin(c, OP_DIV, n, x, n),
                     sel(c, only, others, zero, n), n);
    ad_accum(c, n, 0, bin(c, OP_MUL, g, d, n));
}

/* amax/amin: g is split evenly among the elements equal to the extremum. */
static void vjp_extremum(ad_ctx *c, ir_node *n, ir_node *g)
{
    ir_graph *G = ad_graph(c);
    ir_node *hit = bin(c, OP_EQ, X0, n, n);
    ir_node *count = ir_reduce(G, OP_SUM, ir_cast(G, (ir_dtype)n->dtype, hit, n->loc),
                               n->attr.axes, n->loc);
    ad_accum(c, n, 0, sel(c, hit, bin(c, OP_DIV, g, count, n), K(c, n, 0), n));
}

/* d lse / dx = exp(x - lse): the softmax, from the forward value. */
static void vjp_lse(ad_ctx *c, ir_node *n, ir_node *g)
{
    ir_node *p = un(c, OP_EXP, bin(c, OP_SUB, X0, n, n), n);
    ad_accum(c, n, 0, bin(c, OP_MUL, g, p, n));
}

/* ---- gather ------------------------------------------------------------------------------ */

/* A dim with d's size that appears nowhere in `used`: "C'", "C''", ... An
 * existing one of the same root is reused (dims are only labels), so double
 * backward does not grow the dim table. */
static int fresh_dim(ir_graph *g, int d, ir_dimset used)
{
    char name[80];
    snprintf(name, sizeof name, "%s", g->dims[d].name);
    for (size_t len = strlen(name); len + 1 < sizeof name; len++) {
        name[len] = '\'';
        name[len + 1] = '\0';
        int e = ir_dim_find(g, name);
        if (e < 0)
            return ir_dim_add(g, name, -1, g->dims[d].root, g->dims[d].loc);
        if (g->dims[e].root == g->dims[d].root && !ir_dimset_has(used, e))
            return e;
    }
    return -1;
}

/* y = x[..., idx_k, ...] scatters back densely:
 *   g_x = sum over (y's dims that x lacks) of where(AND_k idx_k == iota(axis_k), g, 0)
 * e.g. cross-entropy's g_logits[n, c] = where(y[n] == c, g[n], 0), with no
 * reduction at all. When an index runs along a gathered axis itself (y has
 * that dim), that axis of g and the indices is first renamed to a fresh dim so
 * that the iota names the gathered position, not the result's. */
static void vjp_gather(ad_ctx *c, ir_node *n, ir_node *g)
{
    if (!ad_wants(c, n, 0))
        return;
    ir_graph *G = ad_graph(c);
    ir_node *idx[IR_MAX_RANK];
    int k = n->nops - 1;
    for (int i = 0; i < k; i++)
        idx[i] = n->ops[1 + i];
    ir_dimset used = n->dims | X0->dims;
    IR_DIMSET_FOREACH(d, n->attr.axes & n->dims) {
        int d2 = fresh_dim(G, d, used);
        if (d2 < 0) {
            ad_fail(c, n, "the dim table is full");
            return;
        }
        used |= ir_dimbit(d2);
        g = ir_rename(G, g, d, d2, n->loc);
        for (int i = 0; i < k; i++)
            if (idx[i] && ir_dimset_has(idx[i]->dims, d))
                idx[i] = ir_rename(G, idx[i], d, d2, n->loc);
    }
    ir_node *hit = NULL;
    int i = 0;
    IR_DIMSET_FOREACH(a, n->attr.axes) {
        ir_node *e = bin(c, OP_EQ, idx[i++], ir_iota(G, a, n->loc), n);
        hit = hit ? bin(c, OP_AND, hit, e, n) : e;
    }
    ir_node *s = sel(c, hit, g, K(c, n, 0), n);
    ad_note_scatter(c, s, g, n->attr.axes);
    ad_accum(c, n, 0, s);
}

static void vjp_grad(ad_ctx *c, ir_node *n, ir_node *g)
{
    (void)g;
    ad_fail(c, n, "grad() must be expanded first (pass_expand_grad)");
}

/* ---- the table ------------------------------------------------------------------------------ */

/* NULL: contributes nothing. Leaves; integer, boolean and piecewise-constant
 * operators (sign, floor, ceil, floordiv); comparisons and logic. */
#define VJP_INPUT NULL
#define VJP_CONST NULL
#define VJP_IOTA NULL
#define VJP_DIMSIZE NULL
#define VJP_NEG vjp_neg
#define VJP_ABS vjp_abs
#define VJP_SIGN NULL
#define VJP_RELU vjp_relu
#define VJP_FLOOR NULL
#define VJP_CEIL NULL
#define VJP_EXP vjp_exp
#define VJP_EXPM1 vjp_expm1
#define VJP_LOG vjp_log
#define VJP_LOG1P vjp_log1p
#define VJP_SQRT vjp_sqrt
#define VJP_RSQRT vjp_rsqrt
#define VJP_TANH vjp_tanh
#define VJP_SIGMOID vjp_sigmoid
#define VJP_SOFTPLUS vjp_softplus
#define VJP_ISFINITE NULL
#define VJP_NOT NULL
#define VJP_DETACH NULL
#define VJP_CAST vjp_cast
#define VJP_ADD vjp_add
#define VJP_SUB vjp_sub
#define VJP_MUL vjp_mul
#define VJP_DIV vjp_div
#define VJP_FLOORDIV NULL
#define VJP_MOD vjp_mod
#define VJP_POW vjp_pow
#define VJP_MIN vjp_min
#define VJP_MAX vjp_max
#define VJP_LT NULL
#define VJP_LE NULL
#define VJP_GT NULL
#define VJP_GE NULL
#define VJP_EQ NULL
#define VJP_NE NULL
#define VJP_AND NULL
#define VJP_OR NULL
#define VJP_WHERE vjp_where
#define VJP_EXPAND vjp_expand
#define VJP_RENAME vjp_rename
#define VJP_SUM vjp_sum
#define VJP_PROD vjp_prod
#define VJP_RMAX vjp_extremum
#define VJP_RMIN vjp_extremum
#define VJP_LSE vjp_lse
#define VJP_GATHER vjp_gather
#define VJP_FOUND_INF NULL
#define VJP_GRAD vjp_grad

const ad_vjp_fn ad_vjp_table[OP__COUNT] = {
#define X(name, str, arity, kind, typing) [OP_##name] = VJP_##name,
#include "ir/ops.def"
#undef X
};
