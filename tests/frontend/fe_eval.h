/* fe_eval.h - running a compiled graph through the reference interpreter
 * with inputs given by name, for the value tests of examples, the library
 * and the documentation. */
#ifndef LOSSC_FE_EVAL_H
#define LOSSC_FE_EVAL_H

#include "fe_test.h"

typedef struct fe_run {
    ir_graph *g;
    int64_t sizes[IR_MAX_DIMS];
    const double *inputs[64];
    double *outputs[64];
} fe_run;

static inline void fr_init(fe_run *r, ir_graph *g)
{
    memset(r, 0, sizeof *r);
    r->g = g;
    for (int d = 0; d < IR_MAX_DIMS; d++)
        r->sizes[d] = -1;
    for (int d = 0; d < g->ndims; d++)
        if (g->dims[d].size >= 0)
            r->sizes[d] = g->dims[d].size;
}

static inline void fr_dim(fe_run *r, const char *name, int64_t size)
{
    int d = ir_dim_find(r->g, name);
    if (d < 0)
        fail_msg("graph %s has no dim %s", r->g->name, name);
    r->sizes[d] = size;
}

static inline void fr_in(fe_run *r, const char *name, const double *data)
{
    int i = ir_input_find(r->g, name);
    if (i < 0)
        fail_msg("graph %s has no input %s", r->g->name, name);
    r->inputs[i] = data;
}

/* Run; fails the test on an interpreter error. */
static inline void fr_eval(fe_run *r)
{
    strbuf err;
    sb_init(&err);
    if (!ir_interp(r->g, r->sizes, r->inputs, r->outputs, &err))
        fail_msg("interpreter: %s", sb_str(&err));
    sb_free(&err);
}

static inline const double *fr_out(fe_run *r, const char *name)
{
    int i = ir_output_find(r->g, name);
    if (i < 0)
        fail_msg("graph %s has no output %s", r->g->name, name);
    return r->outputs[i];
}

static inline void fr_free(fe_run *r)
{
    for (int i = 0; i < r->g->noutputs; i++)
        sup_free(r->outputs[i]);
    ir_graph_free(r->g);
}

/* Deterministic pseudo-random numbers in [lo, hi). */
static inline double fr_uniform(uint64_t *s, double lo, double hi)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(*s >> 11) / 9007199254740992.0;
}

static inline void fr_fill(double *x, int n, uint64_t *s, double lo, double hi)
{
    for (int i = 0; i < n; i++)
        x[i] = fr_uniform(s, lo, hi);
}

static inline void fr_labels(double *y, int n, uint64_t *s, int classes)
{
    for (int i = 0; i < n; i++)
        y[i] = (double)(int)fr_uniform(s, 0, classes);
}

#endif
