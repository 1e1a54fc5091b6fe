/* test_rt_bind.c - API misuse, with hand-written kernels (fixture.h): every
 * error returns the right status and a message naming the culprit, and leaves
 * every output byte-for-byte as it was (outputs are pre-filled with a
 * sentinel and compared after each failing call). */
#include "testutil.h"

#include "fixture.h"

enum { N = 10 };

typedef struct fx {
    lossc_ctx *ctx;
    rt_kernel fwd, bwd, pick;
    lossc_loss *sq, *pk;
    float p[N], t[N], loss, gp[N], gt[N];
    float x[N * 3], rows[N], ploss;
    int64_t y[N];
} fx;

static const unsigned char SENTINEL = 0xA5;

static void fill_sentinel(fx *f)
{
    memset(&f->loss, SENTINEL, sizeof f->loss);
    memset(f->gp, SENTINEL, sizeof f->gp);
    memset(f->gt, SENTINEL, sizeof f->gt);
    memset(f->rows, SENTINEL, sizeof f->rows);
    memset(&f->ploss, SENTINEL, sizeof f->ploss);
}

static void assert_untouched(const fx *f)
{
    const unsigned char *bufs[] = {(const void *)&f->loss, (const void *)f->gp,
                                   (const void *)f->gt, (const void *)f->rows,
                                   (const void *)&f->ploss};
    size_t sizes[] = {sizeof f->loss, sizeof f->gp, sizeof f->gt, sizeof f->rows,
                      sizeof f->ploss};
    for (size_t b = 0; b < SUP_ARRAY_LEN(bufs); b++)
        for (size_t i = 0; i < sizes[b]; i++)
            if (bufs[b][i] != SENTINEL)
                fail_msg("output buffer %zu byte %zu was written", b, i);
}

#define assert_msg_has(obj, text)                                                  \
    do {                                                                           \
        const char *m_ = lossc_loss_error(obj);                                    \
        if (!strstr(m_, (text)))                                                   \
            fail_msg("message \"%s\" lacks \"%s\"", m_, (text));                   \
    } while (0)

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_int_equal(lossc_ctx_new(&f->ctx, &(lossc_ctx_opts){.threads = 2}), LOSSC_OK);
    fx_sqerr(&f->fwd, &f->bwd);
    fx_pick(&f->pick);
    assert_int_equal(rt_loss_new(f->ctx, &f->fwd, &f->bwd, &f->sq), LOSSC_OK);
    assert_int_equal(rt_loss_new(f->ctx, &f->pick, NULL, &f->pk), LOSSC_OK);
    for (int i = 0; i < N; i++) {
        f->p[i] = (float)i / 4, f->t[i] = (float)(N - i) / 8;
        f->y[i] = i % 3;
        for (int c = 0; c < 3; c++)
            f->x[i * 3 + c] = (float)(i * 10 + c);
    }
    fill_sentinel(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    lossc_ctx_free(f->ctx); /* frees the losses too */
    rt_kernel_release(&f->fwd);
    rt_kernel_release(&f->bwd);
    rt_kernel_release(&f->pick);
    free(f);
    return 0;
}

/* Bind everything sqerr needs, with sentinel-filled outputs. */
static void bind_sq(fx *f, tt *p, tt *t, tt *l, tt *gp, tt *gt)
{
    assert_int_equal(lossc_bind_input(f->sq, "p", &p->t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(f->sq, "t", &t->t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->sq, "loss", &l->t), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(f->sq, "p", &gp->t), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(f->sq, "t", &gt->t), LOSSC_OK);
}

static void test_introspection(void **state)
{
    fx *f = *state;
    assert_string_equal(lossc_loss_name(f->sq), "sqerr");
    assert_int_equal(lossc_num_inputs(f->sq), 4); /* p, t, scale, dloss */
    assert_int_equal(lossc_num_outputs(f->sq), 3);
    lossc_info info;
    assert_int_equal(lossc_input_info(f->sq, 0, &info), LOSSC_OK);
    assert_string_equal(info.name, "p");
    assert_int_equal(info.role, LOSSC_INPUT);
    assert_int_equal(info.ndim, 1);
    assert_string_equal(info.dims[0], "N");
    assert_int_equal(info.fixed[0], -1);
    assert_int_equal(lossc_input_info(f->sq, 2, &info), LOSSC_OK);
    assert_int_equal(info.role, LOSSC_SCALAR);
    assert_true(info.has_default);
    assert_close(info.default_value, 2.0, 0, 0);
    assert_int_equal(lossc_input_info(f->sq, 3, &info), LOSSC_OK);
    assert_int_equal(info.role, LOSSC_DLOSS);
    assert_int_equal(lossc_output_info(f->sq, 1, &info), LOSSC_OK);
    assert_string_equal(info.name, "grad_p");
    assert_string_equal(info.of, "p");
    assert_int_equal(lossc_input_info(f->sq, 4, &info), LOSSC_ERR_ARG);
    assert_int_equal(lossc_output_info(f->pk, 1, &info), LOSSC_OK);
    assert_string_equal(info.name, "rows");
    assert_int_equal(info.ndim, 1);
    assert_string_equal(info.dims[0], "N");
}

static void test_unknown_names(void **state)
{
    fx *f = *state;
    TT(p, f->p, F32, N);
    assert_int_equal(lossc_bind_input(f->sq, "q", &p.t), LOSSC_ERR_UNKNOWN_NAME);
    assert_msg_has(f->sq, "no input named 'q'");
    assert_msg_has(f->sq, "p, t, scale, dloss");
    assert_int_equal(lossc_bind_output(f->sq, "lost", &p.t), LOSSC_ERR_UNKNOWN_NAME);
    assert_msg_has(f->sq, "no output named 'lost'");
    assert_int_equal(lossc_bind_grad(f->sq, "nope", &p.t), LOSSC_ERR_UNKNOWN_NAME);
    assert_int_equal(lossc_bind_scalar(f->sq, "scal", 1), LOSSC_ERR_UNKNOWN_NAME);
    assert_int_equal(lossc_unbind(f->sq, "zz"), LOSSC_ERR_UNKNOWN_NAME);
    /* an input that exists but has no gradient */
    TT(r, f->rows, F32, N);
    assert_int_equal(lossc_bind_grad(f->pk, "x", &r.t), LOSSC_ERR_ARG);
    assert_msg_has(f->pk, "forward-only");
    assert_int_equal(lossc_bind_scalar(f->sq, "p", 1), LOSSC_ERR_ARG);
    assert_msg_has(f->sq, "'p' is a tensor input");
    assert_int_equal(lossc_shape_of(f->sq, "nothing", &(int){0}, (int64_t[8]){0}),
                     LOSSC_ERR_UNBOUND); /* inputs first: none are bound */
}

static void test_null_arguments(void **state)
{
    fx *f = *state;
    TT(p, f->p, F32, N);
    assert_int_equal(lossc_bind_input(NULL, "p", &p.t), LOSSC_ERR_NULL);
    assert_int_equal(lossc_bind_input(f->sq, NULL, &p.t), LOSSC_ERR_NULL);
    assert_int_equal(lossc_bind_input(f->sq, "p", NULL), LOSSC_ERR_NULL);
    assert_msg_has(f->sq, "input 'p': the tensor is NULL");
    TT(nodata, NULL, F32, N);
    assert_int_equal(lossc_bind_input(f->sq, "p", &nodata.t), LOSSC_ERR_NULL);
    assert_msg_has(f->sq, "input 'p': data pointer is NULL");
    TT(empty, NULL, F32, 0); /* no elements: no data needed */
    assert_int_equal(lossc_bind_input(f->sq, "p", &empty.t), LOSSC_OK);
    tt noshape = p;
    noshape.t.shape = NULL;
    assert_int_equal(lossc_bind_output(f->sq, "grad_p", &noshape.t), LOSSC_ERR_NULL);
    assert_msg_has(f->sq, "gradient 'grad_p': shape is NULL");
    assert_int_equal(lossc_forward(NULL), LOSSC_ERR_NULL);
    assert_int_equal(lossc_forward_backward(NULL), LOSSC_ERR_NULL);
    assert_non_null(lossc_loss_error(NULL));
    assert_non_null(lossc_ctx_error(NULL));
}

static void test_dtype_rank_device(void **state)
{
    fx *f = *state;
    double pd[N] = {0};
    TT(p64, pd, F64, N);
    assert_int_equal(lossc_bind_input(f->sq, "p", &p64.t), LOSSC_ERR_DTYPE);
    assert_msg_has(f->sq, "input 'p' is f64 but loss 'sqerr' declares it f32[N]");
    TT(half, f->p, ((DLDataType){kDLFloat, 16, 1}), N);
    assert_int_equal(lossc_bind_input(f->sq, "p", &half.t), LOSSC_ERR_DTYPE);
    assert_msg_has(f->sq, "unsupported dtype");
    TT(vec, f->p, ((DLDataType){kDLFloat, 32, 4}), N);
    assert_int_equal(lossc_bind_input(f->sq, "p", &vec.t), LOSSC_ERR_DTYPE);
    TT(p2, f->p, F32, 2, 5);
    assert_int_equal(lossc_bind_input(f->sq, "t", &p2.t), LOSSC_ERR_SHAPE);
    assert_msg_has(f->sq, "input 't' has rank 2 but loss 'sqerr' declares it f32[N]");
    TT(l1, &f->loss, F32, 1);
    assert_int_equal(lossc_bind_output(f->sq, "loss", &l1.t), LOSSC_ERR_SHAPE);
    assert_msg_has(f->sq, "output 'loss' has rank 1");
    TT(neg, f->p, F32, -3);
    assert_int_equal(lossc_bind_input(f->sq, "p", &neg.t), LOSSC_ERR_SHAPE);
    assert_msg_has(f->sq, "invalid shape [-3]");
    TT(gpu, f->p, F32, N);
    gpu.t.device.device_type = kDLCUDA;
    assert_int_equal(lossc_bind_input(f->sq, "p", &gpu.t), LOSSC_ERR_DEVICE);
    assert_msg_has(f->sq, "kDLCPU");
    int32_t yi[N] = {0};
    TT(y32, yi, I32, N);
    assert_int_equal(lossc_bind_input(f->pk, "y", &y32.t), LOSSC_ERR_DTYPE);
    assert_msg_has(f->pk, "input 'y' is i32 but loss 'pick' declares it i64[N]");
}

/* A failed bind unbinds: the run then says the input is missing. */
static void test_missing_input(void **state)
{
    fx *f = *state;
    TT(p, f->p, F32, N);
    TT(t, f->t, F32, N);
    TT0(l, &f->loss, F32);
    TT(gp, f->gp, F32, N);
    TT(gt, f->gt, F32, N);
    bind_sq(f, &p, &t, &l, &gp, &gt);
    assert_int_equal(lossc_bind_input(f->sq, "t", NULL), LOSSC_ERR_NULL);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_ERR_UNBOUND);
    assert_msg_has(f->sq, "input 't' is not bound");
    assert_untouched(f);
    assert_int_equal(lossc_bind_input(f->sq, "t", &t.t), LOSSC_OK);
    assert_int_equal(lossc_unbind(f->sq, "p"), LOSSC_OK);
    assert_int_equal(lossc_forward(f->sq), LOSSC_ERR_UNBOUND);
    assert_msg_has(f->sq, "input 'p' is not bound");
    assert_untouched(f);
}

static void test_size_disagreement(void **state)
{
    fx *f = *state;
    TT(p, f->p, F32, 7);
    TT(t, f->t, F32, 5);
    TT0(l, &f->loss, F32);
    TT(gp, f->gp, F32, 7);
    TT(gt, f->gt, F32, 7);
    bind_sq(f, &p, &t, &l, &gp, &gt);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_ERR_SHAPE);
    assert_string_equal(lossc_loss_error(f->sq), "input 't' has N = 5 but 'p' has N = 7");
    assert_untouched(f);
    /* pick: x fixes N and C; rows must be [N] */
    TT(x, f->x, F32, N, 3);
    TT(y, f->y, I64, N);
    TT0(pl, &f->ploss, F32);
    TT(rows, f->rows, F32, N - 1);
    assert_int_equal(lossc_bind_input(f->pk, "x", &x.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(f->pk, "y", &y.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->pk, "loss", &pl.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->pk, "rows", &rows.t), LOSSC_OK);
    assert_int_equal(lossc_forward(f->pk), LOSSC_ERR_SHAPE);
    assert_string_equal(lossc_loss_error(f->pk),
                        "output 'rows' must have shape [10] for these inputs, got [9]");
    assert_untouched(f);
    int nd;
    int64_t shape[LOSSC_MAX_RANK];
    assert_int_equal(lossc_shape_of(f->pk, "rows", &nd, shape), LOSSC_OK);
    assert_int_equal(nd, 1);
    assert_int_equal(shape[0], N);
}

static void test_aliasing(void **state)
{
    fx *f = *state;
    TT(p, f->p, F32, N);
    TT(t, f->t, F32, N);
    TT0(l, &f->loss, F32);
    TT(gp, f->gp, F32, N);
    TT(gt, f->gt, F32, N);
    bind_sq(f, &p, &t, &l, &gp, &gt);
    /* the gradient written over its own input */
    TT(inplace, f->p, F32, N);
    memcpy(f->rows, f->p, sizeof f->p); /* keep a copy to check p is untouched */
    assert_int_equal(lossc_bind_grad(f->sq, "p", &inplace.t), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_ERR_ALIAS);
    assert_msg_has(f->sq, "gradient 'grad_p' overlaps input 'p'");
    assert_memory_equal(f->rows, f->p, sizeof f->p);
    memset(f->rows, SENTINEL, sizeof f->rows);
    /* two outputs sharing memory (partly) */
    TT(gt_over, f->gp + 3, F32, N);
    assert_int_equal(lossc_bind_grad(f->sq, "p", &gp.t), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(f->sq, "t", &gt_over.t), LOSSC_OK);
    memset(f->gp, SENTINEL, sizeof f->gp);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_ERR_ALIAS);
    assert_msg_has(f->sq, "gradient 'grad_t' overlaps gradient 'grad_p'");
    assert_untouched(f);
    /* the loss inside an input's span; a stride-0 output */
    assert_int_equal(lossc_bind_grad(f->sq, "t", &gt.t), LOSSC_OK);
    TT0(l_in_t, &f->t[4], F32);
    assert_int_equal(lossc_bind_output(f->sq, "loss", &l_in_t.t), LOSSC_OK);
    assert_int_equal(lossc_forward(f->sq), LOSSC_ERR_ALIAS);
    assert_msg_has(f->sq, "output 'loss' overlaps input 't'");
    assert_int_equal(lossc_bind_output(f->sq, "loss", &l.t), LOSSC_OK);
    TT(bcast, f->gt, F32, N);
    bcast.t.strides = bcast.strides; /* strides[0] = 0: every element at one address */
    assert_int_equal(lossc_bind_grad(f->sq, "t", &bcast.t), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_ERR_ALIAS);
    assert_msg_has(f->sq, "gradient 'grad_t' has strides that make elements overlap");
    assert_untouched(f);
    /* inputs may share memory with each other (read-only) */
    assert_int_equal(lossc_bind_grad(f->sq, "t", &gt.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(f->sq, "t", &p.t), LOSSC_OK);
    assert_int_equal(lossc_forward_backward(f->sq), LOSSC_OK);
    assert_close(f->loss, 0.0, 0, 0);
}

static void test_label_out_of_range(void **state)
{
    fx *f = *state;
    f->y[3] = 12;
    TT(x, f->x, F32, N, 3);
    TT(y, f->y, I64, N);
    TT0(pl, &f->ploss, F32);
    TT(rows, f->rows, F32, N);
    assert_int_equal(lossc_bind_input(f->pk, "x", &x.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(f->pk, "y", &y.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->pk, "loss", &pl.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->pk, "rows", &rows.t), LOSSC_OK);
    assert_int_equal(lossc_forward(f->pk), LOSSC_ERR_INDEX);
    assert_string_equal(lossc_loss_error(f->pk), "label out of range: y[3] = 12 is not in "
                                                 "[0, 3) (input 'y', dim C, pick.loss:3:19)");
    assert_untouched(f);
    f->y[3] = 0;
    assert_int_equal(lossc_forward(f->pk), LOSSC_OK);
    assert_close(f->rows[3], 30.0, 0, 0);
}

static void test_unbound_scalar_without_default(void **state)
{
    fx *f = *state;
    f->fwd.g->inputs[2].has_default = false; /* scale has no default now */
    TT(p, f->p, F32, N);
    TT(t, f->t, F32, N);
    TT0(l, &f->loss, F32);
    assert_int_equal(lossc_bind_input(f->sq, "p", &p.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(f->sq, "t", &t.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(f->sq, "loss", &l.t), LOSSC_OK);
    assert_int_equal(lossc_forward(f->sq), LOSSC_ERR_UNBOUND);
    assert_msg_has(f->sq, "scalar 'scale' has no value");
    assert_untouched(f);
    assert_int_equal(lossc_bind_scalar(f->sq, "scale", 1.0), LOSSC_OK);
    assert_int_equal(lossc_forward(f->sq), LOSSC_OK);
    /* a scalar bound as a tensor must be 0-d and of its dtype */
    double s64 = 1;
    TT0(sd, &s64, F64);
    assert_int_equal(lossc_bind_input(f->sq, "scale", &sd.t), LOSSC_ERR_DTYPE);
    assert_msg_has(f->sq, "scalar 'scale' is f64 but loss 'sqerr' declares it f32");
    assert_int_equal(lossc_forward(f->sq), LOSSC_ERR_UNBOUND);
}

/* Run-time buffers come from the context's allocator: failing them is
 * LOSSC_ERR_NOMEM with nothing written. */
static int64_t fail_after = -1;
static void *failing_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    if (fail_after == 0) { /* fail this one allocation only */
        fail_after = -1;
        return NULL;
    }
    if (fail_after > 0)
        fail_after--;
    return realloc(ptr, size);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    lossc_ctx *ctx;
    fail_after = 0; /* the very first allocation: the context itself */
    assert_int_equal(lossc_ctx_new(&ctx, &(lossc_ctx_opts){.threads = 1,
                                                           .alloc = failing_realloc}),
                     LOSSC_ERR_NOMEM);
    assert_null(ctx);
    fail_after = -1;
    assert_int_equal(lossc_ctx_new(&ctx, &(lossc_ctx_opts){.threads = 1,
                                                           .alloc = failing_realloc}),
                     LOSSC_OK);
    rt_kernel fwd, bwd;
    fx_sqerr(&fwd, &bwd);
    lossc_loss *sq;
    assert_int_equal(rt_loss_new(ctx, &fwd, &bwd, &sq), LOSSC_OK);
    float p[N] = {1, 2, 3}, t[2 * N] = {0}, gp[N], loss;
    memset(gp, SENTINEL, sizeof gp);
    memset(&loss, SENTINEL, sizeof loss);
    TT(pp, p, F32, N);
    TT(tt2, t, F32, N); /* strided: every other element, so it needs a copy */
    tt2.t.strides = tt2.strides;
    tt2.strides[0] = 2;
    TT(gg, gp, F32, N);
    TT0(ll, &loss, F32);
    assert_int_equal(lossc_bind_input(sq, "p", &pp.t), LOSSC_OK);
    assert_int_equal(lossc_bind_input(sq, "t", &tt2.t), LOSSC_OK);
    assert_int_equal(lossc_bind_output(sq, "loss", &ll.t), LOSSC_OK);
    assert_int_equal(lossc_bind_grad(sq, "p", &gg.t), LOSSC_OK);
    int k;
    for (k = 0; k < 20; k++) { /* fail each of the run's allocations in turn */
        fail_after = k;
        lossc_status st = lossc_forward_backward(sq);
        bool failed = fail_after < 0;
        fail_after = -1;
        if (!failed)
            assert_int_equal(st, LOSSC_OK);
        if (st == LOSSC_OK)
            break;
        assert_int_equal(st, LOSSC_ERR_NOMEM);
        assert_non_null(strstr(lossc_loss_error(sq), "out of memory"));
        for (size_t i = 0; i < sizeof gp; i++)
            assert_int_equal(((unsigned char *)gp)[i], SENTINEL);
        assert_int_equal(((unsigned char *)&loss)[0], SENTINEL);
    }
    assert_true(k >= 5); /* buffers, dloss, the copy of t, scratch for grad_t */
    assert_int_equal(lossc_forward_backward(sq), LOSSC_OK);
    assert_close(loss, 2.0 * (1 + 4 + 9), 0, 0);
    lossc_ctx_free(ctx);
    rt_kernel_release(&fwd);
    rt_kernel_release(&bwd);
    sup_set_allocator(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_introspection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dtype_rank_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_disagreement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliasing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbound_scalar_without_default, setup, teardown),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
