/* vmath.c - exp, expm1, log, log1p, tanh, sigmoid and softplus as plain,
 * branch-free LLVM IR, for f32 and f64, scalar or any vector width.
 *
 * Every function is built from two cores, each range reduction + a
 * polynomial fitted by tests/vmath/fit_coeffs.py (weighted Remez, then
 * coefficients rounded to the type). Lanes never branch: out-of-range lanes
 * are clamped and special values chosen with selects, so the code widens to
 * any vector. No fast-math flag is set, and none may be: the error-free sums
 * below (Fast2Sum, TwoSum) are exactly what reassociation would "simplify".
 * llvm.fma is explicit (part of the algorithm, so every width gives bitwise
 * the same result). Polynomials: Horner in f32, c0 + x Estrin(c1..) in f64. The cores return hi + lo pairs so that the functions
 * built on them round once at the end.
 *
 * exp core (x clamped to where the result saturates):
 *     k = rint(x / ln2)        by the shifter trick: t = fma(x, log2e, 1.5*2^p),
 *                              k = t - 1.5*2^p, and k's bits are t's low bits
 *     r + r_lo = x - k ln2     r1 = fma(-k, ln2_hi, x) is exact; r = r1 - k ln2_lo,
 *                              r_lo its rounding error (one more fma)
 *     e^r - 1 = r + r^2 Q(r)   |r| <= ln2/2; Q of degree 5 (f32), 10 (f64)
 *     e^r = hi + lo            (1 + r) by Fast2Sum, plus r^2 Q + r_lo + its low part
 *   exp:    hi * 2^k1 * 2^k2, k = k1 + k2 split in two so that neither power
 *           of two over- or underflows: the first product is exact and the
 *           second rounds once, also to a subnormal result, 0 or inf.
 *
 * expm1 core: 2^k e^r - 1 = (s - 1) + s r + s (r^2 Q + r_lo), s = 2^k. s - 1
 *     and s r are exact and added by Fast2Sum (|s - 1| >= |s r|), the small
 *     terms last: no cancellation near 0 or for k = -1, 1, 2. For k > KB (f32
 *     64, f64 512), s = 2^KB, the 1 becomes 2^(KB-k), and the result is scaled
 *     by 2^(k-KB) at the end, so overflow gives inf.
 *
 * log core: e ln2 + log(1 + f + flo), f in [sqrt(1/2)-1, sqrt(2)-1], flo tiny
 *     s = f / (2 + f),  z = s^2,  log(1+f) = 2 atanh(s) = 2s + s z P(z)
 *     log(1+f) = f - (hfsq - (s (hfsq + z P(z)) + e ln2_lo - hfsq_lo + flo (1 - 2s))),
 *     hfsq + hfsq_lo = f^2/2 exactly (fma), then + e ln2_hi in one fma.
 *     P of degree 2 (f32), 6 (f64); flo/(1+f) ~ flo (1 - 2s).
 *   log:    x = 2^e m by bit arithmetic (subnormals scaled first), f = m - 1
 *           exact, flo = 0.
 *   log1p:  e from u = 1 + x, then f + flo = (1 + x) 2^-e - 1 = x 2^-e + (2^-e - 1),
 *           two exact terms added by TwoSum: no cancellation, f = x when e = 0.
 *
 * The rest:
 *   tanh(x)     = sign(x) t / (t + 2) while t = expm1(2|x|) < 2, else
 *                 sign(x) (1 - 2 / (t + 2)); |x| clamped at 10 (f32), 20 (f64),
 *                 where tanh rounds to 1. The division is refined with the
 *                 exact residual of q (fma) and the low parts of t and t + 2.
 *   sigmoid(x)  = 1 / (1 + E) for x >= 0, E / (1 + E) for x < 0, E = exp(-|x|)
 *                 as hi + lo: never overflows, gives the tiny (subnormal)
 *                 values for x << 0, and the division is refined as in tanh.
 *   softplus(x) = max(x, 0) + log1p(E), E as in sigmoid, its low part carried
 *                 into the log core's flo.
 *
 * The error bounds (vm_max_ulp) are the largest errors measured by
 * tests/vmath and vm_ulp (f32: every finite float; f64: random and edge
 * inputs against __float128), rounded up; docs/vmath.md has the table.
 */
#include "codegen/vmath.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "support/support.h"

/* ---- the functions' names and bounds -------------------------------------- */

/* Internal functions past the public table: emitted like the others, not
 * named by vm_func_from_name. */
enum { VM_LOG1P01 = VM__COUNT, VM_EXPNEG, VM__ALL };

static const char *const vm_names[VM__ALL] = {
#define VM_NAME_(id, name) name,
    VM_FUNCS(VM_NAME_)
#undef VM_NAME_
    "log1p01",
    "expneg",
};

/* Max error in ulp, {f32, f64}; see the comment at the top. */
static const double vm_bounds[VM__COUNT][2] = {
    [VM_EXP] = {1.0, 1.0},     [VM_EXPM1] = {1.0, 1.5}, [VM_LOG] = {1.0, 1.0},
    [VM_LOG1P] = {1.0, 1.0},   [VM_TANH] = {1.0, 1.0},  [VM_SIGMOID] = {1.0, 1.0},
    [VM_SOFTPLUS] = {1.5, 1.5},
};

const char *vm_func_name(vm_func f)
{
    return (unsigned)f < VM__COUNT ? vm_names[f] : NULL;
}

bool vm_func_from_name(const char *name, vm_func *out)
{
    for (int i = 0; i < VM__COUNT; i++)
        if (strcmp(name, vm_names[i]) == 0) {
            *out = (vm_func)i;
            return true;
        }
    return false;
}

double vm_max_ulp(vm_func f, bool is_f64)
{
    return (unsigned)f < VM__COUNT ? vm_bounds[f][is_f64] : 0.0;
}

/* ---- constants of each type ------------------------------------------------ */

typedef struct vm_consts {
    int bits, mant, bias; /* width, explicit mantissa bits, exponent bias */
    double shifter;       /* 1.5 * 2^mant: adding it rounds to an integer */
    double log2e, ln2_hi, ln2_lo;
    double exp_lo, exp_hi;     /* exp(x) is 0 below, inf above */
    double expm1_lo;           /* expm1(x) is -1 below */
    int expm1_kb;              /* largest k scaled inside expm1's fma */
    double tanh_hi;            /* tanh(x) is 1 above */
    double min_normal, sub_scale; /* log: subnormals are scaled by 2^sub_bits */
    int sub_bits;
    int64_t sqrt_half_bits;    /* bits of sqrt(1/2) in the type */
    const double *q;           /* expm1(r) = r + r^2 Q(r) */
    int nq;
    const double *p;           /* 2 atanh(s) = 2s + s z P(z) */
    int np;
} vm_consts;

/* From tests/vmath/fit_coeffs.py (its output, verbatim). */
/* BEGIN fit_coeffs.py */
/* expm1_q_f32: degree 5, weighted error 2^-32.0 (2^-28.8 with float coefficients) */
static const double expm1_q_f32[] = {0x1.0000000000000p-1, 0x1.5555540000000p-3, 0x1.5554b20000000p-5, 0x1.11118a0000000p-7, 0x1.6d71f80000000p-10, 0x1.a032c00000000p-13};
/* expm1_q_f64: degree 10, weighted error 2^-61.7 (2^-59.9 with double coefficients) */
static const double expm1_q_f64[] = {0x1.0000000000000p-1, 0x1.5555555555559p-3, 0x1.555555555553fp-5, 0x1.111111110f6dap-7, 0x1.6c16c16c1f072p-10, 0x1.a01a01afd3e70p-13, 0x1.a01a017bc843bp-16, 0x1.71ddf87eaa84bp-19, 0x1.27e53628a3ab3p-22, 0x1.af5e7521946e1p-26, 0x1.1ee88cd4ce792p-29};
/* log_p_f32: degree 2, weighted error 2^-29.2 (2^-29.1 with float coefficients) */
static const double log_p_f32[] = {0x1.55557a0000000p-1, 0x1.995eba0000000p-2, 0x1.31e2f20000000p-2};
/* log_p_f64: degree 6, weighted error 2^-58.4 (2^-58.4 with double coefficients) */
static const double log_p_f64[] = {0x1.5555555555588p-1, 0x1.99999999826dbp-2, 0x1.2492494015730p-2, 0x1.c71c53557e14ap-3, 0x1.74660274c9f27p-3, 0x1.39a7410efc609p-3, 0x1.2ed21df901759p-3};
/* END fit_coeffs.py */

static const vm_consts vm_f32 = {
    .bits = 32, .mant = 23, .bias = 127, .shifter = 0x1.8p23,
    .log2e = 0x1.715476p+0, .ln2_hi = 0x1.62e43p-1, .ln2_lo = -0x1.05c61p-29,
    .exp_lo = -104.0, .exp_hi = 89.0, .expm1_lo = -18.0, .expm1_kb = 64,
    .tanh_hi = 10.0, .min_normal = 0x1p-126, .sub_scale = 0x1p24, .sub_bits = 24,
    .sqrt_half_bits = 0x3f3504f3,
    .q = expm1_q_f32, .nq = (int)SUP_ARRAY_LEN(expm1_q_f32),
    .p = log_p_f32, .np = (int)SUP_ARRAY_LEN(log_p_f32),
};

static const vm_consts vm_f64 = {
    .bits = 64, .mant = 52, .bias = 1023, .shifter = 0x1.8p52,
    .log2e = 0x1.71547652b82fep+0, .ln2_hi = 0x1.62e42fefa39efp-1,
    .ln2_lo = 0x1.abc9e3b39803fp-56,
    .exp_lo = -746.0, .exp_hi = 710.0, .expm1_lo = -40.0, .expm1_kb = 512,
    .tanh_hi = 20.0, .min_normal = 0x1p-1022, .sub_scale = 0x1p54, .sub_bits = 54,
    .sqrt_half_bits = 0x3fe6a09e667f3bcdll,
    .q = expm1_q_f64, .nq = (int)SUP_ARRAY_LEN(expm1_q_f64),
    .p = log_p_f64, .np = (int)SUP_ARRAY_LEN(log_p_f64),
};

/* ---- an emitter: typed IR helpers over scalars or vectors ---------------------- */

typedef struct em {
    LLVMContextRef c;
    LLVMModuleRef m;
    LLVMBuilderRef b;
    LLVMTypeRef ft, it;   /* the float type and the integer type of its width */
    LLVMTypeRef fe, ie;   /* their element types */
    unsigned w;           /* lanes; 0 for a scalar */
    const vm_consts *k;
} em;

static LLVMValueRef splat(em *e, LLVMValueRef s)
{
    if (!e->w)
        return s;
    LLVMValueRef *v = sup_malloc(e->w * sizeof *v);
    for (unsigned i = 0; i < e->w; i++)
        v[i] = s;
    LLVMValueRef r = LLVMConstVector(v, e->w);
    sup_free(v);
    return r;
}

static LLVMValueRef kf(em *e, double v) { return splat(e, LLVMConstReal(e->fe, v)); }
static LLVMValueRef ki(em *e, int64_t v)
{
    return splat(e, LLVMConstInt(e->ie, (unsigned long long)v, 1));
}

static LLVMValueRef vadd(em *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(e->b, a, b, ""); }
static LLVMValueRef vsub(em *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(e->b, a, b, ""); }
static LLVMValueRef vmul(em *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(e->b, a, b, ""); }
static LLVMValueRef vdiv(em *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(e->b, a, b, ""); }
static LLVMValueRef iadd(em *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(e->b, a, b, ""); }
static LLVMValueRef isub(em *e, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSub(e->b, a, b, ""); }
static LLVMValueRef sel(em *e, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSelect(e->b, c, a, b, ""); }
static LLVMValueRef fcmp(em *e, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFCmp(e->b, p, a, b, ""); }
static LLVMValueRef icmp(em *e, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildICmp(e->b, p, a, b, ""); }
static LLVMValueRef as_int(em *e, LLVMValueRef a) { return LLVMBuildBitCast(e->b, a, e->it, ""); }
static LLVMValueRef as_float(em *e, LLVMValueRef a) { return LLVMBuildBitCast(e->b, a, e->ft, ""); }

/* A call to the overloaded intrinsic `name` on the float type. */
static LLVMValueRef intrinsic(em *e, const char *name, LLVMValueRef *args, unsigned n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->m, id, &e->ft, 1);
    LLVMTypeRef ty = LLVMIntrinsicGetType(e->c, id, &e->ft, 1);
    return LLVMBuildCall2(e->b, ty, fn, args, n, "");
}

static LLVMValueRef fma3(em *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    LLVMValueRef args[3] = {a, b, c};
    return intrinsic(e, "llvm.fma", args, 3);
}

static LLVMValueRef fabs1(em *e, LLVMValueRef a) { return intrinsic(e, "llvm.fabs", &a, 1); }

static LLVMValueRef copysign2(em *e, LLVMValueRef mag, LLVMValueRef sgn)
{
    LLVMValueRef args[2] = {mag, sgn};
    return intrinsic(e, "llvm.copysign", args, 2);
}

/* c[0] + c[1] x + ... + c[n-1] x^(n-1) by Estrin's scheme: pairs c[i] + c[i+1] x,
 * then pairs of pairs with x^2, x^4, ...: the same work as Horner's scheme but
 * a dependency chain of log2(n) fmas instead of n. */
static LLVMValueRef estrin(em *e, LLVMValueRef x, const double *c, int n)
{
    LLVMValueRef t[16];
    int m = 0;
    for (int i = 0; i < n; i += 2)
        t[m++] = i + 1 < n ? fma3(e, kf(e, c[i + 1]), x, kf(e, c[i])) : kf(e, c[i]);
    for (LLVMValueRef xp = vmul(e, x, x); m > 1; xp = vmul(e, xp, xp)) {
        int k = 0;
        for (int i = 0; i < m; i += 2)
            t[k++] = i + 1 < m ? fma3(e, t[i + 1], xp, t[i]) : t[i];
        m = k;
    }
    return t[0];
}

/* The polynomial c[0] + x (c[1] + ...). Short ones (f32) by Horner's scheme,
 * the most accurate; long ones (f64) by c[0] + x Estrin(c[1..]), which keeps
 * Horner's last, dominant step and shortens the dependency chain that bounds
 * a vectorized loop's speed from 4n to about 4 log2(n) cycles. */
static LLVMValueRef poly(em *e, LLVMValueRef x, const double *c, int n)
{
    if (n > 6)
        return fma3(e, estrin(e, x, c + 1, n - 1), x, kf(e, c[0]));
    LLVMValueRef y = kf(e, c[n - 1]);
    for (int i = n - 2; i >= 0; i--)
        y = fma3(e, y, x, kf(e, c[i]));
    return y;
}

/* x clamped to [lo, hi]; NaN stays NaN. */
static LLVMValueRef clamp(em *e, LLVMValueRef x, double lo, double hi)
{
    x = sel(e, fcmp(e, LLVMRealOGT, x, kf(e, hi)), kf(e, hi), x);
    return sel(e, fcmp(e, LLVMRealOLT, x, kf(e, lo)), kf(e, lo), x);
}

/* 2^n for an integer n in the normal exponent range. */
static LLVMValueRef pow2i(em *e, LLVMValueRef n)
{
    LLVMValueRef biased = iadd(e, n, ki(e, e->k->bias));
    return as_float(e, LLVMBuildShl(e->b, biased, ki(e, e->k->mant), ""));
}

/* ---- double-word helpers ------------------------------------------------------ */

/* A value hi + lo with |lo| <= ulp(hi)/2: the cores return their result so,
 * and sigmoid, softplus and tanh use the low part to stay within 1 ulp. */
typedef struct dword {
    LLVMValueRef hi, lo;
} dword;

/* a + b exactly, for |a| >= |b| (or a = 0): Fast2Sum. */
static dword fast_two_sum(em *e, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef s = vadd(e, a, b);
    return (dword){s, vadd(e, vsub(e, a, s), b)};
}

/* a + b exactly, whatever their magnitudes: TwoSum. */
static dword two_sum(em *e, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef s = vadd(e, a, b);
    LLVMValueRef bb = vsub(e, s, a);
    LLVMValueRef err = vadd(e, vsub(e, a, vsub(e, s, bb)), vsub(e, b, bb));
    return (dword){s, err};
}

/* ---- the exp core ---------------------------------------------------------- */

typedef struct exp_red {
    LLVMValueRef k;        /* integer k = rint(x / ln2) */
    LLVMValueRef r, r_lo;  /* x - k ln2 = r + r_lo */
    LLVMValueRef r2;       /* r^2 */
    LLVMValueRef Q;  /* e^r = 1 + r + r^2 Q */
} exp_red;

/* x must be clamped so that |k| < 2^(mant-1). */
static exp_red exp_reduce(em *e, LLVMValueRef x)
{
    const vm_consts *c = e->k;
    exp_red red;
    LLVMValueRef sh = kf(e, c->shifter);
    LLVMValueRef t = fma3(e, x, kf(e, c->log2e), sh);
    LLVMValueRef kfl = vsub(e, t, sh);
    red.k = isub(e, as_int(e, t), as_int(e, sh));
    LLVMValueRef r1 = fma3(e, kfl, kf(e, -c->ln2_hi), x); /* exact */
    red.r = fma3(e, kfl, kf(e, -c->ln2_lo), r1);
    red.r_lo = fma3(e, kfl, kf(e, -c->ln2_lo), vsub(e, r1, red.r));
    red.r2 = vmul(e, red.r, red.r);
    red.Q = poly(e, red.r, c->q, c->nq);
    return red;
}

/* e^x = 2^k (hi + lo), hi + lo = e^r in [0.7, 1.42]; x is clamped to the exp
 * range (only from below when the caller knows that x <= 0). */
static dword exp_core(em *e, LLVMValueRef x, bool nonpositive, LLVMValueRef *k)
{
    const vm_consts *c = e->k;
    x = nonpositive ? sel(e, fcmp(e, LLVMRealOLT, x, kf(e, c->exp_lo)), kf(e, c->exp_lo), x)
                    : clamp(e, x, c->exp_lo, c->exp_hi);
    exp_red red = exp_reduce(e, x);
    *k = red.k;
    dword t = fast_two_sum(e, kf(e, 1.0), red.r);       /* 1 + r */
    LLVMValueRef small = fma3(e, red.r2, red.Q, vadd(e, t.lo, red.r_lo));
    return fast_two_sum(e, t.hi, small);
}

/* v 2^k for |k| up to twice the exponent range: two exact scalings, the second
 * of which rounds once (to a subnormal, 0 or inf as the case may be). */
static LLVMValueRef scale2(em *e, LLVMValueRef v, LLVMValueRef k)
{
    LLVMValueRef k1 = LLVMBuildAShr(e->b, k, ki(e, 1), "");
    return vmul(e, vmul(e, v, pow2i(e, k1)), pow2i(e, isub(e, k, k1)));
}

/* f32: 1 + (r + r^2 Q) rounded once is within exp's bound (0.98 ulp over
 * every float) with a third fewer instructions than exp_core's double word;
 * f64 keeps the double word (0.77 ulp where the single rounding measures
 * 0.96, too close to the bound for random testing to vouch for). */
static LLVMValueRef emit_exp(em *e, LLVMValueRef x)
{
    const vm_consts *c = e->k;
    if (c->bits == 32) {
        exp_red red = exp_reduce(e, clamp(e, x, c->exp_lo, c->exp_hi));
        LLVMValueRef p = vadd(e, kf(e, 1.0), fma3(e, red.r2, red.Q, red.r));
        return scale2(e, p, red.k);
    }
    LLVMValueRef k;
    dword p = exp_core(e, x, false, &k);
    return scale2(e, p.hi, k);
}

/* exp(x) for x <= 0 (or NaN), as exp, bitwise. k = rint(x / ln2) is in
 * [-150, 0] (f32) / [-1076, 0] (f64), so one split fixed at compile time
 * does what scale2 computes per lane: p 2^(k + D) is exact and normal, and
 * the product with 2^-D rounds once, to the same value. D = 64 / 512. Five
 * fewer integer operations per vector, and no upper clamp. */
static LLVMValueRef emit_expneg(em *e, LLVMValueRef x)
{
    const vm_consts *c = e->k;
    LLVMValueRef p, k;
    if (c->bits == 32) {
        x = sel(e, fcmp(e, LLVMRealOLT, x, kf(e, c->exp_lo)), kf(e, c->exp_lo), x);
        exp_red red = exp_reduce(e, x);
        p = vadd(e, kf(e, 1.0), fma3(e, red.r2, red.Q, red.r));
        k = red.k;
    } else {
        p = exp_core(e, x, true, &k).hi;
    }
    int d = c->bits == 32 ? 64 : 512;
    return vmul(e, vmul(e, p, pow2i(e, iadd(e, k, ki(e, d)))), kf(e, ldexp(1.0, -d)));
}

/* expm1(x) = (hi + lo) 2^k2, where k2 = 0 unless the result is far from -1..1;
 * x already clamped to [expm1_lo, exp_hi]. */
static dword expm1_core(em *e, LLVMValueRef x, LLVMValueRef *k2)
{
    const vm_consts *c = e->k;
    exp_red red = exp_reduce(e, x);
    /* k = k1 + k2 with k1 <= KB; k2 > 0 only where the -1 is far below an ulp. */
    LLVMValueRef over = isub(e, red.k, ki(e, c->expm1_kb));
    *k2 = sel(e, icmp(e, LLVMIntSGT, over, ki(e, 0)), over, ki(e, 0));
    LLVMValueRef s = pow2i(e, isub(e, red.k, *k2));
    /* 2^k1 e^r - 2^-k2 = (s - 2^-k2) + s r + s r^2 Q, summed without losing
     * the low parts: s - 2^-k2 and s r are exact, and the first outweighs the
     * second, so Fast2Sum holds. */
    dword c1 = fast_two_sum(e, s, LLVMBuildFNeg(e->b, pow2i(e, isub(e, ki(e, 0), *k2)), ""));
    dword hi = fast_two_sum(e, c1.hi, vmul(e, s, red.r));
    LLVMValueRef small = fma3(e, s, fma3(e, red.r2, red.Q, red.r_lo), vadd(e, hi.lo, c1.lo));
    return fast_two_sum(e, hi.hi, small);
}

static LLVMValueRef emit_expm1(em *e, LLVMValueRef x)
{
    LLVMValueRef k2;
    dword y = expm1_core(e, clamp(e, x, e->k->expm1_lo, e->k->exp_hi), &k2);
    LLVMValueRef r = vmul(e, y.hi, pow2i(e, k2));
    /* expm1(-0) = -0 (the sums above give +0) */
    return sel(e, fcmp(e, LLVMRealOEQ, x, kf(e, 0.0)), x, r);
}

/* ---- the log core ---------------------------------------------------------- */

/* e ln2 + log(1 + f + flo) for f in [sqrt(1/2)-1, sqrt(2)-1], |flo| <= ulp(f)
 * (or NULL) and an integer-valued ef. */
static LLVMValueRef log_core(em *e, LLVMValueRef f, LLVMValueRef flo, LLVMValueRef ef)
{
    const vm_consts *c = e->k;
    LLVMValueRef s = vdiv(e, f, vadd(e, kf(e, 2.0), f));
    LLVMValueRef z = vmul(e, s, s);
    LLVMValueRef R = vmul(e, z, poly(e, z, c->p, c->np));
    LLVMValueRef hf = vmul(e, kf(e, 0.5), f);
    LLVMValueRef hfsq = vmul(e, hf, f);
    /* f^2/2 = hfsq + its rounding error, which goes with the small terms */
    LLVMValueRef hfsq_lo = fma3(e, hf, f, LLVMBuildFNeg(e->b, hfsq, ""));
    LLVMValueRef corr = fma3(e, ef, kf(e, c->ln2_lo), LLVMBuildFNeg(e->b, hfsq_lo, ""));
    if (flo) /* log(1+f+flo) ~ log(1+f) + flo/(1+f), and 1/(1+f) = 1 - 2s + O(s^2) */
        corr = fma3(e, flo, fma3(e, kf(e, -2.0), s, kf(e, 1.0)), corr);
    LLVMValueRef t = fma3(e, s, vadd(e, hfsq, R), corr);
    LLVMValueRef v = vsub(e, f, vsub(e, hfsq, t));
    return fma3(e, ef, kf(e, c->ln2_hi), v);
}

/* Split a positive normal u into 2^e m, m in [sqrt(1/2), sqrt(2)). */
static void log_split(em *e, LLVMValueRef u, LLVMValueRef *ei, LLVMValueRef *m)
{
    const vm_consts *c = e->k;
    LLVMValueRef ix = isub(e, as_int(e, u), ki(e, c->sqrt_half_bits));
    *ei = LLVMBuildAShr(e->b, ix, ki(e, c->mant), "");
    LLVMValueRef mbits = LLVMBuildAnd(e->b, ix, ki(e, ((int64_t)1 << c->mant) - 1), "");
    *m = as_float(e, iadd(e, mbits, ki(e, c->sqrt_half_bits)));
}

static LLVMValueRef emit_log(em *e, LLVMValueRef x)
{
    const vm_consts *c = e->k;
    LLVMValueRef sub = fcmp(e, LLVMRealOLT, x, kf(e, c->min_normal));
    LLVMValueRef xs = sel(e, sub, vmul(e, x, kf(e, c->sub_scale)), x);
    LLVMValueRef ei, m;
    log_split(e, xs, &ei, &m);
    ei = isub(e, ei, sel(e, sub, ki(e, c->sub_bits), ki(e, 0)));
    LLVMValueRef y = log_core(e, vsub(e, m, kf(e, 1.0)), NULL,
                              LLVMBuildSIToFP(e->b, ei, e->ft, ""));
    /* 0 -> -inf, < 0 -> NaN, inf and NaN -> themselves */
    LLVMValueRef special =
        sel(e, fcmp(e, LLVMRealOEQ, x, kf(e, 0.0)), kf(e, -INFINITY),
            sel(e, fcmp(e, LLVMRealOLT, x, kf(e, 0.0)), kf(e, NAN), x));
    LLVMValueRef ok = LLVMBuildAnd(e->b, fcmp(e, LLVMRealOGT, x, kf(e, 0.0)),
                                   fcmp(e, LLVMRealOLT, x, kf(e, INFINITY)), "");
    return sel(e, ok, y, special);
}

/* log1p(x) for x > -1, finite (the caller handles special values). */
static LLVMValueRef log1p_core(em *e, LLVMValueRef x)
{
    const vm_consts *c = e->k;
    LLVMValueRef ei, m;
    log_split(e, vadd(e, kf(e, 1.0), x), &ei, &m);
    /* f = (1 + x) 2^-e - 1 = x 2^-e + (2^-e - 1), both terms exact: their sum
     * as f + flo. For huge x the 1 is lost anyway: f = m - 1. */
    LLVMValueRef big = icmp(e, LLVMIntSGT, ei, ki(e, c->expm1_kb));
    LLVMValueRef sc = pow2i(e, isub(e, ki(e, 0), sel(e, big, ki(e, 0), ei)));
    dword f = two_sum(e, vmul(e, x, sc), vsub(e, sc, kf(e, 1.0)));
    f.hi = sel(e, big, vsub(e, m, kf(e, 1.0)), f.hi);
    f.lo = sel(e, big, kf(e, 0.0), f.lo);
    LLVMValueRef y = log_core(e, f.hi, f.lo, LLVMBuildSIToFP(e->b, ei, e->ft, ""));
    /* log1p(-0) = -0 */
    return sel(e, fcmp(e, LLVMRealOEQ, x, kf(e, 0.0)), x, y);
}

static LLVMValueRef emit_log1p(em *e, LLVMValueRef x)
{
    LLVMValueRef y = log1p_core(e, x);
    /* -1 -> -inf, < -1 -> NaN, inf and NaN -> themselves */
    LLVMValueRef special =
        sel(e, fcmp(e, LLVMRealOEQ, x, kf(e, -1.0)), kf(e, -INFINITY),
            sel(e, fcmp(e, LLVMRealOLT, x, kf(e, -1.0)), kf(e, NAN), x));
    LLVMValueRef ok = LLVMBuildAnd(e->b, fcmp(e, LLVMRealOGT, x, kf(e, -1.0)),
                                   fcmp(e, LLVMRealOLT, x, kf(e, INFINITY)), "");
    return sel(e, ok, y, special);
}

/* ---- functions built on the cores -------------------------------------------- */

/* (nh + nl) / (d + dl), rounded once up to a tiny error: q = nh / d, then the
 * exact residual of q (fma) and the low parts, times inv ~ 1 / d. */
static LLVMValueRef div_dw(em *e, dword n, dword d, LLVMValueRef q, LLVMValueRef inv)
{
    LLVMValueRef rho = vadd(e, fma3(e, LLVMBuildFNeg(e->b, q, ""), d.hi, n.hi),
                            fma3(e, LLVMBuildFNeg(e->b, q, ""), d.lo, n.lo));
    return fma3(e, rho, inv, q);
}

/* tanh(a) for a >= 0 from t = expm1(2a): t / (t + 2) while t < 2, else
 * 1 - 2 / (t + 2), one division either way. The reciprocal 1 / (t + 2) that
 * div_dw needs is (1 - q) / 2, resp. q / 2. */
static LLVMValueRef emit_tanh(em *e, LLVMValueRef x)
{
    LLVMValueRef a = clamp(e, fabs1(e, x), 0.0, e->k->tanh_hi);
    LLVMValueRef k2; /* 0 here: 2a <= 2 tanh_hi */
    dword t = expm1_core(e, vadd(e, a, a), &k2);
    dword d = two_sum(e, t.hi, kf(e, 2.0));
    d.lo = vadd(e, d.lo, t.lo);
    LLVMValueRef big = fcmp(e, LLVMRealOGE, t.hi, kf(e, 2.0));
    dword n = {sel(e, big, kf(e, 2.0), t.hi), sel(e, big, kf(e, 0.0), t.lo)};
    LLVMValueRef q = vdiv(e, n.hi, d.hi);
    LLVMValueRef inv = vmul(e, kf(e, 0.5), sel(e, big, q, vsub(e, kf(e, 1.0), q)));
    LLVMValueRef z = div_dw(e, n, d, q, inv);
    return copysign2(e, sel(e, big, vsub(e, kf(e, 1.0), z), z), x);
}

/* e / (1 + e) for x < 0, 1 / (1 + e) for x >= 0, e = exp(-|x|) in (0, 1]. */
static LLVMValueRef emit_sigmoid(em *e, LLVMValueRef x)
{
    LLVMValueRef k;
    dword p = exp_core(e, LLVMBuildFNeg(e->b, fabs1(e, x), ""), true, &k);
    dword ex = {scale2(e, p.hi, k), scale2(e, p.lo, k)};
    dword d = fast_two_sum(e, kf(e, 1.0), ex.hi);
    d.lo = vadd(e, d.lo, ex.lo);
    LLVMValueRef neg = fcmp(e, LLVMRealOLT, x, kf(e, 0.0));
    dword n = {sel(e, neg, ex.hi, kf(e, 1.0)), sel(e, neg, ex.lo, kf(e, 0.0))};
    LLVMValueRef q = vdiv(e, n.hi, d.hi);
    /* 1 / (1 + e) is q for x >= 0 and 1 - q for x < 0 */
    LLVMValueRef inv = sel(e, neg, vsub(e, kf(e, 1.0), q), q);
    return div_dw(e, n, d, q, inv);
}

/* max(x, 0) + log1p(E), E = exp(-|x|) = hi + lo in [0, 1]. As 1 + E is in
 * [1, 2], log1p's exponent is 0 or 1 and f + flo = (1 + E) 2^-e - 1 is
 * b + E 2^-e with b = 0 or -1/2, a Fast2Sum. */
static LLVMValueRef emit_softplus(em *e, LLVMValueRef x)
{
    LLVMValueRef k;
    dword p = exp_core(e, LLVMBuildFNeg(e->b, fabs1(e, x), ""), true, &k);
    dword ex = {scale2(e, p.hi, k), scale2(e, p.lo, k)};
    LLVMValueRef big = fcmp(e, LLVMRealOGE, vadd(e, kf(e, 1.0), ex.hi), kf(e, 0x1.6a09e667f3bcdp+0));
    LLVMValueRef sc = sel(e, big, kf(e, 0.5), kf(e, 1.0));
    dword f = fast_two_sum(e, sel(e, big, kf(e, -0.5), kf(e, 0.0)), vmul(e, ex.hi, sc));
    f.lo = fma3(e, ex.lo, sc, f.lo);
    LLVMValueRef l = log_core(e, f.hi, f.lo, sel(e, big, kf(e, 1.0), kf(e, 0.0)));
    LLVMValueRef pos = sel(e, fcmp(e, LLVMRealOLT, x, kf(e, 0.0)), kf(e, 0.0), x);
    return vadd(e, pos, l);
}

/* log1p(x) for x in [0, 1] (or NaN), e.g. x = exp(-|t|): as in softplus,
 * 1 + x is in [1, 2], so the exponent is 0 or 1 and f + flo = b + x 2^-e
 * (b = 0 or -1/2) is one Fast2Sum; none of log1p's range handling. */
static LLVMValueRef emit_log1p01(em *e, LLVMValueRef x)
{
    LLVMValueRef big = fcmp(e, LLVMRealOGE, vadd(e, kf(e, 1.0), x), kf(e, 0x1.6a09e667f3bcdp+0));
    LLVMValueRef sc = sel(e, big, kf(e, 0.5), kf(e, 1.0));
    dword f = fast_two_sum(e, sel(e, big, kf(e, -0.5), kf(e, 0.0)), vmul(e, x, sc));
    return log_core(e, f.hi, f.lo, sel(e, big, kf(e, 1.0), kf(e, 0.0)));
}

typedef LLVMValueRef (*emit_fn)(em *e, LLVMValueRef x);
static const emit_fn vm_emitters[VM__ALL] = {
    [VM_EXP] = emit_exp,   [VM_EXPM1] = emit_expm1,     [VM_LOG] = emit_log,
    [VM_LOG1P] = emit_log1p, [VM_TANH] = emit_tanh,     [VM_SIGMOID] = emit_sigmoid,
    [VM_SOFTPLUS] = emit_softplus, [VM_LOG1P01] = emit_log1p01, [VM_EXPNEG] = emit_expneg,
};

/* ---- the internal function per (function, type) ------------------------------- */

static void add_fn_attr(LLVMContextRef c, LLVMValueRef fn, const char *name, uint64_t val)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    if (kind) /* an unknown kind (0) would crash the verifier */
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(c, kind, val));
}

static LLVMValueRef define_fn(LLVMModuleRef m, int f, LLVMTypeRef ty, unsigned w,
                              bool f64)
{
    char name[64];
    if (w)
        snprintf(name, sizeof name, "lossc.vm.%s.v%uf%d", vm_names[f], w, f64 ? 64 : 32);
    else
        snprintf(name, sizeof name, "lossc.vm.%s.f%d", vm_names[f], f64 ? 64 : 32);
    LLVMValueRef fn = LLVMGetNamedFunction(m, name);
    if (fn)
        return fn;

    LLVMContextRef c = LLVMGetModuleContext(m);
    fn = LLVMAddFunction(m, name, LLVMFunctionType(ty, &ty, 1, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_fn_attr(c, fn, "alwaysinline", 0);
    add_fn_attr(c, fn, "nounwind", 0);
    add_fn_attr(c, fn, "willreturn", 0);
    add_fn_attr(c, fn, "nofree", 0);
    add_fn_attr(c, fn, "nosync", 0);
    add_fn_attr(c, fn, "memory", 0); /* memory(none) */

    em e = {.c = c, .m = m, .ft = ty, .w = w, .k = f64 ? &vm_f64 : &vm_f32};
    e.fe = f64 ? LLVMDoubleTypeInContext(c) : LLVMFloatTypeInContext(c);
    e.ie = LLVMIntTypeInContext(c, (unsigned)e.k->bits);
    e.it = w ? LLVMVectorType(e.ie, w) : e.ie;
    e.b = LLVMCreateBuilderInContext(c);
    LLVMPositionBuilderAtEnd(e.b, LLVMAppendBasicBlockInContext(c, fn, "entry"));
    LLVMBuildRet(e.b, vm_emitters[f](&e, LLVMGetParam(fn, 0)));
    LLVMDisposeBuilder(e.b);
    return fn;
}

static LLVMValueRef emit_any(LLVMModuleRef m, LLVMBuilderRef b, int f, LLVMValueRef x);

LLVMValueRef vm_emit(LLVMModuleRef m, LLVMBuilderRef b, vm_func f, LLVMValueRef x)
{
    if ((unsigned)f >= VM__COUNT)
        return NULL;
    return emit_any(m, b, (int)f, x);
}

LLVMValueRef vm_emit_log1p01(LLVMModuleRef m, LLVMBuilderRef b, LLVMValueRef x)
{
    return emit_any(m, b, VM_LOG1P01, x);
}

LLVMValueRef vm_emit_expneg(LLVMModuleRef m, LLVMBuilderRef b, LLVMValueRef x)
{
    return emit_any(m, b, VM_EXPNEG, x);
}

static LLVMValueRef emit_any(LLVMModuleRef m, LLVMBuilderRef b, int f, LLVMValueRef x)
{
    LLVMTypeRef ty = LLVMTypeOf(x), elem = ty;
    unsigned w = 0;
    if (LLVMGetTypeKind(ty) == LLVMVectorTypeKind) {
        w = LLVMGetVectorSize(ty);
        elem = LLVMGetElementType(ty);
    }
    LLVMTypeKind kind = LLVMGetTypeKind(elem);
    if (kind != LLVMFloatTypeKind && kind != LLVMDoubleTypeKind)
        return NULL;
    LLVMValueRef fn = define_fn(m, f, ty, w, kind == LLVMDoubleTypeKind);
    return LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, &x, 1, "");
}
