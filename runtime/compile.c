/* compile.c - lossc_compile: source text to a loss with JIT-compiled kernels.
 *
 *   fe_list_losses  (syntax errors: LOSSC_ERR_SYNTAX; pick the entry)
 *   fe_compile      (type and shape errors: LOSSC_ERR_COMPILE)
 *   for the forward and/or the forward+backward kernel:
 *       cache key -> hit: reuse | miss: pass_pipeline -> cg_jit_compile -> cache
 *   rt_loss_new     (slots from the kernels' graphs)
 *
 * The cache key is the exact text of everything that decides a kernel: the
 * source, its file name (messages quote it), the entry, the compile-time
 * settings the frontend consumed (sorted), the target, which kernel, and the
 * inputs differentiated. Numeric scalar settings are run-time values, not
 * part of the key. The frontend runs on every call (about a millisecond): it
 * is what says which settings are compile-time, and a hit needs the graph
 * for nothing else. Entries live as long as the context.
 */
#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/rt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* ---- settings ---------------------------------------------------------------------- */

typedef struct settings {
    fe_setting *items;
    int n;
} settings;

static void settings_free(settings *s)
{
    for (int i = 0; i < s->n; i++) {
        sup_free((char *)s->items[i].name);
        sup_free((char *)s->items[i].value);
    }
    sup_free(s->items);
}

static lossc_status settings_parse(lossc_ctx *ctx, const lossc_compile_opts *o, settings *s)
{
    s->items = sup_calloc((size_t)o->nsettings + 1, sizeof *s->items);
    for (int i = 0; i < o->nsettings; i++) {
        const char *kv = o->settings[i];
        if (!kv)
            return rt_ctx_fail(ctx, LOSSC_ERR_NULL, "setting %d is NULL", i);
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv)
            return rt_ctx_fail(ctx, LOSSC_ERR_ARG,
                               "setting '%s' is not NAME=VALUE (e.g. reduction=sum, C=10)", kv);
        char *name = sup_malloc((size_t)(eq - kv) + 1);
        memcpy(name, kv, (size_t)(eq - kv));
        name[eq - kv] = '\0';
        for (int j = 0; j < s->n; j++)
            if (strcmp(s->items[j].name, name) == 0) {
                sup_free(name);
                return rt_ctx_fail(ctx, LOSSC_ERR_ARG, "setting '%s' is given twice",
                                   s->items[j].name);
            }
        s->items[s->n++] = (fe_setting){name, sup_strdup(eq + 1), false};
    }
    return LOSSC_OK;
}

static int cmp_setting(const void *a, const void *b)
{
    return strcmp(((const fe_setting *)a)->name, ((const fe_setting *)b)->name);
}

/* ---- the cache ------------------------------------------------------------------------ */

static void key_put(strbuf *key, const char *s, size_t n)
{
    sb_printf(key, "%zu:", n); /* length-prefixed: no separator can be forged */
    sb_putn(key, s, n);
}

static rt_cache_entry *cache_find(lossc_ctx *ctx, const strbuf *key, uint64_t h)
{
    for (size_t i = 0; i < ctx->ncache; i++) {
        rt_cache_entry *e = ctx->cache[i];
        if (e->hash == h && e->keylen == key->len && memcmp(e->key, key->data, key->len) == 0)
            return e;
    }
    return NULL;
}

/* ---- one kernel ------------------------------------------------------------------------- */

typedef struct job {
    lossc_ctx *ctx;
    diag_set *ds;
    const ir_graph *fe;
    const char *entry;
    uint64_t wrt;
    strbuf *key; /* the shared part of the key */
} job;

static char *format_loc(const diag_set *ds, src_loc loc)
{
    if (!src_loc_valid(loc))
        return NULL;
    const src_file *f = diag_file(ds, loc.file);
    strbuf sb;
    sb_init(&sb);
    sb_printf(&sb, "%s:%d:%d", f ? f->name : "?", loc.line, loc.col);
    return sb_take(&sb);
}

/* The context frees the JIT through a void * (it knows nothing of codegen). */
static void destroy_jit(void *jit) { cg_jit_destroy(jit); }

static lossc_status ensure_jit(lossc_ctx *ctx)
{
    if (ctx->jit)
        return LOSSC_OK;
    strbuf err;
    sb_init(&err);
    cg_options target = {.cpu = ctx->cpu, .features = ctx->features, .threads = ctx->threads};
    ctx->jit = cg_jit_create(&target, &err);
    lossc_status st = LOSSC_OK;
    if (ctx->jit) {
        ctx->jit_destroy = destroy_jit;
        ctx->jit_take_lazy = cg_jit_take_lazy;
    } else {
        st = rt_ctx_fail(ctx, LOSSC_ERR_ARG, "cannot create the JIT for CPU '%s': %s",
                         ctx->cpu ? ctx->cpu : "host", sb_str(&err));
    }
    sb_free(&err);
    return st;
}

static lossc_status build_kernel(job *j, bool backward, rt_kernel *k)
{
    lossc_ctx *ctx = j->ctx;
    strbuf err;
    sb_init(&err);
    pass_options po = {.backward = backward, .wrt = j->wrt};
#ifndef NDEBUG
    po.verify = true;
#endif
    ir_graph *g = pass_pipeline(ir_rebuild(j->fe, NULL, NULL), &po, &err);
    if (!g) {
        rt_ctx_fail(ctx, LOSSC_ERR_COMPILE, "%s", sb_str(&err));
        sb_free(&err);
        return LOSSC_ERR_COMPILE;
    }
    lossc_status st = ensure_jit(ctx);
    if (st != LOSSC_OK) {
        ir_graph_free(g);
        sb_free(&err);
        return st;
    }
    char symbol[160];
    snprintf(symbol, sizeof symbol, "lossc_%s_%s_%llu", j->entry, backward ? "fwdbwd" : "fwd",
             (unsigned long long)++ctx->symbol_counter);
    cg_kernel_info info = {0};
    lk_kernel_fn fn = cg_jit_compile(ctx->jit, g, symbol, &info, &err);
    if (!fn) {
        rt_ctx_fail(ctx, LOSSC_ERR_COMPILE, "code generation failed for '%s': %s", j->entry,
                    sb_str(&err));
        ir_graph_free(g);
        cg_kernel_info_free(&info);
        sb_free(&err);
        return LOSSC_ERR_COMPILE;
    }
    *k = (rt_kernel){.g = g, .fn = fn, .nsweeps = info.nsweeps, .compile_ms = info.compile_ms};
    k->checks = sup_calloc((size_t)info.nchecks + 1, sizeof *k->checks);
    k->nchecks = info.nchecks;
    for (int i = 0; i < info.nchecks; i++) {
        const cg_check *c = &info.checks[i];
        k->checks[i] = (rt_check){c->input ? sup_strdup(c->input) : NULL, c->dim,
                                  format_loc(j->ds, c->loc)};
    }
    ctx->compile_ms += info.compile_ms;
    cg_kernel_info_free(&info);
    sb_free(&err);
    return LOSSC_OK;
}

/* The cached kernel for (key, backward), compiling it on a miss. */
static lossc_status get_kernel(job *j, bool backward, rt_kernel **out, bool *hit)
{
    lossc_ctx *ctx = j->ctx;
    strbuf key;
    sb_init(&key);
    sb_putn(&key, j->key->data, j->key->len);
    key_put(&key, backward ? "fwd+bwd" : "fwd", backward ? 7 : 3);
    uint64_t h = sup_hash_bytes(key.data, key.len, 0x105c);
    rt_cache_entry *e = cache_find(ctx, &key, h);
    if (e) {
        ctx->hits++;
        sb_free(&key);
        *out = &e->k;
        return LOSSC_OK;
    }
    ctx->misses++;
    *hit = false;
    rt_kernel k;
    lossc_status st = build_kernel(j, backward, &k);
    if (st != LOSSC_OK) {
        sb_free(&key);
        return st;
    }
    e = sup_calloc(1, sizeof *e);
    e->keylen = key.len;
    e->key = sb_take(&key);
    e->hash = h;
    e->k = k;
    SUP_GROW(ctx->cache, ctx->cache_cap, ctx->ncache + 1);
    ctx->cache[ctx->ncache++] = e;
    *out = &e->k;
    return LOSSC_OK;
}

/* ---- the entry and the settings ------------------------------------------------------------- */

/* The entry: the named loss (the file's, else the library's) or the file's
 * only one. Syntax errors are found here, so they get their own status. */
static lossc_status pick_entry(lossc_ctx *ctx, diag_set *ds, int file, const char *want,
                               char **entry)
{
    char **names = NULL;
    int n = fe_list_losses(ds, file, &names);
    if (n < 0) {
        strbuf sb;
        sb_init(&sb);
        diag_format_all(ds, &sb);
        rt_ctx_fail(ctx, LOSSC_ERR_SYNTAX, "%s", sb_str(&sb));
        sb_free(&sb);
        return LOSSC_ERR_SYNTAX;
    }
    strbuf list;
    sb_init(&list);
    bool in_file = false;
    for (int i = 0; i < n; i++) {
        sb_printf(&list, "%s%s", i ? ", " : "", names[i]);
        in_file |= want && strcmp(names[i], want) == 0;
    }
    const char *fname = diag_file(ds, file)->name;
    lossc_status st = LOSSC_OK;
    *entry = NULL;
    if (want && !in_file) { /* a loss of the library? */
        diag_set probe;
        diag_init(&probe);
        const src_file *f = diag_file(ds, file);
        int pf = diag_add_file(&probe, f->name, f->text, f->len);
        fe_param_info *params = NULL;
        int k = fe_describe_entry(&probe, pf, &(fe_options){.entry = want}, &params);
        if (k < 0)
            st = rt_ctx_fail(ctx, LOSSC_ERR_UNKNOWN_NAME,
                             "%s defines no loss named '%s' (%s%s), nor does the library",
                             fname, want, n ? "it defines: " : "it defines none",
                             sb_str(&list));
        else
            fe_param_info_free(params, k);
        diag_free(&probe);
    }
    if (st == LOSSC_OK && want)
        *entry = sup_strdup(want);
    else if (st == LOSSC_OK && n == 0)
        st = rt_ctx_fail(ctx, LOSSC_ERR_ARG, "%s defines no loss", fname);
    else if (st == LOSSC_OK && n > 1)
        st = rt_ctx_fail(ctx, LOSSC_ERR_ARG, "%s defines %d losses (%s): name one as the entry",
                         fname, n, sb_str(&list));
    else if (st == LOSSC_OK)
        *entry = sup_strdup(names[0]);
    for (int i = 0; i < n; i++)
        sup_free(names[i]);
    sup_free(names);
    sb_free(&list);
    return st;
}

/* Settings the frontend left unused name numeric scalars: run-time values. */
static lossc_status scalar_settings(lossc_ctx *ctx, const ir_graph *fe, const settings *s)
{
    for (int i = 0; i < s->n; i++) {
        const fe_setting *x = &s->items[i];
        if (x->used)
            continue;
        int in = ir_input_find(fe, x->name);
        if (in < 0 || fe->inputs[in].kind != IR_IN_SCALAR)
            return rt_ctx_fail(ctx, LOSSC_ERR_UNKNOWN_NAME,
                               "setting '%s': loss '%s' has no str parameter, dim or numeric "
                               "scalar of that name",
                               x->name, fe->name);
        char *end;
        errno = 0;
        (void)strtod(x->value, &end);
        if (end == x->value || *end || errno == ERANGE)
            return rt_ctx_fail(ctx, LOSSC_ERR_ARG, "setting '%s=%s': '%s' is a %s scalar, not a number",
                               x->name, x->value, x->name, ir_dtype_name(fe->inputs[in].dtype));
    }
    return LOSSC_OK;
}

static lossc_status wrt_bits(lossc_ctx *ctx, const ir_graph *fe, const lossc_compile_opts *o,
                             uint64_t *bits)
{
    *bits = 0;
    for (int i = 0; i < o->nwrt; i++) {
        if (!o->wrt[i])
            return rt_ctx_fail(ctx, LOSSC_ERR_NULL, "wrt name %d is NULL", i);
        int in = ir_input_find(fe, o->wrt[i]);
        if (in < 0)
            return rt_ctx_fail(ctx, LOSSC_ERR_UNKNOWN_NAME,
                               "cannot differentiate with respect to '%s': loss '%s' has no "
                               "input of that name",
                               o->wrt[i], fe->name);
        if (in >= 64)
            return rt_ctx_fail(ctx, LOSSC_ERR_ARG, "too many inputs to choose from");
        *bits |= (uint64_t)1 << in;
    }
    return LOSSC_OK;
}

/* ---- lossc_compile ------------------------------------------------------------------------- */

static lossc_status compile_text(lossc_ctx *ctx, const char *filename, const char *text,
                                 size_t len, const lossc_compile_opts *opts, lossc_loss **out)
{
    double t0 = now_ms();
    lossc_compile_opts o = opts ? *opts : (lossc_compile_opts){0};
    if ((o.nsettings > 0 && !o.settings) || (o.nwrt > 0 && !o.wrt))
        return rt_ctx_fail(ctx, LOSSC_ERR_NULL, "settings or wrt count given with a NULL array");
    if (o.nsettings < 0 || o.nwrt < 0 || (o.kernels & ~3))
        return rt_ctx_fail(ctx, LOSSC_ERR_ARG, "bad compile options (negative count or "
                                               "unknown kernel bits)");
    int kinds = o.kernels ? o.kernels : LOSSC_KERNEL_FORWARD | LOSSC_KERNEL_BACKWARD;

    settings set = {0};
    diag_set ds;
    diag_init(&ds);
    char *entry = NULL;
    ir_graph *fe = NULL;
    strbuf key;
    sb_init(&key);
    int file = diag_add_file(&ds, filename, text, len);
    lossc_status st = settings_parse(ctx, &o, &set);
    if (st == LOSSC_OK)
        st = pick_entry(ctx, &ds, file, o.entry, &entry);
    if (st == LOSSC_OK) {
        fe_options fo = {.entry = entry, .settings = set.items, .nsettings = set.n};
        fe = fe_compile(&ds, file, &fo);
        if (!fe) {
            diag_format_all(&ds, &key); /* key is free to borrow here */
            st = rt_ctx_fail(ctx, LOSSC_ERR_COMPILE, "%s", sb_str(&key));
            sb_clear(&key);
        }
    }
    uint64_t wrt = 0;
    if (st == LOSSC_OK)
        st = scalar_settings(ctx, fe, &set);
    if (st == LOSSC_OK)
        st = wrt_bits(ctx, fe, &o, &wrt);

    rt_kernel *kf = NULL, *kb = NULL;
    bool hit = true;
    if (st == LOSSC_OK) {
        key_put(&key, "lossc-kernel-1", 14);
        key_put(&key, filename, strlen(filename));
        key_put(&key, text, len);
        key_put(&key, entry, strlen(entry));
        qsort(set.items, (size_t)set.n, sizeof *set.items, cmp_setting);
        for (int i = 0; i < set.n; i++)
            if (set.items[i].used) {
                key_put(&key, set.items[i].name, strlen(set.items[i].name));
                key_put(&key, set.items[i].value, strlen(set.items[i].value));
            }
        key_put(&key, ctx->cpu ? ctx->cpu : "host", strlen(ctx->cpu ? ctx->cpu : "host"));
        key_put(&key, ctx->features ? ctx->features : "", strlen(ctx->features ? ctx->features : ""));
        sb_printf(&key, "wrt:%llx;", (unsigned long long)wrt);
        job j = {ctx, &ds, fe, entry, wrt, &key};
        if (kinds & LOSSC_KERNEL_FORWARD)
            st = get_kernel(&j, false, &kf, &hit);
        if (st == LOSSC_OK && (kinds & LOSSC_KERNEL_BACKWARD))
            st = get_kernel(&j, true, &kb, &hit);
    }
    lossc_loss *loss = NULL;
    if (st == LOSSC_OK)
        st = rt_loss_new(ctx, kf, kb, &loss);
    if (st == LOSSC_OK) {
        for (int i = 0; i < set.n; i++) {
            rt_slot *s = set.items[i].used ? NULL : rt_find_input(loss, set.items[i].name);
            if (s) {
                s->has_value = true;
                s->value = strtod(set.items[i].value, NULL);
            }
        }
        loss->fe = fe;
        fe = NULL;
        loss->cache_hit = hit;
        loss->compile_ms = now_ms() - t0;
        *out = loss;
    }
    if (fe)
        ir_graph_free(fe);
    sup_free(entry);
    settings_free(&set);
    sb_free(&key);
    diag_free(&ds);
    return st;
}

lossc_status lossc_compile(lossc_ctx *ctx, const char *source, const lossc_compile_opts *opts,
                           lossc_loss **out)
{
    if (!ctx)
        return LOSSC_ERR_NULL;
    if (!out)
        return rt_ctx_fail(ctx, LOSSC_ERR_NULL, "lossc_compile: out is NULL");
    *out = NULL;
    if (!source)
        return rt_ctx_fail(ctx, LOSSC_ERR_NULL, "lossc_compile: the source is NULL");
    const char *name = opts && opts->filename ? opts->filename : "<source>";
    return compile_text(ctx, name, source, strlen(source), opts, out);
}

lossc_status lossc_compile_file(lossc_ctx *ctx, const char *path, const lossc_compile_opts *opts,
                                lossc_loss **out)
{
    if (!ctx)
        return LOSSC_ERR_NULL;
    if (!out)
        return rt_ctx_fail(ctx, LOSSC_ERR_NULL, "lossc_compile_file: out is NULL");
    *out = NULL;
    if (!path)
        return rt_ctx_fail(ctx, LOSSC_ERR_NULL, "lossc_compile_file: the path is NULL");
    size_t len;
    char *text = sup_read_file(path, &len);
    if (!text)
        return rt_ctx_fail(ctx, LOSSC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (memchr(text, '\0', len)) {
        sup_free(text);
        return rt_ctx_fail(ctx, LOSSC_ERR_ARG, "%s is not a text file (it holds a NUL byte)",
                           path);
    }
    const char *name = opts && opts->filename ? opts->filename : path;
    lossc_status st = compile_text(ctx, name, text, len, opts, out);
    sup_free(text);
    return st;
}
