/* vmath.h - vectorizable exp, log, ... emitted as plain LLVM IR.
 *
 *     LLVMValueRef y = vm_emit(m, b, VM_SOFTPLUS, x);   // x: float, double,
 *                                                       // <W x float|double>
 *
 * Every function is range reduction + a polynomial whose coefficients were
 * fitted for lossc (tests/vmath/fit_coeffs.py), written with selects instead
 * of branches and with explicit llvm.fma, so the same code runs lane-wise in
 * any vector width and the loop vectorizer can widen a scalar call. No libm
 * call is emitted (on a CPU without FMA, LLVM lowers llvm.fma to fma/fmaf).
 * Results are bitwise identical for every width. Special values follow
 * IEEE/libm (NaN in, NaN out; exp(-inf) = 0; log(0) = -inf; expm1(-0) = -0;
 * ...); docs/vmath.md has the algorithms and the error bounds.
 *
 * vm_emit adds, once per (function, type), an internal always-inline function
 * "lossc.vm.<name>.<type>" to m and emits a call to it at b's position (b's
 * position is left after the call). m must have no other function of that name.
 *
 * Prefix: vm_.
 */
#ifndef LOSSC_VMATH_H
#define LOSSC_VMATH_H

#include <stdbool.h>

#include <llvm-c/Core.h>

/* X(ENUM, name): one row per function. */
#define VM_FUNCS(X)        \
    X(EXP, "exp")          \
    X(EXPM1, "expm1")      \
    X(LOG, "log")          \
    X(LOG1P, "log1p")      \
    X(TANH, "tanh")        \
    X(SIGMOID, "sigmoid")  \
    X(SOFTPLUS, "softplus")

typedef enum vm_func {
#define VM_ENUM_(id, name) VM_##id,
    VM_FUNCS(VM_ENUM_)
#undef VM_ENUM_
    VM__COUNT
} vm_func;

/* Emit f(x) at b's position. x is a float or double scalar, or a fixed-width
 * vector of them. Returns NULL (and emits nothing) for any other type. */
LLVMValueRef vm_emit(LLVMModuleRef m, LLVMBuilderRef b, vm_func f, LLVMValueRef x);

/* log1p(x) for x in [0, 1] only (x = exp(-|t|) in softplus and the logistic
 * losses): log1p's algorithm without its range handling; NaN gives NaN. The
 * bound is log1p's (tests/vmath checks every float of [0, 1]). */
LLVMValueRef vm_emit_log1p01(LLVMModuleRef m, LLVMBuilderRef b, LLVMValueRef x);

/* exp(x) for x <= 0 only (x - max(x) in a softmax, -|t| in the logistic
 * losses): exp's result bitwise for every such x and NaN, with fewer
 * operations (tests/vmath checks it against exp). */
LLVMValueRef vm_emit_expneg(LLVMModuleRef m, LLVMBuilderRef b, LLVMValueRef x);

/* The documented maximum error of f in ulp (of the correctly rounded result)
 * over every input, for f32 or f64; the tests check it. */
double vm_max_ulp(vm_func f, bool is_f64);

/* "exp", "log1p", ...; NULL for a value out of range. */
const char *vm_func_name(vm_func f);

/* The function called name ("exp", ...): true and *out set when there is one. */
bool vm_func_from_name(const char *name, vm_func *out);

#endif
