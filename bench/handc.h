/* handc.h - the hand-written fused C loops lossc is measured against: what an
 * engineer would write by hand for forward + backward (gradient of the first
 * input), one pass where the math allows, OpenMP across threads. Compiled
 * with -O3 -march=native -ffast-math -fopenmp. */
#ifndef LOSSC_BENCH_HANDC_H
#define LOSSC_BENCH_HANDC_H

#include <stdint.h>

double hc_mse(const float *p, const float *t, float *g, int64_t n);
double hc_huber(const float *p, const float *t, float *g, int64_t n);
double hc_bce(const float *x, const float *y, float *g, int64_t n);
double hc_focal(const float *x, const float *y, float *g, int64_t n);
double hc_ce(const float *x, const int64_t *y, float *g, int64_t n, int64_t c);
double hc_dice(const float *x, const float *t, float *g, int64_t n);

/* STREAM-like triad a = b + s*c over doubles; returns GB/s counting 24 bytes
 * per element (two reads, one write), best of `reps`. */
double hc_triad_gbs(int64_t n, int reps);
void hc_set_threads(int threads);

#endif
