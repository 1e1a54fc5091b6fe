/* support.h - memory, strings, hashing and diagnostics shared by every stage.
 *
 * Prefix: sup_ (plus arena_, sb_, diag_ for the three small modules).
 *
 * Memory has one owner: long-lived compiler data lives in an arena that is
 * freed at once; everything else goes through sup_malloc/sup_realloc/sup_free,
 * which route to one replaceable allocator so tests can inject failures.
 * Allocation failure is fatal (it prints and aborts): a loss compiler's working
 * set is tiny and callers stay simple.
 */
#ifndef LOSSC_SUPPORT_H
#define LOSSC_SUPPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SUP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SUP_NORETURN __attribute__((noreturn))
#else
#define SUP_PRINTF(f, a)
#define SUP_NORETURN
#endif

#define SUP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- allocation ---------------------------------------------------------- */

typedef struct sup_allocator {
    void *(*realloc)(void *ud, void *ptr, size_t size); /* size 0 frees */
    void *ud;
} sup_allocator;

/* Replace the process-wide allocator (NULL restores the libc one). */
void sup_set_allocator(const sup_allocator *a);
void *sup_malloc(size_t size);
void *sup_calloc(size_t n, size_t size);
void *sup_realloc(void *ptr, size_t size);
void sup_free(void *ptr);
char *sup_strdup(const char *s);
SUP_NORETURN void sup_fatal(const char *fmt, ...) SUP_PRINTF(1, 2);

/* Grow a dynamic array `*items` of `*cap` elements so that it holds `need`. */
void sup_grow(void **items, size_t *cap, size_t need, size_t elem_size);
#define SUP_GROW(items, cap, need) \
    sup_grow((void **)&(items), &(cap), (need), sizeof(*(items)))

/* ---- arena --------------------------------------------------------------- */

typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;
    size_t used_total;
} arena;

void arena_init(arena *a);
void arena_free(arena *a);
void *arena_alloc(arena *a, size_t size);       /* zeroed, 16-byte aligned */
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_printf(arena *a, const char *fmt, ...) SUP_PRINTF(2, 3);
#define ARENA_NEW(a, T) ((T *)arena_alloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

/* ---- growable string ----------------------------------------------------- */

typedef struct strbuf {
    char *data; /* always NUL-terminated once anything was appended */
    size_t len, cap;
} strbuf;

void sb_init(strbuf *sb);
void sb_free(strbuf *sb);
void sb_clear(strbuf *sb);
void sb_putc(strbuf *sb, char c);
void sb_puts(strbuf *sb, const char *s);
void sb_putn(strbuf *sb, const char *s, size_t n);
void sb_printf(strbuf *sb, const char *fmt, ...) SUP_PRINTF(2, 3);
void sb_vprintf(strbuf *sb, const char *fmt, va_list ap);
char *sb_take(strbuf *sb); /* returns the heap string (never NULL); sb is reset */
const char *sb_str(const strbuf *sb); /* "" when empty */

/* ---- hashing ------------------------------------------------------------- */

uint64_t sup_hash_bytes(const void *p, size_t n, uint64_t seed);
static inline uint64_t sup_hash_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

/* ---- files --------------------------------------------------------------- */

/* Read a whole file; NULL (and errno set) when it cannot be read. */
char *sup_read_file(const char *path, size_t *len_out);

/* ---- source locations and diagnostics ------------------------------------ */

/* A source text the diagnostics can quote. Owned by a diag_set. */
typedef struct src_file {
    const char *name;
    const char *text;
    size_t len;
    int id;
} src_file;

/* A point in a source file; line and col are 1-based, 0 means unknown. */
typedef struct src_loc {
    int32_t file; /* index in diag_set.files, -1 for none */
    int32_t line, col;
} src_loc;

static inline src_loc src_loc_none(void) { return (src_loc){-1, 0, 0}; }
static inline bool src_loc_valid(src_loc l) { return l.file >= 0 && l.line > 0; }

typedef enum diag_level { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } diag_level;

typedef struct diag {
    diag_level level;
    src_loc loc;
    char *msg;
} diag;

/* Collects diagnostics and the source files they point into. Library code
 * only records; the caller decides what to print and whether to exit. */
typedef struct diag_set {
    src_file *files;
    size_t nfiles, files_cap;
    diag *items;
    size_t count, cap;
    int nerrors;
    int max_errors; /* stop recording errors past this (0: unlimited) */
} diag_set;

void diag_init(diag_set *ds);
void diag_free(diag_set *ds);
/* Register a source text (copied); returns its file id. */
int diag_add_file(diag_set *ds, const char *name, const char *text, size_t len);
const src_file *diag_file(const diag_set *ds, int id);
void diag_report(diag_set *ds, diag_level lvl, src_loc loc, const char *fmt, ...)
    SUP_PRINTF(4, 5);
void diag_vreport(diag_set *ds, diag_level lvl, src_loc loc, const char *fmt,
                  va_list ap);
#define diag_error(ds, loc, ...) diag_report((ds), DIAG_ERROR, (loc), __VA_ARGS__)
#define diag_note(ds, loc, ...) diag_report((ds), DIAG_NOTE, (loc), __VA_ARGS__)
/* Format one diagnostic as `file:line:col: error: msg`, the source line and a
 * caret under the column. */
void diag_format(const diag_set *ds, const diag *d, strbuf *out);
/* Format every diagnostic in order. */
void diag_format_all(const diag_set *ds, strbuf *out);

#endif
