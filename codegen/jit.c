/* jit.c - ORC LLJIT: one per cg_jit, one thread-safe module per kernel.
 *
 * The sequence is TOOLCHAIN.md's (verified on LLVM 19; guarded for >= 21,
 * which removed LLVMOrcThreadSafeContextGetContext). Symbols the kernels call
 * (malloc, free, libm) resolve in the host process. Compiles are serialized
 * by a mutex: the JIT'd functions themselves may run on any thread.
 */
#include "codegen/lower.h"

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm/Config/llvm-config.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cg_jit {
    LLVMOrcLLJITRef jit;
    LLVMTargetMachineRef tm; /* for the O3 pipeline (the JIT has its own for codegen) */
    cg_target target;
    pthread_mutex_t lock;
    char **names; /* symbols defined so far */
    int nnames;
    size_t names_cap;
};

static void take_error(LLVMErrorRef e, const char *what, strbuf *err)
{
    char *msg = LLVMGetErrorMessage(e);
    sb_printf(err, "codegen: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
}

cg_jit *cg_jit_create(const cg_options *opts, strbuf *err)
{
    cg_jit *j = sup_calloc(1, sizeof *j);
    if (!cg_target_init(&j->target, opts, err)) {
        sup_free(j);
        return NULL;
    }
    LLVMTargetMachineRef jtm = cg_target_machine(&j->target, true, err);
    j->tm = cg_target_machine(&j->target, true, err);
    if (!jtm || !j->tm) {
        if (jtm)
            LLVMDisposeTargetMachine(jtm);
        cg_jit_destroy(j);
        return NULL;
    }
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
        builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jtm));
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, builder);
    if (e) {
        take_error(e, "cannot create the JIT", err);
        j->jit = NULL;
        cg_jit_destroy(j);
        return NULL;
    }
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
        &gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
    if (e) {
        take_error(e, "cannot search the process for symbols", err);
        cg_jit_destroy(j);
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
    pthread_mutex_init(&j->lock, NULL);
    return j;
}

void cg_jit_destroy(cg_jit *j)
{
    if (!j)
        return;
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e)
            LLVMConsumeError(e);
        pthread_mutex_destroy(&j->lock);
    }
    if (j->tm)
        LLVMDisposeTargetMachine(j->tm);
    for (int i = 0; i < j->nnames; i++)
        sup_free(j->names[i]);
    sup_free(j->names);
    cg_target_free(&j->target);
    sup_free(j);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The symbol, made unique in this JIT (a second kernel named "mse" becomes
 * "mse.1"): the caller holds the function pointer, not the name. */
static char *unique_name(cg_jit *j, const char *symbol)
{
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, symbol && *symbol ? symbol : "lossc_kernel");
    for (int k = 1;; k++) {
        bool used = false;
        for (int i = 0; i < j->nnames && !used; i++)
            used = strcmp(j->names[i], sb_str(&sb)) == 0;
        if (!used)
            break;
        sb_clear(&sb);
        sb_printf(&sb, "%s.%d", symbol && *symbol ? symbol : "lossc_kernel", k);
    }
    char *name = sb_take(&sb);
    SUP_GROW(j->names, j->names_cap, (size_t)j->nnames + 1);
    j->names[j->nnames++] = sup_strdup(name);
    return name;
}

lk_kernel_fn cg_jit_compile(cg_jit *j, const ir_graph *g, const char *symbol,
                            cg_kernel_info *info, strbuf *err)
{
    double t0 = now_ms();
    struct timespec ts0;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts0);
    double cpu0 = (double)ts0.tv_sec * 1e3 + (double)ts0.tv_nsec / 1e6;
    pthread_mutex_lock(&j->lock);
    char *name = unique_name(j, symbol);
#if LLVM_VERSION_MAJOR >= 21
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContextFromLLVMContext(ctx);
#else
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(tsc);
#endif
    cg_kernel_info local;
    LLVMModuleRef m;
    lk_kernel_fn fn = NULL;
    const char *names[1] = {name};
    if (!cg_build_module(ctx, &j->target, j->tm, &g, names, 1, &m, &local, err))
        goto done;
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, tsc);
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
    if (e) { /* the module was consumed */
        take_error(e, "cannot add the kernel to the JIT", err);
        cg_kernel_info_free(&local);
        goto done;
    }
    LLVMOrcExecutorAddress addr = 0;
    e = LLVMOrcLLJITLookup(j->jit, &addr, name);
    if (e) {
        take_error(e, "cannot compile the kernel", err);
        cg_kernel_info_free(&local);
        goto done;
    }
    fn = (lk_kernel_fn)(uintptr_t)addr;
    local.compile_ms = now_ms() - t0;
    if (getenv("LOSSC_CG_TIMES")) { /* developers: thread CPU time per phase */
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        double cpu = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6 - cpu0;
        fprintf(stderr, "lossc: %s: cpu %.1f ms = build %.1f + O3 %.1f + machine code %.1f "
                "(wall %.1f ms)\n", name, cpu, cg_last_times[0], cg_last_times[1],
                cpu - cg_last_times[0] - cg_last_times[1], local.compile_ms);
    }
    if (info)
        *info = local;
    else
        cg_kernel_info_free(&local);
done:
    LLVMOrcDisposeThreadSafeContext(tsc);
    pthread_mutex_unlock(&j->lock);
    sup_free(name);
    return fn;
}
