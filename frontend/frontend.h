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
 * "sum") or the size of a dim fixed to specialize ("C" = "10"). The frontend
 * sets `used` on those it consumed; a setting naming a numeric scalar
 * parameter is left unused for the caller to bind at run time, and any other
 * name is an error. */
typedef struct fe_setting {
    const char *name;
    const char *value;
    bool used;
} fe_setting;

typedef struct fe_options {
    const char *entry; /* loss to compile; NULL: the file's only loss */
    fe_setting *settings;
    int nsettings;
    bool no_library; /* do not make the built-in loss library visible */
} fe_options;

/* Check every definition of a file (lossc check). Returns the error count;
 * the diagnostics are in ds. `file` is an id from diag_add_file. */
int fe_check(diag_set *ds, int file);

/* Compile one loss of a file to a graph: its inputs are the tensor and
 * numeric scalar parameters in declaration order, its outputs the returned
 * value ("loss") then every `out`. NULL when there were errors (in ds). */
ir_graph *fe_compile(diag_set *ds, int file, const fe_options *opts);

/* The names of the losses a file defines, in order (sup_free each name and
 * the array). Returns the count, or -1 on a syntax error (in ds). */
int fe_list_losses(diag_set *ds, int file, char ***names);

#endif
