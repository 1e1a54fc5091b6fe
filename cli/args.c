/* args.c - option parsing for every command.
 *
 * One table says which options exist, which commands take them and whether
 * they take a value, so every command rejects what it does not understand
 * (a usage error, exit 2) instead of ignoring it. Values come as the next
 * argument or after '=' (--entry huber, --entry=huber); repeatable options
 * (--set, --in, --wrt, --dim) collect into lists.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    SHOW = CMD_IR | CMD_DOT | CMD_LLVM,
    COMPILES = SHOW | CMD_EVAL | CMD_BUILD | CMD_GRADCHECK | CMD_DEMO,
    GENERATES = CMD_GRADCHECK | CMD_DEMO,
};

typedef enum opt_id {
    O_ENTRY, O_SET, O_GRAD, O_PRINT_AFTER_ALL, O_KERNELS, O_IN, O_DLOSS, O_THREADS, O_OUT,
    O_OBJECT, O_HEADER, O_CPU, O_N, O_DIM, O_SEED, O_WRT, O_HELP
} opt_id;

typedef struct opt_spec {
    opt_id id;
    const char *name; /* "--entry" */
    const char *alt;  /* "-o", or NULL */
    const char *arg;  /* value placeholder, NULL for a flag */
    int cmds;
    const char *help;
} opt_spec;

static const opt_spec specs[] = {
    {O_ENTRY, "--entry", NULL, "NAME", COMPILES, "the loss to compile (default: the file's only one)"},
    {O_SET, "--set", NULL, "NAME=VALUE", COMPILES,
     "a str parameter (reduction=sum), a fixed dim (C=10) or a numeric scalar (delta=2)"},
    {O_WRT, "--wrt", NULL, "NAME", COMPILES & ~CMD_DEMO & ~CMD_GRADCHECK,
     "differentiate only with respect to NAME (repeatable; default: every float input)"},
    {O_GRAD, "--grad", NULL, NULL, SHOW, "include the gradients (the forward+backward graph)"},
    {O_PRINT_AFTER_ALL, "--print-after-all", NULL, NULL, CMD_IR, "print the IR after every pass"},
    {O_KERNELS, "--kernels", NULL, NULL, CMD_IR, "print the fused kernel plan (sweeps, loop nests)"},
    {O_IN, "--in", NULL, "NAME=PATH.npy", CMD_EVAL, "an input from a .npy file (repeatable)"},
    {O_DLOSS, "--dloss", NULL, "PATH.npy", CMD_EVAL,
     "the upstream gradient (default: ones, i.e. gradients of the loss's sum)"},
    {O_OUT, "--out", NULL, "DIR", CMD_EVAL, "where to write loss.npy, <out>.npy, grad_<input>.npy"},
    {O_THREADS, "--threads", NULL, "N", CMD_EVAL | GENERATES, "threads (default: every core)"},
    {O_OBJECT, "-o", NULL, "X.o", CMD_BUILD, "the object file to write"},
    {O_HEADER, "--header", NULL, "X.h", CMD_BUILD, "the C header to write"},
    {O_CPU, "--cpu", NULL, "CPU", CMD_BUILD | CMD_LLVM | CMD_EVAL | GENERATES,
     "target CPU, an LLVM name such as x86-64-v3 (default: the host)"},
    {O_N, "-n", NULL, "SIZE", GENERATES, "size of the first free dim of the generated data"},
    {O_DIM, "--dim", NULL, "NAME=SIZE", GENERATES, "size of another dim (repeatable)"},
    {O_SEED, "--seed", NULL, "N", GENERATES, "seed of the generated data"},
    {O_HELP, "--help", "-h", NULL, ~0, "show this help"},
};

static const struct {
    int cmd;
    const char *synopsis, *what;
} usage_text[] = {
    {CMD_CHECK, "lossc check FILE", "Report diagnostics; exit 1 if there are errors."},
    {CMD_IR, "lossc ir FILE [--entry NAME] [--grad] [--print-after-all] [--kernels] [--set ...]",
     "Print the typed graph IR after the pass pipeline."},
    {CMD_DOT, "lossc dot FILE [--entry NAME] [--grad] [--set ...]",
     "Print the graph as graphviz DOT (backward nodes drawn apart)."},
    {CMD_LLVM, "lossc llvm FILE [--entry NAME] [--grad] [--cpu CPU] [--set ...]",
     "Print the optimized LLVM IR of the kernel."},
    {CMD_EVAL,
     "lossc eval FILE --entry NAME --in NAME=PATH.npy ... [--set ...] [--dloss PATH.npy] "
     "[--threads N] --out DIR",
     "Run forward + backward on .npy inputs; write DIR/loss.npy, DIR/<out>.npy and "
     "DIR/grad_<input>.npy for every float input. Nothing is written on error."},
    {CMD_BUILD, "lossc build FILE --entry NAME -o X.o --header X.h [--cpu CPU] [--set ...]",
     "Compile the forward and forward+backward kernels ahead of time (needs libc and libm)."},
    {CMD_GRADCHECK, "lossc gradcheck FILE [--entry NAME] [--set ...] [-n SIZE] [--seed N]",
     "Check gradients at a random point against central finite differences (f64): the "
     "autodiff pass through the interpreter, and the compiled kernel. Exit 1 if any fails."},
    {CMD_DEMO, "lossc demo FILE [--entry NAME] [-n SIZE] [--threads N] [--set ...]",
     "Compile, run forward + backward on random data, print the loss, a gradient summary, a "
     "gradient check and the timings."},
};

void cli_print_usage(int cmd)
{
    for (size_t i = 0; i < SUP_ARRAY_LEN(usage_text); i++)
        if (usage_text[i].cmd == cmd)
            printf("usage: %s\n\n%s\n\noptions:\n", usage_text[i].synopsis, usage_text[i].what);
    for (size_t i = 0; i < SUP_ARRAY_LEN(specs); i++) {
        const opt_spec *s = &specs[i];
        if (!(s->cmds & cmd))
            continue;
        char left[64];
        snprintf(left, sizeof left, "%s%s%s%s%s", s->name, s->alt ? ", " : "",
                 s->alt ? s->alt : "", s->arg ? " " : "", s->arg ? s->arg : "");
        printf("  %-24s %s\n", left, s->help);
    }
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lossc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage_error(const char *cmd_name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lossc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\ntry 'lossc %s --help'\n", cmd_name ? cmd_name : "");
    va_end(ap);
    return CLI_USAGE;
}

static void list_add(cli_list *l, const char *s)
{
    SUP_GROW(l->items, l->cap, (size_t)l->n + 1);
    l->items[l->n++] = s;
}

void cli_args_free(cli_args *a)
{
    sup_free(a->sets.items);
    sup_free(a->ins.items);
    sup_free(a->wrt.items);
    sup_free(a->dims.items);
}

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int set_option(cli_args *a, const opt_spec *s, const char *v)
{
    int64_t x;
    switch (s->id) {
    case O_ENTRY: a->entry = v; break;
    case O_SET:
    case O_IN:
    case O_DIM:
        if (!strchr(v, '=') || v[0] == '=')
            return cli_usage_error(a->cmd_name, "%s wants %s, got '%s'", s->name, s->arg, v);
        list_add(s->id == O_SET ? &a->sets : s->id == O_IN ? &a->ins : &a->dims, v);
        break;
    case O_WRT: list_add(&a->wrt, v); break;
    case O_GRAD: a->grad = true; break;
    case O_PRINT_AFTER_ALL: a->print_after_all = true; break;
    case O_KERNELS: a->kernels = true; break;
    case O_DLOSS: a->dloss = v; break;
    case O_OUT: a->out_dir = v; break;
    case O_OBJECT: a->object = v; break;
    case O_HEADER: a->header = v; break;
    case O_CPU: a->cpu = v; break;
    case O_HELP: a->help = true; break;
    case O_THREADS:
        if (!parse_int(v, 1, 1024, &x))
            return cli_usage_error(a->cmd_name, "--threads wants a number in [1, 1024], got '%s'", v);
        a->threads = (int)x;
        break;
    case O_N:
        if (!parse_int(v, 1, INT64_C(1) << 40, &x))
            return cli_usage_error(a->cmd_name, "-n wants a positive size, got '%s'", v);
        a->n = x;
        break;
    case O_SEED:
        if (!parse_int(v, 0, INT64_MAX, &x))
            return cli_usage_error(a->cmd_name, "--seed wants a number, got '%s'", v);
        a->seed = (uint64_t)x;
        break;
    }
    return CLI_OK;
}

int cli_parse_args(int cmd, const char *cmd_name, int argc, char **argv, cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->cmd_name = cmd_name;
    a->seed = 1;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->file)
                return cli_usage_error(cmd_name, "one FILE expected, got '%s' and '%s'", a->file, arg);
            a->file = arg;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq && arg[1] == '-' ? (size_t)(eq - arg) : strlen(arg);
        const opt_spec *s = NULL;
        for (size_t k = 0; k < SUP_ARRAY_LEN(specs); k++)
            if ((strlen(specs[k].name) == len && strncmp(specs[k].name, arg, len) == 0) ||
                (specs[k].alt && strcmp(specs[k].alt, arg) == 0))
                s = &specs[k];
        if (!s || !(s->cmds & cmd))
            return cli_usage_error(cmd_name, "'lossc %s' has no option '%.*s'", cmd_name,
                                   (int)len, arg);
        const char *v = NULL;
        if (s->arg) {
            if (eq && arg[1] == '-' && len < strlen(arg))
                v = eq + 1;
            else if (i + 1 < argc)
                v = argv[++i];
            else
                return cli_usage_error(cmd_name, "%s needs a value (%s)", s->name, s->arg);
        } else if (len < strlen(arg)) {
            return cli_usage_error(cmd_name, "%s takes no value", s->name);
        }
        int rc = set_option(a, s, v);
        if (rc != CLI_OK)
            return rc;
    }
    if (a->help)
        return CLI_OK;
    if (!a->file)
        return cli_usage_error(cmd_name, "no FILE given");
    if (cmd == CMD_EVAL && !a->out_dir)
        return cli_usage_error(cmd_name, "--out DIR is required");
    if (cmd == CMD_BUILD && (!a->object || !a->header))
        return cli_usage_error(cmd_name, "-o X.o and --header X.h are required");
    return CLI_OK;
}
