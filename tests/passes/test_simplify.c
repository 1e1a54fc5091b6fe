/* test_simplify.c - golden IR for pass_simplify: constant folding, each
 * algebraic identity, the identities deliberately not applied (IEEE), CSE
 * and DCE. Each case builds a graph on the fixture of passtest.h (inputs %0 x:
 * f32[N, C], %1 w: f32[C], %2 v: f32[N], %3 s: f32, %4 y: i64[N]), runs the
 * pass, and compares the printed nodes and outputs (the frame is the same
 * every time and left out). The result must also verify.
 */
#include "passtest.h"

#include <stdlib.h>

/* The text of g after `pass`, without the header lines. */
static char *body_after(ir_graph *(*pass)(const ir_graph *), const ir_graph *g)
{
    ir_graph *r = pass(g);
    strbuf why;
    sb_init(&why);
    if (!ir_verify(r, &why))
        fail_msg("the result does not verify: %s", sb_str(&why));
    sb_free(&why);
    char *text = pt_print(r);
    ir_graph_free(r);
    char *p = text;
    while (!strncmp(p, "graph ", 6) || !strncmp(p, "dims ", 5) || !strncmp(p, "input ", 6))
        p = strchr(p, '\n') + 1;
    char *body = sup_strdup(p);
    sup_free(text);
    return body;
}

/* Output e as "loss" (or an extra output when e is not a float) and compare. */
static void golden(pt *t, ir_node *e, const char *want)
{
    assert_non_null(e);
    ir_output_add(t->g, "r", IR_OUT_EXTRA, -1, e);
    char *got = body_after(pass_simplify, t->g);
    assert_text_equal(got, want);
    sup_free(got);
    ir_graph_free(t->g);
}

/* ---- constant folding ------------------------------------------------------------ */

static void test_fold(void **state)
{
    (void)state;
    pt t = pt_new();
    golden(&t, B(&t, MUL, B(&t, ADD, K(&t, 2), K(&t, 3)), t.x),
           "%5 = const 5 : f32\n"
           "%6 = mul %0, %5 : f32[N, C]\n"
           "output r = %6\n");
    /* integer // and % fold with Python's semantics, as the interpreter has them */
    t = pt_new();
    ir_node *m7 = ir_const(t.g, DT_I64, -7, PT_L);
    ir_node *q = B(&t, FLOORDIV, m7, ir_const(t.g, DT_I64, 2, PT_L));
    ir_node *r = B(&t, MOD, m7, ir_const(t.g, DT_I64, 3, PT_L));
    golden(&t, B(&t, ADD, B(&t, MUL, q, ir_const(t.g, DT_I64, 10, PT_L)), r),
           "%5 = const -38 : i64\n"
           "output r = %5\n");
    /* casts and comparisons of constants; where on a constant condition */
    t = pt_new();
    ir_node *c = B(&t, LT, ir_cast(t.g, DT_F32, ir_const(t.g, DT_I64, 3, PT_L), PT_L), K(&t, 2.5));
    golden(&t, W(&t, c, t.x, U(&t, EXP, t.x)),
           "%5 = exp %0 : f32[N, C]\n"
           "output r = %5\n");
    /* exp(0) = 1, and x * 1 -> x; log(0) folds to -inf, honestly */
    t = pt_new();
    golden(&t, B(&t, ADD, B(&t, MUL, t.x, U(&t, EXP, K(&t, 0))), U(&t, LOG, K(&t, 0))),
           "%5 = const -inf : f32\n"
           "%6 = add %0, %5 : f32[N, C]\n"
           "output r = %6\n");
}

/* ---- identities ---------------------------------------------------------------------- */

static void test_neutral_elements(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *e = B(&t, ADD, t.x, K(&t, 0));
    e = B(&t, SUB, e, K(&t, 0));
    e = B(&t, MUL, K(&t, 1), e);
    e = B(&t, DIV, e, K(&t, 1));
    e = U(&t, NEG, U(&t, NEG, e));
    golden(&t, e, "output r = %0\n");
}

static void test_negations(void **state)
{
    (void)state;
    pt t = pt_new();
    /* 0 - x -> -x; x * -1 -> -x; a + (-b) -> a - b; a - (-b) -> a + b */
    golden(&t, B(&t, SUB, K(&t, 0), t.x),
           "%5 = neg %0 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new();
    golden(&t, B(&t, MUL, t.x, K(&t, -1)),
           "%5 = neg %0 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new();
    golden(&t, B(&t, ADD, t.x, U(&t, NEG, t.w)),
           "%5 = sub %0, %1 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new();
    golden(&t, B(&t, ADD, U(&t, NEG, t.w), t.x),
           "%5 = sub %0, %1 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new();
    golden(&t, B(&t, SUB, t.x, U(&t, NEG, t.w)),
           "%5 = add %0, %1 : f32[N, C]\n"
           "output r = %5\n");
    /* negation commutes with * and /: pairs cancel, a single one moves out */
    t = pt_new();
    golden(&t, B(&t, MUL, U(&t, NEG, t.x), U(&t, NEG, t.w)),
           "%5 = mul %0, %1 : f32[N, C]\n"
           "output r = %5\n");
    t = pt_new();
    golden(&t, B(&t, DIV, U(&t, NEG, t.x), t.w),
           "%5 = div %0, %1 : f32[N, C]\n"
           "%6 = neg %5 : f32[N, C]\n"
           "output r = %6\n");
    /* abs(-x) -> abs(x), abs(abs(x)) -> abs(x), relu(relu(x)) -> relu(x) */
    t = pt_new();
    ir_node *aa = U(&t, ABS, U(&t, ABS, U(&t, NEG, t.x)));
    golden(&t, B(&t, ADD, aa, U(&t, RELU, U(&t, RELU, t.x))),
           "%5 = abs %0 : f32[N, C]\n"
           "%6 = relu %0 : f32[N, C]\n"
           "%7 = add %5, %6 : f32[N, C]\n"
           "output r = %7\n");
}

static void test_where(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *c = B(&t, GT, t.x, t.w);
    golden(&t, W(&t, c, t.v, t.v), "%5 = expand[C] %2 : f32[N, C]\noutput r = %5\n");
    t = pt_new();
    c = B(&t, GT, t.x, t.w);
    golden(&t, W(&t, U(&t, NOT, c), t.x, K(&t, 0)),
           "%5 = gt %0, %1 : bool[N, C]\n"
           "%6 = const 0 : f32\n"
           "%7 = where %5, %6, %0 : f32[N, C]\n"
           "output r = %7\n");
    /* an inner where on the same condition is decided already */
    t = pt_new();
    c = B(&t, GT, t.x, t.w);
    golden(&t, W(&t, c, W(&t, c, t.x, t.w), W(&t, c, t.v, U(&t, EXP, t.x))),
           "%5 = gt %0, %1 : bool[N, C]\n"
           "%6 = exp %0 : f32[N, C]\n"
           "%7 = where %5, %0, %6 : f32[N, C]\n"
           "output r = %7\n");
}

static void test_sum_of_expand(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *e = ir_expand(t.g, t.w, BIT(t.N) | BIT(t.C), PT_L);
    golden(&t, R(&t, SUM, e, BIT(t.N)),
           "%5 = dimsize N : i64\n"
           "%6 = cast %5 : f32\n"
           "%7 = mul %1, %6 : f32[C]\n"
           "output r = %7\n");
    /* partly over the broadcast dims: sum what is real, multiply the rest */
    t = pt_new();
    e = ir_expand(t.g, t.w, BIT(t.N) | BIT(t.C), PT_L);
    golden(&t, R(&t, SUM, e, BIT(t.N) | BIT(t.C)),
           "%5 = sum[C] %1 : f32\n"
           "%6 = dimsize N : i64\n"
           "%7 = cast %6 : f32\n"
           "%8 = mul %5, %7 : f32\n"
           "output r = %8\n");
    /* a fixed size folds: sum over K = 4 of a broadcast scalar is 4 * s */
    t = pt_new();
    int k = ir_dim_add(t.g, "K", 4, -1, PT_L);
    golden(&t, R(&t, SUM, ir_expand(t.g, t.s, BIT(k), PT_L), BIT(k)),
           "%5 = const 4 : f32\n"
           "%6 = mul %3, %5 : f32\n"
           "output r = %6\n");
    /* sum(-x) -> -sum(x) */
    t = pt_new();
    golden(&t, R(&t, SUM, U(&t, NEG, t.x), BIT(t.C)),
           "%5 = sum[C] %0 : f32[N]\n"
           "%6 = neg %5 : f32[N]\n"
           "output r = %6\n");
}

static void test_casts(void **state)
{
    (void)state;
    pt t = pt_new();
    /* f32 -> f64 -> f32 loses nothing */
    golden(&t, ir_cast(t.g, DT_F32, ir_cast(t.g, DT_F64, t.x, PT_L), PT_L), "output r = %0\n");
    /* i64 -> f32 rounds above 2^24: the outer cast must see the rounded value */
    t = pt_new();
    golden(&t, ir_cast(t.g, DT_F64, ir_cast(t.g, DT_F32, t.y, PT_L), PT_L),
           "%5 = cast %4 : f32[N]\n"
           "%6 = cast %5 : f64[N]\n"
           "output r = %6\n");
    /* i64 -> f64 -> i32 is i64 -> i32 only if f64 held every i64: it does not */
    t = pt_new();
    golden(&t, ir_cast(t.g, DT_I32, ir_cast(t.g, DT_F64, t.y, PT_L), PT_L),
           "%5 = cast %4 : f64[N]\n"
           "%6 = cast %5 : i32[N]\n"
           "output r = %6\n");
    /* bool -> i32 -> f32 is bool -> f32 */
    t = pt_new();
    ir_node *b = B(&t, GT, t.x, K(&t, 0));
    golden(&t, ir_cast(t.g, DT_F32, ir_cast(t.g, DT_I32, b, PT_L), PT_L),
           "%5 = const 0 : f32\n"
           "%6 = gt %0, %5 : bool[N, C]\n"
           "%7 = cast %6 : f32[N, C]\n"
           "output r = %7\n");
}

static void test_pow(void **state)
{
    (void)state;
    pt t = pt_new();
    golden(&t, B(&t, POW, t.x, K(&t, 2)), "%5 = mul %0, %0 : f32[N, C]\noutput r = %5\n");
    t = pt_new();
    golden(&t, B(&t, POW, t.x, K(&t, 1)), "output r = %0\n");
    t = pt_new();
    golden(&t, B(&t, POW, t.x, K(&t, 0.5)), "%5 = sqrt %0 : f32[N, C]\noutput r = %5\n");
    t = pt_new();
    golden(&t, B(&t, POW, t.x, K(&t, 0)),
           "%5 = const 1 : f32\n"
           "%6 = expand[N, C] %5 : f32[N, C]\n"
           "output r = %6\n");
    t = pt_new();
    golden(&t, B(&t, POW, t.x, K(&t, -1)),
           "%5 = const 1 : f32\n"
           "%6 = div %5, %0 : f32[N, C]\n"
           "output r = %6\n");
    t = pt_new(); /* other exponents stay */
    golden(&t, B(&t, POW, t.x, K(&t, 3)),
           "%5 = const 3 : f32\n"
           "%6 = pow %0, %5 : f32[N, C]\n"
           "output r = %6\n");
}

static void test_division_by_power_of_two(void **state)
{
    (void)state;
    pt t = pt_new();
    golden(&t, B(&t, DIV, t.x, K(&t, 4)),
           "%5 = const 0.25 : f32\n"
           "%6 = mul %0, %5 : f32[N, C]\n"
           "output r = %6\n");
    t = pt_new(); /* 1/3 is not exact: the division stays */
    golden(&t, B(&t, DIV, t.x, K(&t, 3)),
           "%5 = const 3 : f32\n"
           "%6 = div %0, %5 : f32[N, C]\n"
           "output r = %6\n");
    t = pt_new(); /* 2^-130 is subnormal in f32 and its reciprocal overflows */
    golden(&t, B(&t, DIV, t.x, K(&t, 0x1p-130)),
           "%5 = const 7.346839692639297e-40 : f32\n"
           "%6 = div %0, %5 : f32[N, C]\n"
           "output r = %6\n");
}

static void test_log_exp(void **state)
{
    (void)state;
    pt t = pt_new();
    golden(&t, U(&t, LOG, U(&t, EXP, t.x)), "output r = %0\n");
}

/* Identities that fail for inf, NaN or negative inputs are left alone. */
static void test_ieee_honest(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *e = B(&t, MUL, t.x, K(&t, 0));
    e = B(&t, ADD, e, B(&t, SUB, t.x, t.x));
    e = B(&t, ADD, e, B(&t, DIV, t.x, t.x));
    e = B(&t, ADD, e, U(&t, EXP, U(&t, LOG, t.x)));
    golden(&t, e,
           "%5 = const 0 : f32\n"
           "%6 = mul %0, %5 : f32[N, C]\n"
           "%7 = sub %0, %0 : f32[N, C]\n"
           "%8 = add %6, %7 : f32[N, C]\n"
           "%9 = div %0, %0 : f32[N, C]\n"
           "%10 = add %8, %9 : f32[N, C]\n"
           "%11 = log %0 : f32[N, C]\n"
           "%12 = exp %11 : f32[N, C]\n"
           "%13 = add %10, %12 : f32[N, C]\n"
           "output r = %13\n");
    /* !(a < b) is not a >= b (NaN), and x == x is not true on floats */
    t = pt_new();
    ir_node *nlt = U(&t, NOT, B(&t, LT, t.x, t.w));
    ir_node *c = B(&t, AND, nlt, B(&t, EQ, t.x, t.x));
    golden(&t, c,
           "%5 = lt %0, %1 : bool[N, C]\n"
           "%6 = not %5 : bool[N, C]\n"
           "%7 = eq %0, %0 : bool[N, C]\n"
           "%8 = and %6, %7 : bool[N, C]\n"
           "output r = %8\n");
    /* ... but on integers it is */
    t = pt_new();
    golden(&t, B(&t, AND, B(&t, EQ, t.y, t.y), B(&t, LE, t.y, t.y)),
           "%5 = const true : bool\n"
           "%6 = expand[N] %5 : bool[N]\n"
           "output r = %6\n");
}

/* Broadcasts move outward: the exp runs on [N], not on [N, C]. */
static void test_expand_hoisting(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *e = ir_expand(t.g, t.v, BIT(t.N) | BIT(t.C), PT_L);
    golden(&t, B(&t, MUL, U(&t, EXP, e), t.s),
           "%5 = exp %2 : f32[N]\n"
           "%6 = mul %3, %5 : f32[N]\n" /* operands in id order */
           "%7 = expand[C] %6 : f32[N, C]\n"
           "output r = %7\n");
    t = pt_new(); /* expand of expand, rename of a broadcast dim */
    int i = ir_dim_add(t.g, "i", -1, t.N, PT_L);
    ir_node *ee = ir_expand(t.g, ir_expand(t.g, t.s, BIT(t.C), PT_L), BIT(t.C) | BIT(t.N), PT_L);
    golden(&t, ir_rename(t.g, ee, t.N, i, PT_L),
           "%5 = expand[C, i] %3 : f32[C, i]\n"
           "output r = %5\n");
}

/* CSE is hash-consing, once operands are in one order; DCE is the rebuild. */
static void test_cse_dce(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *a = B(&t, MUL, t.x, t.w), *b = B(&t, MUL, t.w, t.x);
    assert_ptr_not_equal(a, b);
    U(&t, EXP, t.v); /* dead */
    ir_output_add(t.g, "r", IR_OUT_EXTRA, -1, B(&t, SUB, a, b));
    ir_graph *r = pass_simplify(t.g);
    char *got = pt_print(r);
    assert_non_null(strstr(got, "%5 = mul %0, %1 : f32[N, C]\n"
                                "%6 = sub %5, %5 : f32[N, C]\n"));
    /* every node of the result is live: the rebuild dropped the dead exp */
    bool *live = sup_malloc(r->nnodes + 1);
    ir_mark_live(r, live);
    for (uint32_t id = 0; id < r->nnodes; id++)
        assert_true(live[id]);
    sup_free(live);
    sup_free(got);
    ir_graph_free(r);
    ir_graph_free(t.g);
}

/* Simplified gradients: mean squared error's backward after the pipeline. */
static void test_mse_gradient_golden(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *d = B(&t, SUB, t.x, t.v);
    ir_node *sq = pt_sum_all(&t, B(&t, MUL, d, d));
    ir_node *nn = ir_dimsize(t.g, t.N, PT_L), *nc = ir_dimsize(t.g, t.C, PT_L);
    ir_node *n = ir_cast(t.g, DT_F32, B(&t, MUL, nn, nc), PT_L);
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, B(&t, DIV, sq, n));
    ir_graph *g = pt_pipeline(t.g, true, 1u << PT_X);
    char *got = pt_print(g);
    assert_text_equal(got, "graph t\n"
                           "dims N, C\n"
                           "input %0 x: f32[N, C]\n"
                           "input %1 w: f32[C]\n"
                           "input %2 v: f32[N]\n"
                           "input %3 s: f32\n"
                           "input %4 y: i64[N]\n"
                           "input %5 dloss: f32 (upstream gradient)\n"
                           "%6 = sub %0, %2 : f32[N, C]\n"
                           "%7 = mul %6, %6 : f32[N, C]\n"
                           "%8 = sum[N, C] %7 : f32\n"
                           "%9 = dimsize N : i64\n"
                           "%10 = dimsize C : i64\n"
                           "%11 = mul %9, %10 : i64\n"
                           "%12 = cast %11 : f32\n"
                           "%13 = div %8, %12 : f32\n"
                           "%14 = div %5, %12 : f32\n"
                           "%15 = mul %6, %14 : f32[N, C]\n"
                           "%16 = add %15, %15 : f32[N, C]\n"
                           "output loss = %13\n"
                           "output grad_x = %16\n");
    sup_free(got);
    ir_graph_free(g);
}

/* Cross-entropy's backward (mean over N, integer labels): the gradient of
 * the logits is one dense scatter plus the softmax; the logsumexp's adjoint
 * (a sum over C of that scatter) is the upstream value itself, because the
 * gather validates its labels, so no reduction appears in grad_x. */
static void test_cross_entropy_gradient_golden(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *lse = R(&t, LSE, t.x, BIT(t.C));
    ir_node *nll = B(&t, SUB, lse, ir_gather(t.g, t.x, BIT(t.C), &t.y, PT_L));
    ir_node *sum = R(&t, SUM, nll, BIT(t.N));
    ir_node *n = ir_cast(t.g, DT_F32, ir_dimsize(t.g, t.N, PT_L), PT_L);
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, B(&t, DIV, sum, n));
    ir_graph *g = pt_pipeline(t.g, true, 1u << PT_X);
    char *got = pt_print(g);
    const char *body = strstr(got, "%6 = ");
    assert_non_null(body);
    assert_text_equal(body, "%6 = logsumexp[C] %0 : f32[N]\n"
                            "%7 = gather[C] %0, %4 : f32[N]\n"
                            "%8 = sub %6, %7 : f32[N]\n"
                            "%9 = sum[N] %8 : f32\n"
                            "%10 = dimsize N : i64\n"
                            "%11 = cast %10 : f32\n"
                            "%12 = div %9, %11 : f32\n"
                            "%13 = div %5, %11 : f32\n"
                            "%14 = neg %13 : f32\n"
                            "%15 = iota C : i64[C]\n"
                            "%16 = eq %4, %15 : bool[N, C]\n"
                            "%17 = const 0 : f32\n"
                            "%18 = where %16, %14, %17 : f32[N, C]\n"
                            /* softmax as exp((x - max) - log(sum(exp(x - max)))):
                             * pass_log_softmax, exact at the max */
                            "%19 = amax[C] %0 : f32[N]\n"
                            "%20 = sub %0, %19 : f32[N, C]\n"
                            "%21 = exp %20 : f32[N, C]\n"
                            "%22 = sum[C] %21 : f32[N]\n"
                            "%23 = log %22 : f32[N]\n"
                            "%24 = sub %20, %23 : f32[N, C]\n"
                            "%25 = exp %24 : f32[N, C]\n"
                            "%26 = mul %13, %25 : f32[N, C]\n"
                            "%27 = add %18, %26 : f32[N, C]\n"
                            "output loss = %12\n"
                            "output grad_x = %27\n");
    sup_free(got);
    ir_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_neutral_elements),
        cmocka_unit_test(test_negations),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_sum_of_expand),
        cmocka_unit_test(test_casts),
        cmocka_unit_test(test_pow),
        cmocka_unit_test(test_division_by_power_of_two),
        cmocka_unit_test(test_log_exp),
        cmocka_unit_test(test_ieee_honest),
        cmocka_unit_test(test_expand_hoisting),
        cmocka_unit_test(test_cse_dce),
        cmocka_unit_test(test_mse_gradient_golden),
        cmocka_unit_test(test_cross_entropy_gradient_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
