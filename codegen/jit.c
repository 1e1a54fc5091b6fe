/* jit.c - ORC LLJIT: one per cg_jit; each kernel is compiled in parts on
 * up to one thread per core (see "split compiles") and added as objects.
 *
 * The sequence is TOOLCHAIN.md's (verified on LLVM 19; guarded for >= 21).
 * Symbols the kernels call (malloc, free, libm) resolve in the host process.
 * Compiles are serialized by a mutex: the JIT'd functions themselves may run
 * on any thread.
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
#include <unistd.h>

enum { CG_MAX_PARTS = 8 };

struct cg_jit {
    LLVMOrcLLJITRef jit;
    LLVMTargetMachineRef tm; /* for the O3 pipeline (the JIT has its own for codegen) */
    LLVMTargetMachineRef part_tm[CG_MAX_PARTS]; /* per helper thread of a split compile */
    cg_target target;
    int threads; /* compile threads; 0: one per core */
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
    j->threads = opts ? opts->threads : 0;
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
    for (int i = 0; i < CG_MAX_PARTS; i++)
        if (j->part_tm[i])
            LLVMDisposeTargetMachine(j->part_tm[i]);
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

/* ---- split compiles --------------------------------------------------------------- */

/* Machine code is most of a compile, and it is per function: the kernel and
 * its sweep functions are compiled in parts, one per core, each part in its
 * own context and module with its own target machine (neither is
 * thread-safe), then linked by the JIT from objects. Every part builds the
 * same module, keeps its functions and declares the sweeps it calls, so each
 * function's code is what the whole module would give. */

enum { CG_MAX_ROOTS = 64 };

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The kernel and its sweeps, in module order; -1 past max. */
static int root_functions(LLVMModuleRef m, const char *name, LLVMValueRef *roots, int max)
{
    size_t len = strlen(name);
    int n = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn)) {
        size_t l;
        const char *fname = LLVMGetValueName2(fn, &l);
        if (LLVMIsDeclaration(fn) || l < len || strncmp(fname, name, len) != 0 ||
            (l > len && strncmp(fname + len, ".sweep", 6) != 0))
            continue;
        if (n == max)
            return -1;
        roots[n++] = fn;
    }
    return n;
}

static long count_instructions(LLVMValueRef fn)
{
    long n = 0;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in))
            n++;
    return n;
}

/* What machine code a function will cost: its instructions and those of the
 * helpers inlined into it (vmath), per call. */
static long function_size(LLVMValueRef fn)
{
    long n = 0;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in)) {
            n++;
            if (LLVMGetInstructionOpcode(in) != LLVMCall)
                continue;
            LLVMValueRef callee = LLVMGetCalledValue(in);
            if (callee && LLVMIsAFunction(callee) && !LLVMIsDeclaration(callee) && callee != fn)
                n += count_instructions(callee);
        }
    return n;
}

/* Keep the roots marked in keep (external, for the other parts' calls);
 * replace the other sweeps the kept ones call by declarations; drop the
 * rest and the helpers nothing calls any more. */
static void keep_only(LLVMModuleRef m, LLVMValueRef *roots, int n, const bool *keep)
{
    for (int i = n - 1; i >= 0; i--) { /* the kernel, last, first: it calls the sweeps */
        LLVMValueRef fn = roots[i];
        if (keep[i]) {
            LLVMSetLinkage(fn, LLVMExternalLinkage);
        } else if (!LLVMGetFirstUse(fn)) {
            LLVMDeleteFunction(fn);
        } else {
            size_t l;
            char *fname = sup_strdup(LLVMGetValueName2(fn, &l));
            LLVMValueRef decl = LLVMAddFunction(m, "", LLVMGlobalGetValueType(fn));
            LLVMReplaceAllUsesWith(fn, decl);
            LLVMDeleteFunction(fn);
            LLVMSetValueName2(decl, fname, strlen(fname));
            sup_free(fname);
        }
    }
    for (bool again = true; again;) {
        again = false;
        for (LLVMValueRef fn = LLVMGetFirstFunction(m), next; fn; fn = next) {
            next = LLVMGetNextFunction(fn);
            if (!LLVMIsDeclaration(fn) && LLVMGetLinkage(fn) == LLVMInternalLinkage &&
                !LLVMGetFirstUse(fn)) {
                LLVMDeleteFunction(fn);
                again = true;
            }
        }
    }
}

typedef struct cg_part {
    cg_jit *j;
    const ir_graph *g;
    const char *name;
    LLVMTargetMachineRef tm;
    LLVMContextRef ctx;
    LLVMModuleRef m; /* built already (part 0), else built by the part */
    int nroots;
    bool keep[CG_MAX_ROOTS];
    LLVMMemoryBufferRef obj;
    strbuf err;
    double ms[3]; /* thread CPU: build, O3, machine code */
} cg_part;

static void *part_run(void *arg)
{
    cg_part *p = arg;
    double t0 = cpu_ms();
    if (!p->m && !cg_lower_module(p->ctx, &p->j->target, p->tm, &p->g, &p->name, 1, &p->m, NULL,
                                  &p->err))
        return NULL;
    LLVMValueRef roots[CG_MAX_ROOTS];
    if (p->nroots > 0) { /* split: this part's functions */
        if (root_functions(p->m, p->name, roots, CG_MAX_ROOTS) != p->nroots) {
            sb_puts(&p->err, "codegen: internal error, the parts of a kernel differ");
            return NULL;
        }
        keep_only(p->m, roots, p->nroots, p->keep);
    }
    double t1 = cpu_ms();
    if (!cg_optimize(p->m, p->tm, &p->err))
        return NULL;
    double t2 = cpu_ms();
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(p->tm, p->m, LLVMObjectFile, &msg, &p->obj)) {
        sb_printf(&p->err, "codegen: cannot compile the kernel: %s", msg ? msg : "?");
        p->obj = NULL;
    }
    LLVMDisposeMessage(msg);
    p->ms[0] = t1 - t0;
    p->ms[1] = t2 - t1;
    p->ms[2] = cpu_ms() - t2;
    return NULL;
}

/* Compile threads (at most CG_MAX_PARTS): LOSSC_CG_THREADS (developers),
 * else the JIT's, else one per core. */
static int compile_threads(const cg_jit *j)
{
    const char *env = getenv("LOSSC_CG_THREADS");
    long n = env && *env ? atol(env) : j->threads > 0 ? j->threads : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > CG_MAX_PARTS ? CG_MAX_PARTS : (int)n;
}

/* Build, split, compile and add the kernel `name`: its address, or 0. */
static LLVMOrcExecutorAddress compile_parts(cg_jit *j, const ir_graph *g, const char *name,
                                            cg_kernel_info *local, strbuf *err)
{
    cg_part parts[CG_MAX_PARTS];
    memset(parts, 0, sizeof parts);
    LLVMContextRef ctx0 = LLVMContextCreate();
    LLVMModuleRef m0;
    double t0 = cpu_ms();
    if (!cg_lower_module(ctx0, &j->target, j->tm, &g, &name, 1, &m0, local, err)) {
        LLVMContextDispose(ctx0);
        return 0;
    }
    double build0 = cpu_ms() - t0;
    LLVMValueRef roots[CG_MAX_ROOTS];
    int nroots = root_functions(m0, name, roots, CG_MAX_ROOTS);
    int nparts = compile_threads(j);
    if (nparts > nroots)
        nparts = nroots;
    if (nparts <= 1)
        nroots = 0, nparts = 1; /* one part: the whole module as built */
    /* the largest functions first, each to the least loaded part */
    long size[CG_MAX_ROOTS], load[CG_MAX_PARTS] = {0};
    int order[CG_MAX_ROOTS];
    for (int i = 0; i < nroots; i++) {
        size[i] = function_size(roots[i]);
        int k = i;
        for (; k > 0 && size[order[k - 1]] < size[i]; k--)
            order[k] = order[k - 1];
        order[k] = i;
    }
    for (int r = 0; r < nroots; r++) {
        int best = 0;
        for (int q = 1; q < nparts; q++)
            if (load[q] < load[best])
                best = q;
        load[best] += size[order[r]];
        parts[best].keep[order[r]] = true;
    }
    for (int q = 0; q < nparts; q++) {
        cg_part *p = &parts[q];
        p->j = j;
        p->g = g;
        p->name = name;
        p->nroots = nroots;
        sb_init(&p->err);
        if (q == 0) {
            p->ctx = ctx0;
            p->m = m0;
            p->tm = j->tm;
        } else {
            p->ctx = LLVMContextCreate();
            if (!j->part_tm[q])
                j->part_tm[q] = cg_target_machine(&j->target, true, &p->err);
            p->tm = j->part_tm[q];
        }
    }
    pthread_t th[CG_MAX_PARTS];
    bool started[CG_MAX_PARTS] = {false};
    for (int q = 1; q < nparts; q++)
        started[q] = parts[q].tm && pthread_create(&th[q], NULL, part_run, &parts[q]) == 0;
    for (int q = 1; q < nparts; q++)
        if (parts[q].tm && !started[q])
            part_run(&parts[q]); /* no thread: here */
    part_run(&parts[0]);
    for (int q = 1; q < nparts; q++)
        if (started[q])
            pthread_join(th[q], NULL);
    bool ok = true;
    for (int q = 0; q < nparts && ok; q++)
        if (!parts[q].obj) {
            sb_puts(err, parts[q].err.len ? sb_str(&parts[q].err)
                                               : "codegen: cannot compile the kernel");
            ok = false;
        }
    LLVMOrcJITDylibRef dylib = LLVMOrcLLJITGetMainJITDylib(j->jit);
    for (int q = 0; q < nparts; q++) {
        if (ok && parts[q].obj) {
            LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(j->jit, dylib, parts[q].obj);
            if (e) {
                take_error(e, "cannot add the kernel to the JIT", err);
                ok = false;
            }
        } else if (parts[q].obj) {
            LLVMDisposeMemoryBuffer(parts[q].obj);
        }
        if (parts[q].m)
            LLVMDisposeModule(parts[q].m);
        LLVMContextDispose(parts[q].ctx);
    }
    LLVMOrcExecutorAddress addr = 0;
    if (ok) {
        LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, name);
        if (e) {
            take_error(e, "cannot compile the kernel", err);
            addr = 0;
        }
    }
    if (getenv("LOSSC_CG_TIMES")) { /* developers: thread CPU time per part and phase */
        for (int q = 0; q < nparts; q++)
            fprintf(stderr, "lossc: %s: part %d/%d (size %ld): build %.1f + O3 %.1f + machine code %.1f ms\n",
                    name, q + 1, nparts, load[q], q ? parts[q].ms[0] : build0 + parts[q].ms[0],
                    parts[q].ms[1], parts[q].ms[2]);
    }
    for (int q = 0; q < nparts; q++)
        sb_free(&parts[q].err);
    if (!addr)
        cg_kernel_info_free(local);
    return addr;
}

lk_kernel_fn cg_jit_compile(cg_jit *j, const ir_graph *g, const char *symbol,
                            cg_kernel_info *info, strbuf *err)
{
    double t0 = now_ms();
    pthread_mutex_lock(&j->lock);
    char *name = unique_name(j, symbol);
    cg_kernel_info local;
    memset(&local, 0, sizeof local);
    LLVMOrcExecutorAddress addr = compile_parts(j, g, name, &local, err);
    lk_kernel_fn fn = (lk_kernel_fn)(uintptr_t)addr;
    if (fn) {
        local.compile_ms = now_ms() - t0;
        if (getenv("LOSSC_CG_TIMES"))
            fprintf(stderr, "lossc: %s: wall %.1f ms\n", name, local.compile_ms);
        if (info)
            *info = local;
        else
            cg_kernel_info_free(&local);
    }
    pthread_mutex_unlock(&j->lock);
    sup_free(name);
    return fn;
}
