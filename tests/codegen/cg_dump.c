/* cg_dump - print the kernel plan and the optimized LLVM IR of a test loss.
 *   cg_dump LOSS [f32|f64] [plan|llvm]     LOSS: mse huber bce dice ce cew infonce
 *   cg_dump FILE.loss ENTRY [plan|llvm]    through the frontend and passes (backward)
 * A developer's tool (not a test): see what the scheduler and lowering made. */
#include "cg_losses.h"

#include "frontend/frontend.h"
#include "passes/fuse.h"
#include "passes/passes.h"

#include <stdlib.h>

static ir_graph *from_file(const char *path, const char *entry)
{
    size_t len;
    char *text = sup_read_file(path, &len);
    if (!text)
        return NULL;
    diag_set ds;
    diag_init(&ds);
    int fid = diag_add_file(&ds, path, text, len);
    fe_options o = {.entry = entry};
    ir_graph *g = fe_compile(&ds, fid, &o);
    strbuf err;
    sb_init(&err);
    if (!g) {
        diag_format_all(&ds, &err);
        fprintf(stderr, "%s", sb_str(&err));
    } else {
        /* LOSSC_WRT=1: the gradient of the first input only (as cg_bench) */
        pass_options po = {.backward = true, .verify = true,
                           .wrt = getenv("LOSSC_WRT") ? strtoull(getenv("LOSSC_WRT"), 0, 0) : 0};
        g = pass_pipeline(g, &po, &err);
        if (!g)
            fprintf(stderr, "%s\n", sb_str(&err));
    }
    sb_free(&err);
    diag_free(&ds);
    sup_free(text);
    return g;
}

static ir_graph *make(const char *name, ir_dtype T)
{
    if (!strcmp(name, "mse")) return loss_mse(T);
    if (!strcmp(name, "huber")) return loss_huber(T);
    if (!strcmp(name, "bce")) return loss_bce_logits(T);
    if (!strcmp(name, "dice")) return loss_dice(T);
    if (!strcmp(name, "ce")) return loss_ce(T, false, false);
    if (!strcmp(name, "cerows")) return loss_ce(T, false, true);
    if (!strcmp(name, "cew")) return loss_ce(T, true, false);
    if (!strcmp(name, "infonce")) return loss_infonce(T);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: cg_dump LOSS [f32|f64] [plan|llvm]\n");
        return 2;
    }
    ir_dtype T = argc > 2 && !strcmp(argv[2], "f64") ? DT_F64 : DT_F32;
    const char *what = argc > 3 ? argv[3] : "plan";
    size_t l = strlen(argv[1]);
    ir_graph *g = l > 5 && !strcmp(argv[1] + l - 5, ".loss")
                      ? from_file(argv[1], argc > 2 ? argv[2] : NULL)
                      : make(argv[1], T);
    if (!g) {
        fprintf(stderr, "unknown loss %s\n", argv[1]);
        return 2;
    }
    strbuf out, err;
    sb_init(&out);
    sb_init(&err);
    if (!strcmp(what, "llvm")) {
        if (!cg_print_llvm(g, NULL, &out, &err))
            fprintf(stderr, "%s\n", sb_str(&err));
    } else if (!strcmp(what, "prepared")) { /* the scheduler's copy of the graph */
        sched_plan *p = sched_build(g, &err);
        if (p)
            ir_print(p->g, &out);
        sched_free(p);
    } else {
        ir_print(g, &out);
        cg_print_kernels(g, &out);
    }
    fputs(sb_str(&out), stdout);
    sb_free(&out);
    sb_free(&err);
    ir_graph_free(g);
    return 0;
}
