/* test_aot.c - ahead-of-time kernels in a plain C program.
 *
 * Writes an object with two kernels (MSE, and weighted cross-entropy with
 * per-row losses) and its header, for the host CPU and for x86-64-v3, then
 * compiles a C program against them with `gcc -std=c11 prog.c k.o -lm` (no
 * LLVM, no lossc library), runs it, and lets it check its own numbers
 * against references it computes in double: f32 results within 1e-5
 * relative (sums within 1e-5 of their magnitude), an out-of-range label
 * reported as LK_ERR_INDEX with nothing written.
 */
#include "cg_losses.h"

#include <stdlib.h>
#include <unistd.h>

static const char *prog_text =
    "#include \"k.h\"\n"
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "static int bad;\n"
    "static void check(const char *what, double got, double want, double tol)\n"
    "{\n"
    "    if (!(fabs(got - want) <= tol * (fabs(want) + 1e-30))) {\n"
    "        printf(\"%s: got %.9g want %.9g\\n\", what, got, want);\n"
    "        bad = 1;\n"
    "    }\n"
    "}\n"
    "int main(void)\n"
    "{\n"
    "    enum { N = 1003, R = 257, C = 10 };\n"
    "    static float p[N], t[N], gp[N], gt[N], x[R * C], w[C], gx[R * C], rows[R];\n"
    "    static int64_t y[R];\n"
    "    float loss, dl = 1.0f;\n"
    "    for (int i = 0; i < N; i++) { p[i] = sinf((float)i); t[i] = cosf(0.5f * (float)i); }\n"
    "    lk_error err;\n"
    "    lk_mse_args a = {p, t, &dl, &loss, gp, gt, N};\n"
    "    if (lk_mse_run(&a, &err) != LK_OK) { printf(\"mse failed\\n\"); return 1; }\n"
    "    double ref = 0;\n"
    "    for (int i = 0; i < N; i++) ref += ((double)p[i] - t[i]) * ((double)p[i] - t[i]);\n"
    "    check(\"mse loss\", loss, ref / N, 1e-5);\n"
    "    for (int i = 0; i < N; i++) {\n"
    "        check(\"mse grad\", gp[i], 2.0 * ((double)p[i] - t[i]) / N, 1e-5);\n"
    "        check(\"mse grad t\", gt[i], -2.0 * ((double)p[i] - t[i]) / N, 1e-5);\n"
    "    }\n"
    "    for (int i = 0; i < R * C; i++) x[i] = 3.0f * sinf(0.37f * (float)i);\n"
    "    for (int c = 0; c < C; c++) w[c] = 0.5f + 0.1f * (float)c;\n"
    "    for (int r = 0; r < R; r++) y[r] = (r * 7) % C;\n"
    "    lk_ce_args b = {x, y, w, &dl, &loss, gx, rows, R, C};\n"
    "    if (lk_ce_run(&b, &err) != LK_OK) { printf(\"ce failed\\n\"); return 1; }\n"
    "    double num = 0, den = 0;\n"
    "    for (int r = 0; r < R; r++) {\n"
    "        double m = -INFINITY, s = 0;\n"
    "        for (int c = 0; c < C; c++) m = fmax(m, x[r * C + c]);\n"
    "        for (int c = 0; c < C; c++) s += exp(x[r * C + c] - m);\n"
    "        double lse = m + log(s), nll = lse - x[r * C + y[r]];\n"
    "        check(\"ce row\", rows[r], nll, 1e-5);\n"
    "        num += w[y[r]] * nll;\n"
    "        den += w[y[r]];\n"
    "    }\n"
    "    check(\"ce loss\", loss, num / den, 1e-5);\n"
    "    for (int r = 0; r < R; r++) {\n"
    "        double m = -INFINITY, s = 0;\n"
    "        for (int c = 0; c < C; c++) m = fmax(m, x[r * C + c]);\n"
    "        for (int c = 0; c < C; c++) s += exp(x[r * C + c] - m);\n"
    "        for (int c = 0; c < C; c++) {\n"
    "            double g = w[y[r]] * (exp(x[r * C + c] - m) / s - (c == y[r])) / den;\n"
    "            if (fabs(gx[r * C + c] - g) > 1e-5 * fabs(g) + 1e-9) {\n"
    "                printf(\"ce grad[%d,%d]: got %.9g want %.9g\\n\", r, c, gx[r * C + c], g);\n"
    "                bad = 1;\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "    y[100] = 11;\n"
    "    memset(rows, 0xA5, sizeof rows);\n"
    "    unsigned char before = ((unsigned char *)rows)[0];\n"
    "    int32_t st = lk_ce_run(&b, &err);\n"
    "    if (st != LK_ERR_INDEX || err.value != 11 || err.position != 100 || err.check != 0 ||\n"
    "        ((unsigned char *)rows)[0] != before) {\n"
    "        printf(\"range error: status %d value %lld position %lld\\n\", st,\n"
    "               (long long)err.value, (long long)err.position);\n"
    "        bad = 1;\n"
    "    }\n"
    "    if (!bad) printf(\"aot ok\\n\");\n"
    "    return bad;\n"
    "}\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void build_and_run(const char *cpu)
{
    char dir[] = "/tmp/lossc_aot_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char obj[256], hdr[256], prog[256], cmd[1024];
    snprintf(obj, sizeof obj, "%s/k.o", dir);
    snprintf(hdr, sizeof hdr, "%s/k.h", dir);
    snprintf(prog, sizeof prog, "%s/prog.c", dir);

    const ir_graph *gs[2] = {loss_mse(DT_F32), loss_ce(DT_F32, true, true)};
    const char *syms[2] = {"lk_mse", "lk_ce"};
    cg_options opts = {.cpu = cpu};
    strbuf err, h;
    sb_init(&err);
    sb_init(&h);
    if (!cg_emit_object(gs, syms, 2, &opts, obj, &err))
        fail_msg("cg_emit_object: %s", sb_str(&err));
    cg_emit_header(gs, syms, 2, "K_H", &h);
    write_file(hdr, sb_str(&h));
    write_file(prog, prog_text);
    /* plain gcc: no LLVM, no lossc library on the line */
    snprintf(cmd, sizeof cmd,
             "cd %s && gcc -std=c11 -O1 -Wall -Wextra -Werror prog.c k.o -lm -o prog "
             "> build.log 2>&1 && ./prog > run.log 2>&1",
             dir);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat %s/build.log %s/run.log 1>&2", dir, dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no logs)\n");
        fail_msg("AOT program for cpu %s failed (status %d); files in %s", cpu ? cpu : "host",
                 rc, dir);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    sb_free(&err);
    sb_free(&h);
    ir_graph_free((ir_graph *)gs[0]);
    ir_graph_free((ir_graph *)gs[1]);
}

static void test_aot_host(void **state)
{
    (void)state;
    build_and_run(NULL);
}

static void test_aot_x86_64_v3(void **state)
{
    (void)state;
    build_and_run("x86-64-v3");
}

/* A CPU name LLVM does not know, or a 32-bit one, is an error with a
 * message (LLVM itself would abort the process when emitting code), and
 * nothing is written; a real name still builds. */
static void test_unknown_cpu(void **state)
{
    (void)state;
    const ir_graph *g = loss_mse(DT_F32);
    const char *sym = "lk_mse";
    const char *path = "/tmp/lossc_unknown_cpu.o";
    static const char *const bad[] = {"nosuchcpu", "i686", "pentium4", "Haswell"};
    for (size_t i = 0; i < SUP_ARRAY_LEN(bad); i++) {
        remove(path);
        cg_options opts = {.cpu = bad[i]};
        strbuf err;
        sb_init(&err);
        assert_false(cg_emit_object(&g, &sym, 1, &opts, path, &err));
        assert_non_null(strstr(sb_str(&err), "unknown CPU"));
        assert_non_null(strstr(sb_str(&err), bad[i]));
        assert_null(fopen(path, "rb"));
        sb_free(&err);
        sb_init(&err);
        assert_null(cg_jit_create(&opts, &err));
        assert_non_null(strstr(sb_str(&err), "unknown CPU"));
        sb_free(&err);
    }
    cg_options opts = {.cpu = "haswell"};
    strbuf err;
    sb_init(&err);
    if (!cg_emit_object(&g, &sym, 1, &opts, path, &err))
        fail_msg("haswell: %s", sb_str(&err));
    remove(path);
    sb_free(&err);
    ir_graph_free((ir_graph *)g);
}

static void test_header_shape(void **state)
{
    (void)state;
    const ir_graph *g = loss_huber(DT_F32);
    const char *sym = "huber_k";
    strbuf h;
    sb_init(&h);
    cg_emit_header(&g, &sym, 1, NULL, &h);
    const char *s = sb_str(&h);
    assert_non_null(strstr(s, "typedef struct lk_args"));      /* abi.h copied */
    assert_non_null(strstr(s, "typedef struct huber_k_args")); /* typed args */
    assert_non_null(strstr(s, "const float *delta; /* f32 scalar; NULL: 1 */"));
    assert_non_null(strstr(s, "float *grad_pred; /* out: f32[N] */"));
    assert_non_null(strstr(s, "static inline int32_t huber_k_run("));
    sb_free(&h);
    ir_graph_free((ir_graph *)g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_shape),
        cmocka_unit_test(test_aot_host),
        cmocka_unit_test(test_aot_x86_64_v3),
        cmocka_unit_test(test_unknown_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
