/* rt.h - the runtime's internals behind lossc.h.
 *
 *   lossc_compile --compile.c--> frontend, passes, JIT --> rt_kernel (cached in the ctx)
 *   lossc_bind_*  --bind.c-----> slots (a copy of each DLTensor's description)
 *   lossc_forward --run.c------> validate everything, stage strided tensors,
 *                                call the kernel on the pool (pool.c), scatter
 *
 * The layers are split so that the binding and running half (ctx.c, pool.c,
 * tensor.c, bind.c, run.c: library lossc_rt) needs only ir/ and support/:
 * tests drive it with hand-built graphs and hand-written kernels. compile.c and
 * gradcheck.c add the frontend, the passes and the JIT (library lossc_api).
 *
 * Prefix: rt_.
 */
#ifndef LOSSC_RT_H
#define LOSSC_RT_H

#include "codegen/abi.h"
#include "ir/ir.h"
#include "runtime/lossc.h"
#include "support/support.h"

#include <stdatomic.h>
#include <stdbool.h>

/* ---- the thread pool (pool.c) ------------------------------------------------ */

typedef struct rt_pool rt_pool;
/* nthreads counts the calling thread; 1 makes a pool that runs inline. NULL
 * if a thread could not be started. */
rt_pool *rt_pool_new(int nthreads);
void rt_pool_free(rt_pool *p);
int rt_pool_threads(const rt_pool *p);
/* abi.h's lk_parallel_fn: fn(ctx, 0 .. nchunks-1), each once. */
void rt_pool_parallel(void *pool, lk_task_fn fn, void *ctx, int64_t nchunks);

/* ---- compiled kernels and the cache -------------------------------------------- */

/* One run-time range check, with names resolved for messages. */
typedef struct rt_check {
    char *input; /* NULL if the index is not an input */
    int dim;     /* dim id in the kernel's graph */
    char *where; /* "file:line:col" or NULL */
} rt_check;

typedef struct rt_kernel {
    ir_graph *g; /* the graph the kernel computes (after the pipeline) */
    lk_kernel_fn fn;
    rt_check *checks;
    int nchecks;
    int nsweeps;
    double compile_ms;
} rt_kernel;

/* A cache entry: the exact key material (no collision can alias two
 * different kernels) and the kernel. Entries live as long as the context. */
typedef struct rt_cache_entry {
    char *key;
    size_t keylen;
    uint64_t hash;
    rt_kernel k;
} rt_cache_entry;

void rt_kernel_release(rt_kernel *k); /* frees g and checks, not the code */

/* ---- the context ------------------------------------------------------------- */

struct lossc_ctx {
    int threads;
    char *cpu, *features;
    lossc_realloc_fn alloc; /* for run-time buffers, whose failure is recoverable */
    void *alloc_ud;
    rt_pool *pool;
    strbuf err;

    /* The compiler side (compile.c) fills these lazily; the context only
     * frees them, through jit_destroy, so it needs no codegen symbols. */
    void *jit;
    void (*jit_destroy)(void *jit);
    /* cg_jit_take_lazy: what compiling kernel versions on demand cost the
     * last call in this thread (run.c adds it to the loss and here). */
    double (*jit_take_lazy)(strbuf *err);
    _Atomic uint64_t lazy_us; /* every such compile's time, from any thread */
    rt_cache_entry **cache;
    size_t ncache, cache_cap;
    int64_t hits, misses;
    double compile_ms;
    uint64_t symbol_counter;

    lossc_loss *losses; /* live losses, freed with the context */
};

/* Message helpers: replace the object's message, return the status. */
lossc_status rt_ctx_fail(lossc_ctx *ctx, lossc_status s, const char *fmt, ...)
    SUP_PRINTF(3, 4);
void *rt_alloc(lossc_ctx *ctx, size_t size); /* NULL on failure, never fatal */
void rt_free(lossc_ctx *ctx, void *p);

/* ---- DLTensor helpers (tensor.c) --------------------------------------------------- */

/* The DLPack dtype of an IR dtype, and back (-1 if lossc has no such type). */
DLDataType rt_dl_dtype(ir_dtype t);
int rt_ir_dtype(DLDataType t);
/* "f32", "i64", "bool", or "dlpack(code 2, 16 bits)" into buf. */
const char *rt_dl_dtype_name(DLDataType t, char *buf, size_t n);
/* Number of elements; false on a negative size or overflow. */
bool rt_numel(int ndim, const int64_t *shape, int64_t *out);
/* Dense C order (strides NULL, or equal to the dense ones where size > 1). */
bool rt_is_contiguous(const DLTensor *t);
/* The byte range [lo, hi) the tensor's elements occupy; lo == hi if empty. */
void rt_extent(const DLTensor *t, uintptr_t *lo, uintptr_t *hi);
/* Can two different index tuples reach the same element? (conservative) */
bool rt_self_overlaps(const DLTensor *t);
/* Copy between a strided tensor and a dense C-order buffer. */
void rt_gather(const DLTensor *t, void *dense);
void rt_scatter(const DLTensor *t, const void *dense);
/* "[5, 7]" into sb. */
void rt_format_shape(strbuf *sb, int ndim, const int64_t *shape);

/* ---- losses and bindings (bind.c) ----------------------------------------------- */

typedef struct rt_slot {
    lossc_info info;  /* the public description; strings in the loss's arena */
    char *key;        /* the name bindings use: input or output name */
    bool bound;
    DLTensor t;       /* copy of the caller's description ... */
    int64_t shape[LOSSC_MAX_RANK], strides[LOSSC_MAX_RANK]; /* ... with these arrays */
    bool has_value;   /* LOSSC_SCALAR: a value from lossc_bind_scalar or a setting */
    double value;
    bool differentiated; /* LOSSC_INPUT/SCALAR: a gradient output exists */
} rt_slot;

struct lossc_loss {
    lossc_ctx *ctx;
    lossc_loss *prev, *next; /* in ctx->losses */
    arena arena;
    const char *name;
    rt_kernel *fwd, *bwd; /* in the ctx's cache; either may be NULL */
    ir_graph *fe;         /* the frontend's graph (compile.c), for gradient checks */
    rt_slot *inputs;      /* tensors and scalars in order, then dloss */
    int ninputs;
    rt_slot *outputs; /* loss, extras, gradients */
    int noutputs;
    strbuf err;
    double compile_ms; /* lossc_compile's, plus the versions its runs compiled */
    bool cache_hit;
    lossc_gradcheck_result *gc; /* the last lossc_gradcheck's results */
    int ngc;
};

/* Make a loss from kernels (either may be NULL, not both); the slots come
 * from their graphs. Used by compile.c and by the tests (with hand-written
 * kernels). */
lossc_status rt_loss_new(lossc_ctx *ctx, rt_kernel *fwd, rt_kernel *bwd, lossc_loss **out);
lossc_status rt_fail(lossc_loss *loss, lossc_status s, const char *fmt, ...)
    SUP_PRINTF(3, 4);
rt_slot *rt_find_input(lossc_loss *loss, const char *name);
rt_slot *rt_find_output(lossc_loss *loss, const char *name);

/* ---- running (run.c) ------------------------------------------------------------ */

/* Everything one run needs, resolved and staged before the kernel is called. */
typedef struct rt_call {
    rt_kernel *k;
    int64_t dims[IR_MAX_DIMS];
    void **bufs;      /* the kernel's buffers */
    void **owned;     /* buffers this call allocated (freed by rt_call_end) */
    int nowned;
    double *scalars;  /* storage for scalar inputs (8 bytes each) */
    int flags;        /* RT_SCRATCH_* */
} rt_call;

enum {
    RT_SCRATCH_ALL = 1,  /* write no caller output (gradcheck reads c->bufs) */
    RT_SCRATCH_GRADS = 2 /* write no caller gradient (forward on a backward kernel) */
};

/* Validate and stage a run of kernel k; rt_call_run calls it and writes the
 * results; rt_call_end frees what the call allocated. */
lossc_status rt_call_begin(lossc_loss *loss, rt_kernel *k, int flags, rt_call *c);
lossc_status rt_call_run(lossc_loss *loss, rt_call *c);
void rt_call_end(lossc_loss *loss, rt_call *c);
/* Sizes of every dim of g from the bound inputs (dims[d] for every d). */
lossc_status rt_resolve_dims(lossc_loss *loss, const ir_graph *g, int64_t *dims);
/* Shape of g's input or output in memory order. */
int rt_input_shape(const ir_graph *g, const ir_input *in, const int64_t *dims, int64_t *shape);
int rt_output_shape(const ir_graph *g, const ir_output *o, const int64_t *dims,
                    int64_t *shape);

#endif
