/* vm_check.h - error measurement for the vmath tests and the vm_ulp tool.
 *
 * Error in ulp: |y - ref| / ulp(round(ref)), where ref is the exact value (to
 * far more precision than the type: libm in double for f32, __float128 from
 * libquadmath for f64) and ulp(v) is the spacing of the type's numbers at v,
 * 2^(exponent(v) - p + 1), or the smallest subnormal below the normal range.
 * An infinite or NaN reference must be matched exactly (error 0 or inf).
 *
 * f32 inputs come from a sweep over every finite float with a stride plus
 * dense windows (every float, or a finer stride) where the functions are
 * delicate; f64 inputs are random draws from ranges per function.
 */
#ifndef LOSSC_VM_CHECK_H
#define LOSSC_VM_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "vm_jit.h"

double vmc_ref32(vm_func f, double x);
__float128 vmc_ref64(vm_func f, __float128 x);
double vmc_ulp32(float y, double ref);
double vmc_ulp64(double y, __float128 ref);

typedef struct vmc_stats {
    double max_ulp;      /* the largest error */
    double worst_x, worst_y; /* where */
    uint64_t n;          /* inputs checked */
    uint64_t mismatches; /* inputs where the forms of the kernel disagree bitwise */
    double mismatch_x;   /* the first of them */
} vmc_stats;

/* A float window [lo, hi] swept with a stride over its bit patterns. */
typedef struct vmc_window {
    float lo, hi;
    uint32_t stride;
} vmc_window;

/* The windows of f checked beyond the global sweep; *n set to their count. */
const vmc_window *vmc_windows32(vm_func f, int *n);

/* f32: every finite float with stride `stride` (both signs), then f's windows
 * (each window's stride multiplied by window_scale, at least 1). */
void vmc_sweep32(const vmj_kernels *k, vm_func f, uint32_t stride, uint32_t window_scale,
                 vmc_stats *st);
/* f64: `count` random inputs from f's ranges (fixed seed), and edge values. */
void vmc_sweep64(const vmj_kernels *k, vm_func f, uint64_t count, vmc_stats *st);

/* Run every form of k over in[0..n) (n a multiple of VMJ_PAD) into out; count
 * the lanes where a form differs bitwise from k->scalar. With vmc_scalar_only
 * set, only k->scalar runs (vm_ulp --scalar-only, for long sweeps). */
extern bool vmc_scalar_only;
void vmc_run(const vmj_kernels *k, bool f64, const void *in, void *out, int64_t n,
             vmc_stats *st);

#endif
