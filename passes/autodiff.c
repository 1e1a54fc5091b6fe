/* autodiff.c - reverse-mode differentiation as a graph-to-graph pass.
 *
 * ad_gradients is the core: given y, its adjoint (the seed) and the nodes to
 * differentiate with respect to, it walks the nodes between them from y back
 * to the inputs (ids are topological, so one descending sweep visits every
 * node after all its users) and asks the VJP rule of each node (vjp.c) for
 * the contributions to its operands' adjoints. Contributions add.
 *
 * Only nodes on a path from a differentiated node to y get adjoints: a node
 * is "needed" when it depends on a wrt node through differentiable operators
 * and y depends on it. Gradients nobody asked for cost nothing, and a missing
 * adjoint means zero, so no const-0 tensors are ever added up.
 *
 * pass_autodiff wraps the core for a whole entry: the upstream gradient
 * becomes the input "dloss" (the loss's dtype and dims), so the compiled
 * backward composes with a framework's chain rule, and each differentiated
 * input gets an output "grad_<name>" of exactly its dtype and dims.
 */
#include "passes/ad.h"
#include "passes/passes.h"

#include <stdio.h>
#include <string.h>

typedef struct scatter {
    ir_node *s, *v;
    ir_dimset axes;
} scatter;

struct ad_ctx {
    ir_graph *g;
    uint32_t n0;   /* nodes that existed when differentiation began */
    bool *need;    /* per node id < n0: gets an adjoint */
    ir_node **adj; /* per node id < n0: the adjoint so far, NULL meaning zero */
    scatter *scatters; /* ad_note_scatter */
    size_t nscatters, scatters_cap;
    bool failed;
};

ir_graph *ad_graph(const ad_ctx *c) { return c->g; }

bool ad_wants(const ad_ctx *c, const ir_node *n, int i)
{
    const ir_node *o = n->ops[i];
    return o->id < c->n0 && c->need[o->id];
}

void ad_fail(ad_ctx *c, const ir_node *n, const char *why)
{
    snprintf(c->g->error, sizeof c->g->error, "cannot differentiate %s: %s",
             ir_op_name(n->op), why);
    c->failed = true;
}

void ad_note_scatter(ad_ctx *c, ir_node *s, ir_node *v, ir_dimset axes)
{
    if (!s || !v)
        return;
    SUP_GROW(c->scatters, c->scatters_cap, c->nscatters + 1);
    c->scatters[c->nscatters++] = (scatter){s, v, axes};
}

/* sum over `axes` of v, knowing the recorded scatters. */
static ir_node *sum_over(ad_ctx *c, ir_node *v, ir_dimset axes, src_loc loc)
{
    for (size_t i = 0; v && axes && i < c->nscatters; i++) {
        const scatter *sc = &c->scatters[i];
        if (sc->s == v && ir_dimset_subset(sc->axes, axes)) {
            v = ir_expand(c->g, sc->v, v->dims & ~sc->axes, loc);
            axes &= ~sc->axes;
            break;
        }
    }
    return ir_reduce(c->g, OP_SUM, v, axes, loc);
}

/* Bring a contribution to exactly the operand's type: sum over the dims the
 * operand was broadcast along, broadcast over dims the contribution lacks
 * (a rule may return a value constant along them). */
static ir_node *fit(ad_ctx *c, ir_node *v, const ir_node *like)
{
    ir_graph *g = c->g;
    v = sum_over(c, v, v ? v->dims & ~like->dims : 0, like->loc);
    v = ir_expand(g, v, like->dims, like->loc);
    return ir_cast(g, (ir_dtype)like->dtype, v, like->loc);
}

static void accum(ad_ctx *c, const ir_node *n, int i, ir_node *contrib, bool negate)
{
    ir_node *o = n->ops[i];
    if (!ad_wants(c, n, i))
        return;
    if (!contrib) {
        c->failed = true;
        return;
    }
    contrib = fit(c, contrib, o);
    if (negate)
        contrib = ir_unary(c->g, OP_NEG, contrib, o->loc);
    ir_node *prev = c->adj[o->id];
    c->adj[o->id] = prev ? ir_binary(c->g, OP_ADD, prev, contrib, o->loc) : contrib;
    if (!c->adj[o->id])
        c->failed = true;
}

void ad_accum(ad_ctx *c, const ir_node *n, int i, ir_node *contrib)
{
    accum(c, n, i, contrib, false);
}

void ad_accum_neg(ad_ctx *c, const ir_node *n, int i, ir_node *contrib)
{
    accum(c, n, i, contrib, true);
}

/* dep: float nodes that depend on a wrt node through operators with a VJP
 * rule. need: the dep nodes y depends on through dep nodes. */
static void mark_needed(ad_ctx *c, const ir_node *y, int n, ir_node *const *wrt)
{
    ir_graph *g = c->g;
    bool *dep = sup_calloc(c->n0 + 1, sizeof *dep);
    for (int i = 0; i < n; i++)
        if (wrt[i]->id < c->n0 && ir_dtype_is_float((ir_dtype)wrt[i]->dtype))
            dep[wrt[i]->id] = true;
    for (uint32_t id = 0; id <= y->id; id++) {
        const ir_node *v = g->nodes[id];
        if (dep[id] || !ir_dtype_is_float((ir_dtype)v->dtype) || !ad_vjp_table[v->op])
            continue;
        for (int k = 0; k < v->nops && !dep[id]; k++)
            dep[id] = dep[v->ops[k]->id];
    }
    c->need[y->id] = dep[y->id];
    for (uint32_t id = y->id + 1; id-- > 0;) {
        const ir_node *v = g->nodes[id];
        if (!c->need[id] || !ad_vjp_table[v->op])
            continue;
        for (int k = 0; k < v->nops; k++)
            if (dep[v->ops[k]->id])
                c->need[v->ops[k]->id] = true;
    }
    sup_free(dep);
}

static ir_node *zeros_like(ir_graph *g, const ir_node *x)
{
    return ir_expand(g, ir_const(g, (ir_dtype)x->dtype, 0, x->loc), x->dims, x->loc);
}

void ad_gradients(ir_graph *g, ir_node *y, ir_node *seed, int n, ir_node *const *wrt,
                  ir_node **grads)
{
    ad_ctx c = {.g = g, .n0 = g->nnodes};
    c.need = sup_calloc(c.n0 + 1, sizeof *c.need);
    c.adj = sup_calloc(c.n0 + 1, sizeof *c.adj);
    mark_needed(&c, y, n, wrt);
    if (c.need[y->id])
        c.adj[y->id] = seed;
    for (uint32_t id = y->id + 1; id-- > 0 && !c.failed;) {
        ir_node *v = g->nodes[id];
        ad_vjp_fn rule = ad_vjp_table[v->op];
        if (c.need[id] && c.adj[id] && rule)
            rule(&c, v, c.adj[id]);
    }
    for (int i = 0; i < n; i++) {
        ir_node *a = wrt[i]->id < c.n0 ? c.adj[wrt[i]->id] : NULL;
        grads[i] = c.failed ? NULL : a ? a : zeros_like(g, wrt[i]);
    }
    sup_free(c.need);
    sup_free(c.adj);
    sup_free(c.scatters);
}

/* ---- the pass --------------------------------------------------------------- */

static int find_loss(const ir_graph *g)
{
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].kind == IR_OUT_LOSS)
            return i;
    return -1;
}

uint64_t ad_default_wrt(const ir_graph *g)
{
    uint64_t wrt = 0;
    for (int i = 0; i < g->ninputs && i < 64; i++)
        if (g->inputs[i].kind != IR_IN_DLOSS && ir_dtype_is_float(g->inputs[i].dtype))
            wrt |= (uint64_t)1 << i;
    return wrt;
}

bool ad_check_wrt(const ir_graph *g, uint64_t wrt, strbuf *err)
{
    int loss = find_loss(g);
    if (loss < 0) {
        sb_printf(err, "entry '%s' has no loss output to differentiate", g->name);
        return false;
    }
    if (!ir_dtype_is_float((ir_dtype)g->outputs[loss].node->dtype)) {
        sb_printf(err, "the loss of '%s' is %s: only a float loss has a gradient", g->name,
                  ir_dtype_name((ir_dtype)g->outputs[loss].node->dtype));
        return false;
    }
    if (g->ninputs < 64 && (wrt >> g->ninputs)) {
        sb_printf(err, "gradient requested for input #%d, but '%s' has %d inputs",
                  63 - __builtin_clzll(wrt), g->name, g->ninputs);
        return false;
    }
    for (int i = 0; i < g->ninputs && i < 64; i++) {
        const ir_input *in = &g->inputs[i];
        if (!((wrt >> i) & 1))
            continue;
        if (!ir_dtype_is_float(in->dtype) || in->kind == IR_IN_DLOSS) {
            sb_printf(err,
                      "cannot differentiate with respect to '%s' (%s): gradients exist "
                      "only for float inputs; leave it out of the inputs to "
                      "differentiate",
                      in->name, ir_dtype_name(in->dtype));
            return false;
        }
    }
    return true;
}

/* "dloss", or "dloss_2", ... if an input already has that name. */
static const char *dloss_name(const ir_graph *g, char *buf, size_t size)
{
    snprintf(buf, size, "dloss");
    for (int k = 2; ir_input_find(g, buf) >= 0; k++)
        snprintf(buf, size, "dloss_%d", k);
    return buf;
}

ir_graph *pass_autodiff(const ir_graph *src, uint64_t wrt)
{
    if (!wrt)
        wrt = ad_default_wrt(src);
    strbuf why;
    sb_init(&why);
    bool ok = ad_check_wrt(src, wrt, &why);
    if (!ok) /* the error buffer is scratch space: say why to the caller */
        snprintf(((ir_graph *)src)->error, sizeof src->error, "%s", sb_str(&why));
    sb_free(&why);
    if (!ok)
        return NULL;
    ir_graph *g = ir_rebuild(src, NULL, NULL);
    ir_node *loss = g->outputs[find_loss(g)].node;

    int order[IR_MAX_RANK], ndim = 0;
    IR_DIMSET_FOREACH(d, loss->dims)
        if (ndim < IR_MAX_RANK)
            order[ndim++] = d;
    char name[32];
    int k = ir_input_add(g, dloss_name(g, name, sizeof name), IR_IN_DLOSS,
                         (ir_dtype)loss->dtype, ndim, order, loss->loc);
    ir_node *dloss = ir_input_node(g, k);

    ir_node *wrt_nodes[64], *grads[64];
    int which[64], n = 0;
    for (int i = 0; i < g->ninputs && i < 64; i++)
        if ((wrt >> i) & 1) {
            which[n] = i;
            wrt_nodes[n++] = ir_input_node(g, i);
        }
    ad_gradients(g, loss, dloss, n, wrt_nodes, grads);
    for (int i = 0; i < n; i++) {
        if (!grads[i]) {
            snprintf(((ir_graph *)src)->error, sizeof src->error, "%s", g->error);
            ir_graph_free(g);
            return NULL;
        }
        char *gname = arena_printf(&g->arena, "grad_%s", g->inputs[which[i]].name);
        ir_output_add(g, gname, IR_OUT_GRAD, which[i], grads[i]);
    }
    return g;
}
