/* elab.c - the elaborator's core: diagnostics, values, the environment,
 * dims, and statements.
 *
 * Elaboration walks the AST of one entry loss and builds its ir_graph as it
 * goes, checking types and dims on the way. Everything is decided at compile
 * time except tensor values: `fn` calls are inlined, `str` parameters are
 * strings the `if` statements compare, and an `if` picks one branch. The
 * bindings a branch makes stay visible after the `if` (a compile-time `if`
 * chooses code, it does not open a scope).
 *
 * Errors never stop the walk: a failed expression yields V_ERR, which every
 * consumer passes on without a new message, so one mistake gives one
 * diagnostic. The same message at the same place is reported once, however
 * many times an inlined function is expanded; each report inside an inlined
 * body carries notes pointing at the calls that led there.
 */
#include "frontend/fe.h"

#include <stdio.h>
#include <string.h>

/* ---- diagnostics ------------------------------------------------------------------ */

static bool already_reported(const diag_set *ds, diag_level lvl, src_loc loc, const char *msg)
{
    for (size_t i = 0; i < ds->count; i++) {
        const diag *d = &ds->items[i];
        if (d->level == lvl && d->loc.file == loc.file && d->loc.line == loc.line &&
            d->loc.col == loc.col && strcmp(d->msg, msg) == 0)
            return true;
    }
    return false;
}

static void report(elab *E, diag_level lvl, src_loc loc, const char *fmt, va_list ap,
                   bool notes)
{
    strbuf sb;
    sb_init(&sb);
    sb_vprintf(&sb, fmt, ap);
    if (!already_reported(E->ds, lvl, loc, sb_str(&sb))) {
        diag_report(E->ds, lvl, loc, "%s", sb_str(&sb));
        if (lvl == DIAG_ERROR && notes)
            for (frame *f = E->top; f && f->caller; f = f->caller)
                if (!f->checking_arg) /* the error is at the call already */
                    diag_note(E->ds, f->call_loc, "in this call to '%s'", f->def->name.name);
    }
    if (lvl == DIAG_ERROR)
        E->failed = true;
    sb_free(&sb);
}

void elab_error(elab *E, src_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(E, DIAG_ERROR, loc, fmt, ap, true);
    va_end(ap);
}

void elab_note(elab *E, src_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(E, DIAG_NOTE, loc, fmt, ap, false);
    va_end(ap);
}

/* An error about how the user called library code (error("...") in a
 * library body): said at the outermost call in the user's file, where the
 * fix is; at loc when the user's own code raised it. */
void elab_error_at_user(elab *E, src_loc loc, const char *fmt, ...)
{
    int user = E->prog->user->file;
    frame *at = NULL;
    for (frame *f = E->top; f && f->caller; f = f->caller)
        if (f->call_loc.file == user)
            at = f;
    va_list ap;
    va_start(ap, fmt);
    if (loc.file == user || !at)
        report(E, DIAG_ERROR, loc, fmt, ap, true);
    else
        report(E, DIAG_ERROR, at->call_loc, fmt, ap, false);
    va_end(ap);
}

value elab_ir_fail(elab *E, src_loc loc)
{
    const char *why = ir_graph_error(E->g);
    elab_error(E, loc, "%s", why[0] ? why : "cannot build this expression");
    return v_err();
}

/* ---- values ------------------------------------------------------------------------ */

value v_err(void) { return (value){.kind = V_ERR}; }
value v_node(ir_node *n) { return n ? (value){.kind = V_NODE, .node = n} : v_err(); }
value v_weak(ir_node *n) { return n ? (value){.kind = V_NODE, .weak = true, .node = n} : v_err(); }
value v_str(const char *s) { return (value){.kind = V_STR, .str = s}; }
value v_none(void) { return (value){.kind = V_NONE}; }

/* ---- environment ------------------------------------------------------------------- */

const binding *elab_lookup(elab *E, const char *name)
{
    frame *f = E->top;
    for (int i = f->nvars - 1; i >= 0; i--)
        if (strcmp(f->vars[i].name, name) == 0)
            return &f->vars[i];
    return NULL;
}

void elab_bind(elab *E, const char *name, value v, src_loc loc, int index_dim)
{
    frame *f = E->top;
    SUP_GROW(f->vars, f->vars_cap, (size_t)f->nvars + 1);
    f->vars[f->nvars++] = (binding){name, v, loc, index_dim};
}

/* The frame whose dim names are visible (generic fns see their caller's). */
static frame *dim_frame(elab *E)
{
    frame *f = E->top;
    while (f && !f->own_dims && f->caller)
        f = f->caller;
    return f;
}

const dim_binding *elab_dim_binding(elab *E, const char *name)
{
    frame *f = dim_frame(E);
    for (int i = 0; f && i < f->ndims; i++)
        if (strcmp(f->dims[i].name, name) == 0)
            return &f->dims[i];
    return NULL;
}

int elab_dim_lookup(elab *E, const char *name)
{
    const dim_binding *b = elab_dim_binding(E, name);
    if (b)
        return b->dim;
    /* Index dims (made by `let s[i, j]`) are visible by name in the entry
     * and in the loss that made them. */
    int d = ir_dim_find(E->g, name);
    if (d >= 0 && E->g->dims[d].root != d)
        return d;
    return -1;
}

void elab_dim_bind(elab *E, const char *name, int dim, src_loc loc, const char *from)
{
    frame *f = dim_frame(E);
    SUP_GROW(f->dims, f->dims_cap, (size_t)f->ndims + 1);
    f->dims[f->ndims++] = (dim_binding){name, dim, loc, from};
}

int elab_dim_get(elab *E, const char *name, int64_t size, int root, src_loc loc)
{
    int d = ir_dim_find(E->g, name);
    if (d >= 0 && (root < 0 || E->g->dims[d].root == E->g->dims[root].root))
        return d;
    if (d >= 0) {
        /* The name is taken by a dim of another size: make it unique. */
        for (int k = 2; d >= 0; k++)
            d = ir_dim_find(E->g, arena_printf(&E->g->arena, "%s_%d", name, k));
        name = arena_printf(&E->g->arena, "%s_%d", name, E->g->ndims);
    }
    d = ir_dim_add(E->g, name, size, root, loc);
    if (d < 0)
        elab_error(E, loc, "too many dims in one loss (at most %d)", IR_MAX_DIMS);
    return d;
}

int elab_alias_dim(elab *E, int base, int k, src_loc loc)
{
    int root = E->g->dims[base].root;
    const char *name = arena_printf(&E->g->arena, "%s_%d", E->g->dims[base].name, k);
    int d = ir_dim_find(E->g, name);
    if (d >= 0 && d != E->g->dims[d].root && E->g->dims[d].root == root)
        return d;
    for (int j = 2; ir_dim_find(E->g, name) >= 0; j++)
        name = arena_printf(&E->g->arena, "%s_%d_%d", E->g->dims[base].name, k, j);
    d = ir_dim_add(E->g, name, -1, root, loc);
    if (d < 0)
        elab_error(E, loc, "too many dims in one loss (at most %d)", IR_MAX_DIMS);
    return d;
}

const char *elab_dims_str(elab *E, ir_dimset s)
{
    strbuf sb;
    sb_init(&sb);
    sb_putc(&sb, '[');
    ir_dimset_format(E->g, s, &sb);
    sb_putc(&sb, ']');
    char *r = arena_strdup(&E->g->arena, sb_str(&sb));
    sb_free(&sb);
    return r;
}

const char *elab_dim_origin(elab *E, int d)
{
    const ir_dim *dim = &E->g->dims[d];
    const src_file *f = diag_file(E->ds, dim->loc.file);
    char where[160] = "";
    if (f && dim->loc.line > 0)
        snprintf(where, sizeof where, " at %s:%d:%d", f->name, dim->loc.line, dim->loc.col);
    if (dim->root != d)
        return arena_printf(&E->g->arena, "%s (an index dim over %s, made%s)", dim->name,
                            E->g->dims[dim->root].name, where);
    if (dim->size >= 0 && dim->name[0] >= '0' && dim->name[0] <= '9')
        return arena_printf(&E->g->arena, "%s (a literal size%s)", dim->name, where);
    if (dim->size >= 0)
        return arena_printf(&E->g->arena, "%s (fixed to %lld, declared%s)", dim->name,
                            (long long)dim->size, where);
    return arena_printf(&E->g->arena, "%s (declared%s)", dim->name, where);
}

/* ---- definitions and suggestions ---------------------------------------------------- */

static const ast_def *find_in(const ast_module *m, const char *name)
{
    for (int i = 0; m && i < m->ndefs; i++)
        if (strcmp(m->defs[i]->name.name, name) == 0)
            return m->defs[i];
    return NULL;
}

/* Lexical resolution: the module the current code was written in comes
 * first. Library code then sees the rest of the library and never the
 * user's file (a user function reaches it only passed as a value), so a
 * library body calls the library's own helpers, in any of its files,
 * whatever the user's file defines; user code sees its own file, then the
 * library. */
const ast_def *elab_find_def(elab *E, const char *name, const ast_module **mod)
{
    const ast_module *here = E->top ? E->top->mod : NULL;
    bool in_library = here && here != E->prog->user;
    const ast_def *d = find_in(here, name);
    if (d) {
        *mod = here;
        return d;
    }
    if (!in_library && (d = find_in(E->prog->user, name))) {
        *mod = E->prog->user;
        return d;
    }
    for (int i = 0; i < E->prog->nlib; i++)
        if ((d = find_in(E->prog->lib[i], name))) {
            *mod = E->prog->lib[i];
            return d;
        }
    return NULL;
}

/* Optimal string alignment distance: insertions, deletions, substitutions
 * and swaps of neighbours ("mni" is one edit from "min"). */
int fe_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 40 || m > 40)
        return 99;
    int d[41][41];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

typedef struct suggester {
    const char *name, *best;
    int dist;
} suggester;

static void consider(suggester *s, const char *cand)
{
    if (strcmp(cand, s->name) == 0)
        return;
    int d = fe_edit_distance(s->name, cand);
    size_t len = strlen(s->name);
    int limit = len <= 2 ? 0 : len <= 4 ? 1 : len <= 8 ? 2 : 3;
    if (d <= limit && d < s->dist) {
        s->dist = d;
        s->best = cand;
    }
}

static void consider_module(suggester *s, const ast_module *m)
{
    for (int i = 0; m && i < m->ndefs; i++)
        consider(s, m->defs[i]->name.name);
}

const char *elab_suggest(elab *E, const char *name, bool want_fn)
{
    suggester s = {name, NULL, 99};
    if (!want_fn) {
        static const char *const literals[] = {"true", "false", "none", "inf", "nan"};
        for (size_t i = 0; i < SUP_ARRAY_LEN(literals); i++)
            consider(&s, literals[i]);
        for (int i = 0; i < E->top->nvars; i++)
            consider(&s, E->top->vars[i].name);
        frame *df = dim_frame(E);
        for (int i = 0; df && i < df->ndims; i++)
            consider(&s, df->dims[i].name);
    }
    consider_module(&s, E->prog->user);
    for (int i = 0; i < E->prog->nlib; i++)
        consider_module(&s, E->prog->lib[i]);
    for (int i = 0; builtin_name(i); i++)
        consider(&s, builtin_name(i));
    return s.best;
}

/* ---- statements ---------------------------------------------------------------------- */

static void elab_stmt(elab *E, const ast_stmt *s);

void elab_block(elab *E, const ast_block *b)
{
    for (int i = 0; i < b->n && !E->top->returned; i++)
        elab_stmt(E, b->stmts[i]);
}

static void elab_let(elab *E, const ast_stmt *s)
{
    if (s->indexed) {
        elab_let_indexed(E, s);
        return;
    }
    value v = elab_expr(E, s->value);
    elab_bind(E, s->name.name, v, s->name.loc, -1);
}

static void elab_out(elab *E, const ast_stmt *s);

static void elab_return(elab *E, const ast_stmt *s)
{
    value v = elab_expr(E, s->value);
    E->top->returned = true;
    E->top->ret = v;
    E->top->ret_loc = s->value->loc;
    if (v.kind == V_STR || v.kind == V_FN || v.kind == V_NONE) {
        elab_error(E, s->value->loc, "'%s' must return a number or a tensor, not %s",
                   E->top->def->name.name, elab_value_kind_name(v));
        E->top->ret = v_err();
    }
}

/* `if` on a compile-time condition: elaborate the chosen branch only. */
static void elab_if(elab *E, const ast_stmt *s)
{
    value c = elab_expr(E, s->value);
    if (c.kind == V_ERR)
        return;
    double cv;
    if (c.kind != V_NODE || !elab_is_const(c, &cv) || c.node->dtype != DT_BOOL) {
        if (c.kind == V_NODE && c.node->dtype == DT_BOOL)
            elab_error(E, s->value->loc,
                       "this condition is only known at run time; `if` chooses code at "
                       "compile time (on str parameters, none, or constants): use "
                       "where(cond, a, b) for a value that depends on the data");
        else
            elab_error(E, s->value->loc, "the condition of `if` must be a bool, not %s",
                       elab_value_kind_name(c));
        return;
    }
    elab_block(E, cv != 0 ? &s->then_b : &s->else_b);
}

#define MAX_UNROLL 100000

/* A bound of range(...): a compile-time integer. */
static bool range_bound(elab *E, const ast_expr *a, int64_t *out)
{
    value v = elab_expr(E, a);
    double c;
    if (v.kind == V_ERR)
        return false;
    if (v.kind != V_NODE || !elab_is_const(v, &c) || !ir_dtype_is_int((ir_dtype)v.node->dtype)) {
        elab_error(E, a->loc, "the bounds of a `for` loop must be integers known at compile "
                              "time (the loop is unrolled): a dim used as a bound must have a "
                              "fixed size, e.g. --set T=50 or a literal size");
        return false;
    }
    *out = (int64_t)c;
    return true;
}

/* `for i in range(a, b) { ... }` (or range(b)): the body is elaborated once
 * per value of i, a compile-time integer, in order; its bindings stay
 * visible in the next iteration and after the loop, so `let x = f(x)` in
 * the body carries x from one step to the next (a recurrence, unrolled). */
static void elab_for(elab *E, const ast_stmt *s)
{
    const ast_expr *r = s->value;
    if (r->kind != E_CALL || strcmp(r->name, "range") != 0 || r->nargs < 1 || r->nargs > 2 ||
        r->args[0].name || r->args[r->nargs - 1].name) {
        elab_error(E, r->loc, "a `for` loop runs over range(stop) or range(start, stop)");
        return;
    }
    int64_t lo = 0, hi;
    if ((r->nargs == 2 && !range_bound(E, r->args[0].value, &lo)) ||
        !range_bound(E, r->args[r->nargs - 1].value, &hi))
        return;
    if (hi - lo > MAX_UNROLL) {
        elab_error(E, r->loc, "this loop would be unrolled %lld times (at most %d)",
                   (long long)(hi - lo), MAX_UNROLL);
        return;
    }
    int errors = E->ds->nerrors;
    for (int64_t i = lo; i < hi && !E->top->returned && E->ds->nerrors == errors; i++) {
        elab_bind(E, s->name.name, v_weak(ir_const(E->g, DT_I64, (double)i, s->name.loc)),
                  s->name.loc, -1);
        elab_block(E, &s->then_b);
    }
}

static void elab_stmt(elab *E, const ast_stmt *s)
{
    switch (s->kind) {
    case S_LET: elab_let(E, s); break;
    case S_OUT: elab_out(E, s); break;
    case S_RETURN: elab_return(E, s); break;
    case S_IF: elab_if(E, s); break;
    case S_FOR: elab_for(E, s); break;
    case S_EXPR: {
        /* A call may stand alone (it may exist for its checks); any other
         * expression computed and dropped is a mistake. */
        value v = elab_expr(E, s->value);
        if (v.kind != V_ERR && s->value->kind != E_CALL)
            elab_error(E, s->loc, "this value is computed and then dropped: bind it with "
                                  "`let` or `return` it");
        break;
    }
    }
}

/* ---- extra outputs ------------------------------------------------------------------ */

/* `out` in the entry adds an output after "loss"; in an inlined loss it is
 * checked and dropped (only the entry's outputs reach the caller). */
static void elab_out(elab *E, const ast_stmt *s)
{
    value v = elab_expr(E, s->value);
    if (!E->top->is_entry || v.kind == V_ERR)
        return;
    ir_node *n = elab_strong(E, v, s->value->loc, "an output");
    if (!n)
        return;
    if (strcmp(s->name.name, "loss") == 0) {
        elab_error(E, s->name.loc, "'loss' names the returned value: give this output "
                                   "another name");
        return;
    }
    for (int i = 0; i < E->nouts; i++)
        if (strcmp(E->outs[i].name, s->name.name) == 0) {
            elab_error(E, s->name.loc, "output '%s' is defined twice", s->name.name);
            return;
        }
    SUP_GROW(E->outs, E->outs_cap, (size_t)E->nouts + 1);
    E->outs[E->nouts++] = (out_item){s->name.name, n, s->name.loc};
}
