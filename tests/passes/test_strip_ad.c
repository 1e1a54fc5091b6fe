/* test_strip_ad.c - the operators only differentiation sees (detach,
 * found_inf) and the last pass (log_softmax as PyTorch computes it):
 *   - detach(x) has x's value and no gradient, and is gone from the final
 *     graph;
 *   - found_inf() is whether a gradient output holds an inf or a NaN (tested
 *     at finite, inf and NaN gradients), false in a forward pipeline, and
 *     cannot feed the loss; pass_options.found_inf adds it as an output;
 *   - x - logsumexp(x) becomes (x - max) - log(sum(exp(x - max))) after
 *     autodiff, with the same values. */
#include "passtest.h"

static const int64_t SIZES[IR_MAX_DIMS] = {2, 3};

static bool has_op(const ir_graph *g, ir_op op)
{
    for (uint32_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == op)
            return true;
    return false;
}

/* loss = sum(detach(x) * x): d/dx = detach(x) = x, not 2x. */
static void test_detach(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *d = U(&t, DETACH, t.x);
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, B(&t, MUL, d, t.x)));
    ir_graph *g = pt_pipeline(t.g, true, BIT(PT_X));
    assert_false(has_op(g, OP_DETACH));
    double x[6] = {1, -2, 3, 0.5, 4, -1}, one = 1, *out[8];
    const double *in[8] = {x, NULL, NULL, NULL, NULL, &one};
    pt_interp(g, SIZES, in, out);
    int gx = ir_output_find(g, "grad_x");
    for (int i = 0; i < 6; i++)
        assert_close(out[gx][i], x[i], 0, 0);
    assert_close(out[ir_output_find(g, "loss")][0], 1 + 4 + 9 + 0.25 + 16 + 1, 1e-15, 0);
    pt_free_outputs(g, out);
    ir_graph_free(g);
}

/* loss = sum(x * v) + s * s: grad_x = v (inf or NaN where v is), grad_s = 2s. */
static ir_graph *overflow_graph(bool backward, bool option)
{
    pt t = pt_new();
    ir_node *l = B(&t, ADD, pt_sum_all(&t, B(&t, MUL, t.x, t.v)), B(&t, MUL, t.s, t.s));
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, l);
    if (!option) {
        ir_node *fi = ir_make(t.g, OP_FOUND_INF, DT_BOOL, NULL, 0, NULL, PT_L);
        ir_output_add(t.g, "overflow", IR_OUT_EXTRA, -1, fi);
    }
    strbuf err;
    sb_init(&err);
    pass_options o = {.backward = backward, .wrt = BIT(PT_X) | BIT(PT_S), .verify = true,
                      .found_inf = option};
    ir_graph *g = pass_pipeline(t.g, &o, &err);
    if (!g)
        fail_msg("pipeline: %s", sb_str(&err));
    sb_free(&err);
    return g;
}

static double run_found_inf(const ir_graph *g, const char *name, double v0, double s)
{
    double x[6] = {1, 2, 3, 4, 5, 6}, v[2] = {v0, 1}, one = 1, *out[8];
    const double *in[8] = {x, NULL, v, &s, NULL, &one};
    pt_interp(g, SIZES, in, out);
    double r = out[ir_output_find(g, name)][0];
    pt_free_outputs(g, out);
    return r;
}

static void test_found_inf(void **state)
{
    (void)state;
    ir_graph *g = overflow_graph(true, false);
    assert_false(has_op(g, OP_FOUND_INF));
    assert_true(run_found_inf(g, "overflow", 2, 3) == 0);
    assert_true(run_found_inf(g, "overflow", INFINITY, 3) == 1);
    assert_true(run_found_inf(g, "overflow", -INFINITY, 3) == 1);
    assert_true(run_found_inf(g, "overflow", NAN, 3) == 1);
    assert_true(run_found_inf(g, "overflow", 2, 1e308) == 1); /* 2s overflows */
    ir_graph_free(g);
    g = overflow_graph(false, false); /* forward: no gradient, none overflowed */
    assert_true(run_found_inf(g, "overflow", INFINITY, 3) == 0);
    ir_graph_free(g);
}

static void test_found_inf_option(void **state)
{
    (void)state;
    ir_graph *g = overflow_graph(true, true);
    assert_int_equal(g->outputs[ir_output_find(g, "found_inf")].kind, IR_OUT_EXTRA);
    assert_true(run_found_inf(g, "found_inf", 2, 3) == 0);
    assert_true(run_found_inf(g, "found_inf", NAN, 3) == 1);
    ir_graph_free(g);
}

static void test_found_inf_not_in_the_loss(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *fi = ir_make(t.g, OP_FOUND_INF, DT_BOOL, NULL, 0, NULL, PT_L);
    ir_node *l = W(&t, fi, K(&t, 0), pt_sum_all(&t, t.x));
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, l);
    strbuf err;
    sb_init(&err);
    pass_options o = {.backward = true, .verify = true};
    assert_null(pass_pipeline(t.g, &o, &err));
    assert_non_null(strstr(sb_str(&err), "found_inf() can only be used in an `out`"));
    sb_free(&err);
}

/* mean over rows of log_softmax(x)[y]: no x - lse(x) is left, the values
 * and gradients are those of the unrewritten graph. */
static void test_log_softmax(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *lsm = B(&t, SUB, t.x, R(&t, LSE, t.x, BIT(t.C)));
    ir_node *picked = ir_gather(t.g, lsm, BIT(t.C), &t.y, PT_L);
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, picked));
    ir_graph *g = pt_pipeline(ir_rebuild(t.g, NULL, NULL), true, BIT(PT_X));
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const ir_node *n = g->nodes[i];
        assert_false(n->op == OP_SUB && n->ops[1]->op == OP_LSE && n->ops[1]->ops[0] == n->ops[0]);
    }
    double x[6] = {1e4, -3, 2, 0.5, 0.5, 0.5}, y[2] = {0, 2}, one = 1, *out[8];
    const double *in[8] = {x, NULL, NULL, NULL, y, &one};
    pt_interp(g, SIZES, in, out);
    /* row 0: log_softmax = (x - 1e4) - log(1 + ...) ; row 1: -log 3 */
    double lse0 = 1e4 + log1p(exp(-3 - 1e4) + exp(2 - 1e4));
    assert_close(out[ir_output_find(g, "loss")][0], (1e4 - lse0) - log(3.0), 1e-15, 1e-15);
    int gx = ir_output_find(g, "grad_x");
    assert_close(out[gx][4], -1.0 / 3, 1e-15, 0); /* one-hot(y) - softmax */
    assert_close(out[gx][3], -1.0 / 3, 1e-15, 0);
    assert_close(out[gx][5], 1 - 1.0 / 3, 1e-15, 0);
    pt_free_outputs(g, out);
    ir_graph_free(g);
    ir_graph_free(t.g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_found_inf),
        cmocka_unit_test(test_found_inf_option),
        cmocka_unit_test(test_found_inf_not_in_the_loss),
        cmocka_unit_test(test_log_softmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
