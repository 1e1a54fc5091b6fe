/* fuse.c - the scheduler: which values are stored, which sweeps compute them.
 *
 * See fuse.h for the model. The work happens in four steps:
 *   1. prepare  copy the graph, expanding logsumexp into max + sum so that
 *               every reduction the lowering sees is a plain fold;
 *   2. orient   for every reduction, its natural loop order (result dims
 *               first for a row-wise reduction, reduced dims first for a
 *               column-wise one), from the memory layout of what it reads;
 *   3. store    which elementwise values read through gathers are stored
 *               rather than recomputed at every index they are read from;
 *   4. walk     every sink's expression with the symbolic index environment
 *               of its loop path, deciding for each reduction on the way
 *               whether it is inline or materialized (which makes a new sink)
 *               and recording each gather as a range check (another sink);
 *               a stored value met on the way makes a sink of its own;
 *   5. levels   order the sinks by dependency and group them into sweeps.
 */
#include "passes/fuse.h"

#include <string.h>

/* ---- 1. prepare ------------------------------------------------------------ */

/* lse(x) = where(isfinite(m), m + log(sum(exp(x - m))), m), m = max(x): the
 * interpreter's definition (an infinite or NaN max dominates). Each
 * expansion is remembered so that the softmax exp(x - lse(x)), which
 * autodiff makes for the gradient of any logsumexp, becomes
 *     where(isfinite(m), e / s, e),    e = exp(x - m), s = sum(e)
 * where e is the very node the sum folds: the lowering can then keep the
 * row's e from the sum's loop instead of computing every exp twice. (With
 * m finite, exp(x - m - log s) = e / s; with m infinite or NaN, lse = m.)
 * The same for the stabilizer's form exp(a - log(sum(exp(a)))) = exp(a) / s
 * (a = -inf gives 0 either way, NaN stays NaN). */
typedef struct lse_exp {
    const ir_node *lse, *x, *m, *e, *s;
} lse_exp;

typedef struct prepare_ctx {
    lse_exp *items;
    int n;
    size_t cap;
} prepare_ctx;

/* Sums with factors that wait for other reductions. Autodiff writes the
 * gradient of a weighted mean's weights as sum[n]([y[n] == c] * (g[n] - k)),
 * k = dloss * num / den^2 a scalar made of global sums: as written, the
 * sum waits for the numerator, a sweep over the logits, before its own
 * sweep over them can start. Split the summand into terms k_i * t_i with
 * each k_i free of the summed dims: sum(k * t) = k * sum(t), so the sum of
 * t runs alongside everything else and k joins only at the end (here k's
 * sum is a count of labels, and the numerator goes with the gradient).
 * where(c, k * t, 0) = k * where(c, t, 0) but where k is not finite and c
 * false, where only a NaN or infinite k (a zero denominator, every label
 * ignored) can tell them apart. */
typedef struct lin_term {
    ir_node *k; /* free of the summed dims; NULL: 1 */
    ir_node *t; /* NULL: 1 */
} lin_term;

enum { LIN_MAX = 8 };

static ir_node *lin_mul(ir_graph *g, ir_node *a, ir_node *b, src_loc loc)
{
    return !a ? b : !b ? a : ir_binary(g, OP_MUL, a, b, loc);
}

static ir_node *lin_neg(ir_graph *g, ir_node *a, ir_dtype dt, src_loc loc)
{
    return a ? ir_unary(g, OP_NEG, a, loc) : ir_const(g, dt, -1, loc);
}

/* x as sum of k_i * t_i into out[*n...]; false when it takes more than
 * LIN_MAX terms or `depth` levels (then the caller keeps x whole). */
static bool lin_split(ir_graph *g, ir_node *x, ir_dimset axes, lin_term *out, int *n,
                      int depth)
{
    src_loc loc = x->loc;
    ir_dtype dt = (ir_dtype)x->dtype;
    int first = *n;
    if (!(x->dims & axes) && ir_dtype_is_float(dt)) {
        if (*n == LIN_MAX)
            return false;
        out[(*n)++] = (lin_term){x, NULL};
        return true;
    }
    if (depth > 0 && ir_dtype_is_float(dt)) {
        switch (x->op) {
        case OP_ADD:
        case OP_SUB:
            if (!lin_split(g, x->ops[0], axes, out, n, depth - 1))
                break;
            int mid = *n;
            if (!lin_split(g, x->ops[1], axes, out, n, depth - 1))
                break;
            if (x->op == OP_SUB)
                for (int i = mid; i < *n; i++)
                    out[i].k = lin_neg(g, out[i].k, dt, loc);
            return true;
        case OP_NEG:
            if (!lin_split(g, x->ops[0], axes, out, n, depth - 1))
                break;
            for (int i = first; i < *n; i++)
                out[i].k = lin_neg(g, out[i].k, dt, loc);
            return true;
        case OP_MUL:
            for (int side = 0; side < 2; side++) {
                ir_node *a = x->ops[side], *b = x->ops[1 - side];
                if (!lin_split(g, b, axes, out, n, depth - 1)) {
                    *n = first;
                    continue;
                }
                if (*n == first + 1 && !out[first].k) { /* b had no factor: no gain */
                    *n = first;
                    continue;
                }
                for (int i = first; i < *n; i++) {
                    if (a->dims & axes)
                        out[i].t = lin_mul(g, a, out[i].t, loc);
                    else
                        out[i].k = lin_mul(g, a, out[i].k, loc);
                }
                return true;
            }
            break;
        case OP_WHERE:
            if (x->ops[2]->op != OP_CONST || ir_const_value(x->ops[2]) != 0 ||
                !lin_split(g, x->ops[1], axes, out, n, depth - 1))
                break;
            for (int i = first; i < *n; i++)
                out[i].t = ir_where(g, x->ops[0], out[i].t ? out[i].t : ir_const(g, dt, 1, loc),
                                    ir_const(g, dt, 0, loc), loc);
            return true;
        default:
            break;
        }
    }
    *n = first;
    if (*n == LIN_MAX)
        return false;
    out[(*n)++] = (lin_term){NULL, x};
    return true;
}

/* Does x read a reduction? (Looks at up to *budget nodes; beyond: yes.) */
static bool reads_reduction(const ir_node *x, int *budget)
{
    if (--*budget < 0 || ir_op_info_of(x->op)->kind == IR_REDUCE)
        return true;
    for (int i = 0; i < x->nops; i++)
        if (reads_reduction(x->ops[i], budget))
            return true;
    return false;
}

/* sum[axes](x) as sum of k_i * sum[axes](t_i), or NULL when no factor
 * reads a reduction (nothing to gain) or a term cannot be summed alone.
 * A factor with the result's dims is a row's own value (its max, its
 * log-sum-exp), computed by the same row loop as the sum. As the one factor
 * of the summand, sum(t / s) = sum(t) / s, it saves work and a rounding;
 * but a row value among several terms is a shift, and splitting it off
 * cancels: sum(x q) - m sum(q) for sum((x - m) q) loses the digits of x - m
 * that the shift exists to keep (an error in proportion to |x|). Then
 * nothing is split. */
static ir_node *split_sum(ir_graph *g, ir_node *x, ir_dimset axes, src_loc loc)
{
    lin_term terms[LIN_MAX];
    int n = 0;
    if (!lin_split(g, x, axes, terms, &n, 6))
        return NULL;
    /* a term without all of the result's dims (class weights alone, summed
     * to a scalar that k spreads over the rows) would be a sum over other
     * dims than the rest, a sweep of its own: it keeps its factor and stays
     * in one sum with the others like it, which still runs where it ran */
    bool gain = false, row_factor = false;
    ir_node *rest = NULL;
    ir_dimset res = x->dims & ~axes;
    for (int i = 0; i < n; i++) {
        if (!terms[i].t || !ir_dimset_subset(axes, terms[i].t->dims))
            return NULL;
        int b1 = 64;
        if (!ir_dimset_subset(res, terms[i].t->dims)) {
            ir_node *kt = lin_mul(g, terms[i].k, terms[i].t, loc);
            rest = rest ? ir_binary(g, OP_ADD, rest, kt, loc) : kt;
            terms[i] = terms[--n];
            i--;
            continue;
        }
        if (terms[i].k && reads_reduction(terms[i].k, &b1)) {
            row_factor |= (terms[i].k->dims & res) != 0;
            gain = true;
        }
    }
    if (!gain || (row_factor && n + (rest != NULL) > 1))
        return NULL;
    if (rest) {
        if (n == LIN_MAX)
            return NULL;
        terms[n++] = (lin_term){NULL, rest};
    }
    /* terms with the same factor share one sum */
    ir_node *r = NULL;
    for (int i = 0; i < n; i++) {
        if (!terms[i].t)
            continue;
        ir_node *t = terms[i].t;
        for (int j = i + 1; j < n; j++)
            if (terms[j].t && terms[j].k == terms[i].k) {
                t = ir_binary(g, OP_ADD, t, terms[j].t, loc);
                terms[j].t = NULL;
            }
        ir_node *part = lin_mul(g, terms[i].k, ir_reduce(g, OP_SUM, t, axes, loc), loc);
        r = r ? ir_binary(g, OP_ADD, r, part, loc) : part;
    }
    return r;
}

/* e / s for a softmax's e = exp(x - max(x)) and s = sum(e) >= 1: e * (1 / s),
 * the reciprocal once per row as PyTorch's softmax does, a multiplication per
 * element instead of a division (several times its cycles) for at most one
 * more rounding; s >= 1 keeps 1 / s finite and normal. */
static ir_node *softmax_quotient(ir_graph *g, ir_node *e, ir_node *s, src_loc loc)
{
    ir_node *one = ir_const(g, (ir_dtype)s->dtype, 1.0, loc);
    return ir_binary(g, OP_MUL, e, ir_binary(g, OP_DIV, one, s, loc), loc);
}

/* x - max(x) over axes */
static bool max_shifted(const ir_node *a, ir_dimset axes)
{
    return a->op == OP_SUB && a->ops[1]->op == OP_RMAX && a->ops[1]->ops[0] == a->ops[0] &&
           a->ops[1]->attr.axes == axes;
}

static ir_node *prepare(void *vctx, ir_graph *dst, const ir_node *old, ir_node *const *ops)
{
    prepare_ctx *ctx = vctx;
    src_loc loc = old->loc;
    if (old->op == OP_SUM && ir_dtype_is_float((ir_dtype)old->dtype)) {
        ir_node *r = split_sum(dst, ops[0], old->attr.axes, loc);
        return r && r->dims == old->dims && r->dtype == old->dtype ? r : NULL;
    }
    if (old->op == OP_EXP && ops[0]->op == OP_SUB) {
        const ir_node *a = ops[0]->ops[0], *b = ops[0]->ops[1];
        /* the stabilizer's log-softmax: exp(a - log(sum(exp(a)))) = exp(a) / s */
        if (b->op == OP_LOG && b->ops[0]->op == OP_SUM && b->ops[0]->ops[0]->op == OP_EXP &&
            b->ops[0]->ops[0]->ops[0] == a && a->dims == old->dims) {
            ir_node *e = b->ops[0]->ops[0], *sum = b->ops[0];
            return max_shifted(a, sum->attr.axes) ? softmax_quotient(dst, e, sum, loc)
                                                  : ir_binary(dst, OP_DIV, e, sum, loc);
        }
        for (int i = 0; i < ctx->n; i++) {
            const lse_exp *k = &ctx->items[i];
            if (k->lse == b && k->x == a && a->dims == old->dims) {
                ir_node *fin = ir_unary(dst, OP_ISFINITE, (ir_node *)k->m, loc);
                ir_node *q = softmax_quotient(dst, (ir_node *)k->e, (ir_node *)k->s, loc);
                return ir_where(dst, fin, q, (ir_node *)k->e, loc);
            }
        }
        return NULL;
    }
    if (old->op != OP_LSE)
        return NULL;
    ir_dimset axes = old->attr.axes;
    ir_node *x = ops[0];
    ir_node *m = ir_reduce(dst, OP_RMAX, x, axes, loc);
    ir_node *e = ir_unary(dst, OP_EXP, ir_binary(dst, OP_SUB, x, m, loc), loc);
    ir_node *s = ir_reduce(dst, OP_SUM, e, axes, loc);
    ir_node *a = ir_binary(dst, OP_ADD, m, ir_unary(dst, OP_LOG, s, loc), loc);
    ir_node *lse = ir_where(dst, ir_unary(dst, OP_ISFINITE, m, loc), a, m, loc);
    SUP_GROW(ctx->items, ctx->cap, (size_t)ctx->n + 1);
    ctx->items[ctx->n++] = (lse_exp){lse, x, m, e, s};
    return lse;
}

/* ---- 2. orient --------------------------------------------------------------- */

typedef struct vote_walk {
    const ir_graph *g;
    ir_dimset axes; /* the reduced dims of the reduction being oriented */
    bool row_like;    /* an input is read per result element */
    bool column_only; /* an input varies along reduced dims only */
    int votes[IR_MAX_DIMS];
    bool reduced_first; /* a nested reduction lives on reduced dims only */
    uint64_t *seen;     /* hashes of (node, dim map) visited: open addressing */
    size_t seen_cap, nseen;
} vote_walk;

/* First visit of node n under this dim map? (A hash collision only makes
 * the vote skip a path: orientation is a heuristic.) */
static bool vote_first(vote_walk *w, const ir_node *n, const int *map)
{
    uint64_t h = sup_hash_mix(0x0123, n->id);
    IR_DIMSET_FOREACH(d, n->dims)
        h = sup_hash_mix(h, (uint64_t)(map[d] + 1));
    h |= 1; /* 0 marks an empty slot */
    if ((w->nseen + 1) * 2 > w->seen_cap) {
        size_t cap = w->seen_cap ? w->seen_cap * 2 : 256;
        uint64_t *t = sup_calloc(cap, sizeof *t);
        for (size_t i = 0; i < w->seen_cap; i++)
            if (w->seen[i]) {
                size_t j = w->seen[i] & (cap - 1);
                while (t[j])
                    j = (j + 1) & (cap - 1);
                t[j] = w->seen[i];
            }
        sup_free(w->seen);
        w->seen = t;
        w->seen_cap = cap;
    }
    size_t j = h & (w->seen_cap - 1);
    for (; w->seen[j]; j = (j + 1) & (w->seen_cap - 1))
        if (w->seen[j] == h)
            return false;
    w->seen[j] = h;
    w->nseen++;
    return true;
}

/* Does n, read under the reduction, vary along its reduced dims? (An input
 * that does not, a per-row length read in a loop along the row, is read once
 * per row whatever the order: its layout says nothing.) */
static bool varies(const vote_walk *w, const ir_node *n, const int *map)
{
    IR_DIMSET_FOREACH(d, n->dims)
        if (map[d] >= 0 && ir_dimset_has(w->axes, map[d]))
            return true;
    return false;
}

/* Each input read under r's operand votes for its innermost memory dim, as
 * named in the operand's dim space (map[d]: the operand dim that d stands for
 * at this node, or -1 when it is reduced or gathered on the way down). */
static void vote(vote_walk *w, const ir_node *n, const int *map)
{
    if (!vote_first(w, n, map))
        return;
    int sub[IR_MAX_DIMS];
    memcpy(sub, map, sizeof sub);
    switch (ir_op_info_of(n->op)->kind) {
    case IR_LEAF:
        if (n->op == OP_INPUT) {
            const ir_input *in = &w->g->inputs[n->attr.ival];
            if (in->ndim > 0 && map[in->order[in->ndim - 1]] >= 0 && varies(w, n, map))
                w->votes[map[in->order[in->ndim - 1]]]++;
            bool per_result = false;
            IR_DIMSET_FOREACH(d, n->dims)
                per_result |= map[d] >= 0 && !ir_dimset_has(w->axes, map[d]);
            w->row_like |= per_result;
            w->column_only |= !per_result && varies(w, n, map);
        }
        return;
    case IR_STRUCT:
        if (n->op == OP_RENAME) {
            sub[n->attr.dim] = map[n->attr.dim2];
            sub[n->attr.dim2] = -1;
        }
        vote(w, n->ops[0], sub);
        return;
    case IR_REDUCE: {
        /* a nested reduction whose result depends on reduced dims only (the
         * row logsumexp inside a sum over rows) stays inline only if those
         * dims are the outer loops */
        ir_dimset on = 0;
        bool mapped = true;
        IR_DIMSET_FOREACH(d, n->dims) {
            if (map[d] < 0)
                mapped = false;
            else
                on |= ir_dimbit(map[d]);
        }
        if (mapped && on && ir_dimset_subset(on, w->axes))
            w->reduced_first = true;
        IR_DIMSET_FOREACH(d, n->attr.axes)
            sub[d] = -1;
        vote(w, n->ops[0], sub);
        return;
    }
    case IR_GATHER:
        for (int i = 1; i < n->nops; i++)
            vote(w, n->ops[i], map);
        IR_DIMSET_FOREACH(d, n->attr.axes)
            sub[d] = -1;
        vote(w, n->ops[0], sub);
        return;
    default:
        for (int i = 0; i < n->nops; i++)
            vote(w, n->ops[i], map);
        return;
    }
}

/* Natural order of reduction r: result dims first unless the dim its inputs
 * are contiguous in is one of the result dims (a column-wise reduction, like
 * a sum over the batch of an [N, C] tensor, runs down the rows instead), or
 * a nested reduction depends on the reduced dims only (the gradient of class
 * weights, sum over n of [y[n] == c] * nll[n], loops over rows n outside so
 * the row's logsumexp stays inline, with a partial [C] per chunk). */
static bool orient(const ir_graph *g, const ir_node *r, int *inner)
{
    vote_walk w = {.g = g, .axes = r->attr.axes};
    int map[IR_MAX_DIMS];
    for (int d = 0; d < IR_MAX_DIMS; d++)
        map[d] = ir_dimset_has(r->ops[0]->dims, d) ? d : -1;
    vote(&w, r->ops[0], map);
    sup_free(w.seen);
    int best = -1;
    for (int d = 0; d < IR_MAX_DIMS; d++)
        if (w.votes[d] > 0 && (best < 0 || w.votes[d] >= w.votes[best]))
            best = d;
    *inner = best;
    /* inputs read along the reduced dims only (labels y[n] in a count per
     * class, sum over n of [y[n] == c]) and none along the rows: with the
     * result dims first they would be read again for every result element */
    if (w.reduced_first || (r->dims && w.column_only && !w.row_like))
        return false;
    return best < 0 || ir_dimset_has(r->attr.axes, best);
}

/* ---- 3. store ------------------------------------------------------------------- */

/* Charge to *budget the work of evaluating n again at other indices of its
 * dims `a`: every operation under n that depends on them, counted as a tree
 * (a value read twice under n is evaluated twice, at two indices when read
 * through a gather). Stops as soon as the budget is spent. */
static void recompute_cost(const sched_plan *p, const ir_node *n, ir_dimset a, int *budget)
{
    a &= n->dims;
    if (!a || *budget < 0)
        return;
    (*budget)--;
    if (p->stored[n->id])
        return; /* a load */
    switch (ir_op_info_of(n->op)->kind) {
    case IR_STRUCT: {
        ir_dimset b = a;
        if (n->op == OP_RENAME && ir_dimset_has(a, n->attr.dim2))
            b = (a & ~ir_dimbit(n->attr.dim2)) | ir_dimbit(n->attr.dim);
        recompute_cost(p, n->ops[0], b, budget);
        return;
    }
    case IR_GATHER: {
        ir_dimset b = a & ~n->attr.axes;
        int k = 1;
        IR_DIMSET_FOREACH(d, n->attr.axes) {
            const ir_node *idx = n->ops[k++];
            recompute_cost(p, idx, a, budget);
            if (idx->dims & a)
                b |= ir_dimbit(d);
        }
        recompute_cost(p, n->ops[0], b, budget);
        return;
    }
    case IR_REDUCE: /* its loops run again */
        recompute_cost(p, n->ops[0], a | n->attr.axes, budget);
        return;
    default:
        for (int i = 0; i < n->nops; i++)
            recompute_cost(p, n->ops[i], a, budget);
        return;
    }
}

/* Store the elementwise operand of every gather at loop-varying indices whose
 * recomputation there would cost more than SCHED_RECOMPUTE_LIMIT operations.
 * Operands come before their users in g's node order, so the values a stored
 * one reads are decided first (and are loads in its cost). */
static void choose_stores(sched_plan *p)
{
    const ir_graph *g = p->g;
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *n = g->nodes[id];
        ir_dimset a = 0;
        if (n->op == OP_RENAME) {
            a = ir_dimbit(n->attr.dim);
        } else if (ir_op_info_of(n->op)->kind == IR_GATHER) {
            int k = 1;
            IR_DIMSET_FOREACH(d, n->attr.axes)
                if (n->ops[k++]->dims)
                    a |= ir_dimbit(d);
        }
        const ir_node *x = n->ops[0];
        for (; a && ir_op_info_of(x->op)->kind == IR_STRUCT; x = x->ops[0])
            if (x->op == OP_RENAME && ir_dimset_has(a, x->attr.dim2))
                a = (a & ~ir_dimbit(x->attr.dim2)) | ir_dimbit(x->attr.dim);
        if (!a || ir_op_info_of(x->op)->kind != IR_ELEM || p->stored[x->id])
            continue;
        int budget = SCHED_RECOMPUTE_LIMIT;
        recompute_cost(p, x, a, &budget);
        p->stored[x->id] = budget < 0;
    }
}

/* ---- the inline rule ----------------------------------------------------------- */

bool sched_inline(const sched_plan *p, const ir_node *r, const sched_env *env, int *home)
{
    uint64_t L = 0;
    IR_DIMSET_FOREACH(d, r->dims)
        L |= env->loops[d];
    if (!L || !p->dr_first[r->id])
        return false;
    int k = __builtin_popcountll(L);
    if (k >= 64 || L != (((uint64_t)1 << k) - 1))
        return false; /* not a prefix of the enclosing loops */
    if (home)
        *home = k;
    return true;
}

/* ---- 4. walk ---------------------------------------------------------------------- */

typedef struct visit_key {
    uint32_t node;
    int depth;
    uint64_t hash;
    uint64_t *loops; /* env entries of the node's dims, in dim order */
} visit_key;

typedef struct walker {
    sched_plan *p;
    int sink;       /* the sink being walked (build mode) */
    int query;      /* >= 0: query mode, looking for loops opened at this depth */
    bool found;
    bool *reads;    /* if set: marks the inputs and materialized reductions read */
    bool observe;   /* only look: no sinks, deps or checks are added */
    const ir_node *root; /* the expression walked: computed even when stored */
    int max_level; /* the highest level of the buffers read (of sinks with levels) */
    ir_dimset inline_axes; /* the axes of the inline reductions met */
    strbuf *err;
    bool failed;
    /* visited (node, env) pairs: open addressing over `keys` */
    visit_key *keys;
    size_t nkeys, keys_cap;
    size_t *table;
    size_t table_cap;
    arena mem;
} walker;

static uint64_t key_hash(const ir_node *n, const sched_env *env, int depth)
{
    uint64_t h = sup_hash_mix(n->id, (uint64_t)depth);
    IR_DIMSET_FOREACH(d, n->dims)
        h = sup_hash_mix(h, env->loops[d]);
    return h;
}

static bool key_equal(const visit_key *k, const ir_node *n, const sched_env *env,
                      int depth, uint64_t h)
{
    if (k->hash != h || k->node != n->id || k->depth != depth)
        return false;
    int i = 0;
    IR_DIMSET_FOREACH(d, n->dims)
        if (k->loops[i++] != env->loops[d])
            return false;
    return true;
}

/* True the first time (n, env, depth) is seen in this walk. */
static bool first_visit(walker *w, const ir_node *n, const sched_env *env, int depth)
{
    uint64_t h = key_hash(n, env, depth);
    if ((w->nkeys + 1) * 2 > w->table_cap) {
        size_t cap = w->table_cap ? w->table_cap * 2 : 64;
        sup_free(w->table);
        w->table = sup_malloc(cap * sizeof *w->table);
        memset(w->table, 0xff, cap * sizeof *w->table);
        w->table_cap = cap;
        for (size_t k = 0; k < w->nkeys; k++) {
            size_t i = w->keys[k].hash & (cap - 1);
            while (w->table[i] != (size_t)-1)
                i = (i + 1) & (cap - 1);
            w->table[i] = k;
        }
    }
    size_t mask = w->table_cap - 1, i = h & mask;
    for (; w->table[i] != (size_t)-1; i = (i + 1) & mask)
        if (key_equal(&w->keys[w->table[i]], n, env, depth, h))
            return false;
    SUP_GROW(w->keys, w->keys_cap, w->nkeys + 1);
    visit_key *k = &w->keys[w->nkeys];
    k->node = n->id;
    k->depth = depth;
    k->hash = h;
    k->loops = ARENA_ARRAY(&w->mem, uint64_t, ir_dimset_count(n->dims) + 1);
    int j = 0;
    IR_DIMSET_FOREACH(d, n->dims)
        k->loops[j++] = env->loops[d];
    w->table[i] = w->nkeys++;
    return true;
}

static void walker_reset(walker *w)
{
    w->nkeys = 0;
    if (w->table)
        memset(w->table, 0xff, w->table_cap * sizeof *w->table);
}

static void walker_free(walker *w)
{
    sup_free(w->keys);
    sup_free(w->table);
    arena_free(&w->mem);
}

static int add_sink(sched_plan *p, sched_sink_kind kind, const ir_node *node)
{
    SUP_GROW(p->sinks, p->sinks_cap, (size_t)p->nsinks + 1);
    int s = p->nsinks++;
    p->sinks[s] = (sched_sink){.kind = kind, .node = node, .output = -1, .check = -1,
                               .level = -1, .sweep = -1};
    return s;
}

static void canonical_path(sched_sink *s, ir_dimset dims)
{
    s->depth = 0;
    IR_DIMSET_FOREACH(d, dims)
        s->path[s->depth++] = d;
}

/* The sink of kind that keeps n in a buffer: the one n has, or a new one
 * (*fresh set, its path to fill in). */
static sched_sink *mat_sink(sched_plan *p, int kind, const ir_node *n, bool *fresh)
{
    *fresh = p->mat[n->id] < 0;
    if (*fresh)
        p->mat[n->id] = add_sink(p, kind, n);
    return &p->sinks[p->mat[n->id]];
}

/* A stored value's sink: its dims in canonical (memory) order. */
static int store_sink(sched_plan *p, const ir_node *n)
{
    bool fresh;
    sched_sink *k = mat_sink(p, SINK_STORE, n, &fresh);
    if (!fresh)
        return p->mat[n->id];
    canonical_path(k, n->dims);
    k->mdims = k->depth;
    memcpy(k->morder, k->path, sizeof k->path);
    return p->mat[n->id];
}

/* A materialized reduction's sink, in its natural loop order. */
static int reduce_sink(sched_plan *p, const ir_node *r)
{
    bool fresh;
    sched_sink *k = mat_sink(p, SINK_REDUCE, r, &fresh);
    if (!fresh)
        return p->mat[r->id];
    ir_dimset res = r->dims, red = r->attr.axes;
    ir_dimset first = p->dr_first[r->id] ? res : red, second = first == res ? red : res;
    k->depth = 0;
    IR_DIMSET_FOREACH(d, first)
        k->path[k->depth++] = d;
    IR_DIMSET_FOREACH(d, second)
        k->path[k->depth++] = d;
    /* the dim the inputs are contiguous in innermost (z[j, d] in the sum
     * over i of z[i, d] * g[i, j]: loops i, j, d, so g[i, j], which may
     * cost exps, is computed once per (i, j) and not again for every d);
     * the outer loop, the sweep's, stays */
    int inner = p->inner[r->id];
    if (inner >= 0 && first && ir_dimset_has(second, inner) && ir_dimset_count(second) > 1) {
        int at = k->depth - 1;
        while (k->path[at] != inner)
            at--;
        memmove(&k->path[at], &k->path[at + 1], sizeof(int) * (size_t)(k->depth - 1 - at));
        k->path[k->depth - 1] = inner;
    }
    k->rdepth = 0;
    for (int i = 0; i < k->depth; i++)
        if (ir_dimset_has(res, k->path[i])) {
            k->rdepth = i + 1;
            k->morder[k->mdims++] = k->path[i];
        }
    k->rows_owned = k->depth > 0 && ir_dimset_has(res, k->path[0]);
    return p->mat[r->id];
}

static void add_dep(sched_plan *p, int sink, int dep)
{
    sched_sink *s = &p->sinks[sink];
    for (int i = 0; i < s->ndeps; i++)
        if (s->deps[i] == dep)
            return;
    s->deps = sup_realloc(s->deps, sizeof(int) * (size_t)(s->ndeps + 1));
    s->deps[s->ndeps++] = dep;
}

static void add_check(sched_plan *p, const ir_node *gather, const ir_node *idx, int dim)
{
    int root = ir_dim_root(p->g, dim);
    for (int c = 0; c < p->nchecks; c++)
        if (p->checks[c].index == idx && ir_dim_root(p->g, p->checks[c].dim) == root)
            return;
    SUP_GROW(p->checks, p->checks_cap, (size_t)p->nchecks + 1);
    int c = p->nchecks++;
    int s = add_sink(p, SINK_CHECK, idx);
    p->checks[c] = (sched_check){idx, dim, idx->op == OP_INPUT ? (int)idx->attr.ival : -1,
                                 gather->loc, s};
    sched_sink *k = &p->sinks[s];
    k->check = c;
    if (idx->op == OP_INPUT) {
        const ir_input *in = &p->g->inputs[idx->attr.ival];
        k->depth = in->ndim;
        memcpy(k->path, in->order, sizeof(int) * (size_t)in->ndim);
    } else {
        canonical_path(k, idx->dims);
    }
}

/* n is read from a buffer: the sink that writes it (`sink_of` finds or
 * makes it) is a dependency; remember the highest level read. */
static void read_buffer(walker *w, const ir_node *n, int (*sink_of)(sched_plan *, const ir_node *))
{
    sched_plan *p = w->p;
    if (w->reads)
        w->reads[n->id] = true;
    if (w->query < 0 && !w->observe)
        add_dep(p, w->sink, sink_of(p, n));
    int s = p->mat[n->id];
    if (s >= 0 && p->sinks[s].level > w->max_level)
        w->max_level = p->sinks[s].level;
}

static void walk(walker *w, const ir_node *n, const sched_env *env, int depth)
{
    if (w->failed || w->found || !first_visit(w, n, env, depth))
        return;
    sched_plan *p = w->p;
    sched_env sub;
    if (p->stored[n->id] && n != w->root) {
        read_buffer(w, n, store_sink);
        return;
    }
    switch (ir_op_info_of(n->op)->kind) {
    case IR_LEAF:
        if (w->reads && n->op == OP_INPUT)
            w->reads[n->id] = true;
        return;
    case IR_ELEM:
        for (int i = 0; i < n->nops; i++)
            walk(w, n->ops[i], env, depth);
        return;
    case IR_STRUCT:
        sub = *env;
        if (n->op == OP_RENAME)
            sub.loops[n->attr.dim] = env->loops[n->attr.dim2];
        walk(w, n->ops[0], &sub, depth);
        return;
    case IR_GATHER: {
        sub = *env;
        int k = 1;
        IR_DIMSET_FOREACH(d, n->attr.axes) {
            const ir_node *idx = n->ops[k++];
            uint64_t L = 0;
            IR_DIMSET_FOREACH(e, idx->dims)
                L |= env->loops[e];
            sub.loops[d] = L;
            if (w->query < 0 && !w->observe)
                add_check(p, n, idx, d);
            walk(w, idx, env, depth);
        }
        walk(w, n->ops[0], &sub, depth);
        return;
    }
    case IR_REDUCE: {
        int home;
        if (!sched_inline(p, n, env, &home)) {
            read_buffer(w, n, reduce_sink);
            return;
        }
        w->inline_axes |= n->attr.axes;
        if (home == w->query) {
            w->found = true;
            return;
        }
        sub = *env;
        int k = home;
        IR_DIMSET_FOREACH(d, n->attr.axes)
            sub.loops[d] = (uint64_t)1 << k++;
        if (k >= 64) {
            sb_printf(w->err, "loop nest deeper than 63 in %s", p->g->name);
            w->failed = true;
            return;
        }
        walk(w, n->ops[0], &sub, k);
        return;
    }
    case IR_META:
        break;
    }
    sb_printf(w->err, "codegen: '%s' is not lowered to kernels (run the passes first)",
              ir_op_name(n->op));
    w->failed = true;
}

/* The expression a sink evaluates inside its loops, and their environment. */
/* What a sink computes itself even when the plan stores it: a stored
 * value's own sink computes it; every other sink loads stored values. */
static const ir_node *sink_root(const sched_sink *s)
{
    return s->kind == SINK_STORE ? s->node : NULL;
}

static const ir_node *sink_expr(const sched_sink *s, sched_env *env)
{
    memset(env, 0, sizeof *env);
    for (int i = 0; i < s->depth; i++)
        env->loops[s->path[i]] = (uint64_t)1 << i;
    return s->kind == SINK_REDUCE ? s->node->ops[0] : s->node;
}

bool sched_opens_loop_at(const sched_plan *p, const ir_node *n, const sched_env *env,
                         int depth)
{
    strbuf err;
    sb_init(&err);
    walker w = {.p = (sched_plan *)p, .sink = -1, .query = depth, .err = &err};
    arena_init(&w.mem);
    w.root = n;
    walk(&w, n, env, depth);
    bool found = w.found;
    walker_free(&w);
    sb_free(&err);
    return found;
}

/* ---- 5. levels and sweeps ----------------------------------------------------------- */

static int level_of(sched_plan *p, int s, int check_level)
{
    sched_sink *k = &p->sinks[s];
    if (k->level >= 0)
        return k->level;
    int lv = 1;
    for (int i = 0; i < k->ndeps; i++) {
        int d = level_of(p, k->deps[i], check_level);
        if (d + 1 > lv)
            lv = d + 1;
    }
    if (k->kind == SINK_OUTPUT && check_level + 1 > lv)
        lv = check_level + 1;
    return k->level = lv;
}

static bool consumes(const sched_sink *c, int r)
{
    for (int i = 0; i < c->ndeps; i++)
        if (c->deps[i] == r)
            return true;
    return false;
}

/* Levels are first as early as possible. A reduction whose consumers come
 * much later (a loss's sum, needed only by the scalar epilogue) then moves
 * to the latest level that still precedes them, when a sweep over the same
 * outer dim that stores outputs is there: it joins that sweep, which reads
 * the same data, instead of making an earlier one read it too (the loss sum
 * of cross-entropy goes with the gradient, not with the label check).
 * Outputs it feeds that are stored elsewhere (scalar epilogues, the class
 * weights' gradient over C after the sweeps over the rows) move after it. */
static void place_late(sched_plan *p)
{
    for (int lv = p->nlevels; lv >= 1; lv--)
        for (int r = 0; r < p->nsinks; r++) {
            sched_sink *R = &p->sinks[r];
            if (R->kind != SINK_REDUCE || R->level != lv)
                continue;
            int latest = p->nlevels;
            for (int c = 0; c < p->nsinks; c++) {
                const sched_sink *C = &p->sinks[c];
                bool movable = C->kind == SINK_OUTPUT &&
                               (C->depth == 0 || C->path[0] != R->path[0]);
                if (consumes(C, r) && !movable && C->level - 1 < latest)
                    latest = C->level - 1;
            }
            for (int L = latest; L > R->level; L--) {
                bool joins = false;
                for (int c = 0; c < p->nsinks && !joins; c++) {
                    const sched_sink *C = &p->sinks[c];
                    joins = C->kind == SINK_OUTPUT && C->level == L && C->depth > 0 &&
                            C->path[0] == R->path[0];
                }
                if (joins) {
                    R->level = L;
                    break;
                }
            }
            for (int c = 0; c < p->nsinks; c++) {
                sched_sink *C = &p->sinks[c];
                if (consumes(C, r) && C->level <= R->level)
                    C->level = R->level + 1;
                if (C->level > p->nlevels)
                    p->nlevels = C->level;
            }
        }
}

static int sink_rank(const sched_sink *s)
{
    return s->kind == SINK_CHECK ? 0 : s->kind == SINK_OUTPUT ? 2 : 1;
}

static void group_sweeps(sched_plan *p)
{
    p->sweeps = sup_calloc((size_t)p->nsinks + 1, sizeof *p->sweeps);
    for (int lv = 1; lv <= p->nlevels; lv++) {
        /* parallel sweeps first, in order of their first sink; serial last */
        for (int pass = 0; pass < 2; pass++) {
            for (int s = 0; s < p->nsinks; s++) {
                sched_sink *k = &p->sinks[s];
                if (k->level != lv || k->sweep >= 0 || (pass == 0) != (k->depth > 0))
                    continue;
                int outer = k->depth ? k->path[0] : -1;
                sched_sweep *sw = &p->sweeps[p->nsweeps];
                *sw = (sched_sweep){.level = lv, .outer = outer};
                sw->sinks = sup_malloc(sizeof(int) * (size_t)p->nsinks);
                for (int rank = 0; rank < 3; rank++)
                    for (int t = s; t < p->nsinks; t++) {
                        sched_sink *o = &p->sinks[t];
                        if (o->level == lv && o->sweep < 0 && sink_rank(o) == rank &&
                            (o->depth ? o->path[0] : -1) == outer) {
                            o->sweep = p->nsweeps;
                            sw->sinks[sw->nsinks++] = t;
                        }
                    }
                p->nsweeps++;
            }
        }
    }
}

/* The outputs' sinks, then every sink the walks add (materialized
 * reductions, stored values, checks), each walked in turn. */
static bool walk_sinks(sched_plan *p, strbuf *err)
{
    const ir_graph *g = p->g;
    for (int o = 0; o < g->noutputs; o++) {
        const ir_output *out = &g->outputs[o];
        int s = add_sink(p, SINK_OUTPUT, out->node);
        sched_sink *k = &p->sinks[s];
        k->output = o;
        if (out->kind == IR_OUT_GRAD) {
            const ir_input *in = &g->inputs[out->input];
            k->depth = in->ndim;
            memcpy(k->path, in->order, sizeof(int) * (size_t)in->ndim);
        } else {
            canonical_path(k, out->node->dims);
        }
    }
    walker w = {.p = p, .query = -1, .err = err};
    arena_init(&w.mem);
    for (int s = 0; s < p->nsinks && !w.failed; s++) {
        sched_env env;
        const ir_node *e = sink_expr(&p->sinks[s], &env);
        walker_reset(&w);
        w.sink = s;
        w.root = sink_root(&p->sinks[s]);
        walk(&w, e, &env, p->sinks[s].depth);
    }
    walker_free(&w);
    return !w.failed;
}

static void assign_levels(sched_plan *p)
{
    int check_level = 0;
    for (int s = 0; s < p->nsinks; s++)
        if (p->sinks[s].kind != SINK_OUTPUT) {
            int lv = level_of(p, s, 0);
            if (p->sinks[s].kind == SINK_CHECK && lv > check_level)
                check_level = lv;
        }
    for (int s = 0; s < p->nsinks; s++) {
        int lv = level_of(p, s, check_level);
        if (lv > p->nlevels)
            p->nlevels = lv;
    }
}

static void clear_sinks(sched_plan *p)
{
    for (int s = 0; s < p->nsinks; s++)
        sup_free(p->sinks[s].deps);
    p->nsinks = p->nchecks = p->nlevels = 0;
    for (uint32_t i = 0; i < p->g->nnodes; i++)
        p->mat[i] = -1;
}

/* The level a store of n would take: one past the buffers its evaluation
 * (in its own canonical loops) reads. */
static int store_level(walker *w, const ir_node *n)
{
    sched_sink tmp = {.kind = SINK_STORE, .node = n};
    canonical_path(&tmp, n->dims);
    sched_env env;
    sink_expr(&tmp, &env);
    walker_reset(w);
    w->root = n;
    w->max_level = 0;
    walk(w, n, &env, tmp.depth);
    return w->max_level + 1;
}

/* A value evaluated by sinks of several levels (a gradient flowing back
 * through an unrolled recursion: each step's sums read it, and so do all
 * the steps before) is computed again in a sweep per level. Store it when
 * that costs more than SCHED_RECOMPUTE_LIMIT operations and the store fits
 * below every reader's level, so no reader moves to a later sweep (Dice's
 * sums and its gradient both read sigmoid(x), but a store of it could only
 * go with the sums, making them and the gradient a sweep later), or when
 * it costs more than four times that (a chain through every later step:
 * a sweep more is cheaper than computing it again in each). A value with a
 * single user is stored, if at all, as part of that user. Stores change
 * the levels, so the caller walks again until no store is added. Returns
 * whether any was. */
static bool store_shared(sched_plan *p)
{
    const ir_graph *g = p->g;
    int *first = sup_calloc(g->nnodes + 1, sizeof *first); /* lowest reader level */
    bool *several = sup_calloc(g->nnodes + 1, sizeof *several);
    int *users = sup_calloc(g->nnodes + 1, sizeof *users);
    for (uint32_t id = 0; id < g->nnodes; id++)
        for (int i = 0; i < g->nodes[id]->nops; i++)
            users[g->nodes[id]->ops[i]->id]++;
    strbuf err;
    sb_init(&err);
    walker w = {.p = p, .query = -1, .observe = true, .err = &err};
    arena_init(&w.mem);
    for (int s = 0; s < p->nsinks; s++) {
        sched_env env;
        const sched_sink *k = &p->sinks[s];
        const ir_node *e = sink_expr(k, &env);
        walker_reset(&w);
        w.root = sink_root(k);
        walk(&w, e, &env, k->depth);
        for (size_t i = 0; i < w.nkeys; i++) {
            uint32_t id = w.keys[i].node;
            if (first[id] && first[id] != k->level)
                several[id] = true;
            if (!first[id] || k->level < first[id])
                first[id] = k->level;
        }
    }
    bool added = false;
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *n = g->nodes[id];
        if (!several[id] || users[id] < 2 || p->stored[id] || !n->dims ||
            ir_op_info_of(n->op)->kind != IR_ELEM)
            continue;
        int budget = 4 * SCHED_RECOMPUTE_LIMIT;
        recompute_cost(p, n, n->dims, &budget);
        bool huge = budget < 0;
        budget = SCHED_RECOMPUTE_LIMIT;
        recompute_cost(p, n, n->dims, &budget);
        if (budget < 0 && (huge || store_level(&w, n) < first[id]))
            p->stored[id] = added = true;
    }
    walker_free(&w);
    sb_free(&err);
    sup_free(first);
    sup_free(several);
    sup_free(users);
    return added;
}

sched_plan *sched_build(const ir_graph *src, strbuf *err)
{
    for (uint32_t i = 0; i < src->nnodes; i++)
        if (ir_op_info_of(src->nodes[i]->op)->kind == IR_META) {
            sb_printf(err, "codegen: the graph still holds '%s' (run the passes first)",
                      ir_op_name(src->nodes[i]->op));
            return NULL;
        }
    sched_plan *p = sup_calloc(1, sizeof *p);
    prepare_ctx pc = {0};
    p->g = ir_rebuild(src, prepare, &pc);
    sup_free(pc.items);
    ir_graph *g = p->g;
    p->mat = sup_malloc(sizeof(int) * (g->nnodes + 1));
    p->dr_first = sup_calloc(g->nnodes + 1, sizeof *p->dr_first);
    p->stored = sup_calloc(g->nnodes + 1, sizeof *p->stored);
    p->inner = sup_malloc(sizeof(int) * (g->nnodes + 1));
    for (uint32_t i = 0; i < g->nnodes; i++) {
        p->mat[i] = p->inner[i] = -1;
        if (ir_op_info_of(g->nodes[i]->op)->kind == IR_REDUCE)
            p->dr_first[i] = orient(g, g->nodes[i], &p->inner[i]);
    }
    choose_stores(p);
    for (int round = 0;; round++) {
        if (!walk_sinks(p, err)) {
            sched_free(p);
            return NULL;
        }
        assign_levels(p);
        if (round == 8 || !store_shared(p))
            break;
        clear_sinks(p);
    }
    place_late(p);
    group_sweeps(p);
    return p;
}

void sched_free(sched_plan *p)
{
    if (!p)
        return;
    for (int s = 0; s < p->nsinks; s++)
        sup_free(p->sinks[s].deps);
    for (int s = 0; s < p->nsweeps; s++)
        sup_free(p->sweeps[s].sinks);
    sup_free(p->sinks);
    sup_free(p->sweeps);
    sup_free(p->checks);
    sup_free(p->mat);
    sup_free(p->dr_first);
    sup_free(p->stored);
    sup_free(p->inner);
    ir_graph_free(p->g);
    sup_free(p);
}

ir_dimset sched_inner_dims(const sched_plan *p, const sched_sweep *sw)
{
    strbuf err;
    sb_init(&err);
    walker w = {.p = (sched_plan *)p, .query = -1, .observe = true, .err = &err};
    arena_init(&w.mem);
    ir_dimset dims = 0;
    for (int i = 0; i < sw->nsinks; i++) {
        sched_env env;
        const sched_sink *k = &p->sinks[sw->sinks[i]];
        const ir_node *e = sink_expr(k, &env);
        for (int j = 1; j < k->depth; j++)
            dims |= ir_dimbit(k->path[j]);
        walker_reset(&w);
        w.root = sink_root(k);
        walk(&w, e, &env, k->depth);
    }
    dims |= w.inline_axes;
    walker_free(&w);
    sb_free(&err);
    if (sw->outer >= 0)
        dims &= ~ir_dimbit(sw->outer);
    return dims;
}

int sched_num_sweeps(const sched_plan *p)
{
    int n = 0;
    for (int s = 0; s < p->nsweeps; s++)
        n += p->sweeps[s].outer >= 0;
    return n;
}

/* ---- printing ------------------------------------------------------------------------ */

static void print_dims(const ir_graph *g, const int *dims, int n, strbuf *out)
{
    for (int i = 0; i < n; i++)
        sb_printf(out, "%s%s", i ? ", " : "", g->dims[dims[i]].name);
}

/* Bytes per element of the outer dim P for a tensor of dims s: "4*C" etc. */
static void print_bytes(const ir_graph *g, ir_dtype dt, ir_dimset s, int outer, strbuf *out)
{
    sb_printf(out, "%zu", ir_dtype_size(dt));
    IR_DIMSET_FOREACH(d, s)
        if (d != outer)
            sb_printf(out, "*%s", g->dims[d].name);
}

static void print_sink(const sched_plan *p, const sched_sink *k, strbuf *out)
{
    const ir_graph *g = p->g;
    strbuf dims;
    sb_init(&dims);
    switch (k->kind) {
    case SINK_OUTPUT:
        sb_printf(out, "      store %s", g->outputs[k->output].name);
        break;
    case SINK_REDUCE:
        ir_dimset_format(g, k->node->attr.axes, &dims);
        sb_printf(out, "      reduce %%%u = %s[%s] -> %s[", k->node->id,
                  ir_op_name(k->node->op), sb_str(&dims), ir_dtype_name(k->node->dtype));
        sb_clear(&dims);
        ir_dimset_format(g, k->node->dims, &dims);
        sb_printf(out, "%s]%s", sb_str(&dims),
                  k->depth && !k->rows_owned ? " (partials per chunk, combined in order)" : "");
        break;
    case SINK_STORE:
        ir_dimset_format(g, k->node->dims, &dims);
        sb_printf(out, "      keep %%%u = %s -> %s[%s]", k->node->id, ir_op_name(k->node->op),
                  ir_dtype_name(k->node->dtype), sb_str(&dims));
        break;
    case SINK_CHECK: {
        const sched_check *c = &p->checks[k->check];
        if (c->input >= 0)
            sb_printf(out, "      check %s", g->inputs[c->input].name);
        else
            sb_printf(out, "      check %%%u", c->index->id);
        sb_printf(out, " in [0, %s)", g->dims[c->dim].name);
        break;
    }
    }
    sb_free(&dims);
    if (k->depth) {
        sb_puts(out, "  loops ");
        print_dims(g, k->path, k->depth, out);
    }
    sb_putc(out, '\n');
}

static void print_traffic(const sched_plan *p, const sched_sweep *sw, strbuf *out)
{
    const ir_graph *g = p->g;
    bool *reads = sup_calloc(g->nnodes + 1, sizeof *reads);
    strbuf err;
    sb_init(&err);
    walker w = {.p = (sched_plan *)p, .query = -1, .reads = reads, .observe = true, .err = &err};
    arena_init(&w.mem);
    for (int i = 0; i < sw->nsinks; i++) {
        sched_env env;
        const sched_sink *k = &p->sinks[sw->sinks[i]];
        const ir_node *e = sink_expr(k, &env);
        walker_reset(&w);
        w.root = sink_root(k);
        walk(&w, e, &env, k->depth);
    }
    walker_free(&w);
    sb_free(&err);
    const char *sep = "";
    sb_printf(out, "    per %s: reads ", g->dims[sw->outer].name);
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *n = g->nodes[id];
        if (!reads[id] || !ir_dimset_has(n->dims, sw->outer))
            continue;
        sb_puts(out, sep);
        print_bytes(g, (ir_dtype)n->dtype, n->dims, sw->outer, out);
        if (n->op == OP_INPUT)
            sb_printf(out, " (%s)", g->inputs[n->attr.ival].name);
        else
            sb_printf(out, " (%%%u)", n->id);
        sep = " + ";
    }
    if (!*sep)
        sb_puts(out, "0");
    sb_puts(out, " bytes; writes ");
    sep = "";
    for (int i = 0; i < sw->nsinks; i++) {
        const sched_sink *k = &p->sinks[sw->sinks[i]];
        if (k->kind == SINK_CHECK || (k->kind == SINK_REDUCE && !k->rows_owned))
            continue;
        sb_puts(out, sep);
        print_bytes(g, (ir_dtype)k->node->dtype, k->node->dims, sw->outer, out);
        if (k->kind == SINK_OUTPUT)
            sb_printf(out, " (%s)", g->outputs[k->output].name);
        else
            sb_printf(out, " (%%%u)", k->node->id);
        sep = " + ";
    }
    if (!*sep)
        sb_puts(out, "0");
    sb_puts(out, " bytes\n");
    sup_free(reads);
}

void sched_print(const sched_plan *p, strbuf *out)
{
    const ir_graph *g = p->g;
    int n = sched_num_sweeps(p);
    sb_printf(out, "kernel %s: %d sweep%s over memory, %d range check%s\n", g->name, n,
              n == 1 ? "" : "s", p->nchecks, p->nchecks == 1 ? "" : "s");
    for (int s = 0; s < p->nsweeps; s++) {
        const sched_sweep *sw = &p->sweeps[s];
        if (sw->outer >= 0)
            sb_printf(out, "  sweep %d (level %d) over %s, parallel in fixed chunks:\n", s + 1,
                      sw->level, g->dims[sw->outer].name);
        else
            sb_printf(out, "  serial (level %d):\n", sw->level);
        for (int i = 0; i < sw->nsinks; i++)
            print_sink(p, &p->sinks[sw->sinks[i]], out);
        if (sw->outer >= 0)
            print_traffic(p, sw, out);
    }
}
