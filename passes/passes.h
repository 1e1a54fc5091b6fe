/* passes.h - graph-to-graph passes and the pipeline that runs them.
 *
 *   frontend graph (may hold grad() nodes)
 *        |
 *   expand_grad   grad(e, x) -> its gradient, innermost first (double backward)
 *   stabilize     log(sigmoid(x)) -> -softplus(-x), log(sum(exp)) -> logsumexp,
 *                 1 - sigmoid(x) -> sigmoid(-x), log(1 + x) -> log1p(x), ...
 *   simplify      constant folding, algebraic identities (CSE: hash-consing;
 *                 DCE: every rebuild keeps only what the outputs reach)
 *   autodiff      only with opts->backward: reverse mode, IR -> IR; adds the
 *                 upstream-gradient input "dloss" and one "grad_<x>" output
 *                 per differentiated input (VJP rules: vjp.c)
 *   strip_ad      after the last differentiation (autodiff, else expand_grad):
 *                 detach(x) -> x, found_inf() -> "a gradient output is inf or NaN"
 *   stabilize, simplify again, on the gradients (only with opts->backward)
 *   log_softmax   x - logsumexp(x) -> (x - max) - log(sum(exp(x - max))), as
 *                 PyTorch (exact at the max; last, nothing is differentiated)
 *        |
 *   fuse.c (schedule) -> kernels for codegen/
 *
 * Each pass is one file with one entry point: it reads a graph and returns a
 * new one, leaving its input untouched (NULL on failure, with the reason in
 * the input's error buffer, ir_graph_error). The pipeline is one short
 * function (pipeline.c) that can verify and print the graph after every pass.
 * The gradient checker (gradcheck.h) runs the pipeline against finite
 * differences of the interpreter.
 *
 * Prefix: pass_ for passes, ad_ for the differentiation core.
 */
#ifndef LOSSC_PASSES_H
#define LOSSC_PASSES_H

#include "ir/ir.h"

typedef struct pass_options {
    bool backward; /* differentiate the loss (the inputs then end with "dloss") */
    uint64_t wrt;  /* inputs to differentiate, bit i = input i; 0: every float input */
    bool verify;   /* ir_verify after every pass */
    bool found_inf; /* add an extra output "found_inf" (bool scalar, as if the
                       entry said `out found_inf = found_inf()`): whether any
                       gradient output holds an inf or a NaN, for dynamic loss
                       scaling (bind "dloss" to the scale); false in a forward
                       pipeline */
    strbuf *trace; /* if not NULL, receives "== after <pass>\n" and the IR,
                      for the input ("frontend") and after every pass */
} pass_options;

/* pass_autodiff returns NULL when ad_check_wrt fails (the pipeline checks first
 * and reports why). A zero wrt means ad_default_wrt(g). */

/* Run the whole pipeline on g (which it frees). Returns the final graph, or
 * NULL with a message in err. */
ir_graph *pass_pipeline(ir_graph *g, const pass_options *opts, strbuf *err);

ir_graph *pass_expand_grad(const ir_graph *g);
ir_graph *pass_stabilize(const ir_graph *g);
ir_graph *pass_simplify(const ir_graph *g);
ir_graph *pass_autodiff(const ir_graph *g, uint64_t wrt);
ir_graph *pass_strip_ad(const ir_graph *g);
ir_graph *pass_log_softmax(const ir_graph *g);
/* Add the output "found_inf" = found_inf() to g unless it has one (false if
 * the graph builder fails). */
bool pass_add_found_inf(ir_graph *g);

/* The inputs pass_autodiff differentiates for wrt = 0: every float input
 * but the upstream gradient. */
uint64_t ad_default_wrt(const ir_graph *g);
/* Can g be differentiated with respect to wrt? False with a message saying
 * what to change (no loss output, an integer input asked for, ...). */
bool ad_check_wrt(const ir_graph *g, uint64_t wrt, strbuf *err);

/* The core of reverse mode, usable on a graph under construction: builds in
 * g the vector-Jacobian product of y with `seed` (y's adjoint: same dtype and
 * dims as y) with respect to each node wrt[i], writing grads[i] (a zero
 * tensor of wrt[i]'s type when y does not depend on it). Only nodes on a path
 * from a wrt node to y get adjoints. On failure (only a bug or an unexpanded
 * grad() node can cause one) every grads[i] is NULL and ir_graph_error(g)
 * says why. */
void ad_gradients(ir_graph *g, ir_node *y, ir_node *seed, int n, ir_node *const *wrt,
                  ir_node **grads);

#endif
