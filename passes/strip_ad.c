/* strip_ad.c - the operators that only mean something to differentiation
 * become ordinary IR once the last gradient is built.
 *
 *   detach(x)    -> x. Autodiff gave it no adjoint (PyTorch's detach, a stop
 *                   gradient); its value is x, so kernels never see it.
 *   found_inf()  -> whether any gradient output holds an inf or a NaN:
 *                   !isfinite(amax(|g|)) or'ed over the grad_<x> outputs (a
 *                   NaN or an inf anywhere makes the max-abs non-finite); the
 *                   constant false when nothing is differentiated (a forward
 *                   kernel). Dynamic loss scaling reads it to skip a step.
 *
 * found_inf() may feed `out` values only: the loss cannot depend on whether
 * its own gradients overflow (the frontend says so at the call; the pass
 * fails if it still happens). Since the gradients are built from the loss,
 * they never depend on found_inf(), so each output that does is copied on
 * top of the gradient outputs with found_inf() replaced.
 */
#include "passes/passes.h"

#include <stdio.h>
#include <string.h>

static ir_node *drop_detach(void *ctx, ir_graph *dst, const ir_node *old, ir_node *const *ops)
{
    (void)ctx;
    (void)dst;
    return old->op == OP_DETACH ? ops[0] : NULL;
}

/* Does n depend on a FOUND_INF node? (memo: 0 unknown, 1 no, 2 yes) */
static bool uses_found_inf(const ir_node *n, uint8_t *memo)
{
    if (memo[n->id])
        return memo[n->id] == 2;
    bool yes = n->op == OP_FOUND_INF;
    for (int i = 0; !yes && i < n->nops; i++)
        yes = uses_found_inf(n->ops[i], memo);
    memo[n->id] = yes ? 2 : 1;
    return yes;
}

/* Whether any gradient output of g holds a non-finite value. */
static ir_node *any_nonfinite_grad(ir_graph *g)
{
    src_loc none = src_loc_none();
    ir_node *any = NULL;
    for (int i = 0; i < g->noutputs; i++) {
        const ir_output *o = &g->outputs[i];
        if (o->kind != IR_OUT_GRAD)
            continue;
        ir_node *x = ir_unary(g, OP_ABS, o->node, none);
        if (x && x->dims)
            x = ir_reduce(g, OP_RMAX, x, x->dims, none);
        ir_node *bad = ir_unary(g, OP_NOT, ir_unary(g, OP_ISFINITE, x, none), none);
        any = any ? ir_binary(g, OP_OR, any, bad, none) : bad;
    }
    return any ? any : ir_const(g, DT_BOOL, 0, none);
}

/* A copy of n with every FOUND_INF replaced by `by` (memo: copies by id). */
static ir_node *substitute(ir_graph *g, ir_node *n, ir_node *by, uint8_t *uses,
                           ir_node **memo)
{
    if (!n || !uses_found_inf(n, uses))
        return n;
    if (n->op == OP_FOUND_INF)
        return by;
    if (memo[n->id])
        return memo[n->id];
    ir_node *ops[256];
    for (int i = 0; i < n->nops; i++)
        if (!(ops[i] = substitute(g, n->ops[i], by, uses, memo)))
            return NULL;
    return memo[n->id] = ir_copy_node(g, n, ops);
}

static bool fail(const ir_graph *g, const char *msg)
{
    snprintf(((ir_graph *)g)->error, sizeof g->error, "%s", msg);
    return false;
}

/* Replace the found_inf() nodes of g (modified in place: copies appended). */
static bool expand_found_inf(ir_graph *g, const ir_graph *src)
{
    uint32_t n0 = g->nnodes;
    uint8_t *uses = sup_calloc(n0 ? n0 : 1, 1);
    ir_node **memo = sup_calloc(n0 ? n0 : 1, sizeof *memo);
    bool ok = true;
    ir_node *by = NULL;
    for (int i = 0; ok && i < g->noutputs; i++) {
        ir_output *o = &g->outputs[i];
        if (!uses_found_inf(o->node, uses))
            continue;
        if (o->kind != IR_OUT_EXTRA) {
            ok = fail(src, "found_inf() can only be used in an `out` value, not in the loss");
            break;
        }
        if (!by)
            by = any_nonfinite_grad(g);
        o->node = substitute(g, o->node, by, uses, memo);
        if (!o->node)
            ok = fail(src, g->error);
    }
    sup_free(uses);
    sup_free(memo);
    return ok;
}

ir_graph *pass_strip_ad(const ir_graph *g)
{
    ir_graph *once = ir_rebuild(g, drop_detach, NULL);
    if (!expand_found_inf(once, g)) {
        ir_graph_free(once);
        return NULL;
    }
    ir_graph *out = ir_rebuild(once, NULL, NULL); /* drops the replaced nodes */
    ir_graph_free(once);
    return out;
}

bool pass_add_found_inf(ir_graph *g)
{
    if (ir_output_find(g, "found_inf") >= 0)
        return true;
    ir_node *n = ir_make(g, OP_FOUND_INF, DT_BOOL, NULL, 0, NULL, src_loc_none());
    return n && ir_output_add(g, "found_inf", IR_OUT_EXTRA, -1, n) >= 0;
}
