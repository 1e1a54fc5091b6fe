/* test_random_programs.c - random loss programs, compiled to f32 kernels and
 * compared with the f64 reference interpreter on every gradient element.
 *
 * tests/passes/test_random.c checks the passes on random graphs through the
 * interpreter alone; this one goes through everything after them: fusion's
 * rewrites (split sums, softmax quotients), the planner, codegen's vector
 * loops and remainders, across- and along-rows bodies, chunks and threads.
 * Each program is source text, as a user writes it, built by a seeded
 * random choice among elementwise functions kept inside their domains
 * (log(1 + a^2), sqrt(1 + a^2), exp(tanh(a))), arithmetic, comparisons and
 * where, row and column reductions (sum, mean, max, logsumexp, norm),
 * softmax and log_softmax, over inputs x, y: f32[N, C], v: f32[N], w: f32[C]
 * and a scalar s. A failure prints the program.
 *
 * Sizes: N and C from {3, 17, 64} and {2, 5, 37}: rows shorter and longer
 * than a vector, remainders, one chunk and several. Inputs uniform in
 * [-2, 2], a third of the programs times 40 (saturated softmax, sigmoid and
 * tanh). The tolerance: lossc_gradcheck's (1e-3 of the largest reference
 * gradient of the input), or an error below 1e-6 (divided by N C for a
 * mean), about 16 f32 ulps of a term of O(1), times the terms each element
 * of the gradient sums (C for v[N], N C for s). A wrong kernel (a lane, a
 * chunk, a rewrite) misses by far more, while formulas that cancel in f32
 * (a saturated softmax's p (q - sum(q p))) legitimately leave an error of a
 * few ulps of their terms in a gradient much smaller than them. The accuracy of such edge cases is
 * tests/stability's. LOSSC_RANDOM_PROGRAMS sets the count (default 40).
 */
#include "testutil.h"

#include "runtime/lossc.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>


typedef struct gen {
    uint64_t s;
    char *buf;
    size_t len, cap;
} gen;

static uint64_t next(gen *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int pick(gen *g, int n) { return (int)(next(g) % (uint64_t)n); }

static void put(gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (g->len + (size_t)n + 1 > g->cap) {
        g->cap = 2 * (g->len + (size_t)n + 1);
        g->buf = realloc(g->buf, g->cap);
    }
    va_start(ap, fmt);
    vsnprintf(g->buf + g->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    g->len += (size_t)n;
}

/* Dims of a value: bit 0 N, bit 1 C. */
enum { DN = 1, DC = 2 };

static void expr(gen *g, int want, int depth);

/* Append template t, each '@' an expression over want, each '#' one over a
 * random part of want (broadcast against the rest). */
static void fill_template(gen *g, const char *t, int want, int depth)
{
    for (const char *p = t; *p; p++) {
        if (*p == '@' || *p == '#')
            expr(g, *p == '@' ? want : want & (int)next(g), depth - 1);
        else
            put(g, "%c", *p);
    }
}

/* Functions of a value over any dims, kept inside their domains. */
static const char *const FORMS[] = {
    "exp(tanh(@))", "log(1 + (@) ^ 2)", "sqrt(1 + (@) ^ 2)", "sigmoid(@)", "softplus(@)",
    "tanh(@)", "relu(@)", "abs(@)", "(@ / (1 + (#) ^ 2))", "where(@ > #, @, #)", "max(@, #)",
    "clamp(@, min=-1, max=2)",
};

/* Append an expression over dims `want` (exactly), `depth` levels deep. */
static void expr(gen *g, int want, int depth)
{
    if (depth == 0 || pick(g, 5) == 0) {
        static const char *leaf[4] = {"s", "v", "w", "x"}; /* by dims: {}, N, C, NC */
        if (want == (DN | DC) && pick(g, 2))
            put(g, "y");
        else
            put(g, "%s", leaf[want]);
        return;
    }
    int k = pick(g, 12);
    if (k < 2) { /* a binary operator over sub-dims whose union is want */
        static const char *op[] = {" + ", " - ", " * "};
        int a = want & (int)next(g), b = (want & ~a) | (want & (int)next(g));
        put(g, "(");
        expr(g, a, depth - 1);
        put(g, "%s", op[pick(g, 3)]);
        expr(g, b, depth - 1);
        put(g, ")");
    } else if (k == 2 && want != (DN | DC)) { /* reduce the dim want lacks */
        static const char *r[] = {"sum", "mean", "max", "logsumexp", "norm"};
        int axis = want & DN ? DC : DN;
        put(g, "%s(", r[pick(g, 5)]);
        expr(g, want | axis, depth - 1);
        put(g, ", axis=%s)", axis == DN ? "N" : "C");
    } else if (k == 3 && (want & DC)) {
        fill_template(g, pick(g, 2) ? "softmax(@, axis=C)" : "log_softmax(@, axis=C)", want,
                      depth);
    } else {
        fill_template(g, FORMS[pick(g, (int)(sizeof FORMS / sizeof FORMS[0]))], want, depth);
    }
}

static DLTensor tensor(void *data, int ndim, int64_t *shape)
{
    return (DLTensor){.data = data, .device = {kDLCPU, 0}, .ndim = ndim,
                      .dtype = {kDLFloat, 32, 1}, .shape = shape};
}

/* Uniform in [-2, 2] times scale. */
static void fill(gen *g, float *p, int64_t n, double scale)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(((double)(next(g) >> 11) * 0x1p-53 * 4 - 2) * scale);
}

/* Compile program `src`, run the check at N x C; false (and a message) on
 * any failure. */
static bool check_program(lossc_ctx *ctx, const char *src, gen *g, int64_t N, int64_t C,
                          double scale, double atol)
{
    lossc_loss *l;
    if (lossc_compile(ctx, src, NULL, &l) != LOSSC_OK) {
        print_error("does not compile:\n%s\n%s\n", src, lossc_ctx_error(ctx));
        return false;
    }
    size_t nc = (size_t)(N * C);
    float *x = malloc(sizeof(float) * nc), *y = malloc(sizeof(float) * nc);
    float *v = malloc(sizeof(float) * (size_t)N), *w = malloc(sizeof(float) * (size_t)C);
    fill(g, x, N * C, scale), fill(g, y, N * C, scale), fill(g, v, N, scale), fill(g, w, C, scale);
    int64_t snc[2] = {N, C}, sn[1] = {N}, sc[1] = {C};
    DLTensor tx = tensor(x, 2, snc), ty = tensor(y, 2, snc), tv = tensor(v, 1, sn),
             tw = tensor(w, 1, sc);
    bool ok = !lossc_bind_input(l, "x", &tx) && !lossc_bind_input(l, "y", &ty) &&
              !lossc_bind_input(l, "v", &tv) && !lossc_bind_input(l, "w", &tw);
    const lossc_gradcheck_result *r = NULL;
    int nr = 0, passed = 0;
    if (!ok || lossc_gradcheck(l, 0, 1, 0, -1, &r, &nr, &passed) != LOSSC_OK) {
        print_error("cannot run:\n%s\n%s\n", src, lossc_loss_error(l));
        ok = false;
    } else if (!passed) {
        /* or within atol per term: a gradient summing n terms of the
         * broadcast input over N C / count elements */
        passed = 1;
        for (int i = 0; i < nr; i++)
            passed &= r[i].passed ||
                      r[i].ref_max_abs <= atol * (double)(N * C) / (double)r[i].count;
    }
    if (ok && !passed) {
        print_error("N = %lld, C = %lld: the kernel's gradient differs from the f64 "
                    "reference:\n%s\n", (long long)N, (long long)C, src);
        for (int i = 0; i < nr; i++)
            print_error("  %s: max abs %.3g, max rel %.3g%s\n", r[i].input, r[i].ref_max_abs,
                        r[i].ref_max_rel, r[i].passed ? "" : "  FAILED");
        ok = false;
    }
    lossc_loss_free(l);
    free(x), free(y), free(v), free(w);
    return ok;
}

static void test_random_programs(void **state)
{
    (void)state;
    const char *env = getenv("LOSSC_RANDOM_PROGRAMS");
    int count = env ? atoi(env) : 40;
    static const int64_t Ns[] = {3, 17, 64}, Cs[] = {2, 5, 37};
    lossc_ctx *ctx;
    lossc_ctx_opts co = {.threads = 2};
    assert_int_equal(lossc_ctx_new(&ctx, &co), LOSSC_OK);
    gen g = {.s = 20261124};
    int failed = 0;
    for (int i = 0; i < count; i++) {
        g.len = 0;
        bool mean = pick(&g, 2);
        put(&g, "loss r(x: f32[N, C], y: f32[N, C], v: f32[N], w: f32[C], s: f32 = 0.7) {\n"
                "    return %s(", mean ? "mean" : "sum");
        expr(&g, DN | DC, 2 + pick(&g, 3));
        put(&g, ")\n}\n");
        int64_t N = Ns[pick(&g, 3)], C = Cs[pick(&g, 3)];
        double scale = pick(&g, 3) ? 1 : 40;
        /* ~16 f32 ulps of a term of O(1) before the mean's 1 / (N C) */
        double atol = 1e-6 / (mean ? (double)(N * C) : 1.0);
        if (!check_program(ctx, g.buf, &g, N, C, scale, atol)) /* draws data, appends nothing */
            failed++;
    }
    free(g.buf);
    lossc_ctx_free(ctx);
    if (failed)
        fail_msg("%d of %d random programs failed (printed above)", failed, count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_programs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
