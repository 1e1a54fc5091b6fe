/* vm_ulp - measure the error of every vmath function, f32 and f64.
 *
 *   vm_ulp [--stride S] [--windows K] [--f64 N] [name...]
 *
 * f32: every finite float with stride S (default 127; 1 is exhaustive, about
 * 4.3e9 floats per function), then every function's critical windows with
 * their strides times K (default 1; 0 skips them). f64: N random and edge
 * inputs (default 1000000) against __float128. Prints the largest error in
 * ulp, where it occurs, the documented bound, and whether the scalar,
 * auto-vectorized and explicit vector forms agree bitwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm_check.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(void)
{
    fprintf(stderr, "usage: vm_ulp [--stride S] [--windows K] [--f64 N] [--no-f32] "
                    "[--no-f64] [name...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint32_t stride = 127, wscale = 1;
    uint64_t n64 = 1000000;
    bool want[VM__COUNT] = {0}, any = false, do32 = true, do64 = true;
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
