/* main.c - `lossc`: one binary, one command per compiler view or job.
 *
 *   lossc check FILE               diagnostics only
 *   lossc ir | dot | llvm FILE     the graph, as text, DOT or LLVM IR
 *   lossc eval FILE ...            .npy in, .npy out
 *   lossc build FILE ...           object + header, ahead of time
 *   lossc gradcheck FILE ...       gradients against finite differences
 *   lossc demo FILE ...            the whole pipeline on generated data
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int cmd;
    int (*run)(const cli_args *a);
    const char *summary;
} command;

static const command commands[] = {
    {"check", CMD_CHECK, cli_cmd_check, "report diagnostics (exit 1 on errors)"},
    {"ir", CMD_IR, cli_cmd_show, "print the graph IR after the pass pipeline"},
    {"dot", CMD_DOT, cli_cmd_show, "print the graph as graphviz DOT"},
    {"llvm", CMD_LLVM, cli_cmd_show, "print the kernel's LLVM IR"},
    {"eval", CMD_EVAL, cli_cmd_eval, "run forward + backward on .npy files"},
    {"build", CMD_BUILD, cli_cmd_build, "write an object file and a C header"},
    {"gradcheck", CMD_GRADCHECK, cli_cmd_gradcheck, "check gradients with finite differences"},
    {"demo", CMD_DEMO, cli_cmd_demo, "compile, run on random data, check, time"},
};

static void print_help(FILE *f)
{
    fprintf(f, "usage: lossc COMMAND FILE [options]\n\n"
               "lossc compiles loss functions written in the .loss language into fused\n"
               "forward + backward kernels.\n\ncommands:\n");
    for (size_t i = 0; i < SUP_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'lossc COMMAND --help' shows a command's options; 'lossc --version' the "
               "version.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_help(stdout);
        return CLI_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("lossc %s\n", lossc_version());
        return CLI_OK;
    }
    const command *c = NULL;
    for (size_t i = 0; i < SUP_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            c = &commands[i];
    if (!c) {
        fprintf(stderr, "lossc: unknown command '%s'\n", name);
        print_help(stderr);
        return CLI_USAGE;
    }
    cli_args a;
    int rc = cli_parse_args(c->cmd, c->name, argc - 2, argv + 2, &a);
    if (rc == CLI_OK && a.help)
        cli_print_usage(c->cmd);
    else if (rc == CLI_OK)
        rc = c->run(&a);
    cli_args_free(&a);
    return rc;
}
