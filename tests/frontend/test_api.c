/* test_api.c - the public API around compiling: listing and describing
 * losses, which settings the frontend consumed, entry selection, the
 * library switch, and that a file's own ids and errors are kept apart. */
#include "fe_test.h"

static const char *src =
    "fn helper(x) = x\n"
    "loss a(x: f32[N, C], w: f32[C] = none, delta: f32 = 1.5, k: i64 = -100,\n"
    "       reduction: str = \"mean\", flag: bool = true) = mean(x)\n"
    "loss b(y: float[N]) = sum(y)\n";

static int add(diag_set *ds, const char *text)
{
    diag_init(ds);
    return diag_add_file(ds, "api.loss", text, strlen(text));
}

static void test_list_and_describe(void **state)
{
    (void)state;
    diag_set ds;
    int f = add(&ds, src);
    char **names;
    assert_int_equal(fe_list_losses(&ds, f, &names), 2);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[1], "b");
    for (int i = 0; i < 2; i++)
        sup_free(names[i]);
    sup_free(names);
    fe_param_info *p;
    fe_options o = {.entry = "a"};
    int n = fe_describe_entry(&ds, f, &o, &p);
    assert_int_equal(n, 6);
    assert_string_equal(p[0].name, "x");
    assert_int_equal(p[0].kind, FE_PARAM_TENSOR);
    assert_string_equal(p[0].type, "f32[N, C]");
    assert_null(p[0].default_text);
    assert_int_equal(p[1].kind, FE_PARAM_OPTIONAL_TENSOR);
    assert_string_equal(p[1].default_text, "none");
    assert_int_equal(p[2].kind, FE_PARAM_SCALAR);
    assert_string_equal(p[2].default_text, "1.5");
    assert_string_equal(p[3].default_text, "-100");
    assert_int_equal(p[3].dtype, DT_I64);
    assert_int_equal(p[4].kind, FE_PARAM_STR);
    assert_string_equal(p[4].default_text, "\"mean\"");
    assert_string_equal(p[5].default_text, "true");
    fe_param_info_free(p, n);
    o.entry = "b";
    n = fe_describe_entry(&ds, f, &o, &p);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].dtype, DT_F32); /* float as an entry is f32 */
    fe_param_info_free(p, n);
    assert_int_equal(ds.nerrors, 0);
    diag_free(&ds);
}

static void test_settings_bookkeeping(void **state)
{
    (void)state;
    diag_set ds;
    int f = add(&ds, src);
    fe_setting set[] = {{"reduction", "sum", false}, {"C", "7", false},
                        {"delta", "0.5", false}, {"w", "input", false}};
    fe_options o = {.entry = "a", .settings = set, .nsettings = 4};
    ir_graph *g = fe_compile(&ds, f, &o);
    assert_non_null(g);
    assert_true(set[0].used);
    assert_true(set[1].used);
    assert_false(set[2].used); /* a numeric scalar: the runtime binds it */
    assert_true(set[3].used);
    assert_int_equal(ir_dim_size(g, ir_dim_find(g, "C")), 7);
    assert_int_equal(g->ninputs, 5); /* x, w, delta, k, flag */
    assert_int_equal(g->inputs[1].kind, IR_IN_TENSOR);
    assert_int_equal(g->inputs[2].kind, IR_IN_SCALAR);
    assert_true(g->inputs[2].has_default);
    assert_close(g->inputs[2].default_value, 1.5, 0, 0);
    assert_close(g->inputs[3].default_value, -100, 0, 0);
    assert_int_equal(g->inputs[4].dtype, DT_BOOL);
    assert_string_equal(g->outputs[0].name, "loss");
    ir_graph_free(g);
    diag_free(&ds);
}

static void test_entry_selection(void **state)
{
    (void)state;
    diag_set ds;
    int f = add(&ds, src);
    assert_null(fe_compile(&ds, f, NULL)); /* two losses: which? */
    fe_options o = {.entry = "helper"};
    assert_null(fe_compile(&ds, f, &o));
    o.entry = "aa";
    assert_null(fe_compile(&ds, f, &o));
    assert_int_equal(ds.nerrors, 3);
    assert_non_null(strstr(ds.items[0].msg, "several losses (a, b)"));
    assert_non_null(strstr(ds.items[1].msg, "'helper' is a fn"));
    assert_non_null(strstr(ds.items[2].msg, "did you mean 'a'?"));
    diag_free(&ds);
}

static void test_no_library(void **state)
{
    (void)state;
    const char *text = "loss f(a: f32[N], b: f32[N]) = mse_loss(a, b)\n";
    diag_set ds;
    int f = add(&ds, text);
    ir_graph *g = fe_compile(&ds, f, NULL);
    assert_non_null(g);
    ir_graph_free(g);
    fe_options o = {.no_library = true};
    assert_null(fe_compile(&ds, f, &o));
    assert_non_null(strstr(ds.items[0].msg, "unknown function 'mse_loss'"));
    diag_free(&ds);
}

static void test_check_counts_errors(void **state)
{
    (void)state;
    diag_set ds;
    int f = add(&ds, "loss f(x: f32[N]) = mean(y)\nloss g(x: f32[N]) = mean(z)\n");
    assert_int_equal(fe_check(&ds, f), 2); /* every loss is checked */
    assert_int_equal(fe_check(&ds, 99), 1); /* no such file */
    diag_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_and_describe),
        cmocka_unit_test(test_settings_bookkeeping),
        cmocka_unit_test(test_entry_selection),
        cmocka_unit_test(test_no_library),
        cmocka_unit_test(test_check_counts_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
