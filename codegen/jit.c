/* jit.c - ORC LLJIT: one per cg_jit; each kernel is compiled in parts on
 * up to one thread per core (see "split compiles") and added as objects.
 *
 * The sequence is TOOLCHAIN.md's (verified on LLVM 19; guarded for >= 21).
 * Symbols the kernels call (malloc, free, libm) resolve in the host process.
 * Compiles are serialized by a mutex: the JIT'd functions themselves may run
 * on any thread.
 *
 * Lazy versions. A sweep built in two versions (lower_kernel.c: across or
 * along rows, default or general exponent) is used in one per call, picked
 * by the sizes and scalar inputs. The kernel is compiled with the version
 * most likely used; the other is compiled by the first call that needs it:
 * the kernel, at entry, finds its table entry NULL and calls
 * resolve_version (cg_lazy), which lowers the kept plan again in a context
 * of its own, compiles that one function and adds it to the JIT. The plan
 * lives in the JIT (cg_jkernel) as long as the code does.
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

/* A kernel in the JIT, and what compiling its other versions needs. */
typedef struct cg_jkernel {
    struct cg_jit *j;
    char *name;       /* its symbol */
    sched_plan *plan; /* owned: every part and every later version lowers it */
    void **table;     /* cg_lazy's: written under j->lock, read by the kernel */
} cg_jkernel;

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
    cg_jkernel **kernels; /* every kernel compiled, freed with the JIT */
    int nkernels;
    size_t kernels_cap;
    int lazy_compiles; /* versions compiled by kernel calls, and their time */
    double lazy_ms;
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
    for (int i = 0; i < j->nkernels; i++) {
        sched_free(j->kernels[i]->plan);
        sup_free(j->kernels[i]->table);
        sup_free(j->kernels[i]->name);
        sup_free(j->kernels[i]);
    }
    sup_free(j->kernels);
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
 * thread-safe), then linked by the JIT from objects. Every part lowers the
 * same plan, keeps its functions and declares the sweeps it calls, so each
 * function's code is what the whole module would give. A version compiled
 * later is one more such part, alone. */

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The kernel and its sweeps, in module order (roots NULL: only count). */
static int root_functions(LLVMModuleRef m, const char *name, LLVMValueRef *roots)
{
    size_t len = strlen(name);
    int n = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn)) {
        size_t l;
        const char *fname = LLVMGetValueName2(fn, &l);
        if (LLVMIsDeclaration(fn) || l < len || strncmp(fname, name, len) != 0 ||
            (l > len && strncmp(fname + len, ".sweep", 6) != 0))
            continue;
        if (roots)
            roots[n] = fn;
        n++;
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
 * helpers inlined into it (vmath), per call; a third of that for one that
 * gets light_codegen (as measured). */
static long function_size(LLVMValueRef fn)
{
    bool light = LLVMGetStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, CG_ATTR_LIGHT,
                                               (unsigned)strlen(CG_ATTR_LIGHT));
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
    return light ? n / 3 : n;
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

/* Functions marked CG_ATTR_LIGHT, once optimized, get the machine code of
 * -O0 (fast instruction selection, no scheduling): a third of the time for
 * code that runs a few operations per chunk. */
static void light_codegen(LLVMModuleRef m)
{
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn)) {
        if (LLVMIsDeclaration(fn) ||
            !LLVMGetStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, CG_ATTR_LIGHT,
                                           (unsigned)strlen(CG_ATTR_LIGHT)))
            continue;
        static const char *const kinds[] = {"optnone", "noinline"}; /* optnone needs both */
        for (size_t i = 0; i < SUP_ARRAY_LEN(kinds); i++) {
            unsigned kind = LLVMGetEnumAttributeKindForName(kinds[i], strlen(kinds[i]));
            LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                    LLVMCreateEnumAttribute(ctx, kind, 0));
        }
    }
}

static void *resolve_version(void *ctx, int32_t slot);

typedef struct cg_part {
    cg_jit *j;
    cg_jkernel *k;
    cg_lazy lazy;
    LLVMTargetMachineRef tm;
    LLVMContextRef ctx;
    LLVMModuleRef m; /* built already (part 0), else built by the part */
    int nroots;
    bool *keep;      /* per root */
    long load;       /* the size of what it keeps */
    LLVMMemoryBufferRef obj;
    strbuf err;
    double ms[3]; /* thread CPU: build, O3, machine code */
} cg_part;

static void *part_run(void *arg)
{
    cg_part *p = arg;
    double t0 = cpu_ms();
    if (!p->m && !cg_lower_plan(p->ctx, &p->j->target, p->tm, p->k->plan, p->k->name, &p->lazy,
                                &p->m, &p->err))
        return NULL;
    if (root_functions(p->m, p->k->name, NULL) != p->nroots) {
        sb_puts(&p->err, "codegen: internal error, the parts of a kernel differ");
        return NULL;
    }
    LLVMValueRef *roots = sup_calloc((size_t)p->nroots + 1, sizeof *roots);
    root_functions(p->m, p->k->name, roots);
    keep_only(p->m, roots, p->nroots, p->keep);
    sup_free(roots);
    double t1 = cpu_ms();
    if (!cg_optimize(p->m, p->tm, &p->err))
        return NULL;
    light_codegen(p->m);
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

/* Which roots of the module to compile: for the kernel (slot < 0), the
 * kernel, the sweeps it calls and the likely version of each sweep in the
 * table; else the version in table slot `slot`. */
static void pick_roots(const cg_jkernel *k, LLVMValueRef *roots, int nroots, int slot,
                       const int8_t *likely, bool *want)
{
    char name[512];
    for (int i = 0; i < nroots; i++) {
        size_t l;
        const char *fname = LLVMGetValueName2(roots[i], &l);
        if (slot >= 0) {
            cg_sweep_symbol(name, sizeof name, k->name, slot / 2, slot % 2);
            want[i] = strcmp(fname, name) == 0;
            continue;
        }
        want[i] = strcmp(fname, k->name) == 0 || LLVMGetFirstUse(roots[i]);
        for (int s = 0; s < k->plan->nsweeps && !want[i]; s++)
            if (likely[s] >= 0) {
                cg_sweep_symbol(name, sizeof name, k->name, s, likely[s]);
                want[i] = strcmp(fname, name) == 0;
            }
    }
}

/* Its address in the JIT, or 0 with a message. */
static LLVMOrcExecutorAddress lookup(cg_jit *j, const char *name, strbuf *err)
{
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, name);
    if (e) {
        take_error(e, "cannot compile the kernel", err);
        addr = 0;
    }
    return addr;
}

/* Set table[slot] (the kernels read it without the lock). */
static void publish(cg_jkernel *k, int slot, LLVMOrcExecutorAddress addr)
{
    __atomic_store_n(&k->table[slot], (void *)(uintptr_t)addr, __ATOMIC_RELEASE);
}

/* Lower, split, compile and add the kernel k (slot < 0: with its likely
 * versions, which go into the table) or its version in table slot `slot`:
 * the address of the kernel or of that version, or 0 with a message. */
static LLVMOrcExecutorAddress compile_parts(cg_jit *j, cg_jkernel *k, int slot, strbuf *err)
{
    cg_part parts[CG_MAX_PARTS];
    memset(parts, 0, sizeof parts);
    int nsweeps = k->plan->nsweeps;
    int8_t *likely = sup_malloc((size_t)nsweeps + 1);
    memset(likely, -1, (size_t)nsweeps + 1);
    cg_lazy lazy0 = {k->table, resolve_version, k, likely};
    LLVMContextRef ctx0 = LLVMContextCreate();
    LLVMModuleRef m0;
    double t0 = cpu_ms();
    if (!cg_lower_plan(ctx0, &j->target, j->tm, k->plan, k->name, &lazy0, &m0, err)) {
        LLVMContextDispose(ctx0);
        sup_free(likely);
        return 0;
    }
    double build0 = cpu_ms() - t0;
    int nroots = root_functions(m0, k->name, NULL);
    LLVMValueRef *roots = sup_calloc((size_t)nroots + 1, sizeof *roots);
    root_functions(m0, k->name, roots);
    bool *want = sup_calloc((size_t)nroots + 1, 1);
    pick_roots(k, roots, nroots, slot, likely, want);
    /* the largest functions first, each to the least loaded part */
    long *size = sup_calloc((size_t)nroots + 1, sizeof *size);
    int *order = sup_calloc((size_t)nroots + 1, sizeof *order);
    int nwant = 0;
    for (int i = 0; i < nroots; i++) {
        if (!want[i])
            continue;
        size[i] = function_size(roots[i]);
        int q = nwant++;
        for (; q > 0 && size[order[q - 1]] < size[i]; q--)
            order[q] = order[q - 1];
        order[q] = i;
    }
    int nparts = compile_threads(j);
    if (nparts > nwant)
        nparts = nwant > 0 ? nwant : 1;
    for (int q = 0; q < nparts; q++) {
        cg_part *p = &parts[q];
        p->j = j;
        p->k = k;
        p->lazy = (cg_lazy){k->table, resolve_version, k, NULL};
        p->nroots = nroots;
        p->keep = sup_calloc((size_t)nroots + 1, 1);
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
    for (int r = 0; r < nwant; r++) {
        int best = 0;
        for (int q = 1; q < nparts; q++)
            if (parts[q].load < parts[best].load)
                best = q;
        parts[best].load += size[order[r]];
        parts[best].keep[order[r]] = true;
    }
    sup_free(size);
    sup_free(order);
    sup_free(want);
    sup_free(roots);
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
    char name[512];
    if (slot >= 0)
        cg_sweep_symbol(name, sizeof name, k->name, slot / 2, slot % 2);
    LLVMOrcExecutorAddress addr = ok ? lookup(j, slot >= 0 ? name : k->name, err) : 0;
    for (int s = 0; s < nsweeps && addr && slot < 0; s++)
        if (likely[s] >= 0) {
            cg_sweep_symbol(name, sizeof name, k->name, s, likely[s]);
            LLVMOrcExecutorAddress v = lookup(j, name, err);
            if (v)
                publish(k, 2 * s + likely[s], v);
            else
                addr = 0;
        }
    if (getenv("LOSSC_CG_TIMES")) { /* developers: thread CPU time per part and phase */
        for (int q = 0; q < nparts; q++)
            fprintf(stderr, "lossc: %s: part %d/%d (size %ld): build %.1f + O3 %.1f + machine code %.1f ms\n",
                    slot >= 0 ? name : k->name, q + 1, nparts, parts[q].load,
                    q ? parts[q].ms[0] : build0 + parts[q].ms[0], parts[q].ms[1], parts[q].ms[2]);
    }
    for (int q = 0; q < nparts; q++) {
        sb_free(&parts[q].err);
        sup_free(parts[q].keep);
    }
    sup_free(likely);
    return addr;
}

/* ---- lazy versions ------------------------------------------------------------------ */

/* What lazy compiles did in this thread since cg_jit_take_lazy last asked.
 * A fixed buffer: thread-local storage frees nothing at thread exit. */
static _Thread_local struct {
    double ms;
    char msg[1024];
} lazy_here;

/* cg_lazy's resolve: called by a kernel, at entry, in the caller's thread. */
static void *resolve_version(void *ctx, int32_t slot)
{
    cg_jkernel *k = ctx;
    cg_jit *j = k->j;
    double t0 = now_ms();
    pthread_mutex_lock(&j->lock);
    void *fn = __atomic_load_n(&k->table[slot], __ATOMIC_ACQUIRE); /* another caller's? */
    if (!fn) {
        strbuf err;
        sb_init(&err);
        if (getenv("LOSSC_CG_LAZY_FAIL")) /* tests: a compile that fails */
            sb_puts(&err, "codegen: LOSSC_CG_LAZY_FAIL is set");
        else
            fn = (void *)(uintptr_t)compile_parts(j, k, slot, &err);
        if (fn) {
            publish(k, slot, (LLVMOrcExecutorAddress)(uintptr_t)fn);
            double ms = now_ms() - t0;
            j->lazy_compiles++;
            j->lazy_ms += ms;
            lazy_here.ms += ms;
            if (getenv("LOSSC_CG_TIMES"))
                fprintf(stderr, "lossc: %s: version %d of sweep %d: wall %.1f ms\n", k->name,
                        slot % 2, slot / 2, ms);
        } else {
            snprintf(lazy_here.msg, sizeof lazy_here.msg, "%s", sb_str(&err));
        }
        sb_free(&err);
    }
    pthread_mutex_unlock(&j->lock);
    return fn;
}

double cg_jit_take_lazy(strbuf *err)
{
    double ms = lazy_here.ms;
    if (err && lazy_here.msg[0])
        sb_puts(err, lazy_here.msg);
    lazy_here.ms = 0;
    lazy_here.msg[0] = '\0';
    return ms;
}

void cg_jit_lazy_stats(cg_jit *j, int *compiles, double *ms)
{
    pthread_mutex_lock(&j->lock);
    if (compiles)
        *compiles = j->lazy_compiles;
    if (ms)
        *ms = j->lazy_ms;
    pthread_mutex_unlock(&j->lock);
}

lk_kernel_fn cg_jit_compile(cg_jit *j, const ir_graph *g, const char *symbol,
                            cg_kernel_info *info, strbuf *err)
{
    double t0 = now_ms();
    sched_plan *plan = sched_build(g, err);
    if (!plan)
        return NULL;
    pthread_mutex_lock(&j->lock);
    cg_jkernel *k = sup_calloc(1, sizeof *k);
    k->j = j;
    k->name = unique_name(j, symbol);
    k->plan = plan;
    k->table = sup_calloc(2 * (size_t)plan->nsweeps + 1, sizeof *k->table);
    /* kept until the JIT goes, with the code that points to it */
    SUP_GROW(j->kernels, j->kernels_cap, (size_t)j->nkernels + 1);
    j->kernels[j->nkernels++] = k;
    lk_kernel_fn fn = (lk_kernel_fn)(uintptr_t)compile_parts(j, k, -1, err);
    if (fn) {
        cg_kernel_info local;
        cg_plan_info(plan, &local);
        local.compile_ms = now_ms() - t0;
        if (getenv("LOSSC_CG_TIMES"))
            fprintf(stderr, "lossc: %s: wall %.1f ms\n", k->name, local.compile_ms);
        if (info)
            *info = local;
        else
            cg_kernel_info_free(&local);
    }
    pthread_mutex_unlock(&j->lock);
    return fn;
}
