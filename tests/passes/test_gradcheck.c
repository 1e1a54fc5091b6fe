/* test_gradcheck.c - the gradient checker itself: it passes right gradients,
 * catches wrong ones (it can fail), names the input and element, honours
 * wrt, given data and dim sizes, and draws integer labels inside the dim
 * they index. (test_autodiff runs it over every operator.)
 */
#include "passtest.h"

/* loss = sum(exp(x) * w), and a hand-made gradient graph for it whose
 * grad_x is exp(x) * w * factor. */
static ir_graph *loss_graph(pt *t)
{
    *t = pt_new();
    ir_output_add(t->g, "loss", IR_OUT_LOSS, -1, pt_sum_all(t, B(t, MUL, U(t, EXP, t->x), t->w)));
    return t->g;
}

static ir_graph *hand_backward(const ir_graph *g, double factor)
{
    ir_graph *b = ir_rebuild(g, NULL, NULL);
    ir_node *x = ir_input_node(b, PT_X), *w = ir_input_node(b, PT_W);
    int k = ir_input_add(b, "dloss", IR_IN_DLOSS, DT_F32, 0, NULL, PT_L);
    ir_node *dl = ir_input_node(b, k);
    ir_node *e = ir_unary(b, OP_EXP, x, PT_L);
    ir_node *gx = ir_binary(b, OP_MUL, ir_binary(b, OP_MUL, e, w, PT_L), dl, PT_L);
    gx = ir_binary(b, OP_MUL, gx, ir_const(b, DT_F32, factor, PT_L), PT_L);
    ir_output_add(b, "grad_x", IR_OUT_GRAD, PT_X, gx);
    return b;
}

static void test_catches_a_wrong_gradient(void **state)
{
    (void)state;
    pt t;
    ir_graph *g = loss_graph(&t);
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    o.wrt = 1u << PT_X;
    ad_gradcheck_report r;
    strbuf err, out;
    sb_init(&err);
    sb_init(&out);

    ir_graph *right = hand_backward(g, 1);
    o.backward = right;
    assert_true(ad_gradcheck(g, &o, &r, &err));
    assert_true(r.pass);
    assert_true(r.inputs[PT_X].checked);
    assert_false(r.inputs[PT_W].checked);
    assert_true(r.inputs[PT_X].max_abs < 1e-8);
    ad_gradcheck_report_free(&r);

    /* 1% off: above rtol = 1e-3 */
    ir_graph *wrong = hand_backward(g, 1.01);
    o.backward = wrong;
    assert_true(ad_gradcheck(g, &o, &r, &err));
    assert_false(r.pass);
    assert_false(r.inputs[PT_X].pass);
    /* the finite difference itself is good to about 1e-9 relative */
    assert_close(r.inputs[PT_X].max_rel, 0.01 / 1.01, 1e-5, 0);
    assert_close(r.inputs[PT_X].analytic, 1.01 * r.inputs[PT_X].numeric, 1e-7, 0);
    ad_gradcheck_format(g, &o, &r, &out);
    assert_non_null(strstr(sb_str(&out), "  x            f32[N, C]  max abs "));
    assert_non_null(strstr(sb_str(&out), "FAIL (element "));
    assert_non_null(strstr(sb_str(&out), "gradcheck: FAIL (atol 1e-05, rtol 0.001, eps 1e-06)\n"));
    ad_gradcheck_report_free(&r);

    /* 1e-4 off passes under the default rtol 1e-3, fails under 1e-5 */
    ir_graph *close = hand_backward(g, 1.0001);
    o.backward = close;
    assert_true(ad_gradcheck(g, &o, &r, &err));
    assert_true(r.pass);
    ad_gradcheck_report_free(&r);
    o.rtol = 1e-5;
    assert_true(ad_gradcheck(g, &o, &r, &err));
    assert_false(r.pass);
    ad_gradcheck_report_free(&r);

    ir_graph_free(right);
    ir_graph_free(wrong);
    ir_graph_free(close);
    ir_graph_free(g);
    sb_free(&err);
    sb_free(&out);
}

static void test_report_of_a_compiled_gradient(void **state)
{
    (void)state;
    pt t;
    ir_graph *g = loss_graph(&t);
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    ad_gradcheck_report r;
    strbuf err, out;
    sb_init(&err);
    sb_init(&out);
    assert_true(ad_gradcheck(g, &o, &r, &err));
    assert_true(r.pass);
    ad_gradcheck_format(g, &o, &r, &out);
    const char *s = sb_str(&out);
    assert_non_null(strstr(s, "  y            i64[N]  not differentiated\n"));
    assert_non_null(strstr(s, "  s            f32  max abs 0.00e+00"));
    assert_non_null(strstr(s, "gradcheck: pass"));
    /* 5 inputs: x, w, v, s checked (float), y not */
    assert_int_equal(r.ninputs, PT_NIN);
    assert_true(r.inputs[PT_S].checked && !r.inputs[PT_Y].checked);
    assert_int_equal(r.inputs[PT_X].count, 3 * 4); /* default sizes N = 3, C = 4 */
    ad_gradcheck_report_free(&r);
    sb_free(&err);
    sb_free(&out);
    ir_graph_free(g);
}

/* Integer labels are drawn inside the dim they index: with C = 2 and 60
 * labels, anything but [0, 2) would make the gather fail. */
static void test_labels_in_range(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *picked = ir_gather(t.g, t.x, BIT(t.C), &t.y, PT_L);
    ir_node *w = ir_gather(t.g, t.w, BIT(t.C), &t.y, PT_L);
    ir_node *nll = B(&t, MUL, w, B(&t, SUB, R(&t, LSE, t.x, BIT(t.C)), picked));
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, nll));
    int64_t sizes[2] = {60, 2};
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    o.dim_sizes = sizes;
    ad_gradcheck_report r;
    strbuf err;
    sb_init(&err);
    if (!ad_gradcheck(t.g, &o, &r, &err))
        fail_msg("%s", sb_str(&err));
    assert_true(r.pass);
    assert_int_equal(r.inputs[PT_X].count, 120);
    ad_gradcheck_report_free(&r);
    sb_free(&err);
    ir_graph_free(t.g);
}

/* Given data is used as it is; a failing interpreter run is an error. */
static void test_given_data(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *picked = ir_gather(t.g, t.x, BIT(t.C), &t.y, PT_L);
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, B(&t, MUL, picked, picked)));
    double x[6] = {1, 2, 3, 4, 5, 6}, y[2] = {2, 7}; /* 7 is out of range */
    const double *data[PT_NIN] = {x, NULL, NULL, NULL, y};
    int64_t sizes[2] = {2, 3};
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    o.data = data;
    o.dim_sizes = sizes;
    o.wrt = 1u << PT_X;
    ad_gradcheck_report r;
    strbuf err;
    sb_init(&err);
    assert_false(ad_gradcheck(t.g, &o, &r, &err));
    assert_non_null(strstr(sb_str(&err), "out of range"));
    assert_false(r.pass);
    ad_gradcheck_report_free(&r);
    y[1] = 0;
    sb_clear(&err);
    assert_true(ad_gradcheck(t.g, &o, &r, &err));
    assert_true(r.pass);
    assert_close(r.loss, 3 * 3 + 4 * 4, 1e-15, 0);
    ad_gradcheck_report_free(&r);
    sb_free(&err);
    ir_graph_free(t.g);
}

static void test_integer_wrt_refused(void **state)
{
    (void)state;
    pt t;
    ir_graph *g = loss_graph(&t);
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    o.wrt = 1u << PT_Y;
    ad_gradcheck_report r;
    strbuf err;
    sb_init(&err);
    assert_false(ad_gradcheck(g, &o, &r, &err));
    assert_non_null(strstr(sb_str(&err), "cannot differentiate with respect to 'y'"));
    ad_gradcheck_report_free(&r);
    sb_free(&err);
    ir_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catches_a_wrong_gradient),
        cmocka_unit_test(test_report_of_a_compiled_gradient),
        cmocka_unit_test(test_labels_in_range),
        cmocka_unit_test(test_given_data),
        cmocka_unit_test(test_integer_wrt_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
