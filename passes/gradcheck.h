/* gradcheck.h - compare compiled gradients with finite differences.
 *
 *   ad_gradcheck_opts o;
 *   ad_gradcheck_defaults(&o);           // torch.autograd.gradcheck's tolerances
 *   ad_gradcheck_report r;
 *   if (!ad_gradcheck(g, &o, &r, &err))  // g: a frontend graph, not consumed
 *       ... err says why nothing could be checked ...
 *   ad_gradcheck_format(g, &r, &out);    // one line per input, then the verdict
 *   ad_gradcheck_report_free(&r);
 *
 * The graph goes through pass_pipeline (backward, verified) and the result is
 * evaluated with the f64 interpreter; the reference is central finite
 * differences of the interpreter on the graph with only grad() expanded, so
 * stabilize and simplify are checked too. For a loss that is not a scalar the
 * upstream gradient is random and the reference differentiates
 * sum(dloss * loss).
 *
 * Points: float inputs ~ N(0, 1) (or the caller's generator); a float scalar
 * with a default keeps its default (a temperature or an epsilon drawn from
 * N(0, 1) is meaningless); an integer input that indexes a dim (it feeds a
 * gather or is compared with an iota of that dim) is uniform in [0, size),
 * another integer input uniform in [0, 3); bools are fair coins.
 */
#ifndef LOSSC_PASSES_GRADCHECK_H
#define LOSSC_PASSES_GRADCHECK_H

#include "ir/ir.h"

/* Value of element i (memory order) of input `input` of g. */
typedef double (*ad_gradcheck_gen)(void *ud, const ir_graph *g, int input, int64_t i);

typedef struct ad_gradcheck_opts {
    uint64_t seed;             /* of the random points */
    const int64_t *dim_sizes;  /* by dim id (roots read); NULL: 3, 4, 5, 6, 3, ... */
    const double *const *data; /* per input; NULL (or a NULL entry): generated */
    ad_gradcheck_gen gen;      /* float values; NULL: N(0, 1) */
    void *gen_ud;
    uint64_t wrt; /* inputs to check, bit i = input i; 0: every float input */
    double eps;   /* step: h = eps * max(1, |x|) */
    double atol, rtol; /* an element passes if |analytic - numeric| <= atol + rtol * |numeric| */
    /* For testing the checker: check this gradient graph (inputs of g, then
     * the upstream gradient) instead of compiling one. */
    const ir_graph *backward;
} ad_gradcheck_opts;

/* eps 1e-6, atol 1e-5, rtol 1e-3 (torch.autograd.gradcheck), seed 1. */
void ad_gradcheck_defaults(ad_gradcheck_opts *o);

typedef struct ad_gradcheck_input {
    bool checked;     /* a float input in wrt */
    int64_t count;    /* elements */
    double max_abs;   /* largest |analytic - numeric| */
    double max_rel;   /* largest |analytic - numeric| / max(|analytic|, |numeric|) */
    int64_t worst;    /* element (memory order) farthest over its tolerance */
    double analytic, numeric; /* at `worst` */
    bool pass;
} ad_gradcheck_input;

typedef struct ad_gradcheck_report {
    ad_gradcheck_input *inputs; /* one per input of g */
    int ninputs;
    double loss;         /* sum(dloss * loss) at the point */
    double loss_abs_err; /* |compiled graph's value - reference| */
    bool pass;           /* every checked input and the value within tolerance */
} ad_gradcheck_report;

/* False only when nothing could be checked (the pipeline or the interpreter
 * failed): err says why. A wrong gradient is a true return with !r->pass. */
bool ad_gradcheck(const ir_graph *g, const ad_gradcheck_opts *o, ad_gradcheck_report *r,
                  strbuf *err);
void ad_gradcheck_report_free(ad_gradcheck_report *r);
/* "  x  f32[N, C]  max abs 1.2e-09  max rel 3.4e-08  ok" per input, then
 * "gradcheck: pass (atol 1e-05, rtol 0.001)". */
void ad_gradcheck_format(const ir_graph *g, const ad_gradcheck_opts *o,
                         const ad_gradcheck_report *r, strbuf *out);

#endif
