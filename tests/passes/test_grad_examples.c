/* test_grad_examples.c - gradients of whole losses written in the language:
 * every loss in examples/ (every .loss file) and a few written here (gradient penalty,
 * nested grad(), textbook BCE and focal, softmax cross-entropy, Dice), each
 * through the frontend, the pipeline and ad_gradcheck; then the same losses
 * differentiated twice: a Hessian-vector product (the gradient of
 * sum over inputs p of sum(grad(loss, p)^2)) against finite differences of
 * the compiled gradient.
 *
 * Tolerances: atol 1e-6, rtol 1e-5 (f64 interpreter; finite differences with
 * h = 1e-6 max(1, |x|) are good to about 1e-9 on these losses).
 */
#include "passtest.h"

#include "frontend/frontend.h"

#include <dirent.h>
#include <stdlib.h>

#define ATOL 1e-6
#define RTOL 1e-5

static const char *const INLINE_SOURCE =
    "loss penalty(x: f32[N, C], w: f32[C], lam: f32 = 0.5) {\n"
    "    let g = grad(sum(tanh(x * w)), x)\n"
    "    return sum((x * w) ^ 2) + lam * sum(g ^ 2)\n"
    "}\n"
    "loss nested(x: f32[N], w: f32[N]) {\n"
    "    let h = grad(sum(grad(sum(exp(x) * w), x) * x), w)\n"
    "    return sum(h * h)\n"
    "}\n"
    "loss textbook_bce(x: f32[N], y: f32[N]) {\n"
    "    return mean(-(y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))))\n"
    "}\n"
    "loss focal(x: f32[N], y: f32[N], gamma: f32 = 2.0, alpha: f32 = 0.25) {\n"
    "    let p = sigmoid(x)\n"
    "    let pt = where(y > 0.5, p, 1 - p)\n"
    "    let at = where(y > 0.5, alpha, 1 - alpha)\n"
    "    return mean(-at * (1 - pt) ^ gamma * log(pt))\n"
    "}\n"
    "loss softmax_ce(x: f32[N, C], y: i64[N]) {\n"
    "    let lp = log(softmax(x, axis=C))\n"
    "    let nll[n] = -lp[n, y[n]]\n"
    "    return mean(nll)\n"
    "}\n"
    "loss dice(p: f32[N], t: f32[N], smooth: f32 = 1.0) {\n"
    "    let s = sigmoid(p)\n"
    "    return 1 - (2 * sum(s * t) + smooth) / (sum(s) + sum(t) + smooth)\n"
    "}\n"
    "loss per_element(x: f32[N, C], y: f32[N, C]) {\n"
    "    return abs(x - y) + max(x, y) * 0.5\n"
    "}\n"
    "loss norms(x: f32[N, C]) {\n"
    "    return sum(norm(x, axis=C)) + sum(norm(x, p=3, axis=N)) + prod(x) + "
    "sum(clamp(x, min=-0.5, max=0.5))\n"
    "}\n";

/* Every entry of one source: compile, check, and hand each graph to fn. */
static int for_each_loss(const char *name, const char *text,
                         void (*fn)(const char *what, ir_graph *g))
{
    diag_set ds;
    diag_init(&ds);
    int f = diag_add_file(&ds, name, text, strlen(text));
    char **names = NULL;
    int n = fe_list_losses(&ds, f, &names);
    if (n < 0) {
        strbuf sb;
        sb_init(&sb);
        diag_format_all(&ds, &sb);
        fail_msg("%s", sb_str(&sb));
    }
    for (int k = 0; k < n; k++) {
        fe_options o = {.entry = names[k]};
        ir_graph *g = fe_compile(&ds, f, &o);
        if (!g) {
            strbuf sb;
            sb_init(&sb);
            diag_format_all(&ds, &sb);
            fail_msg("%s:%s does not compile:\n%s", name, names[k], sb_str(&sb));
        }
        char what[256];
        snprintf(what, sizeof what, "%s:%s", name, names[k]);
        fn(what, g);
        ir_graph_free(g);
        sup_free(names[k]);
    }
    sup_free(names);
    diag_free(&ds);
    return n;
}

/* For the examples: values in [0.05, 0.95], where every example is defined
 * (targets are probabilities there: focal's (1 - p_t)^gamma is NaN for a
 * target of 2). Deterministic in (input, element). */
static double gen_unit(void *ud, const ir_graph *g, int input, int64_t i)
{
    (void)ud, (void)g;
    uint64_t z = (uint64_t)(input + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)i * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 31)) * 0x94d049bb133111ebull;
    z ^= z >> 29;
    return 0.05 + 0.9 * ((double)(z >> 11) * 0x1p-53);
}

static ad_gradcheck_gen generator = NULL;

static ad_gradcheck_opts opts(void)
{
    ad_gradcheck_opts o;
    ad_gradcheck_defaults(&o);
    o.atol = ATOL;
    o.rtol = RTOL;
    o.gen = generator;
    return o;
}

static void check_first(const char *what, ir_graph *g)
{
    ad_gradcheck_opts o = opts();
    pt_gradcheck(g, &o, what);
}

/* The loss replaced by sum over float inputs p of sum(grad(sum(loss), p)^2):
 * its gradient is 2 H g, checked against finite differences. */
static void check_second(const char *what, ir_graph *g)
{
    ir_graph *h = pass_expand_grad(g); /* grad() inside is expanded first */
    assert_non_null(h);
    int li = ir_output_find(h, "loss");
    ir_node *loss = h->outputs[li].node;
    loss = ir_reduce(h, OP_SUM, loss, loss->dims, PT_L);
    ir_node *total = NULL;
    for (int i = 0; i < h->ninputs; i++) {
        ir_node *p = ir_input_node(h, i);
        if (!ir_dtype_is_float((ir_dtype)p->dtype))
            continue;
        ir_node *ops[2] = {loss, p};
        ir_node *gp = ir_make(h, OP_GRAD, DT_F32, ops, 2, NULL, PT_L);
        ir_node *sq = ir_binary(h, OP_MUL, gp, gp, PT_L);
        sq = ir_reduce(h, OP_SUM, sq, sq->dims, PT_L);
        total = total ? ir_binary(h, OP_ADD, total, sq, PT_L) : sq;
    }
    assert_non_null(total);
    h->outputs[li].node = total;
    ad_gradcheck_opts o = opts();
    char label[300];
    snprintf(label, sizeof label, "%s (second order)", what);
    pt_gradcheck(h, &o, label);
    ir_graph_free(h);
}

static void test_inline_losses(void **state)
{
    (void)state;
    assert_int_equal(for_each_loss("inline.loss", INLINE_SOURCE, check_first), 8);
}

static void test_inline_losses_second_order(void **state)
{
    (void)state;
    for_each_loss("inline.loss", INLINE_SOURCE, check_second);
}

/* Every .loss file in examples/ (tests run from the source directory). */
static void each_example(void (*fn)(const char *, ir_graph *))
{
    DIR *d = opendir("examples");
    if (!d)
        fail_msg("no examples/ directory (run from the source directory)");
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".loss") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "examples/%s", e->d_name);
        size_t n;
        char *text = sup_read_file(path, &n);
        assert_non_null(text);
        for_each_loss(path, text, fn);
        sup_free(text);
        files++;
    }
    closedir(d);
    assert_true(files >= 3);
}

static void test_examples(void **state)
{
    (void)state;
    generator = gen_unit;
    each_example(check_first);
    generator = NULL;
}

static void test_examples_second_order(void **state)
{
    (void)state;
    generator = gen_unit;
    each_example(check_second);
    generator = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_losses),
        cmocka_unit_test(test_inline_losses_second_order),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_examples_second_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
