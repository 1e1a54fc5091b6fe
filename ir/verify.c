/* verify.c - the invariants of ir.h, checked after every pass in debug
 * builds and by the tests:
 *   - node ids are positions in the node list and operands come first;
 *   - every node's dtype and dims are what the type rule derives;
 *   - hash-consing holds: no two live nodes are equal;
 *   - the frame is consistent: dims have valid roots, inputs own their node,
 *     gradient outputs have their input's dtype and dims, the upstream
 *     gradient has the loss's dims.
 */
#include "ir/ir.h"

#include <string.h>

static bool check_frame(const ir_graph *g, strbuf *why)
{
    for (int d = 0; d < g->ndims; d++) {
        int r = g->dims[d].root;
        if (r < 0 || r >= g->ndims || g->dims[r].root != r) {
            sb_printf(why, "dim %s has an invalid root", g->dims[d].name);
            return false;
        }
    }
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        if (!in->node || in->node->op != OP_INPUT || in->node->attr.ival != i) {
            sb_printf(why, "input %s does not own its INPUT node", in->name);
            return false;
        }
        ir_dimset seen = 0;
        for (int k = 0; k < in->ndim; k++) {
            if (in->order[k] < 0 || in->order[k] >= g->ndims ||
                ir_dimset_has(seen, in->order[k])) {
                sb_printf(why, "input %s has a bad dim list", in->name);
                return false;
            }
            seen |= ir_dimbit(in->order[k]);
        }
    }
    return true;
}

static bool check_outputs(const ir_graph *g, strbuf *why)
{
    const ir_node *loss = NULL;
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].kind == IR_OUT_LOSS)
            loss = g->outputs[i].node;
    for (int i = 0; i < g->noutputs; i++) {
        const ir_output *o = &g->outputs[i];
        if (!o->node || o->node->id >= g->nnodes || g->nodes[o->node->id] != o->node) {
            sb_printf(why, "output %s has no node of this graph", o->name);
            return false;
        }
        if (o->kind != IR_OUT_GRAD)
            continue;
        if (o->input < 0 || o->input >= g->ninputs) {
            sb_printf(why, "gradient output %s names no input", o->name);
            return false;
        }
        const ir_input *in = &g->inputs[o->input];
        if (o->node->dtype != in->dtype || o->node->dims != in->node->dims) {
            sb_printf(why, "gradient output %s is %s with other dims than input %s",
                      o->name, ir_dtype_name((ir_dtype)o->node->dtype), in->name);
            return false;
        }
    }
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        if (in->kind == IR_IN_DLOSS && loss && in->node->dims != loss->dims) {
            sb_printf(why, "the upstream gradient %s does not have the loss's dims", in->name);
            return false;
        }
    }
    return true;
}

static bool check_node(const ir_graph *g, const ir_node *n, strbuf *why)
{
    for (int i = 0; i < n->nops; i++) {
        const ir_node *o = n->ops[i];
        if (!o || o->id >= n->id || g->nodes[o->id] != o) {
            sb_printf(why, "node %%%u (%s): operand %d is not an earlier node of the graph",
                      n->id, ir_op_name(n->op), i);
            return false;
        }
    }
    ir_dtype dt;
    ir_dimset dims;
    /* ir_infer only writes g->error, which is scratch space. */
    if (!ir_infer((ir_graph *)g, (ir_op)n->op, (ir_dtype)n->dtype, n->ops, n->nops,
                  &n->attr, &dt, &dims)) {
        sb_printf(why, "node %%%u (%s): %s", n->id, ir_op_name(n->op), g->error);
        return false;
    }
    if (dt != n->dtype || dims != n->dims) {
        strbuf want;
        sb_init(&want);
        ir_dimset_format(g, dims, &want);
        sb_printf(why, "node %%%u (%s) is typed %s but its rule gives %s[%s]", n->id,
                  ir_op_name(n->op), ir_dtype_name((ir_dtype)n->dtype), ir_dtype_name(dt),
                  sb_str(&want));
        sb_free(&want);
        return false;
    }
    return true;
}

bool ir_verify(const ir_graph *g, strbuf *why)
{
    if (!check_frame(g, why))
        return false;
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *n = g->nodes[id];
        if (n->id != id) {
            sb_printf(why, "node at position %u has id %u", id, n->id);
            return false;
        }
        if (!check_node(g, n, why))
            return false;
    }
    /* Hash-consing: the table must find every node as itself. */
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *n = g->nodes[id];
        size_t mask = g->table_cap - 1;
        size_t i = n->hash & mask;
        while (g->table[i] && g->table[i] != n)
            i = (i + 1) & mask;
        if (g->table[i] != n) {
            sb_printf(why, "node %%%u is missing from the hash-consing table", id);
            return false;
        }
    }
    return check_outputs(g, why);
}
