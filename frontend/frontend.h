/* frontend.h - .loss source to typed graph IR.
 *
 *   source --lexer.re (re2c)--> tokens --parse.c--> AST --elab.c--> ir_graph
 *
 * The elaborator type- and shape-checks while it builds the graph: `fn`
 * helpers and calls between losses are inlined, `str` parameters and `if` on
 * them are decided, index notation becomes GATHER/RENAME/REDUCE nodes, and
 * `grad(e, x)` becomes an OP_GRAD node for passes/ to expand. Every problem
 * is a diagnostic in the diag_set with file:line:col; nothing here prints or
 * exits.
 *
 * Prefix: fe_ (public), lex_/parse_/elab_ inside the folder.
 */
#ifndef LOSSC_FRONTEND_H
#define LOSSC_FRONTEND_H

#include "ir/ir.h"
#include "support/support.h"

/* A compile-time choice given by name: a `str` parameter ("reduction" =
 * "sum"), the size of a dim fixed to specialize ("C" = "10"), or an optional
 * tensor parameter (`w: f32[C] = none`) made an input ("w" = "input"; the
 * default "none" leaves it out of the graph's inputs). The frontend sets
 * `used` on those it consumed; a setting naming a numeric scalar parameter
 * is left unused for the caller to bind at run time, and any other name is
 * an error. */
typedef struct fe_setting {
    const char *name;
    const char *value;
    bool used;
} fe_setting;

typedef struct fe_options {
    const char *entry; /* loss to compile (the file's, else the library's);
                          NULL: the file's only loss */
    fe_setting *settings;
    int nsettings;
    bool no_library; /* do not make the built-in loss library visible */
} fe_options;

/* Check a file (lossc check): its syntax, and every loss compiled as an
 * entry with its defaults (a str parameter without one is taken as unknown:
 * no branch testing it is chosen). Returns the error count; the diagnostics
 * are in ds. `file` is an id from diag_add_file. The library files are
 * registered in ds too, as "<lib>/NAME.loss". */
int fe_check(diag_set *ds, int file);

/* Compile one loss of a file to a graph: its inputs are the tensor and
 * numeric scalar parameters in declaration order (an optional tensor only
 * when set to "input"), its outputs the returned value ("loss") then every
 * `out` in order. The graph may hold OP_GRAD nodes for passes/ to expand.
 * NULL when there were errors (in ds). */
ir_graph *fe_compile(diag_set *ds, int file, const fe_options *opts);

/* The names of the losses a file defines, in order (sup_free each name and
 * the array). Returns the count, or -1 on a syntax error (in ds). */
int fe_list_losses(diag_set *ds, int file, char ***names);

/* What the caller must bind for an entry (the CLI's help and checks). */
typedef enum fe_param_kind {
    FE_PARAM_TENSOR,          /* a run-time tensor input */
    FE_PARAM_OPTIONAL_TENSOR, /* `= none`: an input only with the setting NAME=input */
    FE_PARAM_SCALAR,          /* a run-time scalar input (IR_IN_SCALAR) */
    FE_PARAM_STR,             /* compile-time: a setting NAME=VALUE or the default */
    FE_PARAM_UNTYPED          /* only in a fn; an entry cannot have one */
} fe_param_kind;

typedef struct fe_param_info {
    char *name;
    fe_param_kind kind;
    ir_dtype dtype;     /* tensors and scalars (float -> f32, int -> i64) */
    char *type;         /* as written: "f32[N, C]", "f32", "str" */
    char *default_text; /* "1.0", "\"mean\"", "none"; NULL when required */
} fe_param_info;

/* The parameters of the entry opts->entry (or the file's only loss), in
 * order. Returns their count, or -1 with errors in ds. Free with
 * fe_param_info_free. */
int fe_describe_entry(diag_set *ds, int file, const fe_options *opts, fe_param_info **params);
void fe_param_info_free(fe_param_info *params, int n);

#endif
