/* test_docs.c - docs/language.md stays true: every ```loss block compiles
 * without a diagnostic (each of its losses as an entry, and the graph
 * verifies), every ```loss-error block is rejected, and a ```text block
 * right after one holds its exact diagnostics (file name example.loss). */
#include "fe_test.h"

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

static void check_block(const block *b, int *failures)
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
            print_error("docs/language.md:%d: loss %s: %s\n", b->line, names[i], sb_str(&why));
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
        print_error("docs/language.md:%d: this example does not compile:\n%s", b->line,
                    sb_str(&out));
        (*failures)++;
    } else if (b->error && !ds.nerrors) {
        print_error("docs/language.md:%d: this error example compiles\n", b->line);
        (*failures)++;
    } else if (b->error && b->expected && strcmp(sb_str(&out), b->expected) != 0) {
        print_error("docs/language.md:%d: the diagnostics differ.\n--- got:\n%s--- "
                    "documented:\n%s", b->line, sb_str(&out), b->expected);
        (*failures)++;
    }
    sb_free(&out);
    diag_free(&ds);
}

static void test_language_reference(void **state)
{
    (void)state;
    size_t len;
    char *doc = sup_read_file("docs/language.md", &len);
    assert_non_null(doc);
    block blocks[128];
    int n = collect(doc, blocks, 128), failures = 0, errors = 0;
    assert_true(n >= 20);
    for (int i = 0; i < n; i++) {
        check_block(&blocks[i], &failures);
        errors += blocks[i].error;
        sup_free(blocks[i].text);
        sup_free(blocks[i].expected);
    }
    assert_true(errors >= 5);
    sup_free(doc);
    if (failures)
        fail_msg("%d of %d examples in docs/language.md are wrong", failures, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_language_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
