/* cmd_demo.c - lossc demo and lossc gradcheck: the whole pipeline on
 * generated data (data.c).
 *
 * demo: compile (forward and forward+backward kernels), generate inputs of
 * the requested size, run, and print the loss, a gradient summary per input,
 * a gradient check and the timings. The gradient check has two parts: at
 * the full size the kernel's gradient is compared at every element with the
 * f64 interpreter running the same backward graph; on a small instance every
 * element is compared with central finite differences (at large sizes the
 * interpreter's naive sums would drown finite differences in rounding).
 *
 * gradcheck: a small random point; passes/gradcheck.c checks the autodiff
 * pass (interpreter against finite differences), lossc_gradcheck the kernel.
 */
#include "cli/cli.h"
#include "passes/gradcheck.h"
#include "runtime/rt.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median time of fn over enough runs to fill about a quarter second. */
static double time_runs(lossc_status (*fn)(lossc_loss *), lossc_loss *loss, int *reps,
                        lossc_status *st)
{
    double t[64];
    int n = 0;
    double start = now_ms();
    while (n < 64 && (n < 3 || now_ms() - start < 250)) {
        double t0 = now_ms();
        *st = fn(loss);
        t[n++] = now_ms() - t0;
        if (*st != LOSSC_OK)
            break;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    *reps = n;
    return t[n / 2];
}

static double load(const cli_npy *a, int64_t i)
{
    if (a->dtype.code == kDLFloat)
        return a->dtype.bits == 32 ? ((const float *)a->data)[i] : ((const double *)a->data)[i];
    if (a->dtype.code == kDLUInt)
        return ((const uint8_t *)a->data)[i];
    return a->dtype.bits == 32 ? ((const int32_t *)a->data)[i]
                               : (double)((const int64_t *)a->data)[i];
}

/* The largest intermediate the loss builds at these sizes (elements): an
 * all-pairs loss at N = 10^6 would need 10^12. */
static double largest_node(const ir_graph *g, const int64_t *dims)
{
    double most = 0;
    for (uint32_t id = 0; id < g->nnodes; id++) {
        double v = 1;
        IR_DIMSET_FOREACH(d, g->nodes[id]->dims)
        {
            v *= (double)dims[d];
        }
        most = fmax(most, v);
    }
    return most;
}

static void format_dims(strbuf *sb, const ir_graph *fe, const int64_t *dims)
{
    for (int d = 0; d < fe->ndims; d++)
        if (ir_dim_root(fe, d) == d)
            sb_printf(sb, "%s%s = %lld", sb->len ? ", " : "", fe->dims[d].name,
                      (long long)dims[d]);
}

typedef struct run {
    cli_npy *in;  /* per input of fe */
    cli_npy *out; /* per output of the loss */
    int nin, nout;
} run;

static void run_free(run *r)
{
    for (int i = 0; i < r->nin; i++)
        cli_npy_free(&r->in[i]);
    for (int i = 0; i < r->nout; i++)
        cli_npy_free(&r->out[i]);
    sup_free(r->in);
    sup_free(r->out);
    memset(r, 0, sizeof *r);
}

/* Generate inputs at `dims`, bind them and fresh outputs. */
static int setup_run(const cli_args *a, lossc_loss *loss, const ir_graph *fe,
                     const int64_t *dims, uint64_t seed, run *r)
{
    r->nin = fe->ninputs;
    r->in = sup_calloc((size_t)r->nin + 1, sizeof *r->in);
    cli_gen_inputs(fe, dims, seed, r->in);
    if (cli_bind_arrays(loss, a, r->in, fe) != CLI_OK)
        return CLI_FAIL;
    r->nout = lossc_num_outputs(loss);
    r->out = sup_calloc((size_t)r->nout + 1, sizeof *r->out);
    for (int i = 0; i < r->nout; i++) {
        lossc_info o;
        int nd;
        int64_t shape[LOSSC_MAX_RANK];
        lossc_output_info(loss, i, &o);
        if (lossc_shape_of(loss, o.name, &nd, shape) != LOSSC_OK)
            return cli_fail("%s", lossc_loss_error(loss));
        cli_npy_alloc(&r->out[i], o.dtype, nd, shape);
        DLTensor t = cli_npy_tensor(&r->out[i]);
        if (lossc_bind_output(loss, o.name, &t) != LOSSC_OK)
            return cli_fail("%s", lossc_loss_error(loss));
    }
    return CLI_OK;
}

static double bytes_of(const cli_npy *a, int n)
{
    double b = 0;
    for (int i = 0; i < n; i++)
        b += (double)a[i].count * (double)cli_npy_itemsize(a[i].dtype);
    return b;
}

static void print_summary(lossc_loss *loss, const run *r)
{
    for (int i = 0; i < r->nout; i++) {
        lossc_info o;
        lossc_output_info(loss, i, &o);
        const cli_npy *a = &r->out[i];
        if (o.role != LOSSC_GRAD) {
            if (a->count == 1)
                printf("%-16s %.9g\n", o.name, load(a, 0));
            else {
                double s = 0;
                for (int64_t k = 0; k < a->count; k++)
                    s += load(a, k);
                printf("%-16s %lld values, sum %.9g\n", o.name, (long long)a->count, s);
            }
            continue;
        }
        if (i == 0 || lossc_output_info(loss, i - 1, &o) != LOSSC_OK || o.role != LOSSC_GRAD)
            printf("\ngradient         %12s %12s %12s %12s\n", "norm", "min", "max", "mean");
        lossc_output_info(loss, i, &o);
        double ss = 0, mn = INFINITY, mx = -INFINITY, sum = 0;
        for (int64_t k = 0; k < a->count; k++) {
            double v = load(a, k);
            ss += v * v, sum += v;
            mn = fmin(mn, v), mx = fmax(mx, v);
        }
        printf("  %-14s %12.5g %12.5g %12.5g %12.5g\n", o.of, sqrt(ss), mn, mx,
               a->count ? sum / (double)a->count : 0.0);
    }
}

static int demo_check(const cli_args *a, lossc_loss *loss, const ir_graph *fe,
                      const int64_t *dims, bool full_ref)
{
    const lossc_gradcheck_result *res;
    int n = 0, ok_ref = 1, ok_fd = 0;
    printf("\ngradient check   kernel vs f64 reference        kernel vs finite differences\n");
    if (full_ref) { /* every element at the full size, no finite differences */
        if (lossc_gradcheck(loss, 0, a->seed, 0, -1, &res, &n, &ok_ref) != LOSSC_OK)
            return cli_fail("gradient check: %s", lossc_loss_error(loss));
    }
    double *ref_rel = sup_calloc((size_t)n + 1, sizeof *ref_rel);
    for (int i = 0; full_ref && i < n; i++)
        ref_rel[i] = res[i].ref_max_rel;
    /* every element of a small instance against finite differences */
    int64_t small[IR_MAX_DIMS];
    cli_args sa = *a;
    sa.dims.n = 0;
    if (cli_pick_dims(&sa, fe, 9, 4, small) != CLI_OK)
        return CLI_FAIL;
    for (int d = 0; d < fe->ndims; d++)
        small[d] = small[d] < dims[d] ? small[d] : dims[d];
    run r = {0};
    int rc = setup_run(a, loss, fe, small, a->seed + 1, &r);
    if (rc == CLI_OK && lossc_gradcheck(loss, -1, a->seed, 0, -1, &res, &n, &ok_fd) != LOSSC_OK)
        rc = cli_fail("gradient check: %s", lossc_loss_error(loss));
    strbuf sd;
    sb_init(&sd);
    format_dims(&sd, fe, small);
    for (int i = 0; rc == CLI_OK && i < n; i++) {
        char ref[64] = "(skipped: too large)";
        if (full_ref)
            snprintf(ref, sizeof ref, "max rel %.2e", ref_rel[i]);
        printf("  %-14s %-30s max rel %.2e (%lld element%s)  %s\n", res[i].input, ref,
               res[i].fd_max_rel, (long long)res[i].fd_checked, res[i].fd_checked == 1 ? "" : "s",
               res[i].passed ? "ok" : "FAILED");
    }
    if (rc == CLI_OK)
        printf("  (finite differences on a small instance: %s)\n  %s\n", sb_str(&sd),
               ok_ref && ok_fd ? "gradient check passed" : "gradient check FAILED");
    sb_free(&sd);
    sup_free(ref_rel);
    run_free(&r);
    return rc != CLI_OK ? rc : ok_ref && ok_fd ? CLI_OK : CLI_FAIL;
}

int cli_cmd_demo(const cli_args *a)
{
    lossc_ctx *ctx;
    lossc_loss *loss;
    if (cli_compile(a, 0, false, &ctx, &loss) != CLI_OK)
        return CLI_FAIL;
    const ir_graph *fe = loss->fe;
    int64_t dims[IR_MAX_DIMS];
    int rc = cli_pick_dims(a, fe, a->n ? a->n : 1 << 20, 10, dims);
    double big = rc == CLI_OK ? largest_node(loss->bwd->g, dims) : 0;
    if (rc == CLI_OK && big > 4e9)
        rc = cli_fail("at these sizes the loss builds an intermediate of %.3g elements: pick a "
                      "smaller -n or --dim", big);
    run r = {0};
    if (rc == CLI_OK)
        rc = setup_run(a, loss, fe, dims, a->seed, &r);
    lossc_status st = LOSSC_OK;
    if (rc == CLI_OK && (st = lossc_forward_backward(loss)) != LOSSC_OK) /* warm-up */
        rc = cli_fail("%s", lossc_loss_error(loss));
    int64_t hits, misses;
    lossc_ctx_cache_stats(ctx, &hits, &misses, NULL);
    if (rc == CLI_OK) {
        strbuf sd;
        sb_init(&sd);
        format_dims(&sd, fe, dims);
        char *host = LLVMGetHostCPUName();
        printf("lossc demo: %s from %s, %s, %d thread%s, CPU %s%s\n\n", lossc_loss_name(loss),
               a->file, sb_str(&sd), lossc_ctx_threads(ctx), lossc_ctx_threads(ctx) > 1 ? "s" : "",
               a->cpu ? a->cpu : host, a->cpu ? "" : " (host)");
        LLVMDisposeMessage(host);
        sb_free(&sd);
        print_summary(loss, &r);
    }
    int reps_f = 0, reps_b = 0;
    double tf = 0, tb = 0;
    if (rc == CLI_OK) {
        tf = time_runs(lossc_forward, loss, &reps_f, &st);
        if (st == LOSSC_OK)
            tb = time_runs(lossc_forward_backward, loss, &reps_b, &st);
        if (st != LOSSC_OK)
            rc = cli_fail("%s", lossc_loss_error(loss));
    }
    double moved = rc == CLI_OK ? bytes_of(r.in, r.nin) + bytes_of(r.out, r.nout) : 0;
    if (rc == CLI_OK) {
        /* the f64 interpreter allocates every node: skip the full-size reference when huge */
        bool full_ref = big * (double)loss->bwd->g->nnodes < 4e8;
        int crc = demo_check(a, loss, fe, dims, full_ref);
        printf("\ntimings\n");
        printf("  compile          %8.2f ms  (forward and forward+backward kernels; cache: %lld "
               "hit%s, %lld miss%s)\n",
               lossc_loss_compile_ms(loss), (long long)hits, hits == 1 ? "" : "s",
               (long long)misses, misses == 1 ? "" : "es");
        printf("  forward          %8.3f ms  (median of %d)\n", tf, reps_f);
        printf("  forward+backward %8.3f ms  (median of %d)\n", tb, reps_b);
        printf("  memory moved     %8.1f MB  -> %.1f GB/s (inputs read, outputs and gradients "
               "written, once each)\n",
               moved / 1e6, tb > 0 ? moved / 1e6 / tb : 0.0);
        rc = crc;
    }
    run_free(&r);
    lossc_ctx_free(ctx);
    return rc;
}

/* ---- gradcheck -------------------------------------------------------------------- */

int cli_cmd_gradcheck(const cli_args *a)
{
    lossc_ctx *ctx;
    lossc_loss *loss;
    if (cli_compile(a, LOSSC_KERNEL_BACKWARD, false, &ctx, &loss) != CLI_OK)
        return CLI_FAIL;
    const ir_graph *fe = loss->fe;
    int64_t dims[IR_MAX_DIMS];
    int rc = cli_pick_dims(a, fe, a->n ? a->n : 5, 4, dims);
    run r = {0};
    if (rc == CLI_OK)
        rc = setup_run(a, loss, fe, dims, a->seed, &r);
    /* 1. the autodiff pass, in the interpreter, at the same point */
    ad_gradcheck_report rep = {0};
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    double **data = sup_calloc((size_t)fe->ninputs + 1, sizeof *data);
    bool ad_ok = false;
    if (rc == CLI_OK) {
        for (int i = 0; i < fe->ninputs; i++) {
            data[i] = sup_malloc(sizeof(double) * (size_t)(r.in[i].count + 1));
            for (int64_t k = 0; k < r.in[i].count; k++)
                data[i][k] = load(&r.in[i], k);
            if (fe->inputs[i].kind == IR_IN_SCALAR) { /* what the kernel will see */
                const rt_slot *s = rt_find_input(loss, fe->inputs[i].name);
                if (s && s->has_value)
                    data[i][0] = s->value;
            }
        }
        o.seed = a->seed;
        o.dim_sizes = dims;
        o.data = (const double *const *)data;
        strbuf err, out;
        sb_init(&err);
        sb_init(&out);
        strbuf sd;
        sb_init(&sd);
        format_dims(&sd, fe, dims);
        printf("gradcheck %s at a random point (%s, seed %llu)\n\n", fe->name, sb_str(&sd),
               (unsigned long long)a->seed);
        sb_free(&sd);
        if (!ad_gradcheck(fe, &o, &rep, &err)) {
            rc = cli_fail("gradcheck: %s", sb_str(&err));
        } else {
            ad_gradcheck_format(fe, &o, &rep, &out);
            printf("autodiff (f64 interpreter) vs central finite differences:\n%s\n",
                   sb_str(&out));
            ad_ok = rep.pass;
            ad_gradcheck_report_free(&rep);
        }
        sb_free(&err);
        sb_free(&out);
    }
    /* 2. the compiled kernel */
    int kernel_ok = 0;
    if (rc == CLI_OK) {
        const lossc_gradcheck_result *res;
        int n;
        if (lossc_gradcheck(loss, -1, a->seed, 0, -1, &res, &n, &kernel_ok) != LOSSC_OK)
            rc = cli_fail("gradcheck: %s", lossc_loss_error(loss));
        else {
            printf("compiled kernel vs f64 reference and finite differences:\n");
            for (int i = 0; i < n; i++)
                printf("  %-12s max abs %.2e  max rel %.2e (reference), max abs %.2e  max rel "
                       "%.2e (finite differences)  %s\n",
                       res[i].input, res[i].ref_max_abs, res[i].ref_max_rel, res[i].fd_max_abs,
                       res[i].fd_max_rel, res[i].passed ? "ok" : "FAILED");
            printf("kernel gradcheck: %s\n", kernel_ok ? "pass" : "FAIL");
        }
    }
    for (int i = 0; i < fe->ninputs; i++)
        sup_free(data[i]);
    sup_free(data);
    run_free(&r);
    lossc_ctx_free(ctx);
    if (rc != CLI_OK)
        return rc;
    return ad_ok && kernel_ok ? CLI_OK : CLI_FAIL;
}
