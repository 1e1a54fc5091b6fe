/* elab_call.c - calls: matching arguments to parameters, and inlining `fn`
 * and `loss` definitions at each call.
 *
 * A call to a definition elaborates its body in a fresh frame whose only
 * names are its parameters (lexical scope: a body never sees its caller's
 * lets). Arguments are evaluated in the caller, defaults in the callee after
 * the parameters before them (so `beta = delta` works).
 *
 * Typed parameters are checked: a tensor parameter `x: f32[N, C]` needs a
 * tensor of that dtype and rank, and binds the callee's dim names to the
 * argument's dims in canonical order (the order of the value's dims). A dim
 * name bound twice must get the same dim both times; a literal size (`3`)
 * needs a dim of that size, and fixes a run-time dim to it. A loss has its
 * own dim names; a generic `fn` sees its caller's.
 */
#include "frontend/fe.h"

#include <string.h>

#define MAX_CALL_DEPTH 64

/* ---- arguments ------------------------------------------------------------------------ */

static int param_index(const call_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0)
            return i;
    return -1;
}

static const char *suggest_param(const call_params *p, const char *name)
{
    if (strcmp(name, "dim") == 0 && param_index(p, "axis") >= 0)
        return "axis"; /* PyTorch's word for it */
    const char *best = NULL;
    int bd = 99, limit = strlen(name) <= 4 ? 1 : 2;
    for (int i = 0; i < p->n; i++) {
        int d = fe_edit_distance(name, p->names[i]);
        if (d <= limit && d < bd)
            bd = d, best = p->names[i];
    }
    return best;
}

static bool bind_keyword(elab *E, const call_params *p, const ast_arg *a, const ast_expr **slots)
{
    int k = param_index(p, a->name);
    if (k < 0) {
        const char *s = suggest_param(p, a->name);
        if (s)
            elab_error(E, a->loc, "'%s' has no parameter '%s'; did you mean '%s'?", p->callee,
                       a->name, s);
        else
            elab_error(E, a->loc, "'%s' has no parameter '%s'", p->callee, a->name);
        return false;
    }
    if (slots[k]) {
        elab_error(E, a->loc, "argument '%s' of '%s' is given twice", a->name, p->callee);
        return false;
    }
    slots[k] = a->value;
    return true;
}

bool elab_bind_args(elab *E, const call_params *p, const ast_arg *args, int nargs,
                    src_loc loc, const ast_expr **slots)
{
    for (int i = 0; i < p->n; i++)
        slots[i] = NULL;
    bool ok = true, seen_kw = false;
    int pos = 0;
    for (int i = 0; i < nargs; i++) {
        const ast_arg *a = &args[i];
        if (a->name) {
            seen_kw = true;
            ok = bind_keyword(E, p, a, slots) && ok;
        } else if (seen_kw) {
            elab_error(E, a->loc, "positional argument after keyword arguments");
            ok = false;
        } else if (pos >= p->n) {
            elab_error(E, a->loc, "'%s' takes %d argument%s, got %d", p->callee, p->n,
                       p->n == 1 ? "" : "s", nargs);
            return false;
        } else {
            slots[pos++] = a->value;
        }
    }
    for (int i = 0; ok && i < p->n; i++)
        if (!slots[i] && !(p->has_default && p->has_default[i])) {
            elab_error(E, loc, "missing argument '%s' in the call to '%s'", p->names[i],
                       p->callee);
            ok = false;
        }
    return ok;
}

/* ---- typed parameters ------------------------------------------------------------------ */

static const char *type_str(elab *E, const ast_type *t)
{
    strbuf sb;
    sb_init(&sb);
    switch (t->kind) {
    case T_DTYPE: sb_puts(&sb, ir_dtype_name((ir_dtype)t->dtype)); break;
    case T_FLOAT: sb_puts(&sb, "float"); break;
    case T_INT: sb_puts(&sb, "int"); break;
    case T_STR: sb_puts(&sb, "str"); break;
    case T_ANY: sb_puts(&sb, "any"); break;
    }
    if (t->tensor) {
        sb_putc(&sb, '[');
        for (int i = 0; i < t->ndims; i++)
            sb_printf(&sb, "%s%s", i ? ", " : "", t->dims[i].name);
        sb_putc(&sb, ']');
    }
    char *r = arena_strdup(&E->g->arena, sb_str(&sb));
    sb_free(&sb);
    return r;
}

static bool dtype_fits(const ast_type *t, ir_dtype dt)
{
    switch (t->kind) {
    case T_DTYPE: return (int)dt == t->dtype;
    case T_FLOAT: return ir_dtype_is_float(dt);
    case T_INT: return ir_dtype_is_int(dt);
    default: return true;
    }
}

/* Bind the callee's dim `ad` to the caller's dim d (the argument's k-th). */
static bool bind_dim(elab *E, const ast_def *def, const ast_param *p, const ast_dim *ad, int d,
                     src_loc arg_loc)
{
    const dim_binding *b = elab_dim_binding(E, ad->name);
    if (b && b->dim != d) {
        const src_file *f = diag_file(E->ds, b->loc.file);
        elab_error(E, arg_loc, "argument '%s' of '%s' has dim %s where %s is %s, as bound by "
                               "argument '%s' at %s:%d:%d",
                   p->name.name, def->name.name, elab_dim_origin(E, d), ad->name,
                   elab_dim_origin(E, b->dim), b->from, f ? f->name : "?", b->loc.line,
                   b->loc.col);
        return false;
    }
    if (ad->size >= 0) {
        int root = E->g->dims[d].root;
        int64_t have = E->g->dims[root].size;
        if (have >= 0 && have != ad->size) {
            elab_error(E, arg_loc, "argument '%s' of '%s' needs dim %s of size %lld, but it "
                                   "has %s", p->name.name, def->name.name, ad->name,
                       (long long)ad->size, elab_dim_origin(E, d));
            return false;
        }
        E->g->dims[root].size = ad->size; /* specialize: checked at run time */
    }
    if (!b)
        elab_dim_bind(E, ad->name, d, arg_loc, p->name.name);
    return true;
}

static bool check_tensor_arg(elab *E, const ast_def *def, const ast_param *p, value v,
                             src_loc loc)
{
    const ast_type *t = &p->type;
    ir_node *n = v.node;
    if (!dtype_fits(t, (ir_dtype)n->dtype)) {
        elab_error(E, loc, "argument '%s' of '%s' must be %s, not %s", p->name.name,
                   def->name.name, type_str(E, t), ir_dtype_name((ir_dtype)n->dtype));
        return false;
    }
    int rank = ir_dimset_count(n->dims);
    if (t->tensor && rank != t->ndims) {
        elab_error(E, loc, "argument '%s' of '%s' has dims %s, but the parameter is %s",
                   p->name.name, def->name.name, elab_dims_str(E, n->dims), type_str(E, t));
        return false;
    }
    if (!t->tensor && rank) {
        elab_error(E, loc, "argument '%s' of '%s' must be a scalar (%s), not a tensor over %s",
                   p->name.name, def->name.name, type_str(E, t), elab_dims_str(E, n->dims));
        return false;
    }
    int k = 0, axes[IR_MAX_DIMS];
    IR_DIMSET_FOREACH(d, n->dims)
        axes[k++] = d;
    for (k = 0; k < rank; k++) {
        int first = k;
        for (int j = 0; j < k && first == k; j++)
            if (strcmp(t->dims[j].name, t->dims[k].name) == 0)
                first = j;
        if (first == k) {
            if (!bind_dim(E, def, p, &t->dims[k], axes[k], loc))
                return false;
        } else if (E->g->dims[axes[k]].root != E->g->dims[axes[first]].root) {
            /* f32[K, K]: the repeated axis needs the same size. */
            elab_error(E, loc, "argument '%s' of '%s' must be square in %s, but has dims %s "
                               "and %s", p->name.name, def->name.name, t->dims[k].name,
                       elab_dim_origin(E, axes[first]), elab_dim_origin(E, axes[k]));
            return false;
        }
    }
    return true;
}

/* Check value v against typed parameter p; returns the value to bind. */
static value check_param(elab *E, const ast_def *def, const ast_param *p, value v, src_loc loc)
{
    const ast_type *t = &p->type;
    if (v.kind == V_ERR || t->kind == T_ANY)
        return v;
    if (t->kind == T_STR) {
        if (v.kind == V_STR)
            return v;
        elab_error(E, loc, "argument '%s' of '%s' must be a str, not %s", p->name.name,
                   def->name.name, elab_value_kind_name(v));
        return v_err();
    }
    if (v.kind == V_NONE && p->def && p->def->kind == E_NONE)
        return v;
    if (v.kind != V_NODE) {
        elab_error(E, loc, "argument '%s' of '%s' must be %s, not %s", p->name.name,
                   def->name.name, type_str(E, t), elab_value_kind_name(v));
        return v_err();
    }
    if (v.weak && !v.node->dims && !t->tensor) {
        if (t->kind == T_DTYPE)
            return v_node(elab_weak_to(E, v, (ir_dtype)t->dtype, loc));
        if (t->kind == T_FLOAT || ir_dtype_is_int((ir_dtype)v.node->dtype))
            return v; /* a class type keeps a literal weak */
    }
    if (v.weak)
        v = v_node(elab_strong(E, v, loc, "an argument"));
    return check_tensor_arg(E, def, p, v, loc) ? v : v_err();
}

/* ---- inlining ------------------------------------------------------------------------- */

static bool on_stack(elab *E, const ast_def *def)
{
    for (frame *f = E->top; f; f = f->caller)
        if (f->def == def)
            return true;
    return false;
}

/* A loss, or a fn with a typed tensor parameter, names its own dims; a
 * generic fn sees its caller's. */
static bool owns_dims(const ast_def *def)
{
    if (def->is_loss)
        return true;
    for (int i = 0; i < def->nparams; i++)
        if (def->params[i].type.tensor)
            return true;
    return false;
}

static void push_frame(elab *E, frame *f, const ast_def *def, const ast_module *mod, src_loc loc)
{
    *f = (frame){.def = def, .mod = mod, .caller = E->top, .call_loc = loc,
                 .own_dims = owns_dims(def)};
    E->top = f;
    E->depth++;
}

static void pop_frame(elab *E, frame *f)
{
    E->top = f->caller;
    E->depth--;
    sup_free(f->vars);
    sup_free(f->dims);
}

/* Bind every parameter in the callee frame (already pushed). False when a
 * parameter is in error: the body is then skipped, since anything it said
 * would follow from that error. */
static bool bind_params(elab *E, const ast_def *def, const value *given, const bool *present,
                        const src_loc *locs)
{
    bool ok = true;
    for (int i = 0; i < def->nparams; i++) {
        const ast_param *p = &def->params[i];
        value v = given[i];
        src_loc loc = locs[i];
        if (!present[i]) {
            v = elab_expr(E, p->def); /* default, in the callee */
            loc = p->def ? p->def->loc : p->name.loc;
        }
        E->top->checking_arg = present[i];
        v = check_param(E, def, p, v, loc);
        E->top->checking_arg = false;
        elab_bind(E, p->name.name, v, p->name.loc, -1);
        ok = ok && v.kind != V_ERR;
    }
    return ok;
}

static value run_body(elab *E, const ast_def *def)
{
    if (def->expr_body)
        return elab_expr(E, def->expr_body);
    elab_block(E, &def->body);
    if (!E->top->returned) {
        elab_error(E, def->end_loc, "'%s' ends without returning a value", def->name.name);
        return v_err();
    }
    return E->top->ret;
}

static value call_def(elab *E, const ast_def *def, const ast_module *mod, const ast_expr *call)
{
    const char *names[64];
    bool has_def[64];
    const ast_expr *slots[64];
    if (def->nparams > 64) {
        elab_error(E, call->loc, "too many parameters");
        return v_err();
    }
    for (int i = 0; i < def->nparams; i++) {
        names[i] = def->params[i].name.name;
        has_def[i] = def->params[i].def != NULL;
    }
    call_params cp = {def->nparams, names, has_def, def->name.name};
    if (!elab_bind_args(E, &cp, call->args, call->nargs, call->loc, slots))
        return v_err();
    if (on_stack(E, def) || E->depth >= MAX_CALL_DEPTH) {
        elab_error(E, call->loc, "'%s' calls itself: calls are inlined, so recursion is not "
                                 "supported", def->name.name);
        return v_err();
    }
    value given[64];
    bool present[64];
    src_loc locs[64];
    for (int i = 0; i < def->nparams; i++) {
        present[i] = slots[i] != NULL;
        given[i] = slots[i] ? elab_expr(E, slots[i]) : v_err();
        locs[i] = slots[i] ? slots[i]->loc : call->loc;
    }
    frame f;
    push_frame(E, &f, def, mod, call->loc);
    value r = bind_params(E, def, given, present, locs) ? run_body(E, def) : v_err();
    pop_frame(E, &f);
    return r;
}

value elab_call(elab *E, const ast_expr *e)
{
    const binding *b = elab_lookup(E, e->name);
    if (b && b->v.kind == V_FN)
        return call_def(E, b->v.fn, b->v.fn_mod, e);
    if (b && b->v.kind != V_ERR) {
        elab_error(E, e->loc, "'%s' is %s, not a function", e->name,
                   elab_value_kind_name(b->v));
        return v_err();
    }
    if (b)
        return v_err();
    const ast_module *mod;
    const ast_def *def = elab_find_def(E, e->name, &mod);
    if (def)
        return call_def(E, def, mod, e);
    const builtin *bi = builtin_find(e->name);
    if (bi)
        return builtin_call(E, bi, e);
    const char *s = elab_suggest(E, e->name, true);
    if (s)
        elab_error(E, e->loc, "unknown function '%s'; did you mean '%s'?", e->name, s);
    else
        elab_error(E, e->loc, "unknown function '%s'", e->name);
    return v_err();
}
