/* cg_losses.h - test graphs built with the IR builder, forward + hand-written
 * backward (the graphs autodiff would make), for the codegen tests. */
#ifndef CG_LOSSES_H
#define CG_LOSSES_H

#include "cg_harness.h"

/* mean((p - t)^2); grad_p = 2 (p - t) / N * dloss; grad_t = -grad_p */
static inline ir_graph *loss_mse(ir_dtype T)
{
    ir_graph *g = ir_graph_new("mse");
    int N = ir_dim_add(g, "N", -1, -1, L_);
    ir_node *p = IN(g, "pred", IR_IN_TENSOR, T, 1, &N);
    ir_node *t = IN(g, "target", IR_IN_TENSOR, T, 1, &N);
    ir_node *dl = IN(g, "dloss", IR_IN_DLOSS, T, 0, NULL);
    ir_node *d = B(g, OP_SUB, p, t);
    ir_node *n = SIZE(g, N, T);
    ir_node *loss = B(g, OP_DIV, R(g, OP_SUM, B(g, OP_MUL, d, d), ir_dimbit(N)), n);
    ir_node *gp = B(g, OP_MUL, B(g, OP_DIV, B(g, OP_MUL, K(g, T, 2), d), n), dl);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, loss);
    ir_output_add(g, "grad_pred", IR_OUT_GRAD, 0, gp);
    ir_output_add(g, "grad_target", IR_OUT_GRAD, 1, U(g, OP_NEG, gp));
    return g;
}

/* Huber with a run-time delta (default 1) */
static inline ir_graph *loss_huber(ir_dtype T)
{
    ir_graph *g = ir_graph_new("huber");
    int N = ir_dim_add(g, "N", -1, -1, L_);
    ir_node *p = IN(g, "pred", IR_IN_TENSOR, T, 1, &N);
    ir_node *t = IN(g, "target", IR_IN_TENSOR, T, 1, &N);
    int kd = ir_input_add(g, "delta", IR_IN_SCALAR, T, 0, NULL, L_);
    g->inputs[kd].has_default = true;
    g->inputs[kd].default_value = 1.0;
    ir_node *delta = ir_input_node(g, kd);
    ir_node *dl = IN(g, "dloss", IR_IN_DLOSS, T, 0, NULL);
    ir_node *d = B(g, OP_SUB, p, t), *a = U(g, OP_ABS, d), *half = K(g, T, 0.5);
    ir_node *small = B(g, OP_LE, a, delta);
    ir_node *l = ir_where(g, small, B(g, OP_MUL, half, B(g, OP_MUL, d, d)),
                          B(g, OP_MUL, delta, B(g, OP_SUB, a, B(g, OP_MUL, half, delta))), L_);
    ir_node *n = SIZE(g, N, T);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, B(g, OP_DIV, R(g, OP_SUM, l, ir_dimbit(N)), n));
    ir_node *dd = ir_where(g, small, d, B(g, OP_MUL, delta, U(g, OP_SIGN, d)), L_);
    ir_output_add(g, "grad_pred", IR_OUT_GRAD, 0, B(g, OP_MUL, B(g, OP_DIV, dd, n), dl));
    return g;
}

/* mean(softplus(x) - x y); grad_x = (sigmoid(x) - y) / N * dloss */
static inline ir_graph *loss_bce_logits(ir_dtype T)
{
    ir_graph *g = ir_graph_new("bce_logits");
    int N = ir_dim_add(g, "N", -1, -1, L_);
    ir_node *x = IN(g, "x", IR_IN_TENSOR, T, 1, &N);
    ir_node *y = IN(g, "y", IR_IN_TENSOR, T, 1, &N);
    ir_node *dl = IN(g, "dloss", IR_IN_DLOSS, T, 0, NULL);
    ir_node *n = SIZE(g, N, T);
    ir_node *l = B(g, OP_SUB, U(g, OP_SOFTPLUS, x), B(g, OP_MUL, x, y));
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, B(g, OP_DIV, R(g, OP_SUM, l, ir_dimbit(N)), n));
    ir_node *gx = B(g, OP_MUL, B(g, OP_DIV, B(g, OP_SUB, U(g, OP_SIGMOID, x), y), n), dl);
    ir_output_add(g, "grad_x", IR_OUT_GRAD, 0, gx);
    return g;
}

/* Softmax cross-entropy with integer labels, optionally class weights
 * (weighted mean, as PyTorch) and the per-row losses as an extra output. */
static inline ir_graph *loss_ce(ir_dtype T, bool weighted, bool rows)
{
    ir_graph *g = ir_graph_new(weighted ? "ce_weighted" : "ce");
    int N = ir_dim_add(g, "N", -1, -1, L_), C = ir_dim_add(g, "C", -1, -1, L_);
    int nc[2] = {N, C};
    ir_node *x = IN(g, "logits", IR_IN_TENSOR, T, 2, nc);
    ir_node *y = IN(g, "y", IR_IN_TENSOR, DT_I64, 1, &N);
    ir_node *w = weighted ? IN(g, "weight", IR_IN_TENSOR, T, 1, &C) : NULL;
    ir_node *dl = IN(g, "dloss", IR_IN_DLOSS, T, 0, NULL);
    ir_node *lse = R(g, OP_LSE, x, ir_dimbit(C));
    ir_node *picked = ir_gather(g, x, ir_dimbit(C), &y, L_);
    ir_node *nll = B(g, OP_SUB, lse, picked);
    ir_node *sm = U(g, OP_EXP, B(g, OP_SUB, x, lse));
    ir_node *onehot = ir_cast(g, T, B(g, OP_EQ, y, ir_iota(g, C, L_)), L_);
    ir_node *diff = B(g, OP_SUB, sm, onehot);
    if (weighted) {
        ir_node *wy = ir_gather(g, w, ir_dimbit(C), &y, L_);
        ir_node *den = R(g, OP_SUM, wy, ir_dimbit(N));
        ir_output_add(g, "loss", IR_OUT_LOSS, -1,
                      B(g, OP_DIV, R(g, OP_SUM, B(g, OP_MUL, wy, nll), ir_dimbit(N)), den));
        ir_output_add(g, "grad_logits", IR_OUT_GRAD, 0,
                      B(g, OP_MUL, B(g, OP_DIV, B(g, OP_MUL, wy, diff), den), dl));
    } else {
        ir_node *n = SIZE(g, N, T);
        ir_output_add(g, "loss", IR_OUT_LOSS, -1,
                      B(g, OP_DIV, R(g, OP_SUM, nll, ir_dimbit(N)), n));
        ir_output_add(g, "grad_logits", IR_OUT_GRAD, 0,
                      B(g, OP_MUL, B(g, OP_DIV, diff, n), dl));
    }
    if (rows)
        ir_output_add(g, "rows", IR_OUT_EXTRA, -1, nll);
    return g;
}

/* Dice on sigmoid(x): two sweeps (the sums, then the gradient). */
static inline ir_graph *loss_dice(ir_dtype T)
{
    ir_graph *g = ir_graph_new("dice");
    int N = ir_dim_add(g, "N", -1, -1, L_);
    ir_node *x = IN(g, "x", IR_IN_TENSOR, T, 1, &N);
    ir_node *t = IN(g, "t", IR_IN_TENSOR, T, 1, &N);
    ir_node *dl = IN(g, "dloss", IR_IN_DLOSS, T, 0, NULL);
    ir_node *p = U(g, OP_SIGMOID, x), *one = K(g, T, 1), *two = K(g, T, 2);
    ir_node *I = R(g, OP_SUM, B(g, OP_MUL, p, t), ir_dimbit(N));
    ir_node *S = B(g, OP_ADD, B(g, OP_ADD, R(g, OP_SUM, p, ir_dimbit(N)),
                                R(g, OP_SUM, t, ir_dimbit(N))), one);
    ir_node *num = B(g, OP_ADD, B(g, OP_MUL, two, I), one);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, B(g, OP_SUB, one, B(g, OP_DIV, num, S)));
    ir_node *dp = U(g, OP_NEG, B(g, OP_DIV, B(g, OP_SUB, B(g, OP_MUL, B(g, OP_MUL, two, t), S), num),
                                  B(g, OP_MUL, S, S)));
    ir_node *gx = B(g, OP_MUL, B(g, OP_MUL, dp, B(g, OP_MUL, p, B(g, OP_SUB, one, p))), dl);
    ir_output_add(g, "grad_x", IR_OUT_GRAD, 0, gx);
    return g;
}

/* InfoNCE-like: s[i, j] = sum_d z[i, d] z[j, d] / t, the diagonal masked,
 * logsumexp over j, the positive at (i + N // 2) % N. Index dims, renames,
 * iota, floor division and modulo, a gather at a computed index. */
static inline ir_graph *loss_infonce(ir_dtype T)
{
    ir_graph *g = ir_graph_new("infonce");
    int N = ir_dim_add(g, "N", -1, -1, L_), D = ir_dim_add(g, "D", -1, -1, L_);
    int i = ir_dim_add(g, "i", -1, N, L_), j = ir_dim_add(g, "j", -1, N, L_);
    int nd[2] = {N, D};
    ir_node *z = IN(g, "z", IR_IN_TENSOR, T, 2, nd);
    ir_node *tt = IN(g, "t", IR_IN_SCALAR, T, 0, NULL);
    ir_node *zi = ir_rename(g, z, N, i, L_), *zj = ir_rename(g, z, N, j, L_);
    ir_node *s = B(g, OP_DIV, R(g, OP_SUM, B(g, OP_MUL, zi, zj), ir_dimbit(D)), tt);
    ir_node *on_diag = B(g, OP_EQ, ir_iota(g, i, L_), ir_iota(g, j, L_));
    ir_node *m = ir_where(g, on_diag, K(g, T, -INFINITY), s, L_);
    ir_node *l = R(g, OP_LSE, m, ir_dimbit(j));
    ir_node *idx = B(g, OP_MOD, B(g, OP_ADD, ir_iota(g, i, L_),
                                  B(g, OP_FLOORDIV, ir_dimsize(g, N, L_), K(g, DT_I64, 2))),
                     ir_dimsize(g, N, L_));
    ir_node *pos = ir_gather(g, s, ir_dimbit(j), &idx, L_);
    ir_node *per = B(g, OP_SUB, l, pos);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1,
                  B(g, OP_DIV, R(g, OP_SUM, per, ir_dimbit(i)), SIZE(g, N, T)));
    ir_output_add(g, "per_row", IR_OUT_EXTRA, -1, per);
    return g;
}

#endif
