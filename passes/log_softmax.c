/* log_softmax.c - log_softmax as PyTorch computes it, the last pass.
 *
 * The frontend writes log_softmax(x) as x - logsumexp(x) (so autodiff needs
 * no rule of its own for it), and the kernels compute logsumexp as
 * m + log(sum(exp(x - m))), m = max(x). In floating point x - (m + log s)
 * loses the low bits of log s to the magnitude of m: at logits near 1e4 in
 * f32 (ulp 1e-3) a row of equal logits gets a softmax off by 5e-4 relative.
 * PyTorch subtracts first, (x - m) - log s, which is exact where x = m.
 * This pass rewrites every x - logsumexp(x) (log_softmax, and the softmax
 * exp(x - lse) of the gradients) that way, once nothing is differentiated
 * any more: the max, the sum and the exponentials are those the kernels
 * compute for logsumexp anyway (hash-consing shares them).
 */
#include "passes/passes.h"

static ir_node *rewrite(void *ctx, ir_graph *dst, const ir_node *old, ir_node *const *ops)
{
    (void)ctx;
    if (old->op != OP_SUB || ops[1]->op != OP_LSE || ops[1]->ops[0] != ops[0])
        return NULL;
    src_loc loc = old->loc;
    ir_dimset axes = ops[1]->attr.axes;
    ir_node *x = ops[0];
    ir_node *xm = ir_binary(dst, OP_SUB, x, ir_reduce(dst, OP_RMAX, x, axes, loc), loc);
    ir_node *s = ir_reduce(dst, OP_SUM, ir_unary(dst, OP_EXP, xm, loc), axes, loc);
    return ir_binary(dst, OP_SUB, xm, ir_unary(dst, OP_LOG, s, loc), loc);
}

ir_graph *pass_log_softmax(const ir_graph *g)
{
    ir_graph *once = ir_rebuild(g, rewrite, NULL);
    ir_graph *out = ir_rebuild(once, NULL, NULL); /* drops the replaced lse nodes */
    ir_graph_free(once);
    return out;
}
