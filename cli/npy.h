/* npy.h - NumPy .npy files in and out (format versions 1.0, 2.0 and 3.0).
 *
 * Only what lossc computes with: little-endian f32, f64, i32, i64 and bool,
 * C order, at most LOSSC_MAX_RANK dims. Anything else is refused with a
 * message that says how to convert it (arr.astype(...), np.ascontiguousarray).
 *
 * Prefix: cli_npy_.
 */
#ifndef LOSSC_CLI_NPY_H
#define LOSSC_CLI_NPY_H

#include "runtime/lossc.h"
#include "support/support.h"

#include <stdbool.h>

typedef struct cli_npy {
    DLDataType dtype; /* bool is {kDLUInt, 8, 1} */
    int ndim;
    int64_t shape[LOSSC_MAX_RANK];
    int64_t count; /* elements */
    void *data;    /* sup_malloc'ed, count * itemsize bytes */
} cli_npy;

/* Parse a whole .npy image; false with a message (no path in it) on error. */
bool cli_npy_parse(const unsigned char *bytes, size_t len, cli_npy *out, strbuf *err);
/* Read a file: false with "PATH: message" on error. */
bool cli_npy_read(const char *path, cli_npy *out, strbuf *err);
/* The .npy image of a (format 1.0, header padded to 64 bytes). */
void cli_npy_format(const cli_npy *a, strbuf *out);
bool cli_npy_write(const char *path, const cli_npy *a, strbuf *err);
/* A new zeroed array (data allocated). */
void cli_npy_alloc(cli_npy *a, DLDataType dt, int ndim, const int64_t *shape);
void cli_npy_free(cli_npy *a);
/* A DLTensor describing a (shape points into a). */
DLTensor cli_npy_tensor(cli_npy *a);
size_t cli_npy_itemsize(DLDataType dt);
/* "<f4", "|b1", ... or NULL for a type lossc does not use. */
const char *cli_npy_descr(DLDataType dt);

#endif
