/* test_examples.c - every loss of examples/ (every .loss file) through the real frontend
 * and pass pipeline (forward + backward), JIT kernel against the
 * interpreter on the same random inputs; then tests/codegen/regress/, the
 * reproducers of codegen bugs fixed before.
 *
 * Inputs: floats uniform in [0.05, 0.95] (valid probabilities, targets and
 * logits alike), integer inputs that a range check names in [0, size of
 * that dim), other integers in [0, 3), bools at random, scalars at their
 * default (else 0.5), the upstream gradient 1.25. Two shapes: every free
 * dim 3 with the first one 7, and the first 1003 with the others 6.
 * Tolerances: f32 within 5e-5 relative plus 5e-5 of the output's largest
 * magnitude (gradients go through several f32 reductions); f64 1e-11.
 */
#include "cg_losses.h"

#include "frontend/frontend.h"
#include "passes/passes.h"

#include <dirent.h>
#include <stdlib.h>


static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_graph(ir_graph *g, int shape)
{
    strbuf err;
    sb_init(&err);
    cg_kernel_info info;
    lk_kernel_fn fn = cg_jit_compile(g_jit, g, g->name, &info, &err);
    if (!fn)
        fail_msg("%s: %s", g->name, sb_str(&err));
    cg_case c = {.g = g, .seed = 1234 + (uint64_t)shape};
    bool f64 = true;
    for (int i = 0; i < g->ninputs; i++)
        if (g->inputs[i].dtype == DT_F32)
            f64 = false;
    c.rtol = c.atol = f64 ? 1e-11 : 5e-5;
    bool first = true;
    for (int d = 0; d < g->ndims; d++) {
        if (ir_dim_root(g, d) != d)
            continue;
        c.size[d] = g->dims[d].size >= 0 ? g->dims[d].size : first ? (shape ? 1003 : 7)
                                                                   : (shape ? 6 : 3);
        first = first && g->dims[d].size >= 0;
    }
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        c.gen[i] = GEN_UNIFORM, c.lo[i] = 0.05, c.hi[i] = 0.95;
        if (in->kind == IR_IN_DLOSS && in->ndim == 0)
            c.gen[i] = GEN_FIXED, c.lo[i] = 1.25;
        else if (in->kind == IR_IN_SCALAR)
            c.gen[i] = GEN_FIXED, c.lo[i] = in->has_default ? in->default_value : 0.5;
        else if (in->dtype == DT_BOOL)
            c.gen[i] = GEN_BOOL;
        else if (ir_dtype_is_int(in->dtype))
            c.gen[i] = GEN_INDEX, c.hi[i] = 3;
        for (int k = 0; k < info.nchecks; k++)
            if (info.checks[k].input && !strcmp(info.checks[k].input, in->name))
                c.gen[i] = GEN_INDEX, c.hi[i] = (double)c.size[ir_dim_root(g, info.checks[k].dim)];
    }
    double **data = make_inputs(&c);
    if (run_kernel(&c, fn, NULL, NULL) != LK_OK)
        fail_msg("%s: kernel status %d (check %d value %lld)", g->name, c.status,
                 c.error.check, (long long)c.error.value);
    check_against_interp(&c, data);
    free_inputs(&c, data);
    free_case_buffers(&c);
    cg_kernel_info_free(&info);
    sb_free(&err);
}

static int check_file(const char *path)
{
    size_t len;
    char *text = sup_read_file(path, &len);
    if (!text)
        fail_msg("cannot read %s", path);
    diag_set ds;
    diag_init(&ds);
    int fid = diag_add_file(&ds, path, text, len);
    char **names;
    int n = fe_list_losses(&ds, fid, &names);
    if (n < 0)
        fail_msg("%s does not parse", path);
    for (int k = 0; k < n; k++) {
        fe_options o = {.entry = names[k]};
        ir_graph *g = fe_compile(&ds, fid, &o);
        if (!g) {
            strbuf d;
            sb_init(&d);
            diag_format_all(&ds, &d);
            fail_msg("%s: %s", names[k], sb_str(&d));
        }
        strbuf err;
        sb_init(&err);
        pass_options po = {.backward = true, .verify = true};
        g = pass_pipeline(g, &po, &err);
        if (!g)
            fail_msg("%s: %s", names[k], sb_str(&err));
        for (int shape = 0; shape < 2; shape++)
            run_graph(g, shape);
        ir_graph_free(g);
        sb_free(&err);
        sup_free(names[k]);
    }
    sup_free(names);
    diag_free(&ds);
    sup_free(text);
    return n;
}

static int run_dir(const char *dirname)
{
    DIR *dir = opendir(dirname);
    if (!dir)
        fail_msg("run from the source directory (%s/ not found)", dirname);
    char *files[256];
    int n = 0;
    for (struct dirent *e; (e = readdir(dir)) && n < 256;) {
        size_t l = strlen(e->d_name);
        if (l > 5 && !strcmp(e->d_name + l - 5, ".loss")) {
            files[n] = malloc(strlen(dirname) + l + 2);
            sprintf(files[n++], "%s/%s", dirname, e->d_name);
        }
    }
    closedir(dir);
    qsort(files, (size_t)n, sizeof *files, cmp_str);
    int losses = 0;
    for (int i = 0; i < n; i++) {
        losses += check_file(files[i]);
        free(files[i]);
    }
    return losses;
}

/* examples/ and the reproducers of codegen bugs fixed before */
static void run_examples(void)
{
    assert_true(run_dir("examples") >= 10);
    assert_true(run_dir("tests/codegen/regress") >= 1);
}

/* Every sweep with work inside its rows has a body vectorized along the
 * rows and one across them (short rows), chosen by size: run each forced. */
static void test_examples(void **state)
{
    (void)state;
    static const char *const rows[] = {"along", "across", NULL};
    for (int i = 0; i < 3; i++) {
        if (rows[i])
            setenv("LOSSC_CG_ROWS", rows[i], 1);
        else
            unsetenv("LOSSC_CG_ROWS");
        run_examples();
    }
    unsetenv("LOSSC_CG_ROWS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples),
    };
    return cmocka_run_group_tests(tests, jit_setup, jit_teardown);
}
