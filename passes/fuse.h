/* fuse.h - the scheduler: a graph after the passes -> a plan of sweeps.
 *
 * The plan decides what is stored and what is recomputed, and in which loop
 * nests; codegen/lower*.c turns it into code. Prefix: sched_.
 *
 * Sinks. Only four things are ever written to memory: outputs, reductions
 * that some consumer cannot compute inline ("materialized"), elementwise
 * values too costly to recompute where they are read (stored), and range
 * checks of gather indices (their failures). Each is a *sink* with a loop
 * path: the dims it iterates, outer to inner. Other elementwise values are
 * never stored: each sink recomputes them at its loop indices.
 *
 * Stored values. A value read through a gather at an index that varies with
 * the loops (x[prev[s]], x[n, y[n]]) is evaluated there at other indices
 * than where its other readers evaluate it, so everything under it that
 * depends on the gathered dims is computed again, once per distinct index;
 * a chain of such reads (a recursion unrolled over time steps, each step
 * reading the previous one at shifted positions) doubles the work per link.
 * When that recomputation would cost more than a few operations per element
 * (SCHED_RECOMPUTE_LIMIT), the value is stored instead: a sink writes it in
 * one sweep, and every reader, the gather and the plain ones alike, loads it
 * in a later one. Cheap values (the gathered log-softmax of cross-entropy,
 * one subtraction) are still recomputed, so row-wise losses keep one sweep.
 * The same holds for a value read under a rename (x[n, s'] next to x[n, s]
 * in a sum over s'), and for a costly value that sinks of several levels
 * each compute again (the gradient flowing back through such a recursion):
 * see store_shared in fuse.c.
 *
 * Inline reductions. A reduction R evaluated inside a nest is computed inline
 * (an inner loop at the level where the dims its result depends on are bound,
 * kept in registers) when
 *   - the loops its result dims depend on are a non-empty prefix of the
 *     current path (so each R value is computed once per iteration of exactly
 *     those loops: a row-wise logsumexp inside a loop over rows), and
 *   - R's natural loop order puts its own result dims first (the contiguous
 *     dim of what it reads is a reduced dim: reducing along a row, not down
 *     a column).
 * Otherwise R is materialized: it becomes a sink of its own, computed in an
 * earlier sweep, and every consumer that cannot inline it reads the buffer.
 * The same rule (sched_inline) is used by the lowering, so both agree.
 *
 * Levels and sweeps. A sink's level is one more than the levels of the
 * materialized reductions it reads; outputs also come after every range
 * check (a kernel validates before it writes). Sinks of one level whose path
 * starts with the same dim P fuse into one *sweep*: one parallel pass over P
 * split into fixed chunks, their paths merged into one loop tree. Sinks with
 * an empty path (scalar outputs, scalar checks) run serially after the
 * sweeps of their level.
 *
 * Logsumexp is rewritten first (sched_build works on its own copy of the
 * graph): lse(x) = where(isfinite(m), m + log(sum(exp(x - m))), m) with
 * m = max(x), the interpreter's definition, so the max and the sum are two
 * ordinary reductions (two inner loops over a row when inline); a softmax
 * exp(x - lse(x)) becomes e / s with e = exp(x - m), the sum's own operand.
 */
#ifndef LOSSC_FUSE_H
#define LOSSC_FUSE_H

#include "ir/ir.h"

typedef enum sched_sink_kind {
    SINK_OUTPUT, /* store graph output `output` */
    SINK_REDUCE, /* materialize reduction `node` into a buffer */
    SINK_CHECK,  /* validate gather indices `node` against dim `check_dim` */
    SINK_STORE   /* store elementwise value `node` into a buffer (canonical order) */
} sched_sink_kind;

typedef struct sched_sink {
    sched_sink_kind kind;
    const ir_node *node; /* OUTPUT: the output's node; REDUCE: the reduction; CHECK: the
                          * index; STORE: the stored value */
    int output;          /* OUTPUT: index in g->outputs */
    int check;           /* CHECK: index in plan->checks */
    int path[IR_MAX_DIMS]; /* loop dims, outer to inner */
    int depth;             /* length of path */
    /* REDUCE: the leading `rdepth` loops of the path bind every result dim;
     * the loops after them only reduce (their partial sums stay in registers). */
    int rdepth;
    bool rows_owned; /* REDUCE: path[0] is a result dim: chunks own disjoint rows */
    /* REDUCE, STORE: the memory order of the buffer (and of the partials):
     * the result dims in the order the path visits them */
    int morder[IR_MAX_DIMS];
    int mdims;
    int level;
    int sweep;  /* index in plan->sweeps */
    int *deps;  /* materialized reductions read (sink indices) */
    int ndeps;
} sched_sink;

typedef struct sched_sweep {
    int level;
    int outer; /* P: the dim split into chunks; -1: serial (no loops) */
    int *sinks;
    int nsinks;
} sched_sweep;

typedef struct sched_check {
    const ir_node *index; /* the index expression (in plan->g) */
    int dim;              /* the gathered dim (its root's size is the bound) */
    int input;            /* the graph input the index is, or -1 if computed */
    src_loc loc;          /* the gather */
    int sink;
} sched_check;

typedef struct sched_plan {
    ir_graph *g; /* the prepared graph (owned): what the lowering reads */
    sched_sink *sinks;
    int nsinks;
    size_t sinks_cap;
    sched_sweep *sweeps; /* in execution order */
    int nsweeps;
    int nlevels;
    sched_check *checks;
    int nchecks;
    size_t checks_cap;
    int *mat; /* per node id of g: sink index of its materialized value, or -1 */
    bool *stored; /* per node id: an elementwise value stored (SINK_STORE), not recomputed */
    bool *dr_first; /* per node id: reduction whose natural order is result dims first */
    int *inner;     /* per node id: reduction's dim its inputs are contiguous in, or -1 */
} sched_plan;

/* The symbolic index environment of the walk: for each dim of a node being
 * evaluated, the set of path positions (bit k = loop k) its index depends on. */
typedef struct sched_env {
    uint64_t loops[IR_MAX_DIMS];
} sched_env;

/* Recomputing a value read through a gather costs up to this many operations
 * per element (operations under it that depend on the gathered dims, counted
 * as a tree) before it is stored instead. */
enum { SCHED_RECOMPUTE_LIMIT = 16 };

/* Build the plan for g (not modified); NULL with a message in err. */
sched_plan *sched_build(const ir_graph *g, strbuf *err);
void sched_free(sched_plan *p);

/* Is reduction r (a node of p->g), evaluated with its result dims' indices
 * depending on env, computed inline? If so *home receives the number of
 * enclosing loops it sits inside (its inner loops open at that depth). */
bool sched_inline(const sched_plan *p, const ir_node *r, const sched_env *env, int *home);

/* Does evaluating n at env (inside `depth` loops) open an inline reduction
 * loop at exactly depth `depth`? (Then the loop at depth-1 is not innermost.)
 * n itself is taken as computed even when stored (as its own sink does). */
bool sched_opens_loop_at(const sched_plan *p, const ir_node *n, const sched_env *env,
                         int depth);

/* The dims a sweep loops over inside its outer dim: its sinks' inner loops
 * and the axes of the inline reductions they compute (the per-row work). */
ir_dimset sched_inner_dims(const sched_plan *p, const sched_sweep *sw);

/* The number of parallel sweeps over memory (serial stages not counted). */
int sched_num_sweeps(const sched_plan *p);

/* The plan as text (lossc ir --kernels). */
void sched_print(const sched_plan *p, strbuf *out);

#endif
