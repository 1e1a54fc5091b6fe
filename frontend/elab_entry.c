/* elab_entry.c - compiling one loss as the entry of a graph: its parameters
 * become the graph's inputs, compile-time settings are applied, and its
 * returned value and `out`s become the outputs.
 *
 *   x: f32[N, C]        tensor input; dims created in order of first use
 *   w: f32[C] = none    optional: absent (none) unless the setting w=input
 *   delta: f32 = 1.0    scalar input (IR_IN_SCALAR) with a default
 *   reduction: str      compile-time string: a setting or the default
 *
 * A setting names a str parameter (its value), a dim (a compile-time size
 * that specializes the kernel), an optional tensor ("input" to make it an
 * input), or a numeric scalar (left unused: the runtime binds it). Any other
 * name is an error.
 */
#include "frontend/fe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static fe_setting *setting_find(const fe_options *o, const char *name)
{
    for (int i = 0; o && i < o->nsettings; i++)
        if (o->settings[i].name && strcmp(o->settings[i].name, name) == 0)
            return &o->settings[i];
    return NULL;
}

static src_loc file_loc(elab *E, const ast_module *m)
{
    (void)E;
    return (src_loc){m->file, 0, 0};
}

/* A dim named in an entry's parameter type. */
static int entry_dim(elab *E, const ast_dim *ad, const char *param)
{
    if (ad->size >= 0)
        return elab_dim_get(E, ad->name, ad->size, -1, ad->loc);
    const dim_binding *b = elab_dim_binding(E, ad->name);
    if (b)
        return b->dim;
    int64_t size = -1;
    fe_setting *s = setting_find(E->opts, ad->name);
    if (s) {
        char *end;
        errno = 0;
        long long v = strtoll(s->value ? s->value : "", &end, 10);
        s->used = true;
        if (errno || end == s->value || *end || v <= 0) {
            elab_error(E, ad->loc, "the setting %s=%s must be a positive integer size",
                       ad->name, s->value ? s->value : "");
            return -1;
        }
        size = v;
    }
    int d = elab_dim_get(E, ad->name, size, -1, ad->loc);
    if (d >= 0)
        elab_dim_bind(E, ad->name, d, ad->loc, param);
    return d;
}

static ir_dtype param_dtype(const ast_type *t)
{
    return t->kind == T_DTYPE ? (ir_dtype)t->dtype : t->kind == T_FLOAT ? DT_F32 : DT_I64;
}

static value tensor_param(elab *E, const ast_param *p)
{
    const ast_type *t = &p->type;
    if (p->def && p->def->kind != E_NONE) {
        elab_error(E, p->def->loc, "a tensor parameter can only default to none");
        return v_err();
    }
    if (p->def) {
        fe_setting *s = setting_find(E->opts, p->name.name);
        if (!s)
            return v_none();
        s->used = true;
        if (s->value && strcmp(s->value, "none") == 0)
            return v_none();
        if (!s->value || strcmp(s->value, "input") != 0) {
            elab_error(E, p->name.loc, "the optional tensor '%s' takes the setting %s=input "
                                       "(given) or %s=none", p->name.name, p->name.name,
                       p->name.name);
            return v_err();
        }
    }
    if (t->ndims > IR_MAX_RANK) {
        elab_error(E, t->loc, "a tensor has at most %d dims", IR_MAX_RANK);
        return v_err();
    }
    int order[IR_MAX_RANK];
    for (int i = 0; i < t->ndims; i++) {
        /* A name repeated in one type (a square f32[N, N]) makes the later
         * axes alias dims N_2, N_3 of N's size: each axis needs a dim of
         * its own, and index notation tells them apart. */
        int repeat = 0, first = -1;
        for (int j = 0; j < i; j++)
            if (strcmp(t->dims[j].name, t->dims[i].name) == 0)
                repeat++, first = first < 0 ? j : first;
        order[i] = repeat ? elab_alias_dim(E, order[first], repeat + 1, t->dims[i].loc)
                          : entry_dim(E, &t->dims[i], p->name.name);
        if (order[i] < 0)
            return v_err();
    }
    int k = ir_input_add(E->g, p->name.name, IR_IN_TENSOR, param_dtype(t), t->ndims, order,
                         p->name.loc);
    return v_node(ir_input_node(E->g, k));
}

static value scalar_param(elab *E, const ast_param *p)
{
    ir_dtype dt = param_dtype(&p->type);
    double dv = 0;
    bool has_default = false;
    if (p->def) {
        value v = elab_expr(E, p->def);
        if (v.kind == V_ERR)
            return v;
        if (!elab_is_const(v, &dv) || (dt == DT_BOOL) != (v.node->dtype == DT_BOOL)) {
            elab_error(E, p->def->loc, "the default of '%s' must be a %s constant",
                       p->name.name, dt == DT_BOOL ? "bool" : "number");
            return v_err();
        }
        has_default = true;
    }
    int k = ir_input_add(E->g, p->name.name, IR_IN_SCALAR, dt, 0, NULL, p->name.loc);
    E->g->inputs[k].has_default = has_default;
    E->g->inputs[k].default_value = dv;
    return v_node(ir_input_node(E->g, k));
}

static value str_param(elab *E, const ast_param *p, bool check_only)
{
    fe_setting *s = setting_find(E->opts, p->name.name);
    if (s) {
        s->used = true;
        return v_str(s->value ? arena_strdup(&E->g->arena, s->value) : "");
    }
    if (p->def && p->def->kind == E_STR)
        return v_str(p->def->name);
    if (p->def) {
        elab_error(E, p->def->loc, "the default of a str parameter must be a string");
        return v_err();
    }
    if (check_only)
        return v_str(NULL); /* unknown: see compare_static */
    elab_error(E, p->name.loc, "str parameter '%s' has no default: choose its value at "
                               "compile time (a setting %s=...)", p->name.name, p->name.name);
    return v_err();
}

static void entry_params(elab *E, const ast_def *def, bool check_only)
{
    for (int i = 0; i < def->nparams; i++) {
        const ast_param *p = &def->params[i];
        value v;
        if (p->type.kind == T_ANY) {
            elab_error(E, p->name.loc, "parameter '%s' of loss '%s' needs a type, e.g. "
                                       "%s: f32[N]", p->name.name, def->name.name, p->name.name);
            v = v_err();
        } else if (p->type.kind == T_STR) {
            v = str_param(E, p, check_only);
        } else if (p->type.tensor) {
            v = tensor_param(E, p);
        } else {
            v = scalar_param(E, p);
        }
        elab_bind(E, p->name.name, v, p->name.loc, -1);
    }
}

static bool is_numeric_scalar(const ast_def *def, const char *name)
{
    for (int i = 0; i < def->nparams; i++) {
        const ast_param *p = &def->params[i];
        if (strcmp(p->name.name, name) == 0)
            return p->type.kind != T_STR && p->type.kind != T_ANY && !p->type.tensor;
    }
    return false;
}

static void check_settings(elab *E, const ast_def *def, const ast_module *m)
{
    for (int i = 0; E->opts && i < E->opts->nsettings; i++) {
        fe_setting *s = &E->opts->settings[i];
        if (s->used || !s->name || is_numeric_scalar(def, s->name))
            continue;
        bool is_param = false;
        for (int k = 0; k < def->nparams; k++)
            is_param = is_param || strcmp(def->params[k].name.name, s->name) == 0;
        if (is_param)
            elab_error(E, file_loc(E, m), "'%s' is a tensor parameter of '%s': bind it at run "
                                          "time, not with a setting", s->name, def->name.name);
        else
            elab_error(E, file_loc(E, m), "unknown setting '%s': loss '%s' has no parameter or "
                                          "dim of that name", s->name, def->name.name);
    }
}

/* A found_inf() node n depends on, or NULL (seen: per node id). */
static const ir_node *find_found_inf(const ir_node *n, bool *seen)
{
    if (seen[n->id])
        return NULL;
    seen[n->id] = true;
    if (n->op == OP_FOUND_INF)
        return n;
    for (int i = 0; i < n->nops; i++) {
        const ir_node *f = find_found_inf(n->ops[i], seen);
        if (f)
            return f;
    }
    return NULL;
}

static void entry_outputs(elab *E, const ast_def *def)
{
    frame *f = E->top;
    if (!f->returned) {
        elab_error(E, def->end_loc, "loss '%s' ends without `return`", def->name.name);
        return;
    }
    ir_node *n = elab_strong(E, f->ret, def->end_loc, "the returned value");
    if (!n)
        return;
    bool *seen = sup_calloc(E->g->nnodes, sizeof *seen);
    const ir_node *fi = find_found_inf(n, seen);
    sup_free(seen);
    if (fi) {
        elab_error(E, f->ret_loc.line ? f->ret_loc : def->end_loc,
                   "the returned loss depends on found_inf(), which tells whether the "
                   "gradients of the loss overflowed: use found_inf() in an `out` only");
        return;
    }
    ir_output_add(E->g, "loss", IR_OUT_LOSS, -1, n);
    for (int i = 0; i < E->nouts; i++)
        ir_output_add(E->g, E->outs[i].name, IR_OUT_EXTRA, -1, E->outs[i].node);
}

ir_graph *elab_entry(diag_set *ds, const fe_program *prog, const ast_def *def,
                     const ast_module *m, const fe_options *opts, bool check_only)
{
    elab E = {.ds = ds, .g = ir_graph_new(def->name.name), .prog = prog, .opts = opts};
    frame f = {.def = def, .mod = m, .own_dims = true, .is_entry = true};
    E.top = &f;
    entry_params(&E, def, check_only);
    if (def->expr_body) {
        f.ret = elab_expr(&E, def->expr_body);
        f.ret_loc = def->expr_body->loc;
        f.returned = true;
    } else {
        elab_block(&E, &def->body);
    }
    entry_outputs(&E, def);
    check_settings(&E, def, m);
    sup_free(f.vars);
    sup_free(f.dims);
    sup_free(E.outs);
    if (E.failed) {
        ir_graph_free(E.g);
        return NULL;
    }
    return E.g;
}
