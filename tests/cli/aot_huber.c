/* aot_huber.c - a plain C program linked with only the object that
 * `lossc build examples/huber.loss --entry huber` writes and -lm (no LLVM,
 * no lossc library): its numbers against a double loop written here.
 *
 * Tolerances: gradients of pred and target are elementwise (rtol 1e-6);
 * the loss and grad_delta are means over up to 10^6 f32 terms (rtol 1e-4).
 * The chunked run (chunks in reverse order through a hand-made `parallel`)
 * must give the same bits as the serial one (abi.h's promise).
 */
#include "huber.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void close_to(const char *what, long n, double got, double want, double rtol)
{
    if (!(fabs(got - want) <= rtol * fabs(want) + 1e-12)) {
        printf("N = %ld: %s = %.9g, want %.9g (rtol %g)\n", n, what, got, want, rtol);
        failures++;
    }
}

/* Runs the chunks last to first: a schedule no thread pool would pick. */
static void reverse_parallel(void *pool, lk_task_fn fn, void *ctx, int64_t nchunks)
{
    (void)pool;
    for (int64_t c = nchunks - 1; c >= 0; c--)
        fn(ctx, c);
}

static void check(long n, float delta)
{
    float *p = malloc(sizeof(float) * (size_t)n), *t = malloc(sizeof(float) * (size_t)n);
    float *gp = malloc(sizeof(float) * (size_t)n), *gt = malloc(sizeof(float) * (size_t)n);
    float *gp2 = malloc(sizeof(float) * (size_t)n), *gt2 = malloc(sizeof(float) * (size_t)n);
    unsigned long long s = 12345 + (unsigned long long)n;
    for (long i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(s >> 11) * 0x1p-53 * 6 - 3);
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (float)((double)(s >> 11) * 0x1p-53 * 2 - 1);
    }
    double ref = 0, ref_gd = 0;
    for (long i = 0; i < n; i++) {
        double d = (double)p[i] - t[i], a = fabs(d);
        ref += a <= delta ? 0.5 * d * d : delta * (a - 0.5 * delta);
        ref_gd += a <= delta ? 0 : a - delta;
    }
    ref /= (double)n;
    ref_gd /= (double)n;

    float loss = 0, loss_b = 0, gd = 0, gd2 = 0, loss2 = 0, one = 1;
    lk_error err = {0};
    huber_forward_args fa = {.pred = p, .target = t, .delta = &delta, .loss = &loss, .N = n};
    if (huber_forward_run(&fa, &err) != 0) {
        printf("N = %ld: forward failed (%d)\n", n, err.code);
        failures++;
    }
    close_to("forward loss", n, loss, ref, 1e-4);

    huber_backward_args ba = {.pred = p, .target = t, .delta = &delta, .dloss = &one,
                              .loss = &loss_b, .grad_pred = gp, .grad_target = gt,
                              .grad_delta = &gd, .N = n};
    if (huber_backward_run(&ba, &err) != 0) {
        printf("N = %ld: backward failed (%d)\n", n, err.code);
        failures++;
    }
    close_to("backward loss", n, loss_b, ref, 1e-4);
    close_to("grad_delta", n, gd, ref_gd, 1e-4);
    for (long i = 0; i < n; i++) {
        double d = (double)p[i] - t[i];
        double want = (fabs(d) <= delta ? d : (d > 0 ? delta : -delta)) / (double)n;
        close_to("grad_pred[i]", n, gp[i], want, 1e-6);
        close_to("grad_target[i]", n, gt[i], -want, 1e-6);
        if (failures > 10)
            break;
    }

    huber_backward_args ba2 = ba;
    ba2.loss = &loss2, ba2.grad_pred = gp2, ba2.grad_target = gt2, ba2.grad_delta = &gd2;
    huber_backward_run_parallel(&ba2, &err, reverse_parallel, NULL);
    if (memcmp(&loss2, &loss_b, sizeof loss2) || memcmp(&gd2, &gd, sizeof gd) ||
        memcmp(gp2, gp, sizeof(float) * (size_t)n) || memcmp(gt2, gt, sizeof(float) * (size_t)n)) {
        printf("N = %ld: chunks run in reverse order changed the bits\n", n);
        failures++;
    }
    free(p), free(t), free(gp), free(gt), free(gp2), free(gt2);
}

int main(void)
{
    const long sizes[] = {1, 7, 1000, 1000003};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check(sizes[i], 1.0f);
        check(sizes[i], 0.3f);
    }
    if (failures) {
        printf("aot_huber: %d failure(s)\n", failures);
        return 1;
    }
    printf("aot_huber: all passed\n");
    return 0;
}
