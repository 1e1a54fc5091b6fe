/* builtins.c - every builtin function, in one table: name, parameter names
 * (keywords), how many are required, and a handler.
 *
 * Handlers get the argument expressions already matched to parameters
 * (elab_bind_args) and evaluate them as they need: most as values, some as
 * an axis list (`axis=C`, `axis=(C, D)`, `axis=-1`), a dim (`one_hot(y, C)`)
 * or a compile-time number (`norm(x, p=2)`).
 *
 * Composite builtins are built from primitive IR so that autodiff needs no
 * rule of its own for them and gets PyTorch's subgradients:
 *   clamp(x, lo, hi)   where(x < lo, lo, where(x > hi, hi, x))
 *   log_softmax(x, a)  x - logsumexp(x, a);  softmax = exp(log_softmax)
 *   one_hot(y, C)      where(iota(C) == y, 1, 0) as f32
 *   mean(x, a)         sum(x, a) / (product of the sizes of a)
 *   norm(x, p)         sqrt(sum(x*x)), sum(|x|), max(|x|), sum(|x|^p)^(1/p)
 */
#include "frontend/fe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_BPARAMS 4

typedef value (*builtin_fn)(elab *E, const builtin *b, const ast_expr *call,
                            const ast_expr **args);

struct builtin {
    const char *name;
    const char *params[MAX_BPARAMS];
    int nrequired;
    builtin_fn fn;
    ir_op op;
};

/* ---- argument helpers ----------------------------------------------------------------- */

static value arg_value(elab *E, const ast_expr *a) { return a ? elab_expr(E, a) : v_none(); }

static ir_node *arg_strong(elab *E, const ast_expr *a, const char *what)
{
    return elab_expr_node(E, a, what);
}

/* One entry of an axis list: a dim name, an index variable, a position, or
 * a tensor standing for the dims it shares with x (`axis=query`: generic
 * code names "the dim that x shares with query" whatever its position).
 * Adds the dims to *out; false after reporting. */
static bool axis_item(elab *E, const ast_expr *a, ir_node *x, ir_dimset *out)
{
    int axes[IR_MAX_DIMS], rank = 0;
    IR_DIMSET_FOREACH(d, x->dims)
        axes[rank++] = d;
    if (a->kind == E_NAME) {
        const binding *b = elab_lookup(E, a->name);
        int d = b && b->index_dim >= 0 ? b->index_dim : b ? -1 : elab_dim_lookup(E, a->name);
        if (d >= 0 && !ir_dimset_has(x->dims, d)) {
            elab_error(E, a->loc, "this value has no dim %s (its dims are %s)", a->name,
                       elab_dims_str(E, x->dims));
            return false;
        }
        if (d >= 0) {
            *out |= ir_dimbit(d);
            return true;
        }
        if (!b) {
            elab_error(E, a->loc, "unknown dim '%s' (this value's dims are %s)", a->name,
                       elab_dims_str(E, x->dims));
            return false;
        }
    }
    value v = elab_expr(E, a);
    double c;
    if (v.kind == V_ERR)
        return false;
    if (v.kind == V_NODE && v.node->dims) {
        if (!(v.node->dims & x->dims)) {
            elab_error(E, a->loc, "this tensor, over %s, shares no dim with the value, over %s",
                       elab_dims_str(E, v.node->dims), elab_dims_str(E, x->dims));
            return false;
        }
        *out |= v.node->dims & x->dims;
        return true;
    }
    if (!elab_is_const(v, &c) || !ir_dtype_is_int((ir_dtype)v.node->dtype)) {
        elab_error(E, a->loc, "an axis is a dim name (axis=C) or a position (axis=-1)");
        return false;
    }
    if (c < 0)
        c += rank;
    if (c < 0 || c >= rank) {
        elab_error(E, a->loc, "axis %g is out of range for a value with dims %s",
                   ir_const_value(v.node), elab_dims_str(E, x->dims));
        return false;
    }
    *out |= ir_dimbit(axes[(int)c]);
    return true;
}

/* The dims named by an axis argument; 0 with *ok=false after an error. */
static ir_dimset axis_set(elab *E, const ast_expr *a, ir_node *x, bool *ok)
{
    *ok = true;
    const ast_expr *const *items = a->kind == E_TUPLE ? (const ast_expr *const *)a->items : &a;
    int n = a->kind == E_TUPLE ? a->nitems : 1;
    ir_dimset s = 0;
    for (int i = 0; i < n; i++)
        if (!axis_item(E, items[i], x, &s)) {
            *ok = false;
            return 0;
        }
    if (!s) {
        elab_error(E, a->loc, "an empty axis list");
        *ok = false;
    }
    return s;
}

static ir_node *to_float(elab *E, ir_node *x, src_loc loc)
{
    return x && ir_dtype_is_int((ir_dtype)x->dtype) ? ir_cast(E->g, DT_F32, x, loc) : x;
}

static bool not_bool(elab *E, ir_node *x, const char *name, src_loc loc)
{
    if (x && x->dtype == DT_BOOL) {
        elab_error(E, loc, "%s() of bool: convert with i64(...) or f32(...) first", name);
        return false;
    }
    return x != NULL;
}

/* ---- reductions -------------------------------------------------------------------------- */

bool builtin_is_reducer(const char *name)
{
    static const char *const r[] = {"sum", "mean", "max", "min", "prod", "logsumexp"};
    for (size_t i = 0; i < SUP_ARRAY_LEN(r); i++)
        if (strcmp(r[i], name) == 0)
            return true;
    return false;
}

/* The number of elements over `axes`, as a node of dtype dt. */
static ir_node *count_of(elab *E, ir_dimset axes, ir_dtype dt, src_loc loc)
{
    double known = 1;
    ir_node *dyn = NULL;
    IR_DIMSET_FOREACH(d, axes) {
        int64_t s = ir_dim_size(E->g, d);
        if (s >= 0) {
            known *= (double)s;
            continue;
        }
        ir_node *ds = ir_dimsize(E->g, E->g->dims[d].root, loc);
        dyn = dyn ? ir_binary(E->g, OP_MUL, dyn, ds, loc) : ds;
    }
    ir_node *k = ir_const(E->g, dt, known, loc);
    if (!dyn)
        return k;
    dyn = ir_cast(E->g, dt, dyn, loc);
    return known == 1 ? dyn : ir_binary(E->g, OP_MUL, dyn, k, loc);
}

value builtin_reduce(elab *E, const char *name, value v, ir_dimset axes, src_loc loc)
{
    ir_node *x = elab_strong(E, v, loc, "a reduction's operand");
    if (!not_bool(E, x, name, loc))
        return v_err();
    ir_op op = OP_SUM;
    if (strcmp(name, "max") == 0)
        op = OP_RMAX;
    else if (strcmp(name, "min") == 0)
        op = OP_RMIN;
    else if (strcmp(name, "prod") == 0)
        op = OP_PROD;
    else if (strcmp(name, "logsumexp") == 0 || strcmp(name, "mean") == 0)
        x = to_float(E, x, loc), op = strcmp(name, "mean") == 0 ? OP_SUM : OP_LSE;
    ir_node *r = ir_reduce(E->g, op, x, axes, loc);
    if (r && strcmp(name, "mean") == 0 && axes)
        r = ir_binary(E->g, OP_DIV, r, count_of(E, axes, (ir_dtype)x->dtype, loc), loc);
    return r ? v_node(r) : elab_ir_fail(E, loc);
}

/* sum(x), sum(x, axis=C), sum(x, keep=C): the whole tensor when no axis is
 * given; keep= names the dims to keep (every other one is reduced), which
 * lets generic code reduce "all but the class axis" of any rank
 * (keep=row_loss: to the dims of row_loss). */
static value h_reduce(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    ir_node *x = arg_strong(E, a[0], "the operand");
    if (!x)
        return v_err();
    if (a[1] && a[2]) {
        elab_error(E, a[2]->loc, "%s() takes axis= (the dims to reduce) or keep= (the dims to "
                                 "keep), not both", b->name);
        return v_err();
    }
    bool ok = true;
    ir_dimset axes = x->dims;
    if (a[1])
        axes = axis_set(E, a[1], x, &ok);
    else if (a[2])
        axes = x->dims & ~axis_set(E, a[2], x, &ok);
    return ok ? builtin_reduce(E, b->name, v_node(x), axes, call->loc) : v_err();
}

/* max(x) and max(x, axis=C) reduce; max(a, b) is elementwise. */
static value h_minmax(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    if (!a[1])
        return h_reduce(E, b, call, (const ast_expr *[]){a[0], a[2], a[3]});
    if (a[2] || a[3]) {
        elab_error(E, (a[2] ? a[2] : a[3])->loc, "%s(a, b) is elementwise and takes no axis",
                   b->name);
        return v_err();
    }
    value x = arg_value(E, a[0]), y = arg_value(E, a[1]);
    return elab_binop(E, b->op, x, y, call->loc);
}

/* norm(x, p=2, axis=...) */
static value h_norm(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    ir_node *x = to_float(E, arg_strong(E, a[0], "the operand"), call->loc);
    if (!not_bool(E, x, "norm", call->loc))
        return v_err();
    double p = 2;
    if (a[1]) {
        value pv = elab_expr(E, a[1]);
        if (pv.kind == V_ERR)
            return pv;
        if (!elab_is_const(pv, &p)) {
            elab_error(E, a[1]->loc, "p must be a number known at compile time");
            return v_err();
        }
    }
    bool ok = true;
    ir_dimset axes = a[2] ? axis_set(E, a[2], x, &ok) : x->dims;
    if (!ok)
        return v_err();
    ir_graph *g = E->g;
    src_loc l = call->loc;
    ir_node *ax = ir_unary(g, OP_ABS, x, l), *r;
    ir_dtype dt = (ir_dtype)x->dtype;
    if (p == 2)
        r = ir_unary(g, OP_SQRT, ir_reduce(g, OP_SUM, ir_binary(g, OP_MUL, x, x, l), axes, l), l);
    else if (p == 1)
        r = ir_reduce(g, OP_SUM, ax, axes, l);
    else if (isinf(p))
        r = ir_reduce(g, p > 0 ? OP_RMAX : OP_RMIN, ax, axes, l);
    else if (p == 0)
        r = ir_reduce(g, OP_SUM, ir_cast(g, dt, ir_binary(g, OP_NE, x, ir_const(g, dt, 0, l), l), l),
                      axes, l);
    else
        r = ir_binary(g, OP_POW,
                      ir_reduce(g, OP_SUM, ir_binary(g, OP_POW, ax, ir_const(g, dt, p, l), l), axes, l),
                      ir_const(g, dt, 1 / p, l), l);
    (void)b;
    return r ? v_node(r) : elab_ir_fail(E, l);
}

/* ---- elementwise ------------------------------------------------------------------------- */

static value h_unary(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    return elab_unary_op(E, b->op, arg_value(E, a[0]), call->loc);
}

static value h_pow(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    value x = arg_value(E, a[0]), y = arg_value(E, a[1]);
    return elab_binary(E, TK_CARET, x, y, call->loc);
}

static value h_where(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    value c = arg_value(E, a[0]), x = arg_value(E, a[1]), y = arg_value(E, a[2]);
    return elab_where(E, c, x, y, call->loc);
}

/* clamp(x, min=lo, max=hi) = where(x < lo, lo, where(x > hi, hi, x)); either
 * bound may be left out. At a bound the gradient flows to x, as in PyTorch. */
static value h_clamp(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    if (!a[1] && !a[2]) {
        elab_error(E, call->loc, "clamp() needs min=, max= or both");
        return v_err();
    }
    value x = arg_value(E, a[0]), r = x;
    src_loc l = call->loc;
    if (a[2]) {
        value hi = arg_value(E, a[2]);
        r = elab_where(E, elab_binop(E, OP_GT, x, hi, l), hi, r, l);
    }
    if (a[1]) {
        value lo = arg_value(E, a[1]);
        r = elab_where(E, elab_binop(E, OP_LT, x, lo, l), lo, r, l);
    }
    return r;
}

static value h_isfinite(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    ir_node *x = to_float(E, arg_strong(E, a[0], "the operand"), call->loc);
    if (!x)
        return v_err();
    if (x->dtype == DT_BOOL) {
        elab_error(E, call->loc, "isfinite() of bool");
        return v_err();
    }
    ir_node *n = ir_unary(E->g, b->op, x, call->loc);
    return n ? v_node(n) : elab_ir_fail(E, call->loc);
}

static value h_cast(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    value v = arg_value(E, a[0]);
    if (v.kind == V_ERR)
        return v;
    if (v.kind != V_NODE) {
        elab_error(E, call->loc, "%s() converts numbers and tensors, not %s", b->name,
                   elab_value_kind_name(v));
        return v_err();
    }
    ir_dtype dt = (ir_dtype)ir_dtype_by_name(b->name);
    double c;
    if (v.weak && dt == DT_BOOL && elab_is_const(v, &c))
        return v_node(ir_const(E->g, DT_BOOL, c != 0, call->loc));
    ir_node *n = v.weak ? elab_weak_to(E, v, dt, call->loc) : ir_cast(E->g, dt, v.node, call->loc);
    return n ? v_node(n) : elab_ir_fail(E, call->loc);
}

/* ---- axis-wise ------------------------------------------------------------------------ */

/* log_softmax(x, axis=C) = x - logsumexp(x, axis=C); softmax is its exp. */
static value h_softmax(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    ir_node *x = to_float(E, arg_strong(E, a[0], "the operand"), call->loc);
    if (!not_bool(E, x, b->name, call->loc))
        return v_err();
    bool ok = true;
    ir_dimset axes = x->dims;
    if (a[1])
        axes = axis_set(E, a[1], x, &ok);
    else if (ir_dimset_count(x->dims) != 1) {
        elab_error(E, call->loc, "%s() of a value over %s needs axis=", b->name,
                   elab_dims_str(E, x->dims));
        return v_err();
    }
    if (!ok)
        return v_err();
    ir_graph *g = E->g;
    ir_node *lsm = ir_binary(g, OP_SUB, x, ir_reduce(g, OP_LSE, x, axes, call->loc), call->loc);
    if (b->op == OP_EXP)
        lsm = ir_unary(g, OP_EXP, lsm, call->loc);
    return lsm ? v_node(lsm) : elab_ir_fail(E, call->loc);
}

/* The dim an argument names: a dim name, or a literal size (one_hot(y, 10)). */
static int dim_arg(elab *E, const ast_expr *a)
{
    if (a->kind == E_NAME && !elab_lookup(E, a->name)) {
        int d = elab_dim_lookup(E, a->name);
        if (d < 0)
            elab_error(E, a->loc, "unknown dim '%s'", a->name);
        return d;
    }
    value v = elab_expr(E, a);
    double c;
    if (v.kind == V_ERR)
        return -1;
    if (!elab_is_const(v, &c) || !ir_dtype_is_int((ir_dtype)v.node->dtype) || c < 1 ||
        c > (double)((int64_t)1 << 40)) {
        elab_error(E, a->loc, "expected a dim: a dim name (C) or a positive integer size");
        return -1;
    }
    char name[32];
    snprintf(name, sizeof name, "%lld", (long long)c);
    return elab_dim_get(E, name, (int64_t)c, -1, a->loc);
}

/* dot(a, b): a * b summed over the dims a and b share (a contraction by dim
 * name: [N, D] with [M, D] gives [N, M]), whatever their positions. */
static value h_dot(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    value x = arg_value(E, a[0]), y = arg_value(E, a[1]);
    value p = elab_binary(E, TK_STAR, x, y, call->loc);
    if (p.kind != V_NODE)
        return p;
    ir_dimset shared = x.kind == V_NODE && y.kind == V_NODE ? x.node->dims & y.node->dims : 0;
    return builtin_reduce(E, "sum", p, shared, call->loc);
}

/* iota(x, axis=C): the positions 0, 1, ... along one dim of x, as i64 over
 * that dim alone (torch.arange(x.size(dim))), e.g. to compare with labels
 * in code that does not know the dim's name. */
static value h_iota(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    ir_node *x = arg_strong(E, a[0], "iota()'s operand");
    if (!x)
        return v_err();
    bool ok = true;
    ir_dimset axes = axis_set(E, a[1], x, &ok);
    if (!ok)
        return v_err();
    if (ir_dimset_count(axes) != 1) {
        elab_error(E, a[1]->loc, "iota() takes one axis");
        return v_err();
    }
    ir_node *n = ir_iota(E->g, ir_dimset_first(axes), call->loc);
    return n ? v_node(n) : elab_ir_fail(E, call->loc);
}

static value h_one_hot(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    ir_node *y = arg_strong(E, a[0], "the labels");
    int c = dim_arg(E, a[1]);
    if (!y || c < 0)
        return v_err();
    if (!ir_dtype_is_int((ir_dtype)y->dtype)) {
        elab_error(E, a[0]->loc, "one_hot() needs integer labels, not %s",
                   ir_dtype_name((ir_dtype)y->dtype));
        return v_err();
    }
    if (ir_dimset_has(y->dims, c)) {
        elab_error(E, a[1]->loc, "the labels already have dim %s", E->g->dims[c].name);
        return v_err();
    }
    ir_graph *g = E->g;
    src_loc l = call->loc;
    ir_node *hit = ir_binary(g, OP_EQ, ir_iota(g, c, l), y, l);
    ir_node *n = ir_where(g, hit, ir_const(g, DT_F32, 1, l), ir_const(g, DT_F32, 0, l), l);
    return n ? v_node(n) : elab_ir_fail(E, l);
}

/* gather(x, idx, axis=C): x's dim C is replaced by idx's dims. */
static value h_gather(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    ir_node *x = arg_strong(E, a[0], "the source");
    value iv = arg_value(E, a[1]);
    if (!x || iv.kind == V_ERR)
        return v_err();
    if (iv.kind != V_NODE || !ir_dtype_is_int((ir_dtype)iv.node->dtype)) {
        elab_error(E, a[1]->loc, "gather() needs integer indices, not %s",
                   iv.kind == V_NODE ? ir_dtype_name((ir_dtype)iv.node->dtype)
                                     : elab_value_kind_name(iv));
        return v_err();
    }
    bool ok = true;
    ir_dimset axes = axis_set(E, a[2], x, &ok);
    if (!ok)
        return v_err();
    if (ir_dimset_count(axes) != 1) {
        elab_error(E, a[2]->loc, "gather() takes one axis");
        return v_err();
    }
    ir_node *idx = elab_weak_to(E, iv, DT_I64, a[1]->loc);
    ir_node *n = ir_gather(E->g, x, axes, &idx, call->loc);
    return n ? v_node(n) : elab_ir_fail(E, call->loc);
}

/* ---- compile-time ------------------------------------------------------------------------ */

/* grad(expr, x): the gradient of a scalar expression w.r.t. an input. */
static value h_grad(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    value wrt = arg_value(E, a[1]);
    value ev = arg_value(E, a[0]);
    if (wrt.kind == V_ERR || ev.kind == V_ERR)
        return v_err();
    if (wrt.kind != V_NODE || wrt.weak || wrt.node->op != OP_INPUT) {
        elab_error(E, a[1]->loc, "grad() is taken with respect to an input of the loss (a "
                                 "parameter); this is %s computed here",
                   elab_value_kind_name(wrt));
        return v_err();
    }
    const ir_input *in = &E->g->inputs[wrt.node->attr.ival];
    if (!ir_dtype_is_float(in->dtype)) {
        elab_error(E, a[1]->loc, "cannot take the gradient with respect to '%s': it is %s, "
                                 "not a float", in->name, ir_dtype_name(in->dtype));
        return v_err();
    }
    ir_node *y = elab_strong(E, ev, a[0]->loc, "grad()'s expression");
    if (!y)
        return v_err();
    if (y->dims) {
        elab_error(E, a[0]->loc, "grad() needs a scalar expression, but this one has dims %s: "
                                 "reduce it first, e.g. sum(...)", elab_dims_str(E, y->dims));
        return v_err();
    }
    if (!ir_dtype_is_float((ir_dtype)y->dtype)) {
        elab_error(E, a[0]->loc, "grad() needs a float expression, not %s",
                   ir_dtype_name((ir_dtype)y->dtype));
        return v_err();
    }
    ir_node *ops[2] = {y, wrt.node};
    ir_node *n = ir_make(E->g, OP_GRAD, DT_F32, ops, 2, NULL, call->loc);
    return n ? v_node(n) : elab_ir_fail(E, call->loc);
}

/* error("message"): a compile-time error, for library options checks. */
static value h_error(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    value m = arg_value(E, a[0]);
    if (m.kind == V_STR && m.str)
        elab_error_at_user(E, call->loc, "%s", m.str);
    else if (m.kind != V_ERR && m.kind != V_STR)
        elab_error(E, call->loc, "error() takes a string");
    return v_err();
}

/* rank(x): the number of dims, a compile-time integer. */
static value h_rank(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    ir_node *x = arg_strong(E, a[0], "rank()'s operand");
    if (!x)
        return v_err();
    return v_weak(ir_const(E->g, DT_I64, ir_dimset_count(x->dims), call->loc));
}

/* size(x, axis): the size of one dim (a weak integer, constant if fixed). */
static value h_size(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    ir_node *x = arg_strong(E, a[0], "size()'s operand");
    if (!x)
        return v_err();
    bool ok = true;
    ir_dimset axes = axis_set(E, a[1], x, &ok);
    if (!ok)
        return v_err();
    return v_weak(count_of(E, axes, DT_I64, call->loc));
}

/* is_constant(x): whether x is known at compile time (a literal, a folded
 * expression, a fixed size), so a library can choose code for the common
 * constant case (label_smoothing=0.0) and still accept a run-time value. */
static value h_is_constant(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    value v = arg_value(E, a[0]);
    if (v.kind == V_ERR)
        return v;
    bool k = v.kind != V_NODE || elab_is_const(v, NULL);
    return v_node(ir_const(E->g, DT_BOOL, k, call->loc));
}

/* is_floating_point(x): whether x has a float dtype (compile-time bool), for
 * library code that takes class indices or probabilities. */
static value h_is_float(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)b;
    value v = arg_value(E, a[0]);
    if (v.kind == V_ERR)
        return v;
    bool f = v.kind == V_NODE && ir_dtype_is_float((ir_dtype)v.node->dtype);
    return v_node(ir_const(E->g, DT_BOOL, f, call->loc));
}

/* detach(x): x's value without its gradient (PyTorch's x.detach()). */
static value h_detach(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    value v = arg_value(E, a[0]);
    if (v.kind == V_ERR || (v.kind == V_NODE && v.weak))
        return v; /* a constant has no gradient anyway */
    if (v.kind != V_NODE) {
        elab_error(E, call->loc, "detach() takes a number or a tensor, not %s",
                   elab_value_kind_name(v));
        return v_err();
    }
    ir_node *n = ir_unary(E->g, b->op, v.node, call->loc);
    return n ? v_node(n) : elab_ir_fail(E, call->loc);
}

/* found_inf(): whether a gradient the backward kernel computes holds an inf
 * or a NaN (passes/strip_ad.c); false in a forward kernel. Only for `out`s. */
static value h_found_inf(elab *E, const builtin *b, const ast_expr *call, const ast_expr **a)
{
    (void)a;
    ir_node *n = ir_make(E->g, b->op, DT_BOOL, NULL, 0, NULL, call->loc);
    return n ? v_node(n) : elab_ir_fail(E, call->loc);
}

/* ---- the table ---------------------------------------------------------------------------- */

#define UNARY(n, o) {n, {"input"}, 1, h_unary, o}
#define CAST(n) {n, {"input"}, 1, h_cast, OP_CAST}

static const builtin builtins[] = {
    UNARY("abs", OP_ABS), UNARY("sign", OP_SIGN), UNARY("exp", OP_EXP),
    UNARY("log", OP_LOG), UNARY("log1p", OP_LOG1P), UNARY("expm1", OP_EXPM1),
    UNARY("sqrt", OP_SQRT), UNARY("rsqrt", OP_RSQRT), UNARY("tanh", OP_TANH),
    UNARY("sigmoid", OP_SIGMOID), UNARY("softplus", OP_SOFTPLUS), UNARY("relu", OP_RELU),
    UNARY("floor", OP_FLOOR), UNARY("ceil", OP_CEIL),
    {"isfinite", {"input"}, 1, h_isfinite, OP_ISFINITE},
    {"detach", {"input"}, 1, h_detach, OP_DETACH},
    {"found_inf", {NULL}, 0, h_found_inf, OP_FOUND_INF},
    {"pow", {"input", "exponent"}, 2, h_pow, OP_POW},
    {"where", {"condition", "input", "other"}, 3, h_where, OP_WHERE},
    {"clamp", {"input", "min", "max"}, 1, h_clamp, OP_WHERE},
    {"min", {"input", "other", "axis", "keep"}, 1, h_minmax, OP_MIN},
    {"max", {"input", "other", "axis", "keep"}, 1, h_minmax, OP_MAX},
    {"sum", {"input", "axis", "keep"}, 1, h_reduce, OP_SUM},
    {"mean", {"input", "axis", "keep"}, 1, h_reduce, OP_SUM},
    {"prod", {"input", "axis", "keep"}, 1, h_reduce, OP_PROD},
    {"logsumexp", {"input", "axis", "keep"}, 1, h_reduce, OP_LSE},
    {"norm", {"input", "p", "axis"}, 1, h_norm, OP_SUM},
    {"softmax", {"input", "axis"}, 1, h_softmax, OP_EXP},
    {"log_softmax", {"input", "axis"}, 1, h_softmax, OP_SUB},
    {"one_hot", {"input", "num_classes"}, 2, h_one_hot, OP_WHERE},
    {"gather", {"input", "index", "axis"}, 3, h_gather, OP_GATHER},
    {"iota", {"input", "axis"}, 2, h_iota, OP_IOTA},
    {"dot", {"input", "other"}, 2, h_dot, OP_SUM},
    CAST("f32"), CAST("f64"), CAST("i32"), CAST("i64"), CAST("bool"),
    {"grad", {"output", "input"}, 2, h_grad, OP_GRAD},
    {"error", {"message"}, 1, h_error, OP_CONST},
    {"rank", {"input"}, 1, h_rank, OP_CONST},
    {"size", {"input", "axis"}, 2, h_size, OP_DIMSIZE},
    {"is_constant", {"input"}, 1, h_is_constant, OP_CONST},
    {"is_floating_point", {"input"}, 1, h_is_float, OP_CONST},
};

const builtin *builtin_find(const char *name)
{
    for (size_t i = 0; i < SUP_ARRAY_LEN(builtins); i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

const char *builtin_name(int i)
{
    return i >= 0 && (size_t)i < SUP_ARRAY_LEN(builtins) ? builtins[i].name : NULL;
}

value builtin_call(elab *E, const builtin *b, const ast_expr *call)
{
    int n = 0;
    bool has_def[MAX_BPARAMS];
    while (n < MAX_BPARAMS && b->params[n]) {
        has_def[n] = n >= b->nrequired;
        n++;
    }
    call_params cp = {n, b->params, has_def, b->name};
    const ast_expr *slots[MAX_BPARAMS] = {0};
    if (!elab_bind_args(E, &cp, call->args, call->nargs, call->loc, slots))
        return v_err();
    return b->fn(E, b, call, slots);
}
