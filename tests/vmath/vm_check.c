/* vm_check.c - see vm_check.h. */
#include "vm_check.h"

#include <float.h>
#include <math.h>
#include <quadmath.h>
#include <string.h>

/* ---- references ----------------------------------------------------------- */

double vmc_ref32(vm_func f, double x)
{
    switch (f) {
    case VM_EXP: return exp(x);
    case VM_EXPM1: return expm1(x);
    case VM_LOG: return log(x);
    case VM_LOG1P: return log1p(x);
    case VM_TANH: return tanh(x);
    case VM_SIGMOID: return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    case VM_SOFTPLUS: return fmax(x, 0) + log1p(exp(-fabs(x)));
    default: return NAN;
    }
}

__float128 vmc_ref64(vm_func f, __float128 x)
{
    switch (f) {
    case VM_EXP: return expq(x);
    case VM_EXPM1: return expm1q(x);
    case VM_LOG: return logq(x);
    case VM_LOG1P: return log1pq(x);
    case VM_TANH: return tanhq(x);
    case VM_SIGMOID: return x >= 0 ? 1 / (1 + expq(-x)) : expq(x) / (1 + expq(x));
    case VM_SOFTPLUS: return fmaxq(x, 0) + log1pq(expq(-fabsq(x)));
    default: return nanq("");
    }
}

/* ulp(r) for a finite r of the type, from its exponent field. */
static double ulp_of(uint64_t bits, int mant, int expbits)
{
    int bias = (1 << (expbits - 1)) - 1;
    int biased = (int)((bits >> mant) & ((1u << expbits) - 1));
    return ldexp(1.0, (biased ? biased : 1) - bias - mant);
}

double vmc_ulp32(float y, double ref)
{
    if (isnan(ref) || isnan(y))
        return isnan(ref) && isnan(y) ? 0 : INFINITY;
    float r = (float)ref;
    if (isinf(r) || isinf(y))
        return y == r ? 0 : INFINITY;
    uint32_t u;
    memcpy(&u, &r, 4);
    return fabs((double)y - ref) / ulp_of(u, 23, 8);
}

double vmc_ulp64(double y, __float128 ref)
{
    if (isnanq(ref) || isnan(y))
        return isnanq(ref) && isnan(y) ? 0 : INFINITY;
    double r = (double)ref;
    if (isinf(r) || isinf(y))
        return y == r ? 0 : INFINITY;
    uint64_t u;
    memcpy(&u, &r, 8);
    return (double)(fabsq((__float128)y - ref) / (__float128)ulp_of(u, 52, 11));
}

/* ---- running the kernels ----------------------------------------------------- */

bool vmc_scalar_only;

void vmc_run(const vmj_kernels *k, bool f64, const void *in, void *out, int64_t n,
             vmc_stats *st)
{
    size_t esz = f64 ? 8 : 4;
    k->scalar(in, out, n);
    if (vmc_scalar_only)
        return;
    unsigned char *tmp = sup_malloc((size_t)n * esz);
    vmj_fn others[2 + VMJ_NVEC] = {k->novec, k->vec[0], k->vec[1], k->vec[2]};
    for (int j = 0; j < 1 + VMJ_NVEC; j++) {
        others[j](in, tmp, n);
        for (int64_t i = 0; i < n; i++) {
            const unsigned char *a = (const unsigned char *)out + i * esz, *b = tmp + i * esz;
            if (memcmp(a, b, esz) != 0) {
                if (!st->mismatches++)
                    st->mismatch_x = f64 ? ((const double *)in)[i] : ((const float *)in)[i];
            }
        }
    }
    sup_free(tmp);
}

static void score(vmc_stats *st, double x, double y, double err)
{
    st->n++;
    if (err > st->max_ulp || (isnan(err) && !isnan(st->max_ulp))) {
        st->max_ulp = err;
        st->worst_x = x;
        st->worst_y = y;
    }
}

/* ---- f32 sweeps -------------------------------------------------------------- */

#define BATCH (VMJ_PAD * 1365)

typedef struct sweep32 {
    const vmj_kernels *k;
    vm_func f;
    vmc_stats *st;
    float in[BATCH], out[BATCH];
    int n;
} sweep32;

static void flush32(sweep32 *s)
{
    if (!s->n)
        return;
    int n = (s->n + VMJ_PAD - 1) / VMJ_PAD * VMJ_PAD;
    for (int i = s->n; i < n; i++)
        s->in[i] = s->in[0];
    vmc_run(s->k, false, s->in, s->out, n, s->st);
    for (int i = 0; i < s->n; i++)
        score(s->st, s->in[i], s->out[i],
              vmc_ulp32(s->out[i], vmc_ref32(s->f, s->in[i])));
    s->n = 0;
}

static void push32(sweep32 *s, uint32_t bits)
{
    memcpy(&s->in[s->n++], &bits, 4);
    if (s->n == BATCH)
        flush32(s);
}

static void bits_range(sweep32 *s, uint32_t first, uint32_t last, uint32_t stride)
{
    for (uint64_t b = first; b <= last; b += stride)
        push32(s, (uint32_t)b);
}

static uint32_t f2u(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static void window32(sweep32 *s, vmc_window w)
{
    if (w.lo < 0 && w.hi > 0) {
        window32(s, (vmc_window){w.lo, -0.0f, w.stride});
        window32(s, (vmc_window){0.0f, w.hi, w.stride});
    } else if (signbit(w.lo)) {
        bits_range(s, f2u(w.hi), f2u(w.lo), w.stride);
    } else {
        bits_range(s, f2u(w.lo), f2u(w.hi), w.stride);
    }
}

/* Where each function is delicate: thresholds, the ends of the reduced
 * ranges, near 0 and near the singularities. */
#define W(lo, hi, stride) {(float)(lo), (float)(hi), stride}
static const vmc_window win_exp[] = {W(88, 89, 1), W(-104, -87, 1), W(0.25, 0.5, 4),
                                      W(-0.5, -0.25, 4), W(0x1p-26, 0x1p-20, 32),
                                      W(-0x1p-20, -0x1p-26, 32)};
static const vmc_window win_expm1[] = {W(88, 89, 1), W(-18, -16, 1), W(0.25, 0.5, 4),
                                        W(-0.5, -0.25, 4), W(1, 2, 8), W(-2, -1, 8),
                                        W(0x1p-26, 0x1p-10, 64), W(-0x1p-10, -0x1p-26, 64)};
static const vmc_window win_log[] = {W(0.5, 2, 4), W(0.99, 1.01, 1),
                                      W(0x1p-149, 0x1p-126, 7),
                                      W(0x1.fffff0p127, 0x1.fffffep127, 1)};
static const vmc_window win_log1p[] = {W(-1, -0.5, 4), W(0.25, 0.5, 4), W(-0.5, -0.25, 4),
                                        W(1, 4, 8), W(0x1p-26, 0x1p-10, 64),
                                        W(-0x1p-10, -0x1p-26, 64)};
static const vmc_window win_tanh[] = {W(0.125, 1, 8), W(-1, -0.125, 8), W(8, 10, 1),
                                       W(0x1p-16, 0x1p-8, 32), W(-0x1p-8, -0x1p-16, 32)};
static const vmc_window win_sigmoid[] = {W(-104, -80, 1), W(15, 17, 1), W(0.25, 4, 16),
                                          W(-4, -0.25, 16), W(0x1p-30, 0x1p-10, 128),
                                          W(-0x1p-10, -0x1p-30, 128)};
static const vmc_window win_softplus[] = {W(-104, -80, 1), W(15, 17, 1), W(0.25, 4, 16),
                                           W(-4, -0.25, 16), W(0x1p-30, 0x1p-10, 128),
                                           W(-0x1p-10, -0x1p-30, 128)};
#undef W

const vmc_window *vmc_windows32(vm_func f, int *n)
{
#define CASE(id, arr)                        \
    case id:                                 \
        *n = (int)SUP_ARRAY_LEN(arr);        \
        return arr;
    switch (f) {
        CASE(VM_EXP, win_exp)
        CASE(VM_EXPM1, win_expm1)
        CASE(VM_LOG, win_log)
        CASE(VM_LOG1P, win_log1p)
        CASE(VM_TANH, win_tanh)
        CASE(VM_SIGMOID, win_sigmoid)
        CASE(VM_SOFTPLUS, win_softplus)
    default: *n = 0; return NULL;
    }
#undef CASE
}

void vmc_sweep32(const vmj_kernels *k, vm_func f, uint32_t stride, uint32_t window_scale,
                 vmc_stats *st)
{
    sweep32 *s = sup_calloc(1, sizeof *s);
    s->k = k;
    s->f = f;
    s->st = st;
    if (stride) {
        bits_range(s, 0, 0x7f7fffffu, stride);
        bits_range(s, 0x80000000u + stride / 2, 0xff7fffffu, stride);
    }
    int nw;
    const vmc_window *w = vmc_windows32(f, &nw);
    for (int i = 0; i < nw && window_scale; i++) {
        vmc_window wi = w[i];
        wi.stride *= window_scale;
        window32(s, wi);
    }
    flush32(s);
    sup_free(s);
}

/* ---- f64 random draws -------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s) { return (double)(splitmix(s) >> 11) * 0x1p-53; }

typedef enum { R_UNIF, R_LOG, R_LOGNEG, R_LOGPM, R_BITSPOS } range_kind;
typedef struct range64 {
    range_kind kind;
    double a, b; /* bounds, or exponent bounds for the log kinds */
} range64;

static double draw(const range64 *r, uint64_t *s)
{
    switch (r->kind) {
    case R_UNIF: return r->a + (r->b - r->a) * unit(s);
    case R_LOG: return exp2(r->a + (r->b - r->a) * unit(s));
    case R_LOGNEG: return -exp2(r->a + (r->b - r->a) * unit(s));
    case R_LOGPM: {
        double m = exp2(r->a + (r->b - r->a) * unit(s));
        return splitmix(s) & 1 ? m : -m;
    }
    case R_BITSPOS: {
        uint64_t u = splitmix(s) % 0x7ff0000000000000ull;
        double x;
        memcpy(&x, &u, 8);
        return x;
    }
    }
    return 0;
}

#define RANGES(...) {__VA_ARGS__, {R_UNIF, 0, 0}}
static const range64 r_exp[] = RANGES({R_UNIF, -746, 710}, {R_LOGPM, -60, 3},
                                      {R_UNIF, -745.2, -708}, {R_UNIF, 709, 710},
                                      {R_UNIF, -1, 1});
static const range64 r_expm1[] = RANGES({R_UNIF, -40, 710}, {R_LOGPM, -60, 3},
                                        {R_UNIF, -1, 1}, {R_UNIF, 0.3, 0.4},
                                        {R_UNIF, -0.4, -0.3}, {R_UNIF, 709, 710});
static const range64 r_log[] = RANGES({R_BITSPOS, 0, 0}, {R_UNIF, 0.5, 2},
                                      {R_LOG, -1074, 1024}, {R_UNIF, 0.99, 1.01});
static const range64 r_log1p[] = RANGES({R_UNIF, -1, 1}, {R_LOG, -60, 1000},
                                        {R_LOGNEG, -60, 0}, {R_UNIF, -1, -0.99},
                                        {R_UNIF, 0.4, 0.45}, {R_UNIF, -0.3, -0.28});
static const range64 r_tanh[] = RANGES({R_LOGPM, -60, 5}, {R_UNIF, -20, 20},
                                       {R_UNIF, -1, 1}, {R_UNIF, 0.2, 0.6});
static const range64 r_sigmoid[] = RANGES({R_UNIF, -746, 40}, {R_LOGPM, -60, 10},
                                          {R_UNIF, -745, -700}, {R_UNIF, -5, 5});
static const range64 r_softplus[] = RANGES({R_UNIF, -746, 40}, {R_LOGPM, -60, 10},
                                           {R_UNIF, -40, 40}, {R_UNIF, -745, -700});
#undef RANGES

static const range64 *ranges64(vm_func f)
{
    switch (f) {
    case VM_EXP: return r_exp;
    case VM_EXPM1: return r_expm1;
    case VM_LOG: return r_log;
    case VM_LOG1P: return r_log1p;
    case VM_TANH: return r_tanh;
    case VM_SIGMOID: return r_sigmoid;
    default: return r_softplus;
    }
}

static const double edges64[] = {
    0.0, -0.0, 0x1p-1074, -0x1p-1074, 0x1p-1022, -0x1p-1022, 0x1p-60, -0x1p-60,
    1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0x1.62e42fefa39efp-2, -0x1.62e42fefa39efp-2,
    0x1.62e42fefa39efp-1, -0x1.62e42fefa39efp-1, 0x1.6a09e667f3bcdp-1, 0x1.6a09e667f3bcdp+0,
    0x1.6a09e667f3bcdp-1 - 1, 0x1.6a09e667f3bcdp+0 - 1, 709.782712893384, 709.7827128933841,
    -745.1332191019411, -745.1332191019412, -708.3964185322641, -708.3964185322642,
    -37.42994775023705, 19.06154746539849, 36.7368005696771, DBL_MAX, -DBL_MAX,
};

void vmc_sweep64(const vmj_kernels *k, vm_func f, uint64_t count, vmc_stats *st)
{
    const int64_t batch = VMJ_PAD * 1024;
    double *in = sup_malloc((size_t)batch * sizeof *in);
    double *out = sup_malloc((size_t)batch * sizeof *out);
    const range64 *rs = ranges64(f);
    int nr = 0;
    while (rs[nr].a != 0 || rs[nr].b != 0 || rs[nr].kind != R_UNIF)
        nr++;
    uint64_t seed = 0x5eed0000ull + (uint64_t)f;
    uint64_t done = 0, nedges = SUP_ARRAY_LEN(edges64);
    while (done < count + nedges) {
        int64_t n = 0;
        for (; n < batch && done < count + nedges; n++, done++) {
            if (done < nedges) {
                /* each edge and its two neighbours */
                double x = edges64[done];
                in[n] = x;
                if (n + 2 < batch) {
                    in[++n] = nextafter(x, INFINITY);
                    in[++n] = nextafter(x, -INFINITY);
                }
            } else {
                in[n] = draw(&rs[done % (uint64_t)nr], &seed);
            }
        }
        int64_t padded = (n + VMJ_PAD - 1) / VMJ_PAD * VMJ_PAD;
        for (int64_t i = n; i < padded; i++)
            in[i] = in[0];
        vmc_run(k, true, in, out, padded, st);
        for (int64_t i = 0; i < n; i++)
            score(st, in[i], out[i], vmc_ulp64(out[i], vmc_ref64(f, in[i])));
    }
    sup_free(in);
    sup_free(out);
}
