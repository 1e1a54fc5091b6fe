/* passtest.h - graphs built by hand for the pass tests (the frontend's job
 * once it lands), and running them through the passes and the interpreter.
 *
 * The fixture is an entry with dims N, C and inputs
 *   x: f32[N, C]   w: f32[C]   v: f32[N]   s: f32 (scalar)   y: i64[N]
 */
#ifndef LOSSC_TESTS_PASSTEST_H
#define LOSSC_TESTS_PASSTEST_H

#include "testutil.h"

#include "ir/ir.h"
#include "passes/gradcheck.h"
#include "passes/passes.h"

#include <math.h>

typedef struct pt {
    ir_graph *g;
    int N, C;
    ir_node *x, *w, *v, *s, *y;
} pt;

enum { PT_X, PT_W, PT_V, PT_S, PT_Y, PT_NIN };

static src_loc PT_L = {-1, 0, 0};

static inline pt pt_new(void)
{
    pt t;
    t.g = ir_graph_new("t");
    t.N = ir_dim_add(t.g, "N", -1, -1, PT_L);
    t.C = ir_dim_add(t.g, "C", -1, -1, PT_L);
    int nc[2] = {t.N, t.C}, n[1] = {t.N}, c[1] = {t.C};
    ir_input_add(t.g, "x", IR_IN_TENSOR, DT_F32, 2, nc, PT_L);
    ir_input_add(t.g, "w", IR_IN_TENSOR, DT_F32, 1, c, PT_L);
    ir_input_add(t.g, "v", IR_IN_TENSOR, DT_F32, 1, n, PT_L);
    ir_input_add(t.g, "s", IR_IN_SCALAR, DT_F32, 0, NULL, PT_L);
    ir_input_add(t.g, "y", IR_IN_TENSOR, DT_I64, 1, n, PT_L);
    t.x = ir_input_node(t.g, PT_X);
    t.w = ir_input_node(t.g, PT_W);
    t.v = ir_input_node(t.g, PT_V);
    t.s = ir_input_node(t.g, PT_S);
    t.y = ir_input_node(t.g, PT_Y);
    return t;
}

/* Builder shorthands on the fixture's graph. */
#define K(t, v) ir_const((t)->g, DT_F32, (v), PT_L)
#define U(t, op, a) ir_unary((t)->g, OP_##op, (a), PT_L)
#define B(t, op, a, b) ir_binary((t)->g, OP_##op, (a), (b), PT_L)
#define W(t, c, a, b) ir_where((t)->g, (c), (a), (b), PT_L)
#define R(t, op, a, axes) ir_reduce((t)->g, OP_##op, (a), (axes), PT_L)
#define BIT(d) ir_dimbit(d)

static inline ir_node *pt_grad(pt *t, ir_node *e, ir_node *wrt)
{
    ir_node *ops[2] = {e, wrt};
    return ir_make(t->g, OP_GRAD, DT_F32, ops, 2, NULL, PT_L);
}

static inline ir_node *pt_sum_all(pt *t, ir_node *e)
{
    return ir_reduce(t->g, OP_SUM, e, e->dims, PT_L);
}

/* Run the pipeline with verification; fail the test with the message if it
 * fails. Consumes g. */
static inline ir_graph *pt_pipeline(ir_graph *g, bool backward, uint64_t wrt)
{
    strbuf err;
    sb_init(&err);
    pass_options o = {.backward = backward, .wrt = wrt, .verify = true};
    ir_graph *r = pass_pipeline(g, &o, &err);
    if (!r)
        fail_msg("pipeline: %s", sb_str(&err));
    sb_free(&err);
    return r;
}

/* Interpret g; out[k] per output (sup_free each). */
static inline void pt_interp(const ir_graph *g, const int64_t *sizes, const double *const *in,
                             double **out)
{
    strbuf err;
    sb_init(&err);
    if (!ir_interp(g, sizes, in, out, &err))
        fail_msg("interp: %s", sb_str(&err));
    sb_free(&err);
}

static inline void pt_free_outputs(const ir_graph *g, double **out)
{
    for (int k = 0; k < g->noutputs; k++)
        sup_free(out[k]);
}

static inline char *pt_print(const ir_graph *g)
{
    strbuf sb;
    sb_init(&sb);
    ir_print(g, &sb);
    return sb_take(&sb);
}

/* Run the gradient checker and fail with its report if it does not pass. */
static inline void pt_gradcheck(const ir_graph *g, const ad_gradcheck_opts *o,
                                const char *what)
{
    ad_gradcheck_report r;
    strbuf err, rep;
    sb_init(&err);
    sb_init(&rep);
    bool ok = ad_gradcheck(g, o, &r, &err);
    if (ok)
        ad_gradcheck_format(g, o, &r, &rep);
    bool pass = ok && r.pass;
    ad_gradcheck_report_free(&r);
    if (!pass)
        fail_msg("%s: %s%s", what, sb_str(&err), sb_str(&rep));
    sb_free(&err);
    sb_free(&rep);
}

#endif
