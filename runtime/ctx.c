/* ctx.c - the context: options, the thread pool, the allocator hook, status
 * names and messages. The compiler half (JIT, cache filling) is compile.c;
 * the context only owns and frees what it made. */
#include "runtime/rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *lossc_version(void) { return LOSSC_VERSION; }

const char *lossc_status_name(lossc_status s)
{
    static const char *const names[] = {
        [LOSSC_OK] = "LOSSC_OK",
        [LOSSC_ERR_SYNTAX] = "LOSSC_ERR_SYNTAX",
        [LOSSC_ERR_COMPILE] = "LOSSC_ERR_COMPILE",
        [LOSSC_ERR_ARG] = "LOSSC_ERR_ARG",
        [LOSSC_ERR_SHAPE] = "LOSSC_ERR_SHAPE",
        [LOSSC_ERR_DTYPE] = "LOSSC_ERR_DTYPE",
        [LOSSC_ERR_NULL] = "LOSSC_ERR_NULL",
        [LOSSC_ERR_ALIAS] = "LOSSC_ERR_ALIAS",
        [LOSSC_ERR_UNKNOWN_NAME] = "LOSSC_ERR_UNKNOWN_NAME",
        [LOSSC_ERR_UNBOUND] = "LOSSC_ERR_UNBOUND",
        [LOSSC_ERR_INDEX] = "LOSSC_ERR_INDEX",
        [LOSSC_ERR_DEVICE] = "LOSSC_ERR_DEVICE",
        [LOSSC_ERR_NOMEM] = "LOSSC_ERR_NOMEM",
        [LOSSC_ERR_IO] = "LOSSC_ERR_IO",
        [LOSSC_ERR_INTERNAL] = "LOSSC_ERR_INTERNAL",
    };
    if ((unsigned)s < SUP_ARRAY_LEN(names) && names[s])
        return names[s];
    return "LOSSC_ERR_(unknown)";
}

/* ---- the allocator hook ------------------------------------------------------- */

static void *libc_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

/* Run-time buffers (staging copies, scratch outputs, gradient checks) can be
 * as large as the tensors, so their failure is reported, not fatal. */
void *rt_alloc(lossc_ctx *ctx, size_t size)
{
    return ctx->alloc(ctx->alloc_ud, NULL, size ? size : 1);
}

void rt_free(lossc_ctx *ctx, void *p)
{
    if (p)
        ctx->alloc(ctx->alloc_ud, p, 0);
}

/* ---- messages ------------------------------------------------------------------- */

lossc_status rt_ctx_fail(lossc_ctx *ctx, lossc_status s, const char *fmt, ...)
{
    sb_clear(&ctx->err);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&ctx->err, fmt, ap);
    va_end(ap);
    return s;
}

const char *lossc_ctx_error(const lossc_ctx *ctx)
{
    return ctx ? sb_str(&ctx->err) : "no context (NULL)";
}

/* ---- life cycle ------------------------------------------------------------------ */

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < 1024 ? n : 1024) : 1;
}

lossc_status lossc_ctx_new(lossc_ctx **out, const lossc_ctx_opts *opts)
{
    if (!out)
        return LOSSC_ERR_NULL;
    *out = NULL;
    lossc_ctx_opts o = opts ? *opts : (lossc_ctx_opts){0};
    if (o.threads < 0 || o.threads > 1024)
        return LOSSC_ERR_ARG;
    if (o.alloc)
        sup_set_allocator(&(sup_allocator){o.alloc, o.alloc_ud});
    /* The context itself comes from the (possibly failing) hook too, so a
     * test can make lossc_ctx_new fail cleanly. */
    lossc_realloc_fn alloc = o.alloc ? o.alloc : libc_realloc;
    lossc_ctx *ctx = alloc(o.alloc_ud, NULL, sizeof *ctx);
    if (!ctx)
        return LOSSC_ERR_NOMEM;
    memset(ctx, 0, sizeof *ctx);
    ctx->alloc = alloc;
    ctx->alloc_ud = o.alloc_ud;
    ctx->threads = o.threads ? o.threads : online_cores();
    ctx->pool = rt_pool_new(ctx->threads);
    if (!ctx->pool) {
        alloc(o.alloc_ud, ctx, 0);
        return LOSSC_ERR_NOMEM;
    }
    ctx->cpu = o.cpu && *o.cpu ? sup_strdup(o.cpu) : NULL;
    ctx->features = o.features ? sup_strdup(o.features) : NULL;
    sb_init(&ctx->err);
    *out = ctx;
    return LOSSC_OK;
}

void rt_kernel_release(rt_kernel *k)
{
    for (int i = 0; i < k->nchecks; i++) {
        sup_free(k->checks[i].input);
        sup_free(k->checks[i].where);
    }
    sup_free(k->checks);
    if (k->g)
        ir_graph_free(k->g);
    memset(k, 0, sizeof *k);
}

void lossc_ctx_free(lossc_ctx *ctx)
{
    if (!ctx)
        return;
    while (ctx->losses)
        lossc_loss_free(ctx->losses);
    for (size_t i = 0; i < ctx->ncache; i++) {
        rt_kernel_release(&ctx->cache[i]->k);
        sup_free(ctx->cache[i]->key);
        sup_free(ctx->cache[i]);
    }
    sup_free(ctx->cache);
    /* The code of every cached kernel lives in the JIT: it goes last. */
    if (ctx->jit && ctx->jit_destroy)
        ctx->jit_destroy(ctx->jit);
    rt_pool_free(ctx->pool);
    sup_free(ctx->cpu);
    sup_free(ctx->features);
    sb_free(&ctx->err);
    ctx->alloc(ctx->alloc_ud, ctx, 0);
}

int lossc_ctx_threads(const lossc_ctx *ctx) { return ctx ? ctx->threads : 0; }

void lossc_ctx_cache_stats(const lossc_ctx *ctx, int64_t *hits, int64_t *misses,
                           double *compile_ms)
{
    if (hits)
        *hits = ctx ? ctx->hits : 0;
    if (misses)
        *misses = ctx ? ctx->misses : 0;
    if (compile_ms)
        *compile_ms = ctx ? ctx->compile_ms + (double)atomic_load(&ctx->lazy_us) / 1e3 : 0;
}
