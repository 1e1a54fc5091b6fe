/* abi.h - the calling convention of every compiled lossc kernel, JIT or AOT.
 *
 * A kernel computes every output of one graph (after the passes): the loss,
 * the extra outputs and, for a forward+backward kernel, the gradients. It is
 * one C function:
 *
 *     int32_t kernel(const lk_args *args);
 *
 * bufs[]   one pointer per graph input (in ir_graph.inputs order; a scalar is
 *          a pointer to one element; the upstream gradient is an input), then
 *          one per graph output (ir_graph.outputs order). Every tensor is
 *          dense and C-contiguous in its layout: an input or gradient in its
 *          declared dim order, any other output in canonical dim order.
 *          Element types: bool = uint8_t (0/1), i32, i64, f32, f64.
 * dims[]   the run-time size of every dim of the graph, by dim id (index
 *          dims repeat their root's size; fixed dims must hold their size).
 * parallel if not NULL, runs fn(ctx, 0 .. nchunks-1), each exactly once, in
 *          any order and on any threads, and returns when all are done. The
 *          kernel's results do not depend on how: chunks are fixed by the
 *          sizes alone and partial results combine in chunk order.
 * error    filled when the kernel returns non-zero.
 *
 * Before writing any output, the kernel validates what only the data can
 * show (gather indices in range); on failure it writes no output and returns
 * LK_ERR_INDEX with the check's number (see cg_check in codegen.h).
 *
 * This header is also copied verbatim into every AOT header, so it needs
 * nothing but <stdint.h>.
 */
#ifndef LOSSC_ABI_H
#define LOSSC_ABI_H

#include <stdint.h>

typedef void (*lk_task_fn)(void *ctx, int64_t chunk);
typedef void (*lk_parallel_fn)(void *pool, lk_task_fn fn, void *ctx, int64_t nchunks);

enum {
    LK_OK = 0,
    LK_ERR_INDEX = 1, /* an index value out of range */
    LK_ERR_NOMEM = 2, /* the kernel could not allocate its partial results */
    LK_ERR_COMPILE = 3 /* JIT only: compiling the version of a sweep this call
                        * needs failed (check: which one); nothing was written */
};

typedef struct lk_error {
    int32_t code;     /* LK_ERR_* */
    int32_t check;    /* which range check failed */
    int64_t value;    /* the offending index value */
    int64_t position; /* flat position (canonical order) where it was found */
} lk_error;

typedef struct lk_args {
    void *const *bufs;
    const int64_t *dims;
    lk_parallel_fn parallel;
    void *pool;
    lk_error *error;
} lk_args;

typedef int32_t (*lk_kernel_fn)(const lk_args *args);

#endif
