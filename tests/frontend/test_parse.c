/* test_parse.c - the lexer (tokens, where newlines count) and the parser
 * (precedence, index notation, recovery after errors). */
#include "fe_test.h"

#include "frontend/fe.h"

static int lex(const char *text, token **toks, diag_set *ds)
{
    diag_init(ds);
    int f = diag_add_file(ds, "t.loss", text, strlen(text));
    return lex_tokenize(ds, f, toks);
}

static void expect_kinds(const char *text, const tok_kind *want, int n)
{
    diag_set ds;
    token *t;
    int got = lex(text, &t, &ds);
    for (int i = 0; i < n && i < got; i++)
        if (t[i].kind != want[i])
            fail_msg("%s: token %d is %s, want %s", text, i, lex_kind_name(t[i].kind),
                     lex_kind_name(want[i]));
    assert_int_equal(got, n);
    sup_free(t);
    diag_free(&ds);
}

static void test_tokens(void **state)
{
    (void)state;
    const tok_kind a[] = {TK_LET, TK_IDENT, TK_ASSIGN, TK_INT, TK_SLASHSLASH, TK_FLOAT,
                          TK_CARET, TK_FLOAT, TK_LE, TK_STRING, TK_ANDAND, TK_BANG,
                          TK_INF, TK_EOF};
    expect_kinds("let x = 12 // 2.5 ^ 1e-6 <= \"a\\\"b\" && !inf # comment", a, 14);
    /* Newlines end statements, but not inside brackets or after an operator. */
    const tok_kind b[] = {TK_IDENT, TK_LPAREN, TK_IDENT, TK_COMMA, TK_IDENT, TK_RPAREN,
                          TK_PLUS, TK_IDENT, TK_NEWLINE, TK_IDENT, TK_NEWLINE, TK_EOF};
    expect_kinds("f(a,\n b\n) +\n\n c\n\nd\n", b, 12);
}

static void test_token_values(void **state)
{
    (void)state;
    diag_set ds;
    token *t;
    int n = lex("42 0.5 .25 3e2", &t, &ds);
    assert_int_equal(n, 5);
    assert_int_equal(t[0].ival, 42);
    assert_close(t[1].num, 0.5, 0, 0);
    assert_close(t[2].num, 0.25, 0, 0);
    assert_int_equal(t[3].kind, TK_FLOAT);
    assert_close(t[3].num, 300, 0, 0);
    assert_int_equal(t[1].loc.col, 4);
    sup_free(t);
    diag_free(&ds);
}

static void test_lex_errors(void **state)
{
    (void)state;
    diag_set ds;
    token *t;
    const char text[] = "x $ \"open\ny";
    lex(text, &t, &ds);
    assert_int_equal(ds.nerrors, 2);
    assert_non_null(strstr(ds.items[0].msg, "unexpected character '$'"));
    assert_non_null(strstr(ds.items[1].msg, "unterminated string"));
    sup_free(t);
    diag_free(&ds);
    /* A NUL inside the text is an error, not the end. */
    diag_init(&ds);
    int f = diag_add_file(&ds, "t.loss", "a\0b", 3);
    int n = lex_tokenize(&ds, f, &t);
    assert_int_equal(n, 4);
    assert_int_equal(t[1].kind, TK_ERROR);
    assert_int_equal(t[2].kind, TK_IDENT);
    sup_free(t);
    diag_free(&ds);
}

static ast_module *parse(const char *text, diag_set *ds)
{
    diag_init(ds);
    int f = diag_add_file(ds, "t.loss", text, strlen(text));
    return parse_module(ds, f);
}

/* The returned expression of the first definition. */
static const ast_expr *ret_expr(const ast_module *m)
{
    const ast_def *d = m->defs[0];
    return d->expr_body ? d->expr_body : d->body.stmts[d->body.n - 1]->value;
}

static void test_precedence(void **state)
{
    (void)state;
    diag_set ds;
    ast_module *m = parse("fn f(x, a, b, c) = -x ^ 2 + a * b < c || !a && b\n", &ds);
    assert_int_equal(ds.nerrors, 0);
    const ast_expr *e = ret_expr(m);
    assert_int_equal(e->kind, E_BINARY);
    assert_int_equal(e->op, TK_OROR);
    const ast_expr *cmp = e->a;
    assert_int_equal(cmp->op, TK_LT);
    assert_int_equal(cmp->a->op, TK_PLUS);
    assert_int_equal(cmp->a->a->kind, E_UNARY); /* -(x^2) */
    assert_int_equal(cmp->a->a->a->op, TK_CARET);
    assert_int_equal(cmp->a->b->op, TK_STAR);
    assert_int_equal(e->b->op, TK_ANDAND);
    assert_int_equal(e->b->a->kind, E_UNARY);
    parse_module_free(m);
    diag_free(&ds);
}

static void test_index_notation(void **state)
{
    (void)state;
    diag_set ds;
    ast_module *m = parse("loss f(z: f32[N, D]) {\n"
                          "  let s[i, j] = sum[d](z[i, d] * z[j, d])\n"
                          "  return mean(s, axis=(i, j))\n}\n", &ds);
    assert_int_equal(ds.nerrors, 0);
    const ast_stmt *let = m->defs[0]->body.stmts[0];
    assert_true(let->indexed);
    assert_int_equal(let->nvars, 2);
    assert_int_equal(let->value->kind, E_REDUCE);
    assert_int_equal(let->value->nvars, 1);
    assert_int_equal(let->value->args[0].value->a->kind, E_INDEX);
    const ast_expr *r = ret_expr(m);
    assert_int_equal(r->kind, E_CALL);
    assert_string_equal(r->args[1].name, "axis");
    assert_int_equal(r->args[1].value->kind, E_TUPLE);
    const ast_type *t = &m->defs[0]->params[0].type;
    assert_int_equal(t->kind, T_DTYPE);
    assert_int_equal(t->ndims, 2);
    assert_string_equal(t->dims[1].name, "D");
    parse_module_free(m);
    diag_free(&ds);
}

static void test_recovery(void **state)
{
    (void)state;
    diag_set ds;
    ast_module *m = parse("loss f(x: f32[N]) {\n"
                          "  let a = x +\n"
                          "  let b = (x\n"
                          "  let c = x ** 2\n"
                          "  return a b\n"
                          "}\n"
                          "fn g(x) = x\n", &ds);
    assert_int_equal(ds.nerrors, 4);
    assert_int_equal(ds.items[0].loc.line, 2); /* x + <end of line> */
    assert_int_equal(ds.items[1].loc.line, 3); /* (x <end of line> */
    assert_int_equal(ds.items[2].loc.line, 4); /* ** */
    assert_int_equal(ds.items[3].loc.line, 5); /* a b */
    assert_int_equal(m->ndefs, 2); /* both definitions survive */
    parse_module_free(m);
    diag_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_token_values),
        cmocka_unit_test(test_lex_errors),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_index_notation),
        cmocka_unit_test(test_recovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
