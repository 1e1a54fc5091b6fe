/* elab_expr.c - expressions: names, literals, operators, where.
 *
 * Weak numbers. A literal has no dtype of its own: `0.5 * x` is f32 when x
 * is f32 and f64 when x is f64, as in PyTorch. A weak value carries an f64
 * (float) or i64 (integer) node until it meets a strong operand, then takes
 * the strong dtype (a weak float meeting a strong integer makes both f32).
 * Arithmetic on weak constants is folded here, so `-1`, `2 ^ 0.5` and
 * `N // 2` with N fixed stay exact constants. A dim size (`N`) is a weak
 * integer; an index variable is a strong i64 IOTA.
 *
 * Mixing an index dim with its root (a value over [i, j] with one over [N],
 * where i and j range over N) is an error outside index notation: it would
 * broadcast silently into [N, i, j], which is never what was meant.
 */
#include "frontend/fe.h"

#include <math.h>
#include <string.h>

#define MAX_EXPR_DEPTH 1000

const char *elab_value_kind_name(value v)
{
    switch (v.kind) {
    case V_STR: return "a str";
    case V_NONE: return "none";
    case V_FN: return "a function";
    case V_ERR: return "an invalid value";
    case V_NODE:
        if (v.weak)
            return "a number";
        return v.node->dims ? "a tensor" : "a scalar";
    }
    return "a value";
}

bool elab_is_const(value v, double *out)
{
    if (v.kind != V_NODE || v.node->op != OP_CONST)
        return false;
    if (out)
        *out = ir_const_value(v.node);
    return true;
}

/* An integer constant must fit the IR's int64 (where Python would grow a
 * big integer, we refuse). */
static bool int_fits(double x) { return isfinite(x) && fabs(x) < 9223372036854775808.0; }

/* Rebuild a weak node in dtype dt: constants are made again (exactly),
 * where() and negation pass the dtype to their operands, anything else is
 * cast. */
static ir_node *retype(elab *E, ir_node *n, ir_dtype dt, src_loc loc)
{
    if (!n)
        return NULL;
    if (n->op == OP_CONST) {
        double x = ir_const_value(n);
        if (ir_dtype_is_int(dt) && !int_fits(x)) {
            elab_error(E, loc, "the constant %g does not fit in %s", x, ir_dtype_name(dt));
            x = 0;
        }
        return ir_const(E->g, dt, x, loc);
    }
    if (n->op == OP_WHERE && n->dtype != DT_BOOL)
        return ir_where(E->g, n->ops[0], retype(E, n->ops[1], dt, loc),
                        retype(E, n->ops[2], dt, loc), loc);
    if (n->op == OP_NEG && ir_dtype_is_float(dt))
        return ir_unary(E->g, OP_NEG, retype(E, n->ops[0], dt, loc), loc);
    return ir_cast(E->g, dt, n, loc);
}

ir_node *elab_weak_to(elab *E, value v, ir_dtype dt, src_loc loc)
{
    return v.weak ? retype(E, v.node, dt, loc) : v.node;
}

static ir_dtype natural_dtype(const ir_node *n)
{
    return ir_dtype_is_int((ir_dtype)n->dtype) ? DT_I64 : DT_F32;
}

ir_node *elab_strong(elab *E, value v, src_loc loc, const char *what)
{
    if (v.kind == V_ERR)
        return NULL;
    if (v.kind != V_NODE) {
        elab_error(E, loc, "%s must be a number or a tensor, not %s", what,
                   elab_value_kind_name(v));
        return NULL;
    }
    return v.weak ? elab_weak_to(E, v, natural_dtype(v.node), loc) : v.node;
}

ir_node *elab_expr_node(elab *E, const ast_expr *e, const char *what)
{
    return elab_strong(E, elab_expr(E, e), e->loc, what);
}

/* ---- names and literals ------------------------------------------------------------ */

static value elab_number(elab *E, const ast_expr *e)
{
    if (!e->is_int)
        return v_weak(ir_const(E->g, DT_F64, e->num, e->loc));
    if (e->ival > ((int64_t)1 << 53)) {
        elab_error(E, e->loc, "integer literal too large (at most 2^53)");
        return v_err();
    }
    return v_weak(ir_const(E->g, DT_I64, (double)e->ival, e->loc));
}

/* A dim used as a value: an index dim is its position (IOTA, i64); any other
 * dim is its size (weak i64, a constant when the size is fixed). */
static value dim_value(elab *E, int d, src_loc loc)
{
    if (E->g->dims[d].root != d)
        return v_node(ir_iota(E->g, d, loc));
    int64_t size = ir_dim_size(E->g, d);
    if (size >= 0)
        return v_weak(ir_const(E->g, DT_I64, (double)size, loc));
    return v_weak(ir_dimsize(E->g, d, loc));
}

static value elab_name(elab *E, const ast_expr *e)
{
    const binding *b = elab_lookup(E, e->name);
    if (b)
        return b->v;
    int d = elab_dim_lookup(E, e->name);
    if (d >= 0)
        return dim_value(E, d, e->loc);
    const ast_module *mod;
    const ast_def *def = elab_find_def(E, e->name, &mod);
    if (def)
        return (value){.kind = V_FN, .fn = def, .fn_mod = mod};
    if (builtin_find(e->name)) {
        elab_error(E, e->loc, "'%s' is a builtin function: call it, e.g. %s(x)", e->name,
                   e->name);
        return v_err();
    }
    const char *s = elab_suggest(E, e->name, false);
    if (s)
        elab_error(E, e->loc, "unknown name '%s'; did you mean '%s'?", e->name, s);
    else
        elab_error(E, e->loc, "unknown name '%s'", e->name);
    return v_err();
}

/* ---- folding weak constants ---------------------------------------------------------- */

static double py_floordiv(double a, double b) { return floor(a / b); }
static double py_mod(double a, double b)
{
    double r = fmod(a, b);
    if (r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}

static bool fold_binary(ir_op op, double a, double b, double *out)
{
    switch (op) {
    case OP_ADD: *out = a + b; return true;
    case OP_SUB: *out = a - b; return true;
    case OP_MUL: *out = a * b; return true;
    case OP_DIV: *out = a / b; return true;
    case OP_FLOORDIV: *out = py_floordiv(a, b); return true;
    case OP_MOD: *out = py_mod(a, b); return true;
    case OP_POW: *out = pow(a, b); return true;
    case OP_MIN: *out = isnan(a) || isnan(b) ? NAN : a < b ? a : b; return true;
    case OP_MAX: *out = isnan(a) || isnan(b) ? NAN : a > b ? a : b; return true;
    case OP_LT: *out = a < b; return true;
    case OP_LE: *out = a <= b; return true;
    case OP_GT: *out = a > b; return true;
    case OP_GE: *out = a >= b; return true;
    case OP_EQ: *out = a == b; return true;
    case OP_NE: *out = a != b; return true;
    case OP_AND: *out = a != 0 && b != 0; return true;
    case OP_OR: *out = a != 0 || b != 0; return true;
    default: return false;
    }
}

static double sigmoid_d(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

static bool fold_unary(ir_op op, double x, double *out)
{
    switch (op) {
    case OP_NEG: *out = -x; return true;
    case OP_ABS: *out = fabs(x); return true;
    case OP_SIGN: *out = x > 0 ? 1 : x < 0 ? -1 : x; return true;
    case OP_RELU: *out = isnan(x) ? x : x > 0 ? x : 0; return true;
    case OP_FLOOR: *out = floor(x); return true;
    case OP_CEIL: *out = ceil(x); return true;
    case OP_EXP: *out = exp(x); return true;
    case OP_EXPM1: *out = expm1(x); return true;
    case OP_LOG: *out = log(x); return true;
    case OP_LOG1P: *out = log1p(x); return true;
    case OP_SQRT: *out = sqrt(x); return true;
    case OP_RSQRT: *out = 1 / sqrt(x); return true;
    case OP_TANH: *out = tanh(x); return true;
    case OP_SIGMOID: *out = sigmoid_d(x); return true;
    case OP_SOFTPLUS: *out = log1p(exp(-fabs(x))) + (x > 0 ? x : 0); return true;
    case OP_NOT: *out = x == 0; return true;
    default: return false;
    }
}

static bool is_cmp_op(ir_op op)
{
    return op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE || op == OP_EQ ||
           op == OP_NE;
}

/* ---- operators ----------------------------------------------------------------------- */

static ir_op binary_op(tok_kind k)
{
    switch (k) {
    case TK_PLUS: return OP_ADD;
    case TK_MINUS: return OP_SUB;
    case TK_STAR: return OP_MUL;
    case TK_SLASH: return OP_DIV;
    case TK_SLASHSLASH: return OP_FLOORDIV;
    case TK_PERCENT: return OP_MOD;
    case TK_CARET: return OP_POW;
    case TK_EQ: return OP_EQ;
    case TK_NE: return OP_NE;
    case TK_LT: return OP_LT;
    case TK_LE: return OP_LE;
    case TK_GT: return OP_GT;
    case TK_GE: return OP_GE;
    case TK_ANDAND: return OP_AND;
    case TK_OROR: return OP_OR;
    default: return OP__COUNT;
    }
}

static const char *op_text(ir_op op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    case OP_POW: return "^";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    case OP_AND: return "&&";
    case OP_OR: return "||";
    default: return ir_op_name(op);
    }
}

/* An index dim and its own root in one operation: refuse (see the top). */
static bool check_index_dims(elab *E, ir_dimset a, ir_dimset b, src_loc loc)
{
    if (E->in_index > 0)
        return true;
    for (int pass = 0; pass < 2; pass++) {
        ir_dimset x = pass ? b : a, y = pass ? a : b;
        IR_DIMSET_FOREACH(d, x) {
            int r = E->g->dims[d].root;
            if (r != d && ir_dimset_has(y, r) && !ir_dimset_has(x, r)) {
                elab_error(E, loc,
                           "cannot combine a value over %s with one over %s: %s is an "
                           "index dim over %s, not %s itself; index both with the same "
                           "variables (e.g. let t[%s] = x[%s])",
                           elab_dims_str(E, x), elab_dims_str(E, y), E->g->dims[d].name,
                           E->g->dims[r].name, E->g->dims[r].name, E->g->dims[d].name,
                           E->g->dims[d].name);
                return false;
            }
        }
    }
    return true;
}

/* Comparisons of compile-time things: str with str, anything with none. */
static value compare_static(elab *E, ir_op op, value a, value b, src_loc loc)
{
    bool eq;
    if (a.kind == V_NONE || b.kind == V_NONE)
        eq = a.kind == b.kind;
    else if (a.kind == V_STR && b.kind == V_STR && (!a.str || !b.str))
        /* `lossc check` of a str parameter without a default: its value is
         * unknown, so it is neither equal nor unequal to anything (no
         * branch that tests it is taken, no option check fires). */
        return v_node(ir_const(E->g, DT_BOOL, 0, loc));
    else if (a.kind == V_STR && b.kind == V_STR)
        eq = strcmp(a.str, b.str) == 0;
    else if (a.kind == V_FN && b.kind == V_FN)
        eq = a.fn == b.fn;
    else {
        elab_error(E, loc, "cannot compare %s with %s", elab_value_kind_name(a),
                   elab_value_kind_name(b));
        return v_err();
    }
    return v_node(ir_const(E->g, DT_BOOL, op == OP_EQ ? eq : !eq, loc));
}

static value bad_operand(elab *E, ir_op op, value v, src_loc loc)
{
    if (v.kind == V_NONE)
        elab_error(E, loc, "'%s' applied to none (an optional argument that was not "
                           "given): test it with `if x == none` first", op_text(op));
    else if (v.kind == V_NODE && v.node->dtype == DT_BOOL)
        elab_error(E, loc, "'%s' is not defined on bool: convert with f32(...) or i64(...), "
                           "or compare", op_text(op));
    else
        elab_error(E, loc, "'%s' needs numbers, not %s", op_text(op), elab_value_kind_name(v));
    return v_err();
}

/* Both operands weak: stay weak (folded when constant). */
static value binary_weak(elab *E, ir_op op, value a, value b, src_loc loc)
{
    double x, y, r;
    bool ints = ir_dtype_is_int((ir_dtype)a.node->dtype) && ir_dtype_is_int((ir_dtype)b.node->dtype);
    /* An operator without a folding rule is built as a node instead. */
    if (elab_is_const(a, &x) && elab_is_const(b, &y) && fold_binary(op, x, y, &r)) {
        if (ints && (op == OP_FLOORDIV || op == OP_MOD) && y == 0) {
            elab_error(E, loc, "integer division by zero");
            return v_err();
        }
        if (is_cmp_op(op))
            return v_node(ir_const(E->g, DT_BOOL, r, loc));
        bool int_result = ints && op != OP_DIV && !(op == OP_POW && y < 0);
        if (int_result && !int_fits(r)) {
            elab_error(E, loc, "integer overflow in a constant expression");
            return v_err();
        }
        return v_weak(ir_const(E->g, int_result ? DT_I64 : DT_F64, r, loc));
    }
    ir_node *na = a.node, *nb = b.node;
    if (op == OP_DIV || (!ints && a.node->dtype != b.node->dtype)) {
        na = ir_cast(E->g, DT_F64, na, loc);
        nb = ir_cast(E->g, DT_F64, nb, loc);
    }
    ir_node *n = ir_binary(E->g, op, na, nb, loc);
    if (!n)
        return elab_ir_fail(E, loc);
    return is_cmp_op(op) ? v_node(n) : v_weak(n);
}

/* Give a weak operand the dtype of the strong one (float literal with an
 * integer tensor: both become f32). */
static void unweaken(elab *E, value *a, value *b, src_loc loc)
{
    value *w = a->weak ? a : b, *s = a->weak ? b : a;
    ir_dtype sd = (ir_dtype)s->node->dtype;
    ir_dtype target = sd;
    if (ir_dtype_is_float((ir_dtype)w->node->dtype) && ir_dtype_is_int(sd))
        target = DT_F32;
    if (sd == DT_BOOL)
        return; /* reported by the caller */
    w->node = elab_weak_to(E, *w, target, loc);
    w->weak = false;
}

value elab_binary(elab *E, tok_kind tk, value a, value b, src_loc loc)
{
    return elab_binop(E, binary_op(tk), a, b, loc);
}

value elab_binop(elab *E, ir_op op, value a, value b, src_loc loc)
{
    if (a.kind == V_ERR || b.kind == V_ERR)
        return v_err();
    if ((op == OP_EQ || op == OP_NE) && (a.kind != V_NODE || b.kind != V_NODE))
        return compare_static(E, op, a, b, loc);
    if (a.kind != V_NODE)
        return bad_operand(E, op, a, loc);
    if (b.kind != V_NODE)
        return bad_operand(E, op, b, loc);
    bool logic = op == OP_AND || op == OP_OR;
    bool ab = a.node->dtype == DT_BOOL && !a.weak, bb = b.node->dtype == DT_BOOL && !b.weak;
    if (logic && (!ab || !bb)) {
        elab_error(E, loc, "'%s' needs bool operands (comparisons), not %s", op_text(op),
                   elab_value_kind_name(ab ? b : a));
        return v_err();
    }
    if (!logic && (ab || bb) && !((op == OP_EQ || op == OP_NE) && ab && bb))
        return bad_operand(E, op, ab ? a : b, loc);
    if (!check_index_dims(E, a.node->dims, b.node->dims, loc))
        return v_err();
    if (a.weak && b.weak)
        return binary_weak(E, op, a, b, loc);
    if (a.weak || b.weak)
        unweaken(E, &a, &b, loc);
    double x, y, r;
    if (logic && elab_is_const(a, &x) && elab_is_const(b, &y) && fold_binary(op, x, y, &r))
        return v_node(ir_const(E->g, DT_BOOL, r, loc));
    /* A constant side decides `false && c` and `true || c`, so that a
     * compile-time `if` may guard a test that needs a constant. */
    if (logic && (elab_is_const(a, &x) || elab_is_const(b, &x)) &&
        (op == OP_AND ? x == 0 : x != 0))
        return v_node(ir_const(E->g, DT_BOOL, x, loc));
    ir_node *n = ir_binary(E->g, op, a.node, b.node, loc);
    return n ? v_node(n) : elab_ir_fail(E, loc);
}

/* One-operand math (abs, exp, ...), weak values stay weak. */
value elab_unary_op(elab *E, ir_op op, value x, src_loc loc)
{
    if (x.kind == V_ERR)
        return x;
    if (x.kind != V_NODE || (op != OP_NOT && x.node->dtype == DT_BOOL && !x.weak))
        return bad_operand(E, op, x, loc);
    if (op == OP_NOT && (x.weak || x.node->dtype != DT_BOOL)) {
        elab_error(E, loc, "'!' needs a bool (a comparison), not %s", elab_value_kind_name(x));
        return v_err();
    }
    bool float_op = ir_op_info_of(op)->typing == TY_FLOAT;
    double c, r;
    if (elab_is_const(x, &c) && fold_unary(op, c, &r)) {
        if (!x.weak) { /* like ir_unary: a float op on an integer gives f32 */
            ir_dtype dt = (ir_dtype)x.node->dtype;
            if (float_op && ir_dtype_is_int(dt))
                dt = DT_F32;
            if (ir_dtype_is_int(dt) && !int_fits(r)) {
                elab_error(E, loc, "integer overflow in a constant expression");
                return v_err();
            }
            return v_node(ir_const(E->g, dt, r, loc));
        }
        bool is_int = ir_dtype_is_int((ir_dtype)x.node->dtype) && !float_op;
        if (is_int && !int_fits(r)) {
            elab_error(E, loc, "integer overflow in a constant expression");
            return v_err();
        }
        return v_weak(ir_const(E->g, is_int ? DT_I64 : DT_F64, r, loc));
    }
    ir_node *in = x.node;
    if (x.weak && float_op)
        in = ir_cast(E->g, DT_F64, in, loc);
    ir_node *n = ir_unary(E->g, op, in, loc);
    if (!n)
        return elab_ir_fail(E, loc);
    return x.weak ? v_weak(n) : v_node(n);
}

value elab_where(elab *E, value c, value a, value b, src_loc loc)
{
    if (c.kind == V_ERR || a.kind == V_ERR || b.kind == V_ERR)
        return v_err();
    if (c.kind != V_NODE || c.weak || c.node->dtype != DT_BOOL) {
        elab_error(E, loc, "the condition of where() must be a bool tensor (a comparison), "
                           "not %s", elab_value_kind_name(c));
        return v_err();
    }
    if (a.kind != V_NODE || b.kind != V_NODE) {
        elab_error(E, loc, "the branches of where() must be numbers or tensors, not %s",
                   elab_value_kind_name(a.kind != V_NODE ? a : b));
        return v_err();
    }
    bool ab = a.node->dtype == DT_BOOL && !a.weak, bb = b.node->dtype == DT_BOOL && !b.weak;
    if (ab != bb) {
        elab_error(E, loc, "the branches of where() mix bool and a number: convert the bool "
                           "with f32(...)");
        return v_err();
    }
    if (!check_index_dims(E, c.node->dims, a.node->dims | b.node->dims, loc) ||
        !check_index_dims(E, a.node->dims, b.node->dims, loc))
        return v_err();
    bool weak = a.weak && b.weak;
    if (weak && a.node->dtype != b.node->dtype) {
        a.node = ir_cast(E->g, DT_F64, a.node, loc);
        b.node = ir_cast(E->g, DT_F64, b.node, loc);
    } else if (a.weak != b.weak) {
        unweaken(E, &a, &b, loc);
    }
    ir_node *n = ir_where(E->g, c.node, a.node, b.node, loc);
    if (!n)
        return elab_ir_fail(E, loc);
    return weak ? v_weak(n) : v_node(n);
}

/* ---- the expression walk ---------------------------------------------------------- */

static value elab_unary_expr(elab *E, const ast_expr *e)
{
    value x = elab_expr(E, e->a);
    return elab_unary_op(E, e->op == TK_BANG ? OP_NOT : OP_NEG, x, e->loc);
}

static value elab_binary_expr(elab *E, const ast_expr *e)
{
    value a = elab_expr(E, e->a);
    value b = elab_expr(E, e->b);
    return elab_binary(E, e->op, a, b, e->loc);
}

static value elab_expr_inner(elab *E, const ast_expr *e)
{
    switch (e->kind) {
    case E_NUM: return elab_number(E, e);
    case E_STR: return v_str(e->name);
    case E_BOOL: return v_node(ir_const(E->g, DT_BOOL, e->num, e->loc));
    case E_NONE: return v_none();
    case E_NAME: return elab_name(E, e);
    case E_UNARY: return elab_unary_expr(E, e);
    case E_BINARY: return elab_binary_expr(E, e);
    case E_CALL: return elab_call(E, e);
    case E_INDEX: return elab_index(E, e);
    case E_REDUCE: return elab_reduce_indexed(E, e);
    case E_TUPLE:
        elab_error(E, e->loc, "a tuple is only allowed as an axis list: axis=(C, D)");
        return v_err();
    }
    return v_err();
}

value elab_expr(elab *E, const ast_expr *e)
{
    if (!e)
        return v_err();
    if (E->expr_depth >= MAX_EXPR_DEPTH) {
        elab_error(E, e->loc, "expression nested too deeply");
        return v_err();
    }
    E->expr_depth++;
    value v = elab_expr_inner(E, e);
    E->expr_depth--;
    if (v.kind == V_NODE && !v.node)
        return v_err();
    return v;
}
