/* memory.c - the process allocator hook, arenas, string buffers, hashing. */
#include "support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation ---------------------------------------------------------- */

static void *libc_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

static sup_allocator g_alloc = {libc_realloc, NULL};

void sup_set_allocator(const sup_allocator *a)
{
    g_alloc = a ? *a : (sup_allocator){libc_realloc, NULL};
}

void sup_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lossc: fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *sup_realloc(void *ptr, size_t size)
{
    if (size == 0)
        size = 1;
    void *p = g_alloc.realloc(g_alloc.ud, ptr, size);
    if (!p)
        sup_fatal("out of memory (%zu bytes)", size);
    return p;
}

void *sup_malloc(size_t size) { return sup_realloc(NULL, size); }

void *sup_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        sup_fatal("allocation size overflow");
    void *p = sup_malloc(n * size);
    memset(p, 0, n * size);
    return p;
}

void sup_free(void *ptr)
{
    if (ptr)
        g_alloc.realloc(g_alloc.ud, ptr, 0);
}

char *sup_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(sup_malloc(n), s, n);
}

void sup_grow(void **items, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need)
        ncap *= 2;
    *items = sup_realloc(*items, ncap * elem_size);
    *cap = ncap;
}

/* ---- arena --------------------------------------------------------------- */

struct arena_block {
    arena_block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

enum { ARENA_BLOCK = 64 * 1024 };

void arena_init(arena *a)
{
    a->head = NULL;
    a->used_total = 0;
}

void arena_free(arena *a)
{
    for (arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        sup_free(b);
    }
    a->head = NULL;
    a->used_total = 0;
}

void *arena_alloc(arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    arena_block *b = a->head;
    if (!b || b->size - b->used < size) {
        size_t bsize = size > ARENA_BLOCK / 4 ? size : ARENA_BLOCK;
        b = sup_malloc(sizeof(arena_block) + bsize);
        b->size = bsize;
        b->used = 0;
        /* A big one-off block goes behind the current one so the current
         * block's free space is not wasted. */
        if (a->head && bsize != ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += size;
    a->used_total += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(arena *a, const char *fmt, ...)
{
    strbuf sb;
    sb_init(&sb);
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&sb, fmt, ap);
    va_end(ap);
    char *p = arena_strndup(a, sb_str(&sb), sb.len);
    sb_free(&sb);
    return p;
}

/* ---- strbuf -------------------------------------------------------------- */

void sb_init(strbuf *sb) { *sb = (strbuf){0}; }

void sb_free(strbuf *sb)
{
    sup_free(sb->data);
    *sb = (strbuf){0};
}

void sb_clear(strbuf *sb)
{
    sb->len = 0;
    if (sb->data)
        sb->data[0] = '\0';
}

static void sb_reserve(strbuf *sb, size_t extra)
{
    SUP_GROW(sb->data, sb->cap, sb->len + extra + 1);
}

void sb_putn(strbuf *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_putc(strbuf *sb, char c) { sb_putn(sb, &c, 1); }
void sb_puts(strbuf *sb, const char *s) { sb_putn(sb, s, strlen(s)); }

void sb_vprintf(strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    sb_reserve(sb, (size_t)n);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
}

void sb_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(sb, fmt, ap);
    va_end(ap);
}

char *sb_take(strbuf *sb)
{
    char *s = sb->data ? sb->data : sup_strdup("");
    *sb = (strbuf){0};
    return s;
}

const char *sb_str(const strbuf *sb) { return sb->data ? sb->data : ""; }

/* ---- hashing (FNV-1a folded through the mixer) --------------------------- */

uint64_t sup_hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return sup_hash_mix(h, n);
}

/* ---- files --------------------------------------------------------------- */

char *sup_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    strbuf sb;
    sb_init(&sb);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sb_putn(&sb, buf, n);
    int err = ferror(f);
    fclose(f);
    if (err) {
        sb_free(&sb);
        errno = EIO;
        return NULL;
    }
    if (len_out)
        *len_out = sb.len;
    return sb_take(&sb);
}
