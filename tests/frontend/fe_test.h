/* fe_test.h - what the frontend tests share: compiling source text, and
 * golden files (a .loss file whose expected output sits in a trailing
 * comment block, QBE style):
 *
 *   loss f(x: f32[N]) { return mean(xx) }
 *   #: set C=10              directives: entry NAME, set NAME=VALUE, check
 *   #=== expected
 *   # f.loss:1:33: error: unknown name 'xx'; did you mean 'x'?
 *   #     loss f(x: f32[N]) { return mean(xx) }
 *   #                                     ^
 *
 * Each expected line is "# " + text ("#" alone is an empty line). With
 * LOSSC_UPDATE_GOLDEN=1 in the environment a mismatching file is rewritten
 * with what the compiler produced (review the diff before committing).
 */
#ifndef LOSSC_FE_TEST_H
#define LOSSC_FE_TEST_H

#include "testutil.h"

#include "frontend/frontend.h"

#include <dirent.h>
#include <stdlib.h>

#define FT_MAX_SETTINGS 16

typedef struct ft_golden {
    char *path, *base; /* base: the file name diagnostics show */
    char *text;        /* whole file */
    size_t len;
    size_t expect_at;  /* offset of the "#=== expected" line (len if none) */
    char *expected;    /* decoded expected text */
    char *entry;
    bool check;        /* fe_check instead of fe_compile */
    fe_setting settings[FT_MAX_SETTINGS];
    int nsettings;
} ft_golden;

static inline char *ft_strndup(const char *s, size_t n)
{
    char *r = sup_malloc(n + 1);
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

/* Parse directives ("#: ...") and the expected block. */
static inline void ft_parse_golden(ft_golden *g)
{
    strbuf exp;
    sb_init(&exp);
    sb_puts(&exp, "");
    const char *marker = strstr(g->text, "\n#=== expected");
    g->expect_at = marker ? (size_t)(marker - g->text) + 1 : g->len;
    for (const char *p = g->text; p < g->text + g->len;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        bool in_expect = (size_t)(p - g->text) > g->expect_at;
        if (in_expect && n >= 1 && p[0] == '#') {
            if (n >= 2)
                sb_putn(&exp, p + 2, n - 2);
            sb_putc(&exp, '\n');
        } else if (!in_expect && n > 3 && strncmp(p, "#: ", 3) == 0) {
            char *d = ft_strndup(p + 3, n - 3);
            if (strncmp(d, "entry ", 6) == 0) {
                g->entry = sup_strdup(d + 6);
            } else if (strcmp(d, "check") == 0) {
                g->check = true;
            } else if (strncmp(d, "set ", 4) == 0 && g->nsettings < FT_MAX_SETTINGS) {
                char *eq = strchr(d + 4, '=');
                if (eq) {
                    *eq = '\0';
                    g->settings[g->nsettings++] =
                        (fe_setting){sup_strdup(d + 4), sup_strdup(eq + 1), false};
                }
            }
            sup_free(d);
        }
        p += n + 1;
    }
    g->expected = sb_take(&exp);
}

static inline bool ft_load_golden(ft_golden *g, const char *dir, const char *name)
{
    memset(g, 0, sizeof *g);
    strbuf p;
    sb_init(&p);
    sb_printf(&p, "%s/%s", dir, name);
    g->path = sb_take(&p);
    g->base = sup_strdup(name);
    g->text = sup_read_file(g->path, &g->len);
    if (!g->text)
        return false;
    ft_parse_golden(g);
    return true;
}

static inline void ft_free_golden(ft_golden *g)
{
    for (int i = 0; i < g->nsettings; i++) {
        sup_free((char *)g->settings[i].name);
        sup_free((char *)g->settings[i].value);
    }
    sup_free(g->path);
    sup_free(g->base);
    sup_free(g->text);
    sup_free(g->expected);
    sup_free(g->entry);
}

/* Rewrite the golden file with `got` as its expected block. */
static inline void ft_update_golden(const ft_golden *g, const char *got)
{
    FILE *f = fopen(g->path, "w");
    if (!f)
        return;
    size_t keep = g->expect_at;
    while (keep > 0 && g->text[keep - 1] == '\n' && keep > 1 && g->text[keep - 2] == '\n')
        keep--;
    fwrite(g->text, 1, keep, f);
    if (keep && g->text[keep - 1] != '\n')
        fputc('\n', f);
    fputs("#=== expected\n", f);
    for (const char *p = got; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        fputs(n ? "# " : "#", f);
        fwrite(p, 1, n, f);
        fputc('\n', f);
        p += n + (nl ? 1 : 0);
    }
    fclose(f);
}

/* The sorted names of the *.loss files in dir (NULL-terminated). */
static inline char **ft_list_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t cap = 0;
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".loss") == 0) {
            SUP_GROW(names, cap, (size_t)n + 2);
            names[n++] = sup_strdup(e->d_name);
        }
    }
    if (d)
        closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    if (names)
        names[n] = NULL;
    *count = n;
    return names;
}

static inline void ft_free_list(char **names, int n)
{
    for (int i = 0; i < n; i++)
        sup_free(names[i]);
    sup_free(names);
}

/* Compile source text; returns the graph (or NULL) and the formatted
 * diagnostics in *diags (sup_free it). */
static inline ir_graph *ft_compile(const char *name, const char *text, const char *entry,
                                   fe_setting *settings, int nsettings, char **diags)
{
    diag_set ds;
    diag_init(&ds);
    int f = diag_add_file(&ds, name, text, strlen(text));
    fe_options o = {.entry = entry, .settings = settings, .nsettings = nsettings};
    ir_graph *g = fe_compile(&ds, f, &o);
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "");
    diag_format_all(&ds, &sb);
    if (diags)
        *diags = sb_take(&sb);
    sb_free(&sb);
    diag_free(&ds);
    return g;
}

/* Compile and fail the test with the diagnostics if it does not compile. */
static inline ir_graph *ft_compile_ok(const char *text, const char *entry)
{
    char *diags;
    ir_graph *g = ft_compile("test.loss", text, entry, NULL, 0, &diags);
    if (!g)
        fail_msg("compile failed:\n%s", diags);
    sup_free(diags);
    return g;
}

/* Compile a file from the source tree (tests run in the project root). */
static inline ir_graph *ft_compile_file(const char *path, const char *entry,
                                        fe_setting *settings, int nsettings)
{
    size_t len;
    char *text = sup_read_file(path, &len);
    if (!text)
        fail_msg("cannot read %s", path);
    char *diags;
    ir_graph *g = ft_compile(path, text, entry, settings, nsettings, &diags);
    if (!g)
        fail_msg("compile of %s failed:\n%s", path, diags);
    sup_free(diags);
    sup_free(text);
    return g;
}

#endif
