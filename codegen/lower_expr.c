/* lower_expr.c - one IR node at one index environment -> LLVM values.
 *
 * The semantics are ir/interp.c's, op for op (it is the definition): Python
 * // and % with integer division by zero giving 0, NaN-propagating min and
 * max, stable softplus and sigmoid, casts from float to int truncating (and
 * 0 for inf and NaN), bool stored as one byte. Nothing here may be undefined
 * behaviour in LLVM's sense: no sdiv by 0 or INT_MIN / -1, no fptosi out of
 * range, no out-of-bounds load even for an index a range check will reject.
 */
#include "codegen/lower.h"
#include "codegen/vmath.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- types and small helpers ----------------------------------------------------- */

LLVMTypeRef ty_scalar(cg_fn *f, int dt)
{
    switch (dt) {
    case DT_BOOL: return LLVMInt1TypeInContext(f->ctx);
    case DT_I32: return LLVMInt32TypeInContext(f->ctx);
    case DT_I64: return LLVMInt64TypeInContext(f->ctx);
    case DT_F32: return LLVMFloatTypeInContext(f->ctx);
    default: return LLVMDoubleTypeInContext(f->ctx);
    }
}

LLVMTypeRef ty_mem(cg_fn *f, int dt)
{
    return dt == DT_BOOL ? LLVMInt8TypeInContext(f->ctx) : ty_scalar(f, dt);
}

LLVMTypeRef ty_vec(cg_fn *f, int dt) { return LLVMVectorType(ty_scalar(f, dt), (unsigned)f->W); }

LLVMValueRef i64c(cg_fn *f, int64_t v)
{
    return LLVMConstInt(LLVMInt64TypeInContext(f->ctx), (unsigned long long)v, 1);
}

LLVMValueRef splat(cg_fn *f, LLVMValueRef x)
{
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)f->W);
    if (LLVMIsConstant(x)) {
        LLVMValueRef e[64];
        for (int i = 0; i < f->W; i++)
            e[i] = x;
        return LLVMConstVector(e, (unsigned)f->W);
    }
    LLVMValueRef v = LLVMBuildInsertElement(f->b, LLVMGetPoison(vt), x,
                                            LLVMConstInt(LLVMInt32TypeInContext(f->ctx), 0, 0), "");
    LLVMValueRef zero = LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(f->ctx),
                                                     (unsigned)f->W));
    return LLVMBuildShuffleVector(f->b, v, LLVMGetPoison(vt), zero, "splat");
}

LLVMValueRef as_vec(cg_fn *f, const cv *x) { return cv_varies(x) ? x->v : splat(f, x->v); }

cv cv_uniform(LLVMValueRef v, int dt, uint64_t loops)
{
    return (cv){.v = v, .shape = CV_UNIFORM, .dt = (uint8_t)dt, .loops = loops};
}

static LLVMValueRef cfloat(cg_fn *f, int dt, double v, bool vec)
{
    LLVMValueRef c = LLVMConstReal(ty_scalar(f, dt), v);
    return vec ? splat(f, c) : c;
}

static LLVMValueRef cint(cg_fn *f, int dt, int64_t v, bool vec)
{
    LLVMValueRef c = LLVMConstInt(ty_scalar(f, dt), (unsigned long long)v, 1);
    return vec ? splat(f, c) : c;
}

static LLVMValueRef cnum(cg_fn *f, int dt, double v, bool vec)
{
    return ir_dtype_is_float((ir_dtype)dt) ? cfloat(f, dt, v, vec) : cint(f, dt, (int64_t)v, vec);
}

static bool is_vec(LLVMValueRef v) { return LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMVectorTypeKind; }

static void set_contract(LLVMValueRef inst)
{
    if (LLVMIsAInstruction(inst) && LLVMCanValueUseFastMathFlags(inst))
        LLVMSetFastMathFlags(inst, LLVMFastMathAllowContract);
}

void set_reassoc(LLVMValueRef inst)
{
    if (LLVMIsAInstruction(inst) && LLVMCanValueUseFastMathFlags(inst))
        LLVMSetFastMathFlags(inst, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
}

LLVMValueRef call_intrinsic(cg_fn *f, const char *name, LLVMTypeRef *tys, int ntys,
                            LLVMValueRef *args, int nargs)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    if (!id) {
        cg_fail(f, "codegen: LLVM has no intrinsic %s", name);
        return LLVMGetPoison(tys[0]);
    }
    LLVMValueRef decl = LLVMGetIntrinsicDeclaration(f->mod, id, tys, (size_t)ntys);
    LLVMTypeRef fty = LLVMIntrinsicGetType(f->ctx, id, tys, (size_t)ntys);
    return LLVMBuildCall2(f->b, fty, decl, args, (unsigned)nargs, "");
}

static LLVMValueRef intrin1(cg_fn *f, const char *name, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    return call_intrinsic(f, name, &t, 1, &x, 1);
}

static LLVMValueRef intrin2(cg_fn *f, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef a[2] = {x, y};
    return call_intrinsic(f, name, &t, 1, a, 2);
}

static LLVMValueRef fcmp(cg_fn *f, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFCmp(f->b, p, a, b, "");
}

static LLVMValueRef icmp(cg_fn *f, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildICmp(f->b, p, a, b, "");
}

static LLVMValueRef sel(cg_fn *f, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(f->b, c, a, b, "");
}

/* ---- transcendental functions: the one place that knows how ---------------------- */

/* Every exp/log/... goes through here: codegen/vmath.c emits them as plain
 * branch-free LLVM IR (range reduction + polynomial) with stated ulp bounds,
 * for scalars and vectors alike, so they vectorize with everything else. */
static LLVMValueRef cg_math(cg_fn *f, int op, int dt, LLVMValueRef x)
{
    (void)dt;
    vm_func vf;
    switch (op) {
    case OP_EXP: vf = VM_EXP; break;
    case OP_EXPM1: vf = VM_EXPM1; break;
    case OP_LOG: vf = VM_LOG; break;
    case OP_LOG1P: vf = VM_LOG1P; break;
    case OP_TANH: vf = VM_TANH; break;
    case OP_SIGMOID: vf = VM_SIGMOID; break;
    case OP_SOFTPLUS: vf = VM_SOFTPLUS; break;
    default:
        cg_fail(f, "codegen: cg_math has no rule for '%s'", ir_op_name(op));
        return LLVMGetPoison(LLVMTypeOf(x));
    }
    LLVMValueRef r = vm_emit(f->mod, f->b, vf, x);
    if (!r) {
        cg_fail(f, "codegen: vmath cannot compute %s of this type", ir_op_name(op));
        return LLVMGetPoison(LLVMTypeOf(x));
    }
    return r;
}

/* ---- elementwise semantics ------------------------------------------------------------ */

static LLVMValueRef emit_cast(cg_fn *f, LLVMValueRef x, int from, int to, bool vec)
{
    if (from == to)
        return x;
    LLVMTypeRef t = vec ? ty_vec(f, to) : ty_scalar(f, to);
    bool ff = ir_dtype_is_float((ir_dtype)from), tf = ir_dtype_is_float((ir_dtype)to);
    if (from == DT_BOOL)
        return tf ? LLVMBuildUIToFP(f->b, x, t, "") : LLVMBuildZExt(f->b, x, t, "");
    if (to == DT_BOOL)
        return ff ? fcmp(f, LLVMRealUNE, x, cfloat(f, from, 0, vec))
                  : icmp(f, LLVMIntNE, x, cint(f, from, 0, vec));
    if (!ff && !tf)
        return LLVMBuildIntCast2(f->b, x, t, 1, "");
    if (!ff)
        return LLVMBuildSIToFP(f->b, x, t, "");
    if (tf)
        return LLVMBuildFPCast(f->b, x, t, "");
    /* float -> int: truncate, saturating; inf and NaN give 0 */
    LLVMTypeRef tys[2] = {t, LLVMTypeOf(x)};
    LLVMValueRef r = call_intrinsic(f, "llvm.fptosi.sat", tys, 2, &x, 1);
    LLVMValueRef fin = fcmp(f, LLVMRealOLT, intrin1(f, "llvm.fabs", x),
                            cfloat(f, from, INFINITY, vec));
    return sel(f, fin, r, cint(f, to, 0, vec));
}

static LLVMValueRef nan_minmax(cg_fn *f, bool is_max, int dt, LLVMValueRef a, LLVMValueRef b)
{
    if (!ir_dtype_is_float((ir_dtype)dt))
        return sel(f, icmp(f, is_max ? LLVMIntSGT : LLVMIntSLT, a, b), a, b);
    LLVMValueRef r = sel(f, fcmp(f, is_max ? LLVMRealOGT : LLVMRealOLT, a, b), a, b);
    return sel(f, fcmp(f, LLVMRealUNO, a, a), a, r); /* a NaN wins too */
}

/* Python // and % on integers; b == 0 gives 0, and b == -1 is done without
 * the sdiv that would overflow for the most negative a. */
static LLVMValueRef int_divmod(cg_fn *f, bool is_mod, int dt, LLVMValueRef a, LLVMValueRef b,
                               bool vec)
{
    LLVMValueRef zero = cint(f, dt, 0, vec), one = cint(f, dt, 1, vec);
    LLVMValueRef bz = icmp(f, LLVMIntEQ, b, zero);
    LLVMValueRef bm1 = icmp(f, LLVMIntEQ, b, cint(f, dt, -1, vec));
    LLVMValueRef sb = sel(f, LLVMBuildOr(f->b, bz, bm1, ""), one, b);
    LLVMValueRef r = LLVMBuildSRem(f->b, a, sb, "");
    LLVMValueRef adj = LLVMBuildAnd(f->b, icmp(f, LLVMIntNE, r, zero),
                                    LLVMBuildXor(f->b, icmp(f, LLVMIntSLT, r, zero),
                                                 icmp(f, LLVMIntSLT, sb, zero), ""), "");
    LLVMValueRef special = LLVMBuildOr(f->b, bz, bm1, "");
    if (is_mod) {
        r = sel(f, adj, LLVMBuildAdd(f->b, r, b, ""), r);
        return sel(f, special, zero, r);
    }
    LLVMValueRef q = LLVMBuildSDiv(f->b, a, sb, "");
    q = LLVMBuildSub(f->b, q, LLVMBuildZExt(f->b, adj, LLVMTypeOf(q), ""), "");
    q = sel(f, bm1, LLVMBuildSub(f->b, zero, a, ""), q);
    return sel(f, bz, zero, q);
}

/* Integer power as the interpreter defines it: through double pow, and for a
 * negative exponent 1 if the base is 1, else 0. */
static LLVMValueRef int_pow(cg_fn *f, int dt, LLVMValueRef a, LLVMValueRef b, bool vec)
{
    LLVMValueRef fa = emit_cast(f, a, dt, DT_F64, vec), fb = emit_cast(f, b, dt, DT_F64, vec);
    LLVMValueRef p = emit_cast(f, intrin2(f, "llvm.pow", fa, fb), DT_F64, dt, vec);
    LLVMValueRef neg = sel(f, icmp(f, LLVMIntEQ, a, cint(f, dt, 1, vec)), cint(f, dt, 1, vec),
                           cint(f, dt, 0, vec));
    return sel(f, icmp(f, LLVMIntSLT, b, cint(f, dt, 0, vec)), neg, p);
}

/* x^y for floats, vectorized: exp(y log|x|) computed in f64 (so an f32
 * result is correctly rounded but for double rounding, and an f64 one is
 * within |y log x| ulp), then C's pow for signs, zeros, infinities, NaN:
 * pow(x, 0) = pow(1, y) = pow(-1, +-inf) = 1; a negative finite x with a
 * non-integer y is NaN; a negative x (or -0) with an odd integer y keeps
 * its sign. */
static LLVMValueRef pow_general(cg_fn *f, int dt, LLVMValueRef x, LLVMValueRef y, bool vec)
{
    LLVMValueRef wx = emit_cast(f, x, dt, DT_F64, vec), wy = emit_cast(f, y, dt, DT_F64, vec);
    LLVMValueRef ax = intrin1(f, "llvm.fabs", wx);
    LLVMValueRef l = vm_emit(f->mod, f->b, VM_LOG, ax);
    LLVMValueRef r = vm_emit(f->mod, f->b, VM_EXP, LLVMBuildFMul(f->b, wy, l, ""));
    LLVMValueRef half = LLVMBuildFMul(f->b, wy, cfloat(f, DT_F64, 0.5, vec), "");
    LLVMValueRef yint = fcmp(f, LLVMRealOEQ, intrin1(f, "llvm.floor", wy), wy);
    LLVMValueRef yodd = LLVMBuildAnd(f->b, yint,
                                     fcmp(f, LLVMRealUNE, intrin1(f, "llvm.floor", half), half), "");
    LLVMTypeRef it = vec ? LLVMVectorType(LLVMInt64TypeInContext(f->ctx), (unsigned)f->W)
                         : LLVMInt64TypeInContext(f->ctx);
    LLVMValueRef sign = icmp(f, LLVMIntSLT, LLVMBuildBitCast(f->b, wx, it, ""), LLVMConstNull(it));
    r = sel(f, LLVMBuildAnd(f->b, sign, yodd, ""), LLVMBuildFNeg(f->b, r, ""), r);
    LLVMValueRef inf = cfloat(f, DT_F64, INFINITY, vec), one = cfloat(f, DT_F64, 1, vec);
    LLVMValueRef bad = LLVMBuildAnd(f->b, fcmp(f, LLVMRealOLT, wx, cfloat(f, DT_F64, 0, vec)),
                                    LLVMBuildAnd(f->b, LLVMBuildNot(f->b, yint, ""),
                                                 fcmp(f, LLVMRealONE, ax, inf), ""), "");
    r = sel(f, bad, cfloat(f, DT_F64, NAN, vec), r);
    LLVMValueRef is_one = LLVMBuildOr(
        f->b, LLVMBuildOr(f->b, fcmp(f, LLVMRealOEQ, wy, cfloat(f, DT_F64, 0, vec)),
                          fcmp(f, LLVMRealOEQ, wx, one), ""),
        LLVMBuildAnd(f->b, fcmp(f, LLVMRealOEQ, ax, one),
                     fcmp(f, LLVMRealOEQ, intrin1(f, "llvm.fabs", wy), inf), ""), "");
    r = sel(f, is_one, one, r);
    return emit_cast(f, r, DT_F64, dt, vec);
}

/* pow_general out of line, in an internal function per type shared by the
 * module: a uniform exponent's rare path then costs a call instead of
 * ~300 instructions in the loop body that the register allocator would
 * have to work around (spilling on the hot path). */
static LLVMValueRef pow_general_call(cg_fn *f, int dt, LLVMValueRef x, LLVMValueRef y, bool vec)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    char name[64];
    snprintf(name, sizeof name, "lossc.pow.%s.%d", ir_dtype_name((ir_dtype)dt), vec ? f->W : 1);
    LLVMValueRef fn = LLVMGetNamedFunction(f->mod, name);
    LLVMTypeRef params[2] = {t, t};
    LLVMTypeRef fty = LLVMFunctionType(t, params, 2, 0);
    if (!fn) {
        fn = LLVMAddFunction(f->mod, name, fty);
        LLVMSetLinkage(fn, LLVMInternalLinkage);
        const char *attrs[] = {"noinline", "cold", "nounwind"};
        for (size_t i = 0; i < SUP_ARRAY_LEN(attrs); i++)
            LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                    LLVMCreateEnumAttribute(f->ctx, LLVMGetEnumAttributeKindForName(
                                                                        attrs[i], strlen(attrs[i])), 0));
        LLVMBuilderRef saved = f->b;
        f->b = LLVMCreateBuilderInContext(f->ctx);
        LLVMPositionBuilderAtEnd(f->b, LLVMAppendBasicBlockInContext(f->ctx, fn, "entry"));
        LLVMBuildRet(f->b, pow_general(f, dt, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), vec));
        LLVMDisposeBuilder(f->b);
        f->b = saved;
    }
    LLVMValueRef args[2] = {x, y};
    return LLVMBuildCall2(f->b, fty, fn, args, 2, "");
}

/* x^c for the constants worth a shortcut; NULL for the others. */
static LLVMValueRef pow_const(cg_fn *f, int dt, LLVMValueRef x, double c, bool vec)
{
    LLVMValueRef one = cfloat(f, dt, 1, vec);
    if (c == 0)
        return one;
    if (c == 1)
        return x;
    if (c == 2 || c == -2) {
        LLVMValueRef sq = LLVMBuildFMul(f->b, x, x, "");
        return c > 0 ? sq : LLVMBuildFDiv(f->b, one, sq, "");
    }
    if (c == 3)
        return LLVMBuildFMul(f->b, LLVMBuildFMul(f->b, x, x, ""), x, "");
    if (c == 4) {
        LLVMValueRef sq = LLVMBuildFMul(f->b, x, x, "");
        return LLVMBuildFMul(f->b, sq, sq, "");
    }
    if (c == -1)
        return LLVMBuildFDiv(f->b, one, x, "");
    if (c == 0.5) { /* pow(-0, .5) = +0 and pow(-inf, .5) = +inf, unlike sqrt */
        LLVMValueRef r = intrin1(f, "llvm.sqrt", x);
        r = sel(f, fcmp(f, LLVMRealOEQ, x, cfloat(f, dt, -INFINITY, vec)),
                cfloat(f, dt, INFINITY, vec), r);
        return LLVMBuildFAdd(f->b, r, cfloat(f, dt, 0, vec), "");
    }
    return NULL;
}

static LLVMValueRef emit_unary(cg_fn *f, int op, int dt, LLVMValueRef x, bool vec)
{
    bool fl = ir_dtype_is_float((ir_dtype)dt);
    LLVMValueRef zero = cnum(f, dt, 0, vec);
    switch (op) {
    case OP_NEG: return fl ? LLVMBuildFNeg(f->b, x, "") : LLVMBuildSub(f->b, zero, x, "");
    case OP_ABS:
        return fl ? intrin1(f, "llvm.fabs", x)
                  : sel(f, icmp(f, LLVMIntSLT, x, zero), LLVMBuildSub(f->b, zero, x, ""), x);
    case OP_SIGN:
        if (fl) /* sign(0) and sign(NaN) are x itself */
            return sel(f, fcmp(f, LLVMRealOGT, x, zero), cfloat(f, dt, 1, vec),
                       sel(f, fcmp(f, LLVMRealOLT, x, zero), cfloat(f, dt, -1, vec), x));
        return sel(f, icmp(f, LLVMIntSGT, x, zero), cint(f, dt, 1, vec),
                   sel(f, icmp(f, LLVMIntSLT, x, zero), cint(f, dt, -1, vec), zero));
    case OP_RELU:
        if (fl) /* NaN stays NaN */
            return sel(f, LLVMBuildOr(f->b, fcmp(f, LLVMRealOGT, x, zero),
                                      fcmp(f, LLVMRealUNO, x, x), ""), x, zero);
        return sel(f, icmp(f, LLVMIntSGT, x, zero), x, zero);
    case OP_FLOOR: return intrin1(f, "llvm.floor", x);
    case OP_CEIL: return intrin1(f, "llvm.ceil", x);
    case OP_SQRT: return intrin1(f, "llvm.sqrt", x);
    case OP_RSQRT:
        return LLVMBuildFDiv(f->b, cfloat(f, dt, 1, vec), intrin1(f, "llvm.sqrt", x), "");
    case OP_EXP:
    case OP_EXPM1:
    case OP_LOG:
    case OP_LOG1P:
    case OP_TANH:
    case OP_SIGMOID:
    case OP_SOFTPLUS: return cg_math(f, op, dt, x);
    case OP_ISFINITE:
        return fcmp(f, LLVMRealOLT, intrin1(f, "llvm.fabs", x), cfloat(f, dt, INFINITY, vec));
    case OP_NOT: return LLVMBuildNot(f->b, x, "");
    default:
        cg_fail(f, "codegen: no unary rule for '%s'", ir_op_name(op));
        return LLVMGetPoison(LLVMTypeOf(x));
    }
}

static LLVMValueRef emit_binary(cg_fn *f, int op, int dt, LLVMValueRef a, LLVMValueRef b,
                                bool vec)
{
    bool fl = ir_dtype_is_float((ir_dtype)dt);
    LLVMValueRef r;
    switch (op) {
    case OP_ADD: r = fl ? LLVMBuildFAdd(f->b, a, b, "") : LLVMBuildAdd(f->b, a, b, ""); break;
    case OP_SUB: r = fl ? LLVMBuildFSub(f->b, a, b, "") : LLVMBuildSub(f->b, a, b, ""); break;
    case OP_MUL: r = fl ? LLVMBuildFMul(f->b, a, b, "") : LLVMBuildMul(f->b, a, b, ""); break;
    case OP_DIV: r = LLVMBuildFDiv(f->b, a, b, ""); break;
    case OP_FLOORDIV:
        if (fl)
            return intrin1(f, "llvm.floor", LLVMBuildFDiv(f->b, a, b, ""));
        return int_divmod(f, false, dt, a, b, vec);
    case OP_MOD:
        if (fl) { /* fmod, then the sign of the divisor */
            LLVMValueRef m = LLVMBuildFRem(f->b, a, b, ""), zero = cfloat(f, dt, 0, vec);
            LLVMValueRef adj = LLVMBuildAnd(f->b, fcmp(f, LLVMRealUNE, m, zero),
                                            LLVMBuildXor(f->b, fcmp(f, LLVMRealOLT, m, zero),
                                                         fcmp(f, LLVMRealOLT, b, zero), ""), "");
            return sel(f, adj, LLVMBuildFAdd(f->b, m, b, ""), m);
        }
        return int_divmod(f, true, dt, a, b, vec);
    case OP_POW: return fl ? pow_general(f, dt, a, b, vec) : int_pow(f, dt, a, b, vec);
    case OP_MIN: return nan_minmax(f, false, dt, a, b);
    case OP_MAX: return nan_minmax(f, true, dt, a, b);
    case OP_LT: return fl ? fcmp(f, LLVMRealOLT, a, b) : icmp(f, LLVMIntSLT, a, b);
    case OP_LE: return fl ? fcmp(f, LLVMRealOLE, a, b) : icmp(f, LLVMIntSLE, a, b);
    case OP_GT: return fl ? fcmp(f, LLVMRealOGT, a, b) : icmp(f, LLVMIntSGT, a, b);
    case OP_GE: return fl ? fcmp(f, LLVMRealOGE, a, b) : icmp(f, LLVMIntSGE, a, b);
    case OP_EQ: return fl ? fcmp(f, LLVMRealOEQ, a, b) : icmp(f, LLVMIntEQ, a, b);
    case OP_NE: return fl ? fcmp(f, LLVMRealUNE, a, b) : icmp(f, LLVMIntNE, a, b);
    case OP_AND: return LLVMBuildAnd(f->b, a, b, "");
    case OP_OR: return LLVMBuildOr(f->b, a, b, "");
    default:
        cg_fail(f, "codegen: no binary rule for '%s'", ir_op_name(op));
        return LLVMGetPoison(LLVMTypeOf(a));
    }
    set_contract(r);
    return r;
}

/* ---- the logistic family: one exp(-|x|) for all of it -------------------------- */

/* sigmoid(t) and softplus(t) for t = x, -x, |x|, -|x| (autodiff and the
 * stabilizer make all of them from one logit) are computed from shared
 * pieces of b = x with its negations and abs stripped:
 *     e = exp(-|b|),  r = 1 / (1 + e),  l = log1p(e)
 *     sigmoid(t) = t >= 0 ? r : e r          softplus(t) = l + max(t, 0)
 * the interpreter's stable definitions, term for term: one exp and one
 * log1p per element however many of them the graph holds, as a hand-written
 * loop would. (vmath's own sigmoid and softplus are ~1 ulp; these are
 * within 3: exp's ulp and two roundings.) */
enum { TAG_EXPNEG = 1, TAG_RECIP, TAG_LOG1P };

static cv logistic_piece(cg_fn *f, const ir_node *b, const cv *env, uint32_t tag)
{
    uint64_t h;
    memo_entry *e = memo_find(f, b, tag, env, &h);
    if (e)
        return e->val;
    cv r;
    if (tag == TAG_EXPNEG) {
        r = cg_eval(f, b, env);
        at(f, cv_home(r.loops), CH_HOIST);
        r.v = vm_emit_expneg(f->mod, f->b, LLVMBuildFNeg(f->b, intrin1(f, "llvm.fabs", r.v), ""));
    } else {
        r = logistic_piece(f, b, env, TAG_EXPNEG);
        at(f, cv_home(r.loops), CH_HOIST);
        LLVMValueRef one = cfloat(f, r.dt, 1, cv_varies(&r));
        if (tag == TAG_RECIP)
            r.v = LLVMBuildFDiv(f->b, one, LLVMBuildFAdd(f->b, one, r.v, ""), "");
        else
            r.v = vm_emit_log1p01(f->mod, f->b, r.v); /* e is in [0, 1] */
    }
    r.base = NULL;
    r.ok = NULL;
    if (r.shape == CV_LINEAR)
        r.shape = CV_VARYING;
    memo_put(f, b, tag, env, h, r);
    return r;
}

static cv eval_logistic(cg_fn *f, const ir_node *n, const cv *env)
{
    const ir_node *b = n->ops[0];
    while (b->op == OP_NEG || b->op == OP_ABS)
        b = b->ops[0];
    cv t = cg_eval(f, n->ops[0], env);
    cv p1 = logistic_piece(f, b, env, TAG_EXPNEG);
    cv p2 = logistic_piece(f, b, env, n->op == OP_SIGMOID ? TAG_RECIP : TAG_LOG1P);
    uint64_t loops = t.loops | p1.loops | p2.loops;
    bool vec = cv_varies(&t) || cv_varies(&p1);
    at(f, cv_home(loops), CH_HOIST);
    LLVMValueRef x = vec ? as_vec(f, &t) : t.v, e = vec ? as_vec(f, &p1) : p1.v;
    LLVMValueRef q = vec ? as_vec(f, &p2) : p2.v, zero = cfloat(f, n->dtype, 0, vec), v;
    if (n->op == OP_SIGMOID)
        v = sel(f, fcmp(f, LLVMRealOGE, x, zero), q, LLVMBuildFMul(f->b, e, q, ""));
    else
        v = LLVMBuildFAdd(f->b, q, sel(f, fcmp(f, LLVMRealOGT, x, zero), x, zero), "");
    return (cv){.v = v, .shape = vec ? CV_VARYING : CV_UNIFORM, .dt = n->dtype, .loops = loops};
}

/* A comparison of the vector loop's index i + lane (i64) with a uniform
 * integer u, the one-hot of a label (iota(C) == y[n]): compared as
 * lane OP d with d = u - i clamped to [-1, W] in 32 bits, against the
 * constant lanes. The clamp keeps every outcome for lanes 0..W-1, and W i32
 * lanes are one register where the i64 ones are two (AVX2: 2 compares for
 * 16 lanes instead of 4 adds and 4 compares). NULL when not of that form. */
static LLVMValueRef linear_compare(cg_fn *f, int op, const cv *a, const cv *b)
{
    LLVMIntPredicate pr;
    switch (op) {
    case OP_EQ: pr = LLVMIntEQ; break;
    case OP_NE: pr = LLVMIntNE; break;
    case OP_LT: pr = LLVMIntSLT; break;
    case OP_LE: pr = LLVMIntSLE; break;
    case OP_GT: pr = LLVMIntSGT; break;
    case OP_GE: pr = LLVMIntSGE; break;
    default: return NULL;
    }
    bool left = a->shape == CV_LINEAR;
    const cv *lin = left ? a : b, *u = left ? b : a;
    if (lin->shape != CV_LINEAR || cv_varies(u) || lin->dt != DT_I64 || u->dt != DT_I64)
        return NULL;
    if (!left) /* u OP lane  <=>  lane OP' u */
        pr = pr == LLVMIntSLT ? LLVMIntSGT : pr == LLVMIntSLE ? LLVMIntSGE
           : pr == LLVMIntSGT ? LLVMIntSLT : pr == LLVMIntSGE ? LLVMIntSLE : pr;
    LLVMTypeRef i64 = LLVMInt64TypeInContext(f->ctx), i32 = LLVMInt32TypeInContext(f->ctx);
    LLVMValueRef d = call_intrinsic(f, "llvm.ssub.sat", &i64, 1,
                                    (LLVMValueRef[]){u->v, lin->base}, 2);
    d = call_intrinsic(f, "llvm.smax", &i64, 1, (LLVMValueRef[]){d, i64c(f, -1)}, 2);
    d = call_intrinsic(f, "llvm.smin", &i64, 1, (LLVMValueRef[]){d, i64c(f, f->W)}, 2);
    LLVMValueRef lanes[64];
    for (int i = 0; i < f->W; i++)
        lanes[i] = LLVMConstInt(i32, (unsigned long long)i, 0);
    return LLVMBuildICmp(f->b, pr, LLVMConstVector(lanes, (unsigned)f->W),
                         splat(f, LLVMBuildTrunc(f->b, d, i32, "")), "");
}

/* Is a <= 0 (or NaN) whatever its operands: a softmax's shift x - max(x),
 * -|x|? Then exp(a) takes vmath's shorter form for such arguments. */
static bool nonpositive(const ir_node *a)
{
    if (a->op == OP_NEG)
        return a->ops[0]->op == OP_ABS;
    return a->op == OP_SUB && a->ops[1]->op == OP_RMAX && a->ops[1]->ops[0] == a->ops[0];
}

static cv eval_elem(cg_fn *f, const ir_node *n, const cv *env)
{
    if (n->op == OP_SIGMOID || n->op == OP_SOFTPLUS)
        return eval_logistic(f, n, env);
    cv a[3];
    uint64_t loops = 0;
    bool vec = false;
    /* operands of fewer dims first (a row's sum before the row's elements):
     * placement does not depend on the order, but a row cache made by a
     * sum's loop can only serve what is evaluated after it */
    int order[3] = {0, 1, 2};
    for (int i = 1; i < n->nops; i++)
        for (int j = i; j > 0 && ir_dimset_count(n->ops[order[j]]->dims) <
                                      ir_dimset_count(n->ops[order[j - 1]]->dims); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int k = 0; k < n->nops; k++) {
        int i = order[k];
        a[i] = cg_eval(f, n->ops[i], env);
        loops |= a[i].loops;
        vec |= cv_varies(&a[i]);
    }
    at(f, cv_home(loops), CH_HOIST);
    LLVMValueRef v = n->nops == 2 && vec ? linear_compare(f, n->op, &a[0], &a[1]) : NULL;
    if (v)
        return (cv){.v = v, .shape = CV_VARYING, .dt = n->dtype, .loops = loops};
    LLVMValueRef x[3];
    for (int i = 0; i < n->nops; i++)
        x[i] = vec ? as_vec(f, &a[i]) : a[i].v;
    int odt = n->ops[0]->dtype;
    if (n->op == OP_POW && ir_dtype_is_float((ir_dtype)odt)) {
        /* a constant exponent (also one folded from a specialized input) */
        LLVMBool lossy;
        if (!cv_varies(&a[1]) && LLVMIsAConstantFP(a[1].v))
            v = pow_const(f, odt, x[0], LLVMConstRealGetDouble(a[1].v, &lossy), vec);
        else if (!cv_varies(&a[1]))
            v = pow_general_call(f, odt, x[0], x[1], vec);
        if (!v)
            v = pow_general(f, odt, x[0], x[1], vec);
    } else if (n->op == OP_WHERE)
        v = sel(f, x[0], x[1], x[2]);
    else if (n->op == OP_CAST)
        v = emit_cast(f, x[0], odt, n->dtype, vec);
    else if (n->op == OP_EXP && nonpositive(n->ops[0]))
        v = vm_emit_expneg(f->mod, f->b, x[0]);
    else if (n->nops == 1)
        v = emit_unary(f, n->op, odt, x[0], vec);
    else
        v = emit_binary(f, n->op, odt, x[0], x[1], vec);
    return (cv){.v = v, .shape = vec ? CV_VARYING : CV_UNIFORM, .dt = n->dtype, .loops = loops};
}

/* ---- memory -------------------------------------------------------------------------- */

int dims_order(ir_dimset s, int *order)
{
    int n = 0;
    IR_DIMSET_FOREACH(d, s)
        order[n++] = d;
    return n;
}

typedef struct access {
    int kind; /* 0 scalar, 1 contiguous vector, 2 gather/scatter */
    LLVMValueRef ptr; /* scalar or vector of pointers */
    LLVMValueRef ok;  /* uniform or varying predicate, or NULL */
    bool ok_varies;
} access;

static LLVMValueRef and_ok(cg_fn *f, LLVMValueRef a, LLVMValueRef b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (is_vec(a) != is_vec(b)) {
        if (!is_vec(a))
            a = splat(f, a);
        else
            b = splat(f, b);
    }
    return LLVMBuildAnd(f->b, a, b, "");
}

/* Address of element env in a dense tensor of memory order `order`. The
 * builder must be at the access's home. */
static access address(cg_fn *f, LLVMValueRef base, int dt, const int *order, int ndim,
                      const cv *env)
{
    access a = {0};
    LLVMTypeRef et = ty_mem(f, dt), i64 = LLVMInt64TypeInContext(f->ctx);
    bool varying = false, linear_inner = ndim > 0 && env[order[ndim - 1]].shape == CV_LINEAR;
    for (int k = 0; k < ndim; k++) {
        const cv *ix = &env[order[k]];
        if (cv_varies(ix) && !(k == ndim - 1 && linear_inner))
            varying = true;
        if (ix->ok)
            a.ok = and_ok(f, a.ok, ix->ok);
    }
    a.ok_varies = a.ok && is_vec(a.ok);
    a.kind = varying || a.ok_varies ? 2 : linear_inner ? 1 : 0;
    /* offsets: strides from the inner end */
    LLVMValueRef off = a.kind == 2 ? splat(f, LLVMConstInt(i64, 0, 0)) : LLVMConstInt(i64, 0, 0);
    LLVMValueRef stride = LLVMConstInt(i64, 1, 0);
    for (int k = ndim - 1; k >= 0; k--) {
        const cv *ix = &env[order[k]];
        LLVMValueRef term;
        if (a.kind == 2)
            term = LLVMBuildMul(f->b, as_vec(f, ix), splat(f, stride), "");
        else
            term = LLVMBuildMul(f->b, ix->shape == CV_LINEAR ? ix->base : ix->v, stride, "");
        off = LLVMBuildAdd(f->b, off, term, "");
        if (k > 0)
            stride = LLVMBuildMul(f->b, stride, f->size[order[k]], "");
    }
    a.ptr = LLVMBuildGEP2(f->b, et, base, &off, 1, "");
    if (a.ok && !a.ok_varies) /* a rejected uniform index reads zeros instead */
        a.ptr = sel(f, a.ok, a.ptr, is_vec(a.ptr) ? splat(f, f->zero_block) : f->zero_block);
    return a;
}

/* A <W x dt> vector of W scalar loads, lane i from base + offs[i] elements
 * (i64), no mask. */
static LLVMValueRef gather_lanes(cg_fn *f, int dt, LLVMValueRef base, LLVMValueRef const *offs)
{
    LLVMTypeRef et = ty_mem(f, dt), i32 = LLVMInt32TypeInContext(f->ctx);
    LLVMValueRef v = LLVMGetPoison(LLVMVectorType(et, (unsigned)f->W));
    for (int i = 0; i < f->W; i++) {
        LLVMValueRef off = offs[i];
        LLVMValueRef x = LLVMBuildLoad2(f->b, et, LLVMBuildGEP2(f->b, et, base, &off, 1, ""), "");
        LLVMSetAlignment(x, (unsigned)ir_dtype_size((ir_dtype)dt));
        v = LLVMBuildInsertElement(f->b, v, x, LLVMConstInt(i32, (unsigned long long)i, 0), "");
    }
    return v;
}

/* In the across-rows body, x[r, ...] for the W rows of the lanes at uniform
 * other indices: lane i at a fixed distance i * stride from lane 0, which
 * is always live. W scalar loads from lane 0's address plus offsets that
 * are computed once per row block (dead lanes read lane 0) rather than
 * llvm.masked.gather, which AVX2 AMD scalarizes from a vector of 64-bit
 * pointers (extracting them costs as much as the loads). NULL when the
 * access is not of that form. */
static LLVMValueRef strided_gather(cg_fn *f, LLVMValueRef base, int dt, const int *order, int ndim,
                                   const cv *env, int home)
{
    int lin = -1;
    for (int k = 0; k < ndim; k++) {
        const cv *ix = &env[order[k]];
        if (ix->ok || ix->shape == CV_VARYING || (ix->shape == CV_LINEAR && lin >= 0))
            return NULL;
        if (ix->shape == CV_LINEAR)
            lin = k;
    }
    if (!f->staged || lin < 0 || lin == ndim - 1)
        return NULL;
    /* the lane offsets, at the row block's level */
    int lh = cv_home(env[order[lin]].loops);
    at(f, lh, CH_HOIST);
    LLVMValueRef stride = i64c(f, 1);
    for (int k = lin + 1; k < ndim; k++)
        stride = LLVMBuildMul(f->b, stride, f->size[order[k]], "");
    LLVMValueRef lanes[64], offs[64];
    LLVMTypeRef i64 = LLVMInt64TypeInContext(f->ctx), i32 = LLVMInt32TypeInContext(f->ctx);
    for (int i = 0; i < f->W; i++)
        lanes[i] = LLVMConstInt(i64, (unsigned long long)i, 0);
    LLVMValueRef lo = LLVMBuildMul(f->b, LLVMConstVector(lanes, (unsigned)f->W), splat(f, stride), "");
    LLVMValueRef mask = f->scopes[lh].mask;
    if (mask)
        lo = sel(f, mask, lo, LLVMConstNull(LLVMTypeOf(lo)));
    for (int i = 0; i < f->W; i++)
        offs[i] = LLVMBuildExtractElement(f->b, lo, LLVMConstInt(i32, (unsigned long long)i, 0), "lane.off");
    /* lane 0's address, at the access's level */
    at(f, home, CH_HOIST);
    LLVMValueRef off = i64c(f, 0), st = i64c(f, 1);
    for (int k = ndim - 1; k >= 0; k--) {
        const cv *ix = &env[order[k]];
        off = LLVMBuildAdd(f->b, off, LLVMBuildMul(f->b, k == lin ? ix->base : ix->v, st, ""), "");
        if (k > 0)
            st = LLVMBuildMul(f->b, st, f->size[order[k]], "");
    }
    return gather_lanes(f, dt, LLVMBuildGEP2(f->b, ty_mem(f, dt), base, &off, 1, ""), offs);
}

/* Along rows, a row is read by several loops in turn (max, then sum of exp,
 * then the gradient), and the loops with the arithmetic find it in L1: no
 * demand miss is in flight while they run, so the hardware prefetcher idles
 * and every row's first loop waits for memory. A contiguous load of row r
 * by a loop of the row (not one nested deeper, which would repeat the
 * prefetch for every iteration of the loop around it: info_nce's dot
 * products) therefore prefetches the same place of row r + 1, one
 * prefetch per cache line, and the next row arrives while this one is
 * computed (cross-entropy, 65536 rows of 1000 f32 classes, 2 threads,
 * plain stores: 43 -> 37 ms). Prefetches never fault: past the last row
 * they are dropped. */
static void prefetch_next_row(cg_fn *f, LLVMValueRef ptr, int dt, const int *order, int ndim,
                              const cv *env)
{
    const cv *row = &env[order[0]]; /* the row loop's own index, not a gathered one */
    if (f->staged || ndim < 2 || row->loops != 1 || row->shape != CV_UNIFORM || !row->base ||
        row->ok)
        return;
    LLVMValueRef stride = f->size[order[1]];
    for (int k = 2; k < ndim; k++)
        stride = LLVMBuildMul(f->b, stride, f->size[order[k]], "");
    LLVMTypeRef i32 = LLVMInt32TypeInContext(f->ctx), ptrt = LLVMPointerTypeInContext(f->ctx, 0);
    LLVMValueRef next = LLVMBuildGEP2(f->b, ty_mem(f, dt), ptr, &stride, 1, "next.row");
    int bytes = f->W * ir_dtype_size((ir_dtype)dt);
    for (int line = 0; line < bytes; line += 64) {
        LLVMValueRef off = i64c(f, line);
        LLVMValueRef args[4] = {
            LLVMBuildGEP2(f->b, LLVMInt8TypeInContext(f->ctx), next, &off, 1, ""),
            LLVMConstInt(i32, 0, 0), /* read */
            LLVMConstInt(i32, 3, 0), /* keep in all levels */
            LLVMConstInt(i32, 1, 0), /* data */
        };
        call_intrinsic(f, "llvm.prefetch", &ptrt, 1, args, 4);
    }
}

static LLVMValueRef all_true(cg_fn *f)
{
    return splat(f, LLVMConstInt(LLVMInt1TypeInContext(f->ctx), 1, 0));
}

cv cg_load(cg_fn *f, LLVMValueRef base, int dt, const int *order, int ndim, const cv *env)
{
    uint64_t loops = 0;
    for (int k = 0; k < ndim; k++)
        loops |= env[order[k]].loops;
    int home = cv_home(loops);
    at(f, home, CH_HOIST);
    access a = address(f, base, dt, order, ndim, env);
    LLVMTypeRef et = ty_mem(f, dt), vt = LLVMVectorType(et, (unsigned)f->W);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(f->ctx, 0);
    unsigned align = (unsigned)ir_dtype_size((ir_dtype)dt);
    LLVMValueRef mask = f->scopes[home].mask, v;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(f->ctx);
    if (a.kind == 1 && home == 2) /* in a loop of the row itself */
        prefetch_next_row(f, a.ptr, dt, order, ndim, env);
    if (a.kind == 0) {
        v = LLVMBuildLoad2(f->b, et, a.ptr, "");
        LLVMSetAlignment(v, align);
    } else if (a.kind == 1 && !mask) {
        v = LLVMBuildLoad2(f->b, vt, a.ptr, "");
        LLVMSetAlignment(v, align);
    } else if (a.kind == 1) {
        /* a plain load on full iterations (masked loads stream ~15% slower),
         * masked on the last: a predictable branch in the hoist chain */
        cg_scope *s = &f->scopes[home];
        LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "ld.full");
        LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "ld.part");
        LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "ld.done");
        LLVMBuildCondBr(f->b, s->full, full, part);
        LLVMPositionBuilderAtEnd(f->b, full);
        LLVMValueRef v1 = LLVMBuildLoad2(f->b, vt, a.ptr, "");
        LLVMSetAlignment(v1, align);
        LLVMBuildBr(f->b, join);
        LLVMPositionBuilderAtEnd(f->b, part);
        LLVMTypeRef tys[2] = {vt, ptr};
        LLVMValueRef args[4] = {a.ptr, LLVMConstInt(i32, align, 0), mask, LLVMConstNull(vt)};
        LLVMValueRef v2 = call_intrinsic(f, "llvm.masked.load", tys, 2, args, 4);
        LLVMBuildBr(f->b, join);
        LLVMPositionBuilderAtEnd(f->b, join);
        v = LLVMBuildPhi(f->b, vt, "");
        LLVMValueRef vals[2] = {v1, v2};
        LLVMBasicBlockRef bbs[2] = {full, part};
        LLVMAddIncoming(v, vals, bbs, 2);
        s->tail[CH_HOIST] = join;
    } else if ((v = strided_gather(f, base, dt, order, ndim, env, home))) {
        /* (W scalar loads) */
    } else {
        /* Dead or rejected lanes read the zero block instead of being masked
         * off: an unmasked gather is a real gather where gathers are fast
         * and plain loads where LLVM scalarizes them (AMD), with no branch
         * per lane. */
        LLVMValueRef m = and_ok(f, mask, a.ok_varies ? a.ok : NULL);
        LLVMValueRef ptrs = m ? sel(f, m, a.ptr, splat(f, f->zero_block)) : a.ptr;
        LLVMTypeRef tys[2] = {vt, LLVMVectorType(ptr, (unsigned)f->W)};
        LLVMValueRef args[4] = {ptrs, LLVMConstInt(i32, align, 0), all_true(f),
                                LLVMConstNull(vt)};
        v = call_intrinsic(f, "llvm.masked.gather", tys, 2, args, 4);
    }
    if (dt == DT_BOOL)
        v = LLVMBuildICmp(f->b, LLVMIntNE, v, LLVMConstNull(LLVMTypeOf(v)), "");
    return (cv){.v = v, .shape = a.kind ? CV_VARYING : CV_UNIFORM, .dt = (uint8_t)dt,
                .loops = loops};
}

/* A contiguous store in a vectorized loop: plain on full iterations, masked
 * on the last (a masked store is ten times slower on AVX2). With `stream`
 * (an i1: the output is large), full iterations at a vector-aligned address
 * store non-temporally: the gradient of a large batch is not read again
 * soon, and streaming stores skip the read for ownership (~20% more
 * bandwidth here). The sweep ends with a store fence (see lower_kernel.c). */
static void store_masked(cg_fn *f, LLVMValueRef v, LLVMValueRef p, LLVMTypeRef vt, unsigned align,
                         LLVMValueRef stream)
{
    cg_scope *s = &f->scopes[f->depth];
    LLVMTypeRef tys[2] = {vt, LLVMPointerTypeInContext(f->ctx, 0)};
    LLVMBasicBlockRef plain = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "st.full");
    LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "st.part");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "st.done");
    if (stream) {
        /* malloc aligns large blocks to 16 bytes, not to a vector: at 16,
         * LLVM splits a wider non-temporal store into aligned 16-byte ones */
        unsigned bytes = (unsigned)(LLVMStoreSizeOfType(LLVMGetModuleDataLayout(f->mod), vt));
        if (bytes > 16)
            bytes = 16;
        LLVMBasicBlockRef chk = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "st.align");
        LLVMBasicBlockRef nt = LLVMAppendBasicBlockInContext(f->ctx, f->fn, "st.stream");
        LLVMBuildCondBr(f->b, s->full, chk, part);
        LLVMPositionBuilderAtEnd(f->b, chk);
        LLVMTypeRef i64 = LLVMInt64TypeInContext(f->ctx);
        LLVMValueRef low = LLVMBuildAnd(f->b, LLVMBuildPtrToInt(f->b, p, i64, ""),
                                        LLVMConstInt(i64, bytes - 1, 0), "");
        LLVMValueRef ok = LLVMBuildAnd(f->b, stream,
                                       LLVMBuildICmp(f->b, LLVMIntEQ, low, LLVMConstNull(i64), ""), "");
        LLVMBuildCondBr(f->b, ok, nt, plain);
        LLVMPositionBuilderAtEnd(f->b, nt);
        LLVMValueRef st = LLVMBuildStore(f->b, v, p);
        LLVMSetAlignment(st, bytes);
        LLVMMetadataRef one = LLVMValueAsMetadata(LLVMConstInt(LLVMInt32TypeInContext(f->ctx), 1, 0));
        LLVMSetMetadata(st, LLVMGetMDKindIDInContext(f->ctx, "nontemporal", 11),
                        LLVMMetadataAsValue(f->ctx, LLVMMDNodeInContext2(f->ctx, &one, 1)));
        LLVMBuildBr(f->b, join);
        f->streamed = true;
    } else {
        LLVMBuildCondBr(f->b, s->full, plain, part);
    }
    LLVMPositionBuilderAtEnd(f->b, plain);
    LLVMSetAlignment(LLVMBuildStore(f->b, v, p), align);
    LLVMBuildBr(f->b, join);
    LLVMPositionBuilderAtEnd(f->b, part);
    LLVMValueRef args[4] = {v, p, LLVMConstInt(LLVMInt32TypeInContext(f->ctx), align, 0), s->mask};
    call_intrinsic(f, "llvm.masked.store", tys, 2, args, 4);
    LLVMBuildBr(f->b, join);
    LLVMPositionBuilderAtEnd(f->b, join);
    s->tail[CH_BODY] = join;
}

void cg_store(cg_fn *f, LLVMValueRef base, int dt, const int *order, int ndim, const cv *env,
              const cv *val, LLVMValueRef stream)
{
    at_body(f);
    access a = address(f, base, dt, order, ndim, env);
    LLVMTypeRef et = ty_mem(f, dt), vt = LLVMVectorType(et, (unsigned)f->W);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(f->ctx, 0), i32 = LLVMInt32TypeInContext(f->ctx);
    unsigned align = (unsigned)ir_dtype_size((ir_dtype)dt);
    LLVMValueRef mask = f->scopes[f->depth].mask;
    LLVMValueRef v = a.kind ? as_vec(f, val) : val->v;
    if (a.kind == 0 && cv_varies(val)) { /* cannot happen for a sink's own indices */
        cg_fail(f, "codegen: internal: varying value stored at a uniform index");
        return;
    }
    if (dt == DT_BOOL)
        v = LLVMBuildZExt(f->b, v, a.kind ? vt : et, "");
    if (a.kind == 0) {
        LLVMSetAlignment(LLVMBuildStore(f->b, v, a.ptr), align);
    } else if (a.kind == 1 && !mask) {
        LLVMSetAlignment(LLVMBuildStore(f->b, v, a.ptr), align);
    } else if (a.kind == 1) {
        store_masked(f, v, a.ptr, vt, align, stream);
    } else {
        /* dead lanes store to a dummy slot: no branch per lane (see cg_load) */
        LLVMValueRef ptrs = a.ptr;
        if (mask) {
            if (!f->dummy_slot)
                f->dummy_slot = entry_alloca(f, LLVMArrayType(LLVMInt64TypeInContext(f->ctx), 2),
                                             "dead.lanes");
            ptrs = sel(f, mask, a.ptr, splat(f, f->dummy_slot));
        }
        LLVMTypeRef tys[2] = {vt, LLVMVectorType(ptr, (unsigned)f->W)};
        LLVMValueRef args[4] = {v, ptrs, LLVMConstInt(i32, align, 0), all_true(f)};
        call_intrinsic(f, "llvm.masked.scatter", tys, 2, args, 4);
    }
}

/* ---- reductions ------------------------------------------------------------------------- */

LLVMValueRef red_identity(cg_fn *f, int op, int dt, bool vec)
{
    bool fl = ir_dtype_is_float((ir_dtype)dt);
    switch (op) {
    case OP_SUM: return cnum(f, dt, 0, vec);
    case OP_PROD: return cnum(f, dt, 1, vec);
    case OP_RMAX:
        return fl ? cfloat(f, dt, -INFINITY, vec)
                  : cint(f, dt, dt == DT_I32 ? INT32_MIN : INT64_MIN, vec);
    case OP_RMIN:
        return fl ? cfloat(f, dt, INFINITY, vec)
                  : cint(f, dt, dt == DT_I32 ? INT32_MAX : INT64_MAX, vec);
    default:
        cg_fail(f, "codegen: '%s' is not a fold", ir_op_name(op));
        return LLVMGetPoison(vec ? ty_vec(f, dt) : ty_scalar(f, dt));
    }
}

LLVMValueRef red_combine(cg_fn *f, int op, int dt, LLVMValueRef a, LLVMValueRef b)
{
    bool fl = ir_dtype_is_float((ir_dtype)dt);
    LLVMValueRef r;
    switch (op) {
    case OP_SUM: r = fl ? LLVMBuildFAdd(f->b, a, b, "") : LLVMBuildAdd(f->b, a, b, ""); break;
    case OP_PROD: r = fl ? LLVMBuildFMul(f->b, a, b, "") : LLVMBuildMul(f->b, a, b, ""); break;
    case OP_RMAX: return nan_minmax(f, true, dt, a, b);
    case OP_RMIN: return nan_minmax(f, false, dt, a, b);
    default:
        cg_fail(f, "codegen: '%s' is not a fold", ir_op_name(op));
        return LLVMGetPoison(LLVMTypeOf(a));
    }
    set_reassoc(r);
    return r;
}

/* Fold the lanes of v in a fixed tree order (halves, then quarters, ...). */
/* v's lanes added pairwise (halves, then halves of those) down to w lanes. */
static LLVMValueRef fold_lanes(cg_fn *f, int op, int dt, LLVMValueRef v, int w)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(f->ctx);
    for (int n = (int)LLVMGetVectorSize(LLVMTypeOf(v)) / 2; n >= w; n /= 2) {
        LLVMValueRef lo[64], hi[64];
        for (int i = 0; i < n; i++) {
            lo[i] = LLVMConstInt(i32, (unsigned long long)i, 0);
            hi[i] = LLVMConstInt(i32, (unsigned long long)(i + n), 0);
        }
        LLVMValueRef a = LLVMBuildShuffleVector(f->b, v, LLVMGetPoison(LLVMTypeOf(v)),
                                                LLVMConstVector(lo, (unsigned)n), "");
        LLVMValueRef b = LLVMBuildShuffleVector(f->b, v, LLVMGetPoison(LLVMTypeOf(v)),
                                                LLVMConstVector(hi, (unsigned)n), "");
        v = red_combine(f, op, dt, a, b);
    }
    return v;
}

LLVMValueRef red_horizontal(cg_fn *f, int op, int dt, LLVMValueRef v)
{
    return LLVMBuildExtractElement(f->b, fold_lanes(f, op, dt, v, 1),
                                   LLVMConstInt(LLVMInt32TypeInContext(f->ctx), 0, 0), "");
}

void acc_begin(cg_fn *f, cg_acc *a, int op, int dt, bool wide)
{
    a->op = op;
    a->dt = dt;
    a->sdt = wide && dt == DT_F32 && (op == OP_SUM || op == OP_PROD) ? DT_F64 : dt;
    a->depth = f->depth;
    a->lanes_are_results = f->scopes[f->depth].vpos >= 0;
    a->vw = f->W;
    if (a->sdt != dt && op == OP_SUM && !a->lanes_are_results) {
        int reg = f->t->vector_bits / 64; /* f64 lanes of one register */
        a->vw = reg < 1 ? 1 : reg < f->W ? reg : f->W;
    }
    a->s = entry_alloca(f, ty_scalar(f, a->sdt), "acc");
    a->v = entry_alloca(f, LLVMVectorType(ty_scalar(f, a->sdt), (unsigned)a->vw), "vacc");
    LLVMBuildStore(f->b, red_identity(f, op, a->sdt, false), a->s);
    LLVMBuildStore(f->b, a->vw == f->W ? red_identity(f, op, a->sdt, true)
                                       : LLVMConstNull(LLVMVectorType(ty_scalar(f, a->sdt),
                                                                      (unsigned)a->vw)),
                   a->v);
}

void acc_add(cg_fn *f, cg_acc *a, const cv *x)
{
    const cg_scope *s = &f->scopes[f->depth];
    if (s->vpos >= 0 && s->mask && a->sdt == a->dt) {
        /* full ? acc + v : (last ? acc + v : acc): the addition right after
         * the value lets LLVM fuse a product into it (a dot product's
         * loop: one fma, not a multiply, a select and an add) */
        LLVMValueRef v = as_vec(f, x), old = LLVMBuildLoad2(f->b, LLVMTypeOf(v), a->v, "");
        LLVMValueRef sum = red_combine(f, a->op, a->sdt, old, v);
        LLVMBuildStore(f->b, sel(f, s->full, sum, sel(f, s->last, sum, old)), a->v);
    } else if (s->vpos >= 0) {
        LLVMValueRef v = as_vec(f, x);
        /* full ? v : (last ? v : identity) rather than a select on the
         * mask: InstCombine moves a select past the f64 widening, and a
         * mask that varies per iteration then costs ~10 instructions to
         * widen each time; the invariant `last` is widened once. */
        if (s->mask)
            v = sel(f, s->full, v, sel(f, s->last, v, red_identity(f, a->op, a->dt, true)));
        if (a->vw < f->W) { /* see cg_acc: a few f32 lanes added before widening */
            v = fold_lanes(f, a->op, a->dt, v, a->vw);
            v = LLVMBuildFPExt(f->b, v, LLVMVectorType(ty_scalar(f, a->sdt), (unsigned)a->vw), "");
        } else {
            v = emit_cast(f, v, a->dt, a->sdt, true);
        }
        LLVMValueRef old = LLVMBuildLoad2(f->b, LLVMTypeOf(v), a->v, "");
        LLVMBuildStore(f->b, red_combine(f, a->op, a->sdt, old, v), a->v);
    } else {
        LLVMValueRef old = LLVMBuildLoad2(f->b, ty_scalar(f, a->sdt), a->s, "");
        LLVMValueRef v = emit_cast(f, x->v, a->dt, a->sdt, false);
        LLVMBuildStore(f->b, red_combine(f, a->op, a->sdt, old, v), a->s);
    }
}

cv acc_finish(cg_fn *f, cg_acc *a, uint64_t loops)
{
    LLVMValueRef s = LLVMBuildLoad2(f->b, ty_scalar(f, a->sdt), a->s, "");
    LLVMValueRef v = LLVMBuildLoad2(f->b, LLVMVectorType(ty_scalar(f, a->sdt), (unsigned)a->vw),
                                    a->v, "");
    if (a->lanes_are_results)
        return (cv){.v = red_combine(f, a->op, a->sdt, v, splat(f, s)), .shape = CV_VARYING,
                    .dt = (uint8_t)a->sdt, .loops = loops};
    return cv_uniform(red_combine(f, a->op, a->sdt, red_horizontal(f, a->op, a->sdt, v), s),
                      a->sdt, loops);
}

/* ---- structure, gathers, reductions ----------------------------------------------------- */

static cv loop_index(cg_fn *f, LLVMValueRef first, bool vector, int pos)
{
    cv ix = {.base = first, .dt = DT_I64, .loops = (uint64_t)1 << pos};
    if (!vector) {
        ix.v = first;
        ix.shape = CV_UNIFORM;
        return ix;
    }
    LLVMTypeRef i64 = LLVMInt64TypeInContext(f->ctx);
    LLVMValueRef lanes[64];
    for (int i = 0; i < f->W; i++)
        lanes[i] = LLVMConstInt(i64, (unsigned long long)i, 0);
    ix.v = LLVMBuildAdd(f->b, splat(f, first), LLVMConstVector(lanes, (unsigned)f->W), "lanes");
    ix.shape = CV_LINEAR;
    return ix;
}

cv cg_loop_index(cg_fn *f, LLVMValueRef first, bool vector, int pos)
{
    at(f, f->depth, CH_HOIST);
    return loop_index(f, first, vector, pos);
}

static void sched_env_of(const cv *env, ir_dimset dims, sched_env *s)
{
    memset(s, 0, sizeof *s);
    IR_DIMSET_FOREACH(d, dims)
        s->loops[d] = env[d].loops;
}

/* ---- row caches (see row_cache in lower.h) ---------------------------------------- */

static bool reaches(const ir_node *from, const ir_node *to, bool *seen)
{
    if (from == to)
        return true;
    if (seen[from->id])
        return false;
    seen[from->id] = true;
    for (int i = 0; i < from->nops; i++)
        if (reaches(from->ops[i], to, seen))
            return true;
    return false;
}

/* The output of this sweep that can hold x's rows along `axis`: same dtype
 * and dims, `axis` its innermost memory dim, and x among what it computes. */
static int cache_output(cg_fn *f, const ir_node *x, int axis)
{
    if (!f->sweep || f->ncaches >= (int)SUP_ARRAY_LEN(f->caches))
        return -1;
    for (int i = 0; i < f->sweep->nsinks; i++) {
        const sched_sink *k = &f->p->sinks[f->sweep->sinks[i]];
        if (k->kind != SINK_OUTPUT || k->node->dtype != x->dtype || k->node->dims != x->dims ||
            k->path[k->depth - 1] != axis)
            continue;
        bool *seen = sup_calloc(f->g->nnodes + 1, 1);
        bool uses = reaches(k->node, x, seen);
        sup_free(seen);
        if (uses)
            return k->output;
    }
    return -1;
}

static const int *output_order(cg_fn *f, int o, int *n)
{
    const ir_output *op = &f->g->outputs[o];
    if (op->kind == IR_OUT_GRAD) {
        *n = f->g->inputs[op->input].ndim;
        return f->g->inputs[op->input].order;
    }
    static _Thread_local int order[IR_MAX_DIMS];
    *n = dims_order(op->node->dims, order);
    return order;
}

/* ---- stage buffers (see row_cache in lower.h) ---------------------------------------- */

LLVMValueRef cg_stage_alloca(cg_fn *f, int dt, const char *name)
{
    LLVMValueRef a = entry_alloca(f, LLVMArrayType(ty_mem(f, dt), (unsigned)((CG_STAGE_COLS + 1) * f->W)),
                                  name);
    LLVMSetAlignment(a, 64);
    return a;
}

/* v[i][l] := v[l][i] for W vectors of W lanes: log2 W rounds of exchanging
 * blocks of h lanes between vectors h apart (shuffles of two vectors). */
void cg_transpose(cg_fn *f, LLVMValueRef *v)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(f->ctx);
    for (int h = f->W / 2; h >= 1; h /= 2) {
        LLVMValueRef mi[64], mj[64];
        for (int l = 0; l < f->W; l++) {
            bool low = (l & h) == 0;
            mi[l] = LLVMConstInt(i32, (unsigned long long)(low ? l : f->W + l - h), 0);
            mj[l] = LLVMConstInt(i32, (unsigned long long)(low ? l + h : f->W + l), 0);
        }
        LLVMValueRef Mi = LLVMConstVector(mi, (unsigned)f->W), Mj = LLVMConstVector(mj, (unsigned)f->W);
        for (int i = 0; i < f->W; i++)
            if ((i & h) == 0) {
                LLVMValueRef a = v[i], b = v[i + h];
                v[i] = LLVMBuildShuffleVector(f->b, a, b, Mi, "");
                v[i + h] = LLVMBuildShuffleVector(f->b, a, b, Mj, "");
            }
    }
}

/* The address of column col (uniform) of a stage buffer, and its alignment. */
static LLVMValueRef stage_column(cg_fn *f, LLVMValueRef stage, int dt, LLVMValueRef col,
                                 unsigned *align)
{
    LLVMValueRef off = LLVMBuildMul(f->b, col, i64c(f, f->W), "");
    *align = (unsigned)ir_dtype_size((ir_dtype)dt) * (unsigned)f->W;
    if (*align > 64)
        *align = 64;
    return LLVMBuildGEP2(f->b, ty_mem(f, dt), stage, &off, 1, "stage.col");
}

void cg_stage_put(cg_fn *f, LLVMValueRef stage, int dt, LLVMValueRef col, const cv *v)
{
    at_body(f);
    unsigned align;
    LLVMValueRef p = stage_column(f, stage, dt, col, &align), x = as_vec(f, v);
    if (dt == DT_BOOL)
        x = LLVMBuildZExt(f->b, x, LLVMVectorType(ty_mem(f, dt), (unsigned)f->W), "");
    LLVMSetAlignment(LLVMBuildStore(f->b, x, p), align);
}

/* A cached row holding n at env, if any: a load from the output's row or
 * from its stage buffer. */
static bool cache_load(cg_fn *f, const ir_node *n, const cv *env, cv *out)
{
    for (int i = 0; i < f->ncaches; i++) {
        const row_cache *c = &f->caches[i];
        if (c->node != n || c->home > f->depth || f->scopes[c->home].gen != c->gen)
            continue;
        const cv *ix = &env[c->axis];
        /* only at a loop index opened inside the row (the element this
         * iteration reads before its own store overwrites it) */
        if (ix->ok || ix->shape == CV_VARYING || cv_home(ix->loops) <= c->home ||
            __builtin_popcountll(ix->loops) != 1)
            continue;
        bool same = true;
        IR_DIMSET_FOREACH(d, n->dims)
            if (d != c->axis && (env[d].v != c->key[d].v || env[d].ok != c->key[d].ok))
                same = false;
        if (!same)
            continue;
        if (c->stage) {
            uint64_t loops = 0;
            IR_DIMSET_FOREACH(d, n->dims)
                loops |= env[d].loops;
            at(f, cv_home(loops), CH_HOIST);
            unsigned align;
            LLVMValueRef p = stage_column(f, c->stage, n->dtype, ix->v, &align);
            LLVMValueRef v = LLVMBuildLoad2(f->b, ty_vec(f, n->dtype), p, "staged");
            LLVMSetAlignment(v, align);
            *out = (cv){.v = v, .shape = CV_VARYING, .dt = n->dtype, .loops = loops};
            return true;
        }
        *out = cg_load(f, c->row, n->dtype, &c->axis, 1, env);
        return true;
    }
    return false;
}

/* Where a row cache keeps its row, the same for all of the row's elements
 * (an address of element 0; the row contiguous): a stack buffer when the row
 * fits, else the output's row itself, whose own stores come later. The
 * buffer spares the output's lines a read from memory: written first by
 * the cache, each would be fetched before the output's (non-temporal)
 * stores replace it. NULL when the output's row is not contiguous. */
enum { ROW_CACHE_BYTES = 16 << 10 };

static LLVMValueRef cache_row(cg_fn *f, int output, int dt, int axis, const cv *env, int home)
{
    int nd;
    const int *order = output_order(f, output, &nd);
    if (nd < 1 || order[nd - 1] != axis)
        return NULL;
    cv row[IR_MAX_DIMS];
    memcpy(row, env, sizeof row);
    row[axis] = cv_uniform(i64c(f, 0), DT_I64, 0);
    at(f, home, CH_HOIST);
    access a = address(f, f->out_ptr[output], dt, order, nd, row);
    if (a.kind != 0 || a.ok)
        return NULL;
    int64_t cap = ROW_CACHE_BYTES / (int64_t)ir_dtype_size((ir_dtype)dt);
    LLVMValueRef buf = entry_alloca(f, LLVMArrayType(ty_mem(f, dt), (unsigned)cap), "row.cache");
    LLVMSetAlignment(buf, 64);
    at(f, home, CH_HOIST);
    LLVMValueRef fits = LLVMBuildICmp(f->b, LLVMIntSLE, f->size[axis], i64c(f, cap), "fits");
    return LLVMBuildSelect(f->b, fits, buf, a.ptr, "row");
}

/* An inline reduction: its loops open at the end of the hoist chain of scope
 * `home` (the deepest loop its result depends on). The scopes currently open
 * deeper than home are set aside while it is built. */
static cv eval_inline_reduce(cg_fn *f, const ir_node *r, const cv *env, int home)
{
    int saved_depth = f->depth, nsaved = f->depth - home;
    cg_scope *saved = nsaved ? sup_malloc(sizeof(cg_scope) * (size_t)nsaved) : NULL;
    if (nsaved)
        memcpy(saved, &f->scopes[home + 1], sizeof(cg_scope) * (size_t)nsaved);
    f->depth = home;

    uint64_t L = 0;
    IR_DIMSET_FOREACH(d, r->dims)
        L |= env[d].loops;
    const ir_node *x = r->ops[0];
    int axes[IR_MAX_DIMS], m = dims_order(r->attr.axes, axes);
    cv *env2 = sup_malloc(sizeof(cv) * IR_MAX_DIMS);
    memcpy(env2, env, sizeof(cv) * IR_MAX_DIMS);
    sched_env senv;
    sched_env_of(env, x->dims, &senv);
    for (int i = 0; i < m; i++)
        senv.loops[axes[i]] = (uint64_t)1 << (home + i);
    bool vector = f->scopes[home].vpos < 0 &&
                  !sched_opens_loop_at(f->p, x, &senv, home + m);

    at(f, home, CH_HOIST);
    cg_acc acc;
    acc_begin(f, &acc, r->op, r->dtype, false);
    LLVMValueRef zero = i64c(f, 0);
    for (int i = 0; i < m; i++) {
        bool vec = vector && i == m - 1;
        LLVMValueRef first = scope_open_loop(f, i == 0 ? CH_HOIST : CH_BODY, zero,
                                             f->size[axes[i]], vec, home + i);
        env2[axes[i]] = cg_loop_index(f, first, vec, home + i);
    }
    cv v = cg_eval(f, x, env2);
    /* a row of exps summed in a vectorized loop along the row, for an
     * output of this sweep that uses them: keep it in that output's row */
    int cache_out = -1;
    LLVMValueRef stage = NULL;
    if (r->op == OP_SUM && m == 1 && vector && x->op == OP_EXP && f->out_ptr)
        cache_out = cache_output(f, x, axes[0]);
    else if (m == 1 && f->staged && f->scopes[home].vpos >= 0 && cv_varies(&v) &&
             v.dt == x->dtype && x->dtype != DT_BOOL && (x->dims & ir_dimbit(axes[0])) &&
             f->ncaches < (int)SUP_ARRAY_LEN(f->caches))
        stage = cg_stage_alloca(f, x->dtype, "stage.row");
    LLVMValueRef row = cache_out >= 0 ? cache_row(f, cache_out, x->dtype, axes[0], env, home) : NULL;
    if (row)
        cg_store(f, row, x->dtype, &axes[0], 1, env2, &v, NULL);
    if (stage)
        cg_stage_put(f, stage, x->dtype, env2[axes[0]].v, &v);
    at_body(f);
    acc_add(f, &acc, &v);
    for (int i = 0; i < m; i++)
        scope_close(f);
    at(f, home, CH_HOIST);
    cv res = acc_finish(f, &acc, L);

    if (row || stage) { /* valid from now on, while the row's scope lasts */
        row_cache *c = &f->caches[f->ncaches++];
        c->node = x;
        c->axis = axes[0];
        c->row = row;
        c->stage = stage;
        memcpy(c->key, env, sizeof(cv) * IR_MAX_DIMS);
        c->home = home;
        c->gen = f->scopes[home].gen;
    }
    sup_free(env2);
    if (nsaved)
        memcpy(&f->scopes[home + 1], saved, sizeof(cg_scope) * (size_t)nsaved);
    sup_free(saved);
    f->depth = saved_depth;
    return res;
}

/* A value the plan keeps in a buffer (a materialized reduction, SINK_REDUCE,
 * or a stored value, SINK_STORE): a load from it. */
static cv load_materialized(cg_fn *f, const ir_node *n, const cv *env)
{
    int s = f->p->mat[n->id];
    if (s < 0 || !f->mat_ptr || !f->mat_ptr[s]) {
        cg_fail(f, "codegen: internal: %%%u is neither computed here nor in a buffer", n->id);
        return cv_uniform(LLVMGetPoison(ty_scalar(f, n->dtype)), n->dtype, 0);
    }
    const sched_sink *k = &f->p->sinks[s];
    return cg_load(f, f->mat_ptr[s], n->dtype, k->morder, k->mdims, env);
}

static cv eval_reduce(cg_fn *f, const ir_node *n, const cv *env)
{
    sched_env senv;
    sched_env_of(env, n->dims, &senv);
    int home;
    if (sched_inline(f->p, n, &senv, &home))
        return eval_inline_reduce(f, n, env, home);
    return load_materialized(f, n, env);
}

/* x[..., idx, ...]: the gathered axes get computed indices, clamped into
 * range (0 when out of range) with an `ok` predicate that masks the loads:
 * the kernel's range checks report the error, this only keeps memory safe. */
static cv eval_gather(cg_fn *f, const ir_node *n, const cv *env)
{
    cv *env2 = sup_malloc(sizeof(cv) * IR_MAX_DIMS);
    memcpy(env2, env, sizeof(cv) * IR_MAX_DIMS);
    int k = 1;
    IR_DIMSET_FOREACH(d, n->attr.axes) {
        cv ix = cg_eval(f, n->ops[k++], env);
        at(f, cv_home(ix.loops), CH_HOIST);
        bool vec = cv_varies(&ix);
        LLVMTypeRef t = vec ? ty_vec(f, DT_I64) : ty_scalar(f, DT_I64);
        LLVMValueRef v = LLVMBuildIntCast2(f->b, ix.v, t, 1, "");
        LLVMValueRef size = vec ? splat(f, f->size[d]) : f->size[d];
        LLVMValueRef zero = LLVMConstNull(t);
        LLVMValueRef ok = LLVMBuildAnd(f->b, icmp(f, LLVMIntSGE, v, zero),
                                       icmp(f, LLVMIntSLT, v, size), "inrange");
        env2[d] = (cv){.v = sel(f, ok, v, zero), .ok = ok, .dt = DT_I64, .loops = ix.loops,
                       .shape = vec ? CV_VARYING : CV_UNIFORM};
    }
    cv r = cg_eval(f, n->ops[0], env2);
    sup_free(env2);
    return r;
}

static cv eval_leaf(cg_fn *f, const ir_node *n, const cv *env)
{
    switch (n->op) {
    case OP_INPUT: {
        const ir_input *in = &f->g->inputs[n->attr.ival];
        if (f->spec && f->spec[n->attr.ival]) /* this body assumes the default */
            return cv_uniform(cnum(f, in->dtype, in->default_value, false), in->dtype, 0);
        return cg_load(f, f->in_ptr[n->attr.ival], in->dtype, in->order, in->ndim, env);
    }
    case OP_CONST:
        at(f, 0, CH_HOIST);
        return cv_uniform(cnum(f, n->dtype, ir_const_value(n), false), n->dtype, 0);
    case OP_IOTA: {
        cv ix = env[n->attr.dim];
        ix.ok = NULL;
        return ix;
    }
    case OP_DIMSIZE:
        return cv_uniform(f->size[n->attr.dim], DT_I64, 0);
    default:
        cg_fail(f, "codegen: no leaf rule for '%s'", ir_op_name(n->op));
        return cv_uniform(LLVMGetPoison(ty_scalar(f, n->dtype)), n->dtype, 0);
    }
}

cv cg_eval(cg_fn *f, const ir_node *n, const cv *env)
{
    uint64_t h;
    memo_entry *e = memo_find(f, n, 0, env, &h);
    if (e)
        return e->val;
    cv r;
    if (f->ncaches && cache_load(f, n, env, &r)) {
        memo_put(f, n, 0, env, h, r);
        return r;
    }
    r = f->p->stored[n->id] ? load_materialized(f, n, env) : cg_eval_own(f, n, env);
    memo_put(f, n, 0, env, h, r);
    return r;
}

cv cg_eval_own(cg_fn *f, const ir_node *n, const cv *env)
{
    cv r;
    switch (ir_op_info_of(n->op)->kind) {
    case IR_LEAF: r = eval_leaf(f, n, env); break;
    case IR_ELEM: r = eval_elem(f, n, env); break;
    case IR_STRUCT:
        if (n->op == OP_RENAME) {
            cv *env2 = sup_malloc(sizeof(cv) * IR_MAX_DIMS);
            memcpy(env2, env, sizeof(cv) * IR_MAX_DIMS);
            env2[n->attr.dim] = env[n->attr.dim2];
            r = cg_eval(f, n->ops[0], env2);
            sup_free(env2);
        } else {
            r = cg_eval(f, n->ops[0], env);
        }
        break;
    case IR_REDUCE: r = eval_reduce(f, n, env); break;
    case IR_GATHER: r = eval_gather(f, n, env); break;
    default:
        cg_fail(f, "codegen: '%s' cannot be lowered (run the passes first)", ir_op_name(n->op));
        return cv_uniform(LLVMGetPoison(ty_scalar(f, n->dtype)), n->dtype, 0);
    }
    return r;
}

void cg_update(cg_fn *f, LLVMValueRef base, int dt, const int *order, int ndim, const cv *env,
               int op, const cv *val)
{
    at_body(f);
    access a = address(f, base, dt, order, ndim, env);
    LLVMTypeRef et = ty_mem(f, dt), vt = LLVMVectorType(et, (unsigned)f->W);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(f->ctx, 0), i32 = LLVMInt32TypeInContext(f->ctx);
    unsigned align = (unsigned)ir_dtype_size((ir_dtype)dt);
    LLVMValueRef mask = f->scopes[f->depth].mask;
    LLVMValueRef v = val->v;
    bool vec = a.kind != 0;
    if (a.kind == 2) {
        cg_fail(f, "codegen: internal: partial results at gathered indices");
        return;
    }
    if (cv_varies(val) && !vec) { /* lanes of reduced elements: fold them first, */
        if (mask)                   /* in the partial's (wider) type */
            v = sel(f, mask, v, red_identity(f, op, val->dt, true));
        v = red_horizontal(f, op, dt, emit_cast(f, v, val->dt, dt, true));
    } else {
        if (vec && !cv_varies(val))
            v = splat(f, v);
        v = emit_cast(f, v, val->dt, dt, vec);
    }
    LLVMValueRef old;
    if (!vec) {
        old = LLVMBuildLoad2(f->b, et, a.ptr, "");
        LLVMSetAlignment(LLVMBuildStore(f->b, red_combine(f, op, dt, old, v), a.ptr), align);
    } else if (!mask) {
        old = LLVMBuildLoad2(f->b, vt, a.ptr, "");
        LLVMSetAlignment(old, align);
        LLVMSetAlignment(LLVMBuildStore(f->b, red_combine(f, op, dt, old, v), a.ptr), align);
    } else {
        LLVMTypeRef tys[2] = {vt, ptr};
        LLVMValueRef args[4] = {a.ptr, LLVMConstInt(i32, align, 0), mask, LLVMConstNull(vt)};
        old = call_intrinsic(f, "llvm.masked.load", tys, 2, args, 4);
        store_masked(f, red_combine(f, op, dt, old, v), a.ptr, vt, align, NULL);
    }
}

void cg_fail(cg_fn *f, const char *fmt, ...)
{
    if (f->failed)
        return;
    f->failed = true;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(f->err, fmt, ap);
    va_end(ap);
}
