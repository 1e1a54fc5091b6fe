/* test_pipeline.c - pass_pipeline: the order of the passes, --print-after-all
 * tracing, verification naming the failing step, forward-only runs. */
#include "passtest.h"

static ir_graph *small_loss(pt *t)
{
    *t = pt_new();
    ir_node *p = U(t, SIGMOID, t->x);
    ir_output_add(t->g, "loss", IR_OUT_LOSS, -1, pt_sum_all(t, U(t, LOG, p)));
    return t->g;
}

static void test_trace_lists_every_pass_in_order(void **state)
{
    (void)state;
    pt t;
    strbuf trace, err;
    sb_init(&trace);
    sb_init(&err);
    pass_options o = {.backward = true, .verify = true, .trace = &trace};
    ir_graph *g = pass_pipeline(small_loss(&t), &o, &err);
    assert_non_null(g);
    const char *steps[] = {"frontend", "expand_grad", "stabilize", "simplify", "autodiff",
                           "strip_ad", "stabilize", "simplify", "log_softmax"};
    const char *p = sb_str(&trace);
    for (size_t i = 0; i < SUP_ARRAY_LEN(steps); i++) {
        char head[64];
        snprintf(head, sizeof head, "== after %s\ngraph t\n", steps[i]);
        const char *q = strstr(p, head);
        if (!q)
            fail_msg("no '%s' after position %d in the trace:\n%s", head,
                     (int)(p - sb_str(&trace)), sb_str(&trace));
        p = q + 1;
    }
    /* the frontend graph has the log of a sigmoid; after stabilize it is gone */
    const char *after_stab = strstr(sb_str(&trace), "== after stabilize");
    assert_non_null(strstr(sb_str(&trace), "= log "));
    assert_null(strstr(after_stab, "= log "));
    /* the final graph is the one printed last */
    char *final = pt_print(g);
    const char *last = strstr(sb_str(&trace), "== after log_softmax\n");
    assert_non_null(last);
    assert_string_equal(last + strlen("== after log_softmax\n"), final);
    sup_free(final);
    ir_graph_free(g);
    sb_free(&trace);
    sb_free(&err);
}

static void test_forward_only(void **state)
{
    (void)state;
    pt t;
    strbuf trace, err;
    sb_init(&trace);
    sb_init(&err);
    pass_options o = {.backward = false, .verify = true, .trace = &trace};
    ir_graph *g = pass_pipeline(small_loss(&t), &o, &err);
    assert_non_null(g);
    assert_null(strstr(sb_str(&trace), "autodiff"));
    assert_int_equal(g->noutputs, 1);
    assert_int_equal(g->ninputs, PT_NIN); /* no dloss */
    ir_graph_free(g);
    sb_free(&trace);
    sb_free(&err);
}

/* A broken graph is reported with the step after which it was found and the
 * verifier's reason. */
static void test_verify_names_the_step(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, t.x));
    ir_output_add(t.g, "grad_x", IR_OUT_GRAD, PT_X, t.w); /* wrong dims */
    strbuf err;
    sb_init(&err);
    pass_options o = {.backward = true, .verify = true};
    assert_null(pass_pipeline(t.g, &o, &err));
    assert_non_null(strstr(sb_str(&err), "invalid after frontend"));
    assert_non_null(strstr(sb_str(&err), "grad_x"));
    sb_free(&err);
}

static void test_no_loss_is_an_error(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_output_add(t.g, "acc", IR_OUT_EXTRA, -1, pt_sum_all(&t, t.x));
    strbuf err;
    sb_init(&err);
    pass_options o = {.backward = true, .verify = true};
    assert_null(pass_pipeline(t.g, &o, &err));
    assert_non_null(strstr(sb_str(&err), "no loss output"));
    sb_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_lists_every_pass_in_order),
        cmocka_unit_test(test_forward_only),
        cmocka_unit_test(test_verify_names_the_step),
        cmocka_unit_test(test_no_loss_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
