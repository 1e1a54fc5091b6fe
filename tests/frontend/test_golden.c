/* test_golden.c - golden tests: every tests/frontend/diag/NAME.loss must give
 * exactly the diagnostics in its trailing comment block, and every
 * tests/frontend/ir/NAME.loss exactly the IR text (ir_print after the
 * frontend). See fe_test.h for the format and LOSSC_UPDATE_GOLDEN. */
#include "fe_test.h"

/* What the compiler says about one golden file. */
static char *run_one(const ft_golden *g, bool want_ir)
{
    diag_set ds;
    diag_init(&ds);
    int f = diag_add_file(&ds, g->base, g->text, g->len);
    strbuf out;
    sb_init(&out);
    sb_puts(&out, "");
    if (g->check && !want_ir) {
        fe_check(&ds, f);
    } else {
        fe_options o = {.entry = g->entry, .settings = (fe_setting *)g->settings,
                        .nsettings = g->nsettings};
        ir_graph *ir = fe_compile(&ds, f, &o);
        if (ir && want_ir) {
            ir_print(ir, &out);
            strbuf why;
            sb_init(&why);
            if (!ir_verify(ir, &why))
                sb_printf(&out, "VERIFIER: %s\n", sb_str(&why));
            sb_free(&why);
        }
        ir_graph_free(ir);
    }
    diag_format_all(&ds, &out);
    diag_free(&ds);
    return sb_take(&out);
}

static void run_dir(const char *dir, bool want_ir)
{
    int n, failures = 0;
    char **names = ft_list_dir(dir, &n);
    bool update = getenv("LOSSC_UPDATE_GOLDEN") != NULL;
    if (n == 0)
        fail_msg("no golden files in %s", dir);
    for (int i = 0; i < n; i++) {
        ft_golden g;
        if (!ft_load_golden(&g, dir, names[i]))
            fail_msg("cannot read %s/%s", dir, names[i]);
        if (!want_ir && !g.entry && !g.nsettings)
            g.check = true;
        char *got = run_one(&g, want_ir);
        if (strcmp(got, g.expected) != 0) {
            failures++;
            print_error("%s/%s differs.\n--- got:\n%s--- want:\n%s", dir, names[i], got,
                        g.expected);
            if (update)
                ft_update_golden(&g, got);
        }
        if (!want_ir && g.expected[0] == '\0') {
            failures++;
            print_error("%s/%s: a diagnostics test must expect at least one error\n", dir,
                        names[i]);
        }
        sup_free(got);
        ft_free_golden(&g);
    }
    ft_free_list(names, n);
    if (failures)
        fail_msg("%d of %d golden files in %s differ", failures, n, dir);
}

static void test_diagnostics(void **state)
{
    (void)state;
    run_dir("tests/frontend/diag", false);
}

static void test_ir(void **state)
{
    (void)state;
    run_dir("tests/frontend/ir", true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_ir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
