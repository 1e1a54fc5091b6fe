/* frontend.c - the public API: check a file, compile one of its losses,
 * list and describe its losses.
 *
 * A program is the user's file plus the loss library (lib/NAME.loss, embedded
 * in the binary at build time and registered in the diag_set under names
 * such as "<lib>/classification.loss", so a diagnostic inside the library
 * points at a line of it). Names resolve to the user's definitions first,
 * then the library's, then the builtins: a user definition shadows a library
 * one (library code sees only the library: elab_find_def).
 */
#include "frontend/fe.h"

#include <stdio.h>
#include <string.h>

/* ---- the program ---------------------------------------------------------------------- */

static void check_duplicates(diag_set *ds, const ast_module *m)
{
    for (int i = 0; i < m->ndefs; i++) {
        const ast_def *d = m->defs[i];
        for (int j = 0; j < i; j++)
            if (strcmp(m->defs[j]->name.name, d->name.name) == 0) {
                diag_error(ds, d->name.loc, "'%s' is defined twice (first at line %d)",
                           d->name.name, m->defs[j]->name.loc.line);
                break;
            }
        for (int a = 0; a < d->nparams; a++)
            for (int b = 0; b < a; b++)
                if (strcmp(d->params[a].name.name, d->params[b].name.name) == 0) {
                    diag_error(ds, d->params[a].name.loc, "parameter '%s' is listed twice",
                               d->params[a].name.name);
                    break;
                }
        if (d->nparams > 64)
            diag_error(ds, d->name.loc, "'%s' has too many parameters (at most 64)",
                       d->name.name);
    }
}

/* Parse the user's file and, unless excluded, the library. Returns the
 * number of syntax errors (duplicates are reported but do not stop the
 * elaboration: the first definition wins). */
static int load_program(diag_set *ds, int file, bool no_library, fe_program *p)
{
    *p = (fe_program){0};
    p->user = parse_module(ds, file);
    check_duplicates(ds, p->user);
    if (!no_library && fe_lib_count > 0) {
        p->lib = sup_calloc((size_t)fe_lib_count, sizeof *p->lib);
        for (int i = 0; i < fe_lib_count; i++) {
            int id = diag_add_file(ds, fe_lib_names[i], fe_lib_texts[i], fe_lib_lens[i]);
            p->lib[p->nlib++] = parse_module(ds, id);
            check_duplicates(ds, p->lib[i]);
        }
    }
    /* a name defined in two files of the library would depend on file order */
    for (int i = 0; i < p->nlib; i++)
        for (int k = 0; k < p->lib[i]->ndefs; k++)
            for (int j = 0; j < i; j++)
                for (int l = 0; l < p->lib[j]->ndefs; l++)
                    if (strcmp(p->lib[i]->defs[k]->name.name, p->lib[j]->defs[l]->name.name) == 0)
                        diag_error(ds, p->lib[i]->defs[k]->name.loc,
                                   "'%s' is defined in two files of the library",
                                   p->lib[i]->defs[k]->name.name);
    int n = p->user->nerrors;
    for (int i = 0; i < p->nlib; i++)
        n += p->lib[i]->nerrors;
    return n;
}

static void free_program(fe_program *p)
{
    parse_module_free(p->user);
    for (int i = 0; i < p->nlib; i++)
        parse_module_free(p->lib[i]);
    sup_free(p->lib);
}

static bool valid_file(diag_set *ds, int file)
{
    if (diag_file(ds, file))
        return true;
    diag_error(ds, src_loc_none(), "no source file with id %d", file);
    return false;
}

/* ---- checking and compiling ---------------------------------------------------------- */

int fe_check(diag_set *ds, int file)
{
    int before = ds->nerrors;
    if (!valid_file(ds, file))
        return 1;
    fe_program p;
    if (load_program(ds, file, false, &p) == 0) {
        fe_options none = {0};
        for (int i = 0; i < p.user->ndefs; i++)
            if (p.user->defs[i]->is_loss)
                ir_graph_free(elab_entry(ds, &p, p.user->defs[i], p.user, &none, true));
    }
    free_program(&p);
    return ds->nerrors - before;
}

static const ast_def *find_loss(const ast_module *m, const char *name)
{
    for (int i = 0; m && i < m->ndefs; i++)
        if (m->defs[i]->is_loss && strcmp(m->defs[i]->name.name, name) == 0)
            return m->defs[i];
    return NULL;
}

static void no_such_entry(diag_set *ds, const fe_program *p, const char *name)
{
    src_loc at = {p->user->file, 0, 0};
    const char *best = NULL;
    int bd = 3;
    for (int i = 0; i < p->user->ndefs; i++) {
        const ast_def *d = p->user->defs[i];
        if (strcmp(d->name.name, name) == 0) {
            diag_error(ds, d->name.loc, "'%s' is a fn: only a loss can be compiled", name);
            return;
        }
        int dist = fe_edit_distance(name, d->name.name);
        if (d->is_loss && dist < bd)
            bd = dist, best = d->name.name;
    }
    if (best)
        diag_error(ds, at, "no loss named '%s'; did you mean '%s'?", name, best);
    else
        diag_error(ds, at, "no loss named '%s' in this file or the library", name);
}

/* The loss to compile: the named one (the file's, else the library's), or
 * the file's only loss. */
static const ast_def *pick_entry(diag_set *ds, const fe_program *p, const char *name,
                                 const ast_module **mod)
{
    *mod = p->user;
    if (name) {
        const ast_def *d = find_loss(p->user, name);
        for (int i = 0; !d && i < p->nlib; i++)
            if ((d = find_loss(p->lib[i], name)))
                *mod = p->lib[i];
        if (!d)
            no_such_entry(ds, p, name);
        return d;
    }
    const ast_def *only = NULL;
    int n = 0;
    strbuf names;
    sb_init(&names);
    for (int i = 0; i < p->user->ndefs; i++)
        if (p->user->defs[i]->is_loss) {
            only = p->user->defs[i];
            sb_printf(&names, "%s%s", n++ ? ", " : "", only->name.name);
        }
    src_loc at = {p->user->file, 0, 0};
    if (n != 1)
        diag_error(ds, at,
                   n ? "this file defines several losses (%s): choose one as the entry"
                     : "this file defines no loss%s", sb_str(&names));
    sb_free(&names);
    return n == 1 ? only : NULL;
}

ir_graph *fe_compile(diag_set *ds, int file, const fe_options *opts)
{
    fe_options none = {0};
    if (!opts)
        opts = &none;
    if (!valid_file(ds, file))
        return NULL;
    for (int i = 0; i < opts->nsettings; i++)
        opts->settings[i].used = false;
    int before = ds->nerrors;
    fe_program p;
    ir_graph *g = NULL;
    if (load_program(ds, file, opts->no_library, &p) == 0) {
        const ast_module *mod;
        const ast_def *d = pick_entry(ds, &p, opts->entry, &mod);
        if (d)
            g = elab_entry(ds, &p, d, mod, opts, false);
    }
    free_program(&p);
    if (g && ds->nerrors > before) { /* e.g. a duplicate definition */
        ir_graph_free(g);
        g = NULL;
    }
    return g;
}

int fe_list_losses(diag_set *ds, int file, char ***names)
{
    *names = NULL;
    if (!valid_file(ds, file))
        return -1;
    int before = ds->nerrors;
    ast_module *m = parse_module(ds, file);
    int n = 0;
    if (ds->nerrors == before) {
        *names = sup_calloc((size_t)m->ndefs + 1, sizeof **names);
        for (int i = 0; i < m->ndefs; i++)
            if (m->defs[i]->is_loss)
                (*names)[n++] = sup_strdup(m->defs[i]->name.name);
    } else {
        n = -1;
    }
    parse_module_free(m);
    return n;
}

/* ---- describing an entry's parameters --------------------------------------------------- */

static void format_default(const ast_expr *e, strbuf *out)
{
    switch (e->kind) {
    case E_NUM:
        if (e->is_int)
            sb_printf(out, "%lld", (long long)e->ival);
        else
            sb_printf(out, "%.17g", e->num);
        break;
    case E_STR: sb_printf(out, "\"%s\"", e->name); break;
    case E_BOOL: sb_puts(out, e->num ? "true" : "false"); break;
    case E_NONE: sb_puts(out, "none"); break;
    case E_UNARY:
        sb_puts(out, e->op == TK_MINUS ? "-" : "!");
        format_default(e->a, out);
        break;
    default: sb_puts(out, "..."); break;
    }
}

static void describe_param(const ast_param *p, fe_param_info *info)
{
    const ast_type *t = &p->type;
    strbuf sb;
    sb_init(&sb);
    info->name = sup_strdup(p->name.name);
    if (t->kind == T_ANY)
        info->kind = FE_PARAM_UNTYPED;
    else if (t->kind == T_STR)
        info->kind = FE_PARAM_STR;
    else if (t->tensor)
        info->kind = p->def ? FE_PARAM_OPTIONAL_TENSOR : FE_PARAM_TENSOR;
    else
        info->kind = FE_PARAM_SCALAR;
    info->dtype = t->kind == T_DTYPE ? (ir_dtype)t->dtype : t->kind == T_INT ? DT_I64 : DT_F32;
    sb_puts(&sb, t->kind == T_DTYPE ? ir_dtype_name((ir_dtype)t->dtype)
                 : t->kind == T_FLOAT ? "float" : t->kind == T_INT ? "int"
                 : t->kind == T_STR ? "str" : "any");
    if (t->tensor) {
        sb_putc(&sb, '[');
        for (int i = 0; i < t->ndims; i++)
            sb_printf(&sb, "%s%s", i ? ", " : "", t->dims[i].name);
        sb_putc(&sb, ']');
    }
    info->type = sb_take(&sb);
    if (p->def) {
        format_default(p->def, &sb);
        info->default_text = sb_take(&sb);
    }
    sb_free(&sb);
}

int fe_describe_entry(diag_set *ds, int file, const fe_options *opts, fe_param_info **params)
{
    *params = NULL;
    if (!valid_file(ds, file))
        return -1;
    fe_program p;
    int n = -1;
    if (load_program(ds, file, opts && opts->no_library, &p) == 0) {
        const ast_module *mod;
        const ast_def *d = pick_entry(ds, &p, opts ? opts->entry : NULL, &mod);
        if (d) {
            n = d->nparams;
            *params = sup_calloc((size_t)n + 1, sizeof **params);
            for (int i = 0; i < n; i++)
                describe_param(&d->params[i], &(*params)[i]);
        }
    }
    free_program(&p);
    return n;
}

void fe_param_info_free(fe_param_info *params, int n)
{
    for (int i = 0; params && i < n; i++) {
        sup_free(params[i].name);
        sup_free(params[i].type);
        sup_free(params[i].default_text);
    }
    sup_free(params);
}
