/* test_docs.c - the documentation stays true: in docs/language.md and in
 * every page of docs/library/, every ```loss block compiles without a
 * diagnostic (each of its losses as an entry, and the graph verifies), every
 * ```loss-error block is rejected, and a ```text block right after one holds
 * its exact diagnostics (file name example.loss). Every public function of
 * the loss library (the lib folder: a `fn` or `loss` whose name does not start
 * with '_') has its page docs/library/NAME.md with at least one example. */
#include "fe_test.h"

#include <ctype.h>

typedef struct block {
    char *text;
    bool error;
    char *expected; /* the ```text block after an error block, or NULL */
    int line;
} block;

/* The fenced block starting after line `p`; returns the end of it. */
static const char *read_fence(const char *p, strbuf *out, int *line)
{
    sb_clear(out);
    sb_puts(out, "");
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        (*line)++;
        if (n == 3 && strncmp(p, "```", 3) == 0)
            return nl ? nl + 1 : p + n;
        sb_putn(out, p, n);
        sb_putc(out, '\n');
        p += n + (nl ? 1 : 0);
    }
    return p;
}

static int collect(const char *doc, block *blocks, int max)
{
    int n = 0, line = 0;
    strbuf sb;
    sb_init(&sb);
    for (const char *p = doc; *p && n < max;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        const char *next = nl ? nl + 1 : p + len;
        bool err = len == 13 && strncmp(p, "```loss-error", 13) == 0;
        bool ok = len == 7 && strncmp(p, "```loss", 7) == 0;
        bool text = len == 7 && strncmp(p, "```text", 7) == 0;
        if (err || ok || text) {
            int start = line;
            next = read_fence(next, &sb, &line);
            if (text && n > 0 && blocks[n - 1].error && !blocks[n - 1].expected)
                blocks[n - 1].expected = sb_take(&sb);
            else if (!text)
                blocks[n++] = (block){sb_take(&sb), err, NULL, start};
        }
        p = next;
    }
    sb_free(&sb);
    return n;
}

static void check_block(const char *doc, const block *b, int *failures)
{
    diag_set ds;
    diag_init(&ds);
    int f = diag_add_file(&ds, "example.loss", b->text, strlen(b->text));
    int errors = fe_check(&ds, f);
    char **names = NULL;
    int n = errors ? 0 : fe_list_losses(&ds, f, &names);
    for (int i = 0; i < n; i++) {
        fe_options o = {.entry = names[i]};
        ir_graph *g = fe_compile(&ds, f, &o);
        strbuf why;
        sb_init(&why);
        if (!g || !ir_verify(g, &why)) {
            print_error("%s:%d: loss %s: %s\n", doc, b->line, names[i], sb_str(&why));
            (*failures)++;
        }
        sb_free(&why);
        ir_graph_free(g);
        sup_free(names[i]);
    }
    sup_free(names);
    strbuf out;
    sb_init(&out);
    sb_puts(&out, "");
    diag_format_all(&ds, &out);
    if (!b->error && ds.nerrors) {
        print_error("%s:%d: this example does not compile:\n%s", doc, b->line, sb_str(&out));
        (*failures)++;
    } else if (b->error && !ds.nerrors) {
        print_error("%s:%d: this error example compiles\n", doc, b->line);
        (*failures)++;
    } else if (b->error && b->expected && strcmp(sb_str(&out), b->expected) != 0) {
        print_error("%s:%d: the diagnostics differ.\n--- got:\n%s--- "
                    "documented:\n%s", doc, b->line, sb_str(&out), b->expected);
        (*failures)++;
    }
    sb_free(&out);
    diag_free(&ds);
}

/* Check every block of one document; returns the number of blocks and
 * counts the error blocks in *errors. */
static int check_doc(const char *path, int *failures, int *errors)
{
    size_t len;
    char *doc = sup_read_file(path, &len);
    if (!doc)
        fail_msg("cannot read %s", path);
    block blocks[128];
    int n = collect(doc, blocks, 128);
    for (int i = 0; i < n; i++) {
        check_block(path, &blocks[i], failures);
        *errors += blocks[i].error;
        sup_free(blocks[i].text);
        sup_free(blocks[i].expected);
    }
    sup_free(doc);
    return n;
}

static void test_language_reference(void **state)
{
    (void)state;
    int failures = 0, errors = 0;
    int n = check_doc("docs/language.md", &failures, &errors);
    assert_true(n >= 20);
    assert_true(errors >= 5);
    if (failures)
        fail_msg("%d of %d examples in docs/language.md are wrong", failures, n);
}

/* The public names a library file defines: "fn NAME(" or "loss NAME(" at the
 * start of a line, NAME not starting with '_'. */
static int public_names(const char *text, char names[][64], int max)
{
    int n = 0;
    for (const char *p = text; p && *p && n < max; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        int skip = strncmp(p, "fn ", 3) == 0 ? 3 : strncmp(p, "loss ", 5) == 0 ? 5 : 0;
        if (!skip || p[skip] == '_')
            continue;
        int k = 0;
        while (k < 63 && (isalnum((unsigned char)p[skip + k]) || p[skip + k] == '_'))
            k++;
        snprintf(names[n++], 64, "%.*s", k, p + skip);
    }
    return n;
}

static void test_library_reference(void **state)
{
    (void)state;
    int failures = 0, errors = 0, total = 0, nfiles;
    char **files = ft_list_dir("lib", &nfiles);
    assert_true(nfiles > 0);
    char path[1024];
    for (int f = 0; f < nfiles; f++) {
        snprintf(path, sizeof path, "lib/%.200s", files[f]);
        size_t len;
        char *text = sup_read_file(path, &len);
        assert_non_null(text);
        char names[128][64];
        int n = public_names(text, names, 128);
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "docs/library/%.63s.md", names[i]);
            FILE *page = fopen(path, "r");
            if (!page) {
                print_error("lib/%s: '%s' has no page %s\n", files[f], names[i], path);
                failures++;
                continue;
            }
            fclose(page);
            int blocks = check_doc(path, &failures, &errors);
            if (blocks == 0) {
                print_error("%s: no ```loss example\n", path);
                failures++;
            }
            total += blocks;
        }
        sup_free(text);
        sup_free(files[f]);
    }
    sup_free(files);
    total += check_doc("docs/library/README.md", &failures, &errors);
    total += check_doc("docs/library/loss_scaling.md", &failures, &errors);
    if (failures)
        fail_msg("%d problems in docs/library (%d examples)", failures, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_language_reference),
        cmocka_unit_test(test_library_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
