/* vm_jit.c - see vm_jit.h. The LLVM sequence follows ../shared/TOOLCHAIN.md. */
#include "vm_jit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm/Config/llvm-config.h>

struct vmj {
    LLVMOrcLLJITRef jit;
    LLVMOrcThreadSafeContextRef tsc;
    LLVMContextRef ctx;
    LLVMTargetMachineRef tm; /* for the optimizer */
    char *triple, *cpu, *features;
    int nmodules;
};

static bool take_error(LLVMErrorRef e, strbuf *err, const char *what)
{
    if (!e)
        return false;
    char *msg = LLVMGetErrorMessage(e);
    sb_printf(err, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return true;
}

vmj *vmj_create(strbuf *err)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    vmj *j = sup_calloc(1, sizeof *j);
    j->triple = LLVMGetDefaultTargetTriple();
    j->cpu = LLVMGetHostCPUName();
    j->features = LLVMGetHostCPUFeatures();
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(j->triple, &target, &msg)) {
        sb_printf(err, "no target for %s: %s", j->triple, msg);
        LLVMDisposeMessage(msg);
        vmj_destroy(j);
        return NULL;
    }
    j->tm = LLVMCreateTargetMachine(target, j->triple, j->cpu, j->features,
                                    LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                    LLVMCodeModelDefault);
    LLVMTargetMachineRef jtm = LLVMCreateTargetMachine(
        target, j->triple, j->cpu, j->features, LLVMCodeGenLevelAggressive,
        LLVMRelocPIC, LLVMCodeModelJITDefault);
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
        builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jtm));
    if (take_error(LLVMOrcCreateLLJIT(&j->jit, builder), err, "LLJIT")) {
        j->jit = NULL;
        vmj_destroy(j);
        return NULL;
    }
#if LLVM_VERSION_MAJOR >= 21
    j->ctx = LLVMContextCreate();
    j->tsc = LLVMOrcCreateNewThreadSafeContextFromLLVMContext(j->ctx);
#else
    j->tsc = LLVMOrcCreateNewThreadSafeContext();
    j->ctx = LLVMOrcThreadSafeContextGetContext(j->tsc);
#endif
    return j;
}

void vmj_destroy(vmj *j)
{
    if (!j)
        return;
    if (j->jit)
        LLVMOrcDisposeLLJIT(j->jit);
    if (j->tsc)
        LLVMOrcDisposeThreadSafeContext(j->tsc);
    if (j->tm)
        LLVMDisposeTargetMachine(j->tm);
    LLVMDisposeMessage(j->triple);
    LLVMDisposeMessage(j->cpu);
    LLVMDisposeMessage(j->features);
    sup_free(j);
}

const char *vmj_cpu(const vmj *j) { return j->cpu; }

/* !{!self, !{"llvm.loop.vectorize.enable", i1 false}} */
static void disable_vectorize(LLVMContextRef c, LLVMValueRef br)
{
    const char *key = "llvm.loop.vectorize.enable";
    LLVMMetadataRef opt[2] = {
        LLVMMDStringInContext2(c, key, strlen(key)),
        LLVMValueAsMetadata(LLVMConstInt(LLVMInt1TypeInContext(c), 0, 0))};
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(c, NULL, 0);
    LLVMMetadataRef ops[2] = {tmp, LLVMMDNodeInContext2(c, opt, 2)};
    LLVMMetadataRef loop = LLVMMDNodeInContext2(c, ops, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, loop);
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(c, "llvm.loop", 9),
                    LLVMMetadataAsValue(c, loop));
}

/* void name(ptr in, ptr out, i64 n): out[i] = f(in[i]), w lanes at a time. */
static void build_loop(LLVMContextRef c, LLVMModuleRef m, const char *name, vm_func f,
                       LLVMTypeRef elem, unsigned w, bool novec)
{
    LLVMTypeRef ptr = LLVMPointerTypeInContext(c, 0), i64 = LLVMInt64TypeInContext(c);
    LLVMTypeRef params[3] = {ptr, ptr, i64};
    LLVMValueRef fn =
        LLVMAddFunction(m, name, LLVMFunctionType(LLVMVoidTypeInContext(c), params, 3, 0));
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    LLVMAddAttributeAtIndex(fn, 1, LLVMCreateEnumAttribute(c, noalias, 0));
    LLVMAddAttributeAtIndex(fn, 2, LLVMCreateEnumAttribute(c, noalias, 0));
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(c, fn, "entry");
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(c, fn, "loop");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c, fn, "done");
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
    LLVMValueRef in = LLVMGetParam(fn, 0), out = LLVMGetParam(fn, 1), n = LLVMGetParam(fn, 2);
    LLVMValueRef zero = LLVMConstInt(i64, 0, 0);

    LLVMPositionBuilderAtEnd(b, entry);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, n, zero, ""), loop, done);

    LLVMPositionBuilderAtEnd(b, loop);
    LLVMValueRef i = LLVMBuildPhi(b, i64, "i");
    LLVMTypeRef ty = w ? LLVMVectorType(elem, w) : elem;
    unsigned align = (unsigned)LLVMABISizeOfType(LLVMGetModuleDataLayout(m), elem);
    LLVMValueRef x = LLVMBuildLoad2(b, ty, LLVMBuildGEP2(b, elem, in, &i, 1, ""), "x");
    LLVMSetAlignment(x, align);
    LLVMValueRef y = f == VMJ_LOG1P01 ? vm_emit_log1p01(m, b, x)
                   : f == VMJ_EXPNEG  ? vm_emit_expneg(m, b, x)
                                      : vm_emit(m, b, f, x);
    LLVMValueRef st = LLVMBuildStore(b, y, LLVMBuildGEP2(b, elem, out, &i, 1, ""));
    LLVMSetAlignment(st, align);
    LLVMValueRef next = LLVMBuildAdd(b, i, LLVMConstInt(i64, w ? w : 1, 0), "");
    LLVMValueRef br =
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, next, n, ""), loop, done);
    if (novec)
        disable_vectorize(c, br);
    LLVMValueRef inc[2] = {zero, next};
    LLVMBasicBlockRef from[2] = {entry, loop};
    LLVMAddIncoming(i, inc, from, 2);

    LLVMPositionBuilderAtEnd(b, done);
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
}

/* Does fn compute on float vectors? Does it call anything but intrinsics? */
static void inspect(LLVMValueRef fn, bool *vector, bool *no_calls)
{
    *vector = false;
    *no_calls = true;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in)) {
            LLVMTypeRef t = LLVMTypeOf(in);
            if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) {
                LLVMTypeKind k = LLVMGetTypeKind(LLVMGetElementType(t));
                if (k == LLVMFloatTypeKind || k == LLVMDoubleTypeKind)
                    *vector = true;
            }
            if (LLVMIsACallInst(in)) {
                size_t len;
                const char *callee = LLVMGetValueName2(LLVMGetCalledValue(in), &len);
                if (len < 5 || strncmp(callee, "llvm.", 5) != 0)
                    *no_calls = false;
            }
        }
}

const char *vmj_name(vm_func f)
{
    return f == VMJ_LOG1P01 ? "log1p01" : f == VMJ_EXPNEG ? "expneg" : vm_func_name(f);
}

bool vmj_compile(vmj *j, vm_func f, bool f64, vmj_kernels *out, strbuf *err)
{
    memset(out, 0, sizeof *out);
    const unsigned widths[2][VMJ_NVEC] = {{16, 8, 3}, {8, 4, 3}};
    char prefix[64], name[96];
    snprintf(prefix, sizeof prefix, "vmk%d_%s_f%d", j->nmodules++, vmj_name(f), f64 ? 64 : 32);

    LLVMModuleRef m = LLVMModuleCreateWithNameInContext(prefix, j->ctx);
    LLVMSetTarget(m, j->triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(j->tm);
    LLVMSetModuleDataLayout(m, td);
    LLVMDisposeTargetData(td);
    LLVMTypeRef elem = f64 ? LLVMDoubleTypeInContext(j->ctx) : LLVMFloatTypeInContext(j->ctx);

    snprintf(name, sizeof name, "%s_s", prefix);
    build_loop(j->ctx, m, name, f, elem, 0, false);
    snprintf(name, sizeof name, "%s_n", prefix);
    build_loop(j->ctx, m, name, f, elem, 0, true);
    for (int v = 0; v < VMJ_NVEC; v++) {
        out->widths[v] = widths[f64][v];
        snprintf(name, sizeof name, "%s_v%d", prefix, v);
        build_loop(j->ctx, m, name, f, elem, out->widths[v], false);
    }

    char *msg = NULL;
    if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
        sb_printf(err, "invalid module: %s", msg);
        LLVMDisposeMessage(msg);
        LLVMDisposeModule(m);
        return false;
    }
    LLVMDisposeMessage(msg);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(m, "default<O3>", j->tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (take_error(e, err, "O3")) {
        LLVMDisposeModule(m);
        return false;
    }
    if (getenv("LOSSC_VMJ_DUMP")) { /* the optimized IR, for reading */
        char *ir = LLVMPrintModuleToString(m);
        fputs(ir, stderr);
        LLVMDisposeMessage(ir);
    }
    snprintf(name, sizeof name, "%s_s", prefix);
    inspect(LLVMGetNamedFunction(m, name), &out->scalar_vectorized, &out->no_calls);

    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, j->tsc);
    if (take_error(LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm),
                   err, "add module"))
        return false;
    vmj_fn *slots[2 + VMJ_NVEC] = {&out->scalar, &out->novec, &out->vec[0], &out->vec[1],
                                   &out->vec[2]};
    const char *suffix[2 + VMJ_NVEC] = {"s", "n", "v0", "v1", "v2"};
    for (int k = 0; k < 2 + VMJ_NVEC; k++) {
        LLVMOrcExecutorAddress addr = 0;
        snprintf(name, sizeof name, "%s_%s", prefix, suffix[k]);
        if (take_error(LLVMOrcLLJITLookup(j->jit, &addr, name), err, name))
            return false;
        *slots[k] = (vmj_fn)(uintptr_t)addr;
    }
    return true;
}
