/* test_rt_run.c - the thread pool and successful runs with hand-written
 * kernels (fixture.h): every chunk runs once; strided inputs and outputs
 * give the same numbers as dense ones; the upstream gradient defaults to
 * ones; scalars come from defaults, values or 0-d tensors; forward never
 * writes gradients; results are the same bits for 1, 2 and 7 threads; the
 * gradient check tells a right kernel from a wrong one. */
#include "testutil.h"

#include "fixture.h"

#include <pthread.h>

/* ---- the pool ----------------------------------------------------------------------- */

typedef struct counts {
    atomic_int hits[1000];
} counts;

static void count_chunk(void *ctx, int64_t c)
{
    counts *k = ctx;
    atomic_fetch_add(&k->hits[c], 1);
}

static void test_pool_runs_each_chunk_once(void **state)
{
    (void)state;
    int threads[] = {1, 2, 7};
    for (size_t i = 0; i < SUP_ARRAY_LEN(threads); i++) {
        rt_pool *p = rt_pool_new(threads[i]);
        assert_non_null(p);
        assert_int_equal(rt_pool_threads(p), threads[i]);
        for (int64_t n = 0; n <= 1000; n += 333) {
            counts *k = calloc(1, sizeof *k);
            for (int rep = 0; rep < 3; rep++)
                rt_pool_parallel(p, count_chunk, k, n);
            for (int64_t c = 0; c < 1000; c++)
                assert_int_equal(atomic_load(&k->hits[c]), c < n ? 3 : 0);
            free(k);
        }
        rt_pool_free(p);
    }
}

/* Two threads posting jobs to one pool at once: one runs inline. */
typedef struct racer {
    rt_pool *pool;
    counts *k;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < 50; i++)
        rt_pool_parallel(r->pool, count_chunk, r->k, 1000);
    return NULL;
}

static void test_pool_concurrent_callers(void **state)
{
    (void)state;
    rt_pool *p = rt_pool_new(3);
    counts *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    racer ra = {p, a}, rb = {p, b};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &ra);
    pthread_create(&tb, NULL, race, &rb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    for (int c = 0; c < 1000; c++) {
        assert_int_equal(atomic_load(&a->hits[c]), 50);
        assert_int_equal(atomic_load(&b->hits[c]), 50);
    }
    free(a);
    free(b);
    rt_pool_free(p);
}

/* ---- runs ---------------------------------------------------------------------------- */

enum { N = 1000 };

static double ref_sq(const float *p, const float *t, int n, double scale)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += ((double)p[i] - t[i]) * ((double)p[i] - t[i]);
    return s * scale;
}

static void fill(float *p, float *t, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (float)sin(i * 0.37) * 3;
        t[i] = (float)cos(i * 0.11);
    }
}

static void test_threads_bitwise_identical(void **state)
{
    (void)state;
    static float p[N], t[N], gp[3][N];
    float loss[3];
    fill(p, t, N);
    int threads[] = {1, 2, 7};
    for (int i = 0; i < 3; i++) {
        lossc_ctx *ctx;
        assert_int_equal(lossc_ctx_new(&ctx, &(lossc_ctx_opts){.threads = threads[i]}),
                         LOSSC_OK);
        assert_int_equal(lossc_ctx_threads(ctx), threads[i]);
        rt_kernel fwd, bwd;
        fx_sqerr(&fwd, &bwd);
        lossc_loss *sq;
        assert_int_equal(rt_loss_new(ctx, &fwd, &bwd, &sq), LOSSC_OK);
        TT(pp, p, F32, N);
        TT(tt_, t, F32, N);
        TT(gg, gp[i], F32, N);
        TT0(ll, &loss[i], F32);
        assert_int_equal(lossc_bind_input(sq, "p", &pp.t), LOSSC_OK);
        assert_int_equal(lossc_bind_input(sq, "t", &tt_.t), LOSSC_OK);
        assert_int_equal(lossc_bind_output(sq, "loss", &ll.t), LOSSC_OK);
        assert_int_equal(lossc_bind_grad(sq, "p", &gg.t), LOSSC_OK);
        atomic_store(&fx_chunk_calls, 0);
        assert_int_equal(lossc_forward_backward(sq), LOSSC_OK);
        assert_int_equal(atomic_load(&fx_chunk_calls), (N + SQ_CHUNK - 1) / SQ_CHUNK);
        assert_close(loss[i], ref_sq(p, t, N, 2.0), 1e-6, 0);
        lossc_ctx_free(ctx);
        rt_kernel_release(&fwd);
        rt_kernel_release(&bwd);
    }
    for (int i = 1; i < 3; i++) {
        assert_memory_equal(&loss[i], &loss[0], sizeof(float));
        assert_memory_equal(gp[i], gp[0], sizeof gp[0]);
    }
}

typedef struct rfx {
    lossc_ctx *ctx;
    rt_kernel fwd, bwd;
    lossc_loss *sq;
} rfx;

static int setup(void **state)
{
    rfx *f = calloc(1, sizeof *f);
    assert_int_equal(lossc_ctx_new(&f->ctx, &(lossc_ctx_opts){.threads = 2}), LOSSC_OK);
    fx_sqerr(&f->fwd, &f->bwd);
    assert_int_equal(rt_loss_new(f->ctx, &f->fwd, &f->bwd, &f->sq), LOSSC_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    rfx *f = *state;
    lossc_ctx_free(f->ctx);
    rt_kernel_release(&f->fwd);
    rt_kernel_release(&f->bwd);
    free(f);
    return 0;
}

/* p read from every third element, t backwards (negative stride), grad_p
 * written to every other element: the same numbers as the dense run. */
static void test_strided(void **state)
{
    rfx *f = *state;
    enum { M = 37 };
    float p[M], t[M], pbig[3 * M], tbig[M], gd[M], gs[2 * M], ld, ls;
    fill(p, t, M);
    for (int i = 0; i < M; i++) {
        pbig[3 * i] = p[i];
        tbig[M - 1 - i] = t[i];
    }
    memset(gs, 0xA5, sizeof gs);
    TT(pp, p, F32, M);
    TT(tt_, t, F32, M);
    TT(gg, gd, F32, M);
    TT0(ll, &ld, F32);
    assert_int_equal(lossc_bind_input(f->sq, "p", &pp.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(f->sq, "t", &tt_.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->sq, "loss", &ll.t), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(f->sq, "p", &gg.t), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_OK);

    TT(ps, pbig, F32, M);
    ps.t.strides = ps.strides;
    ps.strides[0] = 3;
    TT(ts, tbig, F32, M);
    ts.t.strides = ts.strides;
    ts.strides[0] = -1;
    ts.t.byte_offset = (M - 1) * sizeof(float);
    TT(gs_, gs, F32, M);
    gs_.t.strides = gs_.strides;
    gs_.strides[0] = 2;
    TT0(ls_, &ls, F32);
    assert_int_equal(lossc_bind_input(f->sq, "p", &ps.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(f->sq, "t", &ts.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->sq, "loss", &ls_.t), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(f->sq, "p", &gs_.t), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_OK);
    assert_memory_equal(&ls, &ld, sizeof ls);
    for (int i = 0; i < M; i++) {
        assert_memory_equal(&gs[2 * i], &gd[i], sizeof(float));
        uint32_t bits;
        memcpy(&bits, &gs[2 * i + 1], 4);
        assert_int_equal(bits, 0xA5A5A5A5u); /* the gaps stay as they were */
    }
}

static void test_scalars_and_dloss(void **state)
{
    rfx *f = *state;
    enum { M = 5 };
    float p[M] = {1, 2, 3, 4, 5}, t[M] = {0}, g[M], loss;
    TT(pp, p, F32, M);
    TT(tt_, t, F32, M);
    TT(gg, g, F32, M);
    TT0(ll, &loss, F32);
    assert_int_equal(lossc_bind_input(f->sq, "p", &pp.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(f->sq, "t", &tt_.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->sq, "loss", &ll.t), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(f->sq, "p", &gg.t), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_OK); /* scale = 2 (default) */
    assert_close(loss, 110, 0, 0);
    assert_close(g[4], 20, 0, 0); /* 2 * 2 * 5 * dloss (1) */
    assert_int_equal(lossc_bind_scalar(f->sq, "scale", 0.5), LOSSC_OK);
    float dl = 3, s = 4;
    TT0(dd, &dl, F32);
    assert_int_equal(lossc_bind_input(f->sq, "dloss", &dd.t), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_OK);
    assert_close(loss, 27.5, 0, 0);
    assert_close(g[4], 15, 0, 0); /* 2 * 0.5 * 5 * 3 */
    TT0(ss, &s, F32);
    assert_int_equal(lossc_bind_input(f->sq, "scale", &ss.t), LOSSC_OK);
    assert_int_equal(lossc_forward(f->sq), LOSSC_OK);
    assert_close(loss, 220, 0, 0);
    /* a dloss of the wrong rank */
    TT(d1, &dl, F32, 1);
    assert_int_equal(lossc_bind_input(f->sq, "dloss", &d1.t), LOSSC_ERR_SHAPE);
}

/* A loss that is not a scalar: its gradient is that of its sum unless an
 * upstream tensor is bound; a forward run on a backward-only loss writes no
 * gradient. */
static void test_nonscalar_loss(void **state)
{
    rfx *f = *state;
    rt_kernel bwd;
    fx_sqdiff(&bwd);
    lossc_loss *sd;
    assert_int_equal(rt_loss_new(f->ctx, NULL, &bwd, &sd), LOSSC_OK);
    float p[3] = {1, 2, 3}, t[3] = {0, 0, 1}, l[3], g[3], dl[3] = {1, 10, 100};
    TT(pp, p, F32, 3);
    TT(tt_, t, F32, 3);
    TT(ll, l, F32, 3);
    TT(gg, g, F32, 3);
    assert_int_equal(lossc_bind_input(sd, "p", &pp.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(sd, "t", &tt_.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(sd, "loss", &ll.t), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(sd, "p", &gg.t), LOSSC_OK);
    int nd;
    int64_t shape[LOSSC_MAX_RANK];
    assert_int_equal(lossc_shape_of(sd, "dloss", &nd, shape), LOSSC_OK);
    assert_int_equal(nd, 1);
    assert_int_equal(shape[0], 3);
    assert_int_equal(lossc_forward_backward(sd), LOSSC_OK);
    assert_close(l[2], 4, 0, 0);
    assert_close(g[0], 2, 0, 0);
    assert_close(g[2], 4, 0, 0);
    TT(dd, dl, F32, 3);
    assert_int_equal(lossc_bind_input(sd, "dloss", &dd.t), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(sd), LOSSC_OK);
    assert_close(g[1], 40, 0, 0);
    assert_close(g[2], 400, 0, 0);
    TT(d2, dl, F32, 2);
    assert_int_equal(lossc_bind_input(sd, "dloss", &d2.t), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(sd), LOSSC_ERR_SHAPE);
    assert_string_equal(lossc_loss_error(sd), "upstream gradient 'dloss' has N = 2 but 'p' has N = 3");
    assert_int_equal(lossc_unbind(sd, "dloss"), LOSSC_OK);
    memset(g, 0xA5, sizeof g);
    p[0] = 7;
    assert_int_equal(lossc_forward(sd), LOSSC_OK);
    assert_close(l[0], 49, 0, 0);
    for (size_t i = 0; i < sizeof g; i++)
        assert_int_equal(((unsigned char *)g)[i], 0xA5);
    /* the gradient check weighs the loss by the upstream gradient too */
    const lossc_gradcheck_result *r;
    int n, ok;
    assert_int_equal(lossc_bind_input(sd, "dloss", &dd.t), LOSSC_OK);
    assert_int_equal(lossc_gradcheck(sd, -1, 1, 0, -1, &r, &n, &ok), LOSSC_OK);
    assert_true(ok);
    assert_int_equal(n, 1);
    assert_true(r[0].fd_max_rel < 1e-6);
    lossc_loss_free(sd);
    rt_kernel_release(&bwd);
}

/* A kernel whose gradient for p is off by 1%: the check must say so. */
static int32_t sqerr_bwd_wrong(const lk_args *a)
{
    int32_t rc = sqerr_bwd(a);
    float *gp = a->bufs[5];
    for (int64_t i = 0; i < a->dims[0]; i++)
        gp[i] *= 1.01f;
    return rc;
}

static void test_gradcheck(void **state)
{
    rfx *f = *state;
    enum { M = 50 };
    float p[M], t[M], gp[M], loss;
    fill(p, t, M);
    memset(gp, 0xA5, sizeof gp);
    memset(&loss, 0xA5, sizeof loss);
    TT(pp, p, F32, M);
    TT(tt_, t, F32, M);
    TT(gg, gp, F32, M);
    TT0(ll, &loss, F32);
    assert_int_equal(lossc_bind_input(f->sq, "p", &pp.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(f->sq, "t", &tt_.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->sq, "loss", &ll.t), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(f->sq, "p", &gg.t), LOSSC_OK);
    assert_int_equal(lossc_bind_scalar(f->sq, "scale", 0.75), LOSSC_OK);
    const lossc_gradcheck_result *r;
    int n, ok;
    assert_int_equal(lossc_gradcheck(f->sq, -1, 7, 0, -1, &r, &n, &ok), LOSSC_OK);
    assert_true(ok);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].input, "p");
    assert_string_equal(r[1].input, "t");
    assert_int_equal(r[0].count, M);
    assert_int_equal(r[0].fd_checked, M);
    assert_true(r[0].ref_max_rel < 1e-6); /* f32 kernel vs f64 reference */
    assert_true(r[0].fd_max_rel < 1e-5);
    /* bound outputs are not written by a check */
    for (size_t i = 0; i < sizeof gp; i++)
        assert_int_equal(((unsigned char *)gp)[i], 0xA5);
    /* a few random elements only */
    assert_int_equal(lossc_gradcheck(f->sq, 3, 7, 0, -1, &r, &n, &ok), LOSSC_OK);
    assert_int_equal(r[1].fd_checked, 3);
    assert_true(ok);
    /* a wrong gradient fails, against both references */
    f->bwd.fn = sqerr_bwd_wrong;
    assert_int_equal(lossc_gradcheck(f->sq, 5, 7, 0, -1, &r, &n, &ok), LOSSC_OK);
    assert_false(ok);
    assert_false(r[0].passed);
    assert_true(r[1].passed);
    assert_close(r[0].ref_max_rel, 0.01 / 1.01, 1e-3, 0);
    assert_close(r[0].fd_max_rel, 0.01 / 1.01, 1e-3, 0);
    /* run-time errors come through as from a run */
    TT(short_t, t, F32, M - 1);
    assert_int_equal(lossc_bind_input(f->sq, "t", &short_t.t), LOSSC_OK);
    assert_int_equal(lossc_gradcheck(f->sq, 5, 7, 0, -1, &r, &n, &ok), LOSSC_ERR_SHAPE);
    assert_int_equal(lossc_gradcheck(f->sq, 5, 7, 0, -1, NULL, &n, &ok), LOSSC_ERR_NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_runs_each_chunk_once),
        cmocka_unit_test(test_pool_concurrent_callers),
        cmocka_unit_test(test_threads_bitwise_identical),
        cmocka_unit_test_setup_teardown(test_strided, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scalars_and_dloss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonscalar_loss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gradcheck, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
