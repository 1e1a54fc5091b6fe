/* bind.c - a loss's slots (one per input and output, made from its kernels'
 * graphs), binding DLTensors to them, and introspection.
 *
 * Binding checks what one tensor alone can show (name, NULL pointers, device,
 * dtype, rank); what needs several tensors (sizes agreeing per dim, aliasing)
 * is checked by run.c when every binding is known. A failed bind leaves the
 * slot unbound, so a stale tensor is never used by mistake.
 */
#include "runtime/rt.h"

#include <stdio.h>
#include <string.h>

lossc_status rt_fail(lossc_loss *loss, lossc_status s, const char *fmt, ...)
{
    sb_clear(&loss->err);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&loss->err, fmt, ap);
    va_end(ap);
    return s;
}

const char *lossc_loss_error(const lossc_loss *loss)
{
    return loss ? sb_str(&loss->err) : "no loss (NULL)";
}

/* ---- making the slots ---------------------------------------------------------- */

static void describe_input(lossc_loss *loss, rt_slot *s, const ir_graph *g,
                           const ir_input *in)
{
    s->key = arena_strdup(&loss->arena, in->name);
    s->info.name = s->key;
    s->info.role = in->kind == IR_IN_SCALAR  ? LOSSC_SCALAR
                   : in->kind == IR_IN_DLOSS ? LOSSC_DLOSS
                                             : LOSSC_INPUT;
    s->info.dtype = rt_dl_dtype(in->dtype);
    s->info.ndim = in->ndim;
    for (int k = 0; k < in->ndim; k++) {
        s->info.dims[k] = arena_strdup(&loss->arena, g->dims[in->order[k]].name);
        s->info.fixed[k] = ir_dim_size(g, in->order[k]);
    }
    s->info.has_default = in->kind == IR_IN_SCALAR && in->has_default;
    s->info.default_value = in->default_value;
}

static bool describe_output(lossc_loss *loss, rt_slot *s, const ir_graph *g,
                            const ir_output *o)
{
    s->key = arena_strdup(&loss->arena, o->name);
    s->info.name = s->key;
    s->info.role = o->kind == IR_OUT_LOSS    ? LOSSC_LOSS
                   : o->kind == IR_OUT_EXTRA ? LOSSC_EXTRA
                                             : LOSSC_GRAD;
    s->info.dtype = rt_dl_dtype(o->node->dtype);
    if (o->kind == IR_OUT_GRAD) {
        const ir_input *in = &g->inputs[o->input];
        s->info.of = arena_strdup(&loss->arena, in->name);
        s->info.ndim = in->ndim;
        for (int k = 0; k < in->ndim; k++) {
            s->info.dims[k] = arena_strdup(&loss->arena, g->dims[in->order[k]].name);
            s->info.fixed[k] = ir_dim_size(g, in->order[k]);
        }
        return true;
    }
    if (ir_dimset_count(o->node->dims) > LOSSC_MAX_RANK)
        return false;
    int k = 0;
    IR_DIMSET_FOREACH(d, o->node->dims)
    {
        s->info.dims[k] = arena_strdup(&loss->arena, g->dims[d].name);
        s->info.fixed[k++] = ir_dim_size(g, d);
    }
    s->info.ndim = k;
    return true;
}

lossc_status rt_loss_new(lossc_ctx *ctx, rt_kernel *fwd, rt_kernel *bwd, lossc_loss **out)
{
    *out = NULL;
    if (!fwd && !bwd)
        return rt_ctx_fail(ctx, LOSSC_ERR_INTERNAL, "a loss needs at least one kernel");
    const ir_graph *frame = fwd ? fwd->g : bwd->g;
    lossc_loss *loss = sup_calloc(1, sizeof *loss);
    arena_init(&loss->arena);
    sb_init(&loss->err);
    loss->ctx = ctx;
    loss->fwd = fwd;
    loss->bwd = bwd;
    loss->name = arena_strdup(&loss->arena, frame->name ? frame->name : "loss");

    int nin = frame->ninputs + (bwd ? bwd->g->ninputs : 0);
    int nout = frame->noutputs + (bwd ? bwd->g->noutputs : 0);
    loss->inputs = ARENA_ARRAY(&loss->arena, rt_slot, nin + 1);
    loss->outputs = ARENA_ARRAY(&loss->arena, rt_slot, nout + 1);
    for (int i = 0; i < frame->ninputs; i++)
        if (frame->inputs[i].kind != IR_IN_DLOSS)
            describe_input(loss, &loss->inputs[loss->ninputs++], frame, &frame->inputs[i]);
    for (int i = 0; bwd && i < bwd->g->ninputs; i++)
        if (bwd->g->inputs[i].kind == IR_IN_DLOSS)
            describe_input(loss, &loss->inputs[loss->ninputs++], bwd->g, &bwd->g->inputs[i]);

    bool ok = true;
    for (int i = 0; i < frame->noutputs; i++)
        if (frame->outputs[i].kind != IR_OUT_GRAD)
            ok &= describe_output(loss, &loss->outputs[loss->noutputs++], frame,
                                  &frame->outputs[i]);
    for (int i = 0; bwd && i < bwd->g->noutputs; i++) {
        const ir_output *o = &bwd->g->outputs[i];
        if (o->kind != IR_OUT_GRAD)
            continue;
        ok &= describe_output(loss, &loss->outputs[loss->noutputs++], bwd->g, o);
        rt_slot *in = rt_find_input(loss, bwd->g->inputs[o->input].name);
        if (in)
            in->differentiated = true;
    }
    if (!ok) {
        arena_free(&loss->arena);
        sb_free(&loss->err);
        sup_free(loss);
        return rt_ctx_fail(ctx, LOSSC_ERR_COMPILE, "an output has more than %d dims",
                           LOSSC_MAX_RANK);
    }
    loss->next = ctx->losses;
    if (ctx->losses)
        ctx->losses->prev = loss;
    ctx->losses = loss;
    *out = loss;
    return LOSSC_OK;
}

void lossc_loss_free(lossc_loss *loss)
{
    if (!loss)
        return;
    lossc_ctx *ctx = loss->ctx;
    if (loss->prev)
        loss->prev->next = loss->next;
    else
        ctx->losses = loss->next;
    if (loss->next)
        loss->next->prev = loss->prev;
    sup_free(loss->gc);
    if (loss->fe)
        ir_graph_free(loss->fe);
    arena_free(&loss->arena);
    sb_free(&loss->err);
    sup_free(loss);
}

/* ---- finding slots ------------------------------------------------------------- */

rt_slot *rt_find_input(lossc_loss *loss, const char *name)
{
    for (int i = 0; i < loss->ninputs; i++)
        if (strcmp(loss->inputs[i].key, name) == 0)
            return &loss->inputs[i];
    return NULL;
}

rt_slot *rt_find_output(lossc_loss *loss, const char *name)
{
    for (int i = 0; i < loss->noutputs; i++)
        if (strcmp(loss->outputs[i].key, name) == 0)
            return &loss->outputs[i];
    return NULL;
}

static void list_names(strbuf *sb, const rt_slot *slots, int n)
{
    for (int i = 0; i < n; i++)
        sb_printf(sb, "%s%s", i ? ", " : "", slots[i].key);
    if (n == 0)
        sb_puts(sb, "none");
}

static lossc_status unknown(lossc_loss *loss, const char *what, const char *name,
                            const rt_slot *slots, int n)
{
    strbuf names;
    sb_init(&names);
    list_names(&names, slots, n);
    rt_fail(loss, LOSSC_ERR_UNKNOWN_NAME, "loss '%s' has no %s named '%s' (its %ss: %s)",
            loss->name, what, name, what, sb_str(&names));
    sb_free(&names);
    return LOSSC_ERR_UNKNOWN_NAME;
}

/* ---- binding ------------------------------------------------------------------------ */

static const char *role_word(const rt_slot *s)
{
    switch (s->info.role) {
    case LOSSC_INPUT: return "input";
    case LOSSC_SCALAR: return "scalar";
    case LOSSC_DLOSS: return "upstream gradient";
    case LOSSC_LOSS:
    case LOSSC_EXTRA: return "output";
    case LOSSC_GRAD: return "gradient";
    }
    return "tensor";
}

/* The declared type as the source spells it: "f32[N, C]". */
static void format_decl(strbuf *sb, const rt_slot *s)
{
    char buf[64];
    sb_puts(sb, rt_dl_dtype_name(s->info.dtype, buf, sizeof buf));
    if (s->info.ndim == 0 && s->info.role != LOSSC_INPUT)
        return;
    sb_putc(sb, '[');
    for (int k = 0; k < s->info.ndim; k++)
        sb_printf(sb, "%s%s", k ? ", " : "", s->info.dims[k]);
    sb_putc(sb, ']');
}

/* What one tensor can show on its own. */
static lossc_status check_tensor(lossc_loss *loss, const rt_slot *s, const DLTensor *t)
{
    const char *role = role_word(s);
    if (!t)
        return rt_fail(loss, LOSSC_ERR_NULL, "%s '%s': the tensor is NULL", role, s->key);
    if (t->device.device_type != kDLCPU)
        return rt_fail(loss, LOSSC_ERR_DEVICE,
                       "%s '%s' is on device type %d: lossc runs on the CPU (kDLCPU)",
                       role, s->key, (int)t->device.device_type);
    int dt = rt_ir_dtype(t->dtype);
    if (dt < 0 || dt != rt_ir_dtype(s->info.dtype)) {
        char got[96];
        strbuf decl;
        sb_init(&decl);
        format_decl(&decl, s);
        rt_fail(loss, LOSSC_ERR_DTYPE, "%s '%s' is %s but loss '%s' declares it %s", role,
                s->key, rt_dl_dtype_name(t->dtype, got, sizeof got), loss->name,
                sb_str(&decl));
        sb_free(&decl);
        return LOSSC_ERR_DTYPE;
    }
    if (t->ndim != s->info.ndim) {
        strbuf decl;
        sb_init(&decl);
        format_decl(&decl, s);
        rt_fail(loss, LOSSC_ERR_SHAPE, "%s '%s' has rank %d but loss '%s' declares it %s",
                role, s->key, t->ndim, loss->name, sb_str(&decl));
        sb_free(&decl);
        return LOSSC_ERR_SHAPE;
    }
    if (t->ndim > 0 && !t->shape)
        return rt_fail(loss, LOSSC_ERR_NULL, "%s '%s': shape is NULL", role, s->key);
    int64_t n;
    if (!rt_numel(t->ndim, t->shape, &n)) {
        strbuf sh;
        sb_init(&sh);
        rt_format_shape(&sh, t->ndim, t->shape);
        rt_fail(loss, LOSSC_ERR_SHAPE, "%s '%s' has an invalid shape %s (negative or too large)",
                role, s->key, sb_str(&sh));
        sb_free(&sh);
        return LOSSC_ERR_SHAPE;
    }
    if (!t->data && n > 0)
        return rt_fail(loss, LOSSC_ERR_NULL, "%s '%s': data pointer is NULL", role, s->key);
    return LOSSC_OK;
}

static lossc_status bind_slot(lossc_loss *loss, rt_slot *s, const DLTensor *t)
{
    s->bound = false;
    lossc_status st = check_tensor(loss, s, t);
    if (st != LOSSC_OK)
        return st;
    s->t = *t;
    for (int k = 0; k < t->ndim; k++) {
        s->shape[k] = t->shape[k];
        s->strides[k] = t->strides ? t->strides[k] : 0;
    }
    s->t.shape = s->shape;
    s->t.strides = t->strides ? s->strides : NULL;
    s->bound = true;
    return LOSSC_OK;
}

lossc_status lossc_bind_input(lossc_loss *loss, const char *name, const DLTensor *t)
{
    if (!loss)
        return LOSSC_ERR_NULL;
    if (!name)
        return rt_fail(loss, LOSSC_ERR_NULL, "lossc_bind_input: the name is NULL");
    rt_slot *s = rt_find_input(loss, name);
    if (!s)
        return unknown(loss, "input", name, loss->inputs, loss->ninputs);
    if (s->info.role == LOSSC_SCALAR)
        s->has_value = false;
    return bind_slot(loss, s, t);
}

lossc_status lossc_bind_scalar(lossc_loss *loss, const char *name, double value)
{
    if (!loss)
        return LOSSC_ERR_NULL;
    if (!name)
        return rt_fail(loss, LOSSC_ERR_NULL, "lossc_bind_scalar: the name is NULL");
    rt_slot *s = rt_find_input(loss, name);
    if (!s)
        return unknown(loss, "input", name, loss->inputs, loss->ninputs);
    if (s->info.role != LOSSC_SCALAR)
        return rt_fail(loss, LOSSC_ERR_ARG,
                       "'%s' is a tensor input, not a scalar parameter: bind it with "
                       "lossc_bind_input",
                       name);
    s->bound = false;
    s->has_value = true;
    s->value = value;
    return LOSSC_OK;
}

lossc_status lossc_bind_output(lossc_loss *loss, const char *name, const DLTensor *t)
{
    if (!loss)
        return LOSSC_ERR_NULL;
    if (!name)
        return rt_fail(loss, LOSSC_ERR_NULL, "lossc_bind_output: the name is NULL");
    rt_slot *s = rt_find_output(loss, name);
    if (!s)
        return unknown(loss, "output", name, loss->outputs, loss->noutputs);
    return bind_slot(loss, s, t);
}

lossc_status lossc_bind_grad(lossc_loss *loss, const char *input, const DLTensor *t)
{
    if (!loss)
        return LOSSC_ERR_NULL;
    if (!input)
        return rt_fail(loss, LOSSC_ERR_NULL, "lossc_bind_grad: the input name is NULL");
    for (int i = 0; i < loss->noutputs; i++) {
        rt_slot *s = &loss->outputs[i];
        if (s->info.role == LOSSC_GRAD && strcmp(s->info.of, input) == 0)
            return bind_slot(loss, s, t);
    }
    rt_slot *in = rt_find_input(loss, input);
    if (!in)
        return unknown(loss, "input", input, loss->inputs, loss->ninputs);
    if (!loss->bwd)
        return rt_fail(loss, LOSSC_ERR_ARG,
                       "loss '%s' was compiled forward-only: no gradient for '%s' "
                       "(compile with LOSSC_KERNEL_BACKWARD)",
                       loss->name, input);
    char buf[64];
    if (!ir_dtype_is_float((ir_dtype)rt_ir_dtype(in->info.dtype)))
        return rt_fail(loss, LOSSC_ERR_ARG, "input '%s' is %s: only float inputs have gradients",
                       input, rt_dl_dtype_name(in->info.dtype, buf, sizeof buf));
    return rt_fail(loss, LOSSC_ERR_ARG,
                   "loss '%s' was not differentiated with respect to '%s' (add it to "
                   "the compile options' wrt list)",
                   loss->name, input);
}

lossc_status lossc_unbind(lossc_loss *loss, const char *name)
{
    if (!loss)
        return LOSSC_ERR_NULL;
    if (!name)
        return rt_fail(loss, LOSSC_ERR_NULL, "lossc_unbind: the name is NULL");
    rt_slot *s = rt_find_input(loss, name);
    if (!s)
        s = rt_find_output(loss, name);
    if (!s)
        return rt_fail(loss, LOSSC_ERR_UNKNOWN_NAME, "loss '%s' has no input or output named '%s'",
                       loss->name, name);
    s->bound = false;
    s->has_value = false;
    return LOSSC_OK;
}

void lossc_unbind_all(lossc_loss *loss)
{
    if (!loss)
        return;
    for (int i = 0; i < loss->ninputs; i++)
        loss->inputs[i].bound = loss->inputs[i].has_value = false;
    for (int i = 0; i < loss->noutputs; i++)
        loss->outputs[i].bound = false;
}

/* ---- introspection ----------------------------------------------------------------- */

const char *lossc_loss_name(const lossc_loss *loss) { return loss ? loss->name : NULL; }
int lossc_num_inputs(const lossc_loss *loss) { return loss ? loss->ninputs : 0; }
int lossc_num_outputs(const lossc_loss *loss) { return loss ? loss->noutputs : 0; }
double lossc_loss_compile_ms(const lossc_loss *loss) { return loss ? loss->compile_ms : 0; }
int lossc_loss_cache_hit(const lossc_loss *loss) { return loss && loss->cache_hit; }

lossc_status lossc_input_info(const lossc_loss *loss, int i, lossc_info *out)
{
    if (!loss || !out)
        return LOSSC_ERR_NULL;
    if (i < 0 || i >= loss->ninputs)
        return rt_fail((lossc_loss *)loss, LOSSC_ERR_ARG, "input index %d is not in [0, %d)", i,
                       loss->ninputs);
    *out = loss->inputs[i].info;
    return LOSSC_OK;
}

lossc_status lossc_output_info(const lossc_loss *loss, int i, lossc_info *out)
{
    if (!loss || !out)
        return LOSSC_ERR_NULL;
    if (i < 0 || i >= loss->noutputs)
        return rt_fail((lossc_loss *)loss, LOSSC_ERR_ARG, "output index %d is not in [0, %d)",
                       i, loss->noutputs);
    *out = loss->outputs[i].info;
    return LOSSC_OK;
}
