/* cli.h - the `lossc` command line: shared declarations.
 *
 *   main.c       the command table, --help, --version, exit codes
 *   args.c       option parsing (which command takes which option)
 *   cmd_show.c   check, ir, dot, llvm (the compiler's views)
 *   cmd_eval.c   eval (.npy in, .npy out)
 *   cmd_build.c  build (object + header)
 *   cmd_demo.c   demo and gradcheck (generated data)
 *   data.c       random inputs in each input's domain
 *   npy.c        .npy files
 *
 * Only this folder prints or exits. Exit codes: 0 success, 1 an error in the
 * input or at run time (message on stderr, nothing written), 2 a usage error.
 *
 * Prefix: cli_.
 */
#ifndef LOSSC_CLI_H
#define LOSSC_CLI_H

#include "cli/npy.h"
#include "ir/ir.h"
#include "runtime/lossc.h"
#include "support/support.h"

#include <stdbool.h>
#include <stdint.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Commands, as bits so that an option can list the commands it belongs to. */
enum {
    CMD_CHECK = 1 << 0,
    CMD_IR = 1 << 1,
    CMD_DOT = 1 << 2,
    CMD_LLVM = 1 << 3,
    CMD_EVAL = 1 << 4,
    CMD_BUILD = 1 << 5,
    CMD_GRADCHECK = 1 << 6,
    CMD_DEMO = 1 << 7,
};

typedef struct cli_list {
    const char **items;
    int n;
    size_t cap;
} cli_list;

typedef struct cli_args {
    int cmd; /* CMD_* */
    const char *cmd_name;
    const char *file;
    const char *entry;
    cli_list sets; /* --set NAME=VALUE */
    cli_list ins;  /* --in NAME=PATH */
    cli_list wrt;  /* --wrt NAME */
    cli_list dims; /* --dim NAME=SIZE */
    const char *dloss, *out_dir, *object, *header, *cpu;
    int threads; /* 0: every core */
    int64_t n;   /* -n: size of the first free dim (0: the command's default) */
    uint64_t seed;
    bool grad, print_after_all, kernels, help;
} cli_args;

/* Parse argv after the command name. Returns CLI_OK, or CLI_USAGE after
 * printing what is wrong. */
int cli_parse_args(int cmd, const char *cmd_name, int argc, char **argv, cli_args *a);
void cli_args_free(cli_args *a);
/* Print a command's usage (its --help) to stdout. */
void cli_print_usage(int cmd);
/* "lossc: " + message to stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) SUP_PRINTF(1, 2);
int cli_usage_error(const char *cmd_name, const char *fmt, ...) SUP_PRINTF(2, 3);

/* ---- commands -------------------------------------------------------------------- */

int cli_cmd_check(const cli_args *a);
int cli_cmd_show(const cli_args *a); /* ir, dot, llvm */
int cli_cmd_eval(const cli_args *a);
int cli_cmd_build(const cli_args *a);
int cli_cmd_gradcheck(const cli_args *a);
int cli_cmd_demo(const cli_args *a);

/* ---- shared helpers ---------------------------------------------------------------- */

/* The frontend on a.file with --entry and --set: the graph, or NULL after
 * printing the diagnostics. wrt (may be NULL) receives the --wrt bits. */
ir_graph *cli_frontend(const cli_args *a, uint64_t *wrt);
/* Compile a.file through the C API (context from --threads/--cpu). On
 * failure prints the message (unless quiet) and returns CLI_FAIL with
 * nothing to free. */
int cli_compile(const cli_args *a, int kernels, bool quiet, lossc_ctx **ctx, lossc_loss **loss);

/* Random inputs (data.c): one array per input of the frontend graph fe, by
 * the rules in data.c; dims[d] gives each dim's size. */
void cli_gen_inputs(const ir_graph *fe, const int64_t *dims, uint64_t seed, cli_npy *arrays);
/* Dim sizes for generated data: fixed dims keep their size, --dim NAME=SIZE
 * sets one, the first free dim gets `first`, the others `other`. Returns
 * CLI_OK or prints and returns CLI_USAGE / CLI_FAIL. */
int cli_pick_dims(const cli_args *a, const ir_graph *fe, int64_t first, int64_t other,
                  int64_t *dims);
/* Bind generated arrays to loss: every tensor, and the scalars that have
 * neither a default nor a --set value. */
int cli_bind_arrays(lossc_loss *loss, const cli_args *a, cli_npy *arrays, const ir_graph *fe);

#endif
