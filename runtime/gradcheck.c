/* gradcheck.c - lossc_gradcheck: is the compiled kernel's gradient right?
 *
 * Two references, both from the f64 interpreter, at the inputs bound now:
 *  - the backward graph interpreted: the same math as the kernel, so every
 *    element can be compared cheaply, at any size (this catches codegen
 *    errors: chunking, vector remainders, threads);
 *  - central finite differences of the forward graph at chosen elements
 *    (this catches wrong derivatives). Each costs two interpreter runs over
 *    all the data, and the interpreter sums naively, so at large sizes check
 *    a few elements or check a small instance.
 * passes/gradcheck.c checks the autodiff pass alone (interpreter against
 * interpreter); `lossc gradcheck` runs both.
 */
#include "runtime/rt.h"

#include <float.h>
#include <math.h>
#include <string.h>

static double load(ir_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case DT_BOOL: return ((const uint8_t *)p)[i];
    case DT_I32: return ((const int32_t *)p)[i];
    case DT_I64: return (double)((const int64_t *)p)[i];
    case DT_F32: return ((const float *)p)[i];
    default: return ((const double *)p)[i];
    }
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rel_err(double a, double b)
{
    double m = fmax(fabs(a), fabs(b));
    return m > 0 ? fabs(a - b) / m : 0;
}

/* Everything one check needs, freed by gc_free. */
typedef struct gc_state {
    lossc_loss *loss;
    rt_call call;
    const ir_graph *gb, *gf; /* backward graph; graph whose loss is differentiated by FD */
    double **x;              /* gb's inputs as f64, memory order */
    double **ref;            /* gb's outputs from the interpreter */
    const double **xf;       /* gf's inputs (pointers into x) */
    int64_t dims_f[IR_MAX_DIMS];
    double *w;               /* the upstream gradient, canonical order */
    double fscale;           /* max(sum |w * loss|, sum |w|) from the reference */
    int loss_out;            /* in gf */
    strbuf err;
} gc_state;

static void gc_free(gc_state *s)
{
    const ir_graph *gb = s->gb;
    for (int i = 0; s->x && i < gb->ninputs; i++)
        sup_free(s->x[i]);
    for (int i = 0; s->ref && i < gb->noutputs; i++)
        sup_free(s->ref[i]);
    sup_free(s->x);
    sup_free(s->ref);
    sup_free(s->xf);
    sup_free(s->w);
    sb_free(&s->err);
    rt_call_end(s->loss, &s->call);
}

static int64_t input_count(const gc_state *s, const ir_input *in)
{
    int64_t shape[LOSSC_MAX_RANK], n;
    rt_numel(rt_input_shape(s->gb, in, s->call.dims, shape), shape, &n);
    return n;
}

/* The upstream gradient from the dloss input's memory order to the loss's
 * canonical order, so the FD objective sum(w * loss) lines up with the
 * interpreter's output. */
static void weights(gc_state *s, const ir_output *lo, int64_t nl)
{
    s->w = sup_malloc(sizeof(double) * (size_t)(nl ? nl : 1));
    int dl = -1;
    for (int i = 0; i < s->gb->ninputs; i++)
        if (s->gb->inputs[i].kind == IR_IN_DLOSS)
            dl = i;
    if (dl < 0) {
        for (int64_t k = 0; k < nl; k++)
            s->w[k] = 1;
        return;
    }
    const ir_input *in = &s->gb->inputs[dl];
    int64_t cst[IR_MAX_DIMS] = {0}, st = 1; /* canonical stride of each dim */
    for (int d = s->gb->ndims - 1; d >= 0; d--)
        if (ir_dimset_has(lo->node->dims, d)) {
            cst[d] = st;
            st *= s->call.dims[d];
        }
    int64_t idx[LOSSC_MAX_RANK] = {0};
    for (int64_t m = 0; m < nl; m++) { /* walk dloss in memory order */
        int64_t c = 0;
        for (int k = 0; k < in->ndim; k++)
            c += idx[k] * cst[in->order[k]];
        s->w[c] = s->x[dl][m];
        for (int k = in->ndim - 1; k >= 0; k--) {
            if (++idx[k] < s->call.dims[in->order[k]])
                break;
            idx[k] = 0;
        }
    }
}

static lossc_status prepare(gc_state *s)
{
    lossc_loss *loss = s->loss;
    const ir_graph *gb = s->gb, *gf = s->gf;
    s->x = sup_calloc((size_t)gb->ninputs + 1, sizeof *s->x);
    for (int i = 0; i < gb->ninputs; i++) {
        const ir_input *in = &gb->inputs[i];
        int64_t n = input_count(s, in);
        s->x[i] = sup_malloc(sizeof(double) * (size_t)(n ? n : 1));
        for (int64_t e = 0; e < n; e++)
            s->x[i][e] = load(in->dtype, s->call.bufs[i], e);
    }
    s->ref = sup_calloc((size_t)gb->noutputs + 1, sizeof *s->ref);
    if (!ir_interp(gb, s->call.dims, (const double *const *)s->x, s->ref, &s->err))
        return rt_fail(loss, LOSSC_ERR_INTERNAL, "the reference interpreter failed: %s",
                       sb_str(&s->err));
    s->xf = sup_calloc((size_t)gf->ninputs + 1, sizeof *s->xf);
    for (int i = 0; i < gf->ninputs; i++) {
        int j = ir_input_find(gb, gf->inputs[i].name);
        s->xf[i] = j >= 0 ? s->x[j] : NULL;
    }
    for (int d = 0; d < gf->ndims; d++) {
        int j = ir_dim_find(gb, gf->dims[d].name);
        s->dims_f[d] = j >= 0 ? s->call.dims[j] : (gf->dims[d].size >= 0 ? gf->dims[d].size : 0);
    }
    s->loss_out = -1;
    for (int i = 0; i < gf->noutputs; i++)
        if (gf->outputs[i].kind == IR_OUT_LOSS)
            s->loss_out = i;
    if (s->loss_out < 0)
        return rt_fail(loss, LOSSC_ERR_INTERNAL, "loss '%s' has no loss output", loss->name);
    int64_t shape[IR_MAX_DIMS], nl;
    rt_numel(rt_output_shape(gf, &gf->outputs[s->loss_out], s->dims_f, shape), shape, &nl);
    weights(s, &gf->outputs[s->loss_out], nl);
    /* the objective's size, at least that of the upstream gradient: a loss
     * that is 0 everywhere (cross-entropy over one class) still has
     * gradients made of terms of that size */
    double wsum = 0;
    for (int64_t k = 0; k < nl; k++)
        wsum += fabs(s->w[k]);
    for (int i = 0; i < gb->noutputs; i++)
        if (gb->outputs[i].kind == IR_OUT_LOSS)
            for (int64_t k = 0; k < nl; k++)
                s->fscale += fabs(s->w[k] * s->ref[i][k]);
    s->fscale = fmax(s->fscale, wsum);
    return LOSSC_OK;
}

/* sum(w * loss) at the current s->x; NAN if the interpreter fails. */
static double objective(gc_state *s)
{
    const ir_graph *gf = s->gf;
    double **outs = sup_calloc((size_t)gf->noutputs + 1, sizeof *outs);
    double f = NAN;
    sb_clear(&s->err);
    if (ir_interp(gf, s->dims_f, s->xf, outs, &s->err)) {
        int64_t shape[IR_MAX_DIMS], n;
        rt_numel(rt_output_shape(gf, &gf->outputs[s->loss_out], s->dims_f, shape), shape, &n);
        f = 0;
        for (int64_t k = 0; k < n; k++)
            f += s->w[k] * outs[s->loss_out][k];
    }
    for (int i = 0; i < gf->noutputs; i++)
        sup_free(outs[i]);
    sup_free(outs);
    return f;
}

static void check_one(gc_state *s, int oi, int fd_coords, uint64_t *rng, double rtol,
                      double atol, lossc_gradcheck_result *r)
{
    const ir_graph *gb = s->gb;
    const ir_output *o = &gb->outputs[oi];
    const ir_input *in = &gb->inputs[o->input];
    int64_t n = input_count(s, in);
    const void *kern = s->call.bufs[gb->ninputs + oi];
    const double *ref = s->ref[oi];
    ir_dtype dt = (ir_dtype)o->node->dtype;
    if (rtol <= 0)
        rtol = dt == DT_F64 ? 1e-6 : 1e-3;
    double scale = 0;
    for (int64_t e = 0; e < n; e++)
        scale = fmax(scale, fabs(ref[e]));
    /* A gradient that is zero in exact arithmetic (sum(softmax(x)) is
     * constant) is rounding noise in both: at f64's level in the reference
     * (below 1024 ulps of the objective per element), at the kernel type's
     * in the kernel. There rtol of the largest element would demand f64
     * noise of an f32 kernel; allow the kernel type's instead, 1024 ulps of
     * the objective per element (a row of C terms rounds C times). A small
     * gradient that is not zero (tanh's far from 0) stays checked relative
     * to its own size. */
    double per = s->fscale / (double)(n ? n : 1);
    if (atol < 0)
        atol = scale <= 1024 * DBL_EPSILON * per
                   ? 1024 * (dt == DT_F64 ? DBL_EPSILON : FLT_EPSILON) * per
                   : rtol * scale;
    r->input = in->name;
    r->count = n;
    r->passed = 1;
    for (int64_t e = 0; e < n; e++) {
        double k = load(dt, kern, e), d = fabs(k - ref[e]);
        r->ref_max_abs = fmax(r->ref_max_abs, d);
        r->ref_max_rel = fmax(r->ref_max_rel, rel_err(k, ref[e]));
        if (!(d <= atol + rtol * fabs(ref[e])))
            r->passed = 0;
    }
    int64_t m = fd_coords < 0 || fd_coords >= n ? n : fd_coords;
    double *x = s->x[o->input];
    for (int64_t c = 0; c < m; c++) {
        int64_t e = m == n ? c : (int64_t)(splitmix(rng) % (uint64_t)n);
        double x0 = x[e], h = 1e-6 * fmax(1, fabs(x0));
        double xp = x0 + h, xm = x0 - h;
        x[e] = xp;
        double fp = objective(s);
        x[e] = xm;
        double fm = objective(s);
        x[e] = x0;
        double fd = (fp - fm) / (xp - xm);
        double noise = 64 * DBL_EPSILON * (fabs(fp) + fabs(fm)) / (xp - xm);
        double k = load(dt, kern, e), d = fabs(k - fd);
        r->fd_max_abs = fmax(r->fd_max_abs, d);
        r->fd_max_rel = fmax(r->fd_max_rel, rel_err(k, fd));
        if (!(d <= atol + noise + rtol * fabs(fd)))
            r->passed = 0;
        r->fd_checked++;
    }
}

lossc_status lossc_gradcheck(lossc_loss *loss, int fd_coords, uint64_t seed, double rtol,
                             double atol, const lossc_gradcheck_result **results,
                             int *nresults, int *all_passed)
{
    if (!loss)
        return LOSSC_ERR_NULL;
    if (!results || !nresults || !all_passed)
        return rt_fail(loss, LOSSC_ERR_NULL, "lossc_gradcheck: NULL result pointer");
    *results = NULL;
    *nresults = *all_passed = 0;
    if (!loss->bwd)
        return rt_fail(loss, LOSSC_ERR_ARG,
                       "loss '%s' was compiled forward-only: there is no gradient to check",
                       loss->name);
    gc_state s = {.loss = loss, .gb = loss->bwd->g};
    s.gf = loss->fwd ? loss->fwd->g : s.gb;
    sb_init(&s.err);
    lossc_status st = rt_call_begin(loss, loss->bwd, RT_SCRATCH_ALL, &s.call);
    if (st == LOSSC_OK)
        st = rt_call_run(loss, &s.call);
    if (st == LOSSC_OK)
        st = prepare(&s);
    if (st == LOSSC_OK) {
        sup_free(loss->gc);
        loss->gc = sup_calloc((size_t)s.gb->noutputs + 1, sizeof *loss->gc);
        loss->ngc = 0;
        uint64_t rng = seed;
        int ok = 1;
        for (int i = 0; i < s.gb->noutputs; i++) {
            if (s.gb->outputs[i].kind != IR_OUT_GRAD)
                continue;
            lossc_gradcheck_result *r = &loss->gc[loss->ngc++];
            check_one(&s, i, fd_coords, &rng, rtol, atol, r);
            ok &= r->passed;
        }
        *results = loss->gc;
        *nresults = loss->ngc;
        *all_passed = ok;
    }
    gc_free(&s);
    return st;
}
