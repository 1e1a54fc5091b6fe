/* expand_grad.c - grad(e, x) nodes become the gradient they stand for.
 *
 * The frontend turns the language's `grad(expr, x)` into an OP_GRAD(e, x)
 * meta node. This pass rebuilds the graph and replaces each one by the
 * reverse-mode gradient of e with respect to the input x (seed 1), built by
 * ad_gradients into the graph under construction. ir_rebuild visits nodes in
 * topological order with their operands already rebuilt, so a grad() nested
 * inside e is expanded before e is differentiated: innermost first. The
 * result is an ordinary graph, which autodiff can differentiate again
 * (gradient penalties, double backward).
 */
#include "passes/passes.h"

#include <string.h>

typedef struct expand_ctx {
    bool failed;
    char error[256];
} expand_ctx;

static ir_node *expand_one(void *ctx, ir_graph *dst, const ir_node *old,
                           ir_node *const *ops)
{
    expand_ctx *c = ctx;
    if (old->op != OP_GRAD || c->failed)
        return NULL;
    ir_node *seed = ir_const(dst, (ir_dtype)ops[0]->dtype, 1, old->loc);
    ir_node *grad = NULL;
    ad_gradients(dst, ops[0], seed, 1, &ops[1], &grad);
    if (!grad) {
        c->failed = true;
        memcpy(c->error, dst->error, sizeof c->error);
    }
    return grad; /* NULL: the node is copied as it is, and the pass fails */
}

ir_graph *pass_expand_grad(const ir_graph *g)
{
    expand_ctx c = {0};
    ir_graph *out = ir_rebuild(g, expand_one, &c);
    if (c.failed) {
        /* The error buffer is scratch space (verify.c writes it too): this is
         * how the pipeline learns why the pass failed. */
        memcpy(((ir_graph *)g)->error, c.error, sizeof c.error);
        ir_graph_free(out);
        return NULL;
    }
    return out;
}
