/* testutil.h - what every lossc test includes: cmocka and a few asserts on
 * numbers with stated tolerances. */
#ifndef LOSSC_TESTUTIL_H
#define LOSSC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

/* |got - want| <= atol + rtol * |want|, NaN equal to NaN, inf to the same inf. */
static inline int tu_close(double got, double want, double rtol, double atol)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

#define assert_close(got, want, rtol, atol)                                        \
    do {                                                                           \
        double g_ = (got), w_ = (want);                                            \
        if (!tu_close(g_, w_, (rtol), (atol)))                                     \
            fail_msg("%s = %.17g, want %.17g (rtol %g, atol %g)", #got, g_, w_,    \
                     (double)(rtol), (double)(atol));                              \
    } while (0)

/* Text equality that prints both sides on failure (golden tests). */
#define assert_text_equal(got, want)                                               \
    do {                                                                           \
        const char *g_ = (got), *w_ = (want);                                      \
        if (strcmp(g_, w_) != 0)                                                   \
            fail_msg("text differs.\n--- got:\n%s--- want:\n%s", g_, w_);          \
    } while (0)

#endif
