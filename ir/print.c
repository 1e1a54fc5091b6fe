/* print.c - the text form of a graph and its graphviz picture.
 *
 *   graph huber
 *   dims N
 *   input %0 pred: f32[N]
 *   input %1 delta: f32 = 1
 *   %2 = sub %0, %1 : f32[N]
 *   %3 = sum[N] %2 : f32
 *   output loss = %3
 *
 * Inputs are numbered first, then every live node in topological order, so
 * the numbers do not depend on how many dead nodes a pass left behind.
 */
#include "ir/ir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shortest text that reads back as the same double. */
static void format_double(double v, strbuf *out)
{
    if (isnan(v)) {
        sb_puts(out, "nan");
        return;
    }
    if (isinf(v)) {
        sb_puts(out, v < 0 ? "-inf" : "inf");
        return;
    }
    char buf[40];
    if (v == trunc(v) && fabs(v) < 1e15) { /* integral: 10, not 1e+01 */
        snprintf(buf, sizeof buf, "%.0f", v);
        sb_puts(out, buf);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    sb_puts(out, buf);
}

static void format_const(const ir_node *n, strbuf *out)
{
    if (ir_dtype_is_float(n->dtype))
        format_double(n->attr.fval, out);
    else if (n->dtype == DT_BOOL)
        sb_puts(out, n->attr.ival ? "true" : "false");
    else
        sb_printf(out, "%lld", (long long)n->attr.ival);
}

static void format_type(const ir_graph *g, ir_dtype dt, ir_dimset dims, strbuf *out)
{
    sb_puts(out, ir_dtype_name(dt));
    if (dims) {
        sb_putc(out, '[');
        ir_dimset_format(g, dims, out);
        sb_putc(out, ']');
    }
}

typedef struct printer {
    const ir_graph *g;
    bool *live;
    int *num; /* printed number per node id, -1 if not printed */
    strbuf *out;
} printer;

static void print_frame(printer *p)
{
    const ir_graph *g = p->g;
    strbuf *out = p->out;
    sb_printf(out, "graph %s\n", g->name);
    if (g->ndims) {
        sb_puts(out, "dims ");
        for (int d = 0; d < g->ndims; d++) {
            const ir_dim *dim = &g->dims[d];
            sb_printf(out, "%s%s", d ? ", " : "", dim->name);
            if (dim->root != d)
                sb_printf(out, " : %s", g->dims[dim->root].name);
            else if (dim->size >= 0 && strcmp(dim->name, "") != 0 &&
                     (dim->name[0] < '0' || dim->name[0] > '9'))
                sb_printf(out, " = %lld", (long long)dim->size);
        }
        sb_putc(out, '\n');
    }
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        sb_printf(out, "input %%%d %s: %s", p->num[in->node->id], in->name,
                  ir_dtype_name(in->dtype));
        if (in->ndim) {
            sb_putc(out, '[');
            for (int k = 0; k < in->ndim; k++)
                sb_printf(out, "%s%s", k ? ", " : "", g->dims[in->order[k]].name);
            sb_putc(out, ']');
        }
        if (in->has_default) {
            sb_puts(out, " = ");
            format_double(in->default_value, out);
        }
        if (in->kind == IR_IN_DLOSS)
            sb_puts(out, " (upstream gradient)");
        sb_putc(out, '\n');
    }
}

static void print_attr(printer *p, const ir_node *n)
{
    const ir_graph *g = p->g;
    strbuf *out = p->out;
    switch (n->op) {
    case OP_CONST: sb_putc(out, ' '); format_const(n, out); return;
    case OP_IOTA:
    case OP_DIMSIZE: sb_printf(out, " %s", g->dims[n->attr.dim].name); return;
    case OP_RENAME:
        sb_printf(out, "[%s->%s]", g->dims[n->attr.dim].name, g->dims[n->attr.dim2].name);
        return;
    default:
        if (n->attr.axes) {
            sb_putc(out, '[');
            ir_dimset_format(g, n->attr.axes, out);
            sb_putc(out, ']');
        }
    }
}

static void print_node(printer *p, const ir_node *n)
{
    strbuf *out = p->out;
    sb_printf(out, "%%%d = %s", p->num[n->id], ir_op_name(n->op));
    print_attr(p, n);
    for (int i = 0; i < n->nops; i++)
        sb_printf(out, "%s%%%d", i ? ", " : " ", p->num[n->ops[i]->id]);
    sb_puts(out, " : ");
    format_type(p->g, (ir_dtype)n->dtype, n->dims, out);
    sb_putc(out, '\n');
}

static void printer_init(printer *p, const ir_graph *g, strbuf *out)
{
    p->g = g;
    p->out = out;
    p->live = sup_malloc(g->nnodes * sizeof *p->live + 1);
    p->num = sup_malloc(g->nnodes * sizeof *p->num + 1);
    ir_mark_live(g, p->live);
    int k = 0;
    for (uint32_t id = 0; id < g->nnodes; id++)
        p->num[id] = -1;
    for (int i = 0; i < g->ninputs; i++)
        p->num[g->inputs[i].node->id] = k++;
    for (uint32_t id = 0; id < g->nnodes; id++)
        if (p->live[id] && p->num[id] < 0)
            p->num[id] = k++;
}

static void printer_free(printer *p)
{
    sup_free(p->live);
    sup_free(p->num);
}

void ir_print(const ir_graph *g, strbuf *out)
{
    printer p;
    printer_init(&p, g, out);
    print_frame(&p);
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *n = g->nodes[id];
        if (p.live[id] && n->op != OP_INPUT)
            print_node(&p, n);
    }
    for (int i = 0; i < g->noutputs; i++) {
        const ir_output *o = &g->outputs[i];
        sb_printf(out, "output %s = %%%d\n", o->name, o->node ? p.num[o->node->id] : -1);
    }
    printer_free(&p);
}

/* ---- DOT ------------------------------------------------------------------------ */

/* fwd[id]: reachable from a loss or extra output (the forward computation).
 * Everything else that is live is only needed for gradients. */
static void mark_forward(const ir_graph *g, bool *fwd)
{
    memset(fwd, 0, g->nnodes * sizeof *fwd);
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].kind != IR_OUT_GRAD && g->outputs[i].node)
            fwd[g->outputs[i].node->id] = true;
    for (uint32_t id = g->nnodes; id-- > 0;)
        if (fwd[id])
            for (int i = 0; i < g->nodes[id]->nops; i++)
                fwd[g->nodes[id]->ops[i]->id] = true;
}

void ir_print_dot(const ir_graph *g, strbuf *out)
{
    printer p;
    printer_init(&p, g, out);
    bool *fwd = sup_malloc(g->nnodes * sizeof *fwd + 1);
    mark_forward(g, fwd);
    sb_printf(out, "digraph \"%s\" {\n  rankdir=TB;\n"
                   "  node [fontname=\"monospace\", fontsize=10, style=filled];\n",
              g->name);
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *n = g->nodes[id];
        if (!p.live[id])
            continue;
        strbuf label;
        sb_init(&label);
        if (n->op == OP_INPUT)
            sb_printf(&label, "%s", g->inputs[n->attr.ival].name);
        else {
            sb_puts(&label, ir_op_name(n->op));
            printer lp = p;
            lp.out = &label;
            print_attr(&lp, n);
        }
        sb_puts(&label, "\\n");
        format_type(g, (ir_dtype)n->dtype, n->dims, &label);
        const char *color = n->op == OP_INPUT ? "lightgoldenrod1"
                            : fwd[id]         ? "lightblue"
                                              : "lightsalmon";
        sb_printf(out, "  n%d [label=\"%%%d %s\", fillcolor=%s%s];\n", p.num[id],
                  p.num[id], sb_str(&label), color,
                  n->op == OP_INPUT ? ", shape=box" : "");
        sb_free(&label);
        for (int i = 0; i < n->nops; i++)
            sb_printf(out, "  n%d -> n%d;\n", p.num[n->ops[i]->id], p.num[id]);
    }
    for (int i = 0; i < g->noutputs; i++) {
        const ir_output *o = &g->outputs[i];
        if (!o->node)
            continue;
        sb_printf(out, "  out%d [label=\"%s\", shape=doubleoctagon, fillcolor=%s];\n", i,
                  o->name, o->kind == IR_OUT_GRAD ? "lightsalmon" : "lightblue");
        sb_printf(out, "  n%d -> out%d;\n", p.num[o->node->id], i);
    }
    sb_puts(out, "  legend [shape=plaintext, style=\"\", label=\"blue: forward   "
                 "salmon: backward\"];\n}\n");
    sup_free(fwd);
    printer_free(&p);
}
