/* stabilize.c - rewrite textbook formulas into forms that stay finite.
 *
 * A user who writes binary cross-entropy as
 *     -(y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))
 * gets log(0) = -inf as soon as |x| passes about 17 in f32 (37 in f64). The
 * rewrites below replace such compositions by operators that are evaluated
 * stably (softplus, log1p, expm1, logsumexp with its max shift, sigmoid):
 *
 *   log(sigmoid(u))            -> -softplus(-u)
 *   1 - sigmoid(u)             -> sigmoid(-u)          (no cancellation)
 *   log(1 - sigmoid(u))        -> -softplus(u)         (by the two above)
 *   log(1 + u), log(u + 1)     -> log1p(u)
 *   log(1 - u)                 -> log1p(-u)
 *   log1p(exp(u))              -> softplus(u)
 *   log(exp(u) / d)            -> u - log(d)           (log_softmax when d is
 *   log(sum[A](exp(u)))        -> logsumexp[A](u)       sum(exp(u)): u - lse(u))
 *   log(exp(u))                -> u
 *   log(gather(p, i))          -> gather(log(p), i)    only when log(p) itself
 *                                                      rewrites (cross-entropy
 *                                                      from softmax)
 *   log(where(c, a, b))        -> where(c, log(a), log(b))   when a branch's log
 *   1 - where(c, a, b)         -> where(c, 1 - a, 1 - b)     (or 1 - branch)
 *                                                      rewrites (focal loss's
 *                                                      p_t = where(y, p, 1 - p))
 *   exp(u) - 1, exp(u) + -1    -> expm1(u)
 *   exp(u) / (1 + exp(u))      -> sigmoid(u)
 *   1 / (1 + exp(u))           -> sigmoid(-u)          (so 1/(1+exp(-x)) is sigmoid(x))
 *
 * Each holds exactly in real arithmetic; in floating point the right side is
 * at least as accurate everywhere and finite where the left side overflows.
 * Not rewritten: log(exp(a) + exp(b)) -> max(a, b) + softplus(-|a - b|),
 * because it turns a = b = inf into inf - inf = NaN where the textbook form
 * gives inf, and guarding it costs more than the form is worth.
 *
 * The pass runs before autodiff (so gradients are taken of the stable forms)
 * and after it (VJP rules write 1 - sigmoid too). Like simplify, every node
 * goes through one constructor, stab(), which rewrites new nodes as well, so
 * rewrites cascade bottom-up in one rebuild.
 */
#include "passes/passes.h"

static ir_node *stab(ir_graph *g, ir_op op, ir_dtype dt, ir_node *const *ops, int nops,
                     const ir_attr *attr, src_loc loc);

static ir_node *st_un(ir_graph *g, ir_op op, ir_node *x, src_loc loc)
{
    return x ? stab(g, op, (ir_dtype)x->dtype, &x, 1, NULL, loc) : NULL;
}

static ir_node *st_bin(ir_graph *g, ir_op op, ir_node *a, ir_node *b, src_loc loc)
{
    ir_node *ops[2] = {a, b};
    return a ? stab(g, op, (ir_dtype)a->dtype, ops, 2, NULL, loc) : NULL;
}

/* -x, without stacking negations. */
static ir_node *neg(ir_graph *g, ir_node *x, src_loc loc)
{
    return x->op == OP_NEG ? x->ops[0] : st_un(g, OP_NEG, x, loc);
}

static bool is_one(const ir_node *n)
{
    while (n->op == OP_EXPAND)
        n = n->ops[0];
    return ir_is_const_value(n, 1);
}

/* n = 1 + u or u + 1: returns u. */
static ir_node *one_plus(const ir_node *n)
{
    if (n->op != OP_ADD)
        return NULL;
    if (is_one(n->ops[0]))
        return n->ops[1];
    return is_one(n->ops[1]) ? n->ops[0] : NULL;
}

/* ---- the rewrites, on the node about to be built (op on ops) ------------------------- */

static ir_node *log_of(ir_graph *g, ir_node *x, src_loc loc);

/* log(sum[A](exp(u))) -> logsumexp[A](u) */
static ir_node *log_of_sum(ir_graph *g, ir_node *x, src_loc loc)
{
    if (x->ops[0]->op != OP_EXP)
        return NULL;
    ir_attr a = {.axes = x->attr.axes};
    ir_node *e = x->ops[0]->ops[0];
    return stab(g, OP_LSE, (ir_dtype)e->dtype, &e, 1, &a, loc);
}

/* log(gather(p, i)) -> gather(log(p), i), only when log(p) has a stable form */
static ir_node *log_of_gather(ir_graph *g, ir_node *x, src_loc loc)
{
    ir_node *lp = log_of(g, x->ops[0], loc);
    if (!lp)
        return NULL;
    ir_node *ops[1 + IR_MAX_RANK];
    ops[0] = lp;
    for (int i = 1; i < x->nops; i++)
        ops[i] = x->ops[i];
    return stab(g, OP_GATHER, (ir_dtype)lp->dtype, ops, x->nops, &x->attr, loc);
}

/* log(where(c, a, b)) -> where(c, log(a), log(b)) when a branch has a stable
 * log (focal loss: log(where(y == 1, p, 1 - p)) with p = sigmoid(x)). */
static ir_node *log_of_where(ir_graph *g, ir_node *x, src_loc loc)
{
    ir_node *la = log_of(g, x->ops[1], loc), *lb = log_of(g, x->ops[2], loc);
    if (!la && !lb)
        return NULL;
    la = la ? la : st_un(g, OP_LOG, x->ops[1], loc);
    lb = lb ? lb : st_un(g, OP_LOG, x->ops[2], loc);
    ir_node *ops[3] = {x->ops[0], la, lb};
    return stab(g, OP_WHERE, (ir_dtype)la->dtype, ops, 3, NULL, loc);
}

/* The stable form of log(x) by the operator of x, or NULL if none is known. */
static ir_node *log_of(ir_graph *g, ir_node *x, src_loc loc)
{
    ir_node *u;
    if (x->op == OP_SIGMOID)
        return neg(g, st_un(g, OP_SOFTPLUS, neg(g, x->ops[0], loc), loc), loc);
    if (x->op == OP_EXP)
        return x->ops[0];
    if (x->op == OP_ADD)
        return (u = one_plus(x)) ? st_un(g, OP_LOG1P, u, loc) : NULL;
    if (x->op == OP_SUB)
        return is_one(x->ops[0]) ? st_un(g, OP_LOG1P, neg(g, x->ops[1], loc), loc) : NULL;
    if (x->op == OP_DIV && x->ops[0]->op == OP_EXP)
        return st_bin(g, OP_SUB, x->ops[0]->ops[0], st_un(g, OP_LOG, x->ops[1], loc), loc);
    if (x->op == OP_SUM)
        return log_of_sum(g, x, loc);
    if (x->op == OP_GATHER)
        return log_of_gather(g, x, loc);
    if (x->op == OP_WHERE)
        return log_of_where(g, x, loc);
    if (x->op == OP_EXPAND) /* look through broadcasts */
        return ir_expand(g, st_un(g, OP_LOG, x->ops[0], loc), x->dims, loc);
    return NULL;
}

static ir_node *log1p_of(ir_graph *g, ir_node *x, src_loc loc)
{
    if (x->op == OP_EXP)
        return st_un(g, OP_SOFTPLUS, x->ops[0], loc);
    /* log1p(-sigmoid(u)) = log(1 - sigmoid(u)) = log(sigmoid(-u)) */
    if (x->op == OP_NEG && x->ops[0]->op == OP_SIGMOID)
        return neg(g, st_un(g, OP_SOFTPLUS, x->ops[0]->ops[0], loc), loc);
    return NULL;
}

static ir_node *sub_of(ir_graph *g, ir_node *a, ir_node *b, src_loc loc)
{
    if (a->op == OP_EXP && is_one(b))
        return st_un(g, OP_EXPM1, a->ops[0], loc);
    if (is_one(a) && b->op == OP_SIGMOID)
        return st_un(g, OP_SIGMOID, neg(g, b->ops[0], loc), loc);
    /* 1 - where(c, u, v) -> where(c, 1 - u, 1 - v) when a branch is a sigmoid */
    if (is_one(a) && b->op == OP_WHERE &&
        (b->ops[1]->op == OP_SIGMOID || b->ops[2]->op == OP_SIGMOID)) {
        ir_node *ops[3] = {b->ops[0], st_bin(g, OP_SUB, a, b->ops[1], loc),
                           st_bin(g, OP_SUB, a, b->ops[2], loc)};
        return ops[1] && ops[2] ? stab(g, OP_WHERE, (ir_dtype)b->dtype, ops, 3, NULL, loc)
                                : NULL;
    }
    return NULL;
}

static bool is_minus_one(const ir_node *n)
{
    while (n->op == OP_EXPAND)
        n = n->ops[0];
    return ir_is_const_value(n, -1);
}

static ir_node *add_of(ir_graph *g, ir_node *a, ir_node *b, src_loc loc)
{
    if (a->op == OP_EXP && is_minus_one(b))
        return st_un(g, OP_EXPM1, a->ops[0], loc);
    if (b->op == OP_EXP && is_minus_one(a))
        return st_un(g, OP_EXPM1, b->ops[0], loc);
    return NULL;
}

static ir_node *div_of(ir_graph *g, ir_node *a, ir_node *b, src_loc loc)
{
    ir_node *u = one_plus(b);
    if (!u || u->op != OP_EXP)
        return NULL;
    if (a == u) /* exp(u) / (1 + exp(u)) */
        return st_un(g, OP_SIGMOID, u->ops[0], loc);
    if (is_one(a)) /* 1 / (1 + exp(u)) */
        return st_un(g, OP_SIGMOID, neg(g, u->ops[0], loc), loc);
    return NULL;
}

static ir_node *r_log(ir_graph *g, ir_node *const *ops, src_loc loc)
{
    return log_of(g, ops[0], loc);
}
static ir_node *r_log1p(ir_graph *g, ir_node *const *ops, src_loc loc)
{
    return log1p_of(g, ops[0], loc);
}
static ir_node *r_sub(ir_graph *g, ir_node *const *ops, src_loc loc)
{
    return sub_of(g, ops[0], ops[1], loc);
}
static ir_node *r_add(ir_graph *g, ir_node *const *ops, src_loc loc)
{
    return add_of(g, ops[0], ops[1], loc);
}
static ir_node *r_div(ir_graph *g, ir_node *const *ops, src_loc loc)
{
    return div_of(g, ops[0], ops[1], loc);
}
static ir_node *r_neg(ir_graph *g, ir_node *const *ops, src_loc loc)
{
    return ops[0]->op == OP_NEG ? ops[0]->ops[0] : NULL;
}

/* One entry per operator of ir/ops.def (a new operator must be listed here,
 * or this file does not compile); NULL: already as stable as its operands. */
typedef ir_node *(*stab_rule)(ir_graph *g, ir_node *const *ops, src_loc loc);
#define STAB_INPUT NULL
#define STAB_CONST NULL
#define STAB_IOTA NULL
#define STAB_DIMSIZE NULL
#define STAB_NEG r_neg
#define STAB_ABS NULL
#define STAB_SIGN NULL
#define STAB_RELU NULL
#define STAB_FLOOR NULL
#define STAB_CEIL NULL
#define STAB_EXP NULL
#define STAB_EXPM1 NULL
#define STAB_LOG r_log
#define STAB_LOG1P r_log1p
#define STAB_SQRT NULL
#define STAB_RSQRT NULL
#define STAB_TANH NULL
#define STAB_SIGMOID NULL
#define STAB_SOFTPLUS NULL
#define STAB_ISFINITE NULL
#define STAB_NOT NULL
#define STAB_DETACH NULL
#define STAB_CAST NULL
#define STAB_ADD r_add
#define STAB_SUB r_sub
#define STAB_MUL NULL
#define STAB_DIV r_div
#define STAB_FLOORDIV NULL
#define STAB_MOD NULL
#define STAB_POW NULL
#define STAB_MIN NULL
#define STAB_MAX NULL
#define STAB_LT NULL
#define STAB_LE NULL
#define STAB_GT NULL
#define STAB_GE NULL
#define STAB_EQ NULL
#define STAB_NE NULL
#define STAB_AND NULL
#define STAB_OR NULL
#define STAB_WHERE NULL
#define STAB_EXPAND NULL
#define STAB_RENAME NULL
#define STAB_SUM NULL
#define STAB_PROD NULL
#define STAB_RMAX NULL
#define STAB_RMIN NULL
#define STAB_LSE NULL
#define STAB_GATHER NULL
#define STAB_FOUND_INF NULL
#define STAB_GRAD NULL

static const stab_rule rules[OP__COUNT] = {
#define X(name, str, arity, kind, typing) [OP_##name] = STAB_##name,
#include "ir/ops.def"
#undef X
};

static ir_node *stab(ir_graph *g, ir_op op, ir_dtype dt, ir_node *const *ops, int nops,
                     const ir_attr *attr, src_loc loc)
{
    ir_dtype rdt;
    ir_dimset dims;
    for (int i = 0; i < nops; i++)
        if (!ops[i])
            return NULL;
    if (!ir_infer(g, op, dt, ops, nops, attr, &rdt, &dims))
        return NULL;
    ir_node *r = rules[op] ? rules[op](g, ops, loc) : NULL;
    /* a rewrite keeps the node's type; a narrower value is broadcast back */
    if (r && r->dtype == rdt && ir_dimset_subset(r->dims, dims))
        return ir_expand(g, r, dims, loc);
    return ir_make(g, op, dt, ops, nops, attr, loc);
}

static ir_node *rewrite(void *ctx, ir_graph *dst, const ir_node *old, ir_node *const *ops)
{
    (void)ctx;
    return stab(dst, (ir_op)old->op, (ir_dtype)old->dtype, ops, old->nops, &old->attr,
                old->loc);
}

ir_graph *pass_stabilize(const ir_graph *g) { return ir_rebuild(g, rewrite, NULL); }
