/* handc.c - hand-written fused forward + backward loops (see handc.h). */
#include "handc.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

void hc_set_threads(int threads) { omp_set_num_threads(threads); }

double hc_mse(const float *p, const float *t, float *g, int64_t n)
{
    double acc = 0;
    const float s = 2.0f / (float)n;
#pragma omp parallel for schedule(static) reduction(+ : acc)
    for (int64_t i = 0; i < n; i++) {
        float d = p[i] - t[i];
        acc += d * d;
        g[i] = s * d;
    }
    return acc / (double)n;
}

double hc_huber(const float *p, const float *t, float *g, int64_t n)
{
    double acc = 0;
    const float inv = 1.0f / (float)n;
#pragma omp parallel for schedule(static) reduction(+ : acc)
    for (int64_t i = 0; i < n; i++) {
        /* delta = 1: 0.5 q^2 + (|d| - q) with q = min(|d|, 1), branch-free */
        float d = p[i] - t[i], a = fabsf(d), q = fminf(a, 1.0f);
        acc += 0.5f * q * q + (a - q);
        g[i] = inv * fmaxf(-1.0f, fminf(d, 1.0f));
    }
    return acc / (double)n;
}

double hc_bce(const float *x, const float *y, float *g, int64_t n)
{
    double acc = 0;
    const float inv = 1.0f / (float)n;
#pragma omp parallel for schedule(static) reduction(+ : acc)
    for (int64_t i = 0; i < n; i++) {
        float e = expf(-fabsf(x[i]));
        acc += fmaxf(x[i], 0) - x[i] * y[i] + log1pf(e);
        float sig = x[i] >= 0 ? 1 / (1 + e) : e / (1 + e);
        g[i] = inv * (sig - y[i]);
    }
    return acc / (double)n;
}

double hc_focal(const float *x, const float *y, float *g, int64_t n)
{
    const float alpha = 0.25f;
    double acc = 0;
    const float inv = 1.0f / (float)n;
#pragma omp parallel for schedule(static) reduction(+ : acc)
    for (int64_t i = 0; i < n; i++) {
        float e = expf(-fabsf(x[i]));
        float p = x[i] >= 0 ? 1 / (1 + e) : e / (1 + e);
        float ce = fmaxf(x[i], 0) - x[i] * y[i] + log1pf(e);
        float pt = p * y[i] + (1 - p) * (1 - y[i]);
        float at = alpha * y[i] + (1 - alpha) * (1 - y[i]);
        float q = 1 - pt;
        acc += at * q * q * ce;
        float dpt = (2 * y[i] - 1) * p * (1 - p);
        g[i] = inv * at * ((p - y[i]) * q * q - ce * 2 * q * dpt);
    }
    return acc / (double)n;
}

double hc_ce(const float *x, const int64_t *y, float *g, int64_t n, int64_t c)
{
    double acc = 0;
    const float inv = 1.0f / (float)n;
#pragma omp parallel for schedule(static) reduction(+ : acc)
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + i * c;
        float *grow = g + i * c;
        float m = -INFINITY;
        for (int64_t j = 0; j < c; j++)
            m = fmaxf(m, row[j]);
        float s = 0;
        for (int64_t j = 0; j < c; j++)
            s += expf(row[j] - m);
        float lse = m + logf(s), rs = inv / s;
        acc += lse - row[y[i]];
        for (int64_t j = 0; j < c; j++)
            grow[j] = expf(row[j] - m) * rs;
        grow[y[i]] -= inv;
    }
    return acc / (double)n;
}

double hc_dice(const float *x, const float *t, float *g, int64_t n)
{
    double inter = 0, sp = 0, st = 0;
#pragma omp parallel for schedule(static) reduction(+ : inter, sp, st)
    for (int64_t i = 0; i < n; i++) {
        float p = 1 / (1 + expf(-x[i]));
        inter += p * t[i];
        sp += p;
        st += t[i];
    }
    const double smooth = 1, den = sp + st + smooth, num = 2 * inter + smooth;
    const float a = (float)(-2 / den), b = (float)(num / (den * den));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float p = 1 / (1 + expf(-x[i]));
        g[i] = (a * t[i] + b) * p * (1 - p);
    }
    return 1 - num / den;
}

double hc_triad_gbs(int64_t n, int reps)
{
    double *a = malloc(sizeof(double) * (size_t)n), *b = malloc(sizeof(double) * (size_t)n),
           *c = malloc(sizeof(double) * (size_t)n);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        a[i] = 0;
        b[i] = 1;
        c[i] = 2;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++)
            a[i] = b[i] + 3.0 * c[i];
        double dt = omp_get_wtime() - t0;
        if (dt < best)
            best = dt;
    }
    volatile double sink = a[n / 2];
    (void)sink;
    free(a);
    free(b);
    free(c);
    return 24.0 * (double)n / best / 1e9;
}
