/* graph.c - the graph, its frame (dims, inputs, outputs) and the one
 * constructor every node goes through: type rules, dim rules, hash-consing. */
#include "ir/ir.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const ir_op_info ir_op_table[OP__COUNT] = {
#define X(name, str, arity, kind, typing) [OP_##name] = {str, arity, IR_##kind, TY_##typing},
#include "ir/ops.def"
#undef X
};

int ir_op_by_name(const char *name)
{
    for (int op = 0; op < OP__COUNT; op++)
        if (strcmp(ir_op_table[op].name, name) == 0)
            return op;
    return OP__COUNT;
}

/* ---- dtypes --------------------------------------------------------------- */

static const char *const dtype_names[DT__COUNT] = {"bool", "i32", "i64", "f32", "f64"};
static const size_t dtype_sizes[DT__COUNT] = {1, 4, 8, 4, 8};

const char *ir_dtype_name(ir_dtype t) { return t < DT__COUNT ? dtype_names[t] : "?"; }
size_t ir_dtype_size(ir_dtype t) { return dtype_sizes[t]; }

int ir_dtype_by_name(const char *name)
{
    for (int t = 0; t < DT__COUNT; t++)
        if (strcmp(dtype_names[t], name) == 0)
            return t;
    return -1;
}

int ir_dtype_promote(ir_dtype a, ir_dtype b)
{
    if (a == DT_BOOL || b == DT_BOOL)
        return a == b ? (int)a : -1;
    /* The enum is ordered i32 < i64 < f32 < f64, except that an int with
     * f32 stays f32: the larger enum value wins in every case. */
    return a > b ? (int)a : (int)b;
}

/* ---- graph frame ------------------------------------------------------------ */

ir_graph *ir_graph_new(const char *name)
{
    ir_graph *g = sup_calloc(1, sizeof *g);
    arena_init(&g->arena);
    g->name = arena_strdup(&g->arena, name ? name : "");
    return g;
}

void ir_graph_free(ir_graph *g)
{
    if (!g)
        return;
    sup_free(g->inputs);
    sup_free(g->outputs);
    sup_free(g->nodes);
    sup_free(g->table);
    arena_free(&g->arena);
    sup_free(g);
}

const char *ir_graph_error(const ir_graph *g) { return g->error; }

static ir_node *fail(ir_graph *g, const char *fmt, ...) SUP_PRINTF(2, 3);
static ir_node *fail(ir_graph *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
    return NULL;
}

int ir_dim_add(ir_graph *g, const char *name, int64_t size, int root, src_loc loc)
{
    if (g->ndims >= IR_MAX_DIMS)
        return -1;
    int id = g->ndims++;
    g->dims[id] = (ir_dim){arena_strdup(&g->arena, name), size,
                           root >= 0 ? root : id, loc};
    return id;
}

int ir_dim_find(const ir_graph *g, const char *name)
{
    for (int d = 0; d < g->ndims; d++)
        if (strcmp(g->dims[d].name, name) == 0)
            return d;
    return -1;
}

int64_t ir_dim_size(const ir_graph *g, int d) { return g->dims[g->dims[d].root].size; }

void ir_dimset_format(const ir_graph *g, ir_dimset s, strbuf *out)
{
    const char *sep = "";
    IR_DIMSET_FOREACH(d, s) {
        sb_printf(out, "%s%s", sep, d < g->ndims ? g->dims[d].name : "?");
        sep = ", ";
    }
}

int ir_input_add(ir_graph *g, const char *name, ir_input_kind kind, ir_dtype dt,
                 int ndim, const int *order, src_loc loc)
{
    SUP_GROW(g->inputs, g->inputs_cap, (size_t)g->ninputs + 1);
    int idx = g->ninputs++;
    ir_input *in = &g->inputs[idx];
    *in = (ir_input){.name = arena_strdup(&g->arena, name), .kind = kind,
                     .dtype = dt, .ndim = ndim, .loc = loc};
    for (int i = 0; i < ndim && i < IR_MAX_RANK; i++)
        in->order[i] = order[i];
    ir_attr attr = {.ival = idx};
    in->node = ir_make(g, OP_INPUT, dt, NULL, 0, &attr, loc);
    return idx;
}

int ir_input_find(const ir_graph *g, const char *name)
{
    for (int i = 0; i < g->ninputs; i++)
        if (strcmp(g->inputs[i].name, name) == 0)
            return i;
    return -1;
}

int ir_output_add(ir_graph *g, const char *name, ir_output_kind kind, int input,
                  ir_node *node)
{
    SUP_GROW(g->outputs, g->outputs_cap, (size_t)g->noutputs + 1);
    int idx = g->noutputs++;
    g->outputs[idx] = (ir_output){arena_strdup(&g->arena, name), kind, input, node};
    return idx;
}

int ir_output_find(const ir_graph *g, const char *name)
{
    for (int i = 0; i < g->noutputs; i++)
        if (strcmp(g->outputs[i].name, name) == 0)
            return i;
    return -1;
}

ir_graph *ir_graph_clone_frame(const ir_graph *src)
{
    ir_graph *g = ir_graph_new(src->name);
    for (int d = 0; d < src->ndims; d++)
        ir_dim_add(g, src->dims[d].name, src->dims[d].size, src->dims[d].root,
                   src->dims[d].loc);
    for (int i = 0; i < src->ninputs; i++) {
        const ir_input *in = &src->inputs[i];
        int k = ir_input_add(g, in->name, in->kind, in->dtype, in->ndim, in->order,
                             in->loc);
        g->inputs[k].has_default = in->has_default;
        g->inputs[k].default_value = in->default_value;
    }
    return g;
}

/* ---- hash-consing ----------------------------------------------------------- */

static uint64_t node_hash(const ir_node *n)
{
    uint64_t h = sup_hash_mix(n->op, n->dtype);
    h = sup_hash_mix(h, n->dims);
    h = sup_hash_mix(h, n->nops);
    for (int i = 0; i < n->nops; i++)
        h = sup_hash_mix(h, n->ops[i]->id);
    uint64_t fbits;
    memcpy(&fbits, &n->attr.fval, sizeof fbits);
    h = sup_hash_mix(h, fbits);
    h = sup_hash_mix(h, (uint64_t)n->attr.ival);
    h = sup_hash_mix(h, n->attr.axes);
    return sup_hash_mix(h, (uint64_t)(uint16_t)n->attr.dim << 16 | (uint16_t)n->attr.dim2);
}

static bool node_equal(const ir_node *a, const ir_node *b)
{
    if (a->hash != b->hash || a->op != b->op || a->dtype != b->dtype ||
        a->dims != b->dims || a->nops != b->nops)
        return false;
    for (int i = 0; i < a->nops; i++)
        if (a->ops[i] != b->ops[i])
            return false;
    return memcmp(&a->attr.fval, &b->attr.fval, sizeof(double)) == 0 &&
           a->attr.ival == b->attr.ival && a->attr.axes == b->attr.axes &&
           a->attr.dim == b->attr.dim && a->attr.dim2 == b->attr.dim2;
}

static void table_insert(ir_graph *g, ir_node *n)
{
    size_t mask = g->table_cap - 1;
    size_t i = n->hash & mask;
    while (g->table[i])
        i = (i + 1) & mask;
    g->table[i] = n;
}

static void table_grow(ir_graph *g)
{
    size_t cap = g->table_cap ? g->table_cap * 2 : 256;
    sup_free(g->table);
    g->table = sup_calloc(cap, sizeof *g->table);
    g->table_cap = cap;
    for (uint32_t i = 0; i < g->nnodes; i++)
        table_insert(g, g->nodes[i]);
}

static ir_node *intern(ir_graph *g, const ir_node *proto)
{
    if ((g->nnodes + 1) * 2 > g->table_cap)
        table_grow(g);
    size_t mask = g->table_cap - 1;
    for (size_t i = proto->hash & mask; g->table[i]; i = (i + 1) & mask)
        if (node_equal(g->table[i], proto))
            return g->table[i];
    size_t size = sizeof(ir_node) + sizeof(ir_node *) * proto->nops;
    ir_node *n = arena_alloc(&g->arena, size);
    memcpy(n, proto, size);
    n->id = g->nnodes;
    SUP_GROW(g->nodes, g->nodes_cap, (size_t)g->nnodes + 1);
    g->nodes[g->nnodes++] = n;
    table_insert(g, n);
    return n;
}

/* ---- typing ------------------------------------------------------------------ */

static bool same_dtype(ir_node *const *ops, int n)
{
    for (int i = 1; i < n; i++)
        if (ops[i]->dtype != ops[0]->dtype)
            return false;
    return true;
}

/* Result dtype of op on ops, or -1 with g->error set. */
static int result_dtype(ir_graph *g, ir_op op, ir_dtype given, ir_node *const *ops, int nops)
{
    const ir_op_info *info = ir_op_info_of(op);
    const char *name = info->name;
    ir_dtype t0 = nops ? (ir_dtype)ops[0]->dtype : DT_BOOL;
    switch (info->typing) {
    case TY_NONE:
        if (op == OP_IOTA || op == OP_DIMSIZE)
            return DT_I64;
        return (int)given;
    case TY_ARITH:
    case TY_FLOAT:
    case TY_CMP:
        for (int i = 0; i < nops; i++)
            if (ops[i]->dtype == DT_BOOL)
                return fail(g, "'%s' is not defined on bool; cast it first", name), -1;
        if (!same_dtype(ops, nops))
            return fail(g, "'%s' needs operands of one dtype", name), -1;
        if (info->typing == TY_FLOAT && !ir_dtype_is_float(t0))
            return fail(g, "'%s' needs a float operand, got %s", name,
                        ir_dtype_name(t0)), -1;
        if (info->typing == TY_CMP)
            return DT_BOOL;
        return (int)t0;
    case TY_TEST:
        if (!ir_dtype_is_float(t0))
            return fail(g, "'%s' needs a float operand", name), -1;
        return DT_BOOL;
    case TY_EQ:
        if (!same_dtype(ops, nops))
            return fail(g, "'%s' needs operands of one dtype", name), -1;
        return DT_BOOL;
    case TY_LOGIC:
        for (int i = 0; i < nops; i++)
            if (ops[i]->dtype != DT_BOOL)
                return fail(g, "'%s' needs bool operands", name), -1;
        return DT_BOOL;
    case TY_WHERE:
        if (ops[0]->dtype != DT_BOOL)
            return fail(g, "the condition of 'where' must be bool"), -1;
        if (ops[1]->dtype != ops[2]->dtype)
            return fail(g, "the branches of 'where' need one dtype"), -1;
        return ops[1]->dtype;
    case TY_CAST:
        return (int)given;
    case TY_SAME:
        return (int)t0;
    case TY_GRAD:
        if (ops[1]->op != OP_INPUT)
            return fail(g, "grad() is taken with respect to an input"), -1;
        if (!ir_dtype_is_float(t0) || ops[0]->dims)
            return fail(g, "grad() needs a scalar float expression"), -1;
        if (!ir_dtype_is_float(ops[1]->dtype))
            return fail(g, "grad() with respect to an integer input"), -1;
        return ops[1]->dtype;
    case TY_INDEX:
        for (int i = 1; i < nops; i++)
            if (!ir_dtype_is_int(ops[i]->dtype))
                return fail(g, "gather indices must be integers"), -1;
        return (int)t0;
    }
    return -1;
}

/* Result dims of op, or false with g->error set. */
static bool result_dims(ir_graph *g, ir_op op, ir_node *const *ops, int nops,
                        const ir_attr *a, ir_dimset *out)
{
    ir_dimset d = 0;
    switch (ir_op_info_of(op)->kind) {
    case IR_LEAF:
        if (op == OP_INPUT) {
            if (a->ival < 0 || a->ival >= g->ninputs)
                return fail(g, "input %lld does not exist", (long long)a->ival), false;
            const ir_input *in = &g->inputs[a->ival];
            for (int i = 0; i < in->ndim; i++)
                d |= ir_dimbit(in->order[i]);
        } else if (op == OP_IOTA) {
            d = ir_dimbit(a->dim);
        }
        break;
    case IR_ELEM:
        for (int i = 0; i < nops; i++)
            d |= ops[i]->dims;
        break;
    case IR_REDUCE:
        if (!a->axes || !ir_dimset_subset(a->axes, ops[0]->dims))
            return fail(g, "reduction axes are not dims of the operand"), false;
        d = ops[0]->dims & ~a->axes;
        break;
    case IR_STRUCT:
        if (op == OP_EXPAND) {
            if (!a->axes || (a->axes & ops[0]->dims))
                return fail(g, "expand must add new dims"), false;
            d = ops[0]->dims | a->axes;
        } else {
            if (!ir_dimset_has(ops[0]->dims, a->dim) || ir_dimset_has(ops[0]->dims, a->dim2))
                return fail(g, "rename needs a dim of the operand and a new name"), false;
            if (g->dims[a->dim].root != g->dims[a->dim2].root)
                return fail(g, "rename between dims of different sizes"), false;
            d = (ops[0]->dims & ~ir_dimbit(a->dim)) | ir_dimbit(a->dim2);
        }
        break;
    case IR_META: /* GRAD: the input's dims; FOUND_INF: a scalar */
        d = nops == 2 ? ops[1]->dims : 0;
        break;
    case IR_GATHER:
        if (!a->axes || !ir_dimset_subset(a->axes, ops[0]->dims))
            return fail(g, "gathered axes are not dims of the operand"), false;
        if (nops != 1 + ir_dimset_count(a->axes))
            return fail(g, "gather needs one index per gathered axis"), false;
        d = ops[0]->dims & ~a->axes;
        for (int i = 1; i < nops; i++)
            d |= ops[i]->dims;
        break;
    }
    *out = d;
    return true;
}

bool ir_infer(ir_graph *g, ir_op op, ir_dtype dtype, ir_node *const *ops, int nops,
              const ir_attr *a, ir_dtype *dt_out, ir_dimset *dims_out)
{
    if (op == OP_INPUT && (a->ival < 0 || a->ival >= g->ninputs))
        return fail(g, "input %lld does not exist", (long long)a->ival), false;
    int dt = op == OP_INPUT ? (int)g->inputs[a->ival].dtype
                            : result_dtype(g, op, dtype, ops, nops);
    if (dt < 0 || !result_dims(g, op, ops, nops, a, dims_out))
        return false;
    *dt_out = (ir_dtype)dt;
    return true;
}

/* Keep only the attribute fields the op reads, so equal nodes hash equal. */
static ir_attr normalize_attr(ir_op op, ir_dtype dt, const ir_attr *a)
{
    ir_attr n = {0};
    if (!a)
        return n;
    switch (op) {
    case OP_INPUT: n.ival = a->ival; break;
    case OP_CONST:
        if (ir_dtype_is_float(dt))
            n.fval = a->fval;
        else if (dt == DT_BOOL)
            n.ival = a->ival != 0;
        else if (dt == DT_I32)
            n.ival = (int32_t)a->ival;
        else
            n.ival = a->ival;
        break;
    case OP_IOTA:
    case OP_DIMSIZE: n.dim = a->dim; break;
    case OP_RENAME: n.dim = a->dim; n.dim2 = a->dim2; break;
    default:
        if (ir_op_info_of(op)->kind == IR_REDUCE || op == OP_EXPAND || op == OP_GATHER)
            n.axes = a->axes;
        break;
    }
    return n;
}

ir_node *ir_make(ir_graph *g, ir_op op, ir_dtype dtype, ir_node *const *ops,
                 int nops, const ir_attr *attr, src_loc loc)
{
    const ir_op_info *info = ir_op_info_of(op);
    for (int i = 0; i < nops; i++)
        if (!ops[i])
            return NULL; /* an operand already failed: keep its message */
    if (info->arity >= 0 ? nops != info->arity : nops < 1)
        return fail(g, "'%s' takes %d operands, got %d", info->name, info->arity, nops);
    if (nops > 255)
        return fail(g, "too many operands");
    ir_attr a = normalize_attr(op, dtype, attr);
    if ((op == OP_IOTA || op == OP_DIMSIZE) && (a.dim < 0 || a.dim >= g->ndims))
        return fail(g, "dim %d does not exist", a.dim);
    if (op == OP_RENAME && (a.dim < 0 || a.dim >= g->ndims || a.dim2 < 0 || a.dim2 >= g->ndims))
        return fail(g, "rename of a dim that does not exist");
    if (g->ndims < IR_MAX_DIMS && (a.axes >> g->ndims))
        return fail(g, "axes name dims that do not exist");
    ir_dtype dt;
    ir_dimset dims;
    if (!ir_infer(g, op, dtype, ops, nops, &a, &dt, &dims))
        return NULL;

    struct {
        ir_node n;
        ir_node *ops[256];
    } proto;
    proto.n = (ir_node){.op = (uint8_t)op, .dtype = (uint8_t)dt, .nops = (uint8_t)nops,
                        .dims = dims, .attr = a, .loc = loc};
    for (int i = 0; i < nops; i++)
        proto.n.ops[i] = ops[i];
    proto.n.hash = node_hash(&proto.n);
    return intern(g, &proto.n);
}

/* ---- convenience builders ------------------------------------------------------- */

ir_node *ir_const(ir_graph *g, ir_dtype dt, double value, src_loc loc)
{
    ir_attr a = {0};
    if (ir_dtype_is_float(dt))
        a.fval = value;
    else
        a.ival = (int64_t)value;
    return ir_make(g, OP_CONST, dt, NULL, 0, &a, loc);
}

ir_node *ir_iota(ir_graph *g, int dim, src_loc loc)
{
    ir_attr a = {.dim = (int16_t)dim};
    return ir_make(g, OP_IOTA, DT_I64, NULL, 0, &a, loc);
}

ir_node *ir_dimsize(ir_graph *g, int dim, src_loc loc)
{
    ir_attr a = {.dim = (int16_t)dim};
    return ir_make(g, OP_DIMSIZE, DT_I64, NULL, 0, &a, loc);
}

ir_node *ir_cast(ir_graph *g, ir_dtype dt, ir_node *x, src_loc loc)
{
    if (!x || x->dtype == dt)
        return x;
    return ir_make(g, OP_CAST, dt, &x, 1, NULL, loc);
}

/* Cast every operand to their common promoted dtype (bools stay as they are:
 * the typing rule will report them). */
static void promote(ir_graph *g, ir_node **ops, int n, src_loc loc)
{
    int t = -1;
    for (int i = 0; i < n; i++) {
        if (!ops[i] || ops[i]->dtype == DT_BOOL)
            return;
        t = t < 0 ? ops[i]->dtype : ir_dtype_promote((ir_dtype)t, ops[i]->dtype);
    }
    for (int i = 0; i < n; i++)
        ops[i] = ir_cast(g, (ir_dtype)t, ops[i], loc);
}

ir_node *ir_unary(ir_graph *g, ir_op op, ir_node *x, src_loc loc)
{
    if (x && ir_op_info_of(op)->typing == TY_FLOAT && ir_dtype_is_int(x->dtype))
        x = ir_cast(g, DT_F32, x, loc);
    return ir_make(g, op, DT_BOOL, &x, 1, NULL, loc);
}

ir_node *ir_binary(ir_graph *g, ir_op op, ir_node *a, ir_node *b, src_loc loc)
{
    ir_node *ops[2] = {a, b};
    if (ir_op_info_of(op)->typing != TY_LOGIC)
        promote(g, ops, 2, loc);
    if (op == OP_DIV && ops[0] && ops[1] && ir_dtype_is_int(ops[0]->dtype)) {
        ops[0] = ir_cast(g, DT_F32, ops[0], loc);
        ops[1] = ir_cast(g, DT_F32, ops[1], loc);
    }
    return ir_make(g, op, DT_BOOL, ops, 2, NULL, loc);
}

ir_node *ir_where(ir_graph *g, ir_node *c, ir_node *a, ir_node *b, src_loc loc)
{
    ir_node *ops[3] = {c, a, b};
    promote(g, ops + 1, 2, loc);
    return ir_make(g, OP_WHERE, DT_BOOL, ops, 3, NULL, loc);
}

ir_node *ir_reduce(ir_graph *g, ir_op op, ir_node *x, ir_dimset axes, src_loc loc)
{
    if (x && !axes)
        return x;
    ir_attr a = {.axes = axes};
    return ir_make(g, op, DT_BOOL, &x, 1, &a, loc);
}

ir_node *ir_expand(ir_graph *g, ir_node *x, ir_dimset to, src_loc loc)
{
    if (!x)
        return NULL;
    if (!ir_dimset_subset(x->dims, to))
        return fail(g, "expand to dims that do not contain the operand's");
    if (x->dims == to)
        return x;
    ir_attr a = {.axes = to & ~x->dims};
    return ir_make(g, OP_EXPAND, DT_BOOL, &x, 1, &a, loc);
}

ir_node *ir_rename(ir_graph *g, ir_node *x, int from, int to, src_loc loc)
{
    if (from == to)
        return x;
    ir_attr a = {.dim = (int16_t)from, .dim2 = (int16_t)to};
    return ir_make(g, OP_RENAME, DT_BOOL, &x, 1, &a, loc);
}

ir_node *ir_gather(ir_graph *g, ir_node *x, ir_dimset axes, ir_node *const *idx,
                   src_loc loc)
{
    ir_node *ops[1 + IR_MAX_RANK];
    int n = ir_dimset_count(axes);
    if (n > IR_MAX_RANK)
        return fail(g, "too many gathered axes");
    ops[0] = x;
    for (int i = 0; i < n; i++)
        ops[1 + i] = idx[i];
    ir_attr a = {.axes = axes};
    return ir_make(g, OP_GATHER, DT_BOOL, ops, 1 + n, &a, loc);
}

/* ---- queries ----------------------------------------------------------------------- */

double ir_const_value(const ir_node *n)
{
    return ir_dtype_is_float(n->dtype) ? n->attr.fval : (double)n->attr.ival;
}

/* n without the casts, renames and broadcasts around it. */
static const ir_node *skip_views(const ir_node *n)
{
    while (n->op == OP_CAST || n->op == OP_RENAME || n->op == OP_EXPAND)
        n = n->ops[0];
    return n;
}

/* The input node n passes on as an index (see ir_index_dim), or NULL. */
static const ir_node *index_source(const ir_node *n, int depth)
{
    n = skip_views(n);
    if (n->op == OP_INPUT || depth == 0)
        return n->op == OP_INPUT ? n : NULL;
    if (n->op != OP_WHERE && n->op != OP_MIN && n->op != OP_MAX)
        return NULL;
    int w = n->op == OP_WHERE; /* where's operands 1 and 2, min's and max's 0 and 1 */
    const ir_node *a = skip_views(n->ops[w]), *b = skip_views(n->ops[w + 1]);
    if (b->op == OP_CONST)
        return index_source(a, depth - 1);
    return a->op == OP_CONST ? index_source(b, depth - 1) : NULL;
}

static bool is_compare(int op)
{
    return op == OP_EQ || op == OP_NE || op == OP_LT || op == OP_LE || op == OP_GT ||
           op == OP_GE;
}

int ir_index_dim(const ir_graph *g, int input)
{
    const ir_node *in = g->inputs[input].node;
    for (uint32_t id = 0; id < g->nnodes; id++) {
        const ir_node *n = g->nodes[id];
        if (n->op == OP_GATHER) {
            int k = 1;
            IR_DIMSET_FOREACH(a, n->attr.axes) {
                if (index_source(n->ops[k++], 4) == in)
                    return a;
            }
        } else if (is_compare(n->op)) {
            const ir_node *a = skip_views(n->ops[0]), *b = skip_views(n->ops[1]);
            if (b->op == OP_IOTA && index_source(a, 4) == in)
                return b->attr.dim;
            if (a->op == OP_IOTA && index_source(b, 4) == in)
                return a->attr.dim;
        }
    }
    return -1;
}

bool ir_is_const_value(const ir_node *n, double v)
{
    return n->op == OP_CONST && ir_const_value(n) == v;
}

void ir_mark_live(const ir_graph *g, bool *live)
{
    memset(live, 0, g->nnodes * sizeof *live);
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].node)
            live[g->outputs[i].node->id] = true;
    for (int i = 0; i < g->ninputs; i++)
        live[g->inputs[i].node->id] = true;
    /* Ids are topological: one backward sweep reaches everything. */
    for (uint32_t id = g->nnodes; id-- > 0;) {
        if (!live[id])
            continue;
        const ir_node *n = g->nodes[id];
        for (int i = 0; i < n->nops; i++)
            live[n->ops[i]->id] = true;
    }
}

/* ---- rebuilding ------------------------------------------------------------------- */

ir_node *ir_copy_node(ir_graph *dst, const ir_node *old, ir_node *const *new_ops)
{
    return ir_make(dst, (ir_op)old->op, (ir_dtype)old->dtype, new_ops, old->nops,
                   &old->attr, old->loc);
}

ir_graph *ir_rebuild(const ir_graph *src, ir_rewrite_fn fn, void *ctx)
{
    ir_graph *dst = ir_graph_clone_frame(src);
    bool *live = sup_malloc(src->nnodes * sizeof *live + 1);
    ir_node **map = sup_calloc(src->nnodes + 1, sizeof *map);
    ir_mark_live(src, live);
    ir_node *ops[256];
    for (uint32_t id = 0; id < src->nnodes; id++) {
        const ir_node *n = src->nodes[id];
        if (!live[id])
            continue;
        if (n->op == OP_INPUT) {
            map[id] = dst->inputs[n->attr.ival].node;
            continue;
        }
        for (int i = 0; i < n->nops; i++)
            ops[i] = map[n->ops[i]->id];
        ir_node *r = fn ? fn(ctx, dst, n, ops) : NULL;
        map[id] = r ? r : ir_copy_node(dst, n, ops);
        if (!map[id])
            sup_fatal("rebuilding node %%%u (%s) failed: %s", id, ir_op_name(n->op),
                      dst->error);
    }
    for (int i = 0; i < src->noutputs; i++) {
        const ir_output *o = &src->outputs[i];
        ir_output_add(dst, o->name, o->kind, o->input, o->node ? map[o->node->id] : NULL);
    }
    sup_free(live);
    sup_free(map);
    return dst;
}
