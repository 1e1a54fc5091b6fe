/* cmd_show.c - the compiler's views: lossc check, ir, dot, llvm; and the two
 * ways every other command starts (the frontend alone, or the C API). */
#include "cli/cli.h"
#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static char *read_source(const char *path)
{
    size_t len;
    char *text = sup_read_file(path, &len);
    if (!text)
        cli_fail("cannot read %s: %s", path, strerror(errno));
    else if (memchr(text, '\0', len)) {
        cli_fail("%s is not a text file", path);
        sup_free(text);
        text = NULL;
    }
    return text;
}

static void print_diagnostics(const diag_set *ds)
{
    if (ds->count == 0)
        return;
    strbuf sb;
    sb_init(&sb);
    diag_format_all(ds, &sb);
    fputs(sb_str(&sb), stderr);
    sb_free(&sb);
}

int cli_cmd_check(const cli_args *a)
{
    char *text = read_source(a->file);
    if (!text)
        return CLI_FAIL;
    diag_set ds;
    diag_init(&ds);
    int file = diag_add_file(&ds, a->file, text, strlen(text));
    int errors = fe_check(&ds, file);
    print_diagnostics(&ds);
    diag_free(&ds);
    sup_free(text);
    return errors > 0 ? CLI_FAIL : CLI_OK;
}

ir_graph *cli_frontend(const cli_args *a, uint64_t *wrt)
{
    char *text = read_source(a->file);
    if (!text)
        return NULL;
    diag_set ds;
    diag_init(&ds);
    int file = diag_add_file(&ds, a->file, text, strlen(text));
    fe_setting *set = sup_calloc((size_t)a->sets.n + 1, sizeof *set);
    for (int i = 0; i < a->sets.n; i++) {
        const char *kv = a->sets.items[i], *eq = strchr(kv, '=');
        char *name = sup_malloc((size_t)(eq - kv) + 1);
        memcpy(name, kv, (size_t)(eq - kv));
        name[eq - kv] = '\0';
        set[i] = (fe_setting){name, eq + 1, false};
    }
    fe_options fo = {.entry = a->entry, .settings = set, .nsettings = a->sets.n};
    ir_graph *g = fe_compile(&ds, file, &fo);
    print_diagnostics(&ds); /* errors, or warnings of a graph that compiled */
    if (g && wrt) {
        *wrt = 0;
        for (int i = 0; i < a->wrt.n; i++) {
            int in = ir_input_find(g, a->wrt.items[i]);
            if (in < 0 || in >= 64) {
                cli_fail("--wrt %s: loss '%s' has no input of that name", a->wrt.items[i],
                         g->name);
                ir_graph_free(g);
                g = NULL;
                break;
            }
            *wrt |= (uint64_t)1 << in;
        }
    }
    for (int i = 0; i < a->sets.n; i++)
        sup_free((char *)set[i].name);
    sup_free(set);
    diag_free(&ds);
    sup_free(text);
    return g;
}

int cli_compile(const cli_args *a, int kernels, bool quiet, lossc_ctx **ctx, lossc_loss **loss)
{
    *ctx = NULL;
    *loss = NULL;
    lossc_ctx_opts co = {.threads = a->threads, .cpu = a->cpu};
    lossc_status st = lossc_ctx_new(ctx, &co);
    if (st != LOSSC_OK)
        return cli_fail("cannot create a context: %s", lossc_status_name(st));
    lossc_compile_opts o = {.entry = a->entry,
                            .settings = a->sets.items,
                            .nsettings = a->sets.n,
                            .wrt = a->wrt.items,
                            .nwrt = a->wrt.n,
                            .kernels = kernels};
    st = lossc_compile_file(*ctx, a->file, &o, loss);
    if (st == LOSSC_OK)
        return CLI_OK;
    const char *msg = lossc_ctx_error(*ctx);
    bool diagnostics = st == LOSSC_ERR_SYNTAX || st == LOSSC_ERR_COMPILE;
    if (!quiet && diagnostics) {
        fputs(msg, stderr); /* formatted diagnostics, or a pass's message */
        if (msg[0] && msg[strlen(msg) - 1] != '\n')
            fputc('\n', stderr);
    } else if (!quiet) {
        cli_fail("%s", msg);
    }
    lossc_ctx_free(*ctx);
    *ctx = NULL;
    return CLI_FAIL;
}

int cli_cmd_show(const cli_args *a)
{
    uint64_t wrt = 0;
    ir_graph *fe = cli_frontend(a, &wrt);
    if (!fe)
        return CLI_FAIL;
    strbuf trace, err, out;
    sb_init(&trace);
    sb_init(&err);
    sb_init(&out);
    pass_options po = {.backward = a->grad || (a->cmd == CMD_IR && a->wrt.n > 0),
                       .wrt = wrt,
                       .verify = true,
                       .trace = a->print_after_all ? &trace : NULL};
    ir_graph *g = pass_pipeline(fe, &po, &err);
    int rc = CLI_OK;
    if (!g) {
        fputs(sb_str(&trace), stdout); /* up to the pass that failed */
        rc = cli_fail("%s", sb_str(&err));
    } else if (a->cmd == CMD_IR && a->print_after_all) {
        sb_puts(&out, sb_str(&trace));
        if (a->kernels)
            cg_print_kernels(g, &out);
    } else if (a->cmd == CMD_IR && a->kernels) {
        cg_print_kernels(g, &out);
    } else if (a->cmd == CMD_IR) {
        ir_print(g, &out);
    } else if (a->cmd == CMD_DOT) {
        ir_print_dot(g, &out);
    } else {
        cg_options co = {.cpu = a->cpu};
        if (!cg_print_llvm(g, &co, &out, &err))
            rc = cli_fail("%s", sb_str(&err));
    }
    if (rc == CLI_OK)
        fwrite(out.data ? out.data : "", 1, out.len, stdout);
    if (g)
        ir_graph_free(g);
    sb_free(&trace);
    sb_free(&err);
    sb_free(&out);
    return rc;
}
