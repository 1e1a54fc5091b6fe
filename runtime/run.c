/* run.c - validate every binding, stage, call the kernel, write results.
 *
 * A run has two halves so that nothing is ever half-written:
 *   rt_call_begin  resolves every dim size from the bound inputs, checks every
 *                  output's shape and that no output overlaps anything else,
 *                  then allocates and fills the staging buffers (dense copies
 *                  of strided inputs, the default upstream gradient, dense
 *                  temporaries for strided or unbound outputs). Any failure
 *                  here returns before a single output byte is touched.
 *   rt_call_run    calls the kernel; the kernel itself validates data-dependent
 *                  indices before writing (abi.h). Only after it succeeds are
 *                  strided outputs scattered from their temporaries.
 */
#include "runtime/rt.h"

#include <string.h>

/* ---- dim sizes -------------------------------------------------------------------- */

static const char *input_word(const ir_input *in)
{
    return in->kind == IR_IN_DLOSS ? "upstream gradient" : "input";
}

static lossc_status unbound_input(lossc_loss *loss, const ir_graph *g, const ir_input *in)
{
    strbuf need;
    sb_init(&need);
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i].kind == IR_IN_TENSOR)
            sb_printf(&need, "%s%s", sb_str(&need)[0] ? ", " : "", g->inputs[i].name);
    rt_fail(loss, LOSSC_ERR_UNBOUND,
            "input '%s' is not bound (loss '%s' needs tensors for: %s; bind them with "
            "lossc_bind_input)",
            in->name, loss->name, sb_str(&need));
    sb_free(&need);
    return LOSSC_ERR_UNBOUND;
}

lossc_status rt_resolve_dims(lossc_loss *loss, const ir_graph *g, int64_t *dims)
{
    int64_t size[IR_MAX_DIMS];
    const char *from[IR_MAX_DIMS] = {0}, *as[IR_MAX_DIMS] = {0};
    for (int d = 0; d < IR_MAX_DIMS; d++)
        size[d] = -1;
    /* Two rounds: the declared tensors set the sizes, the upstream gradient
     * (whose dims are the loss's) is checked against them. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < g->ninputs; i++) {
            const ir_input *in = &g->inputs[i];
            if ((in->kind == IR_IN_DLOSS) != (round == 1))
                continue;
            rt_slot *s = rt_find_input(loss, in->name);
            if (!s)
                return rt_fail(loss, LOSSC_ERR_INTERNAL, "kernel input '%s' has no slot",
                               in->name);
            if (in->kind == IR_IN_SCALAR) {
                if (!s->bound && !s->has_value && !in->has_default)
                    return rt_fail(loss, LOSSC_ERR_UNBOUND,
                                   "scalar '%s' has no value and no default: bind it with "
                                   "lossc_bind_scalar",
                                   in->name);
                continue;
            }
            if (!s->bound) {
                if (in->kind == IR_IN_DLOSS)
                    continue;
                return unbound_input(loss, g, in);
            }
            if (s->t.ndim != in->ndim)
                return rt_fail(loss, LOSSC_ERR_INTERNAL, "'%s' bound with rank %d, kernel wants %d",
                               in->name, s->t.ndim, in->ndim);
            for (int k = 0; k < in->ndim; k++) {
                int d = in->order[k], r = ir_dim_root(g, d);
                int64_t v = s->shape[k], fixed = ir_dim_size(g, d);
                const char *dn = g->dims[d].name;
                if (fixed >= 0 && v != fixed)
                    return rt_fail(loss, LOSSC_ERR_SHAPE,
                                   "%s '%s' has %s = %lld but %s is fixed to %lld when the "
                                   "loss was compiled",
                                   input_word(in), in->name, dn, (long long)v, dn,
                                   (long long)fixed);
                if (size[r] < 0) {
                    size[r] = v, from[r] = in->name, as[r] = dn;
                } else if (size[r] != v) {
                    return rt_fail(loss, LOSSC_ERR_SHAPE, "%s '%s' has %s = %lld but '%s' has %s = %lld",
                                   input_word(in), in->name, dn, (long long)v, from[r],
                                   as[r], (long long)size[r]);
                }
            }
        }
    }
    /* Which dims does the kernel need at all? */
    ir_dimset used = 0;
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *n = g->nodes[id];
        used |= n->dims;
        if (n->op == OP_IOTA || n->op == OP_DIMSIZE)
            used |= ir_dimbit(n->attr.dim);
    }
    for (int d = 0; d < g->ndims; d++) {
        int r = ir_dim_root(g, d);
        if (size[r] < 0 && g->dims[r].size >= 0)
            size[r] = g->dims[r].size;
        if (size[r] < 0 && ir_dimset_has(used, d))
            return rt_fail(loss, LOSSC_ERR_SHAPE,
                           "the size of dim %s is not known: no bound input has it; fix it "
                           "when compiling with the setting %s=SIZE",
                           g->dims[r].name, g->dims[r].name);
        dims[d] = size[r] < 0 ? 0 : size[r];
    }
    return LOSSC_OK;
}

int rt_input_shape(const ir_graph *g, const ir_input *in, const int64_t *dims, int64_t *shape)
{
    (void)g;
    for (int k = 0; k < in->ndim; k++)
        shape[k] = dims[in->order[k]];
    return in->ndim;
}

int rt_output_shape(const ir_graph *g, const ir_output *o, const int64_t *dims, int64_t *shape)
{
    if (o->kind == IR_OUT_GRAD)
        return rt_input_shape(g, &g->inputs[o->input], dims, shape);
    int k = 0;
    IR_DIMSET_FOREACH(d, o->node->dims)
    {
        if (k < LOSSC_MAX_RANK)
            shape[k] = dims[d];
        k++;
    }
    return k;
}

lossc_status lossc_shape_of(lossc_loss *loss, const char *name, int *ndim, int64_t *shape)
{
    if (!loss)
        return LOSSC_ERR_NULL;
    if (!name || !ndim || !shape)
        return rt_fail(loss, LOSSC_ERR_NULL, "lossc_shape_of: NULL argument");
    const ir_graph *g = loss->bwd ? loss->bwd->g : loss->fwd->g;
    int64_t dims[IR_MAX_DIMS];
    lossc_status st = rt_resolve_dims(loss, g, dims);
    if (st != LOSSC_OK)
        return st;
    int o = ir_output_find(g, name);
    if (o >= 0) {
        *ndim = rt_output_shape(g, &g->outputs[o], dims, shape);
        return LOSSC_OK;
    }
    int i = ir_input_find(g, name);
    if (i >= 0) {
        *ndim = rt_input_shape(g, &g->inputs[i], dims, shape);
        return LOSSC_OK;
    }
    return rt_fail(loss, LOSSC_ERR_UNKNOWN_NAME, "loss '%s' has no input or output named '%s'",
                   loss->name, name);
}

/* ---- validation of outputs and aliasing --------------------------------------------- */

static bool same_shape(const DLTensor *t, int ndim, const int64_t *shape)
{
    if (t->ndim != ndim)
        return false;
    for (int k = 0; k < ndim; k++)
        if (t->shape[k] != shape[k])
            return false;
    return true;
}

static lossc_status wrong_shape(lossc_loss *loss, const char *what, const char *name,
                                const DLTensor *t, int ndim, const int64_t *shape)
{
    strbuf a, b;
    sb_init(&a);
    sb_init(&b);
    rt_format_shape(&a, ndim, shape);
    rt_format_shape(&b, t->ndim, t->shape);
    rt_fail(loss, LOSSC_ERR_SHAPE, "%s '%s' must have shape %s for these inputs, got %s", what,
            name, sb_str(&a), sb_str(&b));
    sb_free(&a);
    sb_free(&b);
    return LOSSC_ERR_SHAPE;
}

typedef struct span {
    const char *what, *name;
    uintptr_t lo, hi;
} span;

static bool overlap(const span *a, const span *b)
{
    return a->lo < a->hi && b->lo < b->hi && a->lo < b->hi && b->lo < a->hi;
}

/* Outputs (written) against inputs and against each other. */
static lossc_status check_aliasing(lossc_loss *loss, const span *in, int nin, const span *out,
                                   int nout)
{
    for (int i = 0; i < nout; i++) {
        for (int j = 0; j < nin; j++)
            if (overlap(&out[i], &in[j]))
                return rt_fail(loss, LOSSC_ERR_ALIAS,
                               "%s '%s' overlaps %s '%s': outputs must not share memory "
                               "with inputs (in-place is not supported)",
                               out[i].what, out[i].name, in[j].what, in[j].name);
        for (int j = 0; j < i; j++)
            if (overlap(&out[i], &out[j]))
                return rt_fail(loss, LOSSC_ERR_ALIAS, "%s '%s' overlaps %s '%s'", out[i].what,
                               out[i].name, out[j].what, out[j].name);
    }
    return LOSSC_OK;
}

/* Does this run write output o into the caller's tensor? */
static bool writes_caller(const rt_call *c, const ir_output *o, const rt_slot *s)
{
    if (!s->bound || (c->flags & RT_SCRATCH_ALL))
        return false;
    return o->kind != IR_OUT_GRAD || !(c->flags & RT_SCRATCH_GRADS);
}

static const char *output_word(const ir_output *o)
{
    return o->kind == IR_OUT_GRAD ? "gradient" : "output";
}

static lossc_status validate(lossc_loss *loss, rt_call *c)
{
    const ir_graph *g = c->k->g;
    span in[IR_MAX_DIMS + 64], out[IR_MAX_DIMS + 64];
    int nin = 0, nout = 0;
    if (g->ninputs > (int)SUP_ARRAY_LEN(in) || g->noutputs > (int)SUP_ARRAY_LEN(out))
        return rt_fail(loss, LOSSC_ERR_INTERNAL, "too many inputs or outputs");
    int64_t shape[LOSSC_MAX_RANK];
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *gi = &g->inputs[i];
        rt_slot *s = rt_find_input(loss, gi->name);
        if (!s->bound)
            continue;
        if (gi->kind == IR_IN_DLOSS) {
            int nd = rt_input_shape(g, gi, c->dims, shape);
            if (!same_shape(&s->t, nd, shape))
                return wrong_shape(loss, "upstream gradient", gi->name, &s->t, nd, shape);
        }
        in[nin] = (span){input_word(gi), gi->name, 0, 0};
        rt_extent(&s->t, &in[nin].lo, &in[nin].hi);
        nin++;
    }
    for (int i = 0; i < g->noutputs; i++) {
        const ir_output *o = &g->outputs[i];
        rt_slot *s = rt_find_output(loss, o->name);
        if (!s)
            return rt_fail(loss, LOSSC_ERR_INTERNAL, "kernel output '%s' has no slot", o->name);
        if (!writes_caller(c, o, s))
            continue;
        int nd = rt_output_shape(g, o, c->dims, shape);
        if (!same_shape(&s->t, nd, shape))
            return wrong_shape(loss, output_word(o), o->name, &s->t, nd, shape);
        if (rt_self_overlaps(&s->t))
            return rt_fail(loss, LOSSC_ERR_ALIAS,
                           "%s '%s' has strides that make elements overlap (a stride of 0?)",
                           output_word(o), o->name);
        out[nout] = (span){output_word(o), o->name, 0, 0};
        rt_extent(&s->t, &out[nout].lo, &out[nout].hi);
        nout++;
    }
    return check_aliasing(loss, in, nin, out, nout);
}

/* ---- staging ------------------------------------------------------------------------- */

static void *own(lossc_loss *loss, rt_call *c, size_t bytes)
{
    void *p = rt_alloc(loss->ctx, bytes);
    if (p)
        c->owned[c->nowned++] = p;
    return p;
}

static void store_scalar(ir_dtype dt, double v, void *dst)
{
    switch (dt) {
    case DT_BOOL: *(uint8_t *)dst = v != 0; break;
    case DT_I32: *(int32_t *)dst = (int32_t)v; break;
    case DT_I64: *(int64_t *)dst = (int64_t)v; break;
    case DT_F32: *(float *)dst = (float)v; break;
    default: *(double *)dst = v; break;
    }
}

static void *tensor_data(const DLTensor *t) { return (char *)t->data + t->byte_offset; }

static lossc_status stage_input(lossc_loss *loss, rt_call *c, int i)
{
    const ir_graph *g = c->k->g;
    const ir_input *gi = &g->inputs[i];
    rt_slot *s = rt_find_input(loss, gi->name);
    size_t es = ir_dtype_size(gi->dtype);
    if (gi->kind == IR_IN_SCALAR) {
        void *dst = &c->scalars[i];
        if (s->bound)
            memcpy(dst, tensor_data(&s->t), es);
        else
            store_scalar(gi->dtype, s->has_value ? s->value : gi->default_value, dst);
        c->bufs[i] = dst;
        return LOSSC_OK;
    }
    int64_t shape[LOSSC_MAX_RANK], n;
    int nd = rt_input_shape(g, gi, c->dims, shape);
    rt_numel(nd, shape, &n);
    if (!s->bound) { /* the upstream gradient defaults to ones: d sum(loss) */
        char *p = own(loss, c, (size_t)n * es);
        if (!p)
            return rt_fail(loss, LOSSC_ERR_NOMEM, "out of memory for the upstream gradient (%lld elements)",
                           (long long)n);
        for (int64_t e = 0; e < n; e++)
            store_scalar(gi->dtype, 1.0, p + (size_t)e * es);
        c->bufs[i] = p;
        return LOSSC_OK;
    }
    if (rt_is_contiguous(&s->t)) {
        c->bufs[i] = tensor_data(&s->t);
        return LOSSC_OK;
    }
    void *p = own(loss, c, (size_t)n * es);
    if (!p)
        return rt_fail(loss, LOSSC_ERR_NOMEM, "out of memory for a dense copy of input '%s'",
                       gi->name);
    rt_gather(&s->t, p);
    c->bufs[i] = p;
    return LOSSC_OK;
}

static lossc_status stage_output(lossc_loss *loss, rt_call *c, int i)
{
    const ir_graph *g = c->k->g;
    const ir_output *o = &g->outputs[i];
    rt_slot *s = rt_find_output(loss, o->name);
    void **buf = &c->bufs[g->ninputs + i];
    if (writes_caller(c, o, s) && rt_is_contiguous(&s->t)) {
        *buf = tensor_data(&s->t);
        return LOSSC_OK;
    }
    int64_t shape[IR_MAX_DIMS], n;
    int nd = rt_output_shape(g, o, c->dims, shape);
    if (nd > LOSSC_MAX_RANK || !rt_numel(nd, shape, &n))
        return rt_fail(loss, LOSSC_ERR_SHAPE, "%s '%s' is too large", output_word(o), o->name);
    *buf = own(loss, c, (size_t)n * ir_dtype_size(o->node->dtype));
    if (!*buf)
        return rt_fail(loss, LOSSC_ERR_NOMEM, "out of memory for %s '%s' (%lld elements)",
                       output_word(o), o->name, (long long)n);
    return LOSSC_OK;
}

lossc_status rt_call_begin(lossc_loss *loss, rt_kernel *k, int flags, rt_call *c)
{
    memset(c, 0, sizeof *c);
    c->k = k;
    c->flags = flags;
    const ir_graph *g = k->g;
    lossc_status st = rt_resolve_dims(loss, g, c->dims);
    if (st == LOSSC_OK)
        st = validate(loss, c);
    if (st != LOSSC_OK)
        return st;
    int nbufs = g->ninputs + g->noutputs;
    c->bufs = rt_alloc(loss->ctx, sizeof(void *) * (size_t)nbufs);
    c->owned = rt_alloc(loss->ctx, sizeof(void *) * (size_t)nbufs);
    c->scalars = rt_alloc(loss->ctx, sizeof(double) * (size_t)(g->ninputs + 1));
    if (!c->bufs || !c->owned || !c->scalars)
        return rt_fail(loss, LOSSC_ERR_NOMEM, "out of memory staging a run of '%s'", loss->name);
    for (int i = 0; i < g->ninputs && st == LOSSC_OK; i++)
        st = stage_input(loss, c, i);
    for (int i = 0; i < g->noutputs && st == LOSSC_OK; i++)
        st = stage_output(loss, c, i);
    return st;
}

void rt_call_end(lossc_loss *loss, rt_call *c)
{
    for (int i = 0; i < c->nowned; i++)
        rt_free(loss->ctx, c->owned[i]);
    rt_free(loss->ctx, c->owned);
    rt_free(loss->ctx, c->bufs);
    rt_free(loss->ctx, c->scalars);
    memset(c, 0, sizeof *c);
}

/* ---- calling the kernel ---------------------------------------------------------------- */

/* Where flat position `pos` (canonical order over in's dims) falls in input
 * in: its coordinates by dim id and its offset in the input's memory order.
 * False if pos is outside the input. */
static bool locate(const ir_graph *g, const ir_input *in, const int64_t *dims, int64_t pos,
                   int64_t *coord, int64_t *offset)
{
    int64_t n = 1;
    for (int d = g->ndims - 1; d >= 0; d--) {
        bool mine = false;
        for (int k = 0; k < in->ndim; k++)
            mine |= in->order[k] == d;
        if (!mine)
            continue;
        coord[d] = dims[d] ? (pos / n) % dims[d] : 0;
        n *= dims[d];
    }
    if (pos < 0 || pos >= n)
        return false;
    *offset = 0;
    for (int k = 0; k < in->ndim; k++)
        *offset = *offset * dims[in->order[k]] + coord[in->order[k]];
    return true;
}

static int64_t load_int(ir_dtype dt, const void *p, int64_t i)
{
    return dt == DT_I32 ? ((const int32_t *)p)[i] : ((const int64_t *)p)[i];
}

/* The check names no input when the index is computed (a library loss's
 * where(y == ignore_index, 0, y), say): find the one integer input holding
 * the offending value at that position, if exactly one does. */
static int guess_index_input(const rt_call *c, const lk_error *e)
{
    const ir_graph *g = c->k->g;
    int found = -1;
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        int64_t coord[IR_MAX_DIMS], off;
        if (in->kind != IR_IN_TENSOR || !ir_dtype_is_int(in->dtype) || in->ndim == 0 ||
            !locate(g, in, c->dims, e->position, coord, &off))
            continue;
        if (load_int(in->dtype, c->bufs[i], off) != e->value)
            continue;
        if (found >= 0)
            return -1; /* ambiguous: name none */
        found = i;
    }
    return found;
}

/* "y[3]" or "y[2, 5]", indices in the input's own order. */
static void format_position(strbuf *sb, const ir_graph *g, const ir_input *in,
                            const int64_t *dims, int64_t pos)
{
    int64_t coord[IR_MAX_DIMS] = {0}, off;
    if (in->ndim == 0 || !locate(g, in, dims, pos, coord, &off)) {
        sb_printf(sb, "%s (at position %lld)", in->name, (long long)pos);
        return;
    }
    sb_printf(sb, "%s[", in->name);
    for (int k = 0; k < in->ndim; k++)
        sb_printf(sb, "%s%lld", k ? ", " : "", (long long)coord[in->order[k]]);
    sb_putc(sb, ']');
}

static lossc_status index_error(lossc_loss *loss, rt_call *c, const lk_error *e)
{
    const ir_graph *g = c->k->g;
    if (e->check < 0 || e->check >= c->k->nchecks)
        return rt_fail(loss, LOSSC_ERR_INDEX, "index out of range: value %lld (range check %d)",
                       (long long)e->value, (int)e->check);
    const rt_check *ck = &c->k->checks[e->check];
    int in = ck->input ? ir_input_find(g, ck->input) : guess_index_input(c, e);
    const char *dim = ck->dim >= 0 && ck->dim < g->ndims ? g->dims[ck->dim].name : "?";
    int64_t size = ck->dim >= 0 && ck->dim < g->ndims ? c->dims[ck->dim] : -1;
    strbuf sb;
    sb_init(&sb);
    if (in >= 0) {
        sb_puts(&sb, "label out of range: ");
        format_position(&sb, g, &g->inputs[in], c->dims, e->position);
        sb_printf(&sb, " = %lld is not in [0, %lld) (input '%s', dim %s", (long long)e->value,
                  (long long)size, g->inputs[in].name, dim);
    } else {
        sb_printf(&sb, "index out of range: %lld is not in [0, %lld) at position %lld (dim %s",
                  (long long)e->value, (long long)size, (long long)e->position, dim);
    }
    if (ck->where)
        sb_printf(&sb, ", %s", ck->where);
    sb_putc(&sb, ')');
    rt_fail(loss, LOSSC_ERR_INDEX, "%s", sb_str(&sb));
    sb_free(&sb);
    return LOSSC_ERR_INDEX;
}

lossc_status rt_call_run(lossc_loss *loss, rt_call *c)
{
    lk_error err = {0};
    rt_pool *pool = loss->ctx->pool;
    lk_args args = {
        .bufs = c->bufs,
        .dims = c->dims,
        .parallel = rt_pool_threads(pool) > 1 ? rt_pool_parallel : NULL,
        .pool = pool,
        .error = &err,
    };
    lossc_ctx *ctx = loss->ctx;
    if (ctx->jit_take_lazy)
        ctx->jit_take_lazy(NULL); /* count from here */
    int32_t rc = c->k->fn(&args);
    if (ctx->jit_take_lazy) { /* the versions this call compiled: compile time */
        strbuf msg;
        sb_init(&msg);
        double ms = ctx->jit_take_lazy(&msg);
        loss->compile_ms += ms;
        atomic_fetch_add(&ctx->lazy_us, (uint64_t)(ms * 1e3));
        if (rc == LK_ERR_COMPILE)
            rt_fail(loss, LOSSC_ERR_COMPILE, "compiling the kernel of '%s' for these sizes and "
                    "scalars failed: %s", loss->name, sb_str(&msg));
        sb_free(&msg);
        if (rc == LK_ERR_COMPILE)
            return LOSSC_ERR_COMPILE;
    }
    if (rc == LK_ERR_INDEX)
        return index_error(loss, c, &err);
    if (rc == LK_ERR_NOMEM)
        return rt_fail(loss, LOSSC_ERR_NOMEM, "the kernel of '%s' ran out of memory", loss->name);
    if (rc != LK_OK)
        return rt_fail(loss, LOSSC_ERR_INTERNAL, "the kernel of '%s' returned %d", loss->name,
                       (int)rc);
    const ir_graph *g = c->k->g;
    for (int i = 0; i < g->noutputs; i++) {
        rt_slot *s = rt_find_output(loss, g->outputs[i].name);
        if (writes_caller(c, &g->outputs[i], s) && !rt_is_contiguous(&s->t))
            rt_scatter(&s->t, c->bufs[g->ninputs + i]);
    }
    return LOSSC_OK;
}

static lossc_status run(lossc_loss *loss, rt_kernel *k, int flags)
{
    rt_call c;
    lossc_status st = rt_call_begin(loss, k, flags, &c);
    if (st == LOSSC_OK)
        st = rt_call_run(loss, &c);
    rt_call_end(loss, &c);
    return st;
}

lossc_status lossc_forward(lossc_loss *loss)
{
    if (!loss)
        return LOSSC_ERR_NULL;
    /* A backward-only loss still has every forward output; the gradients it
     * computes on the way go to scratch, as a forward run writes none. */
    if (loss->fwd)
        return run(loss, loss->fwd, 0);
    return run(loss, loss->bwd, RT_SCRATCH_GRADS);
}

lossc_status lossc_forward_backward(lossc_loss *loss)
{
    if (!loss)
        return LOSSC_ERR_NULL;
    if (!loss->bwd)
        return rt_fail(loss, LOSSC_ERR_ARG,
                       "loss '%s' was compiled forward-only (compile with "
                       "LOSSC_KERNEL_BACKWARD for gradients)",
                       loss->name);
    return run(loss, loss->bwd, 0);
}
