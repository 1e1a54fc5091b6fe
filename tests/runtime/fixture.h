/* fixture.h - losses for the runtime tests that need no compiler: graphs built
 * with the IR builder (they give the runtime its slots, types and dims) and
 * kernels written by hand against abi.h (they compute what the graphs say).
 *
 *   sqerr(p: f32[N], t: f32[N], scale: f32 = 2)  loss = sum(scale * (p - t)^2)
 *        backward: grad_p = 2 scale (p - t) dloss, grad_t = -grad_p
 *   pick(x: f32[N, C], y: i64[N])                loss = sum_n x[n, y[n]]
 *        out rows[n] = x[n, y[n]]; y is range-checked (check 0)
 *   sqdiff(p: f32[N], t: f32[N])                 loss[n] = (p - t)^2 (reduction none)
 *        backward: grad_p = 2 (p - t) dloss
 */
#ifndef LOSSC_TEST_RT_FIXTURE_H
#define LOSSC_TEST_RT_FIXTURE_H

#include "runtime/rt.h"

#include <stdatomic.h>
#include <stdlib.h>

/* ---- tensors ------------------------------------------------------------------ */

typedef struct tt {
    DLTensor t;
    int64_t shape[LOSSC_MAX_RANK], strides[LOSSC_MAX_RANK];
} tt;

/* A dense tensor over data (shape given as a list, -1 ends it). */
static inline tt tt_make(void *data, DLDataType dt, int ndim, const int64_t *shape)
{
    tt x = {{0}, {0}, {0}};
    x.t.data = data;
    x.t.device = (DLDevice){kDLCPU, 0};
    x.t.ndim = ndim;
    x.t.dtype = dt;
    for (int k = 0; k < ndim; k++)
        x.shape[k] = shape[k];
    x.t.shape = x.shape;
    return x;
}
/* tt is returned by value: repoint its arrays at the copy. */
#define TT(var, data, dt, ...)                                                     \
    tt var = tt_make((data), (dt), (int)(sizeof((int64_t[]){__VA_ARGS__}) /        \
                                         sizeof(int64_t)),                          \
                     (int64_t[]){__VA_ARGS__});                                     \
    var.t.shape = var.shape
#define TT0(var, data, dt)                                                         \
    tt var = tt_make((data), (dt), 0, NULL);                                       \
    var.t.shape = var.shape

static const DLDataType F32 = {kDLFloat, 32, 1}, F64 = {kDLFloat, 64, 1},
                        I64 = {kDLInt, 64, 1}, I32 = {kDLInt, 32, 1};

/* ---- sqerr ---------------------------------------------------------------------- */

enum { SQ_CHUNK = 64 };
static atomic_int fx_chunk_calls;

typedef struct sq_task {
    const float *p, *t;
    float scale;
    int64_t n;
    double *partial;
} sq_task;

static void sq_chunk(void *ctx, int64_t c)
{
    sq_task *k = ctx;
    double acc = 0;
    for (int64_t i = c * SQ_CHUNK; i < k->n && i < (c + 1) * SQ_CHUNK; i++) {
        double d = (double)k->p[i] - k->t[i];
        acc += d * d;
    }
    k->partial[c] = acc * k->scale;
    atomic_fetch_add(&fx_chunk_calls, 1);
}

/* Partial sums per fixed chunk, combined in chunk order: the same bits
 * whatever runs the chunks (what compiled kernels promise too). */
static float sq_sum(const lk_args *a, const float *p, const float *t, float scale, int64_t n)
{
    int64_t nchunks = (n + SQ_CHUNK - 1) / SQ_CHUNK;
    sq_task k = {p, t, scale, n, calloc((size_t)nchunks + 1, sizeof(double))};
    if (a->parallel)
        a->parallel(a->pool, sq_chunk, &k, nchunks);
    else
        for (int64_t c = 0; c < nchunks; c++)
            sq_chunk(&k, c);
    double s = 0;
    for (int64_t c = 0; c < nchunks; c++)
        s += k.partial[c];
    free(k.partial);
    return (float)s;
}

static int32_t sqerr_fwd(const lk_args *a)
{
    const float *p = a->bufs[0], *t = a->bufs[1], *scale = a->bufs[2];
    float *loss = a->bufs[3];
    *loss = sq_sum(a, p, t, *scale, a->dims[0]);
    return LK_OK;
}

static int32_t sqerr_bwd(const lk_args *a)
{
    const float *p = a->bufs[0], *t = a->bufs[1], *scale = a->bufs[2], *dl = a->bufs[3];
    float *loss = a->bufs[4], *gp = a->bufs[5], *gt = a->bufs[6];
    int64_t n = a->dims[0];
    *loss = sq_sum(a, p, t, *scale, n);
    for (int64_t i = 0; i < n; i++) {
        gp[i] = 2 * *scale * (p[i] - t[i]) * *dl;
        gt[i] = -gp[i];
    }
    return LK_OK;
}

/* The frame shared by sqerr's two graphs; returns the loss node. */
static ir_node *sq_frame(ir_graph *g, ir_node **d, ir_node **s)
{
    src_loc L = src_loc_none();
    int N = ir_dim_add(g, "N", -1, -1, L);
    ir_input_add(g, "p", IR_IN_TENSOR, DT_F32, 1, &N, L);
    ir_input_add(g, "t", IR_IN_TENSOR, DT_F32, 1, &N, L);
    int is = ir_input_add(g, "scale", IR_IN_SCALAR, DT_F32, 0, NULL, L);
    g->inputs[is].has_default = true;
    g->inputs[is].default_value = 2.0;
    *d = ir_binary(g, OP_SUB, ir_input_node(g, 0), ir_input_node(g, 1), L);
    *s = ir_input_node(g, is);
    ir_node *m = ir_binary(g, OP_MUL, ir_binary(g, OP_MUL, *d, *d, L), *s, L);
    return ir_reduce(g, OP_SUM, m, ir_dimbit(N), L);
}

static inline void fx_sqerr(rt_kernel *fwd, rt_kernel *bwd)
{
    src_loc L = src_loc_none();
    ir_node *d, *s;
    memset(fwd, 0, sizeof *fwd);
    memset(bwd, 0, sizeof *bwd);
    fwd->g = ir_graph_new("sqerr");
    ir_output_add(fwd->g, "loss", IR_OUT_LOSS, -1, sq_frame(fwd->g, &d, &s));
    fwd->fn = sqerr_fwd;

    ir_graph *g = bwd->g = ir_graph_new("sqerr");
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, sq_frame(g, &d, &s));
    int idl = ir_input_add(g, "dloss", IR_IN_DLOSS, DT_F32, 0, NULL, L);
    ir_node *two_d = ir_binary(g, OP_MUL, ir_const(g, DT_F32, 2, L), d, L);
    ir_node *gp = ir_binary(g, OP_MUL, ir_binary(g, OP_MUL, two_d, s, L), ir_input_node(g, idl), L);
    ir_output_add(g, "grad_p", IR_OUT_GRAD, 0, gp);
    ir_output_add(g, "grad_t", IR_OUT_GRAD, 1, ir_unary(g, OP_NEG, gp, L));
    bwd->fn = sqerr_bwd;
}

/* ---- pick ------------------------------------------------------------------------ */

static int32_t pick_fwd(const lk_args *a)
{
    const float *x = a->bufs[0];
    const int64_t *y = a->bufs[1];
    float *loss = a->bufs[2], *rows = a->bufs[3];
    int64_t n = a->dims[0], c = a->dims[1];
    for (int64_t i = 0; i < n; i++) /* every index first: no output is touched on error */
        if (y[i] < 0 || y[i] >= c) {
            *a->error = (lk_error){LK_ERR_INDEX, 0, y[i], i};
            return LK_ERR_INDEX;
        }
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += rows[i] = x[i * c + y[i]];
    *loss = s;
    return LK_OK;
}

static inline void fx_pick(rt_kernel *fwd)
{
    src_loc L = src_loc_none();
    memset(fwd, 0, sizeof *fwd);
    ir_graph *g = fwd->g = ir_graph_new("pick");
    int N = ir_dim_add(g, "N", -1, -1, L), C = ir_dim_add(g, "C", -1, -1, L);
    int nc[2] = {N, C};
    ir_input_add(g, "x", IR_IN_TENSOR, DT_F32, 2, nc, L);
    ir_input_add(g, "y", IR_IN_TENSOR, DT_I64, 1, &N, L);
    ir_node *y = ir_input_node(g, 1);
    ir_node *rows = ir_gather(g, ir_input_node(g, 0), ir_dimbit(C), &y, L);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, ir_reduce(g, OP_SUM, rows, ir_dimbit(N), L));
    ir_output_add(g, "rows", IR_OUT_EXTRA, -1, rows);
    fwd->fn = pick_fwd;
    fwd->nchecks = 1;
    fwd->checks = sup_calloc(1, sizeof *fwd->checks);
    fwd->checks[0] = (rt_check){sup_strdup("y"), C, sup_strdup("pick.loss:3:19")};
}

/* ---- sqdiff (a loss that is not a scalar) ------------------------------------------- */

static int32_t sqdiff_bwd(const lk_args *a)
{
    const float *p = a->bufs[0], *t = a->bufs[1], *dl = a->bufs[2];
    float *loss = a->bufs[3], *gp = a->bufs[4];
    for (int64_t i = 0; i < a->dims[0]; i++) {
        float d = p[i] - t[i];
        loss[i] = d * d;
        gp[i] = 2 * d * dl[i];
    }
    return LK_OK;
}

static inline void fx_sqdiff(rt_kernel *bwd)
{
    src_loc L = src_loc_none();
    memset(bwd, 0, sizeof *bwd);
    ir_graph *g = bwd->g = ir_graph_new("sqdiff");
    int N = ir_dim_add(g, "N", -1, -1, L);
    ir_input_add(g, "p", IR_IN_TENSOR, DT_F32, 1, &N, L);
    ir_input_add(g, "t", IR_IN_TENSOR, DT_F32, 1, &N, L);
    int idl = ir_input_add(g, "dloss", IR_IN_DLOSS, DT_F32, 1, &N, L);
    ir_node *d = ir_binary(g, OP_SUB, ir_input_node(g, 0), ir_input_node(g, 1), L);
    ir_output_add(g, "loss", IR_OUT_LOSS, -1, ir_binary(g, OP_MUL, d, d, L));
    ir_output_add(g, "grad_p", IR_OUT_GRAD, 0,
                  ir_binary(g, OP_MUL, ir_binary(g, OP_MUL, ir_const(g, DT_F32, 2, L), d, L),
                            ir_input_node(g, idl), L));
    bwd->fn = sqdiff_bwd;
}

#endif
