/* vm_ulp - measure the error of every vmath function, f32 and f64.
 *
 *   vm_ulp [--stride S] [--windows K] [--f64 N] [--no-f32] [--no-f64]
 *          [--scalar-only] [--bench] [name...]
 *
 * f32: every finite float with stride S (default 127; 1 is exhaustive, about
 * 4.3e9 floats per function), then every function's critical windows with
 * their strides times K (default 1; 0 skips them). f64: N random and edge
 * inputs (default 1000000) against __float128. Prints the largest error in
 * ulp, where it occurs, the documented bound, and whether the scalar,
 * auto-vectorized and explicit vector forms agree bitwise (--scalar-only
 * skips that, for long sweeps).
 *
 * --bench instead times the auto-vectorized loop over 2^20 elements (in
 * cache), next to a C loop calling glibc's libm (expf, exp, ...) built with
 * this program's flags: ns per element, for the report, never asserted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm_check.h"

#include <math.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- --bench ------------------------------------------------------------------ */

static float sig32(float x) { return x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x)); }
static double sig64(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static float sp32(float x) { return fmaxf(x, 0) + log1pf(expf(-fabsf(x))); }
static double sp64(double x) { return fmax(x, 0) + log1p(exp(-fabs(x))); }

static void libm_loop(vm_func f, bool f64, const void *in, void *out, int64_t n)
{
    const float *a = in;
    float *b = out;
    const double *c = in;
    double *d = out;
    for (int64_t i = 0; i < n; i++) {
        switch (f) {
        case VM_EXP: f64 ? (void)(d[i] = exp(c[i])) : (void)(b[i] = expf(a[i])); break;
        case VM_EXPM1: f64 ? (void)(d[i] = expm1(c[i])) : (void)(b[i] = expm1f(a[i])); break;
        case VM_LOG: f64 ? (void)(d[i] = log(c[i])) : (void)(b[i] = logf(a[i])); break;
        case VM_LOG1P: f64 ? (void)(d[i] = log1p(c[i])) : (void)(b[i] = log1pf(a[i])); break;
        case VM_TANH: f64 ? (void)(d[i] = tanh(c[i])) : (void)(b[i] = tanhf(a[i])); break;
        case VM_SIGMOID: f64 ? (void)(d[i] = sig64(c[i])) : (void)(b[i] = sig32(a[i])); break;
        default: f64 ? (void)(d[i] = sp64(c[i])) : (void)(b[i] = sp32(a[i])); break;
        }
    }
}

static void bench(vmj *j, const bool *want, bool any)
{
    enum { N = 1 << 20, REPS = 20 };
    void *in = sup_malloc(N * sizeof(double)), *out = sup_malloc(N * sizeof(double));
    printf("%-9s %-4s %12s %12s %8s\n", "function", "type", "vmath ns/el", "libm ns/el",
           "speedup");
    for (int f = 0; f < VM__COUNT; f++) {
        if (any && !want[f])
            continue;
        for (int is64 = 0; is64 < 2; is64++) {
            strbuf err;
            sb_init(&err);
            vmj_kernels k;
            if (!vmj_compile(j, (vm_func)f, is64, &k, &err)) {
                fprintf(stderr, "vm_ulp: %s\n", sb_str(&err));
                exit(1);
            }
            sb_free(&err);
            /* inputs where the function is defined, away from saturation */
            for (int i = 0; i < N; i++) {
                double x = (f == VM_LOG || f == VM_LOG1P) ? 0.01 + 10.0 * i / N
                                                          : -20.0 + 40.0 * i / N;
                if (is64)
                    ((double *)in)[i] = x;
                else
                    ((float *)in)[i] = (float)x;
            }
            double best[2] = {1e30, 1e30};
            for (int r = 0; r < REPS; r++) {
                double t0 = now();
                k.scalar(in, out, N);
                double t1 = now();
                libm_loop((vm_func)f, is64, in, out, N);
                double t2 = now();
                best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
                best[1] = t2 - t1 < best[1] ? t2 - t1 : best[1];
            }
            printf("%-9s %-4s %12.3f %12.3f %7.1fx\n", vm_func_name((vm_func)f),
                   is64 ? "f64" : "f32", best[0] * 1e9 / N, best[1] * 1e9 / N,
                   best[1] / best[0]);
        }
    }
    sup_free(in);
    sup_free(out);
}

static int usage(void)
{
    fprintf(stderr, "usage: vm_ulp [--stride S] [--windows K] [--f64 N] [--no-f32] "
                    "[--no-f64] [--scalar-only] [--bench] [name...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint32_t stride = 127, wscale = 1;
    uint64_t n64 = 1000000;
    bool want[VM__COUNT] = {0}, any = false, do32 = true, do64 = true, do_bench = false;
    for (int i = 1; i < argc; i++) {
        vm_func f;
        if (!strcmp(argv[i], "--stride") && i + 1 < argc)
            stride = (uint32_t)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--windows") && i + 1 < argc)
            wscale = (uint32_t)strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--f64") && i + 1 < argc)
            n64 = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--no-f32"))
            do32 = false;
        else if (!strcmp(argv[i], "--no-f64"))
            do64 = false;
        else if (!strcmp(argv[i], "--scalar-only"))
            vmc_scalar_only = true;
        else if (!strcmp(argv[i], "--bench"))
            do_bench = true;
        else if (vm_func_from_name(argv[i], &f))
            want[f] = any = true;
        else
            return usage();
    }
    strbuf err;
    sb_init(&err);
    vmj *j = vmj_create(&err);
    if (!j) {
        fprintf(stderr, "vm_ulp: %s\n", sb_str(&err));
        return 1;
    }
    if (do_bench) {
        printf("host cpu %s\n", vmj_cpu(j));
        bench(j, want, any);
        vmj_destroy(j);
        sb_free(&err);
        return 0;
    }
    printf("host cpu %s; f32: stride %u, windows x%u; f64: %" PRIu64 " inputs\n",
           vmj_cpu(j), stride, wscale, n64);
    printf("%-9s %-4s %9s %6s %12s  %-26s %s\n", "function", "type", "max ulp", "bound",
           "inputs", "worst input", "forms");
    int bad = 0;
    for (int f = 0; f < VM__COUNT; f++) {
        if (any && !want[f])
            continue;
        for (int is64 = 0; is64 < 2; is64++) {
            if (is64 ? !do64 : !do32)
                continue;
            vmj_kernels k;
            if (!vmj_compile(j, (vm_func)f, is64, &k, &err)) {
                fprintf(stderr, "vm_ulp: %s\n", sb_str(&err));
                return 1;
            }
            vmc_stats st = {0};
            double t0 = now();
            if (is64)
                vmc_sweep64(&k, (vm_func)f, n64, &st);
            else
                vmc_sweep32(&k, (vm_func)f, stride, wscale, &st);
            double bound = vm_max_ulp((vm_func)f, is64);
            bool ok = st.max_ulp <= bound && !st.mismatches && k.scalar_vectorized &&
                      k.no_calls;
            bad += !ok;
            printf("%-9s %-4s %9.4f %6.2f %12" PRIu64 "  %-26.17g %s%s%s (%.1f s)%s\n",
                   vm_func_name((vm_func)f), is64 ? "f64" : "f32", st.max_ulp, bound, st.n,
                   st.worst_x, st.mismatches ? "DIFFER" : "agree",
                   k.scalar_vectorized ? ", vectorized" : ", NOT VECTORIZED",
                   k.no_calls ? "" : ", CALLS", now() - t0, ok ? "" : "  <-- FAIL");
            fflush(stdout);
        }
    }
    vmj_destroy(j);
    sb_free(&err);
    return bad ? 1 : 0;
}
