/* aot.c - ahead of time: the same module as the JIT's, emitted as an object
 * file for the host or a named CPU, and a C header to call it with.
 *
 * The object references only libc (malloc, free) and libm; the header copies
 * abi.h verbatim and adds, per kernel, a typed argument struct and inline
 * wrappers that pack it into lk_args (serially by default), so a program
 * needs `gcc prog.c kernels.o -lm` and nothing of LLVM or lossc.
 */
#include "codegen/lower.h"

#include "codegen/abi_text.inc"

#include <string.h>

bool cg_emit_object(const ir_graph *const *graphs, const char *const *symbols, int n,
                    const cg_options *opts, const char *path, strbuf *err)
{
    cg_target t;
    LLVMTargetMachineRef tm = cg_target_open(&t, opts, err);
    if (!tm)
        return false;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m;
    bool ok = cg_build_module(ctx, &t, tm, graphs, symbols, n, &m, NULL, err);
    if (ok) {
        /* code generation changes the module it runs on: emit from a clone */
        LLVMModuleRef clone = LLVMCloneModule(m);
        char *msg = NULL;
        if (LLVMTargetMachineEmitToFile(tm, clone, path, LLVMObjectFile, &msg)) {
            sb_printf(err, "codegen: cannot write %s: %s", path, msg ? msg : "?");
            ok = false;
        }
        LLVMDisposeMessage(msg);
        LLVMDisposeModule(clone);
        LLVMDisposeModule(m);
    }
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    cg_target_free(&t);
    return ok;
}

/* ---- the header ------------------------------------------------------------------------ */

static const char *c_type(int dt)
{
    switch (dt) {
    case DT_BOOL: return "uint8_t";
    case DT_I32: return "int32_t";
    case DT_I64: return "int64_t";
    case DT_F32: return "float";
    default: return "double";
    }
}

static bool is_c_keyword(const char *s)
{
    static const char *const kw[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double",
        "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
        "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct",
        "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "args",
        "error", "bufs", "dims", "parallel", "pool", "bool", "_Bool"};
    for (size_t i = 0; i < SUP_ARRAY_LEN(kw); i++)
        if (strcmp(kw[i], s) == 0)
            return true;
    return false;
}

/* A C identifier for a DSL name: other characters become '_', keywords get
 * a trailing '_'. */
static void c_ident(strbuf *out, const char *name)
{
    size_t start = out->len;
    if (!(name[0] == '_' || (name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z')))
        sb_putc(out, '_');
    for (const char *c = name; *c; c++) {
        bool ok = *c == '_' || (*c >= '0' && *c <= '9') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= 'a' && *c <= 'z');
        sb_putc(out, ok ? *c : '_');
    }
    if (is_c_keyword(out->data + start))
        sb_putc(out, '_');
}

static void shape_comment(const ir_graph *g, int dt, const int *order, int ndim, strbuf *out)
{
    sb_printf(out, "%s", ir_dtype_name((ir_dtype)dt));
    if (ndim) {
        sb_putc(out, '[');
        for (int i = 0; i < ndim; i++)
            sb_printf(out, "%s%s", i ? ", " : "", g->dims[order[i]].name);
        sb_putc(out, ']');
    } else {
        sb_puts(out, " scalar");
    }
}

static bool field_taken(const ir_graph *g, const char *name)
{
    for (int i = 0; i < g->ninputs; i++)
        if (strcmp(g->inputs[i].name, name) == 0)
            return true;
    for (int i = 0; i < g->noutputs; i++)
        if (strcmp(g->outputs[i].name, name) == 0)
            return true;
    return false;
}

static void dim_field(const ir_graph *g, int d, strbuf *out)
{
    if (field_taken(g, g->dims[d].name))
        sb_puts(out, "size_");
    c_ident(out, g->dims[d].name);
}

static void emit_one(const ir_graph *g, const char *sym, strbuf *out)
{
    strbuf id;
    sb_init(&id);
    c_ident(&id, sym);
    const char *s = sb_str(&id);
    sb_printf(out, "/* ---- %s: kernel of loss '%s' ---- */\n\n", s, g->name);
    sb_printf(out, "typedef struct %s_args {\n", s);
    for (int i = 0; i < g->ninputs; i++) {
        const ir_input *in = &g->inputs[i];
        sb_printf(out, "    const %s *", c_type(in->dtype));
        c_ident(out, in->name);
        sb_puts(out, "; /* ");
        shape_comment(g, in->dtype, in->order, in->ndim, out);
        if (in->kind == IR_IN_DLOSS)
            sb_puts(out, ", the upstream gradient of the loss");
        if (in->ndim == 0 && in->has_default)
            sb_printf(out, "; NULL: %g", in->default_value);
        sb_puts(out, " */\n");
    }
    for (int o = 0; o < g->noutputs; o++) {
        const ir_output *op = &g->outputs[o];
        int order[IR_MAX_DIMS], nd;
        if (op->kind == IR_OUT_GRAD) {
            nd = g->inputs[op->input].ndim;
            memcpy(order, g->inputs[op->input].order, sizeof(int) * (size_t)nd);
        } else {
            nd = dims_order(op->node->dims, order);
        }
        sb_printf(out, "    %s *", c_type(op->node->dtype));
        c_ident(out, op->name);
        sb_puts(out, "; /* out: ");
        shape_comment(g, op->node->dtype, order, nd, out);
        sb_puts(out, " */\n");
    }
    for (int d = 0; d < g->ndims; d++)
        if (ir_dim_root(g, d) == d && g->dims[d].size < 0) {
            sb_puts(out, "    int64_t ");
            dim_field(g, d, out);
            sb_printf(out, "; /* size of dim %s */\n", g->dims[d].name);
        }
    sb_printf(out, "} %s_args;\n\n", s);
    sb_printf(out, "int32_t %s(const lk_args *args);\n\n", s);
    sb_printf(out, "/* Runs the kernel; `parallel` may be NULL (serial). Non-zero: see *error. */\n");
    sb_printf(out, "static inline int32_t %s_run_parallel(const %s_args *a, lk_error *error,\n"
                   "                                      lk_parallel_fn parallel, void *pool)\n{\n",
              s, s);
    sb_printf(out, "    void *bufs[%d] = {", g->ninputs + g->noutputs + 1);
    for (int i = 0; i < g->ninputs; i++) {
        sb_printf(out, "%s(void *)a->", i ? ", " : "");
        c_ident(out, g->inputs[i].name);
    }
    for (int o = 0; o < g->noutputs; o++) {
        sb_printf(out, "%s(void *)a->", g->ninputs + o ? ", " : "");
        c_ident(out, g->outputs[o].name);
    }
    sb_printf(out, "};\n    int64_t dims[%d] = {", g->ndims + 1);
    for (int d = 0; d < g->ndims; d++) {
        int r = ir_dim_root(g, d);
        sb_puts(out, d ? ", " : "");
        if (g->dims[r].size >= 0) {
            sb_printf(out, "%lld", (long long)g->dims[r].size);
        } else {
            sb_puts(out, "a->");
            dim_field(g, r, out);
        }
    }
    sb_printf(out, "%s0};\n", g->ndims ? ", " : "");
    sb_printf(out, "    lk_args args = {bufs, dims, parallel, pool, error};\n"
                   "    return %s(&args);\n}\n\n", s);
    sb_printf(out, "static inline int32_t %s_run(const %s_args *a, lk_error *error)\n{\n"
                   "    return %s_run_parallel(a, error, 0, 0);\n}\n\n", s, s, s);
    sb_free(&id);
}

void cg_emit_header(const ir_graph *const *graphs, const char *const *symbols, int n,
                    const char *guard, strbuf *out)
{
    const char *gd = guard && *guard ? guard : "LOSSC_KERNELS_H";
    sb_printf(out, "/* Generated by lossc. Link the matching object with -lm; nothing else\n"
                   " * is needed. Tensors are dense, C order (gradients like their input). */\n"
                   "#ifndef %s\n#define %s\n\n", gd, gd);
    sb_puts(out, cg_abi_text);
    sb_puts(out, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    for (int i = 0; i < n; i++)
        emit_one(graphs[i], symbols[i], out);
    sb_printf(out, "#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s */\n", gd);
}
