/* target.c - the target (host or named CPU), the O3 pipeline, and building a
 * whole module of kernels: what the JIT, the AOT path and `lossc llvm` share. */
#include "codegen/lower.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_once_t targets_once = PTHREAD_ONCE_INIT;

static void init_targets(void)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
}

/* Vector width for the kernel's SPMD lanes. With features we read them; for
 * a named CPU without a feature string we know the common families. */
static int vector_bits_of(const char *cpu, const char *features)
{
    if (features && *features) {
        if (strstr(features, "+avx512f"))
            return 512;
        if (strstr(features, "+avx2"))
            return 256;
        return 128;
    }
    static const char *const v4[] = {"x86-64-v4", "skylake-avx512", "cascadelake", "cooperlake",
                                     "icelake", "tigerlake", "sapphirerapids", "graniterapids",
                                     "emeraldrapids", "rocketlake", "cannonlake", "znver4",
                                     "znver5", "knl", "knm"};
    static const char *const v3[] = {"x86-64-v3", "haswell", "broadwell", "skylake", "alderlake",
                                     "raptorlake", "meteorlake", "arrowlake", "lunarlake",
                                     "znver1", "znver2", "znver3", "bdver4", "gracemont",
                                     "sierraforest", "grandridge"};
    for (size_t i = 0; i < SUP_ARRAY_LEN(v4); i++)
        if (strncmp(cpu, v4[i], strlen(v4[i])) == 0)
            return 512;
    for (size_t i = 0; i < SUP_ARRAY_LEN(v3); i++)
        if (strncmp(cpu, v3[i], strlen(v3[i])) == 0)
            return 256;
    return 128;
}

/* The 64-bit x86 CPU names of LLVM 19 (`llc -march=x86-64 -mcpu=help`, less
 * the 32-bit ones). LLVM only warns about an unknown name, then aborts the
 * process when it emits code ("64-bit code requested on a subtarget that
 * doesn't support it"), and its C API cannot ask which names it knows. */
static const char *const x86_64_cpus[] = {
    "alderlake", "amdfam10", "arrowlake", "arrowlake-s", "arrowlake_s", "athlon-fx", "athlon64",
    "athlon64-sse3", "atom", "atom_sse4_2", "atom_sse4_2_movbe", "barcelona", "bdver1", "bdver2",
    "bdver3", "bdver4", "bonnell", "broadwell", "btver1", "btver2", "cannonlake", "cascadelake",
    "clearwaterforest", "cooperlake", "core-avx-i", "core-avx2", "core2", "core_2_duo_sse4_1",
    "core_2_duo_ssse3", "core_2nd_gen_avx", "core_3rd_gen_avx", "core_4th_gen_avx",
    "core_4th_gen_avx_tsx", "core_5th_gen_avx", "core_5th_gen_avx_tsx", "core_aes_pclmulqdq",
    "core_i7_sse4_2", "corei7", "corei7-avx", "emeraldrapids", "generic", "goldmont",
    "goldmont-plus", "goldmont_plus", "gracemont", "grandridge", "graniterapids",
    "graniterapids-d", "graniterapids_d", "haswell", "icelake-client", "icelake-server",
    "icelake_client", "icelake_server", "ivybridge", "k8", "k8-sse3", "knl", "knm", "lunarlake",
    "meteorlake", "mic_avx512", "nehalem", "nocona", "opteron", "opteron-sse3", "pantherlake",
    "penryn", "raptorlake", "rocketlake", "sandybridge", "sapphirerapids", "sierraforest",
    "silvermont", "skx", "skylake", "skylake-avx512", "skylake_avx512", "slm", "tigerlake",
    "tremont", "westmere", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", "znver1", "znver2",
    "znver3", "znver4", "znver5",
};

static bool known_cpu(const char *triple, const char *cpu)
{
    if (strncmp(triple, "x86_64", 6) != 0)
        return true; /* other targets: LLVM's own checks */
    for (size_t i = 0; i < SUP_ARRAY_LEN(x86_64_cpus); i++)
        if (strcmp(cpu, x86_64_cpus[i]) == 0)
            return true;
    return false;
}

bool cg_target_init(cg_target *t, const cg_options *opts, strbuf *err)
{
    pthread_once(&targets_once, init_targets);
    memset(t, 0, sizeof *t);
    char *triple = LLVMGetDefaultTargetTriple();
    t->triple = sup_strdup(triple);
    LLVMDisposeMessage(triple);
    bool host = !opts || !opts->cpu || !*opts->cpu;
    if (host) {
        char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
        t->cpu = sup_strdup(cpu);
        t->features = sup_strdup(opts && opts->features ? opts->features : feat);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(feat);
    } else if (!known_cpu(t->triple, opts->cpu)) {
        sb_printf(err,
                  "codegen: unknown CPU '%s' for %s: give an LLVM x86-64 CPU name such as "
                  "x86-64-v3, haswell or znver3 (`llc -march=x86-64 -mcpu=help` lists them), "
                  "or no --cpu for this machine",
                  opts->cpu, t->triple);
        cg_target_free(t);
        return false;
    } else {
        t->cpu = sup_strdup(opts->cpu);
        t->features = sup_strdup(opts->features ? opts->features : "");
    }
    t->vector_bits = vector_bits_of(t->cpu, t->features);
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &target, &msg)) {
        sb_printf(err, "codegen: no LLVM target for %s: %s", t->triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        cg_target_free(t);
        return false;
    }
    return true;
}

void cg_target_free(cg_target *t)
{
    sup_free(t->triple);
    sup_free(t->cpu);
    sup_free(t->features);
    memset(t, 0, sizeof *t);
}

LLVMTargetMachineRef cg_target_machine(const cg_target *t, bool jit, strbuf *err)
{
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &target, &msg)) {
        sb_printf(err, "codegen: no LLVM target for %s: %s", t->triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return NULL;
    }
    /* The JIT's default code model is the large one on x86-64: right for
     * code placed anywhere, wrong for an object file (text relocations). */
    const char *lv = getenv("LOSSC_CG_LEVEL"); /* developers: 0-3 */
    LLVMCodeGenOptLevel level = lv ? (LLVMCodeGenOptLevel)atoi(lv) : LLVMCodeGenLevelAggressive;
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
        target, t->triple, t->cpu, t->features, level, LLVMRelocPIC,
        jit ? LLVMCodeModelJITDefault : LLVMCodeModelDefault);
    if (!tm)
        sb_printf(err, "codegen: cannot create a target machine for %s", t->cpu);
    return tm;
}

LLVMTargetMachineRef cg_target_open(cg_target *t, const cg_options *opts, strbuf *err)
{
    if (!cg_target_init(t, opts, err))
        return NULL;
    LLVMTargetMachineRef tm = cg_target_machine(t, false, err);
    if (!tm)
        cg_target_free(t);
    return tm;
}

/* The kernels arrive vectorized, with invariants hoisted and values
 * shared: O3's loop and SLP vectorizers, unswitching, unrolling and inliner
 * heuristics have nothing left to do but cost time (O3 took 20-60 ms per
 * kernel here). This pipeline inlines vmath, promotes the accumulators to
 * registers, cleans up, rotates loops and hoists what the masks left; the
 * kernels it gives run the same or fewer instructions per element than
 * O3's for every benchmark loss, in a quarter of the time. */
static const char *const lean_pipeline =
    "always-inline,function(sroa,early-cse,instcombine<no-verify-fixpoint>,simplifycfg,"
    "loop(loop-rotate),"
    "loop-mssa(licm),gvn,loop(indvars),instcombine<no-verify-fixpoint>,simplifycfg)";

bool cg_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, strbuf *err)
{
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    const char *pipeline = getenv("LOSSC_CG_PIPELINE"); /* developers: try another */
    LLVMErrorRef e = LLVMRunPasses(m, pipeline && *pipeline ? pipeline : lean_pipeline, tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) {
        char *msg = LLVMGetErrorMessage(e);
        sb_printf(err, "codegen: optimization failed: %s", msg);
        LLVMDisposeErrorMessage(msg);
        return false;
    }
    return true;
}

/* Every function gets the target's CPU and features, and (with AVX-512) the
 * permission to use 512-bit registers, which some CPUs' tuning avoids. */
static void set_target_attrs(LLVMModuleRef m, const cg_target *t)
{
    LLVMContextRef ctx = LLVMGetModuleContext(m);
    char width[16];
    snprintf(width, sizeof width, "%d", t->vector_bits);
    for (LLVMValueRef fn = LLVMGetFirstFunction(m); fn; fn = LLVMGetNextFunction(fn)) {
        if (LLVMIsDeclaration(fn))
            continue;
        const char *kv[][2] = {{"target-cpu", t->cpu},
                               {"target-features", t->features},
                               {"min-legal-vector-width", width},
                               {"prefer-vector-width", width}};
        for (size_t i = 0; i < SUP_ARRAY_LEN(kv); i++) {
            if (!*kv[i][1])
                continue;
            LLVMAttributeRef a = LLVMCreateStringAttribute(
                ctx, kv[i][0], (unsigned)strlen(kv[i][0]), kv[i][1], (unsigned)strlen(kv[i][1]));
            LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
        }
    }
}

void cg_plan_info(const sched_plan *p, cg_kernel_info *info)
{
    memset(info, 0, sizeof *info);
    info->nsweeps = sched_num_sweeps(p);
    info->nchecks = p->nchecks;
    info->checks = sup_calloc((size_t)p->nchecks + 1, sizeof *info->checks);
    for (int c = 0; c < p->nchecks; c++) {
        const sched_check *k = &p->checks[c];
        info->checks[c].input = k->input >= 0 ? sup_strdup(p->g->inputs[k->input].name) : NULL;
        info->checks[c].dim = k->dim;
        info->checks[c].loc = k->loc;
    }
}

void cg_kernel_info_free(cg_kernel_info *info)
{
    if (!info)
        return;
    for (int c = 0; c < info->nchecks; c++)
        sup_free((char *)info->checks[c].input);
    sup_free(info->checks);
    info->checks = NULL;
    info->nchecks = 0;
}

_Thread_local double cg_last_times[2];

/* Thread CPU time: what compiling costs, whatever else the machine runs. */
static double clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static LLVMModuleRef module_new(LLVMContextRef ctx, const cg_target *t, LLVMTargetMachineRef tm)
{
    LLVMModuleRef m = LLVMModuleCreateWithNameInContext("lossc", ctx);
    LLVMSetTarget(m, t->triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(m, dl);
    LLVMDisposeTargetData(dl);
    return m;
}

/* Target attributes, verification; the module is disposed on failure. */
static bool module_finish(LLVMModuleRef m, const cg_target *t, strbuf *err)
{
    set_target_attrs(m, t);
    char *msg = NULL;
    if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
        sb_printf(err, "codegen: internal error, invalid LLVM IR: %s", msg ? msg : "?");
        LLVMDisposeMessage(msg);
        LLVMDisposeModule(m);
        return false;
    }
    LLVMDisposeMessage(msg);
    const char *dump = getenv("LOSSC_CG_DUMP"); /* developers: the IR before O3 */
    if (dump)
        LLVMPrintModuleToFile(m, dump, NULL);
    return true;
}

bool cg_lower_plan(LLVMContextRef ctx, const cg_target *t, LLVMTargetMachineRef tm,
                   const sched_plan *p, const char *symbol, cg_lazy *lazy,
                   LLVMModuleRef *out, strbuf *err)
{
    *out = NULL;
    LLVMModuleRef m = module_new(ctx, t, tm);
    if (!cg_lower(m, t, p, symbol, lazy, err)) {
        LLVMDisposeModule(m);
        return false;
    }
    if (!module_finish(m, t, err))
        return false;
    *out = m;
    return true;
}

bool cg_lower_module(LLVMContextRef ctx, const cg_target *t, LLVMTargetMachineRef tm,
                     const ir_graph *const *graphs, const char *const *symbols, int n,
                     LLVMModuleRef *out, cg_kernel_info *infos, strbuf *err)
{
    *out = NULL;
    double t0 = clock_ms();
    LLVMModuleRef m = module_new(ctx, t, tm);
    for (int i = 0; i < n; i++) {
        sched_plan *p = sched_build(graphs[i], err);
        if (!p) {
            LLVMDisposeModule(m);
            return false;
        }
        LLVMValueRef fn = cg_lower(m, t, p, symbols[i], NULL, err);
        if (fn && infos)
            cg_plan_info(p, &infos[i]);
        sched_free(p);
        if (!fn) {
            LLVMDisposeModule(m);
            return false;
        }
    }
    if (!module_finish(m, t, err))
        return false;
    cg_last_times[0] = clock_ms() - t0;
    *out = m;
    return true;
}

bool cg_build_module(LLVMContextRef ctx, const cg_target *t, LLVMTargetMachineRef tm,
                     const ir_graph *const *graphs, const char *const *symbols, int n,
                     LLVMModuleRef *out, cg_kernel_info *infos, strbuf *err)
{
    LLVMModuleRef m;
    if (!cg_lower_module(ctx, t, tm, graphs, symbols, n, &m, infos, err))
        return false;
    double t1 = clock_ms();
    if (!cg_optimize(m, tm, err)) {
        LLVMDisposeModule(m);
        return false;
    }
    cg_last_times[1] = clock_ms() - t1;
    *out = m;
    return true;
}

bool cg_print_llvm(const ir_graph *g, const cg_options *opts, strbuf *out, strbuf *err)
{
    cg_target t;
    LLVMTargetMachineRef tm = cg_target_open(&t, opts, err);
    if (!tm)
        return false;
    LLVMContextRef ctx = LLVMContextCreate();
    const char *sym = opts && opts->symbol ? opts->symbol : g->name;
    LLVMModuleRef m;
    bool ok = cg_build_module(ctx, &t, tm, &g, &sym, 1, &m, NULL, err);
    if (ok) {
        char *s = LLVMPrintModuleToString(m);
        sb_puts(out, s);
        LLVMDisposeMessage(s);
        LLVMDisposeModule(m);
    }
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    cg_target_free(&t);
    return ok;
}

void cg_print_kernels(const ir_graph *g, strbuf *out)
{
    strbuf err;
    sb_init(&err);
    sched_plan *p = sched_build(g, &err);
    if (p)
        sched_print(p, out);
    else
        sb_printf(out, "error: %s\n", sb_str(&err));
    sched_free(p);
    sb_free(&err);
}
