/* cmd_eval.c - lossc eval: .npy inputs in, loss, extra outputs and gradients
 * out as .npy files.
 *
 * Everything is computed before anything is written: inputs are read and
 * bound, outputs allocated in memory, the kernel run; only then is DIR made
 * and the files written, each to a temporary name and renamed into place, so
 * an error leaves DIR as it was.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct eval {
    const cli_args *a;
    lossc_ctx *ctx;
    lossc_loss *loss;
    cli_npy *ins; /* one per --in, then --dloss */
    int nins;
    cli_npy *outs; /* one per output of the loss */
    int nouts;
    bool backward; /* the forward+backward kernel (false: the loss has no float input) */
} eval;

static void eval_free(eval *e)
{
    for (int i = 0; i < e->nins; i++)
        cli_npy_free(&e->ins[i]);
    for (int i = 0; i < e->nouts; i++)
        cli_npy_free(&e->outs[i]);
    sup_free(e->ins);
    sup_free(e->outs);
    lossc_ctx_free(e->ctx); /* frees the loss */
}

static bool has_float_input(lossc_loss *loss)
{
    lossc_info in;
    for (int i = 0; i < lossc_num_inputs(loss); i++)
        if (lossc_input_info(loss, i, &in) == LOSSC_OK && in.role != LOSSC_DLOSS &&
            in.dtype.code == kDLFloat)
            return true;
    return false;
}

/* Forward + backward; a loss with no float input has no gradient, so it is
 * compiled forward-only rather than refused. */
static int compile(eval *e)
{
    int rc = cli_compile(e->a, LOSSC_KERNEL_BACKWARD, true, &e->ctx, &e->loss);
    e->backward = rc == CLI_OK;
    if (rc == CLI_OK)
        return rc;
    if (e->a->wrt.n == 0 && cli_compile(e->a, LOSSC_KERNEL_FORWARD, true, &e->ctx, &e->loss) == CLI_OK) {
        if (!has_float_input(e->loss))
            return CLI_OK;
        lossc_ctx_free(e->ctx);
        e->ctx = NULL;
        e->loss = NULL;
    }
    return cli_compile(e->a, LOSSC_KERNEL_BACKWARD, false, &e->ctx, &e->loss); /* say why */
}

static int bind_inputs(eval *e)
{
    const cli_args *a = e->a;
    e->ins = sup_calloc((size_t)a->ins.n + 2, sizeof *e->ins);
    strbuf err;
    sb_init(&err);
    int rc = CLI_OK;
    for (int i = 0; i < a->ins.n && rc == CLI_OK; i++) {
        const char *kv = a->ins.items[i], *eq = strchr(kv, '=');
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - kv), kv);
        for (int j = 0; j < i; j++)
            if (strncmp(a->ins.items[j], kv, (size_t)(eq - kv) + 1) == 0)
                rc = cli_usage_error(a->cmd_name, "--in %s is given twice", name);
        if (rc != CLI_OK)
            break;
        cli_npy *arr = &e->ins[e->nins++];
        if (!cli_npy_read(eq + 1, arr, &err)) {
            rc = cli_fail("--in %s: %s", name, sb_str(&err));
            break;
        }
        lossc_info info = {0};
        for (int k = 0; k < lossc_num_inputs(e->loss); k++) {
            lossc_info x;
            if (lossc_input_info(e->loss, k, &x) == LOSSC_OK && strcmp(x.name, name) == 0)
                info = x;
        }
        lossc_status st;
        if (info.name && info.role == LOSSC_SCALAR) {
            /* a scalar may come from any numeric 1-element file (np.save(p, 2.0) is f64) */
            if (arr->count != 1) {
                rc = cli_fail("--in %s: '%s' is a scalar parameter but %s holds %lld elements",
                              name, name, eq + 1, (long long)arr->count);
                break;
            }
            double v = arr->dtype.code == kDLFloat
                           ? (arr->dtype.bits == 32 ? *(float *)arr->data : *(double *)arr->data)
                       : arr->dtype.code == kDLUInt ? *(uint8_t *)arr->data
                       : arr->dtype.bits == 32      ? *(int32_t *)arr->data
                                                    : (double)*(int64_t *)arr->data;
            st = lossc_bind_scalar(e->loss, name, v);
        } else {
            DLTensor t = cli_npy_tensor(arr);
            st = lossc_bind_input(e->loss, name, &t);
        }
        if (st != LOSSC_OK)
            rc = cli_fail("--in %s=%s: %s", name, eq + 1, lossc_loss_error(e->loss));
    }
    if (rc == CLI_OK && a->dloss && !e->backward)
        rc = cli_fail("--dloss: the loss has no float input, so no gradients");
    if (rc == CLI_OK && a->dloss) {
        cli_npy *arr = &e->ins[e->nins++];
        if (!cli_npy_read(a->dloss, arr, &err))
            rc = cli_fail("--dloss: %s", sb_str(&err));
        else {
            DLTensor t = cli_npy_tensor(arr);
            if (lossc_bind_input(e->loss, "dloss", &t) != LOSSC_OK)
                rc = cli_fail("--dloss %s: %s", a->dloss, lossc_loss_error(e->loss));
        }
    }
    sb_free(&err);
    return rc;
}

/* Say which --in or --set is missing before the run would. */
static int check_complete(eval *e)
{
    for (int k = 0; k < lossc_num_inputs(e->loss); k++) {
        lossc_info x;
        lossc_input_info(e->loss, k, &x);
        bool given = false;
        for (int i = 0; i < e->a->ins.n; i++) {
            const char *kv = e->a->ins.items[i];
            given |= strncmp(kv, x.name, strlen(x.name)) == 0 && kv[strlen(x.name)] == '=';
        }
        for (int i = 0; i < e->a->sets.n; i++) {
            const char *kv = e->a->sets.items[i];
            given |= strncmp(kv, x.name, strlen(x.name)) == 0 && kv[strlen(x.name)] == '=';
        }
        if (!given && x.role == LOSSC_INPUT)
            return cli_fail("input '%s' is missing: give --in %s=PATH.npy", x.name, x.name);
        if (!given && x.role == LOSSC_SCALAR && !x.has_default)
            return cli_fail("scalar '%s' has no default: give --set %s=VALUE", x.name, x.name);
    }
    return CLI_OK;
}

static int bind_outputs(eval *e)
{
    e->nouts = lossc_num_outputs(e->loss);
    e->outs = sup_calloc((size_t)e->nouts + 1, sizeof *e->outs);
    for (int i = 0; i < e->nouts; i++) {
        lossc_info o;
        int nd;
        int64_t shape[LOSSC_MAX_RANK];
        lossc_output_info(e->loss, i, &o);
        if (lossc_shape_of(e->loss, o.name, &nd, shape) != LOSSC_OK)
            return cli_fail("%s", lossc_loss_error(e->loss));
        cli_npy_alloc(&e->outs[i], o.dtype, nd, shape);
        DLTensor t = cli_npy_tensor(&e->outs[i]);
        if (lossc_bind_output(e->loss, o.name, &t) != LOSSC_OK)
            return cli_fail("%s", lossc_loss_error(e->loss));
    }
    return CLI_OK;
}

static int make_dirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return cli_fail("--out: path too long");
    for (char *p = path + 1;; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                return cli_fail("cannot create %s: %s", path, strerror(errno));
            *p = c;
        }
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_fail("--out %s is not a directory", dir);
    return CLI_OK;
}

/* Every file to a temporary name first; renamed into place once all are
 * written, so a failure (disk full) leaves no partial result behind. */
static int write_outputs(eval *e)
{
    if (make_dirs(e->a->out_dir) != CLI_OK)
        return CLI_FAIL;
    strbuf err;
    sb_init(&err);
    char(*tmp)[4200] = sup_calloc((size_t)e->nouts + 1, sizeof *tmp);
    char(*dst)[4200] = sup_calloc((size_t)e->nouts + 1, sizeof *dst);
    int rc = CLI_OK, written = 0;
    for (int i = 0; i < e->nouts && rc == CLI_OK; i++) {
        lossc_info o;
        lossc_output_info(e->loss, i, &o);
        snprintf(dst[i], sizeof dst[i], "%s/%s.npy", e->a->out_dir, o.name);
        snprintf(tmp[i], sizeof tmp[i], "%s/.%s.npy.%ld.tmp", e->a->out_dir, o.name,
                 (long)getpid());
        if (!cli_npy_write(tmp[i], &e->outs[i], &err))
            rc = cli_fail("%s", sb_str(&err));
        else
            written++;
    }
    for (int i = 0; i < written; i++) {
        if (rc != CLI_OK)
            remove(tmp[i]);
        else if (rename(tmp[i], dst[i]) != 0)
            rc = cli_fail("cannot write %s: %s", dst[i], strerror(errno));
    }
    sup_free(tmp);
    sup_free(dst);
    sb_free(&err);
    return rc;
}

int cli_cmd_eval(const cli_args *a)
{
    eval e = {.a = a};
    int rc = compile(&e);
    if (rc == CLI_OK)
        rc = check_complete(&e);
    if (rc == CLI_OK)
        rc = bind_inputs(&e);
    if (rc == CLI_OK)
        rc = bind_outputs(&e);
    if (rc == CLI_OK) {
        lossc_status st = e.backward ? lossc_forward_backward(e.loss) : lossc_forward(e.loss);
        if (st != LOSSC_OK)
            rc = cli_fail("%s", lossc_loss_error(e.loss));
    }
    if (rc == CLI_OK)
        rc = write_outputs(&e);
    eval_free(&e);
    return rc;
}
