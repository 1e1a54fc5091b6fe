/* test_fuse.c - the scheduler's stored values (passes/fuse.c): a recursion
 * unrolled over steps, each reading the previous step at shifted positions,
 * stores its states instead of recomputing them per read; a cheap gathered
 * value (cross-entropy's log-softmax at the label) stays recomputed; the
 * library's cross_entropy reads its logits in one sweep with any options. */
#include "passtest.h"

#include "frontend/frontend.h"
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

/* The pipeline's forward+backward graph of entry `name` in `src`. */
static ir_graph *compile_src(const char *src, const char *name)
{
    diag_set ds;
    diag_init(&ds);
    int f = diag_add_file(&ds, "t.loss", src, strlen(src));
    fe_options o = {.entry = name};
    ir_graph *g = fe_compile(&ds, f, &o);
    if (!g) {
        strbuf sb;
        sb_init(&sb);
        diag_format_all(&ds, &sb);
        fail_msg("%s does not compile:\n%s", name, sb_str(&sb));
    }
    diag_free(&ds);
    return pt_pipeline(g, true, 0);
}

/* How many sweeps read input `in` (from the plan's text: "per N: reads
 * 4*C (x) + ..."), and how many sweeps there are. */
static int sweeps_reading(const sched_plan *p, const char *in)
{
    strbuf sb;
    sb_init(&sb);
    sched_print(p, &sb);
    char pat[64];
    snprintf(pat, sizeof pat, "(%s)", in);
    int n = 0;
    for (const char *l = strstr(sb_str(&sb), "    per "); l; l = strstr(l + 1, "    per ")) {
        const char *end = strstr(l, "; writes");
        const char *hit = strstr(l, pat);
        n += hit && end && hit < end;
    }
    sb_free(&sb);
    return n;
}

/* Weighted cross-entropy's mean divides by sum(w[y[n]]), which needs the
 * labels only, and the gradient of the weights needs the numerator only at
 * the end (sum(k * t) = k * sum(t)): the logits are read by one sweep, after
 * a pass over the labels, with weights, ignore_index and label smoothing. */
static void test_cross_entropy_reads_logits_once(void **state)
{
    (void)state;
    static const char *const src =
        "loss w(x: f32[N, C], y: i64[N], w: f32[C]) = cross_entropy(x, y, w)\n"
        "loss wi(x: f32[N, C], y: i64[N], w: f32[C]) = cross_entropy(x, y, w, ignore_index=0)\n"
        "loss wis(x: f32[N, C], y: i64[N], w: f32[C]) =\n"
        "    cross_entropy(x, y, w, ignore_index=0, label_smoothing=0.1)\n"
        "loss is(x: f32[N, C], y: i64[N]) = cross_entropy(x, y, ignore_index=0, label_smoothing=0.1)\n";
    const char *const names[] = {"w", "wi", "wis", "is"};
    for (size_t i = 0; i < SUP_ARRAY_LEN(names); i++) {
        ir_graph *g = compile_src(src, names[i]);
        sched_plan *p = plan_of(g);
        int n = sweeps_reading(p, "x");
        if (n != 1)
            fail_msg("cross_entropy %s: %d sweeps read the logits, want 1", names[i], n);
        if (sweeps_reading(p, "y") > 2)
            fail_msg("cross_entropy %s: the labels are read by more than 2 sweeps", names[i]);
        sched_free(p);
        ir_graph_free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recursion_stores_its_states),
        cmocka_unit_test(test_readers_come_after_stores),
        cmocka_unit_test(test_cheap_gather_is_recomputed),
        cmocka_unit_test(test_cross_entropy_reads_logits_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
