/* test_fuse.c - the scheduler's stored values (passes/fuse.c): a recursion
 * unrolled over steps, each reading the previous step at shifted positions,
 * stores its states instead of recomputing them per read; a cheap gathered
 * value (cross-entropy's log-softmax at the label) stays recomputed. */
#include "passtest.h"

#include "passes/fuse.h"

/* s_0 = x; s_t[n, c] = log(exp(s_{t-1}[n, c]) + exp(s_{t-1}[n, max(c - 1, 0)]));
 * loss = sum(s_T), with its gradient for x: the shape of ctc_loss's
 * recursion over time. */
static ir_graph *recursion(int steps)
{
    pt t = pt_new();
    ir_node *c = ir_iota(t.g, t.C, PT_L);
    ir_node *one = ir_const(t.g, DT_I64, 1, PT_L), *zero = ir_const(t.g, DT_I64, 0, PT_L);
    ir_node *prev = ir_binary(t.g, OP_MAX, ir_binary(t.g, OP_SUB, c, one, PT_L), zero, PT_L);
    ir_node *s = t.x;
    for (int k = 0; k < steps; k++) {
        ir_node *shifted = ir_gather(t.g, s, BIT(t.C), &prev, PT_L);
        s = U(&t, LOG, B(&t, ADD, U(&t, EXP, s), U(&t, EXP, shifted)));
    }
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, s));
    return pt_pipeline(t.g, true, BIT(PT_X));
}

static sched_plan *plan_of(const ir_graph *g)
{
    strbuf err;
    sb_init(&err);
    sched_plan *p = sched_build(g, &err);
    if (!p)
        fail_msg("sched_build: %s", sb_str(&err));
    sb_free(&err);
    return p;
}

static int count_kind(const sched_plan *p, sched_sink_kind kind)
{
    int n = 0;
    for (int s = 0; s < p->nsinks; s++)
        n += p->sinks[s].kind == kind;
    return n;
}

/* Every state read at a shifted position is stored (one per step but the
 * last, which only the sum reads), so the plan grows by the same number of
 * sweeps per step: linear in the steps, not doubling. */
static void test_recursion_stores_its_states(void **state)
{
    (void)state;
    int sweeps[3], stores[3];
    const int steps[3] = {4, 8, 12};
    for (int i = 0; i < 3; i++) {
        ir_graph *g = recursion(steps[i]);
        sched_plan *p = plan_of(g);
        stores[i] = count_kind(p, SINK_STORE);
        sweeps[i] = sched_num_sweeps(p);
        sched_free(p);
        ir_graph_free(g);
        if (stores[i] < steps[i] - 1)
            fail_msg("%d steps: %d stores, want at least %d", steps[i], stores[i], steps[i] - 1);
    }
    if (sweeps[1] - sweeps[0] != sweeps[2] - sweeps[1])
        fail_msg("sweeps for 4, 8, 12 steps: %d, %d, %d (not linear)", sweeps[0], sweeps[1],
                 sweeps[2]);
}

/* The stored states are read by the sweeps after them, never by their own
 * (a reader's level is above its store's). */
static void test_readers_come_after_stores(void **state)
{
    (void)state;
    ir_graph *g = recursion(6);
    sched_plan *p = plan_of(g);
    int checked = 0;
    for (int s = 0; s < p->nsinks; s++)
        for (int i = 0; i < p->sinks[s].ndeps; i++) {
            const sched_sink *d = &p->sinks[p->sinks[s].deps[i]];
            if (d->kind != SINK_STORE)
                continue;
            assert_true(d->level < p->sinks[s].level);
            checked++;
        }
    assert_true(checked > 0);
    sched_free(p);
    ir_graph_free(g);
}

/* Cross-entropy's nll[n] = -(x - lse(x))[n, y[n]] gathers a one-subtraction
 * value at the label: recomputed, no store, one sweep over the rows after
 * the label check. */
static void test_cheap_gather_is_recomputed(void **state)
{
    (void)state;
    pt t = pt_new();
    ir_node *lsm = B(&t, SUB, t.x, R(&t, LSE, t.x, BIT(t.C)));
    ir_node *nll = U(&t, NEG, ir_gather(t.g, lsm, BIT(t.C), &t.y, PT_L));
    ir_output_add(t.g, "loss", IR_OUT_LOSS, -1, pt_sum_all(&t, nll));
    ir_graph *g = pt_pipeline(t.g, true, BIT(PT_X));
    sched_plan *p = plan_of(g);
    assert_int_equal(count_kind(p, SINK_STORE), 0);
    assert_int_equal(sched_num_sweeps(p), 2);
    sched_free(p);
    ir_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recursion_stores_its_states),
        cmocka_unit_test(test_readers_come_after_stores),
        cmocka_unit_test(test_cheap_gather_is_recomputed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
