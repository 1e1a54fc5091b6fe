/* cmd_build.c - lossc build: the forward and forward+backward kernels of one
 * loss, ahead of time, as an object file (needs only libc and libm to link)
 * and a C header declaring them.
 *
 * Symbols: <entry>_forward and <entry>_backward (the header's wrappers are
 * named after them). A loss with no float input has no backward kernel.
 */
#include "cli/cli.h"
#include "codegen/codegen.h"
#include "passes/passes.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* "out/huber.h" -> "HUBER_H" */
static void header_guard(const char *path, char *guard, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = 0;
    if (isdigit((unsigned char)base[0]) && n + 1 < cap)
        guard[n++] = '_';
    for (const char *p = base; *p && n + 1 < cap; p++)
        guard[n++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    guard[n] = '\0';
}

static bool has_float_input(const ir_graph *g)
{
    for (int i = 0; i < g->ninputs; i++)
        if (ir_dtype_is_float(g->inputs[i].dtype))
            return true;
    return false;
}

int cli_cmd_build(const cli_args *a)
{
    uint64_t wrt = 0;
    ir_graph *fe = cli_frontend(a, &wrt);
    if (!fe)
        return CLI_FAIL;
    strbuf err, hdr;
    sb_init(&err);
    sb_init(&hdr);
    ir_graph *graphs[2] = {NULL, NULL};
    char syms[2][160];
    int n = 0, rc = CLI_OK;
    bool backward = has_float_input(fe) || a->wrt.n > 0;
    pass_options fwd = {.verify = true}, bwd = {.backward = true, .wrt = wrt, .verify = true};
    graphs[n] = pass_pipeline(ir_rebuild(fe, NULL, NULL), &fwd, &err);
    snprintf(syms[n], sizeof syms[n], "%s_forward", fe->name);
    if (graphs[n])
        n++;
    if (n == 1 && backward) {
        graphs[n] = pass_pipeline(ir_rebuild(fe, NULL, NULL), &bwd, &err);
        snprintf(syms[n], sizeof syms[n], "%s_backward", fe->name);
        if (graphs[n])
            n++;
    }
    if (n < 1 + backward)
        rc = cli_fail("%s", sb_str(&err));
    const char *symbols[2] = {syms[0], syms[1]};
    cg_options co = {.cpu = a->cpu};
    char guard[256];
    header_guard(a->header, guard, sizeof guard);
    if (rc == CLI_OK)
        cg_emit_header((const ir_graph *const *)graphs, symbols, n, guard, &hdr);
    if (rc == CLI_OK && !cg_emit_object((const ir_graph *const *)graphs, symbols, n, &co,
                                        a->object, &err))
        rc = cli_fail("%s", sb_str(&err));
    if (rc == CLI_OK) {
        FILE *f = fopen(a->header, "w");
        bool ok = f && fwrite(hdr.data, 1, hdr.len, f) == hdr.len;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok) {
            remove(a->object); /* both or neither */
            rc = cli_fail("cannot write %s", a->header);
        }
    }
    for (int i = 0; i < n; i++)
        ir_graph_free(graphs[i]);
    ir_graph_free(fe);
    sb_free(&err);
    sb_free(&hdr);
    return rc;
}
