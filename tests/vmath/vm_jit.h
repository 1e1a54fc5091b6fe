/* vm_jit.h - tiny kernels that apply one vmath function to an array, JIT-compiled
 * for the host with ORC LLJIT (as the runtime does): out[i] = f(in[i]).
 *
 * Each (function, type) gives one module holding every form of the loop:
 *   scalar  the loop as codegen writes it, a scalar call per element; O3
 *           inlines it and the loop vectorizer widens it for the host;
 *   novec   the same loop with vectorization disabled (llvm.loop metadata);
 *   vec[i]  an explicit loop over <widths[i] x T> (n a multiple of the width).
 * All forms run the same algorithm, so they must agree bitwise.
 * LOSSC_VMJ_DUMP=1 in the environment prints each module's optimized IR.
 */
#ifndef LOSSC_VM_JIT_H
#define LOSSC_VM_JIT_H

#include <stdbool.h>
#include <stdint.h>

#include "codegen/vmath.h"
#include "support/support.h"

#define VMJ_NVEC 3
/* Test arrays are a multiple of every explicit width. */
#define VMJ_PAD 48

/* As a vm_func for vmj_compile: vm_emit_log1p01 (log1p for x in [0, 1]). */
#define VMJ_LOG1P01 ((vm_func)VM__COUNT)
/* and vm_emit_expneg (exp for x <= 0). */
#define VMJ_EXPNEG ((vm_func)(VM__COUNT + 1))
#define VMJ_COUNT (VM__COUNT + 2)

/* "exp", ..., "log1p01", "expneg". */
const char *vmj_name(vm_func f);

typedef void (*vmj_fn)(const void *in, void *out, int64_t n);

typedef struct vmj_kernels {
    vmj_fn scalar, novec;
    vmj_fn vec[VMJ_NVEC];
    unsigned widths[VMJ_NVEC];
    /* After O3, the scalar loop computes with vectors and calls nothing but
     * LLVM intrinsics (no libm, no out-of-line vmath function). */
    bool scalar_vectorized, no_calls;
} vmj_kernels;

typedef struct vmj vmj;

vmj *vmj_create(strbuf *err);
void vmj_destroy(vmj *j);
bool vmj_compile(vmj *j, vm_func f, bool f64, vmj_kernels *out, strbuf *err);
/* The host CPU name LLVM sees (for reports). */
const char *vmj_cpu(const vmj *j);

#endif
