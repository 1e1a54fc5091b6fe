/* elab_index.c - index notation: `x[i, y[i]]`, `let v[i, j] = ...`,
 * `sum[d](...)`.
 *
 * An index variable is bound by a `let v[...]` or by a reduction `sum[d](...)`
 * (a "site"). Its range is inferred from where it indexes a tensor axis
 * directly (`x[i, d]`: i ranges over x's first dim); every such use must
 * agree on the size.
 *
 * THE RULE (docs/language.md): if the variables of a site range over
 * distinct dims, and no index variable already bound ranges over the same
 * dim, each variable *is* its range dim: `let w[n] = weight[y[n]]` has dims
 * [N] and combines with any [N] tensor. Otherwise each variable gets an index
 * dim of its own, named after it, whose size is its range's: in
 * `let s[i, j] = ...` with i and j over N, s has dims [i, j], and combining s
 * with an [N] tensor is an error that says why.
 *
 * Inside the body a variable is the IOTA of its dim (an i64 position), so
 * `i == j` and `(i + 1) % N` are ordinary expressions. Indexing an axis with
 * the IOTA of a dim relabels the axis (RENAME, or nothing when the dim is the
 * axis itself); any other integer index gathers (GATHER).
 */
#include "frontend/fe.h"

#include <string.h>

/* ---- indexing x[a, b, ...] --------------------------------------------------------- */

/* A constant index must lie in [0, size) when the size is known; a negative
 * one counts from the end, Python style, when the size is known. */
static ir_node *const_index(elab *E, int axis, double c, src_loc loc)
{
    int64_t size = ir_dim_size(E->g, axis);
    double given = c;
    if (c < 0 && size >= 0)
        c += (double)size;
    if (c < 0 && size >= 0) {
        elab_error(E, loc, "index %g is out of range for dim %s of size %lld", given,
                   elab_dim_origin(E, axis), (long long)size);
        return NULL;
    }
    if (c < 0) {
        elab_error(E, loc, "index %g is out of range: indices start at 0 (the size of %s is "
                           "known only at run time; write %s - 1 for the last)", c,
                   E->g->dims[axis].name, E->g->dims[E->g->dims[axis].root].name);
        return NULL;
    }
    if (size >= 0 && c >= (double)size) {
        elab_error(E, loc, "index %g is out of range for dim %s of size %lld",
                   c, elab_dim_origin(E, axis), (long long)size);
        return NULL;
    }
    return ir_const(E->g, DT_I64, c, loc);
}

/* Check one index value and return it as an integer node (NULL: reported). */
static ir_node *index_node(elab *E, value v, int axis, src_loc loc)
{
    if (v.kind == V_ERR)
        return NULL;
    if (v.kind != V_NODE || !ir_dtype_is_int((ir_dtype)v.node->dtype)) {
        const char *what = v.kind == V_NODE ? ir_dtype_name((ir_dtype)v.node->dtype)
                                            : elab_value_kind_name(v);
        elab_error(E, loc, "an index must be an integer, not %s%s", what,
                   v.kind == V_NODE && v.node->dtype != DT_BOOL ? " (convert with i64(...))" : "");
        return NULL;
    }
    double c;
    if (elab_is_const(v, &c))
        return const_index(E, axis, c, loc);
    return v.weak ? elab_weak_to(E, v, DT_I64, loc) : v.node;
}

/* x indexed by idx[k] on its k-th axis: decide per axis whether to keep,
 * rename or gather (see the top of the file), renames first, then one
 * gather for every gathered axis. */
static ir_node *apply_indices(elab *E, ir_node *x, const int *axes, int rank,
                              ir_node *const *idx, src_loc loc)
{
    ir_dimset gathered = 0, taken = x->dims;
    int rename_to[IR_MAX_DIMS];
    for (int k = 0; k < rank; k++) {
        rename_to[k] = -1;
        if (idx[k]->op != OP_IOTA)
            gathered |= ir_dimbit(axes[k]), taken |= idx[k]->dims;
    }
    for (int k = 0; k < rank; k++) {
        if (idx[k]->op != OP_IOTA || idx[k]->attr.dim == axes[k])
            continue;
        int d = idx[k]->attr.dim;
        if (!ir_dimset_has(taken, d) && E->g->dims[d].root == E->g->dims[axes[k]].root)
            rename_to[k] = d;
        else
            gathered |= ir_dimbit(axes[k]);
        taken |= ir_dimbit(d);
    }
    for (int k = 0; k < rank && x; k++)
        if (rename_to[k] >= 0)
            x = ir_rename(E->g, x, axes[k], rename_to[k], loc);
    if (x && gathered) {
        ir_node *gi[IR_MAX_RANK];
        int n = 0;
        for (int k = 0; k < rank; k++)
            if (ir_dimset_has(gathered, axes[k]) && n < IR_MAX_RANK)
                gi[n++] = idx[k];
        x = ir_gather(E->g, x, gathered, gi, loc);
    }
    return x;
}

value elab_index(elab *E, const ast_expr *e)
{
    value base = elab_expr(E, e->a);
    if (base.kind == V_ERR)
        return base;
    if (base.kind != V_NODE || base.weak || !base.node->dims) {
        elab_error(E, e->loc, "only a tensor can be indexed, not %s", elab_value_kind_name(base));
        return v_err();
    }
    ir_node *x = base.node;
    int axes[IR_MAX_DIMS], rank = 0;
    IR_DIMSET_FOREACH(d, x->dims)
        axes[rank++] = d;
    if (e->nitems != rank) {
        elab_error(E, e->loc, "this value has %d dim%s %s: give one index per dim, got %d",
                   rank, rank == 1 ? "" : "s", elab_dims_str(E, x->dims), e->nitems);
        return v_err();
    }
    ir_node *idx[IR_MAX_DIMS];
    bool ok = true;
    for (int k = 0; k < rank; k++) {
        const ast_expr *it = e->items[k];
        const ast_module *mod;
        if (it->kind == E_NAME && !elab_lookup(E, it->name) && elab_dim_lookup(E, it->name) < 0 &&
            !elab_find_def(E, it->name, &mod)) {
            elab_error(E, it->loc, "unknown name '%s': an index variable is bound by "
                                   "`let v[%s] = ...` or by a reduction `sum[%s](...)`",
                       it->name, it->name, it->name);
            ok = false;
            continue;
        }
        idx[k] = index_node(E, elab_expr(E, it), axes[k], it->loc);
        ok = ok && idx[k];
    }
    if (!ok)
        return v_err();
    x = apply_indices(E, x, axes, rank, idx, e->loc);
    return x ? v_node(x) : elab_ir_fail(E, e->loc);
}

/* ---- ranges of index variables ------------------------------------------------------ */

typedef struct site_var {
    ast_ident id;
    int range;        /* dim the variable ranges over, -1 until seen */
    src_loc use_loc;  /* the first use that fixed the range */
    int dim;          /* the dim it is bound to */
} site_var;

typedef struct site {
    site_var *vars;
    int n;
    bool failed;
} site;

static site_var *site_find(site *s, const char *name, ir_dimset shadow_mask)
{
    for (int i = 0; i < s->n; i++)
        if (!(shadow_mask >> i & 1) && strcmp(s->vars[i].id.name, name) == 0)
            return &s->vars[i];
    return NULL;
}

static void note_range(elab *E, site *s, site_var *v, int dim, src_loc loc)
{
    if (v->range < 0) {
        v->range = dim;
        v->use_loc = loc;
        return;
    }
    const ir_dim *a = &E->g->dims[v->range], *b = &E->g->dims[dim];
    if (a->root == b->root || s->failed)
        return;
    const src_file *f = diag_file(E->ds, v->use_loc.file);
    elab_error(E, loc, "index variable %s ranges over %s here, but over %s at %s:%d:%d; "
                       "their sizes may differ", v->id.name, elab_dim_origin(E, dim),
               elab_dim_origin(E, v->range), f ? f->name : "?", v->use_loc.line,
               v->use_loc.col);
    s->failed = true;
}

static void scan(elab *E, site *s, const ast_expr *e, ir_dimset shadow);

/* Does e mention a (non-shadowed) variable of the site? */
static bool mentions(site *s, const ast_expr *e, ir_dimset shadow)
{
    if (!e)
        return false;
    if (e->kind == E_NAME && site_find(s, e->name, shadow))
        return true;
    if (mentions(s, e->a, shadow) || mentions(s, e->b, shadow))
        return true;
    for (int i = 0; i < e->nitems; i++)
        if (mentions(s, e->items[i], shadow))
            return true;
    for (int i = 0; i < e->nargs; i++)
        if (mentions(s, e->args[i].value, shadow))
            return true;
    return false;
}

/* The dims of an indexed base, if they can be known before the site's
 * variables are bound: a name, or an expression that does not use them
 * (elaborated here and again later: hash-consing makes that the same). */
static bool base_dims(elab *E, site *s, const ast_expr *base, ir_dimset shadow, ir_dimset *out)
{
    value v;
    if (base->kind == E_NAME) {
        const binding *b = elab_lookup(E, base->name);
        if (!b)
            return false;
        v = b->v;
    } else {
        if (mentions(s, base, shadow))
            return false;
        v = elab_expr(E, base);
    }
    if (v.kind != V_NODE || v.weak)
        return false;
    *out = v.node->dims;
    return true;
}

/* x[a, b]: a bare variable of the site at axis k ranges over x's k-th dim. */
static void scan_index(elab *E, site *s, const ast_expr *e, ir_dimset shadow)
{
    ir_dimset dims;
    if (base_dims(E, s, e->a, shadow, &dims) && ir_dimset_count(dims) == e->nitems) {
        int k = 0;
        IR_DIMSET_FOREACH(d, dims) {
            const ast_expr *it = e->items[k++];
            site_var *v = it->kind == E_NAME ? site_find(s, it->name, shadow) : NULL;
            if (v)
                note_range(E, s, v, d, it->loc);
        }
    }
    scan(E, s, e->a, shadow);
    for (int i = 0; i < e->nitems; i++)
        scan(E, s, e->items[i], shadow);
}

static void scan(elab *E, site *s, const ast_expr *e, ir_dimset shadow)
{
    if (!e)
        return;
    switch (e->kind) {
    case E_INDEX: scan_index(E, s, e, shadow); break;
    case E_UNARY: scan(E, s, e->a, shadow); break;
    case E_BINARY:
        scan(E, s, e->a, shadow);
        scan(E, s, e->b, shadow);
        break;
    case E_REDUCE:
        /* An inner reduction's own variables hide the site's. */
        for (int i = 0; i < e->nvars; i++)
            for (int j = 0; j < s->n && j < 64; j++)
                if (strcmp(s->vars[j].id.name, e->vars[i].name) == 0)
                    shadow |= (ir_dimset)1 << j;
        /* fall through */
    case E_CALL:
        for (int i = 0; i < e->nargs; i++)
            scan(E, s, e->args[i].value, shadow);
        break;
    case E_TUPLE:
        for (int i = 0; i < e->nitems; i++)
            scan(E, s, e->items[i], shadow);
        break;
    default: break;
    }
}

/* The index dim a variable gets when it cannot be its range: named after the
 * variable, rooted at the range's root. */
static int index_dim_for(elab *E, const ast_ident *v, int range)
{
    int root = E->g->dims[range].root;
    int d = ir_dim_find(E->g, v->name);
    if (d >= 0 && d != E->g->dims[d].root && E->g->dims[d].root == root)
        return d;
    const char *name = v->name;
    for (int k = 2; ir_dim_find(E->g, name) >= 0; k++)
        name = arena_printf(&E->g->arena, "%s_%d", v->name, k);
    d = ir_dim_add(E->g, name, -1, root, v->loc);
    if (d < 0)
        elab_error(E, v->loc, "too many dims in one loss (at most %d)", IR_MAX_DIMS);
    return d;
}

static bool range_taken(elab *E, const site *s, int i)
{
    for (int j = 0; j < s->n; j++)
        if (j != i && s->vars[j].range == s->vars[i].range)
            return true;
    const frame *f = E->top;
    for (int j = 0; j < f->nvars; j++)
        if (f->vars[j].index_dim == s->vars[i].range)
            return true;
    return false;
}

/* Infer the ranges of a site's variables from `body`, pick their dims, and
 * bind them (the caller restores E->top->nvars afterwards). */
static bool open_site(elab *E, site *s, const ast_ident *vars, int n, const ast_expr *body)
{
    s->n = n;
    s->vars = sup_calloc((size_t)n + 1, sizeof *s->vars);
    for (int i = 0; i < n; i++) {
        s->vars[i] = (site_var){vars[i], -1, vars[i].loc, -1};
        for (int j = 0; j < i; j++)
            if (strcmp(vars[j].name, vars[i].name) == 0) {
                elab_error(E, vars[i].loc, "index variable %s is listed twice", vars[i].name);
                return false;
            }
    }
    if (n > 64) {
        elab_error(E, vars[0].loc, "too many index variables");
        return false;
    }
    scan(E, s, body, 0);
    if (s->failed)
        return false;
    for (int i = 0; i < n; i++)
        if (s->vars[i].range < 0) {
            elab_error(E, vars[i].loc, "cannot tell what %s ranges over: use it directly as "
                                       "an index of a tensor, as in x[%s]",
                       vars[i].name, vars[i].name);
            return false;
        }
    for (int i = 0; i < n; i++) {
        site_var *v = &s->vars[i];
        v->dim = range_taken(E, s, i) ? index_dim_for(E, &v->id, v->range) : v->range;
        if (v->dim < 0)
            return false;
    }
    for (int i = 0; i < n; i++)
        elab_bind(E, s->vars[i].id.name, v_node(ir_iota(E->g, s->vars[i].dim, s->vars[i].id.loc)),
                  s->vars[i].id.loc, s->vars[i].dim);
    return true;
}

static ir_dimset site_dims(const site *s)
{
    ir_dimset m = 0;
    for (int i = 0; i < s->n; i++)
        m |= ir_dimbit(s->vars[i].dim);
    return m;
}

/* Elaborate a site's body with its variables bound. */
static ir_node *site_body(elab *E, const ast_expr *body)
{
    E->in_index++;
    value v = elab_expr(E, body);
    E->in_index--;
    return elab_strong(E, v, body->loc, "the body of index notation");
}

/* let v[i, j] = body */
void elab_let_indexed(elab *E, const ast_stmt *st)
{
    int saved = E->top->nvars;
    site s = {0};
    value result = v_err();
    if (open_site(E, &s, st->vars, st->nvars, st->value)) {
        ir_dimset want = site_dims(&s);
        ir_node *n = site_body(E, st->value);
        if (n && !ir_dimset_subset(n->dims, want)) {
            elab_error(E, st->value->loc,
                       "the right side has dims %s, but %s[...] names only %s: index the "
                       "other dims with variables of the let, or reduce them",
                       elab_dims_str(E, n->dims), st->name.name, elab_dims_str(E, want));
        } else if (n) {
            n = ir_expand(E->g, n, want, st->loc);
            result = n ? v_node(n) : elab_ir_fail(E, st->loc);
        }
    }
    sup_free(s.vars);
    E->top->nvars = saved;
    elab_bind(E, st->name.name, result, st->name.loc, -1);
}

/* sum[d](body), max[j](body), ... */
value elab_reduce_indexed(elab *E, const ast_expr *e)
{
    if (!builtin_is_reducer(e->name)) {
        elab_error(E, e->loc, "'%s[...](...)' is not a reduction (sum, mean, max, min, prod, "
                              "logsumexp)", e->name);
        return v_err();
    }
    if (e->nargs != 1 || e->args[0].name) {
        elab_error(E, e->loc, "%s[...](...) takes one expression", e->name);
        return v_err();
    }
    const ast_expr *body = e->args[0].value;
    int saved = E->top->nvars;
    site s = {0};
    value result = v_err();
    if (open_site(E, &s, e->vars, e->nvars, body)) {
        ir_dimset axes = site_dims(&s);
        ir_node *n = site_body(E, body);
        if (n)
            n = ir_expand(E->g, n, n->dims | axes, e->loc);
        if (n)
            result = builtin_reduce(E, e->name, v_node(n), axes, e->loc);
    }
    sup_free(s.vars);
    E->top->nvars = saved;
    return result;
}
