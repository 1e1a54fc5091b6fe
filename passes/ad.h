/* ad.h - what the reverse-mode core (autodiff.c) and the table of
 * vector-Jacobian products (vjp.c) share. Internal to passes/.
 *
 * A VJP rule receives a node n and its adjoint g (same dtype and dims as n)
 * and adds, for each operand i that needs one (ad_wants), the contribution
 * g * d n / d ops[i] with ad_accum. Rules build ordinary IR in the graph
 * being differentiated; they reuse forward nodes where they can (hash-consing
 * shares them) and express scatters densely with where/iota, because the
 * fusing scheduler recomputes cheap elementwise values and materializes only
 * reductions. A contribution may have more dims than the operand (the
 * operand was broadcast): ad_accum sums over the extra dims.
 */
#ifndef LOSSC_PASSES_AD_H
#define LOSSC_PASSES_AD_H

#include "ir/ir.h"

typedef struct ad_ctx ad_ctx;

typedef void (*ad_vjp_fn)(ad_ctx *c, ir_node *n, ir_node *g);

/* vjp.c: the rule of every operator, indexed by op. NULL means the operator
 * contributes nothing (piecewise constant, integer or boolean, a leaf). */
extern const ad_vjp_fn ad_vjp_table[OP__COUNT];

/* autodiff.c: services for the rules. */
ir_graph *ad_graph(const ad_ctx *c);
/* Does operand i of n lie on a path from a differentiated node? */
bool ad_wants(const ad_ctx *c, const ir_node *n, int i);
/* Add `contrib` (dims: a superset or subset of ops[i]'s) to the adjoint of
 * n->ops[i]. A NULL contrib (a builder failed) poisons the result. */
void ad_accum(ad_ctx *c, const ir_node *n, int i, ir_node *contrib);
/* The same for -contrib: the negation is applied after the contribution is
 * brought to the operand's dims, so that a recorded scatter (below) is still
 * recognized when it is summed. */
void ad_accum_neg(ad_ctx *c, const ir_node *n, int i, ir_node *contrib);
/* Record that s = where(AND_k idx_k == iota(a_k), v, 0) over the dims `axes`
 * {a_k} is the scatter of a gather whose indices the kernel validates: each
 * point of v has exactly one match along `axes`, so a sum of s over them is v
 * itself. (Cross-entropy's logsumexp adjoint then needs no reduction.) */
void ad_note_scatter(ad_ctx *c, ir_node *s, ir_node *v, ir_dimset axes);
/* Report a rule that cannot differentiate n (e.g. an unexpanded grad()). */
void ad_fail(ad_ctx *c, const ir_node *n, const char *why);

#endif
