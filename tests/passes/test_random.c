/* test_random.c - property tests on random graphs: stabilize and simplify keep
 * the value of every graph (interpreter, before vs after), and its gradient
 * passes the checker (first order; second order on a smaller sample).
 *
 * Graphs are built from the fixture's inputs by a seeded random choice among
 * operators, each kept inside its domain (log of |a| + 0.5, ...), with the
 * constants that trigger identities (0, 1, -1, 2, 0.5, 4) and the patterns
 * that trigger stabilization (log of sigmoid, of 1 - sigmoid, of a softmax).
 *
 * Tolerances: values agree to 1e-9 relative or 1e-12 absolute: the rewrites
 * change rounding (log(softmax) summed back is exactly 0 naively, -2e-16
 * stabilized) and the naive forms lose digits to cancellation, but nothing
 * near these bounds; gradients as in test_autodiff (atol 1e-6, rtol 1e-5).
 */
#include "passtest.h"

#include <stdlib.h>

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int pick(rng *r, int n) { return (int)(next(r) % (uint64_t)n); }

#define POOL 32

typedef struct builder {
    pt t;
    rng r;
    ir_node *pool[POOL];
    int n;
} builder;

static ir_node *any(builder *b) { return b->pool[pick(&b->r, b->n)]; }

/* a value of dims [N, C] (broadcast if needed) */
static ir_node *full(builder *b, ir_node *a)
{
    return ir_expand(b->t.g, a, BIT(b->t.N) | BIT(b->t.C), PT_L);
}

static ir_node *konst(builder *b)
{
    static const double k[] = {0, 1, -1, 2, 0.5, 4, 3};
    return K(&b->t, k[pick(&b->r, (int)SUP_ARRAY_LEN(k))]);
}

static ir_node *positive(builder *b, ir_node *a, double off)
{
    return B(&b->t, ADD, U(&b->t, ABS, a), K(&b->t, off));
}

/* One new node from the pool. */
static ir_node *grow(builder *b)
{
    pt *t = &b->t;
    ir_node *a = any(b), *c = any(b);
    switch (pick(&b->r, 30)) {
    case 0: return U(t, NEG, a);
    case 1: return U(t, ABS, a);
    case 2: return U(t, RELU, a);
    case 3: return U(t, EXP, U(t, TANH, a));
    case 4: return U(t, LOG, positive(b, a, 0.5));
    case 5: return U(t, LOG1P, U(t, ABS, a));
    case 6: return U(t, SQRT, positive(b, a, 0.1));
    case 7: return U(t, TANH, a);
    case 8: return U(t, SIGMOID, a);
    case 9: return U(t, SOFTPLUS, a);
    case 10: return B(t, ADD, a, c);
    case 11: return B(t, SUB, a, c);
    case 12: return B(t, MUL, a, c);
    case 13: return B(t, DIV, a, positive(b, c, 0.5));
    case 14: return B(t, MAX, a, c);
    case 15: return B(t, MIN, a, c);
    case 16: return B(t, POW, positive(b, a, 0.5), U(t, TANH, c));
    case 17: return W(t, B(t, GT, a, c), a, B(t, MUL, c, K(t, 2)));
    case 18: { /* add, sub, mul, div by a constant (never by 0) */
        ir_op op = (ir_op)(OP_ADD + pick(&b->r, 4));
        ir_node *k = konst(b);
        return ir_binary(t->g, op, a, op == OP_DIV && ir_is_const_value(k, 0) ? K(t, 4) : k, PT_L);
    }
    case 19: return B(t, POW, a, K(t, pick(&b->r, 2) ? 2 : 1));
    case 20: return U(t, LOG, U(t, SIGMOID, a));
    case 21: return U(t, LOG, B(t, SUB, K(t, 1), U(t, SIGMOID, a)));
    case 22: { /* log(softmax(a)) over C, the long way */
        ir_node *e = U(t, EXP, full(b, U(t, TANH, a)));
        return U(t, LOG, B(t, DIV, e, R(t, SUM, e, BIT(t->C))));
    }
    case 23: return R(t, SUM, full(b, a), BIT(t->C));
    case 24: return R(t, LSE, full(b, a), BIT(t->C));
    case 25: return R(t, RMAX, full(b, a), BIT(t->N));
    case 26: return ir_gather(t->g, full(b, a), BIT(t->C), &t->y, PT_L);
    case 27: return ir_cast(t->g, DT_F32, U(t, TANH, ir_cast(t->g, DT_F64, a, PT_L)), PT_L);
    case 28: return B(t, MUL, U(t, SIGN, a), c);
    default: return B(t, ADD, U(t, EXP, B(t, MUL, U(t, TANH, a), K(t, 0.5))), K(t, -1));
    }
}

static ir_graph *random_graph(uint64_t seed, int size)
{
    builder b = {.t = pt_new(), .r = {seed}};
    ir_node *inputs[4] = {b.t.x, b.t.w, b.t.v, b.t.s};
    for (int i = 0; i < 4; i++)
        b.pool[b.n++] = inputs[i];
    for (int k = 0; k < size && b.n < POOL; k++) {
        ir_node *n = grow(&b);
        if (!n)
            fail_msg("seed %llu: %s", (unsigned long long)seed, ir_graph_error(b.t.g));
        b.pool[b.n++] = n;
    }
    /* the loss: the last three nodes, summed */
    ir_node *loss = NULL;
    for (int k = b.n - 3; k < b.n; k++) {
        ir_node *s = pt_sum_all(&b.t, b.pool[k]);
        loss = loss ? B(&b.t, ADD, loss, s) : s;
    }
    ir_output_add(b.t.g, "loss", IR_OUT_LOSS, -1, loss);
    ir_output_add(b.t.g, "all", IR_OUT_EXTRA, -1, full(&b, b.pool[b.n - 1]));
    return b.t.g;
}

/* The value of every output at random data, before and after the forward
 * passes. */
static void check_values(uint64_t seed, ir_graph *g)
{
    ir_graph *h = pt_pipeline(ir_rebuild(g, NULL, NULL), false, 0);
    rng r = {seed * 7 + 1};
    int64_t sizes[2] = {3, 4};
    double x[12], w[4], v[3], s, y[3];
    for (int i = 0; i < 12; i++)
        x[i] = (double)(int64_t)(next(&r) % 2001 - 1000) / 400;
    for (int i = 0; i < 4; i++)
        w[i] = (double)(int64_t)(next(&r) % 2001 - 1000) / 400;
    for (int i = 0; i < 3; i++) {
        v[i] = (double)(int64_t)(next(&r) % 2001 - 1000) / 400;
        y[i] = (double)(next(&r) % 4);
    }
    s = 0.75;
    const double *in[PT_NIN] = {x, w, v, &s, y};
    double *a[2], *b[2];
    pt_interp(g, sizes, in, a);
    pt_interp(h, sizes, in, b);
    for (int k = 0; k < 2; k++) {
        int64_t count = k == 0 ? 1 : 12;
        for (int64_t i = 0; i < count; i++) {
            if (!isfinite(a[k][i]) && isfinite(b[k][i]))
                continue; /* stabilized: the naive form overflowed */
            if (!tu_close(b[k][i], a[k][i], 1e-9, 1e-12)) {
                char *text = pt_print(g);
                fail_msg("seed %llu: output %d[%lld] = %.17g after the passes, %.17g before\n%s",
                         (unsigned long long)seed, k, (long long)i, b[k][i], a[k][i], text);
            }
        }
    }
    pt_free_outputs(g, a);
    pt_free_outputs(h, b);
    ir_graph_free(h);
}

static uint64_t first_seed(void)
{
    const char *e = getenv("LOSSC_TEST_SEED");
    return e ? strtoull(e, NULL, 10) : 1;
}

static void test_values_preserved(void **state)
{
    (void)state;
    for (uint64_t seed = first_seed(); seed < first_seed() + 300; seed++) {
        ir_graph *g = random_graph(seed, 12);
        check_values(seed, g);
        ir_graph_free(g);
    }
}

static void test_random_gradients(void **state)
{
    (void)state;
    for (uint64_t seed = first_seed(); seed < first_seed() + 150; seed++) {
        ir_graph *g = random_graph(seed, 10);
        ad_gradcheck_opts o;
        ad_gradcheck_defaults(&o);
        o.atol = 1e-6;
        o.rtol = 1e-5;
        o.seed = seed;
        char what[64];
        snprintf(what, sizeof what, "random graph, seed %llu", (unsigned long long)seed);
        pt_gradcheck(g, &o, what);
        ir_graph_free(g);
    }
}

/* Second order: the loss becomes sum over float inputs p of
 * sum(tanh(grad(loss, p))^2), so its gradient is a Hessian-vector product. */
static void test_random_second_order(void **state)
{
    (void)state;
    for (uint64_t seed = first_seed(); seed < first_seed() + 60; seed++) {
        ir_graph *g = random_graph(seed, 8);
        ir_node *loss = g->outputs[0].node, *total = NULL;
        for (int i = 0; i < PT_NIN; i++) {
            ir_node *p = ir_input_node(g, i);
            if (!ir_dtype_is_float((ir_dtype)p->dtype))
                continue;
            ir_node *ops[2] = {loss, p};
            ir_node *gp = ir_unary(g, OP_TANH, ir_make(g, OP_GRAD, DT_F32, ops, 2, NULL, PT_L), PT_L);
            ir_node *sq = ir_binary(g, OP_MUL, gp, gp, PT_L);
            sq = ir_reduce(g, OP_SUM, sq, sq->dims, PT_L);
            total = total ? ir_binary(g, OP_ADD, total, sq, PT_L) : sq;
        }
        g->outputs[0].node = total;
        ad_gradcheck_opts o;
        ad_gradcheck_defaults(&o);
        o.atol = 1e-6;
        o.rtol = 1e-5;
        o.seed = seed;
        char what[64];
        snprintf(what, sizeof what, "random graph, second order, seed %llu",
                 (unsigned long long)seed);
        pt_gradcheck(g, &o, what);
        ir_graph_free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_preserved),
        cmocka_unit_test(test_random_gradients),
        cmocka_unit_test(test_random_second_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
