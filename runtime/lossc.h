/* lossc.h - compile loss functions to fused forward + backward kernels and run
 * them on DLPack tensors. The only public header of lossc.
 *
 *     lossc_ctx *ctx;  lossc_loss *mse;
 *     lossc_ctx_new(&ctx, NULL);                     // all cores, host CPU
 *     const char *src = "loss mse(p: f32[N], t: f32[N]) { return mean((p - t)^2) }";
 *     if (lossc_compile(ctx, src, NULL, &mse) != LOSSC_OK)
 *         fprintf(stderr, "%s", lossc_ctx_error(ctx)); // file:line:col: error: ...
 *     lossc_bind_input(mse, "p", &p);  lossc_bind_input(mse, "t", &t);  // DLTensor *
 *     lossc_bind_output(mse, "loss", &l);  lossc_bind_grad(mse, "p", &dp);
 *     if (lossc_forward_backward(mse) != LOSSC_OK)     // l = loss, dp = d loss / d p
 *         fprintf(stderr, "%s\n", lossc_loss_error(mse));
 *     lossc_loss_free(mse);  lossc_ctx_free(ctx);
 *
 * Rules every call follows:
 *  - It returns a lossc_status; on failure the object keeps a message saying
 *    what is wrong and with what (lossc_ctx_error, lossc_loss_error). Nothing
 *    here prints or exits.
 *  - A run validates every binding (names, dtypes, ranks, sizes agreeing per
 *    named dim, aliasing) before it computes anything; on any error no output
 *    or gradient buffer is written.
 *  - Tensors are DLPack DLTensor on the CPU (kDLCPU), any strides (strided
 *    tensors go through contiguous temporaries). Element types: f32, f64, i32,
 *    i64 and bool as {kDLUInt, 8, 1} (or DLPack >= 0.8's kDLBool = 6).
 *  - Results are bitwise identical for every thread count.
 *  - A context is used by one thread at a time; losses of one context may be
 *    run from different threads at once (each loss by one thread at a time).
 *
 * See docs/api.md for the whole API and a complete example.
 */
#ifndef LOSSC_H
#define LOSSC_H

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOSSC_VERSION "0.1.0"

typedef struct lossc_ctx lossc_ctx;   /* thread pool, JIT, kernel cache */
typedef struct lossc_loss lossc_loss; /* one compiled entry and its bindings */

typedef enum lossc_status {
    LOSSC_OK = 0,
    LOSSC_ERR_SYNTAX,       /* the source does not parse (diagnostics in the message) */
    LOSSC_ERR_COMPILE,      /* type, shape or other compile error (diagnostics) */
    LOSSC_ERR_ARG,          /* a bad argument or option value */
    LOSSC_ERR_SHAPE,        /* wrong rank or size, sizes disagree between tensors */
    LOSSC_ERR_DTYPE,        /* wrong element type */
    LOSSC_ERR_NULL,         /* a NULL object, tensor, name or data pointer */
    LOSSC_ERR_ALIAS,        /* an output overlaps an input or another output */
    LOSSC_ERR_UNKNOWN_NAME, /* no input, output or entry of that name */
    LOSSC_ERR_UNBOUND,      /* a required input was not bound */
    LOSSC_ERR_INDEX,        /* run time: an index (label) out of range */
    LOSSC_ERR_DEVICE,       /* a tensor not on the CPU */
    LOSSC_ERR_NOMEM,        /* an allocation failed */
    LOSSC_ERR_IO,           /* a file could not be read */
    LOSSC_ERR_INTERNAL      /* a bug in lossc: please report the message */
} lossc_status;

/* "LOSSC_ERR_SHAPE" and so on. */
const char *lossc_status_name(lossc_status s);
const char *lossc_version(void);

/* ---- context ---------------------------------------------------------------- */

/* realloc-like: size 0 frees ptr and returns NULL; NULL on failure. */
typedef void *(*lossc_realloc_fn)(void *ud, void *ptr, size_t size);

typedef struct lossc_ctx_opts {
    int threads;          /* 0: every core (for running kernels and compiling them) */
    const char *cpu;      /* NULL: the host CPU; else an LLVM CPU name ("x86-64-v3") */
    const char *features; /* NULL: the CPU's own features */
    /* Allocator for everything lossc allocates (NULL: libc). The compiler
     * stages share one process-wide hook, so it takes effect for the whole
     * process: install it before the first context and keep it compatible
     * with memory allocated before, and callable from several threads at
     * once (a compile runs on up to `threads`). A failed allocation in the
     * runtime is LOSSC_ERR_NOMEM; inside the compiler stages it aborts the
     * process. */
    lossc_realloc_fn alloc;
    void *alloc_ud;
} lossc_ctx_opts;

/* opts NULL: the defaults above. On failure *out is NULL (the status says
 * why; there is no context to hold a message). */
lossc_status lossc_ctx_new(lossc_ctx **out, const lossc_ctx_opts *opts);
/* Frees the context and every loss compiled in it that is still alive. */
void lossc_ctx_free(lossc_ctx *ctx);
const char *lossc_ctx_error(const lossc_ctx *ctx);
int lossc_ctx_threads(const lossc_ctx *ctx);
/* Kernel cache counters since the context was made, and the total time
 * spent compiling kernels (ms), by compiles and by runs. Any pointer may be
 * NULL. */
void lossc_ctx_cache_stats(const lossc_ctx *ctx, int64_t *hits, int64_t *misses,
                           double *compile_ms);

/* ---- compiling ----------------------------------------------------------------- */

enum {
    LOSSC_KERNEL_FORWARD = 1,  /* loss and extra outputs */
    LOSSC_KERNEL_BACKWARD = 2  /* loss, extra outputs and gradients, one kernel */
};

typedef struct lossc_compile_opts {
    const char *entry;           /* the loss to compile; NULL: the file's only one */
    const char *filename;        /* name diagnostics use for source text */
    const char *const *settings; /* "NAME=VALUE": str params ("reduction=sum"), */
    int nsettings;               /* fixed dims ("C=10"), numeric scalar values */
    const char *const *wrt;      /* inputs to differentiate; NULL: every float input */
    int nwrt;
    int kernels;                 /* LOSSC_KERNEL_* bits; 0: both */
} lossc_compile_opts;

/* Compile `source` (NUL-terminated) with opts (NULL: defaults). Compiling the
 * same entry with the same compile-time settings again reuses the cached
 * kernels. On failure *out is NULL and lossc_ctx_error holds the message or
 * the formatted diagnostics (file:line:col, source line, caret). A numeric
 * scalar given as a setting becomes that scalar's bound value. */
lossc_status lossc_compile(lossc_ctx *ctx, const char *source,
                           const lossc_compile_opts *opts, lossc_loss **out);
lossc_status lossc_compile_file(lossc_ctx *ctx, const char *path,
                                const lossc_compile_opts *opts, lossc_loss **out);
void lossc_loss_free(lossc_loss *loss);
const char *lossc_loss_error(const lossc_loss *loss);
/* Wall time of the lossc_compile call that made the loss (ms), plus what its
 * runs compiled (a kernel's version for other sizes or scalar values, compiled
 * by the first run needing it: docs/api.md), and whether every kernel
 * lossc_compile needed came from the cache. */
double lossc_loss_compile_ms(const lossc_loss *loss);
int lossc_loss_cache_hit(const lossc_loss *loss);

/* ---- introspection ----------------------------------------------------------- */

#define LOSSC_MAX_RANK 8

typedef enum lossc_role {
    LOSSC_INPUT,  /* a tensor parameter */
    LOSSC_SCALAR, /* a numeric scalar parameter (run-time value) */
    LOSSC_DLOSS,  /* the upstream gradient "dloss" (optional; default ones) */
    LOSSC_LOSS,   /* the returned value, output "loss" */
    LOSSC_EXTRA,  /* an `out name = ...` */
    LOSSC_GRAD    /* the gradient of the loss for input `of` */
} lossc_role;

typedef struct lossc_info {
    const char *name;  /* valid while the loss lives */
    lossc_role role;
    DLDataType dtype;
    int ndim;
    const char *dims[LOSSC_MAX_RANK]; /* dim names, outermost first */
    int64_t fixed[LOSSC_MAX_RANK];    /* size fixed at compile time, or -1 */
    int has_default;                  /* LOSSC_SCALAR */
    double default_value;
    const char *of;                   /* LOSSC_GRAD: the input's name */
} lossc_info;

const char *lossc_loss_name(const lossc_loss *loss);
/* Inputs: tensors and scalars in declaration order, then "dloss" when a
 * backward kernel exists. Outputs: "loss", extras, then one per gradient. */
int lossc_num_inputs(const lossc_loss *loss);
int lossc_num_outputs(const lossc_loss *loss);
lossc_status lossc_input_info(const lossc_loss *loss, int i, lossc_info *out);
lossc_status lossc_output_info(const lossc_loss *loss, int i, lossc_info *out);

/* The shape an output, gradient or "dloss" must have for the inputs bound
 * now (shape has LOSSC_MAX_RANK entries). Fails as a run would on the inputs. */
lossc_status lossc_shape_of(lossc_loss *loss, const char *name, int *ndim, int64_t *shape);

/* ---- binding and running -------------------------------------------------------- */

/* The tensor is described by reference: `t` itself may be temporary (its
 * shape and strides are copied), its data must stay valid until the run.
 * Binding NULL is LOSSC_ERR_NULL; lossc_unbind removes a binding. */
lossc_status lossc_bind_input(lossc_loss *loss, const char *name, const DLTensor *t);
lossc_status lossc_bind_scalar(lossc_loss *loss, const char *name, double value);
lossc_status lossc_bind_output(lossc_loss *loss, const char *name, const DLTensor *t);
lossc_status lossc_bind_grad(lossc_loss *loss, const char *input, const DLTensor *t);
lossc_status lossc_unbind(lossc_loss *loss, const char *name); /* "grad_x" for a gradient */
void lossc_unbind_all(lossc_loss *loss);

/* Run the forward kernel (loss and extra outputs) or the forward+backward
 * kernel (also every gradient). Outputs left unbound are computed into
 * scratch memory and dropped. For a non-scalar loss the gradients are those
 * of its sum unless "dloss" is bound. */
lossc_status lossc_forward(lossc_loss *loss);
lossc_status lossc_forward_backward(lossc_loss *loss);

/* ---- checking gradients ---------------------------------------------------------- */

typedef struct lossc_gradcheck_result {
    const char *input; /* valid while the loss lives */
    int64_t count;     /* elements of the input */
    /* the kernel's gradient against the f64 reference interpreter's
     * (the backward graph), at every element */
    double ref_max_abs, ref_max_rel;
    /* the kernel's gradient against central finite differences of the f64
     * interpreter (the forward graph), at fd_checked elements */
    int64_t fd_checked;
    double fd_max_abs, fd_max_rel;
    int passed;
} lossc_gradcheck_result;

/* Check the forward+backward kernel's gradients at the inputs bound now.
 * fd_coords: elements per input compared with finite differences (random,
 * from seed; < 0: all; 0: none). Relative errors are |a - b| / max(|a|, |b|).
 * An element passes when |kernel - reference| <= atol + rtol * |reference|
 * (plus the finite difference's own rounding noise); rtol <= 0 means 1e-3
 * for f32 and 1e-6 for f64, atol < 0 means rtol times the largest reference
 * gradient of that input, or, when that input's reference gradient is zero
 * to f64 rounding (a loss constant in it: at most 1024 f64 ulps of L per
 * element of the input, L = max(|loss|, |dloss|) summed over the loss's
 * elements), 1024 ulps of the kernel's type of L per element. Writes no
 * bound output. On OK, *results (owned by
 * the loss, valid until the next call) has one entry per gradient, and
 * *all_passed says whether every element of every input passed. */
lossc_status lossc_gradcheck(lossc_loss *loss, int fd_coords, uint64_t seed, double rtol,
                             double atol, const lossc_gradcheck_result **results,
                             int *nresults, int *all_passed);

#ifdef __cplusplus
}
#endif

#endif
