/* lower_kernel.c - a sched_plan -> the kernel function of abi.h.
 *
 *   int32_t kernel(const lk_args *args)
 *     sizes, pointers; the version of each two-version sweep this call runs
 *     (JIT: compiled now if need be, see cg_lazy); one malloc for every
 *     materialized reduction, the per-chunk partial results and the
 *     per-chunk range-check slots
 *     for each level:
 *       for each sweep over P:  parallel(pool, sweep_k, frame, nchunks)
 *                               (or a serial loop over the chunks)
 *         then: the first failed range check (check order, chunk order)
 *               -> LK_ERR_INDEX; partials folded in chunk order, in f64
 *       serial sinks (scalar outputs, scalar checks)
 *     free; return LK_OK
 *
 *   void sweep_k(frame, chunk): rows [lo, hi) of P; the sinks' loop paths
 *     merged into one loop tree; per sink at its innermost loop: store an
 *     output, fold into a partial, or check an index.
 *
 * Chunks depend only on the sizes: ~32K elements of work each, at most 256
 * (fewer when each keeps a large partial result), so the results are the
 * same for any thread count and any order the pool runs them in.
 */
#include "codegen/lower.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHUNK_WORK = 32768, MAX_CHUNKS = 256 };

/* A reduction over the chunked dim whose result is a tensor (info_nce's
 * gradient, sum over i of A[i, j] z[i, d]: [j, d]) keeps one partial result
 * per chunk, filled, updated by every row and folded in order. Its chunks
 * are capped so that the partials take at most PARTIAL_BYTES, but no fewer
 * than PARTIAL_MIN_CHUNKS (parallelism): at N = 512, D = 128, 16 chunks of
 * 512 KB instead of 256. */
enum { PARTIAL_BYTES = 8 << 20, PARTIAL_MIN_CHUNKS = 16 };

/* Frame slots (i64 each) shared by the kernel and its sweeps. */
enum { FR_ARGS, FR_ROWS, FR_FIRST };
static int slot_mat(int s) { return FR_FIRST + 2 * s; }
static int slot_aux(int s) { return FR_FIRST + 2 * s + 1; } /* partials or check slots */

typedef struct kctx {
    const sched_plan *p;
    LLVMTypeRef i64, i32, ptr, frame_ty;
    int nslots;
} kctx;

/* The partial-result type of a reduction: sums and products of floats in
 * f64 across chunks, of ints in i64; max and min in their own type. */
static int partial_dt(const ir_node *r)
{
    if (r->op == OP_SUM || r->op == OP_PROD)
        return ir_dtype_is_float((ir_dtype)r->dtype) ? DT_F64 : DT_I64;
    return r->dtype;
}

static LLVMValueRef frame_slot(cg_fn *f, kctx *k, LLVMValueRef frame, int slot)
{
    LLVMValueRef idx[2] = {i64c(f, 0), i64c(f, slot)};
    return LLVMBuildGEP2(f->b, k->frame_ty, frame, idx, 2, "");
}

static LLVMValueRef load_at(cg_fn *f, LLVMTypeRef t, LLVMValueRef base, int64_t index)
{
    LLVMValueRef i = i64c(f, index);
    LLVMValueRef p = LLVMBuildGEP2(f->b, t, base, &i, 1, "");
    return LLVMBuildLoad2(f->b, t, p, "");
}

static LLVMValueRef product(cg_fn *f, const int *dims, int n)
{
    LLVMValueRef v = i64c(f, 1);
    for (int i = 0; i < n; i++)
        v = LLVMBuildMul(f->b, v, f->size[dims[i]], "");
    return v;
}

static LLVMValueRef imax(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, a, b, ""), a, b, "");
}

static LLVMValueRef imin(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef ceil_div(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSDiv(f->b, LLVMBuildAdd(f->b, a, LLVMBuildSub(f->b, b, i64c(f, 1), ""), ""),
                         b, "");
}

/* Sizes and data pointers from args, at the root (they never change). */
static void load_frame(cg_fn *f, kctx *k, LLVMValueRef args)
{
    const ir_graph *g = f->g;
    at(f, 0, CH_HOIST);
    f->args = args;
    f->bufs = LLVMBuildLoad2(f->b, k->ptr, args, "bufs");
    LLVMValueRef one = i64c(f, 1);
    f->dims_ptr = LLVMBuildLoad2(f->b, k->ptr, LLVMBuildGEP2(f->b, k->ptr, args, &one, 1, ""),
                                 "dims");
    for (int d = 0; d < g->ndims; d++) {
        int64_t fixed = ir_dim_size(g, d);
        f->size[d] = fixed >= 0 ? i64c(f, fixed)
                                : load_at(f, k->i64, f->dims_ptr, ir_dim_root(g, d));
    }
    f->in_ptr = arena_alloc(&f->mem, sizeof(LLVMValueRef) * (size_t)(g->ninputs + 1));
    f->out_ptr = arena_alloc(&f->mem, sizeof(LLVMValueRef) * (size_t)(g->noutputs + 1));
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        LLVMValueRef p = load_at(f, k->ptr, f->bufs, i);
        if (in->ndim == 0 && in->has_default) {
            /* a scalar left NULL takes its default */
            char name[64];
            snprintf(name, sizeof name, "lossc.default.%d", i);
            LLVMValueRef gv = LLVMGetNamedGlobal(f->mod, name);
            if (!gv) {
                LLVMTypeRef t = ty_mem(f, in->dtype);
                gv = LLVMAddGlobal(f->mod, t, name);
                LLVMValueRef c = ir_dtype_is_float(in->dtype)
                                     ? LLVMConstReal(t, in->default_value)
                                     : LLVMConstInt(t, (unsigned long long)(int64_t)in->default_value, 1);
                LLVMSetInitializer(gv, c);
                LLVMSetGlobalConstant(gv, 1);
                LLVMSetLinkage(gv, LLVMPrivateLinkage);
            }
            p = LLVMBuildSelect(f->b, LLVMBuildIsNull(f->b, p, ""), gv, p, "");
        }
        f->in_ptr[i] = p;
    }
    for (int o = 0; o < g->noutputs; o++)
        f->out_ptr[o] = load_at(f, k->ptr, f->bufs, g->ninputs + o);
    f->mat_ptr = arena_alloc(&f->mem, sizeof(LLVMValueRef) * (size_t)(f->p->nsinks + 1));
}

/* |result dims| of reduction sink s, and its slot size in partial elements
 * (rounded to 64 bytes so chunks never share a cache line). */
static LLVMValueRef result_count(cg_fn *f, const sched_sink *s)
{
    int order[IR_MAX_DIMS], n = dims_order(s->node->dims, order);
    return product(f, order, n);
}

static LLVMValueRef partial_slot(cg_fn *f, const sched_sink *s)
{
    int64_t per_line = 64 / (int64_t)ir_dtype_size((ir_dtype)partial_dt(s->node));
    LLVMValueRef n = result_count(f, s);
    return LLVMBuildMul(f->b, ceil_div(f, n, i64c(f, per_line)), i64c(f, per_line), "");
}

/* Rows per chunk of sweep sw: about CHUNK_WORK elements of work, at most
 * MAX_CHUNKS chunks (fewer for large partials, see PARTIAL_BYTES), a
 * multiple of 64 rows when that many. */
static LLVMValueRef sweep_rows(cg_fn *f, const sched_sweep *sw)
{
    const sched_plan *p = f->p;
    LLVMValueRef inner = i64c(f, 1), partials = i64c(f, 0);
    for (int i = 0; i < sw->nsinks; i++) {
        const sched_sink *s = &p->sinks[sw->sinks[i]];
        inner = imax(f, inner, product(f, s->path + 1, s->depth - 1));
        if (s->kind == SINK_REDUCE && !s->rows_owned) {
            int64_t size = (int64_t)ir_dtype_size((ir_dtype)partial_dt(s->node));
            partials = LLVMBuildAdd(f->b, partials,
                                    LLVMBuildMul(f->b, partial_slot(f, s), i64c(f, size), ""), "");
        }
    }
    LLVMValueRef P = f->size[sw->outer];
    LLVMValueRef most = imin(f, i64c(f, MAX_CHUNKS),
                             imax(f, i64c(f, PARTIAL_MIN_CHUNKS),
                                  LLVMBuildSDiv(f->b, i64c(f, PARTIAL_BYTES),
                                                imax(f, partials, i64c(f, 1)), "")));
    LLVMValueRef rows = imax(f, ceil_div(f, i64c(f, CHUNK_WORK), inner), ceil_div(f, P, most));
    LLVMValueRef r64 = LLVMBuildMul(f->b, ceil_div(f, rows, i64c(f, 64)), i64c(f, 64), "");
    return LLVMBuildSelect(f->b, LLVMBuildICmp(f->b, LLVMIntSGT, rows, i64c(f, 64), ""), r64,
                           rows, "rows");
}

static LLVMValueRef sweep_chunks(cg_fn *f, const sched_sweep *sw, LLVMValueRef rows)
{
    return ceil_div(f, f->size[sw->outer], rows);
}

/* ---- the sweep function ---------------------------------------------------------------- */

typedef struct sweep_ctx {
    kctx *k;
    const sched_sweep *sw;
    LLVMValueRef chunk, lo, hi;
    LLVMValueRef *aux; /* per sink: this chunk's partial slot or check slot */
    cg_acc *acc;       /* per sink: register accumulator of a reduction */
    bool across_rows;  /* vectorize the outer loop (rows shorter than a vector) */
    LLVMValueRef *stage;              /* per sink: a staged output's buffer, or NULL */
    LLVMValueRef *block;              /* per sink: stage_copy's second buffer */
    cv env[IR_MAX_DIMS];
} sweep_ctx;

static const ir_node *sink_expr(const sched_sink *s)
{
    return s->kind == SINK_REDUCE ? s->node->ops[0] : s->node;
}

static void sink_senv(const sched_sink *s, sched_env *env)
{
    memset(env, 0, sizeof *env);
    for (int i = 0; i < s->depth; i++)
        env->loops[s->path[i]] = (uint64_t)1 << i;
}

/* Fill in a cold block when `bad` holds: the chunk's first failure. */
static void record_check(cg_fn *f, sweep_ctx *c, const sched_sink *s, LLVMValueRef bad,
                         LLVMValueRef value, LLVMValueRef pos)
{
    kctx *k = c->k;
    cg_scope *sc = &f->scopes[f->depth];
    LLVMBasicBlockRef rec = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "check.fail");
    LLVMBasicBlockRef first = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "check.first");
    LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "check.ok");
    LLVMBuildCondBr(f->b, bad, rec, cont);
    LLVMPositionBuilderAtEnd(f->b, rec);
    LLVMValueRef slot = c->aux[s - f->p->sinks];
    LLVMValueRef flag = LLVMBuildLoad2(f->b, k->i64, slot, "");
    LLVMBuildCondBr(f->b, LLVMBuildICmp(f->b, LLVMIntEQ, flag, i64c(f, 0), ""), first, cont);
    LLVMPositionBuilderAtEnd(f->b, first);
    LLVMBuildStore(f->b, i64c(f, 1), slot);
    LLVMValueRef one = i64c(f, 1), two = i64c(f, 2);
    LLVMBuildStore(f->b, value, LLVMBuildGEP2(f->b, k->i64, slot, &one, 1, ""));
    LLVMBuildStore(f->b, pos, LLVMBuildGEP2(f->b, k->i64, slot, &two, 1, ""));
    LLVMBuildBr(f->b, cont);
    sc->tail[CH_BODY] = cont;
    LLVMPositionBuilderAtEnd(f->b, cont);
}

/* Bad lanes of index value v for the check of sink s, and the flat canonical
 * position of each element of the index expression. */
static void emit_check(cg_fn *f, sweep_ctx *c, const sched_sink *s, const cv *v)
{
    kctx *k = c->k;
    const sched_check *chk = &f->p->checks[s->check];
    at_body(f);
    bool vec = cv_varies(v);
    LLVMTypeRef t = vec ? ty_vec(f, DT_I64) : k->i64;
    LLVMValueRef iv = LLVMBuildIntCast2(f->b, v->v, t, 1, "");
    LLVMValueRef size = f->size[chk->dim], zero = LLVMConstNull(t);
    LLVMValueRef bad = LLVMBuildOr(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, iv, zero, ""),
                                   LLVMBuildICmp(f->b, LLVMIntSGE, iv,
                                                 vec ? splat(f, size) : size, ""), "bad");
    /* position in the index tensor's canonical order */
    int order[IR_MAX_DIMS], nd = dims_order(chk->index->dims, order);
    bool pvec = false;
    for (int i = 0; i < nd; i++)
        pvec |= cv_varies(&c->env[order[i]]);
    LLVMValueRef pos = pvec ? splat(f, i64c(f, 0)) : i64c(f, 0);
    for (int i = 0; i < nd; i++) {
        const cv *ix = &c->env[order[i]];
        pos = LLVMBuildMul(f->b, pos, pvec ? splat(f, f->size[order[i]]) : f->size[order[i]], "");
        pos = LLVMBuildAdd(f->b, pos, pvec ? as_vec(f, ix) : ix->v, "");
    }
    if (!vec) {
        LLVMValueRef p0 = pvec ? LLVMBuildExtractElement(f->b, pos, LLVMConstInt(k->i32, 0, 0), "")
                               : pos;
        record_check(f, c, s, bad, iv, p0);
        return;
    }
    LLVMValueRef mask = f->scopes[f->depth].mask;
    if (mask)
        bad = LLVMBuildAnd(f->b, bad, mask, "");
    LLVMTypeRef iw = LLVMIntTypeInContext(f->ctx, (unsigned)f->W);
    LLVMValueRef bits = LLVMBuildBitCast(f->b, bad, iw, "");
    LLVMValueRef any = LLVMBuildICmp(f->b, LLVMIntNE, bits, LLVMConstNull(iw), "");
    LLVMValueRef args[2] = {bits, LLVMConstInt(LLVMInt1TypeInContext(f->ctx), 0, 0)};
    LLVMValueRef lane = call_intrinsic(f, "llvm.cttz", &iw, 1, args, 2);
    lane = LLVMBuildZExtOrBitCast(f->b, lane, k->i32, "");
    if (f->W < 32)
        lane = LLVMBuildTrunc(f->b, LLVMBuildAnd(f->b, LLVMBuildZExt(f->b, lane, k->i64, ""),
                                                 i64c(f, f->W - 1), ""), k->i32, "");
    LLVMValueRef value = LLVMBuildExtractElement(f->b, iv, lane, "");
    LLVMValueRef p0 = pvec ? LLVMBuildExtractElement(f->b, pos, lane, "") : pos;
    record_check(f, c, s, any, value, p0);
}

static void mat_order(const sched_sink *s, int *order, int *n)
{
    *n = s->mdims;
    memcpy(order, s->morder, sizeof(int) * (size_t)s->mdims);
}

/* Fold a reduction sink's value at the current indices into its target. */
static void reduce_into(cg_fn *f, sweep_ctx *c, const sched_sink *s, const cv *v)
{
    int order[IR_MAX_DIMS], n;
    mat_order(s, order, &n);
    int si = (int)(s - f->p->sinks);
    if (s->rows_owned) /* every element of our rows is finished here: store */
        cg_store(f, f->mat_ptr[si], s->node->dtype, order, n, c->env, v, NULL);
    else
        cg_update(f, c->aux[si], partial_dt(s->node), order, n, c->env, s->node->op, v);
}

/* Streaming stores for an output of at least STREAM_BYTES (larger than the
 * caches a consumer could find it in), x86 only (the fence is x86's), and
 * only where the loop is bound by memory. They skip the read for ownership,
 * which makes MSE and Huber ~20% faster. Where each element costs a
 * transcendental function the loop is bound by arithmetic instead, and
 * streaming stores made it slower on the AVX2 test machine (2 threads: BCE
 * 10%, Dice 16%, cross-entropy with 1000 classes 25%): plain stores then
 * leave the lines to the caches' write-back. */
enum { STREAM_BYTES = 16 << 20 };

/* Does n, evaluated at the dims `at`, compute a transcendental function per
 * element? Values loaded from buffers (materialized reductions) cost
 * nothing here. */
static bool costly_per_element(const sched_plan *p, const ir_node *n, ir_dimset at, uint8_t *seen)
{
    if (seen[n->id] || p->mat[n->id] >= 0)
        return false;
    seen[n->id] = 1;
    if (cg_transcendental(n->op) && n->dims == at)
        return true;
    for (int i = 0; i < n->nops; i++)
        if (costly_per_element(p, n->ops[i], at, seen))
            return true;
    return false;
}

static bool sweep_is_arithmetic_bound(const sched_plan *p, const sched_sweep *sw)
{
    uint8_t *seen = sup_calloc(p->g->nnodes + 1, 1);
    bool costly = false;
    for (int i = 0; i < sw->nsinks && !costly; i++) {
        const ir_node *e = sink_expr(&p->sinks[sw->sinks[i]]);
        costly = costly_per_element(p, e, e->dims, seen);
    }
    sup_free(seen);
    return costly;
}

static LLVMValueRef stream_flag(cg_fn *f, const sched_sink *s)
{
    if (!strstr(f->t->triple, "x86_64") || s->depth == 0 || f->arith_bound)
        return NULL;
    at(f, 0, CH_HOIST);
    LLVMValueRef bytes = product(f, s->path, s->depth);
    bytes = LLVMBuildMul(f->b, bytes, i64c(f, (int64_t)ir_dtype_size((ir_dtype)s->node->dtype)), "");
    return LLVMBuildICmp(f->b, LLVMIntSGE, bytes, i64c(f, STREAM_BYTES), "stream");
}

/* ---- staged outputs of the across-rows body (see row_cache in lower.h) ------------------ */

/* An output of the across-rows body whose rows [outer, inner] go through a
 * stage buffer. */
static bool staged_output(const cg_fn *f, const sched_sink *s)
{
    return f->staged && s->kind == SINK_OUTPUT && s->depth == 2 &&
           s->path[0] == f->sweep->outer;
}

/* After the loop over a block's columns: copy the staged output, W rows of
 * `inner` columns, to its rows r0 .. r0+W-1 (the live ones), a contiguous
 * block. First into a second buffer laid out as the block, [r][inner], by
 * tiles of W columns transposed in registers (W loads, W log2 W shuffles,
 * W stores a tile instead of W^2 scalar loads): tile k's row r is stored at
 * r * inner + k W, whole, so the last tile's row also writes the start of
 * the next row (or the buffer's padding); the tiles run from the last to
 * the first, so that the next row's own first tile comes after. Then from
 * that buffer to the output, one vector at a time, the last one masked
 * (cg_store: plain or non-temporal stores). */
static void stage_copy(cg_fn *f, sweep_ctx *c, const sched_sink *s)
{
    int outer = s->path[0], inner = s->path[1], dt = f->g->outputs[s->output].node->dtype;
    LLVMValueRef stage = c->stage[s - f->p->sinks], block = c->block[s - f->p->sinks];
    LLVMTypeRef et = ty_mem(f, dt), vt = LLVMVectorType(et, (unsigned)f->W);
    unsigned esize = (unsigned)ir_dtype_size((ir_dtype)dt);
    LLVMValueRef stream = stream_flag(f, s);
    at_body(f);
    LLVMValueRef cols = f->size[inner], W = i64c(f, f->W);
    LLVMValueRef tiles = ceil_div(f, cols, W);
    LLVMValueRef t = scope_open_loop(f, CH_BODY, i64c(f, 0), tiles, false, -1);
    at_body(f);
    LLVMValueRef k0 = LLVMBuildMul(f->b, LLVMBuildSub(f->b, LLVMBuildSub(f->b, tiles, t, ""),
                                                      i64c(f, 1), ""), W, "tile");
    LLVMValueRef v[64];
    for (int i = 0; i < f->W; i++) {
        LLVMValueRef off = LLVMBuildMul(f->b, LLVMBuildAdd(f->b, k0, i64c(f, i), ""), W, "");
        v[i] = LLVMBuildLoad2(f->b, vt, LLVMBuildGEP2(f->b, et, stage, &off, 1, ""), "");
        LLVMSetAlignment(v[i], esize * (unsigned)f->W > 64 ? 64 : esize * (unsigned)f->W);
    }
    cg_transpose(f, v);
    for (int r = 0; r < f->W; r++) {
        LLVMValueRef off = LLVMBuildAdd(f->b, LLVMBuildMul(f->b, i64c(f, r), cols, ""), k0, "");
        LLVMSetAlignment(LLVMBuildStore(f->b, v[r], LLVMBuildGEP2(f->b, et, block, &off, 1, "")),
                         esize);
    }
    scope_close(f);
    at_body(f);
    LLVMValueRef r0 = c->env[outer].base;
    LLVMValueRef rend = imin(f, LLVMBuildAdd(f->b, r0, W, ""), c->hi);
    LLVMValueRef lo = LLVMBuildMul(f->b, r0, cols, "");
    LLVMValueRef k = scope_open_loop(f, CH_BODY, lo, LLVMBuildMul(f->b, rend, cols, ""), true, 1);
    at(f, f->depth, CH_HOIST);
    LLVMValueRef j = LLVMBuildSub(f->b, k, lo, "");
    cv x = {.v = LLVMBuildLoad2(f->b, vt, LLVMBuildGEP2(f->b, et, block, &j, 1, ""), ""),
            .shape = CV_VARYING, .dt = (uint8_t)dt, .loops = (uint64_t)1 << 1};
    LLVMSetAlignment(x.v, esize);
    if (dt == DT_BOOL)
        x.v = LLVMBuildICmp(f->b, LLVMIntNE, x.v, LLVMConstNull(vt), "");
    cv env[IR_MAX_DIMS];
    memcpy(env, c->env, sizeof env);
    env[outer] = cg_loop_index(f, k, true, 1);
    cg_store(f, f->out_ptr[s->output], dt, &outer, 1, env, &x, stream);
    scope_close(f);
}

static void sink_work(cg_fn *f, sweep_ctx *c, const sched_sink *s)
{
    int si = (int)(s - f->p->sinks);
    cv v = s->kind == SINK_STORE ? cg_eval_own(f, s->node, c->env) : cg_eval(f, sink_expr(s), c->env);
    switch (s->kind) {
    case SINK_OUTPUT: {
        const ir_output *o = &f->g->outputs[s->output];
        if (staged_output(f, s))
            cg_stage_put(f, c->stage[si], o->node->dtype, c->env[s->path[1]].v, &v);
        else
            cg_store(f, f->out_ptr[s->output], o->node->dtype, s->path, s->depth, c->env, &v,
                     stream_flag(f, s));
        break;
    }
    case SINK_CHECK: emit_check(f, c, s, &v); break;
    case SINK_STORE: {
        int order[IR_MAX_DIMS], n;
        mat_order(s, order, &n);
        cg_store(f, f->mat_ptr[si], s->node->dtype, order, n, c->env, &v, NULL);
        break;
    }
    case SINK_REDUCE:
        if (s->rdepth < s->depth) {
            at_body(f);
            acc_add(f, &c->acc[si], &v);
        } else {
            reduce_into(f, c, s, &v);
        }
        break;
    }
}

/* Vectorize the loop at `depth` for these sinks? Only if no loop encloses a
 * vectorized one and it is the innermost loop of all of them. */
static bool innermost(cg_fn *f, const sched_sink *const *ss, int n, int depth)
{
    if (f->scopes[f->depth].vpos >= 0)
        return false;
    for (int i = 0; i < n; i++)
        if (ss[i]->depth > depth + 1)
            return false;
    for (int i = 0; i < n; i++) {
        sched_env env;
        sink_senv(ss[i], &env);
        if (sched_opens_loop_at(f->p, sink_expr(ss[i]), &env, depth + 1))
            return false;
    }
    return true;
}

static void emit_tree(cg_fn *f, sweep_ctx *c, const sched_sink *const *ss, int n, int depth)
{
    const sched_plan *p = f->p;
    for (int i = 0; i < n; i++)
        if (ss[i]->depth == depth)
            sink_work(f, c, ss[i]);
    for (int i = 0; i < n; i++)
        if (ss[i]->kind == SINK_REDUCE && ss[i]->rdepth == depth && depth < ss[i]->depth) {
            at_body(f);
            acc_begin(f, &c->acc[ss[i] - p->sinks], ss[i]->node->op, ss[i]->node->dtype,
                      !ss[i]->rows_owned);
        }
    const sched_sink **group = sup_malloc(sizeof *group * (size_t)(n + 1));
    bool *done = sup_calloc((size_t)n + 1, 1);
    for (int i = 0; i < n; i++) {
        if (done[i] || ss[i]->depth <= depth)
            continue;
        int d = ss[i]->path[depth], m = 0;
        for (int j = i; j < n; j++)
            if (!done[j] && ss[j]->depth > depth && ss[j]->path[depth] == d) {
                done[j] = true;
                group[m++] = ss[j];
            }
        bool vec = depth == 0 && c->across_rows ? true : innermost(f, group, m, depth);
        LLVMValueRef lo = depth == 0 ? c->lo : i64c(f, 0);
        LLVMValueRef hi = depth == 0 ? c->hi : f->size[d];
        LLVMValueRef first = scope_open_loop(f, CH_BODY, lo, hi, vec, depth);
        c->env[d] = cg_loop_index(f, first, vec, depth);
        emit_tree(f, c, group, m, depth + 1);
        scope_close(f);
        for (int j = 0; j < m; j++)
            if (depth == 1 && staged_output(f, group[j]))
                stage_copy(f, c, group[j]);
    }
    sup_free(group);
    sup_free(done);
    for (int i = 0; i < n; i++)
        if (ss[i]->kind == SINK_REDUCE && ss[i]->rdepth == depth && depth < ss[i]->depth) {
            at_body(f);
            uint64_t loops = depth ? ((uint64_t)1 << depth) - 1 : 0;
            cv v = acc_finish(f, &c->acc[ss[i] - p->sinks], loops);
            reduce_into(f, c, ss[i], &v);
        }
}

/* Fill [0, count) of a buffer with the identity of op. */
static void fill_identity(cg_fn *f, LLVMValueRef base, int dt, int op, LLVMValueRef count)
{
    LLVMValueRef i = scope_open_loop(f, CH_BODY, i64c(f, 0), count, false, -1);
    at_body(f);
    LLVMValueRef p = LLVMBuildGEP2(f->b, ty_mem(f, dt), base, &i, 1, "");
    LLVMBuildStore(f->b, red_identity(f, op, dt, false), p);
    scope_close(f);
    at_body(f);
}

/* Scalar inputs with a default that feed a pow exponent (focal's gamma),
 * marked in spec; returns how many (see SW_SPEC). */
static int find_specializations(const sched_plan *p, bool *spec)
{
    const ir_graph *g = p->g;
    bool *seen = sup_calloc(g->nnodes + 1, 1);
    int n = 0;
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *x = g->nodes[id];
        if (x->op != OP_POW || !ir_dtype_is_float((ir_dtype)x->dtype) || x->ops[1]->dims)
            continue;
        /* the scalar inputs the exponent is made of */
        const ir_node *stack[256];
        int top = 0;
        stack[top++] = x->ops[1];
        while (top) {
            const ir_node *y = stack[--top];
            if (seen[y->id])
                continue;
            seen[y->id] = true;
            if (y->op == OP_INPUT) {
                const ir_input *in = &g->inputs[y->attr.ival];
                if (in->ndim == 0 && in->has_default && ir_dtype_is_float(in->dtype) &&
                    !spec[y->attr.ival]) {
                    spec[y->attr.ival] = true;
                    n++;
                }
            }
            for (int i = 0; i < y->nops && top < 256; i++)
                stack[top++] = y->ops[i];
        }
    }
    sup_free(seen);
    return n;
}

/* How a sweep's body comes: one version, or two chosen per kernel call by
 * the sizes and scalar inputs alone (version_cond), each its own function,
 * so that the JIT can compile them apart, and only the one a call uses
 * (jit.c):
 *   ROWS: rows whose work is shorter than two vectors are vectorized across
 *         rows: the outer loop vectorized, the inner ones scalar over varying
 *         lanes (version 0), else along rows (version 1);
 *   SPEC: scalar inputs with a default that feed a pow exponent (focal's
 *         gamma) evaluated as their default, where pow(x, 2) is x * x
 *         (version 0), taken when the run-time values equal the defaults;
 *         else the general body (version 1). */
enum { SW_ONE, SW_ROWS, SW_SPEC };

static int sweep_kind(const sched_plan *p, const sched_sweep *sw, bool *spec)
{
    if (sched_inner_dims(p, sw))
        return SW_ROWS;
    return find_specializations(p, spec) ? SW_SPEC : SW_ONE;
}

/* LOSSC_CG_ROWS=across|along forces one body of SW_ROWS (tests run both):
 * 1 across rows (as far as its stage buffers allow), 0 along, else -1. */
static int forced_rows(void)
{
    const char *force = getenv("LOSSC_CG_ROWS");
    return !force ? -1 : !strcmp(force, "across") ? 1 : !strcmp(force, "along") ? 0 : -1;
}

/* True when version 0 of sweep sw runs (at the root body of f). */
static LLVMValueRef version_cond(cg_fn *f, const sched_sweep *sw, int kind, const bool *spec)
{
    const sched_plan *p = f->p;
    at(f, 0, CH_BODY);
    if (kind == SW_ROWS) {
        /* the work of a row, empty dims counted as 1: no inner dim is
         * larger, so the across body can stage every row */
        LLVMValueRef work = i64c(f, 1);
        IR_DIMSET_FOREACH(d, sched_inner_dims(p, sw))
            work = LLVMBuildMul(f->b, work, imax(f, f->size[d], i64c(f, 1)), "");
        int force = forced_rows();
        if (force == 0)
            return LLVMConstInt(LLVMInt1TypeInContext(f->ctx), 0, 0);
        int64_t limit = force == 1 ? CG_STAGE_COLS + 1 : 2 * (int64_t)f->W1;
        return LLVMBuildICmp(f->b, LLVMIntSLT, work, i64c(f, limit), "short");
    }
    /* if every specialized input holds its default: the fast body */
    cv env[IR_MAX_DIMS];
    memset(env, 0, sizeof env);
    LLVMValueRef all = LLVMConstInt(LLVMInt1TypeInContext(f->ctx), 1, 0);
    for (int i = 0; i < p->g->ninputs; i++)
        if (spec[i]) {
            const ir_input *in = &p->g->inputs[i];
            cv v = cg_eval(f, in->node, env);
            at(f, 0, CH_BODY);
            LLVMValueRef d = LLVMConstReal(ty_scalar(f, in->dtype), in->default_value);
            all = LLVMBuildAnd(f->b, all, LLVMBuildFCmp(f->b, LLVMRealOEQ, v.v, d, ""), "");
        }
    return all;
}

void cg_sweep_symbol(char *buf, size_t n, const char *symbol, int s, int v)
{
    snprintf(buf, n, "%s.sweep%d%s", symbol, s, v ? ".v1" : "");
}

static LLVMValueRef build_sweep(LLVMModuleRef m, const cg_target *t, kctx *k, int swi,
                                int version, const char *symbol, strbuf *err, bool *failed)
{
    const sched_plan *p = k->p;
    const sched_sweep *sw = &p->sweeps[swi];
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    LLVMTypeRef params[2] = {k->ptr, k->i64};
    LLVMTypeRef fty = LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 2, 0);
    char name[512];
    cg_sweep_symbol(name, sizeof name, symbol, swi, version);
    LLVMValueRef fn = LLVMAddFunction(m, name, fty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    cg_fn f;
    fn_init(&f, m, t, p, fn, err);
    LLVMValueRef frame = LLVMGetParam(fn, 0);
    at(&f, 0, CH_HOIST);
    LLVMValueRef args = LLVMBuildLoad2(f.b, k->ptr, frame_slot(&f, k, frame, FR_ARGS), "args");
    load_frame(&f, k, args);
    at(&f, 0, CH_HOIST);
    LLVMValueRef rows = LLVMBuildLoad2(f.b, k->i64, frame_slot(&f, k, frame, FR_ROWS), "rows");
    for (int s = 0; s < p->nsinks; s++)
        if (p->sinks[s].kind == SINK_REDUCE || p->sinks[s].kind == SINK_STORE)
            f.mat_ptr[s] = LLVMBuildLoad2(f.b, k->ptr, frame_slot(&f, k, frame, slot_mat(s)), "");

    sweep_ctx c = {.k = k, .sw = sw, .chunk = LLVMGetParam(fn, 1)};
    f.sweep = sw;
    f.arith_bound = sweep_is_arithmetic_bound(p, sw);
    c.aux = sup_calloc((size_t)p->nsinks + 1, sizeof *c.aux);
    c.acc = sup_calloc((size_t)p->nsinks + 1, sizeof *c.acc);
    c.lo = LLVMBuildMul(f.b, c.chunk, rows, "lo");
    c.hi = imin(&f, LLVMBuildAdd(f.b, c.lo, rows, ""), f.size[sw->outer]);
    at(&f, 0, CH_BODY);
    const sched_sink **ss = sup_malloc(sizeof *ss * (size_t)(sw->nsinks + 1));
    for (int i = 0; i < sw->nsinks; i++) {
        int s = sw->sinks[i];
        const sched_sink *sk = &p->sinks[s];
        ss[i] = sk;
        if (sk->kind == SINK_CHECK) {
            LLVMValueRef base = LLVMBuildLoad2(f.b, k->ptr, frame_slot(&f, k, frame, slot_aux(s)), "");
            LLVMValueRef off = LLVMBuildMul(f.b, c.chunk, i64c(&f, 4), "");
            c.aux[s] = LLVMBuildGEP2(f.b, k->i64, base, &off, 1, "");
            LLVMBuildStore(f.b, i64c(&f, 0), c.aux[s]);
        } else if (sk->kind == SINK_REDUCE && !sk->rows_owned) {
            int pdt = partial_dt(sk->node);
            LLVMValueRef base = LLVMBuildLoad2(f.b, k->ptr, frame_slot(&f, k, frame, slot_aux(s)), "");
            LLVMValueRef off = LLVMBuildMul(f.b, c.chunk, partial_slot(&f, sk), "");
            c.aux[s] = LLVMBuildGEP2(f.b, ty_mem(&f, pdt), base, &off, 1, "");
            fill_identity(&f, c.aux[s], pdt, sk->node->op, result_count(&f, sk));
        }
    }
    bool *spec = sup_calloc((size_t)p->g->ninputs + 1, 1);
    int kind = sweep_kind(p, sw, spec);
    at(&f, 0, CH_BODY);
    if (kind == SW_ROWS && version == 0) {
        c.across_rows = true;
        f.W = f.W1; /* see fn_init */
        f.staged = true;
        c.stage = sup_calloc((size_t)p->nsinks + 1, sizeof *c.stage);
        c.block = sup_calloc((size_t)p->nsinks + 1, sizeof *c.block);
        for (int i = 0; i < sw->nsinks; i++)
            if (staged_output(&f, ss[i])) {
                int dt = p->g->outputs[ss[i]->output].node->dtype;
                c.stage[ss[i] - p->sinks] = cg_stage_alloca(&f, dt, "stage.out");
                c.block[ss[i] - p->sinks] = cg_stage_alloca(&f, dt, "stage.block");
            }
    } else if (kind == SW_SPEC && version == 0) {
        f.spec = spec;
    } else if (kind == SW_SPEC) {
        f.W = f.W1; /* see fn_init */
    }
    emit_tree(&f, &c, ss, sw->nsinks, 0);
    f.spec = NULL;
    sup_free(spec);
    if (f.streamed) { /* non-temporal stores are weakly ordered: fence them */
        at(&f, 0, CH_BODY);
        call_intrinsic(&f, "llvm.x86.sse.sfence", NULL, 0, NULL, 0);
    }
    fn_finish(&f, NULL);
    if (f.failed)
        *failed = true;
    sup_free(ss);
    sup_free(c.aux);
    sup_free(c.acc);
    sup_free(c.stage);
    sup_free(c.block);
    fn_free(&f);
    return fn;
}

/* ---- the kernel function -------------------------------------------------------------- */

/* error->{code, check, value, position} when error is not NULL; then fail. */
static void store_error(cg_fn *f, kctx *k, int32_t code, LLVMValueRef check, LLVMValueRef value,
                        LLVMValueRef pos)
{
    LLVMValueRef four = i64c(f, 4);
    LLVMValueRef errp = LLVMBuildLoad2(f->b, k->ptr, LLVMBuildGEP2(f->b, k->ptr, f->args, &four, 1, ""),
                                       "error");
    LLVMBasicBlockRef fill = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "err.fill");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "err.done");
    LLVMBuildCondBr(f->b, LLVMBuildIsNull(f->b, errp, ""), done, fill);
    LLVMPositionBuilderAtEnd(f->b, fill);
    LLVMValueRef one = i64c(f, 1), two = i64c(f, 2);
    LLVMBuildStore(f->b, LLVMConstInt(k->i32, (unsigned long long)code, 0), errp);
    LLVMBuildStore(f->b, check, LLVMBuildGEP2(f->b, k->i32, errp, &one, 1, ""));
    LLVMBuildStore(f->b, value, LLVMBuildGEP2(f->b, k->i64, errp, &one, 1, ""));
    LLVMBuildStore(f->b, pos, LLVMBuildGEP2(f->b, k->i64, errp, &two, 1, ""));
    LLVMBuildBr(f->b, done);
    LLVMPositionBuilderAtEnd(f->b, done);
}

typedef struct kernel_state {
    kctx *k;
    LLVMValueRef frame, scratch, fail_bb_free;
    LLVMBasicBlockRef fail;    /* free scratch; return LK_ERR_INDEX */
    LLVMValueRef *rows, *chunks; /* per sweep */
    LLVMValueRef *aux;           /* per sink: partials / check slots base */
    LLVMValueRef free_fn;
    LLVMTypeRef free_ty;
} kernel_state;

/* The function sweep swi runs in this call (at the root body, before any
 * sweep runs): its only version, or the one version_cond picks; with lazy,
 * a run-time pick goes through the table, compiling the version if need be
 * (see cg_lazy). */
static LLVMValueRef sweep_function(cg_fn *f, kernel_state *ks, int swi,
                                   LLVMValueRef const sweep_fn[2], cg_lazy *lazy)
{
    kctx *k = ks->k;
    if (!sweep_fn[1])
        return sweep_fn[0];
    bool *spec = sup_calloc((size_t)f->p->g->ninputs + 1, 1);
    const sched_sweep *sw = &f->p->sweeps[swi];
    int kind = sweep_kind(f->p, sw, spec);
    LLVMValueRef cond = version_cond(f, sw, kind, spec);
    sup_free(spec);
    at_body(f);
    if (!lazy || LLVMIsConstant(cond)) /* a constant: the other version is never used */
        return LLVMBuildSelect(f->b, cond, sweep_fn[0], sweep_fn[1], "sweep");
    if (lazy->likely) /* the default exponent; rows of at least two vectors (unless forced) */
        lazy->likely[swi] = kind == SW_SPEC || forced_rows() == 1 ? 0 : 1;
    LLVMValueRef slot = LLVMBuildSelect(f->b, cond, LLVMConstInt(k->i32, 2 * (unsigned)swi, 0),
                                        LLVMConstInt(k->i32, 2 * (unsigned)swi + 1, 0), "slot");
    LLVMValueRef table = LLVMConstIntToPtr(i64c(f, (int64_t)(uintptr_t)lazy->table), k->ptr);
    LLVMValueRef at_slot = LLVMBuildZExt(f->b, slot, k->i64, "");
    LLVMValueRef entry = LLVMBuildGEP2(f->b, k->ptr, table, &at_slot, 1, "");
    LLVMValueRef have = LLVMBuildLoad2(f->b, k->ptr, entry, "version");
    LLVMSetOrdering(have, LLVMAtomicOrderingAcquire);
    LLVMSetAlignment(have, 8);
    LLVMBasicBlockRef from = LLVMGetInsertBlock(f->b);
    LLVMBasicBlockRef compile = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "version.compile");
    LLVMBasicBlockRef failed = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "version.failed");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "version.ready");
    LLVMBuildCondBr(f->b, LLVMBuildIsNull(f->b, have, ""), compile, done);
    LLVMPositionBuilderAtEnd(f->b, compile);
    LLVMTypeRef rty = LLVMFunctionType(k->ptr, (LLVMTypeRef[]){k->ptr, k->i32}, 2, 0);
    LLVMValueRef resolve = LLVMConstIntToPtr(i64c(f, (int64_t)(uintptr_t)lazy->resolve), k->ptr);
    LLVMValueRef ctx = LLVMConstIntToPtr(i64c(f, (int64_t)(uintptr_t)lazy->ctx), k->ptr);
    LLVMValueRef made = LLVMBuildCall2(f->b, rty, resolve, (LLVMValueRef[]){ctx, slot}, 2, "");
    LLVMBuildCondBr(f->b, LLVMBuildIsNull(f->b, made, ""), failed, done);
    LLVMPositionBuilderAtEnd(f->b, failed);
    store_error(f, k, LK_ERR_COMPILE, slot, i64c(f, 0), i64c(f, 0));
    LLVMBuildRet(f->b, LLVMConstInt(k->i32, LK_ERR_COMPILE, 0));
    LLVMPositionBuilderAtEnd(f->b, done);
    LLVMValueRef fn = LLVMBuildPhi(f->b, k->ptr, "sweep");
    LLVMAddIncoming(fn, (LLVMValueRef[]){have, made}, (LLVMBasicBlockRef[]){from, compile}, 2);
    f->scopes[0].tail[CH_BODY] = done;
    return fn;
}

static void run_sweep(cg_fn *f, kernel_state *ks, int swi, LLVMValueRef fn)
{
    kctx *k = ks->k;
    LLVMTypeRef sweep_ty = LLVMFunctionType(LLVMVoidTypeInContext(f->ctx),
                                            (LLVMTypeRef[]){k->ptr, k->i64}, 2, 0);
    at_body(f);
    LLVMBuildStore(f->b, ks->rows[swi], frame_slot(f, k, ks->frame, FR_ROWS));
    LLVMValueRef two = i64c(f, 2), three = i64c(f, 3);
    LLVMValueRef par = LLVMBuildLoad2(f->b, k->ptr, LLVMBuildGEP2(f->b, k->ptr, f->args, &two, 1, ""), "parallel");
    LLVMValueRef pool = LLVMBuildLoad2(f->b, k->ptr, LLVMBuildGEP2(f->b, k->ptr, f->args, &three, 1, ""), "pool");
    LLVMValueRef use_par = LLVMBuildAnd(f->b, LLVMBuildIsNotNull(f->b, par, ""),
                                        LLVMBuildICmp(f->b, LLVMIntSGT, ks->chunks[swi], i64c(f, 1), ""), "");
    LLVMBasicBlockRef pb = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "parallel");
    LLVMBasicBlockRef sb = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "serial");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "swept");
    LLVMBuildCondBr(f->b, use_par, pb, sb);
    LLVMPositionBuilderAtEnd(f->b, pb);
    LLVMTypeRef par_ty = LLVMFunctionType(LLVMVoidTypeInContext(f->ctx),
                                          (LLVMTypeRef[]){k->ptr, k->ptr, k->ptr, k->i64}, 4, 0);
    LLVMBuildCall2(f->b, par_ty, par, (LLVMValueRef[]){pool, fn, ks->frame, ks->chunks[swi]},
                   4, "");
    LLVMBuildBr(f->b, join);
    f->scopes[0].tail[CH_BODY] = sb;
    LLVMValueRef c = scope_open_loop(f, CH_BODY, i64c(f, 0), ks->chunks[swi], false, -1);
    at_body(f);
    LLVMBuildCall2(f->b, sweep_ty, fn, (LLVMValueRef[]){ks->frame, c}, 2, "");
    scope_close(f);
    at_body(f);
    LLVMBuildBr(f->b, join);
    f->scopes[0].tail[CH_BODY] = join;
    at_body(f);
}

/* After a sweep: the first failed check, in check order then chunk order. */
static void scan_checks(cg_fn *f, kernel_state *ks, int swi)
{
    const sched_plan *p = f->p;
    const sched_sweep *sw = &p->sweeps[swi];
    kctx *k = ks->k;
    for (int i = 0; i < sw->nsinks; i++) {
        const sched_sink *s = &p->sinks[sw->sinks[i]];
        if (s->kind != SINK_CHECK)
            continue;
        LLVMValueRef c = scope_open_loop(f, CH_BODY, i64c(f, 0), ks->chunks[swi], false, -1);
        at_body(f);
        LLVMValueRef off = LLVMBuildMul(f->b, c, i64c(f, 4), "");
        LLVMValueRef slot = LLVMBuildGEP2(f->b, k->i64, ks->aux[sw->sinks[i]], &off, 1, "");
        LLVMValueRef flag = LLVMBuildLoad2(f->b, k->i64, slot, "");
        LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "check.report");
        branch_out_if(f, LLVMBuildICmp(f->b, LLVMIntNE, flag, i64c(f, 0), ""), bad);
        LLVMPositionBuilderAtEnd(f->b, bad);
        LLVMValueRef one = i64c(f, 1), two = i64c(f, 2);
        LLVMValueRef value = LLVMBuildLoad2(f->b, k->i64, LLVMBuildGEP2(f->b, k->i64, slot, &one, 1, ""), "");
        LLVMValueRef pos = LLVMBuildLoad2(f->b, k->i64, LLVMBuildGEP2(f->b, k->i64, slot, &two, 1, ""), "");
        store_error(f, k, LK_ERR_INDEX, LLVMConstInt(k->i32, (unsigned long long)s->check, 0), value, pos);
        LLVMBuildBr(f->b, ks->fail);
        scope_close(f);
        at_body(f);
    }
}

/* Fold the partials of every reduction of the sweep, in chunk order. */
static void fold_partials(cg_fn *f, kernel_state *ks, int swi)
{
    const sched_plan *p = f->p;
    const sched_sweep *sw = &p->sweeps[swi];
    for (int i = 0; i < sw->nsinks; i++) {
        int si = sw->sinks[i];
        const sched_sink *s = &p->sinks[si];
        if (s->kind != SINK_REDUCE || s->rows_owned)
            continue;
        int pdt = partial_dt(s->node), op = s->node->op;
        LLVMTypeRef pt = ty_mem(f, pdt);
        at_body(f);
        LLVMValueRef count = result_count(f, s), slot = partial_slot(f, s);
        LLVMValueRef acc = entry_alloca(f, pt, "fold");
        LLVMValueRef e = scope_open_loop(f, CH_BODY, i64c(f, 0), count, false, -1);
        at_body(f);
        LLVMBuildStore(f->b, red_identity(f, op, pdt, false), acc);
        LLVMValueRef c = scope_open_loop(f, CH_BODY, i64c(f, 0), ks->chunks[swi], false, -1);
        at_body(f);
        LLVMValueRef off = LLVMBuildAdd(f->b, LLVMBuildMul(f->b, c, slot, ""), e, "");
        LLVMValueRef v = LLVMBuildLoad2(f->b, pt, LLVMBuildGEP2(f->b, pt, ks->aux[si], &off, 1, ""), "");
        LLVMValueRef old = LLVMBuildLoad2(f->b, pt, acc, "");
        LLVMValueRef sum = red_combine(f, op, pdt, old, v);
        /* the fold across chunks is in a fixed order: no reassociation */
        if (LLVMIsAInstruction(sum) && LLVMCanValueUseFastMathFlags(sum))
            LLVMSetFastMathFlags(sum, 0);
        LLVMBuildStore(f->b, sum, acc);
        scope_close(f);
        at_body(f);
        LLVMValueRef total = LLVMBuildLoad2(f->b, pt, acc, "");
        LLVMTypeRef rt = ty_mem(f, s->node->dtype);
        if (pdt != s->node->dtype)
            total = ir_dtype_is_float((ir_dtype)pdt) ? LLVMBuildFPCast(f->b, total, rt, "")
                                                     : LLVMBuildIntCast2(f->b, total, rt, 1, "");
        LLVMBuildStore(f->b, total, LLVMBuildGEP2(f->b, rt, f->mat_ptr[si], &e, 1, ""));
        scope_close(f);
        at_body(f);
    }
}

/* Scalar sinks of a level, in the kernel itself. */
static void serial_sinks(cg_fn *f, kernel_state *ks, const sched_sweep *sw)
{
    const sched_plan *p = f->p;
    kctx *k = ks->k;
    cv env[IR_MAX_DIMS];
    memset(env, 0, sizeof env);
    for (int i = 0; i < sw->nsinks; i++) {
        const sched_sink *s = &p->sinks[sw->sinks[i]];
        cv v = cg_eval(f, s->node, env);
        at_body(f);
        if (s->kind == SINK_OUTPUT) {
            cg_store(f, f->out_ptr[s->output], s->node->dtype, NULL, 0, env, &v, NULL);
        } else if (s->kind == SINK_CHECK) {
            const sched_check *chk = &p->checks[s->check];
            LLVMValueRef iv = LLVMBuildIntCast2(f->b, v.v, k->i64, 1, "");
            LLVMValueRef bad = LLVMBuildOr(f->b, LLVMBuildICmp(f->b, LLVMIntSLT, iv, i64c(f, 0), ""),
                                           LLVMBuildICmp(f->b, LLVMIntSGE, iv, f->size[chk->dim], ""), "");
            LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "check.report");
            branch_out_if(f, bad, bb);
            LLVMPositionBuilderAtEnd(f->b, bb);
            store_error(f, k, LK_ERR_INDEX, LLVMConstInt(k->i32, (unsigned long long)s->check, 0),
                        iv, i64c(f, 0));
            LLVMBuildBr(f->b, ks->fail);
            at_body(f);
        }
    }
}

static LLVMValueRef call_libc(cg_fn *f, const char *name, LLVMTypeRef ret, LLVMTypeRef arg,
                              LLVMValueRef x)
{
    LLVMTypeRef fty = LLVMFunctionType(ret, &arg, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, name);
    if (!fn)
        fn = LLVMAddFunction(f->mod, name, fty);
    return LLVMBuildCall2(f->b, fty, fn, &x, 1, "");
}

/* Does the kernel function itself (its sweeps apart) run O(chunks)
 * operations? Every partial it folds is a scalar. */
static bool kernel_is_light(const sched_plan *p)
{
    for (int s = 0; s < p->nsinks; s++) {
        const sched_sink *sk = &p->sinks[s];
        if (sk->kind == SINK_REDUCE && !sk->rows_owned && sk->node->dims)
            return false;
    }
    return true;
}

LLVMValueRef cg_lower(LLVMModuleRef m, const cg_target *t, const sched_plan *p,
                      const char *symbol, cg_lazy *lazy, strbuf *err)
{
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    kctx k = {.p = p};
    k.i64 = LLVMInt64TypeInContext(ctx);
    k.i32 = LLVMInt32TypeInContext(ctx);
    k.ptr = LLVMPointerTypeInContext(ctx, 0);
    k.nslots = FR_FIRST + 2 * p->nsinks;
    k.frame_ty = LLVMArrayType(k.i64, (unsigned)k.nslots);
    bool failed = false;

    /* per sweep, its version 0 and 1 (or NULL) */
    LLVMValueRef(*sweep_fn)[2] = sup_calloc((size_t)p->nsweeps + 1, sizeof *sweep_fn);
    bool *spec = sup_calloc((size_t)p->g->ninputs + 1, 1);
    for (int s = 0; s < p->nsweeps; s++)
        if (p->sweeps[s].outer >= 0) {
            memset(spec, 0, (size_t)p->g->ninputs + 1);
            int versions = sweep_kind(p, &p->sweeps[s], spec) == SW_ONE ? 1 : 2;
            for (int v = 0; v < versions; v++)
                sweep_fn[s][v] = build_sweep(m, t, &k, s, v, symbol, err, &failed);
        }
    sup_free(spec);

    LLVMTypeRef kty = LLVMFunctionType(k.i32, &k.ptr, 1, 0);
    LLVMValueRef fn = LLVMAddFunction(m, symbol, kty);
    cg_fn f;
    fn_init(&f, m, t, p, fn, err);
    load_frame(&f, &k, LLVMGetParam(fn, 0));
    kernel_state ks = {.k = &k};
    ks.rows = sup_calloc((size_t)p->nsweeps + 1, sizeof *ks.rows);
    ks.chunks = sup_calloc((size_t)p->nsweeps + 1, sizeof *ks.chunks);
    ks.aux = sup_calloc((size_t)p->nsinks + 1, sizeof *ks.aux);
    ks.frame = entry_alloca(&f, k.frame_ty, "frame");

    /* which version of each sweep runs: known before any runs */
    LLVMValueRef *sweep_entry = sup_calloc((size_t)p->nsweeps + 1, sizeof *sweep_entry);
    for (int s = 0; s < p->nsweeps; s++) {
        if (lazy && lazy->likely)
            lazy->likely[s] = -1;
        if (p->sweeps[s].outer >= 0)
            sweep_entry[s] = sweep_function(&f, &ks, s, sweep_fn[s], lazy);
    }

    /* the scratch layout, from the sizes */
    at(&f, 0, CH_BODY);
    for (int s = 0; s < p->nsweeps; s++)
        if (p->sweeps[s].outer >= 0) {
            ks.rows[s] = sweep_rows(&f, &p->sweeps[s]);
            ks.chunks[s] = sweep_chunks(&f, &p->sweeps[s], ks.rows[s]);
        }
    LLVMValueRef *mat_off = sup_calloc((size_t)p->nsinks + 1, sizeof *mat_off);
    LLVMValueRef *aux_off = sup_calloc((size_t)p->nsinks + 1, sizeof *aux_off);
    LLVMValueRef total = i64c(&f, 0);
    for (int s = 0; s < p->nsinks; s++) {
        const sched_sink *sk = &p->sinks[s];
        LLVMValueRef bytes = NULL, aux = NULL;
        if (sk->kind == SINK_REDUCE || sk->kind == SINK_STORE) {
            bytes = LLVMBuildMul(f.b, result_count(&f, sk),
                                 i64c(&f, (int64_t)ir_dtype_size((ir_dtype)sk->node->dtype)), "");
            if (sk->kind == SINK_REDUCE && !sk->rows_owned)
                aux = LLVMBuildMul(f.b, LLVMBuildMul(f.b, partial_slot(&f, sk), ks.chunks[sk->sweep], ""),
                                   i64c(&f, (int64_t)ir_dtype_size((ir_dtype)partial_dt(sk->node))), "");
        } else if (sk->kind == SINK_CHECK && sk->depth > 0) {
            aux = LLVMBuildMul(f.b, ks.chunks[sk->sweep], i64c(&f, 32), "");
        }
        if (bytes) {
            mat_off[s] = total;
            total = LLVMBuildAdd(f.b, total, LLVMBuildMul(f.b, ceil_div(&f, bytes, i64c(&f, 64)), i64c(&f, 64), ""), "");
        }
        if (aux) {
            aux_off[s] = total;
            total = LLVMBuildAdd(f.b, total, LLVMBuildMul(f.b, ceil_div(&f, aux, i64c(&f, 64)), i64c(&f, 64), ""), "");
        }
    }
    ks.scratch = call_libc(&f, "malloc", k.ptr, k.i64, LLVMBuildAdd(f.b, total, i64c(&f, 64), ""));
    LLVMBasicBlockRef nomem = LLVMAppendBasicBlockInContext(ctx, fn, "nomem");
    branch_out_if(&f, LLVMBuildIsNull(f.b, ks.scratch, ""), nomem);
    LLVMPositionBuilderAtEnd(f.b, nomem);
    store_error(&f, &k, LK_ERR_NOMEM, LLVMConstInt(k.i32, 0, 0), i64c(&f, 0), i64c(&f, 0));
    LLVMBuildRet(f.b, LLVMConstInt(k.i32, LK_ERR_NOMEM, 0));
    at(&f, 0, CH_BODY);
    /* 64-byte aligned base */
    LLVMValueRef addr = LLVMBuildPtrToInt(f.b, ks.scratch, k.i64, "");
    LLVMValueRef pad = LLVMBuildAnd(f.b, LLVMBuildSub(f.b, i64c(&f, 0), addr, ""), i64c(&f, 63), "");
    LLVMValueRef base = LLVMBuildGEP2(f.b, LLVMInt8TypeInContext(ctx), ks.scratch, &pad, 1, "");
    LLVMBuildStore(f.b, LLVMGetParam(fn, 0), frame_slot(&f, &k, ks.frame, FR_ARGS));
    for (int s = 0; s < p->nsinks; s++) {
        if (mat_off[s]) {
            f.mat_ptr[s] = LLVMBuildGEP2(f.b, LLVMInt8TypeInContext(ctx), base, &mat_off[s], 1, "");
            LLVMBuildStore(f.b, f.mat_ptr[s], frame_slot(&f, &k, ks.frame, slot_mat(s)));
        }
        if (aux_off[s]) {
            ks.aux[s] = LLVMBuildGEP2(f.b, LLVMInt8TypeInContext(ctx), base, &aux_off[s], 1, "");
            LLVMBuildStore(f.b, ks.aux[s], frame_slot(&f, &k, ks.frame, slot_aux(s)));
        }
    }
    sup_free(mat_off);
    sup_free(aux_off);

    ks.fail = LLVMAppendBasicBlockInContext(ctx, fn, "fail");
    LLVMPositionBuilderAtEnd(f.b, ks.fail);
    call_libc(&f, "free", LLVMVoidTypeInContext(ctx), k.ptr, ks.scratch);
    LLVMBuildRet(f.b, LLVMConstInt(k.i32, LK_ERR_INDEX, 0));

    for (int lv = 1; lv <= p->nlevels; lv++) {
        scope_rebase_root(&f);
        for (int s = 0; s < p->nsweeps; s++) {
            const sched_sweep *sw = &p->sweeps[s];
            if (sw->level != lv)
                continue;
            if (sw->outer >= 0) {
                run_sweep(&f, &ks, s, sweep_entry[s]);
                scan_checks(&f, &ks, s);
                fold_partials(&f, &ks, s);
            } else {
                scope_rebase_root(&f);
                serial_sinks(&f, &ks, sw);
            }
        }
    }
    at(&f, 0, CH_BODY);
    call_libc(&f, "free", LLVMVoidTypeInContext(ctx), k.ptr, ks.scratch);
    fn_finish(&f, LLVMConstInt(k.i32, LK_OK, 0));
    failed |= f.failed;
    fn_free(&f);
    sup_free(ks.rows);
    sup_free(ks.chunks);
    sup_free(ks.aux);
    if (kernel_is_light(p))
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(ctx, CG_ATTR_LIGHT,
                                                          (unsigned)strlen(CG_ATTR_LIGHT), "", 0));
    sup_free(sweep_fn);
    sup_free(sweep_entry);
    return failed ? NULL : fn;
}
