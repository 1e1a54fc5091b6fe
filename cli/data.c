/* data.c - random inputs for lossc demo and lossc gradcheck.
 *
 * Each input gets values from the domain its use implies, read off the
 * frontend's graph:
 *  - a float input that reaches log, sqrt, rsqrt or pow's base through
 *    affine steps (log(p), log(1 - p), sqrt(x + eps)) is a probability-like
 *    value, uniform in [0.02, 0.98]; any other float input is N(0, 1);
 *  - an integer input that indexes a dim (ir_index_dim: a gather index, or
 *    compared with that dim's positions as one_hot does, also through an
 *    ignore_index where) is uniform in [0, size of the dim); another
 *    integer input is uniform in [0, 3);
 *  - bools are fair coins; scalars keep their default (or 1).
 */
#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(splitmix(s) >> 11) * 0x1p-53; }

static double normal(uint64_t *s)
{
    double u = uniform(s), v = uniform(s);
    return sqrt(-2 * log(u > 0 ? u : 0x1p-53)) * cos(6.283185307179586 * v);
}

/* ---- reading the domain off the graph ---------------------------------------------- */

/* Mark the inputs that x is an affine function of (a few steps deep). */
static void mark_positive(const ir_node *x, bool *positive, int depth)
{
    if (depth > 8)
        return;
    switch (x->op) {
    case OP_INPUT: positive[x->attr.ival] = true; return;
    case OP_CAST: case OP_EXPAND: case OP_RENAME: case OP_NEG: case OP_SUM: case OP_RMAX:
    case OP_RMIN: case OP_GATHER:
        mark_positive(x->ops[0], positive, depth + 1);
        return;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MIN: case OP_MAX:
        mark_positive(x->ops[0], positive, depth + 1);
        mark_positive(x->ops[1], positive, depth + 1);
        return;
    case OP_WHERE:
        mark_positive(x->ops[1], positive, depth + 1);
        mark_positive(x->ops[2], positive, depth + 1);
        return;
    default: return; /* exp, sigmoid, softplus ...: positive whatever their input */
    }
}

/* For each input, the root dim its values index, or -1. */
static void index_dims(const ir_graph *g, int *dim_of)
{
    for (int i = 0; i < g->ninputs; i++) {
        int d = ir_dtype_is_int(g->inputs[i].dtype) ? ir_index_dim(g, i) : -1;
        dim_of[i] = d >= 0 ? ir_dim_root(g, d) : -1;
    }
}

/* ---- dims ---------------------------------------------------------------------------- */

int cli_pick_dims(const cli_args *a, const ir_graph *fe, int64_t first, int64_t other,
                  int64_t *dims)
{
    for (int d = 0; d < IR_MAX_DIMS; d++)
        dims[d] = -1;
    for (int i = 0; i < a->dims.n; i++) {
        const char *kv = a->dims.items[i], *eq = strchr(kv, '=');
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(eq - kv), kv);
        int d = ir_dim_find(fe, name);
        char *end;
        long long v = strtoll(eq + 1, &end, 10);
        if (d < 0 || ir_dim_root(fe, d) != d) {
            strbuf names;
            sb_init(&names);
            for (int k = 0; k < fe->ndims; k++)
                if (ir_dim_root(fe, k) == k)
                    sb_printf(&names, "%s%s", names.len ? ", " : "", fe->dims[k].name);
            cli_usage_error(a->cmd_name, "--dim %s: loss '%s' has no dim %s (its dims: %s)", kv,
                            fe->name, name, names.len ? sb_str(&names) : "none");
            sb_free(&names);
            return CLI_USAGE;
        }
        if (end == eq + 1 || *end || v < 0)
            return cli_usage_error(a->cmd_name, "--dim %s: the size must be a number >= 0", kv);
        if (fe->dims[d].size >= 0 && fe->dims[d].size != v)
            return cli_fail("--dim %s: %s is fixed to %lld", kv, name,
                            (long long)fe->dims[d].size);
        dims[d] = v;
    }
    bool first_taken = false;
    for (int d = 0; d < fe->ndims; d++) {
        if (ir_dim_root(fe, d) != d)
            continue;
        if (fe->dims[d].size >= 0)
            dims[d] = fe->dims[d].size;
        if (dims[d] < 0)
            dims[d] = first_taken ? other : first;
        first_taken = true;
    }
    for (int d = 0; d < fe->ndims; d++)
        dims[d] = dims[ir_dim_root(fe, d)];
    return CLI_OK;
}

/* ---- values ---------------------------------------------------------------------------- */

static void store(DLDataType dt, void *p, int64_t i, double v)
{
    if (dt.code == kDLFloat && dt.bits == 32)
        ((float *)p)[i] = (float)v;
    else if (dt.code == kDLFloat)
        ((double *)p)[i] = v;
    else if (dt.code == kDLInt && dt.bits == 32)
        ((int32_t *)p)[i] = (int32_t)v;
    else if (dt.code == kDLInt)
        ((int64_t *)p)[i] = (int64_t)v;
    else
        ((uint8_t *)p)[i] = v != 0;
}

static DLDataType dl_of(ir_dtype t)
{
    switch (t) {
    case DT_BOOL: return (DLDataType){kDLUInt, 8, 1};
    case DT_I32: return (DLDataType){kDLInt, 32, 1};
    case DT_I64: return (DLDataType){kDLInt, 64, 1};
    case DT_F32: return (DLDataType){kDLFloat, 32, 1};
    default: return (DLDataType){kDLFloat, 64, 1};
    }
}

void cli_gen_inputs(const ir_graph *fe, const int64_t *dims, uint64_t seed, cli_npy *arrays)
{
    bool *positive = sup_calloc((size_t)fe->ninputs + 1, sizeof *positive);
    int *dim_of = sup_calloc((size_t)fe->ninputs + 1, sizeof *dim_of);
    for (uint32_t id = 0; id < fe->nnodes; id++) {
        const ir_node *n = fe->nodes[id];
        if (n->op == OP_LOG || n->op == OP_SQRT || n->op == OP_RSQRT || n->op == OP_POW)
            mark_positive(n->ops[0], positive, 0);
    }
    index_dims(fe, dim_of);
    uint64_t rng = seed * 0x2545f4914f6cdd1dull + 1;
    for (int i = 0; i < fe->ninputs; i++) {
        const ir_input *in = &fe->inputs[i];
        int64_t shape[IR_MAX_RANK];
        for (int k = 0; k < in->ndim; k++)
            shape[k] = dims[in->order[k]];
        DLDataType dt = dl_of(in->dtype);
        cli_npy *arr = &arrays[i];
        cli_npy_alloc(arr, dt, in->ndim, shape);
        if (in->kind == IR_IN_SCALAR) {
            store(dt, arr->data, 0, in->has_default ? in->default_value : 1.0);
            continue;
        }
        int64_t range = dim_of[i] >= 0 ? dims[dim_of[i]] : 3;
        for (int64_t e = 0; e < arr->count; e++) {
            double v;
            if (ir_dtype_is_float(in->dtype))
                v = positive[i] ? 0.02 + 0.96 * uniform(&rng) : normal(&rng);
            else if (in->dtype == DT_BOOL)
                v = splitmix(&rng) & 1;
            else
                v = range > 0 ? (double)(splitmix(&rng) % (uint64_t)range) : 0;
            store(dt, arr->data, e, v);
        }
    }
    sup_free(positive);
    sup_free(dim_of);
}

int cli_bind_arrays(lossc_loss *loss, const cli_args *a, cli_npy *arrays, const ir_graph *fe)
{
    for (int i = 0; i < fe->ninputs; i++) {
        const ir_input *in = &fe->inputs[i];
        lossc_status st = LOSSC_OK;
        if (in->kind == IR_IN_SCALAR) {
            /* defaults and --set values are bound already */
            bool set = false;
            for (int k = 0; k < a->sets.n; k++)
                set |= strncmp(a->sets.items[k], in->name, strlen(in->name)) == 0 &&
                       a->sets.items[k][strlen(in->name)] == '=';
            if (!set && !in->has_default) {
                DLTensor t = cli_npy_tensor(&arrays[i]);
                st = lossc_bind_input(loss, in->name, &t);
            }
        } else {
            DLTensor t = cli_npy_tensor(&arrays[i]);
            st = lossc_bind_input(loss, in->name, &t);
        }
        if (st != LOSSC_OK)
            return cli_fail("%s", lossc_loss_error(loss));
    }
    return CLI_OK;
}
