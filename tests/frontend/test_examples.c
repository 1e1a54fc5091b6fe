/* test_examples.c - every loss in examples/ compiles, and the reference
 * interpreter gives the values computed here independently (plain C double
 * loops, or numbers from PyTorch where noted). */
#include "fe_eval.h"

#define N_MAX 64

static double huber_ref(const double *p, const double *t, int n, double delta)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        double a = fabs(p[i] - t[i]);
        s += a <= delta ? 0.5 * a * a : delta * (a - 0.5 * delta);
    }
    return s / n;
}

static void test_huber(void **state)
{
    (void)state;
    uint64_t seed = 1;
    double p[7], t[7], delta = 0.7;
    fr_fill(p, 7, &seed, -3, 3);
    fr_fill(t, 7, &seed, -3, 3);
    fe_run r;
    fr_init(&r, ft_compile_file("examples/huber.loss", NULL, NULL, 0));
    fr_dim(&r, "N", 7);
    fr_in(&r, "pred", p);
    fr_in(&r, "target", t);
    fr_eval(&r); /* delta unbound: its default 1.0 */
    assert_close(fr_out(&r, "loss")[0], huber_ref(p, t, 7, 1.0), 1e-14, 0);
    sup_free(r.outputs[0]);
    fr_in(&r, "delta", &delta);
    fr_eval(&r);
    assert_close(fr_out(&r, "loss")[0], huber_ref(p, t, 7, 0.7), 1e-14, 0);
    fr_free(&r);
}

static void test_mse(void **state)
{
    (void)state;
    uint64_t seed = 2;
    double p[9], t[9], want = 0;
    fr_fill(p, 9, &seed, -3, 3);
    fr_fill(t, 9, &seed, -3, 3);
    for (int i = 0; i < 9; i++)
        want += (p[i] - t[i]) * (p[i] - t[i]) / 9;
    fe_run r;
    fr_init(&r, ft_compile_file("examples/mse.loss", NULL, NULL, 0));
    fr_dim(&r, "N", 9);
    fr_in(&r, "pred", p);
    fr_in(&r, "target", t);
    fr_eval(&r);
    assert_close(fr_out(&r, "loss")[0], want, 1e-14, 0);
    fr_free(&r);
}

static void test_bce_logits(void **state)
{
    (void)state;
    /* Extreme logits included: the naive formula would overflow. */
    double x[6] = {-800, -3, -0.5, 0, 2, 900}, y[6] = {1, 0, 1, 0.3, 1, 0};
    double want = 0;
    for (int i = 0; i < 6; i++) {
        double sp = x[i] > 30 ? x[i] : x[i] < -30 ? 0 : log1p(exp(x[i]));
        want += (sp - x[i] * y[i]) / 6;
    }
    fe_run r;
    fr_init(&r, ft_compile_file("examples/bce_logits.loss", NULL, NULL, 0));
    fr_dim(&r, "N", 6);
    fr_in(&r, "logits", x);
    fr_in(&r, "target", y);
    fr_eval(&r);
    assert_close(fr_out(&r, "loss")[0], want, 1e-14, 1e-300);
    fr_free(&r);
}

/* Weighted cross-entropy by hand: -w[y] * log_softmax(x)[y]. */
static void ce_ref(const double *x, const double *y, const double *w, int n, int c,
                   double *per, double *wsum)
{
    *wsum = 0;
    for (int i = 0; i < n; i++) {
        double m = -INFINITY, s = 0;
        for (int k = 0; k < c; k++)
            m = fmax(m, x[i * c + k]);
        for (int k = 0; k < c; k++)
            s += exp(x[i * c + k] - m);
        int yi = (int)y[i];
        per[i] = -w[yi] * (x[i * c + yi] - m - log(s));
        *wsum += w[yi];
    }
}

static void test_ce(void **state)
{
    (void)state;
    enum { N = 5, C = 4 };
    uint64_t seed = 3;
    double x[N * C], y[N], w[C], per[N], wsum;
    fr_fill(x, N * C, &seed, -4, 4);
    fr_labels(y, N, &seed, C);
    fr_fill(w, C, &seed, 0.1, 2);
    ce_ref(x, y, w, N, C, per, &wsum);
    double sum = 0;
    for (int i = 0; i < N; i++)
        sum += per[i];
    const char *red[] = {"mean", "sum", "none"};
    for (int k = 0; k < 3; k++) {
        fe_setting set = {"reduction", red[k], false};
        fe_run r;
        fr_init(&r, ft_compile_file("examples/ce.loss", NULL, &set, 1));
        fr_dim(&r, "N", N);
        fr_dim(&r, "C", C);
        fr_in(&r, "logits", x);
        fr_in(&r, "y", y);
        fr_in(&r, "weight", w);
        fr_eval(&r);
        const double *out = fr_out(&r, "loss");
        if (k == 0)
            assert_close(out[0], sum / wsum, 1e-14, 0);
        else if (k == 1)
            assert_close(out[0], sum, 1e-14, 0);
        else
            for (int i = 0; i < N; i++)
                assert_close(out[i], per[i], 1e-14, 0);
        fr_free(&r);
    }
}

/* InfoNCE by hand: row i's positive is (i + N/2) % N; the diagonal is out. */
static double info_nce_ref(const double *z, int n, int d, double t)
{
    double total = 0;
    for (int i = 0; i < n; i++) {
        double s[N_MAX], m = -INFINITY, acc = 0;
        for (int j = 0; j < n; j++) {
            s[j] = 0;
            for (int k = 0; k < d; k++)
                s[j] += z[i * d + k] * z[j * d + k];
            s[j] /= t;
            if (j != i)
                m = fmax(m, s[j]);
        }
        for (int j = 0; j < n; j++)
            if (j != i)
                acc += exp(s[j] - m);
        total += m + log(acc) - s[(i + n / 2) % n];
    }
    return total / n;
}

static void test_info_nce(void **state)
{
    (void)state;
    enum { N = 6, D = 3 };
    uint64_t seed = 4;
    double z[N * D], t = 0.5;
    fr_fill(z, N * D, &seed, -1, 1);
    fe_run r;
    fr_init(&r, ft_compile_file("examples/info_nce.loss", NULL, NULL, 0));
    fr_dim(&r, "N", N);
    fr_dim(&r, "D", D);
    fr_in(&r, "z", z);
    fr_eval(&r);
    assert_close(fr_out(&r, "loss")[0], info_nce_ref(z, N, D, 0.1), 1e-13, 0);
    sup_free(r.outputs[0]);
    fr_in(&r, "t", &t);
    fr_eval(&r);
    assert_close(fr_out(&r, "loss")[0], info_nce_ref(z, N, D, 0.5), 1e-13, 0);
    fr_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huber),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_bce_logits),
        cmocka_unit_test(test_ce),
        cmocka_unit_test(test_info_nce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
