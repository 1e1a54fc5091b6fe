/* test_ir.c - the graph builder's type and dim rules, hash-consing, the text
 * form, the verifier and the reference interpreter. */
#include "testutil.h"

#include "ir/ir.h"

static src_loc L;

typedef struct fixture {
    ir_graph *g;
    int N, C;
    ir_node *x, *y, *w, *s; /* f32[N, C], i64[N], f32[C], f32 scalar */
} fixture;

static int setup(void **state)
{
    fixture *f = sup_calloc(1, sizeof *f);
    L = src_loc_none();
    f->g = ir_graph_new("t");
    f->N = ir_dim_add(f->g, "N", -1, -1, L);
    f->C = ir_dim_add(f->g, "C", -1, -1, L);
    int nc[2] = {f->N, f->C}, n[1] = {f->N}, c[1] = {f->C};
    /* ir_input_add may move g->inputs: take the node after the call. */
    int k = ir_input_add(f->g, "x", IR_IN_TENSOR, DT_F32, 2, nc, L);
    f->x = ir_input_node(f->g, k);
    k = ir_input_add(f->g, "y", IR_IN_TENSOR, DT_I64, 1, n, L);
    f->y = ir_input_node(f->g, k);
    k = ir_input_add(f->g, "w", IR_IN_TENSOR, DT_F32, 1, c, L);
    f->w = ir_input_node(f->g, k);
    k = ir_input_add(f->g, "s", IR_IN_SCALAR, DT_F32, 0, NULL, L);
    f->s = ir_input_node(f->g, k);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ir_graph_free(f->g);
    sup_free(f);
    return 0;
}

static void test_broadcast_by_name(void **state)
{
    fixture *f = *state;
    ir_graph *g = f->g;
    ir_node *m = ir_reduce(g, OP_RMAX, f->x, ir_dimbit(f->C), L);
    assert_non_null(m);
    assert_int_equal(m->dims, ir_dimbit(f->N));
    ir_node *d = ir_binary(g, OP_SUB, f->x, m, L); /* [N,C] - [N] */
    assert_int_equal(d->dims, ir_dimbit(f->N) | ir_dimbit(f->C));
    ir_node *outer = ir_binary(g, OP_ADD, f->w, ir_cast(g, DT_F32, f->y, L), L);
    assert_int_equal(outer->dims, ir_dimbit(f->N) | ir_dimbit(f->C));
}

static void test_hash_consing(void **state)
{
    fixture *f = *state;
    ir_graph *g = f->g;
    ir_node *a = ir_binary(g, OP_MUL, f->x, f->s, L);
    ir_node *b = ir_binary(g, OP_MUL, f->x, f->s, L);
    assert_ptr_equal(a, b);
    assert_ptr_equal(ir_const(g, DT_F32, 0.5, L), ir_const(g, DT_F32, 0.5, L));
    assert_ptr_not_equal(ir_const(g, DT_F32, 0.0, L), ir_const(g, DT_F32, -0.0, L));
    assert_ptr_not_equal(ir_const(g, DT_F32, 1, L), ir_const(g, DT_F64, 1, L));
}

static void test_promotion_and_type_errors(void **state)
{
    fixture *f = *state;
    ir_graph *g = f->g;
    ir_node *p = ir_binary(g, OP_ADD, f->y, f->w, L); /* i64 + f32 -> f32 */
    assert_int_equal(p->dtype, DT_F32);
    assert_int_equal(p->ops[0]->op, OP_CAST);
    ir_node *q = ir_binary(g, OP_DIV, f->y, f->y, L); /* int / int -> f32 */
    assert_int_equal(q->dtype, DT_F32);
    ir_node *cmp = ir_binary(g, OP_LT, f->x, f->s, L);
    assert_int_equal(cmp->dtype, DT_BOOL);
    assert_null(ir_binary(g, OP_ADD, cmp, f->x, L));
    assert_non_null(strstr(ir_graph_error(g), "bool"));
    assert_null(ir_unary(g, OP_NOT, f->x, L));
    assert_null(ir_reduce(g, OP_SUM, f->w, ir_dimbit(f->N), L));
    ir_node *bad = ir_gather(g, f->x, ir_dimbit(f->C), &f->x, L);
    assert_null(bad);
    assert_non_null(strstr(ir_graph_error(g), "integer"));
    /* A failed operand propagates without a new message. */
    assert_null(ir_unary(g, OP_EXP, NULL, L));
}

static void test_print_golden(void **state)
{
    fixture *f = *state;
    ir_graph *g = f->g;
    ir_node *lse = ir_reduce(g, OP_LSE, f->x, ir_dimbit(f->C), L);
    ir_node *picked = ir_gather(g, f->x, ir_dimbit(f->C), &f->y, L);
    ir_node *nll = ir_binary(g, OP_SUB, lse, picked, L);
    ir_node *loss = ir_reduce(g, OP_SUM, nll, ir_dimbit(f->N), L);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, loss);
    ir_binary(g, OP_MUL, f->x, f->x, L); /* dead: not printed */
    strbuf sb;
    sb_init(&sb);
    ir_print(g, &sb);
    assert_text_equal(sb_str(&sb), "graph t\n"
                                   "dims N, C\n"
                                   "input %0 x: f32[N, C]\n"
                                   "input %1 y: i64[N]\n"
                                   "input %2 w: f32[C]\n"
                                   "input %3 s: f32\n"
                                   "%4 = logsumexp[C] %0 : f32[N]\n"
                                   "%5 = gather[C] %0, %1 : f32[N]\n"
                                   "%6 = sub %4, %5 : f32[N]\n"
                                   "%7 = sum[N] %6 : f32\n"
                                   "output loss = %7\n");
    strbuf why;
    sb_init(&why);
    assert_true(ir_verify(g, &why));
    sb_free(&why);
    sb_free(&sb);
}

static void test_verifier_catches_bad_gradient(void **state)
{
    fixture *f = *state;
    ir_graph *g = f->g;
    ir_output_add(g, "grad_x", IR_OUT_GRAD, 0, f->w); /* wrong dims */
    strbuf why;
    sb_init(&why);
    assert_false(ir_verify(g, &why));
    assert_non_null(strstr(sb_str(&why), "grad_x"));
    sb_free(&why);
}

/* Cross-entropy by hand on a 2x3 example, through the interpreter. */
static void test_interp_values(void **state)
{
    fixture *f = *state;
    ir_graph *g = f->g;
    ir_node *lse = ir_reduce(g, OP_LSE, f->x, ir_dimbit(f->C), L);
    ir_node *picked = ir_gather(g, f->x, ir_dimbit(f->C), &f->y, L);
    ir_node *nll = ir_binary(g, OP_SUB, lse, picked, L);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, ir_reduce(g, OP_SUM, nll, ir_dimbit(f->N), L));
    ir_node *mod = ir_binary(g, OP_MOD, ir_const(g, DT_I64, -7, L), ir_const(g, DT_I64, 3, L), L);
    ir_node *fdiv = ir_binary(g, OP_FLOORDIV, ir_const(g, DT_I64, -7, L), ir_const(g, DT_I64, 2, L), L);
    ir_output_add(g, "mod", IR_OUT_EXTRA, -1, mod);
    ir_output_add(g, "fdiv", IR_OUT_EXTRA, -1, fdiv);
    ir_output_add(g, "wx", IR_OUT_EXTRA, -1, ir_binary(g, OP_MUL, f->x, f->w, L));

    double x[6] = {1, 2, 3, -1, 0, 1000}, y[2] = {2, 0}, w[3] = {1, 10, 100}, s = 0;
    const double *in[4] = {x, y, w, &s};
    int64_t sizes[2] = {2, 3};
    double *out[4];
    strbuf err;
    sb_init(&err);
    assert_true(ir_interp(g, sizes, in, out, &err));
    double want = (log(exp(1) + exp(2) + exp(3)) - 3) + (1000 + log1p(exp(-1001) + exp(-1000)) + 1);
    assert_close(out[0][0], want, 1e-15, 0);
    assert_close(out[1][0], 2, 0, 0);  /* Python: -7 % 3 == 2 */
    assert_close(out[2][0], -4, 0, 0); /* Python: -7 // 2 == -4 */
    assert_close(out[3][5], 100000, 0, 0);
    for (int i = 0; i < 4; i++)
        sup_free(out[i]);

    y[0] = 3; /* out of range */
    assert_false(ir_interp(g, sizes, in, out, &err));
    assert_non_null(strstr(sb_str(&err), "out of range"));
    assert_null(out[0]);
    sb_free(&err);
}

static void test_interp_rename_layout(void **state)
{
    fixture *f = *state;
    ir_graph *g = f->g;
    /* s[i, j] = sum_c x[i, c] * x[j, c], with i and j both over N. */
    int i = ir_dim_add(g, "i", -1, f->N, L), j = ir_dim_add(g, "j", -1, f->N, L);
    ir_node *xi = ir_rename(g, f->x, f->N, i, L), *xj = ir_rename(g, f->x, f->N, j, L);
    ir_node *sij = ir_reduce(g, OP_SUM, ir_binary(g, OP_MUL, xi, xj, L), ir_dimbit(f->C), L);
    ir_output_add(g, "s", IR_OUT_EXTRA, -1, sij);
    double x[6] = {1, 2, 3, 4, 5, 6};
    const double *in[4] = {x, NULL, NULL, NULL};
    int64_t sizes[4] = {2, 3, 0, 0};
    double *out[1];
    strbuf err;
    sb_init(&err);
    assert_true(ir_interp(g, sizes, in, out, &err));
    assert_close(out[0][0], 14, 0, 0);
    assert_close(out[0][1], 32, 0, 0);
    assert_close(out[0][2], 32, 0, 0);
    assert_close(out[0][3], 77, 0, 0);
    sup_free(out[0]);
    sb_free(&err);
}

/* Which dim an integer input indexes: bare, through the ignore_index form
 * and a clamp, and compared with an iota; not through arithmetic. */
static void test_index_dim(void **state)
{
    fixture *f = *state;
    ir_graph *g = f->g;
    int y = f->y->attr.ival;
    assert_int_equal(ir_index_dim(g, y), -1); /* not used yet */
    ir_node *shifted = ir_binary(g, OP_ADD, f->y, ir_const(g, DT_I64, 1, L), L);
    ir_gather(g, f->x, ir_dimbit(f->C), &shifted, L);
    assert_int_equal(ir_index_dim(g, y), -1); /* y + 1 is not y's positions */
    ir_node *keep = ir_binary(g, OP_NE, f->y, ir_const(g, DT_I64, -100, L), L);
    ir_node *safe = ir_where(g, keep, f->y, ir_const(g, DT_I64, 0, L), L);
    ir_node *clamped = ir_binary(g, OP_MIN, safe, ir_const(g, DT_I64, 7, L), L);
    ir_gather(g, f->w, ir_dimbit(f->C), &clamped, L);
    assert_int_equal(ir_index_dim(g, y), f->C);

    ir_graph *h = ir_graph_new("one_hot"); /* iota(C) == y */
    int n[1] = {ir_dim_add(h, "N", -1, -1, L)};
    int c = ir_dim_add(h, "C", -1, -1, L);
    int k = ir_input_add(h, "y", IR_IN_TENSOR, DT_I64, 1, n, L);
    ir_binary(h, OP_EQ, ir_iota(h, c, L), ir_input_node(h, k), L);
    assert_int_equal(ir_index_dim(h, k), c);
    ir_graph_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broadcast_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_consing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_promotion_and_type_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_print_golden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verifier_catches_bad_gradient, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interp_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interp_rename_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_dim, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
