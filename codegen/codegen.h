/* codegen.h - kernels for a graph through the LLVM C API.
 *
 *   ir_graph --passes/fuse.c--> sched_plan (sweeps, loop nests, partials)
 *            --lower.c--> LLVM module (vectorized loops, vmath.c for exp/log/...)
 *            --O3 for the target--> ORC LLJIT (jit.c)  or  object + header (aot.c)
 *
 * Every kernel follows abi.h. The same module serves the JIT and the AOT
 * object; only the code model and the target differ.
 *
 * Prefix: cg_ (public), vm_ for the vector math in vmath.c.
 */
#ifndef LOSSC_CODEGEN_H
#define LOSSC_CODEGEN_H

#include "codegen/abi.h"
#include "ir/ir.h"

typedef struct cg_options {
    const char *cpu;      /* NULL or "": the host CPU; else an LLVM CPU name ("x86-64-v3") */
    const char *features; /* NULL: the CPU's own (the host's features for the host) */
    const char *symbol;   /* the kernel's function name */
    int threads;          /* the JIT's compile threads; 0: one per core */
} cg_options;

/* One run-time range check of a kernel, so that the runtime can name what
 * went wrong: "y[3] = 12 is out of range [0, 10) for dim C". */
typedef struct cg_check {
    const char *input; /* the input whose values are the index, or NULL */
    int dim;           /* the dim being indexed */
    src_loc loc;       /* the gather in the source */
} cg_check;

/* What a compiled kernel needs besides its code. Owned by the jit / caller;
 * free with cg_kernel_info_free. */
typedef struct cg_kernel_info {
    cg_check *checks;
    int nchecks;
    int nsweeps;       /* passes over memory (see lossc ir --kernels) */
    double compile_ms; /* IR build + optimization + machine code */
} cg_kernel_info;
void cg_kernel_info_free(cg_kernel_info *info);

/* The JIT: one ORC LLJIT, created once per runtime context. */
typedef struct cg_jit cg_jit;
cg_jit *cg_jit_create(const cg_options *target, strbuf *err);
void cg_jit_destroy(cg_jit *jit);
/* Compile g into the JIT; NULL with a message on failure. The function lives
 * as long as the jit (g need not). A sweep built in two versions (jit.c) is
 * compiled with the version most likely used; the other is compiled by the
 * first call that needs it, before the kernel does anything else: if that
 * fails the call returns LK_ERR_COMPILE, having written nothing. */
lk_kernel_fn cg_jit_compile(cg_jit *jit, const ir_graph *g, const char *symbol,
                            cg_kernel_info *info, strbuf *err);
/* The milliseconds kernel calls in this thread spent compiling versions
 * since the last cg_jit_take_lazy, and in err (if not NULL) the message of
 * the last such compile that failed; clears both. */
double cg_jit_take_lazy(strbuf *err);
/* Versions compiled by kernel calls in this JIT so far, and their time. */
void cg_jit_lazy_stats(cg_jit *jit, int *compiles, double *ms);

/* Ahead of time: write an object file holding each graph's kernel under
 * symbols[i], for the target in opts (needs only libc and libm to link). */
bool cg_emit_object(const ir_graph *const *graphs, const char *const *symbols, int n,
                    const cg_options *opts, const char *path, strbuf *err);
/* The C header for that object: typed argument structs and wrappers. */
void cg_emit_header(const ir_graph *const *graphs, const char *const *symbols, int n,
                    const char *guard, strbuf *out);
/* The optimized LLVM IR of g's kernel, as text (lossc llvm). */
bool cg_print_llvm(const ir_graph *g, const cg_options *opts, strbuf *out, strbuf *err);
/* The kernel plan: sweeps, loop nests, what each computes (lossc ir --kernels). */
void cg_print_kernels(const ir_graph *g, strbuf *out);

#endif
