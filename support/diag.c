/* diag.c - recording diagnostics and printing them with the source line and
 * a caret, in the form every compiler user already reads:
 *
 *   huber.loss:3:17: error: unknown name 'delt'
 *       let a = abs(delt)
 *                   ^
 */
#include "support.h"

#include <string.h>

void diag_init(diag_set *ds) { *ds = (diag_set){0}; }

void diag_free(diag_set *ds)
{
    for (size_t i = 0; i < ds->nfiles; i++) {
        sup_free((char *)ds->files[i].name);
        sup_free((char *)ds->files[i].text);
    }
    for (size_t i = 0; i < ds->count; i++)
        sup_free(ds->items[i].msg);
    sup_free(ds->files);
    sup_free(ds->items);
    *ds = (diag_set){0};
}

int diag_add_file(diag_set *ds, const char *name, const char *text, size_t len)
{
    SUP_GROW(ds->files, ds->files_cap, ds->nfiles + 1);
    char *copy = sup_malloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    int id = (int)ds->nfiles++;
    ds->files[id] = (src_file){sup_strdup(name), copy, len, id};
    return id;
}

const src_file *diag_file(const diag_set *ds, int id)
{
    return id >= 0 && (size_t)id < ds->nfiles ? &ds->files[id] : NULL;
}

void diag_vreport(diag_set *ds, diag_level lvl, src_loc loc, const char *fmt,
                  va_list ap)
{
    if (lvl == DIAG_ERROR) {
        if (ds->max_errors && ds->nerrors >= ds->max_errors) {
            ds->nerrors++;
            return;
        }
        ds->nerrors++;
    }
    strbuf sb;
    sb_init(&sb);
    sb_vprintf(&sb, fmt, ap);
    SUP_GROW(ds->items, ds->cap, ds->count + 1);
    ds->items[ds->count++] = (diag){lvl, loc, sb_take(&sb)};
}

void diag_report(diag_set *ds, diag_level lvl, src_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(ds, lvl, loc, fmt, ap);
    va_end(ap);
}

static const char *level_name(diag_level l)
{
    switch (l) {
    case DIAG_ERROR: return "error";
    case DIAG_WARNING: return "warning";
    case DIAG_NOTE: return "note";
    }
    return "error";
}

/* Append line `line` of `f` (without its newline) to out; false if absent. */
static bool quote_line(const src_file *f, int line, strbuf *out, size_t *len)
{
    const char *p = f->text, *end = f->text + f->len;
    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return false;
        p = nl + 1;
    }
    const char *e = p;
    while (e < end && *e != '\n' && *e != '\r')
        e++;
    sb_putn(out, p, (size_t)(e - p));
    *len = (size_t)(e - p);
    return true;
}

void diag_format(const diag_set *ds, const diag *d, strbuf *out)
{
    const src_file *f = diag_file(ds, d->loc.file);
    if (f && d->loc.line > 0)
        sb_printf(out, "%s:%d:%d: ", f->name, d->loc.line, d->loc.col);
    else if (f)
        sb_printf(out, "%s: ", f->name);
    sb_printf(out, "%s: %s\n", level_name(d->level), d->msg);
    if (!f || d->loc.line <= 0)
        return;
    size_t start = out->len, len = 0;
    sb_puts(out, "    ");
    if (!quote_line(f, d->loc.line, out, &len)) {
        out->len = start;
        out->data[start] = '\0';
        return;
    }
    sb_puts(out, "\n    ");
    /* Keep tabs in the caret line so it lines up under the quoted text.
     * (Index by offset: appending may move out->data.) */
    size_t line_text = start + 4;
    for (int c = 1; c < d->loc.col && (size_t)(c - 1) < len; c++)
        sb_putc(out, out->data[line_text + (size_t)(c - 1)] == '\t' ? '\t' : ' ');
    sb_puts(out, "^\n");
}

void diag_format_all(const diag_set *ds, strbuf *out)
{
    for (size_t i = 0; i < ds->count; i++)
        diag_format(ds, &ds->items[i], out);
    if (ds->max_errors && ds->nerrors > ds->max_errors)
        sb_printf(out, "lossc: too many errors (%d), stopping\n", ds->nerrors);
}
