/* lower_scope.c - scopes (root, loops, masked tails), their block chains, and
 * the memo of values per (node, index environment). See lower.h. */
#include "codegen/lower.h"

#include <stdlib.h>
#include <string.h>

static LLVMBasicBlockRef new_block(cg_fn *f, const char *name)
{
    return LLVMAppendBasicBlockInContext(f->ctx, f->fn, name);
}

bool cg_transcendental(int op)
{
    switch (op) {
    case OP_EXP: case OP_EXPM1: case OP_LOG: case OP_LOG1P: case OP_TANH:
    case OP_SIGMOID: case OP_SOFTPLUS: case OP_POW: return true;
    default: return false;
    }
}

void fn_init(cg_fn *f, LLVMModuleRef m, const cg_target *t, const sched_plan *p,
             LLVMValueRef fn, strbuf *err)
{
    memset(f, 0, sizeof *f);
    f->mod = m;
    f->ctx = LLVMGetModuleContext(m);
    f->b = LLVMCreateBuilderInContext(f->ctx);
    f->fn = fn;
    f->p = p;
    f->g = p->g;
    f->t = t;
    f->err = err;
    arena_init(&f->mem);
    /* W lanes of the narrowest float in the kernel (f32 unless all f64). */
    int bits = 64;
    bool math = false;
    for (uint32_t i = 0; i < p->g->nnodes; i++) {
        if (p->g->nodes[i]->dtype == DT_F32)
            bits = 32;
        math |= cg_transcendental(p->g->nodes[i]->op);
    }
    f->W = f->W1 = t->vector_bits / bits < 2 ? 2 : t->vector_bits / bits;
    /* With exp/log/... the body is one long dependency chain per vector
     * (exp, a division, log: ~180 cycles), longer than the out-of-order
     * window can overlap with the next iteration. Two registers per lane
     * group (W = 16 f32 on AVX2; LLVM splits each operation in two,
     * interleaved) give it two independent chains: bce 14.7 -> 11.3 ms,
     * focal 17.8 -> 14.1, dice 13.0 -> 11.1 (2^22, one thread), for about
     * a third more machine-code time. AVX-512 has twice the registers and
     * the width already. LOSSC_CG_LANES=1|2 (developers) overrides. The
     * across-rows body (bound by its gathers) and the general body of a
     * sweep specialized on defaults (f32 pow computes in f64: four
     * registers a value) keep W1 lanes: they would double the machine-code
     * time for nothing or for the uncommon case. */
    const char *lanes = getenv("LOSSC_CG_LANES");
    if (lanes && *lanes ? atoi(lanes) == 2 : math && t->vector_bits <= 256)
        f->W *= 2;
    f->entry = new_block(f, "entry");
    cg_scope *r = &f->scopes[0];
    r->kind = SC_ROOT;
    r->gen = ++f->next_gen;
    r->header = new_block(f, "root");
    r->tail[CH_HOIST] = r->header;
    r->body_first = new_block(f, "body");
    r->tail[CH_BODY] = r->body_first;
    r->vpos = -1;
    f->depth = 0;
    LLVMTypeRef i64 = LLVMInt64TypeInContext(f->ctx);
    LLVMValueRef zg = LLVMGetNamedGlobal(m, "lossc.zero");
    if (!zg) {
        LLVMTypeRef at = LLVMArrayType(i64, 32);
        zg = LLVMAddGlobal(m, at, "lossc.zero");
        LLVMSetInitializer(zg, LLVMConstNull(at));
        LLVMSetGlobalConstant(zg, 1);
        LLVMSetLinkage(zg, LLVMPrivateLinkage);
        LLVMSetAlignment(zg, 64);
    }
    f->zero_block = zg;
    at(f, 0, CH_BODY);
}

void fn_finish(cg_fn *f, LLVMValueRef ret)
{
    cg_scope *r = &f->scopes[0];
    LLVMPositionBuilderAtEnd(f->b, f->entry);
    LLVMBuildBr(f->b, r->header);
    LLVMPositionBuilderAtEnd(f->b, r->tail[CH_HOIST]);
    LLVMBuildBr(f->b, r->body_first);
    LLVMPositionBuilderAtEnd(f->b, r->tail[CH_BODY]);
    if (ret)
        LLVMBuildRet(f->b, ret);
    else
        LLVMBuildRetVoid(f->b);
}

void fn_free(cg_fn *f)
{
    LLVMDisposeBuilder(f->b);
    sup_free(f->memo);
    sup_free(f->memo_table);
    arena_free(&f->mem);
}

void at(cg_fn *f, int depth, int chain)
{
    LLVMPositionBuilderAtEnd(f->b, f->scopes[depth].tail[chain]);
}

void at_body(cg_fn *f) { at(f, f->depth, CH_BODY); }

LLVMValueRef entry_alloca(cg_fn *f, LLVMTypeRef ty, const char *name)
{
    LLVMBuilderRef b = LLVMCreateBuilderInContext(f->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(f->entry);
    if (first)
        LLVMPositionBuilderBefore(b, first);
    else
        LLVMPositionBuilderAtEnd(b, f->entry);
    LLVMValueRef a = LLVMBuildAlloca(b, ty, name);
    LLVMDisposeBuilder(b);
    return a;
}

static cg_scope *push_scope(cg_fn *f, int kind, int chain)
{
    if (f->depth + 1 >= (int)SUP_ARRAY_LEN(f->scopes))
        sup_fatal("codegen: loop nest too deep");
    cg_scope *parent = &f->scopes[f->depth];
    cg_scope *s = &f->scopes[++f->depth];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->gen = ++f->next_gen;
    s->parent_chain = chain;
    s->mask = parent->mask;
    s->full = parent->full;
    s->last = parent->last;
    s->vpos = parent->vpos;
    return s;
}

LLVMValueRef scope_open_loop(cg_fn *f, int chain, LLVMValueRef lo, LLVMValueRef hi,
                             bool vector, int vpos)
{
    cg_scope *s = push_scope(f, SC_LOOP, chain);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(f->ctx);
    s->header = new_block(f, "loop");
    s->tail[CH_HOIST] = new_block(f, "hoist");
    s->body_first = new_block(f, "do");
    s->tail[CH_BODY] = s->body_first;
    s->latch = new_block(f, "next");
    s->exit = new_block(f, "done");
    s->lo = lo;
    s->hi = hi;
    s->step = i64c(f, vector ? f->W : 1);
    if (vector)
        s->vpos = vpos;
    LLVMPositionBuilderAtEnd(f->b, s->header);
    s->index = LLVMBuildPhi(f->b, i64, "i");
    LLVMValueRef cond = LLVMBuildICmp(f->b, LLVMIntSLT, s->index, hi, "");
    LLVMBuildCondBr(f->b, cond, s->tail[CH_HOIST], s->exit);
    if (vector) {
        /* Every iteration but the last has all W lanes live; the last has
         * rem = (hi - lo) - W floor((hi - lo - 1) / W) of them. Its mask is
         * computed once before the loop (in the parent's chain), so each
         * iteration only picks all-true or it. */
        cg_scope *parent = &f->scopes[f->depth - 1];
        LLVMPositionBuilderAtEnd(f->b, parent->tail[chain]);
        LLVMTypeRef i32 = LLVMInt32TypeInContext(f->ctx);
        LLVMValueRef lanes[64];
        for (int i = 0; i < f->W; i++)
            lanes[i] = LLVMConstInt(i32, (unsigned long long)i, 0);
        LLVMValueRef n = LLVMBuildSub(f->b, hi, lo, "");
        LLVMValueRef rem = LLVMBuildSub(
            f->b, n,
            LLVMBuildMul(f->b, LLVMBuildSDiv(f->b, LLVMBuildSub(f->b, n, i64c(f, 1), ""),
                                             s->step, ""), s->step, ""), "rem");
        LLVMValueRef last = LLVMBuildICmp(f->b, LLVMIntSLT, LLVMConstVector(lanes, (unsigned)f->W),
                                          splat(f, LLVMBuildTrunc(f->b, rem, i32, "")), "last");
        LLVMPositionBuilderAtEnd(f->b, s->tail[CH_HOIST]);
        LLVMValueRef left = LLVMBuildSub(f->b, hi, s->index, "left");
        s->full = LLVMBuildICmp(f->b, LLVMIntSGE, left, s->step, "full");
        LLVMValueRef ones = LLVMConstAllOnes(LLVMVectorType(LLVMInt1TypeInContext(f->ctx),
                                                            (unsigned)f->W));
        s->mask = LLVMBuildSelect(f->b, s->full, ones, last, "mask");
        s->last = last;
    }
    LLVMPositionBuilderAtEnd(f->b, s->latch);
    s->next = LLVMBuildAdd(f->b, s->index, s->step, "i.next");
    LLVMBuildBr(f->b, s->header);
    LLVMAddIncoming(s->index, &s->next, &s->latch, 1);
    return s->index;
}

void scope_close(cg_fn *f)
{
    cg_scope *s = &f->scopes[f->depth];
    cg_scope *parent = &f->scopes[f->depth - 1];
    LLVMPositionBuilderAtEnd(f->b, s->tail[CH_HOIST]);
    LLVMBuildBr(f->b, s->body_first);
    LLVMPositionBuilderAtEnd(f->b, s->tail[CH_BODY]);
    LLVMBuildBr(f->b, s->latch);
    /* link the loop into its parent's chain, at that chain's end now */
    LLVMBasicBlockRef pred = parent->tail[s->parent_chain];
    LLVMPositionBuilderAtEnd(f->b, pred);
    LLVMBuildBr(f->b, s->header);
    LLVMAddIncoming(s->index, &s->lo, &pred, 1);
    parent->tail[s->parent_chain] = s->exit;
    f->depth--;
}

void scope_rebase_root(cg_fn *f)
{
    cg_scope *r = &f->scopes[0];
    LLVMPositionBuilderAtEnd(f->b, r->tail[CH_HOIST]);
    LLVMBuildBr(f->b, r->body_first);
    r->tail[CH_HOIST] = r->tail[CH_BODY];
    r->body_first = new_block(f, "stage");
    r->tail[CH_BODY] = r->body_first;
    at(f, 0, CH_BODY);
}

void branch_out_if(cg_fn *f, LLVMValueRef cond, LLVMBasicBlockRef err_bb)
{
    cg_scope *s = &f->scopes[f->depth];
    LLVMBasicBlockRef cont = new_block(f, "ok");
    LLVMPositionBuilderAtEnd(f->b, s->tail[CH_BODY]);
    LLVMBuildCondBr(f->b, cond, err_bb, cont);
    s->tail[CH_BODY] = cont;
    LLVMPositionBuilderAtEnd(f->b, cont);
}

/* ---- memo ---------------------------------------------------------------------- */

static uint64_t memo_hash(const ir_node *n, uint32_t tag, const cv *env)
{
    uint64_t h = sup_hash_mix(0x51ed + tag, n->id);
    IR_DIMSET_FOREACH(d, n->dims) {
        h = sup_hash_mix(h, (uint64_t)(uintptr_t)env[d].v);
        h = sup_hash_mix(h, (uint64_t)(uintptr_t)env[d].ok);
    }
    return h;
}

static bool memo_match(const cg_fn *f, const memo_entry *e, const ir_node *n, uint32_t tag,
                       const cv *env, uint64_t h)
{
    if (e->hash != h || e->node != n->id || e->tag != tag)
        return false;
    if (e->home > f->depth || f->scopes[e->home].gen != e->gen)
        return false; /* its scope has closed */
    int i = 0;
    IR_DIMSET_FOREACH(d, n->dims) {
        if (e->key[i].v != env[d].v || e->key[i].ok != env[d].ok)
            return false;
        i++;
    }
    return true;
}

memo_entry *memo_find(cg_fn *f, const ir_node *n, uint32_t tag, const cv *env, uint64_t *hash)
{
    uint64_t h = memo_hash(n, tag, env);
    *hash = h;
    if (!f->memo_table_cap)
        return NULL;
    size_t mask = f->memo_table_cap - 1;
    for (size_t i = h & mask; f->memo_table[i] != (size_t)-1; i = (i + 1) & mask)
        if (memo_match(f, &f->memo[f->memo_table[i]], n, tag, env, h))
            return &f->memo[f->memo_table[i]];
    return NULL;
}

void memo_clear(cg_fn *f)
{
    f->nmemo = 0;
    if (f->memo_table)
        memset(f->memo_table, 0xff, f->memo_table_cap * sizeof *f->memo_table);
}

static void memo_insert_index(cg_fn *f, size_t k)
{
    size_t mask = f->memo_table_cap - 1, i = f->memo[k].hash & mask;
    while (f->memo_table[i] != (size_t)-1)
        i = (i + 1) & mask;
    f->memo_table[i] = k;
}

void memo_put(cg_fn *f, const ir_node *n, uint32_t tag, const cv *env, uint64_t hash, cv val)
{
    if ((f->nmemo + 1) * 2 > f->memo_table_cap) {
        size_t cap = f->memo_table_cap ? f->memo_table_cap * 2 : 256;
        sup_free(f->memo_table);
        f->memo_table = sup_malloc(cap * sizeof *f->memo_table);
        memset(f->memo_table, 0xff, cap * sizeof *f->memo_table);
        f->memo_table_cap = cap;
        for (size_t k = 0; k < f->nmemo; k++)
            memo_insert_index(f, k);
    }
    SUP_GROW(f->memo, f->memo_cap, f->nmemo + 1);
    memo_entry *e = &f->memo[f->nmemo];
    e->node = n->id;
    e->tag = tag;
    e->hash = hash;
    e->home = cv_home(val.loops);
    if (e->home > f->depth)
        e->home = f->depth;
    e->gen = f->scopes[e->home].gen;
    e->key = ARENA_ARRAY(&f->mem, cv, ir_dimset_count(n->dims) + 1);
    int i = 0;
    IR_DIMSET_FOREACH(d, n->dims)
        e->key[i++] = env[d];
    e->val = val;
    memo_insert_index(f, f->nmemo++);
}
