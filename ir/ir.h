/* ir.h - the typed graph IR every stage of lossc reads and writes.
 *
 * A graph is a DAG of nodes owned by one arena. Nodes are hash-consed: asking
 * the builder twice for the same operator on the same operands returns the
 * same node, so common subexpressions are shared by construction. Node ids
 * follow creation order, which is a topological order (operands first).
 *
 * Types. Every node has a dtype and a *set* of named dims. Dims live in the
 * graph's dim table (at most 64), so a set is a 64-bit mask and a value's axes
 * are always listed in canonical order: dim-id order, which is the order in
 * which dims first appear in the entry's parameter list. Broadcasting by name
 * is then the union of two masks and a reduction removes bits. Only inputs
 * and gradient outputs have a memory layout of their own (ir_input.order);
 * every other tensor the IR names is laid out in canonical order.
 *
 * Dims. A dim is a symbolic size (N), a literal size ("3", fixed), or an index
 * dim made by index notation (i in `let s[i, j] = ...`) whose size is that of
 * another dim (its root). The kernel receives the size of every root dim at
 * run time unless the dim is fixed at compile time.
 *
 * Builder functions check types, insert the casts that promotion asks for and
 * return NULL with a message in ir_graph_error() when the operands do not fit;
 * the frontend checks first to say it in the user's terms, passes only build
 * what is valid.
 */
#ifndef LOSSC_IR_H
#define LOSSC_IR_H

#include "support/support.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- operators ------------------------------------------------------------ */

typedef enum ir_op {
#define X(name, str, arity, kind, typing) OP_##name,
#include "ir/ops.def"
#undef X
    OP__COUNT
} ir_op;

typedef enum ir_kind { IR_LEAF, IR_ELEM, IR_REDUCE, IR_GATHER, IR_STRUCT, IR_META } ir_kind;

typedef enum ir_typing {
    TY_NONE, TY_ARITH, TY_FLOAT, TY_TEST, TY_CMP, TY_EQ, TY_LOGIC,
    TY_WHERE, TY_CAST, TY_SAME, TY_INDEX, TY_GRAD
} ir_typing;

typedef struct ir_op_info {
    const char *name;
    int arity; /* -1: variadic */
    ir_kind kind;
    ir_typing typing;
} ir_op_info;

extern const ir_op_info ir_op_table[OP__COUNT];
static inline const ir_op_info *ir_op_info_of(int op) { return &ir_op_table[op]; }
static inline const char *ir_op_name(int op) { return ir_op_table[op].name; }
/* The printed name to op (OP__COUNT if none). */
int ir_op_by_name(const char *name);

/* ---- dtypes --------------------------------------------------------------- */

typedef enum ir_dtype { DT_BOOL, DT_I32, DT_I64, DT_F32, DT_F64, DT__COUNT } ir_dtype;

const char *ir_dtype_name(ir_dtype t);
int ir_dtype_by_name(const char *name); /* -1 if unknown */
size_t ir_dtype_size(ir_dtype t);       /* bytes in memory; bool is one byte */
static inline bool ir_dtype_is_float(ir_dtype t) { return t == DT_F32 || t == DT_F64; }
static inline bool ir_dtype_is_int(ir_dtype t) { return t == DT_I32 || t == DT_I64; }
static inline bool ir_dtype_is_numeric(ir_dtype t) { return t != DT_BOOL; }
/* Promotion of two numeric dtypes: int with float -> the float, f32 with
 * f64 -> f64, i32 with i64 -> i64. Bool does not promote (returns -1). */
int ir_dtype_promote(ir_dtype a, ir_dtype b);

/* ---- dims ----------------------------------------------------------------- */

#define IR_MAX_DIMS 64
#define IR_MAX_RANK 8

typedef uint64_t ir_dimset;

static inline ir_dimset ir_dimbit(int d) { return (ir_dimset)1 << d; }
static inline int ir_dimset_count(ir_dimset s) { return __builtin_popcountll(s); }
static inline bool ir_dimset_has(ir_dimset s, int d) { return (s >> d) & 1; }
static inline bool ir_dimset_subset(ir_dimset a, ir_dimset b) { return (a & ~b) == 0; }
/* Lowest dim id in s (s must be non-empty). */
static inline int ir_dimset_first(ir_dimset s) { return __builtin_ctzll(s); }
#define IR_DIMSET_FOREACH(d, s)                                                \
    for (ir_dimset d##_rest_ = (s); d##_rest_; d##_rest_ &= d##_rest_ - 1)     \
        for (int d = __builtin_ctzll(d##_rest_), d##_once_ = 1; d##_once_;     \
             d##_once_ = 0)

typedef struct ir_dim {
    const char *name;
    int64_t size; /* compile-time size, or -1 when bound at run time */
    int root;     /* dim whose size this one has (itself for a root dim) */
    src_loc loc;  /* where the dim was introduced */
} ir_dim;

/* ---- nodes ---------------------------------------------------------------- */

typedef struct ir_attr {
    double fval;    /* CONST of a float dtype */
    int64_t ival;   /* CONST of an int or bool dtype; INPUT: input index */
    ir_dimset axes; /* REDUCE: reduced dims; EXPAND: added dims; GATHER: gathered dims */
    int16_t dim;    /* IOTA, DIMSIZE: the dim; RENAME: the old name */
    int16_t dim2;   /* RENAME: the new name */
} ir_attr;

typedef struct ir_node ir_node;
struct ir_node {
    uint32_t id; /* position in the graph's node list (topological) */
    uint8_t op;  /* ir_op */
    uint8_t dtype;
    uint8_t nops;
    ir_dimset dims;
    ir_attr attr;
    src_loc loc; /* the source that first asked for this node */
    uint64_t hash;
    ir_node *ops[];
};

/* ---- inputs and outputs --------------------------------------------------- */

typedef enum ir_input_kind {
    IR_IN_TENSOR, /* a tensor parameter (may be rank 0 if declared so) */
    IR_IN_SCALAR, /* a numeric scalar parameter, with an optional default */
    IR_IN_DLOSS   /* the upstream gradient of the loss, made by autodiff */
} ir_input_kind;

typedef struct ir_input {
    const char *name;
    ir_input_kind kind;
    ir_dtype dtype;
    int ndim;
    int order[IR_MAX_RANK]; /* dim ids in memory order (outermost first) */
    bool has_default;       /* scalars: value used when the caller binds none */
    double default_value;
    src_loc loc;
    ir_node *node; /* the INPUT node */
} ir_input;

typedef enum ir_output_kind {
    IR_OUT_LOSS,  /* the returned value */
    IR_OUT_EXTRA, /* `out name = ...`: not differentiated */
    IR_OUT_GRAD   /* gradient of the loss w.r.t. input `input` */
} ir_output_kind;

typedef struct ir_output {
    const char *name; /* "loss", the out's name, or "grad_<input>" */
    ir_output_kind kind;
    int input; /* IR_OUT_GRAD: the input; else -1 */
    ir_node *node;
} ir_output;

/* ---- the graph ------------------------------------------------------------ */

typedef struct ir_graph {
    arena arena;
    const char *name; /* the entry's name */

    ir_dim dims[IR_MAX_DIMS];
    int ndims;

    ir_input *inputs;
    int ninputs;
    size_t inputs_cap;

    ir_output *outputs;
    int noutputs;
    size_t outputs_cap;

    ir_node **nodes;
    uint32_t nnodes;
    size_t nodes_cap;

    ir_node **table; /* hash-consing table, open addressing */
    size_t table_cap;

    char error[256]; /* last builder error */
} ir_graph;

ir_graph *ir_graph_new(const char *name);
void ir_graph_free(ir_graph *g);
const char *ir_graph_error(const ir_graph *g);
/* Copy the dim table, inputs (with fresh INPUT nodes) and name of src into a
 * new graph with no other nodes and no outputs. */
ir_graph *ir_graph_clone_frame(const ir_graph *src);

/* Dims: add returns the new id, or -1 when the table is full. */
int ir_dim_add(ir_graph *g, const char *name, int64_t size, int root, src_loc loc);
int ir_dim_find(const ir_graph *g, const char *name); /* -1 if absent */
static inline int ir_dim_root(const ir_graph *g, int d) { return g->dims[d].root; }
/* Compile-time size of d (via its root), or -1. */
int64_t ir_dim_size(const ir_graph *g, int d);
/* Write dim names of s, canonical order, as "N, C" into out. */
void ir_dimset_format(const ir_graph *g, ir_dimset s, strbuf *out);

/* Inputs: returns the input index; its INPUT node is g->inputs[i].node. The
 * input's dims are order[0..ndim-1] (all distinct). */
int ir_input_add(ir_graph *g, const char *name, ir_input_kind kind, ir_dtype dt,
                 int ndim, const int *order, src_loc loc);
int ir_input_find(const ir_graph *g, const char *name); /* -1 if absent */
static inline ir_node *ir_input_node(const ir_graph *g, int i) { return g->inputs[i].node; }
static inline ir_dimset ir_input_dims(const ir_input *in) { return in->node->dims; }

/* Outputs: returns the output index. */
int ir_output_add(ir_graph *g, const char *name, ir_output_kind kind, int input,
                  ir_node *node);
int ir_output_find(const ir_graph *g, const char *name); /* -1 if absent */

/* ---- building nodes -------------------------------------------------------- */

/* Constants are scalars (no dims); broadcast with EXPAND or by combining. */
ir_node *ir_const(ir_graph *g, ir_dtype dt, double value, src_loc loc);
ir_node *ir_iota(ir_graph *g, int dim, src_loc loc);
ir_node *ir_dimsize(ir_graph *g, int dim, src_loc loc);

/* Elementwise ops. Operands of different numeric dtypes are promoted with
 * explicit CAST nodes (ir_dtype_promote); bools never promote. */
ir_node *ir_unary(ir_graph *g, ir_op op, ir_node *x, src_loc loc);
ir_node *ir_binary(ir_graph *g, ir_op op, ir_node *a, ir_node *b, src_loc loc);
ir_node *ir_where(ir_graph *g, ir_node *c, ir_node *a, ir_node *b, src_loc loc);
ir_node *ir_cast(ir_graph *g, ir_dtype dt, ir_node *x, src_loc loc); /* x if same */

/* Reduce `axes` (must be a non-empty subset of x's dims; an empty set returns x). */
ir_node *ir_reduce(ir_graph *g, ir_op op, ir_node *x, ir_dimset axes, src_loc loc);
/* Broadcast x over the dims `to` (a superset of its dims); x if equal. */
ir_node *ir_expand(ir_graph *g, ir_node *x, ir_dimset to, src_loc loc);
/* Relabel dim `from` of x as `to`; both must have the same root. */
ir_node *ir_rename(ir_graph *g, ir_node *x, int from, int to, src_loc loc);
/* x[..., idx_k, ...]: for each dim of `axes` in canonical order, an integer
 * index tensor; the result has x's other dims and the index tensors' dims. */
ir_node *ir_gather(ir_graph *g, ir_node *x, ir_dimset axes, ir_node *const *idx,
                   src_loc loc);

/* The general constructor every builder above ends in: computes the result
 * dims from the op, checks the typing rule, hash-conses. `dtype` is used for
 * leaves and CAST (ignored otherwise). Returns NULL + ir_graph_error on misuse. */
ir_node *ir_make(ir_graph *g, ir_op op, ir_dtype dtype, ir_node *const *ops,
                 int nops, const ir_attr *attr, src_loc loc);

/* The type rule of ir_make alone: result dtype and dims of op on ops, or
 * false with ir_graph_error. The verifier re-derives every node with it. */
bool ir_infer(ir_graph *g, ir_op op, ir_dtype dtype, ir_node *const *ops, int nops,
              const ir_attr *attr, ir_dtype *dt_out, ir_dimset *dims_out);

/* ---- queries --------------------------------------------------------------- */

static inline bool ir_is_const(const ir_node *n) { return n->op == OP_CONST; }
/* Value of a CONST node as a double (ints converted). */
double ir_const_value(const ir_node *n);
bool ir_is_const_value(const ir_node *n, double v);
/* The dim whose positions integer input `input` holds, or -1: it is a
 * gather index along the dim, or compared with the dim's iota (one_hot), seen
 * through casts and through where/min/max against a constant (the
 * ignore_index form where(y != -100, y, 0), a clamp). Tools that make test
 * data draw such an input in [0, size of the dim). */
int ir_index_dim(const ir_graph *g, int input);

/* Mark every node reachable from the outputs: live[id] = true. `live` has
 * g->nnodes entries. */
void ir_mark_live(const ir_graph *g, bool *live);

/* ---- rebuilding (how passes are written) ----------------------------------- */

/* Called for every live node of the source graph in topological order, with
 * its operands already mapped into dst. Return the replacement node in dst,
 * or NULL to copy the node as it is (with the mapped operands). */
typedef ir_node *(*ir_rewrite_fn)(void *ctx, ir_graph *dst, const ir_node *old,
                                  ir_node *const *new_ops);

/* Build a new graph from src: same frame (dims, inputs), every live node
 * passed through fn, outputs remapped. Dead nodes are dropped. */
ir_graph *ir_rebuild(const ir_graph *src, ir_rewrite_fn fn, void *ctx);
/* Copy one node into dst with new operands (what ir_rebuild does by default). */
ir_node *ir_copy_node(ir_graph *dst, const ir_node *old, ir_node *const *new_ops);

/* ---- printing and checking -------------------------------------------------- */

/* Text form: the frame, then one line per live node, numbered in order:
 *   %4 = sub %0, %1 : f32[N]
 * Every printed name is stable, so the text is fit for golden tests. */
void ir_print(const ir_graph *g, strbuf *out);
/* Graphviz DOT; nodes only reachable through gradient outputs are drawn as
 * backward nodes. */
void ir_print_dot(const ir_graph *g, strbuf *out);
/* Check every invariant above; false with a message in `why` on failure. */
bool ir_verify(const ir_graph *g, strbuf *why);

/* ---- the f64 reference interpreter ----------------------------------------- */

/* Evaluate every output of g. dim_sizes[d] gives the size of each root dim d
 * (other entries are ignored); inputs[i] is input i's data as doubles in its
 * declared memory order (NULL for a scalar uses its default). On success
 * outputs[i] is a sup_malloc'ed array laid out in canonical order, or like
 * its input for a gradient. On failure (an index out of range, an unbound
 * input) returns false with a message and sets every outputs[i] to NULL. */
bool ir_interp(const ir_graph *g, const int64_t *dim_sizes, const double *const *inputs,
               double **outputs, strbuf *err);

/* The interpreter's scalar semantics of one elementwise (IR_ELEM) operator:
 * its value on the operands x[0..arity-1] (doubles, as the interpreter holds
 * them), converted to the result dtype `dtype` as the interpreter converts
 * it. Constant folding uses it so that folding and interpreting cannot
 * disagree. False for an operator that is not elementwise. */
bool ir_eval_scalar(ir_op op, ir_dtype dtype, const double *x, double *out);

#endif
