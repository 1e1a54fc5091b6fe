/* pipeline.c - the pass list (the picture is at the top of passes.h).
 *
 * One flat list, QBE style: each step reads a graph and returns a new one;
 * between steps the graph can be verified and printed (--print-after-all).
 * Stabilize runs before autodiff so that gradients are taken of the stable
 * forms, and again after it because VJP rules write textbook formulas too.
 */
#include "passes/passes.h"

typedef ir_graph *(*step_fn)(const ir_graph *g, const pass_options *o);

static ir_graph *expand_grad(const ir_graph *g, const pass_options *o)
{
    (void)o;
    return pass_expand_grad(g);
}
static ir_graph *stabilize(const ir_graph *g, const pass_options *o)
{
    (void)o;
    return pass_stabilize(g);
}
static ir_graph *simplify(const ir_graph *g, const pass_options *o)
{
    (void)o;
    return pass_simplify(g);
}
static ir_graph *autodiff(const ir_graph *g, const pass_options *o)
{
    return pass_autodiff(g, o->wrt);
}
static ir_graph *strip_ad(const ir_graph *g, const pass_options *o)
{
    (void)o;
    return pass_strip_ad(g);
}
static ir_graph *log_softmax(const ir_graph *g, const pass_options *o)
{
    (void)o;
    return pass_log_softmax(g);
}

static bool check(const ir_graph *g, const char *after, const pass_options *o, strbuf *err)
{
    if (o->trace) {
        sb_printf(o->trace, "== after %s\n", after);
        ir_print(g, o->trace);
    }
    if (!o->verify)
        return true;
    strbuf why;
    sb_init(&why);
    bool ok = ir_verify(g, &why);
    if (!ok)
        sb_printf(err, "internal error: the graph is invalid after %s: %s", after,
                  sb_str(&why));
    sb_free(&why);
    return ok;
}

/* Replace *g by step(*g); false (and *g freed) when the step fails. */
static bool run(ir_graph **g, const char *name, step_fn step, const pass_options *o,
                strbuf *err)
{
    ir_graph *next = step(*g, o);
    if (!next) { /* a failing pass leaves its reason in its input's error buffer */
        sb_printf(err, "pass %s failed: %s", name, ir_graph_error(*g));
        ir_graph_free(*g);
        *g = NULL;
        return false;
    }
    ir_graph_free(*g);
    *g = next;
    if (check(next, name, o, err))
        return true;
    ir_graph_free(*g);
    *g = NULL;
    return false;
}

ir_graph *pass_pipeline(ir_graph *g, const pass_options *opts, strbuf *err)
{
    pass_options o = *opts;
    if (o.found_inf && !pass_add_found_inf(g)) {
        sb_printf(err, "cannot add the found_inf output: %s", ir_graph_error(g));
        ir_graph_free(g);
        return NULL;
    }
    if (!check(g, "frontend", &o, err)) {
        ir_graph_free(g);
        return NULL;
    }
    bool ok = run(&g, "expand_grad", expand_grad, &o, err);
    if (ok && !o.backward) /* nothing is differentiated after this */
        ok = run(&g, "strip_ad", strip_ad, &o, err);
    ok = ok && run(&g, "stabilize", stabilize, &o, err) &&
         run(&g, "simplify", simplify, &o, err);
    if (ok && o.backward) {
        if (!o.wrt)
            o.wrt = ad_default_wrt(g);
        if (!ad_check_wrt(g, o.wrt, err)) {
            ir_graph_free(g);
            return NULL;
        }
        ok = run(&g, "autodiff", autodiff, &o, err) &&
             run(&g, "strip_ad", strip_ad, &o, err) &&
             run(&g, "stabilize", stabilize, &o, err) &&
             run(&g, "simplify", simplify, &o, err);
    }
    ok = ok && run(&g, "log_softmax", log_softmax, &o, err);
    return ok ? g : NULL;
}
