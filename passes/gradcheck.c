/* gradcheck.c - the gradient checker (see gradcheck.h for the contract).
 *
 * Everything runs in the f64 interpreter, so the only error in the reference
 * is the finite difference's own: with h = 1e-6 * max(1, |x|) the truncation
 * error is about h^2 |f'''| / 6 and the rounding error about 1e-16 |f| / h,
 * both far below the default tolerances for values of order one.
 */
#include "passes/gradcheck.h"
#include "passes/passes.h"

#include <math.h>
#include <string.h>

void ad_gradcheck_defaults(ad_gradcheck_opts *o)
{
    *o = (ad_gradcheck_opts){.seed = 1, .eps = 1e-6, .atol = 1e-5, .rtol = 1e-3};
}

/* ---- random points ------------------------------------------------------------ */

static uint64_t next_u64(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return (double)(next_u64(s) >> 11) * 0x1p-53; }

static double normal(uint64_t *s) /* Box-Muller */
{
    double u = uniform01(s), v = uniform01(s);
    return sqrt(-2 * log(u > 0 ? u : 0x1p-53)) * cos(6.283185307179586 * v);
}

/* ---- the check ------------------------------------------------------------------- */

typedef struct checker {
    const ir_graph *g;
    const ad_gradcheck_opts *o;
    int64_t sizes[IR_MAX_DIMS];
    double **data; /* per input of g, then the upstream gradient */
    int64_t *count;
    ir_graph *fwd; /* the reference: g with grad() expanded */
    int loss;      /* output index of the loss in fwd */
    int64_t nloss; /* elements of the loss */
    strbuf *err;
} checker;

static int64_t volume(const checker *c, ir_dimset s)
{
    int64_t n = 1;
    IR_DIMSET_FOREACH(d, s)
        n *= c->sizes[d];
    return n;
}

static void choose_sizes(checker *c)
{
    const ir_graph *g = c->g;
    int k = 0;
    for (int d = 0; d < g->ndims; d++) {
        int r = g->dims[d].root;
        int64_t fixed = ir_dim_size(g, d);
        if (fixed >= 0)
            c->sizes[d] = fixed;
        else if (c->o->dim_sizes)
            c->sizes[d] = c->o->dim_sizes[r];
        else
            c->sizes[d] = r == d ? 3 + k++ % 4 : c->sizes[r];
    }
}

static void make_data(checker *c, uint64_t *rng)
{
    const ir_graph *g = c->g;
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        int64_t n = c->count[i] = volume(c, in->node->dims);
        double *x = c->data[i] = sup_malloc(sizeof(double) * (size_t)(n ? n : 1));
        const double *given = c->o->data ? c->o->data[i] : NULL;
        int dim = ir_dtype_is_int(in->dtype) ? ir_index_dim(g, i) : -1;
        for (int64_t j = 0; j < n; j++) {
            if (given)
                x[j] = given[j];
            else if (in->dtype == DT_BOOL)
                x[j] = next_u64(rng) >> 63;
            else if (ir_dtype_is_int(in->dtype))
                x[j] = (double)(next_u64(rng) % (uint64_t)(dim >= 0 ? c->sizes[dim] : 3));
            else if (in->kind == IR_IN_SCALAR && in->has_default)
                x[j] = in->default_value;
            else if (c->o->gen)
                x[j] = c->o->gen(c->o->gen_ud, g, i, j);
            else
                x[j] = normal(rng);
        }
    }
}

/* sum(dloss * loss) of the reference graph at c->data. */
static bool reference(checker *c, double *value)
{
    double **out = sup_calloc((size_t)c->fwd->noutputs + 1, sizeof *out);
    bool ok = ir_interp(c->fwd, c->sizes, (const double *const *)c->data, out, c->err);
    if (ok) {
        const double *dl = c->data[c->g->ninputs];
        double s = 0;
        for (int64_t j = 0; j < c->nloss; j++)
            s += dl[j] * out[c->loss][j];
        *value = s;
    }
    for (int i = 0; i < c->fwd->noutputs; i++)
        sup_free(out[i]);
    sup_free(out);
    return ok;
}

static void compare(checker *c, int i, const double *analytic, ad_gradcheck_input *r)
{
    const ad_gradcheck_opts *o = c->o;
    double *x = c->data[i], worst_excess = -INFINITY;
    r->pass = true;
    for (int64_t j = 0; j < c->count[i]; j++) {
        double x0 = x[j], h = o->eps * fmax(1, fabs(x0)), fp = 0, fm = 0;
        x[j] = x0 + h;
        bool ok = reference(c, &fp);
        x[j] = x0 - h;
        ok = ok && reference(c, &fm);
        x[j] = x0;
        double num = ok ? (fp - fm) / (2 * h) : NAN, a = analytic[j];
        double diff = fabs(a - num), scale = fmax(fabs(a), fabs(num));
        double rel = diff == 0 ? 0 : diff / scale;
        double excess = diff - (o->atol + o->rtol * fabs(num));
        if (isnan(diff))
            excess = INFINITY, diff = rel = INFINITY;
        r->max_abs = fmax(r->max_abs, diff);
        r->max_rel = fmax(r->max_rel, rel);
        if (excess > 0)
            r->pass = false;
        if (excess > worst_excess) {
            worst_excess = excess;
            r->worst = j;
            r->analytic = a;
            r->numeric = num;
        }
    }
}

static int find_grad(const ir_graph *bw, int input)
{
    for (int k = 0; k < bw->noutputs; k++)
        if (bw->outputs[k].kind == IR_OUT_GRAD && bw->outputs[k].input == input)
            return k;
    return -1;
}

static int find_loss(const ir_graph *g)
{
    for (int k = 0; k < g->noutputs; k++)
        if (g->outputs[k].kind == IR_OUT_LOSS)
            return k;
    return -1;
}

/* Evaluate the gradient graph and compare every checked input. */
static bool run_check(checker *c, const ir_graph *bw, uint64_t wrt, ad_gradcheck_report *r)
{
    const ir_graph *g = c->g;
    if (bw->ninputs != g->ninputs + 1) {
        sb_printf(c->err, "the gradient graph has %d inputs, want %d", bw->ninputs,
                  g->ninputs + 1);
        return false;
    }
    double **out = sup_calloc((size_t)bw->noutputs + 1, sizeof *out);
    bool ok = ir_interp(bw, c->sizes, (const double *const *)c->data, out, c->err) &&
              reference(c, &r->loss);
    int bl = find_loss(bw);
    if (ok && bl >= 0) {
        double s = 0;
        for (int64_t j = 0; j < c->nloss; j++)
            s += c->data[g->ninputs][j] * out[bl][j];
        r->loss_abs_err = fabs(s - r->loss);
        if (!(r->loss_abs_err <= c->o->atol + c->o->rtol * fabs(r->loss)))
            r->pass = false;
    }
    for (int i = 0; ok && i < g->ninputs; i++) {
        r->inputs[i].count = c->count[i];
        if (!((wrt >> i) & 1))
            continue;
        int k = find_grad(bw, i);
        if (k < 0) {
            sb_printf(c->err, "the gradient graph has no gradient for %s", g->inputs[i].name);
            ok = false;
            break;
        }
        r->inputs[i].checked = true;
        compare(c, i, out[k], &r->inputs[i]);
        r->pass = r->pass && r->inputs[i].pass;
    }
    for (int k = 0; k < bw->noutputs; k++)
        sup_free(out[k]);
    sup_free(out);
    return ok;
}

static bool setup(checker *c, ir_graph *g_copy, uint64_t *rng)
{
    const ir_graph *g = c->g;
    /* detach() is the identity for finite differences; found_inf() is false */
    ir_graph *expanded = pass_expand_grad(g_copy);
    if (!expanded) {
        sb_printf(c->err, "grad() could not be expanded: %s", ir_graph_error(g_copy));
        return false;
    }
    c->fwd = pass_strip_ad(expanded);
    if (!c->fwd)
        sb_printf(c->err, "%s", ir_graph_error(expanded));
    ir_graph_free(expanded);
    if (!c->fwd)
        return false;
    c->loss = find_loss(c->fwd);
    if (c->loss < 0) {
        sb_printf(c->err, "entry '%s' has no loss output", g->name);
        return false;
    }
    choose_sizes(c);
    make_data(c, rng);
    c->nloss = volume(c, c->fwd->outputs[c->loss].node->dims);
    double *dl = c->data[g->ninputs] = sup_malloc(sizeof(double) * (size_t)(c->nloss + 1));
    /* A scalar loss gets dloss = 1 (the plain gradient); otherwise a random
     * upstream gradient checks that it is honoured per element. */
    for (int64_t j = 0; j < c->nloss; j++)
        dl[j] = c->nloss == 1 && !c->fwd->outputs[c->loss].node->dims ? 1 : normal(rng);
    return true;
}

bool ad_gradcheck(const ir_graph *g, const ad_gradcheck_opts *o, ad_gradcheck_report *r,
                  strbuf *err)
{
    memset(r, 0, sizeof *r);
    r->ninputs = g->ninputs;
    r->inputs = sup_calloc((size_t)g->ninputs + 1, sizeof *r->inputs);
    r->pass = true;
    uint64_t wrt = o->wrt ? o->wrt : ad_default_wrt(g);
    if (!ad_check_wrt(g, wrt, err))
        return false;
    checker c = {.g = g, .o = o, .err = err};
    c.data = sup_calloc((size_t)g->ninputs + 2, sizeof *c.data);
    c.count = sup_calloc((size_t)g->ninputs + 2, sizeof *c.count);
    uint64_t rng = o->seed;
    ir_graph *copy = ir_rebuild(g, NULL, NULL), *bw = NULL;
    bool ok = setup(&c, copy, &rng);
    if (ok && !o->backward) {
        pass_options po = {.backward = true, .wrt = wrt, .verify = true};
        bw = pass_pipeline(ir_rebuild(g, NULL, NULL), &po, err);
        ok = bw != NULL;
    }
    ok = ok && run_check(&c, o->backward ? o->backward : bw, wrt, r);
    if (!ok)
        r->pass = false;
    ir_graph_free(bw);
    ir_graph_free(copy);
    ir_graph_free(c.fwd);
    for (int i = 0; i <= g->ninputs; i++)
        sup_free(c.data[i]);
    sup_free(c.data);
    sup_free(c.count);
    return ok;
}

void ad_gradcheck_report_free(ad_gradcheck_report *r)
{
    sup_free(r->inputs);
    memset(r, 0, sizeof *r);
}

void ad_gradcheck_format(const ir_graph *g, const ad_gradcheck_opts *o,
                         const ad_gradcheck_report *r, strbuf *out)
{
    for (int i = 0; i < r->ninputs && i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        const ad_gradcheck_input *ri = &r->inputs[i];
        sb_printf(out, "  %-12s %s", in->name, ir_dtype_name(in->dtype));
        if (in->ndim) {
            sb_putc(out, '[');
            for (int k = 0; k < in->ndim; k++)
                sb_printf(out, "%s%s", k ? ", " : "", g->dims[in->order[k]].name);
            sb_putc(out, ']');
        }
        if (!ri->checked) {
            sb_puts(out, "  not differentiated\n");
            continue;
        }
        sb_printf(out, "  max abs %.2e  max rel %.2e  %s", ri->max_abs, ri->max_rel,
                  ri->pass ? "ok" : "FAIL");
        if (!ri->pass)
            sb_printf(out, " (element %lld: analytic %.17g, numeric %.17g)",
                      (long long)ri->worst, ri->analytic, ri->numeric);
        sb_putc(out, '\n');
    }
    sb_printf(out, "  value        |compiled - reference| %.2e\n", r->loss_abs_err);
    sb_printf(out, "gradcheck: %s (atol %g, rtol %g, eps %g)\n", r->pass ? "pass" : "FAIL",
              o->atol, o->rtol, o->eps);
}
