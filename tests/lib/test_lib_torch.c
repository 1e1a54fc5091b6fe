/* test_lib_torch.c - the loss library against PyTorch.
 *
 *     test_lib_torch tests/lib/cases/GROUP.cases
 *
 * Every case of the file (written by gen_torch_cases.py: a one-line source
 * calling a library loss, its inputs, and PyTorch's loss and gradients in
 * float64) is checked four ways:
 *   f32 kernels   lossc_compile + lossc_forward_backward (the JIT'd code) at
 *                 float32: within 1e-5 relative or 1e-6 absolute of PyTorch;
 *   f64 kernels   the same at float64: within 1e-10 relative or 1e-12 absolute
 *                 (for the "mean" variant of a case given with every reduction;
 *                 under the sanitizers no f64 kernels, f32 for "mean" only);
 *   interpreter   the frontend + pass pipeline in the f64 reference
 *                 interpreter: same tolerance as the f64 kernels;
 *   gradcheck     ad_gradcheck at the case's point in f64 (central finite
 *                 differences, torch.autograd.gradcheck's tolerances), unless
 *                 the case says `nogradcheck` (kinks, clamps, NaN).
 * NaN must match NaN and an infinity the same infinity. The loss and the
 * gradients listed in the case are compared; for a loss that is not a scalar
 * the gradients are those of its sum (an upstream gradient of ones).
 *
 * A case may be skipped for one way with a reason naming the bug (SKIPS
 * below); every failure is listed before the test fails.
 */
#include "testutil.h"

#include "frontend/frontend.h"
#include "passes/gradcheck.h"
#include "passes/passes.h"
#include "runtime/lossc.h"

#include <stdlib.h>

#define MAX_ITEMS 16

typedef struct tensor_data {
    char name[64];
    char kind; /* 'f' float (the case's dtype), 'i' i64 */
    int ndim;
    int64_t shape[LOSSC_MAX_RANK];
    int64_t count;
    double *v;
} tensor_data;

typedef struct test_case {
    char name[160];
    char *src; /* with {T} for the float dtype */
    char *settings[MAX_ITEMS];
    int nsettings;
    char dim_names[MAX_ITEMS][32];
    int64_t dim_sizes[MAX_ITEMS];
    int ndims;
    tensor_data in[MAX_ITEMS];
    int nin;
    tensor_data loss;
    tensor_data grad[MAX_ITEMS];
    int ngrad;
    bool gradcheck;
} test_case;

/* Ways a case can be skipped, each with the bug that makes it fail. */
typedef struct skip {
    const char *name; /* case name */
    const char *way;  /* "f32", "f64", "interp" or "gradcheck" */
    const char *why;
} skip;

static const skip SKIPS[] = {
    {NULL, NULL, NULL},
};

/* A skip names one case, or with a final star every case with that prefix. */
static int nskipped;

static const char *skipped(const test_case *c, const char *way)
{
    for (const skip *s = SKIPS; s->name; s++) {
        size_t n = strlen(s->name);
        bool match = s->name[n - 1] == '*' ? strncmp(s->name, c->name, n - 1) == 0
                                           : strcmp(s->name, c->name) == 0;
        if (match && strcmp(s->way, way) == 0) {
            nskipped++;
            return s->why;
        }
    }
    return NULL;
}

/* ---- reading the cases ---------------------------------------------------------------- */

static void free_case(test_case *c)
{
    free(c->src);
    for (int i = 0; i < c->nsettings; i++)
        free(c->settings[i]);
    for (int i = 0; i < c->nin; i++)
        free(c->in[i].v);
    for (int i = 0; i < c->ngrad; i++)
        free(c->grad[i].v);
    free(c->loss.v);
    memset(c, 0, sizeof *c);
}

/* "NDIM D0 D1 ... : v v v" after the name (and kind) */
static bool read_array(char *p, tensor_data *t)
{
    char *end;
    t->ndim = (int)strtol(p, &end, 10);
    if (end == p || t->ndim < 0 || t->ndim > LOSSC_MAX_RANK)
        return false;
    p = end;
    t->count = 1;
    for (int k = 0; k < t->ndim; k++) {
        t->shape[k] = strtoll(p, &end, 10);
        if (end == p)
            return false;
        t->count *= t->shape[k];
        p = end;
    }
    p = strchr(p, ':');
    if (!p)
        return false;
    p++;
    t->v = calloc((size_t)(t->count ? t->count : 1), sizeof *t->v);
    for (int64_t i = 0; i < t->count; i++) {
        t->v[i] = strtod(p, &end);
        if (end == p)
            return false;
        if (t->kind == 'f')
            t->v[i] = (double)(float)t->v[i]; /* float inputs are float32 values */
        p = end;
    }
    return true;
}

/* Unescape "\n" in a source line. */
static char *read_source(const char *p)
{
    char *s = malloc(strlen(p) + 1), *o = s;
    for (; *p; p++) {
        if (p[0] == '\\' && p[1] == 'n') {
            *o++ = '\n';
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return s;
}

static bool parse_line(test_case *c, char *line)
{
    char word[64], name[64];
    int n = 0;
    if (sscanf(line, "%63s %n", word, &n) != 1)
        return true;
    char *rest = line + n;
    if (strcmp(word, "src") == 0) {
        c->src = read_source(rest);
    } else if (strcmp(word, "set") == 0 && c->nsettings < MAX_ITEMS) {
        c->settings[c->nsettings++] = strdup(rest);
    } else if (strcmp(word, "dim") == 0 && c->ndims < MAX_ITEMS) {
        if (sscanf(rest, "%31s %lld", c->dim_names[c->ndims],
                   (long long *)&c->dim_sizes[c->ndims]) != 2)
            return false;
        c->ndims++;
    } else if (strcmp(word, "in") == 0 && c->nin < MAX_ITEMS) {
        tensor_data *t = &c->in[c->nin++];
        char kind;
        if (sscanf(rest, "%63s %c %n", name, &kind, &n) != 2)
            return false;
        snprintf(t->name, sizeof t->name, "%s", name);
        t->kind = kind;
        return read_array(rest + n, t);
    } else if (strcmp(word, "loss") == 0) {
        c->loss.kind = 'o';
        return read_array(rest, &c->loss);
    } else if (strcmp(word, "grad") == 0 && c->ngrad < MAX_ITEMS) {
        tensor_data *t = &c->grad[c->ngrad++];
        if (sscanf(rest, "%63s %n", name, &n) != 1)
            return false;
        snprintf(t->name, sizeof t->name, "%s", name);
        t->kind = 'o';
        return read_array(rest + n, t);
    } else if (strcmp(word, "nogradcheck") == 0) {
        c->gradcheck = false;
    } else if (word[0] != '#') {
        return false;
    }
    return true;
}

/* Read the next case from f; false at the end of the file. */
static bool next_case(FILE *f, test_case *c, char **buf, size_t *cap)
{
    memset(c, 0, sizeof *c);
    c->gradcheck = true;
    bool in_case = false;
    ssize_t len;
    while ((len = getline(buf, cap, f)) > 0) {
        char *line = *buf;
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        if (strncmp(line, "case ", 5) == 0) {
            snprintf(c->name, sizeof c->name, "%s", line + 5);
            in_case = true;
        } else if (strcmp(line, "end") == 0) {
            return true;
        } else if (in_case && !parse_line(c, line)) {
            fail_msg("%s: cannot read the line \"%.60s...\"", c->name, line);
        }
    }
    if (in_case)
        fail_msg("%s: the file ends inside the case", c->name);
    return false;
}

/* ---- comparing ---------------------------------------------------------------------------- */

typedef struct report {
    int failures;
    int checks;
} report;

/* NaN equals NaN, an infinity the same infinity; else within rtol or atol. */
static bool near(double got, double want, double rtol, double atol)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got))
        return got == want;
    double e = fabs(got - want);
    return e <= atol || e <= rtol * fabs(want);
}

static void compare(report *r, const test_case *c, const char *way, const char *what,
                    const double *got, const tensor_data *want, double rtol, double atol)
{
    r->checks++;
    for (int64_t i = 0; i < want->count; i++)
        if (!near(got[i], want->v[i], rtol, atol)) {
            print_error("%s [%s] %s: element %lld is %.17g, PyTorch says %.17g (|error| %.3g)\n",
                        c->name, way, what, (long long)i, got[i], want->v[i],
                        fabs(got[i] - want->v[i]));
            r->failures++;
            return;
        }
}

static void failed(report *r, const test_case *c, const char *way, const char *msg)
{
    print_error("%s [%s]: %s\n", c->name, way, msg);
    r->failures++;
    r->checks++;
}

/* The source with {T} replaced by the dtype name. */
static char *source_for(const test_case *c, const char *dt)
{
    strbuf sb;
    sb_init(&sb);
    for (const char *p = c->src; *p;) {
        const char *t = strstr(p, "{T}");
        if (!t) {
            sb_puts(&sb, p);
            break;
        }
        sb_putn(&sb, p, (size_t)(t - p));
        sb_puts(&sb, dt);
        p = t + 3;
    }
    return sb_take(&sb);
}

static const tensor_data *find_input(const test_case *c, const char *name)
{
    for (int i = 0; i < c->nin; i++)
        if (strcmp(c->in[i].name, name) == 0)
            return &c->in[i];
    return NULL;
}

/* ---- the kernels ---------------------------------------------------------------------------- */

/* A buffer of `count` elements of dtype dt (f32 or f64 for floats). */
static void *convert(const tensor_data *t, bool f64)
{
    size_t n = (size_t)(t->count ? t->count : 1);
    if (t->kind == 'i') {
        int64_t *p = calloc(n, sizeof *p);
        for (int64_t i = 0; i < t->count; i++)
            p[i] = (int64_t)t->v[i];
        return p;
    }
    if (f64) {
        double *p = calloc(n, sizeof *p);
        memcpy(p, t->v, sizeof *p * (size_t)t->count);
        return p;
    }
    float *p = calloc(n, sizeof *p);
    for (int64_t i = 0; i < t->count; i++)
        p[i] = (float)t->v[i];
    return p;
}

static double *to_double(const void *p, int64_t count, bool f64)
{
    double *d = calloc((size_t)(count ? count : 1), sizeof *d);
    for (int64_t i = 0; i < count; i++)
        d[i] = f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
    return d;
}

static DLTensor dl(void *data, DLDataType dt, int ndim, const int64_t *shape)
{
    return (DLTensor){.data = data, .device = {kDLCPU, 0}, .ndim = ndim, .dtype = dt,
                      .shape = (int64_t *)shape};
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

static void run_kernels(lossc_ctx *ctx, report *r, const test_case *c, bool f64)
{
    const char *way = f64 ? "f64 kernels" : "f32 kernels";
    if (skipped(c, f64 ? "f64" : "f32"))
        return;
    /* JIT compiling is most of this test's time: the f64 kernels are checked
     * for one reduction of each case ("mean"), the f32 ones for all three.
     * Under the sanitizers (where LLVM's allocations are intercepted and
     * three times slower) the point is our own memory errors, not the
     * numbers: the f32 kernels of one reduction per case, no f64 kernels. */
    bool other_reduction = ends_with(c->name, " sum") || ends_with(c->name, " none");
#ifdef LOSSC_SANITIZE
    if (f64 || other_reduction)
        return;
#endif
    if (f64 && other_reduction)
        return;
    double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
    DLDataType fdt = {kDLFloat, f64 ? 64 : 32, 1}, idt = {kDLInt, 64, 1};
    char *src = source_for(c, f64 ? "f64" : "f32");
    const char *wrt[MAX_ITEMS];
    for (int i = 0; i < c->ngrad; i++)
        wrt[i] = c->grad[i].name;
    lossc_compile_opts o = {.settings = (const char *const *)c->settings,
                            .nsettings = c->nsettings, .wrt = wrt, .nwrt = c->ngrad,
                            .filename = "case.loss",
                            .kernels = c->ngrad ? LOSSC_KERNEL_BACKWARD : LOSSC_KERNEL_FORWARD};
    lossc_loss *l = NULL;
    if (lossc_compile(ctx, src, &o, &l) != LOSSC_OK) {
        failed(r, c, way, lossc_ctx_error(ctx));
        free(src);
        return;
    }
    free(src);
    void *bufs[MAX_ITEMS] = {0}, *gbufs[MAX_ITEMS] = {0}, *lbuf = NULL;
    DLTensor ts[MAX_ITEMS], gts[MAX_ITEMS], lt;
    bool ok = true;
    for (int i = 0; ok && i < c->nin; i++) {
        const tensor_data *t = &c->in[i];
        lossc_info info = {0};
        for (int k = 0; k < lossc_num_inputs(l); k++)
            if (lossc_input_info(l, k, &info) == LOSSC_OK && strcmp(info.name, t->name) == 0)
                break;
        if (info.role == LOSSC_SCALAR) {
            ok = lossc_bind_scalar(l, t->name, t->v[0]) == LOSSC_OK;
            continue;
        }
        bufs[i] = convert(t, f64);
        ts[i] = dl(bufs[i], t->kind == 'i' ? idt : fdt, t->ndim, t->shape);
        ok = lossc_bind_input(l, t->name, &ts[i]) == LOSSC_OK;
    }
    int ndim = 0;
    int64_t shape[LOSSC_MAX_RANK];
    if (ok && lossc_shape_of(l, "loss", &ndim, shape) == LOSSC_OK) {
        bool same = ndim == c->loss.ndim;
        for (int k = 0; same && k < ndim; k++)
            same = shape[k] == c->loss.shape[k];
        if (!same) {
            failed(r, c, way, "the loss has another shape than PyTorch's");
            ok = false;
        }
    } else {
        ok = false;
    }
    if (ok) {
        lbuf = calloc((size_t)(c->loss.count ? c->loss.count : 1), f64 ? 8 : 4);
        lt = dl(lbuf, fdt, c->loss.ndim, c->loss.shape);
        ok = lossc_bind_output(l, "loss", &lt) == LOSSC_OK;
    }
    for (int i = 0; ok && i < c->ngrad; i++) {
        const tensor_data *in = find_input(c, c->grad[i].name);
        gbufs[i] = calloc((size_t)(in->count ? in->count : 1), f64 ? 8 : 4);
        gts[i] = dl(gbufs[i], fdt, in->ndim, in->shape);
        ok = lossc_bind_grad(l, in->name, &gts[i]) == LOSSC_OK;
    }
    if (ok)
        ok = (c->ngrad ? lossc_forward_backward(l) : lossc_forward(l)) == LOSSC_OK;
    if (!ok) {
        if (lossc_loss_error(l)[0])
            failed(r, c, way, lossc_loss_error(l));
    } else {
        double *got = to_double(lbuf, c->loss.count, f64);
        compare(r, c, way, "loss", got, &c->loss, rtol, atol);
        free(got);
        for (int i = 0; i < c->ngrad; i++) {
            char what[80];
            snprintf(what, sizeof what, "grad_%s", c->grad[i].name);
            got = to_double(gbufs[i], c->grad[i].count, f64);
            compare(r, c, way, what, got, &c->grad[i], rtol, atol);
            free(got);
        }
    }
    for (int i = 0; i < MAX_ITEMS; i++) {
        free(bufs[i]);
        free(gbufs[i]);
    }
    free(lbuf);
    lossc_loss_free(l);
}

/* ---- the interpreter and the gradient checker ------------------------------------------------ */

/* The frontend graph of the case in f64 (NULL after reporting). */
static ir_graph *compile_f64(report *r, const test_case *c, const char *way)
{
    char *src = source_for(c, "f64");
    fe_setting set[MAX_ITEMS];
    char names[MAX_ITEMS][64];
    for (int i = 0; i < c->nsettings; i++) {
        const char *eq = strchr(c->settings[i], '=');
        snprintf(names[i], sizeof names[i], "%.*s", (int)(eq - c->settings[i]), c->settings[i]);
        set[i] = (fe_setting){names[i], eq + 1, false};
    }
    diag_set ds;
    diag_init(&ds);
    int f = diag_add_file(&ds, "case.loss", src, strlen(src));
    fe_options o = {.settings = set, .nsettings = c->nsettings};
    ir_graph *g = fe_compile(&ds, f, &o);
    if (!g) {
        strbuf out;
        sb_init(&out);
        sb_puts(&out, "");
        diag_format_all(&ds, &out);
        failed(r, c, way, sb_str(&out));
        sb_free(&out);
    }
    diag_free(&ds);
    free(src);
    return g;
}

static void sizes_of(const test_case *c, const ir_graph *g, int64_t *sizes)
{
    for (int d = 0; d < IR_MAX_DIMS; d++)
        sizes[d] = d < g->ndims ? g->dims[d].size : -1;
    for (int i = 0; i < c->ndims; i++) {
        int d = ir_dim_find(g, c->dim_names[i]);
        if (d >= 0)
            sizes[g->dims[d].root] = c->dim_sizes[i];
    }
}

static uint64_t wrt_bits(const test_case *c, const ir_graph *g)
{
    uint64_t w = 0;
    for (int i = 0; i < c->ngrad; i++) {
        int k = ir_input_find(g, c->grad[i].name);
        if (k >= 0)
            w |= (uint64_t)1 << k;
    }
    return w;
}

static void run_interp(report *r, const test_case *c)
{
    const char *way = "interpreter";
    if (skipped(c, "interp"))
        return;
    ir_graph *fe = compile_f64(r, c, way);
    if (!fe)
        return;
    int64_t sizes[IR_MAX_DIMS];
    sizes_of(c, fe, sizes);
    strbuf err;
    sb_init(&err);
    pass_options po = {.backward = c->ngrad > 0, .wrt = wrt_bits(c, fe), .verify = true};
    ir_graph *g = pass_pipeline(fe, &po, &err);
    if (!g) {
        failed(r, c, way, sb_str(&err));
        sb_free(&err);
        return;
    }
    const double *inputs[64] = {0};
    double *ones = calloc((size_t)(c->loss.count ? c->loss.count : 1), sizeof *ones);
    for (int64_t i = 0; i < (c->loss.count ? c->loss.count : 1); i++)
        ones[i] = 1;
    for (int i = 0; i < g->ninputs; i++) {
        const tensor_data *t = find_input(c, g->inputs[i].name);
        inputs[i] = g->inputs[i].kind == IR_IN_DLOSS ? ones : t ? t->v : NULL;
    }
    double *out[64] = {0};
    if (!ir_interp(g, sizes, inputs, out, &err)) {
        failed(r, c, way, sb_str(&err));
    } else {
        compare(r, c, way, "loss", out[ir_output_find(g, "loss")], &c->loss, 1e-10, 1e-12);
        for (int i = 0; i < c->ngrad; i++) {
            char what[80];
            snprintf(what, sizeof what, "grad_%s", c->grad[i].name);
            int k = ir_output_find(g, what);
            if (k < 0)
                failed(r, c, way, "a gradient output is missing");
            else
                compare(r, c, way, what, out[k], &c->grad[i], 1e-10, 1e-12);
        }
    }
    for (int i = 0; i < g->noutputs; i++)
        sup_free(out[i]);
    free(ones);
    sb_free(&err);
    ir_graph_free(g);
}

static void run_gradcheck(report *r, const test_case *c)
{
    const char *way = "gradcheck";
    if (!c->gradcheck || !c->ngrad || skipped(c, "gradcheck"))
        return;
    ir_graph *fe = compile_f64(r, c, way);
    if (!fe)
        return;
    int64_t sizes[IR_MAX_DIMS];
    sizes_of(c, fe, sizes);
    const double *data[64] = {0};
    for (int i = 0; i < fe->ninputs; i++) {
        const tensor_data *t = find_input(c, fe->inputs[i].name);
        data[i] = t ? t->v : NULL;
    }
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    o.dim_sizes = sizes;
    o.data = data;
    o.wrt = wrt_bits(c, fe);
    ad_gradcheck_report rep;
    strbuf err;
    sb_init(&err);
    r->checks++;
    if (!ad_gradcheck(fe, &o, &rep, &err)) {
        failed(r, c, way, sb_str(&err));
    } else {
        if (!rep.pass) {
            sb_clear(&err);
            ad_gradcheck_format(fe, &o, &rep, &err);
            failed(r, c, way, sb_str(&err));
        }
        ad_gradcheck_report_free(&rep);
    }
    sb_free(&err);
    ir_graph_free(fe);
}

/* ---- the test ----------------------------------------------------------------------------------- */

static const char *cases_path;

static void test_against_torch(void **state)
{
    (void)state;
    FILE *f = fopen(cases_path, "r");
    if (!f)
        fail_msg("cannot open %s", cases_path);
    lossc_ctx *ctx;
    lossc_ctx_opts co = {.threads = 1};
    assert_int_equal(lossc_ctx_new(&ctx, &co), LOSSC_OK);
    report r = {0};
    int n = 0;
    char *buf = NULL;
    size_t cap = 0;
    test_case c;
    while (next_case(f, &c, &buf, &cap)) {
        n++;
        run_kernels(ctx, &r, &c, false);
        run_kernels(ctx, &r, &c, true);
        run_interp(&r, &c);
        run_gradcheck(&r, &c);
        free_case(&c);
    }
    free(buf);
    fclose(f);
    lossc_ctx_free(ctx);
    printf("%s: %d cases, %d checks, %d failed, %d skipped (see SKIPS)\n", cases_path, n,
           r.checks, r.failures, nskipped);
    assert_true(n > 0);
    if (r.failures)
        fail_msg("%d of %d checks differ from PyTorch", r.failures, r.checks);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/lib/cases/GROUP.cases\n", argv[0]);
        return 2;
    }
    cases_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
