/* lower.h - internals of the lowering (lower_*.c), shared by jit.c and aot.c.
 *
 * SPMD lowering. Every loop nest vectorizes at most one loop on any path (the
 * innermost one, W lanes). A vectorized loop has one body, run on every W
 * lanes with a mask that is all-true but on the last iteration: contiguous
 * loads and stores branch to a masked one only on the last iteration (on
 * Zen 3 a masked load streams 30% slower than a plain one, a masked store is
 * ten times slower), outputs of 16 MB or more are stored non-temporally,
 * folds select the identity in dead lanes. One body instead of a main part
 * and a tail halves the code LLVM must compile. Every value is
 * uniform (a scalar, the same for all lanes) or varying (a <W x T> vector);
 * loop indices of the vectorized loop are "linear" (first lane + 0..W-1) so
 * that loads and stores can tell contiguous accesses from gathers.
 *
 * Hoisting. Every scope (function root, loop, masked tail) has two chains of
 * blocks: a hoist chain, where pure values computed at this scope's level
 * go, and a body chain for side effects and child loops; at close the hoist
 * chain falls into the body. A value is always emitted at the end of the
 * hoist chain of its *home*: the deepest loop it depends on. So a row-wise
 * logsumexp needed inside the loop over the row's columns is computed once
 * per row, before that loop, and constants land at function entry. Loops are
 * built detached and linked into their parent chain when they close, so a
 * value discovered while inside a loop can still be placed before it.
 * Values are memoized per (node, index environment).
 */
#ifndef LOSSC_CG_LOWER_H
#define LOSSC_CG_LOWER_H

#include "codegen/codegen.h"
#include "passes/fuse.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

/* ---- target and module ------------------------------------------------------ */

typedef struct cg_target {
    char *triple, *cpu, *features;
    int vector_bits; /* 512 with AVX-512, 256 with AVX2, else 128 */
} cg_target;

/* Resolve opts (NULL: host) into a target; false with a message. */
bool cg_target_init(cg_target *t, const cg_options *opts, strbuf *err);
void cg_target_free(cg_target *t);
/* A target machine for t (PIC, default code model unless `jit`). */
LLVMTargetMachineRef cg_target_machine(const cg_target *t, bool jit, strbuf *err);
/* cg_target_init + an AOT target machine (what aot.c and `lossc llvm`
 * need); NULL with a message, and t freed, on failure. */
LLVMTargetMachineRef cg_target_open(cg_target *t, const cg_options *opts, strbuf *err);
/* Run the O3 pipeline on m for tm. */
bool cg_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, strbuf *err);

/* How a JIT kernel reaches the sweeps that come in two versions (see
 * lower_kernel.c): through `table`, two entries per sweep (version 0, then
 * 1), each NULL until compiled. At entry, before anything runs, the kernel
 * picks every such sweep's version and calls resolve(ctx, slot) for an
 * entry still NULL; resolve returns the function (stored in the table) or
 * NULL, and then the kernel returns LK_ERR_COMPILE having written nothing.
 * Without a cg_lazy (AOT) both versions are in the module. */
typedef struct cg_lazy {
    void *const *table;
    void *(*resolve)(void *ctx, int32_t slot);
    void *ctx;
    /* out, if not NULL: per sweep, the version to compile with the kernel
     * (the one most likely used), or -1 for a sweep not in the table */
    int8_t *likely;
} cg_lazy;

/* A string attribute on a kernel function whose own code does a few
 * operations per chunk (it folds scalar partials, scans checks, runs scalar
 * sinks): the JIT gives it no machine-code optimization (jit.c). */
#define CG_ATTR_LIGHT "lossc-light"

/* Build the kernel for plan p into module m under `symbol` (external); its
 * helpers are internal. Returns the kernel function, or NULL with a message. */
LLVMValueRef cg_lower(LLVMModuleRef m, const cg_target *t, const sched_plan *p,
                      const char *symbol, cg_lazy *lazy, strbuf *err);
/* The name of version v of sweep s of kernel `symbol`. */
void cg_sweep_symbol(char *buf, size_t n, const char *symbol, int s, int v);

/* Milliseconds of the last cg_build_module in this thread: lowering, O3. */
extern _Thread_local double cg_last_times[2];

/* Build plan + module (verified, not optimized) for the graphs. */
bool cg_lower_module(LLVMContextRef ctx, const cg_target *t, LLVMTargetMachineRef tm,
                     const ir_graph *const *graphs, const char *const *symbols, int n,
                     LLVMModuleRef *out, cg_kernel_info *infos, strbuf *err);
/* Build the module of one kernel from its plan (verified, not optimized). */
bool cg_lower_plan(LLVMContextRef ctx, const cg_target *t, LLVMTargetMachineRef tm,
                   const sched_plan *p, const char *symbol, cg_lazy *lazy,
                   LLVMModuleRef *out, strbuf *err);
/* What the runtime needs to know of a kernel (checks, sweeps) from its plan. */
void cg_plan_info(const sched_plan *p, cg_kernel_info *info);
/* Build plan + module + O3 for one graph (what jit, aot and print share). */
bool cg_build_module(LLVMContextRef ctx, const cg_target *t, LLVMTargetMachineRef tm,
                     const ir_graph *const *graphs, const char *const *symbols, int n,
                     LLVMModuleRef *out, cg_kernel_info *infos, strbuf *err);

/* ---- values -------------------------------------------------------------------- */

enum { CV_UNIFORM, CV_VARYING, CV_LINEAR };

typedef struct cv {
    LLVMValueRef v;    /* scalar, or <W x T>; for LINEAR the materialized lanes */
    LLVMValueRef base; /* LINEAR: the first lane (uniform i64) */
    LLVMValueRef ok;   /* index entries after a gather: in-range predicate, or NULL */
    uint64_t loops;    /* the enclosing loops (bit k = path position k) it depends on */
    uint8_t shape;
    uint8_t dt; /* ir_dtype (i64 for indices) */
} cv;

static inline bool cv_varies(const cv *x) { return x->shape != CV_UNIFORM; }
/* Depth of the scope a value lives in: one past its deepest loop. */
static inline int cv_home(uint64_t loops) { return loops ? 64 - __builtin_clzll(loops) : 0; }

/* ---- scopes ---------------------------------------------------------------------- */

enum { CH_HOIST, CH_BODY };
enum { SC_ROOT, SC_LOOP };

typedef struct cg_scope {
    int kind;
    uint32_t gen;
    LLVMBasicBlockRef tail[2];  /* unterminated ends of the hoist and body chains */
    LLVMBasicBlockRef body_first;
    /* loops */
    int parent_chain;
    LLVMBasicBlockRef header, latch, exit;
    LLVMValueRef index, next, lo, hi, step;
    /* vector state in effect (inherited from enclosing scopes) */
    LLVMValueRef mask;  /* <W x i1> live lanes in a vectorized loop, else NULL */
    LLVMValueRef full;  /* i1: every lane is live (not the last iteration) */
    LLVMValueRef last;  /* <W x i1> the live lanes of the last iteration (loop-invariant) */
    int vpos;           /* path position of the vectorized loop in effect, or -1 */
} cg_scope;

typedef struct memo_entry {
    uint32_t node;
    uint32_t tag; /* 0: the node's value; else a value derived from it (see lower_expr.c) */
    int home;
    uint32_t gen;
    uint64_t hash;
    cv *key; /* env entries of the node's dims */
    cv val;
} memo_entry;

typedef struct cg_acc cg_acc;

/* A row of a reduction's operand kept in memory while its scope lasts: the
 * softmax numerators e = exp(x - m) of a row, written by the sum's loop into
 * a stack buffer (rows up to 16 KB; longer ones into the row of the output
 * that will use them, its own future slots), and read back by that output's
 * loop instead of computing every exp again.
 *
 * Staging (the across-rows body: W short rows r0..r0+W-1 per iteration, the
 * loops inside a row scalar over varying lanes, one row per lane). Nothing
 * there is contiguous but the block of the W rows itself: an element
 * x[r, c] of the lanes is a gather (scalarized on AVX2 AMD: W loads and
 * inserts), a store a scatter. So the body keeps its rows in stack buffers
 * laid out [c][W], where column c of the W rows is one plain vector:
 *   - the operand of every inline reduction along one axis (max(x): x,
 *     sum(exp(x - m)): e) is stored there by the reduction's loop (a row
 *     cache with `stage` set) and read back by every later loop of the row:
 *     x is gathered once, not by the max, the sum and the gradient, and e
 *     computed once;
 *   - an output whose rows are [outer, inner] is stored there by its loop,
 *     then copied to its rows, which are one contiguous block, by tiles of
 *     W x W transposed in registers (stage_copy in lower_kernel.c): plain
 *     and non-temporal vector stores instead of a scatter.
 * A buffer holds CG_STAGE_COLS columns: the across body runs only for rows
 * of at most that much work (version_cond in lower_kernel.c). */
enum { CG_STAGE_COLS = 64 };

typedef struct row_cache {
    const ir_node *node; /* the cached node (an exp; any operand when staged) */
    int axis;            /* the reduced dim it runs along */
    LLVMValueRef row;    /* element 0 of its row: a stack buffer or the row of
                          * an output that uses it (stage NULL) */
    LLVMValueRef stage;  /* or the stack buffer [axis][W] that holds it */
    cv key[IR_MAX_DIMS]; /* the indices of its other dims */
    int home;            /* scope depth of the row */
    uint32_t gen;
} row_cache;

/* One function being emitted. */
typedef struct cg_fn {
    LLVMModuleRef mod;
    LLVMContextRef ctx;
    LLVMBuilderRef b;
    LLVMValueRef fn;
    LLVMBasicBlockRef entry; /* allocas; falls into the root hoist chain */
    const sched_plan *p;
    const ir_graph *g;
    const cg_target *t;
    int W;
    int W1; /* W without the doubling for long chains (see fn_init) */
    cg_scope scopes[66];
    int depth; /* scopes[0..depth] are open */
    int cur_chain;
    uint32_t next_gen;
    /* per-kernel values (root scope) */
    LLVMValueRef args, bufs, dims_ptr;
    LLVMValueRef size[IR_MAX_DIMS]; /* i64 size of every dim */
    LLVMValueRef *in_ptr;           /* per input: data pointer */
    LLVMValueRef *out_ptr;          /* per output: data pointer */
    LLVMValueRef *mat_ptr;          /* per sink: materialized buffer (REDUCE) */
    LLVMValueRef zero_block;        /* a global of zeros, for masked-off uniform loads */
    LLVMValueRef dummy_slot;        /* where dead lanes of a scatter store (an alloca) */
    const bool *spec;               /* per input: evaluate as its default (a specialized body) */
    const sched_sweep *sweep;       /* the sweep being built (its sinks), or NULL */
    row_cache caches[8];
    int ncaches;
    bool staged; /* the across-rows body: stage rows (see row_cache) */
    bool streamed; /* a non-temporal store was emitted: fence before returning */
    bool arith_bound; /* the sweep computes a transcendental per element: no streaming */
    /* memo */
    memo_entry *memo;
    size_t nmemo, memo_cap;
    size_t *memo_table;
    size_t memo_table_cap;
    arena mem;
    strbuf *err;
    bool failed;
} cg_fn;

/* Record the first failure (the module is then discarded); lowering goes on
 * with poison values so callers need no error paths. */
void cg_fail(cg_fn *f, const char *fmt, ...) SUP_PRINTF(2, 3);

/* lower_scope.c */
/* Does op compute through vmath, tens of operations per element: exp, log,
 * ..., and pow (through exp and log unless its exponent is a constant)? */
bool cg_transcendental(int op);
void fn_init(cg_fn *f, LLVMModuleRef m, const cg_target *t, const sched_plan *p,
             LLVMValueRef fn, strbuf *err);
void fn_finish(cg_fn *f, LLVMValueRef ret); /* close the root scope; ret NULL: ret void */
void fn_free(cg_fn *f);
void at(cg_fn *f, int depth, int chain);    /* position the builder */
void at_body(cg_fn *f);                     /* the innermost open scope's body */
/* Open a loop over [lo, hi) from the body or hoist chain of the innermost
 * scope; `vector`: step W with the scope's mask and full flag set. Returns
 * the index of the (first lane of the) iteration. */
LLVMValueRef scope_open_loop(cg_fn *f, int chain, LLVMValueRef lo, LLVMValueRef hi,
                             bool vector, int vpos);
void scope_close(cg_fn *f);
/* Start a new hoist chain after the current root body (a new stage: values
 * read from buffers written so far may be hoisted only past this point). */
void scope_rebase_root(cg_fn *f);
/* Branch from the root body to `err_bb` when cond is true; continue in a new block. */
void branch_out_if(cg_fn *f, LLVMValueRef cond, LLVMBasicBlockRef err_bb);
LLVMValueRef entry_alloca(cg_fn *f, LLVMTypeRef ty, const char *name);

memo_entry *memo_find(cg_fn *f, const ir_node *n, uint32_t tag, const cv *env, uint64_t *hash);
void memo_clear(cg_fn *f);
void memo_put(cg_fn *f, const ir_node *n, uint32_t tag, const cv *env, uint64_t hash, cv val);

/* lower_expr.c */
LLVMTypeRef ty_scalar(cg_fn *f, int dt);  /* registers: bool is i1 */
LLVMTypeRef ty_mem(cg_fn *f, int dt);     /* memory: bool is i8 */
LLVMTypeRef ty_vec(cg_fn *f, int dt);
LLVMValueRef splat(cg_fn *f, LLVMValueRef x);
LLVMValueRef as_vec(cg_fn *f, const cv *x);
LLVMValueRef i64c(cg_fn *f, int64_t v);
cv cv_uniform(LLVMValueRef v, int dt, uint64_t loops);
/* The value of node n at index environment env (indexed by dim id). */
cv cg_eval(cg_fn *f, const ir_node *n, const cv *env);
/* n's own value computed from its operands, even when the plan stores it
 * (what the store's sink writes); its operands through cg_eval. */
cv cg_eval_own(cg_fn *f, const ir_node *n, const cv *env);
/* Load / store a dense tensor whose memory order is order[0..ndim). */
cv cg_load(cg_fn *f, LLVMValueRef base, int dt, const int *order, int ndim, const cv *env);
/* stream: NULL, or an i1 allowing non-temporal stores (a large output). */
void cg_store(cg_fn *f, LLVMValueRef base, int dt, const int *order, int ndim,
              const cv *env, const cv *val, LLVMValueRef stream);
/* target[env] = op(target[env], val) in the innermost body (partial sums). */
void cg_update(cg_fn *f, LLVMValueRef base, int dt, const int *order, int ndim,
               const cv *env, int op, const cv *val);
/* The index cv of a loop's first element (linear lanes when vectorized). */
cv cg_loop_index(cg_fn *f, LLVMValueRef first, bool vector, int pos);
/* Canonical order of a dim set, as a memory order. */
int dims_order(ir_dimset s, int *order);
LLVMValueRef call_intrinsic(cg_fn *f, const char *name, LLVMTypeRef *tys, int ntys,
                            LLVMValueRef *args, int nargs);
/* Reductions */
LLVMValueRef red_identity(cg_fn *f, int op, int dt, bool vec);
LLVMValueRef red_combine(cg_fn *f, int op, int dt, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef red_horizontal(cg_fn *f, int op, int dt, LLVMValueRef v);
/* Accumulators: a scalar and a vector part, both in allocas (SROA makes them
 * registers); values accumulate into the part that matches where they are. */
struct cg_acc {
    int op, dt;
    int sdt;           /* dtype of both parts (f64 for a wide f32 sum, else dt) */
    LLVMValueRef s, v; /* allocas */
    int vw;            /* lanes of the vector part */
    int depth;         /* scope the accumulator was started in */
    bool lanes_are_results; /* started inside a vectorized loop */
};
/* wide: an f32 sum or product accumulates in f64 (both parts; it finishes
 * in f64): the partial results of a chunk, so that a chunk's 64K elements
 * add up to 1e-12 rather than 1e-5 (the conversion is one instruction per
 * vector, hidden by memory in the losses that have such sums). A wide sum
 * whose lanes fold into one result first adds its W f32 lanes pairwise down
 * to one register of f64 lanes (4 on AVX2) and widens those: two more f32
 * roundings per element, however long the chunk, for a quarter of the f64
 * work and of the accumulator registers (16 lanes of three sums, as in
 * Dice, would otherwise hold 12 of AVX2's 16 registers and spill). */
void acc_begin(cg_fn *f, cg_acc *a, int op, int dt, bool wide);
void acc_add(cg_fn *f, cg_acc *a, const cv *x);
cv acc_finish(cg_fn *f, cg_acc *a, uint64_t loops);
void set_reassoc(LLVMValueRef inst);
/* Stage buffers of the across-rows body (see row_cache): a new one for dt,
 * and column col (a uniform index) := v, in the innermost body. */
LLVMValueRef cg_stage_alloca(cg_fn *f, int dt, const char *name);
void cg_stage_put(cg_fn *f, LLVMValueRef stage, int dt, LLVMValueRef col, const cv *v);
/* Transpose W vectors of W lanes in place: v[i][l] := v[l][i]. */
void cg_transpose(cg_fn *f, LLVMValueRef *v);

#endif
