/* interp.c - the f64 reference interpreter: the oracle for codegen and
 * autodiff tests.
 *
 * It evaluates every live node into a dense array of doubles laid out in
 * canonical dim order (last dim fastest), whatever the node's dtype: bools are
 * 0/1, integers are exact below 2^53. It favours being obviously right over
 * being fast: each point of each node is visited with an explicit coordinate
 * vector. Float results are never rounded to f32: the interpreter computes
 * the exact function the graph denotes, to double precision.
 */
#include "ir/ir.h"

#include <math.h>
#include <string.h>

typedef struct interp {
    const ir_graph *g;
    int64_t size[IR_MAX_DIMS]; /* run-time size of every dim */
    double **val;              /* per node id: dense value, or NULL */
    strbuf *err;
} interp;

/* Number of elements of a tensor over dims s. */
static int64_t volume(const interp *in, ir_dimset s)
{
    int64_t n = 1;
    IR_DIMSET_FOREACH(d, s)
        n *= in->size[d];
    return n;
}

/* Row-major strides of a tensor over dims s (canonical order), per dim id;
 * dims not in s get stride 0, which makes broadcasting free. */
static void strides_of(const interp *in, ir_dimset s, int64_t *stride)
{
    memset(stride, 0, sizeof(int64_t) * IR_MAX_DIMS);
    int64_t st = 1;
    for (int d = IR_MAX_DIMS - 1; d >= 0; d--)
        if (ir_dimset_has(s, d)) {
            stride[d] = st;
            st *= in->size[d];
        }
}

/* Iterate every coordinate of dims s in row-major order. */
typedef struct cursor {
    ir_dimset dims;
    int64_t coord[IR_MAX_DIMS];
    int64_t flat, count;
} cursor;

static void cursor_init(const interp *in, cursor *c, ir_dimset s)
{
    memset(c, 0, sizeof *c);
    c->dims = s;
    c->count = volume(in, s);
}

static void cursor_next(const interp *in, cursor *c)
{
    c->flat++;
    for (int d = IR_MAX_DIMS - 1; d >= 0; d--) {
        if (!ir_dimset_has(c->dims, d))
            continue;
        if (++c->coord[d] < in->size[d])
            return;
        c->coord[d] = 0;
    }
}

static int64_t offset(const int64_t *stride, const int64_t *coord, ir_dimset dims)
{
    int64_t off = 0;
    IR_DIMSET_FOREACH(d, dims)
        off += stride[d] * coord[d];
    return off;
}

/* ---- scalar semantics (shared with nothing: this is the definition) ---------- */

static double to_dtype(double v, ir_dtype dt)
{
    switch (dt) {
    case DT_BOOL: return v != 0;
    case DT_I32:
    case DT_I64: return isfinite(v) ? trunc(v) : 0;
    default: return v;
    }
}

static double py_floordiv(double a, double b, bool is_int)
{
    if (is_int && b == 0)
        return 0; /* documented: integer division by zero gives 0 */
    return floor(a / b);
}

static double py_mod(double a, double b, bool is_int)
{
    if (is_int && b == 0)
        return 0;
    double r = fmod(a, b);
    if (r != 0 && ((r < 0) != (b < 0)))
        r += b;
    return r;
}

static double nan_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : a > b ? a : b; }
static double nan_min(double a, double b) { return isnan(a) || isnan(b) ? NAN : a < b ? a : b; }

static double softplus(double x) { return log1p(exp(-fabs(x))) + (x > 0 ? x : 0); }
static double sigmoid(double x)
{
    if (x >= 0)
        return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

static double sign_of(double x) { return x > 0 ? 1 : x < 0 ? -1 : x; }

static double eval_unary(ir_op op, double x)
{
    switch (op) {
    case OP_NEG: return -x;
    case OP_ABS: return fabs(x);
    case OP_SIGN: return sign_of(x);
    case OP_RELU: return isnan(x) ? x : x > 0 ? x : 0;
    case OP_FLOOR: return floor(x);
    case OP_CEIL: return ceil(x);
    case OP_EXP: return exp(x);
    case OP_EXPM1: return expm1(x);
    case OP_LOG: return log(x);
    case OP_LOG1P: return log1p(x);
    case OP_SQRT: return sqrt(x);
    case OP_RSQRT: return 1 / sqrt(x);
    case OP_TANH: return tanh(x);
    case OP_SIGMOID: return sigmoid(x);
    case OP_SOFTPLUS: return softplus(x);
    case OP_ISFINITE: return isfinite(x);
    case OP_NOT: return x == 0;
    default: return NAN;
    }
}

static double eval_binary(ir_op op, double a, double b, bool is_int)
{
    switch (op) {
    case OP_ADD: return a + b;
    case OP_SUB: return a - b;
    case OP_MUL: return a * b;
    case OP_DIV: return a / b;
    case OP_FLOORDIV: return py_floordiv(a, b, is_int);
    case OP_MOD: return py_mod(a, b, is_int);
    case OP_POW: return is_int && b < 0 ? (a == 1 ? 1 : 0) : pow(a, b);
    case OP_MIN: return nan_min(a, b);
    case OP_MAX: return nan_max(a, b);
    case OP_LT: return a < b;
    case OP_LE: return a <= b;
    case OP_GT: return a > b;
    case OP_GE: return a >= b;
    case OP_EQ: return a == b;
    case OP_NE: return a != b;
    case OP_AND: return a != 0 && b != 0;
    case OP_OR: return a != 0 || b != 0;
    default: return NAN;
    }
}

/* One point of an elementwise node whose result has dtype dt. */
static double eval_point(ir_op op, ir_dtype dt, int nops, const double *x, bool is_int)
{
    double v;
    if (op == OP_WHERE)
        v = x[0] != 0 ? x[1] : x[2];
    else if (op == OP_CAST || op == OP_DETACH)
        v = x[0];
    else if (nops == 1)
        v = eval_unary(op, x[0]);
    else
        v = eval_binary(op, x[0], x[1], is_int);
    return to_dtype(v, dt);
}

/* ---- node evaluation ---------------------------------------------------------- */

static bool eval_elementwise(interp *in, const ir_node *n, double *out)
{
    int64_t st[4][IR_MAX_DIMS];
    const double *src[4];
    for (int i = 0; i < n->nops; i++) {
        strides_of(in, n->ops[i]->dims, st[i]);
        src[i] = in->val[n->ops[i]->id];
    }
    bool is_int = ir_dtype_is_int((ir_dtype)n->dtype);
    cursor c;
    for (cursor_init(in, &c, n->dims); c.flat < c.count; cursor_next(in, &c)) {
        double x[3] = {0, 0, 0};
        for (int i = 0; i < n->nops; i++)
            x[i] = src[i][offset(st[i], c.coord, n->ops[i]->dims)];
        out[c.flat] = eval_point((ir_op)n->op, (ir_dtype)n->dtype, n->nops, x, is_int);
    }
    return true;
}

bool ir_eval_scalar(ir_op op, ir_dtype dtype, const double *x, double *out)
{
    const ir_op_info *info = ir_op_info_of(op);
    if (info->kind != IR_ELEM || info->arity < 1 || info->arity > 3)
        return false;
    *out = eval_point(op, dtype, info->arity, x, ir_dtype_is_int(dtype));
    return true;
}

static double reduce_identity(ir_op op)
{
    switch (op) {
    case OP_PROD: return 1;
    case OP_RMAX:
    case OP_LSE: return -INFINITY;
    case OP_RMIN: return INFINITY;
    default: return 0;
    }
}

static bool eval_reduce(interp *in, const ir_node *n, double *out)
{
    const ir_node *x = n->ops[0];
    const double *src = in->val[x->id];
    int64_t ost[IR_MAX_DIMS];
    strides_of(in, n->dims, ost);
    int64_t nout = volume(in, n->dims);
    ir_op op = (ir_op)n->op;
    for (int64_t i = 0; i < nout; i++)
        out[i] = reduce_identity(op);
    cursor c;
    /* logsumexp: first the max of each group, then the shifted sum. */
    for (cursor_init(in, &c, x->dims); c.flat < c.count; cursor_next(in, &c)) {
        double v = src[c.flat], *o = &out[offset(ost, c.coord, n->dims)];
        switch (op) {
        case OP_SUM: *o += v; break;
        case OP_PROD: *o *= v; break;
        case OP_RMAX:
        case OP_LSE: *o = nan_max(*o, v); break;
        case OP_RMIN: *o = nan_min(*o, v); break;
        default: break;
        }
    }
    if (op != OP_LSE)
        return true;
    double *acc = sup_calloc((size_t)nout + 1, sizeof *acc);
    for (cursor_init(in, &c, x->dims); c.flat < c.count; cursor_next(in, &c)) {
        int64_t o = offset(ost, c.coord, n->dims);
        if (isfinite(out[o]))
            acc[o] += exp(src[c.flat] - out[o]);
    }
    for (int64_t i = 0; i < nout; i++) /* an infinite or NaN max dominates */
        if (isfinite(out[i]))
            out[i] += log(acc[i]);
    sup_free(acc);
    return true;
}

static bool eval_gather(interp *in, const ir_node *n, double *out)
{
    const ir_node *x = n->ops[0];
    int64_t xst[IR_MAX_DIMS], ist[IR_MAX_DIMS][IR_MAX_DIMS];
    strides_of(in, x->dims, xst);
    int axis[IR_MAX_RANK], k = 0;
    IR_DIMSET_FOREACH(d, n->attr.axes)
        axis[k++] = d;
    for (int i = 1; i < n->nops; i++)
        strides_of(in, n->ops[i]->dims, ist[i - 1]);
    cursor c;
    for (cursor_init(in, &c, n->dims); c.flat < c.count; cursor_next(in, &c)) {
        int64_t xc[IR_MAX_DIMS];
        memcpy(xc, c.coord, sizeof xc);
        for (int i = 0; i < k; i++) {
            const ir_node *ix = n->ops[1 + i];
            double v = in->val[ix->id][offset(ist[i], c.coord, ix->dims)];
            int64_t size = in->size[axis[i]];
            if (!(v >= 0 && v < (double)size)) {
                sb_printf(in->err, "index %.0f out of range [0, %lld) for dim %s", v,
                          (long long)size, in->g->dims[axis[i]].name);
                if (src_loc_valid(n->loc))
                    sb_printf(in->err, " (gather at %d:%d)", n->loc.line, n->loc.col);
                return false;
            }
            xc[axis[i]] = (int64_t)v;
        }
        out[c.flat] = in->val[x->id][offset(xst, xc, x->dims)];
    }
    return true;
}

static bool eval_struct(interp *in, const ir_node *n, double *out)
{
    const ir_node *x = n->ops[0];
    int64_t xst[IR_MAX_DIMS];
    strides_of(in, x->dims, xst);
    cursor c;
    for (cursor_init(in, &c, n->dims); c.flat < c.count; cursor_next(in, &c)) {
        int64_t xc[IR_MAX_DIMS];
        memcpy(xc, c.coord, sizeof xc);
        if (n->op == OP_RENAME)
            xc[n->attr.dim] = c.coord[n->attr.dim2];
        out[c.flat] = in->val[x->id][offset(xst, xc, x->dims)];
    }
    return true;
}

/* Copy an input, given in its declared memory order, into canonical order. */
static void load_input(interp *in, const ir_input *inp, const double *data, double *out)
{
    int64_t mst[IR_MAX_DIMS] = {0}, st = 1;
    for (int k = inp->ndim - 1; k >= 0; k--) {
        mst[inp->order[k]] = st;
        st *= in->size[inp->order[k]];
    }
    cursor c;
    for (cursor_init(in, &c, inp->node->dims); c.flat < c.count; cursor_next(in, &c))
        out[c.flat] = to_dtype(data[offset(mst, c.coord, inp->node->dims)], inp->dtype);
}

static bool eval_node(interp *in, const ir_node *n, const double *const *inputs, double *out)
{
    switch (ir_op_info_of(n->op)->kind) {
    case IR_LEAF:
        if (n->op == OP_INPUT) {
            const ir_input *inp = &in->g->inputs[n->attr.ival];
            if (!inputs[n->attr.ival]) {
                if (!inp->has_default) {
                    sb_printf(in->err, "input %s is not bound", inp->name);
                    return false;
                }
                out[0] = to_dtype(inp->default_value, inp->dtype);
                return true;
            }
            load_input(in, inp, inputs[n->attr.ival], out);
        } else if (n->op == OP_CONST) {
            out[0] = ir_const_value(n);
        } else if (n->op == OP_IOTA) {
            for (int64_t i = 0; i < in->size[n->attr.dim]; i++)
                out[i] = (double)i;
        } else {
            out[0] = (double)in->size[n->attr.dim];
        }
        return true;
    case IR_ELEM: return eval_elementwise(in, n, out);
    case IR_REDUCE: return eval_reduce(in, n, out);
    case IR_GATHER: return eval_gather(in, n, out);
    case IR_STRUCT: return eval_struct(in, n, out);
    case IR_META:
        sb_printf(in->err, "the graph still holds '%s': run the passes first", ir_op_name(n->op));
        return false;
    }
    return false;
}

/* Copy a result from canonical order into an output's layout (a gradient is
 * laid out like its input). */
static double *store_output(interp *in, const ir_output *o, const double *val)
{
    const ir_node *n = o->node;
    int64_t count = volume(in, n->dims);
    double *out = sup_malloc(sizeof(double) * (size_t)(count ? count : 1));
    if (o->kind != IR_OUT_GRAD) {
        memcpy(out, val, sizeof(double) * (size_t)count);
        return out;
    }
    const ir_input *inp = &in->g->inputs[o->input];
    int64_t mst[IR_MAX_DIMS] = {0}, st = 1;
    for (int k = inp->ndim - 1; k >= 0; k--) {
        mst[inp->order[k]] = st;
        st *= in->size[inp->order[k]];
    }
    cursor c;
    for (cursor_init(in, &c, n->dims); c.flat < c.count; cursor_next(in, &c))
        out[offset(mst, c.coord, n->dims)] = val[c.flat];
    return out;
}

bool ir_interp(const ir_graph *g, const int64_t *dim_sizes, const double *const *inputs,
               double **outputs, strbuf *err)
{
    interp in = {.g = g, .err = err};
    for (int d = 0; d < g->ndims; d++) {
        int64_t s = dim_sizes[g->dims[d].root];
        if (s < 0 || (g->dims[d].size >= 0 && g->dims[d].size != s)) {
            sb_printf(err, "dim %s has size %lld", g->dims[d].name, (long long)s);
            return false;
        }
        in.size[d] = s;
    }
    /* Only what the outputs need: an input nobody reads may stay unbound. */
    bool *live = sup_calloc(g->nnodes + 1, 1);
    for (int i = 0; i < g->noutputs; i++)
        live[g->outputs[i].node->id] = true;
    for (uint32_t id = g->nnodes; id-- > 0;)
        for (int i = 0; live[id] && i < g->nodes[id]->nops; i++)
            live[g->nodes[id]->ops[i]->id] = true;
    in.val = sup_calloc(g->nnodes + 1, sizeof *in.val);
    bool ok = true;
    for (uint32_t id = 0; id < g->nnodes && ok; id++) {
        if (!live[id])
            continue;
        const ir_node *n = g->nodes[id];
        int64_t count = volume(&in, n->dims);
        in.val[id] = sup_malloc(sizeof(double) * (size_t)(count ? count : 1));
        ok = eval_node(&in, n, inputs, in.val[id]);
    }
    for (int i = 0; i < g->noutputs; i++)
        outputs[i] = ok ? store_output(&in, &g->outputs[i], in.val[g->outputs[i].node->id])
                        : NULL;
    for (uint32_t id = 0; id < g->nnodes; id++)
        sup_free(in.val[id]);
    sup_free(in.val);
    sup_free(live);
    return ok;
}
