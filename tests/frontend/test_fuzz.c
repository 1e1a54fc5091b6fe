/* test_fuzz.c - no input crashes the frontend. Every example and library
 * file is mutated at random (bytes and tokens deleted, duplicated, swapped,
 * inserted; a fixed seed, so a failure replays) and each mutant goes through
 * fe_check and fe_compile. Run under ASan+UBSan this finds any out-of-bounds
 * access, leak or undefined behaviour; here it also checks that a graph the
 * frontend returns always verifies and that every error is formatted with a
 * location. LOSSC_FUZZ_CASES overrides the number of mutants per file. */
#include "fe_test.h"

#include "frontend/fe.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t rnd_below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static const char *const snippets[] = {
    "(", ")", "[", "]", "{", "}", ",", "=", "==", "let ", "return ", "loss ", "fn ",
    "out o = ", "sum[d](", "max[i](", "x", "N", "C", "i", "j", "d", "1e309", "-", "^",
    "//", "%", "\n", "\"", "#", "if ", "else ", "none", "axis=", "axis=-1", "axis=(C, D)",
    "grad(", "where(", "0", "-1", "99999999999999999999", "inf", "nan", "f32[N]",
    "i64[N, C]", ": str", " = none", "&&", "||", "!", "one_hot(", "softmax(", "norm(",
    "p=", "gather(", "clamp(", "min=", "log_softmax(", "mean(", "[N, N]", "f64(",
    "x[0]", "x[n, y[n]]", "let s[i, j] = ", "sum[d](z[i, d] * z[j, d])", "\t", ";",
    "mse_loss(", "cross_entropy(", "reduction=\"sum\"", "error(\"e\")", "f32[3]",
};

/* Apply one random mutation to buf (len bytes, capacity cap). */
static size_t mutate(char *buf, size_t len, size_t cap)
{
    size_t at = rnd_below(len + 1), n = 1 + rnd_below(8);
    switch (rnd_below(6)) {
    case 0: /* delete a run */
        if (at + n > len)
            n = len - at;
        memmove(buf + at, buf + at + n, len - at - n);
        return len - n;
    case 1: { /* duplicate a run */
        if (at + n > len)
            n = len - at;
        if (len + n > cap)
            return len;
        memmove(buf + at + n, buf + at, len - at);
        return len + n;
    }
    case 2: { /* swap two bytes */
        if (!len)
            return len;
        size_t b = rnd_below(len);
        at = rnd_below(len);
        char t = buf[at];
        buf[at] = buf[b];
        buf[b] = t;
        return len;
    }
    case 3: /* a random byte, NUL and high bytes included */
        if (at < len) {
            buf[at] = (char)rnd_below(256);
            return len;
        }
        if (len < cap)
            buf[len++] = (char)rnd_below(256);
        return len;
    case 4: { /* copy a chunk from elsewhere (a token or a few) */
        size_t from = rnd_below(len), m = 1 + rnd_below(16);
        if (from + m > len)
            m = len - from;
        if (len + m > cap || m == 0)
            return len;
        char tmp[32];
        memcpy(tmp, buf + from, m);
        memmove(buf + at + m, buf + at, len - at);
        memcpy(buf + at, tmp, m);
        return len + m;
    }
    default: { /* insert a snippet of the language */
        const char *s = snippets[rnd_below(SUP_ARRAY_LEN(snippets))];
        size_t m = strlen(s);
        if (len + m > cap)
            return len;
        memmove(buf + at + m, buf + at, len - at);
        memcpy(buf + at, s, m);
        return len + m;
    }
    }
}

static void run_case(const char *text, size_t len)
{
    diag_set ds;
    diag_init(&ds);
    ds.max_errors = 50;
    int f = diag_add_file(&ds, "fuzz.loss", text, len);
    fe_check(&ds, f);
    ir_graph *g = fe_compile(&ds, f, NULL);
    if (g) {
        strbuf why;
        sb_init(&why);
        if (!ir_verify(g, &why))
            fail_msg("a compiled mutant does not verify: %s\n%.*s", sb_str(&why), (int)len, text);
        sb_free(&why);
        ir_graph_free(g);
    }
    strbuf out;
    sb_init(&out);
    diag_format_all(&ds, &out);
    for (size_t i = 0; i < ds.count; i++)
        if (ds.items[i].level == DIAG_ERROR && ds.items[i].loc.file < 0)
            fail_msg("an error without a file: %s", ds.items[i].msg);
    sb_free(&out);
    diag_free(&ds);
}

static void fuzz_text(const char *name, const char *text, size_t len, int cases)
{
    size_t cap = len + 512;
    char *buf = sup_malloc(cap);
    for (int c = 0; c < cases; c++) {
        memcpy(buf, text, len);
        size_t n = len;
        int k = 1 + (int)rnd_below(4);
        for (int i = 0; i < k; i++)
            n = mutate(buf, n, cap);
        run_case(buf, n);
    }
    (void)name;
    sup_free(buf);
}

static int cases_per_file(void)
{
    const char *env = getenv("LOSSC_FUZZ_CASES");
    return env ? atoi(env) : 300;
}

static void test_fuzz_examples(void **state)
{
    (void)state;
    int n;
    char **names = ft_list_dir("examples", &n);
    assert_true(n >= 3);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "examples/%s", names[i]);
        size_t len;
        char *text = sup_read_file(path, &len);
        assert_non_null(text);
        run_case(text, len); /* the example itself is fine */
        fuzz_text(path, text, len, cases_per_file());
        sup_free(text);
    }
    ft_free_list(names, n);
}

static void test_fuzz_library(void **state)
{
    (void)state;
    for (int i = 0; i < fe_lib_count; i++)
        fuzz_text(fe_lib_names[i], fe_lib_texts[i], fe_lib_lens[i], cases_per_file() / 2);
}

/* Hand-picked hostile inputs. */
static void test_hostile(void **state)
{
    (void)state;
    static char deep[20000];
    for (size_t i = 0; i < sizeof deep - 1; i++)
        deep[i] = "(["[i % 2];
    run_case(deep, strlen(deep));
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "loss f(x: f32[N]) { return x");
    for (int i = 0; i < 5000; i++)
        sb_puts(&sb, " + x");
    sb_puts(&sb, " }\n");
    run_case(sb.data, sb.len);
    sb_clear(&sb);
    sb_puts(&sb, "fn f(x) = g(x)\nfn g(x) = f(x)\nloss l(x: f32[N]) { return f(x) }\n");
    run_case(sb.data, sb.len);
    sb_free(&sb);
    const char *bad[] = {
        "", "loss", "loss f(", "loss f() {", "}", "loss f() { return }",
        "loss f(x: f32[", "fn f(x) = ", "loss f(x: f32[0]) { return x }",
        "loss f(x: f32[N, N]) { return sum(x) }", "\xff\xfe", "loss f() { return 1 }",
        "loss f(x: f32[A,B,C,D,E,F,G,H,I]) { return sum(x) }",
    };
    for (size_t i = 0; i < SUP_ARRAY_LEN(bad); i++)
        run_case(bad[i], strlen(bad[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_fuzz_examples),
        cmocka_unit_test(test_fuzz_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
