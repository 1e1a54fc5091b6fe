/* parse.c - recursive descent from tokens to the AST.
 *
 * One function per grammar rule, the rule in a comment above it. Statements
 * end at a newline, ';' or '}'. On a syntax error the parser reports it once,
 * then skips to the next statement boundary (end of line, '}', or a keyword
 * that starts a statement or a definition) and goes on, so one run reports
 * the errors of several statements. Nesting is bounded so that no input can
 * exhaust the stack.
 *
 *   file   = (def | NEWLINE)*
 *   def    = ("loss" | "fn") IDENT "(" params? ")" ("=" expr | block)
 *   block  = "{" stmt* "}"
 *   stmt   = "let" IDENT ("[" idents "]")? "=" expr
 *          | "out" IDENT "=" expr | "return" expr
 *          | "if" expr block ("else" (block | if-stmt))?
 *          | "for" IDENT "in" expr block | expr
 *   expr   = or;  or = and ("||" and)*;  and = cmp ("&&" cmp)*
 *   cmp    = sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
 *   sum    = term (("+" | "-") term)*
 *   term   = unary (("*" | "/" | "//" | "%") unary)*
 *   unary  = ("-" | "+" | "!") unary | power
 *   power  = postfix ("^" unary)?
 *   postfix = primary ("[" exprs "]")*
 *   primary = NUMBER | STRING | "true" | "false" | "inf" | "nan" | "none"
 *          | IDENT | IDENT "(" args ")" | IDENT "[" idents "]" "(" args ")"
 *          | "(" ")" | "(" expr ("," expr)* ")"
 */
#include "frontend/fe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_NESTING 200

typedef struct parser {
    diag_set *ds;
    ast_module *m;
    token *toks;
    int ntoks, pos;
    int depth;
    bool panic; /* an error was reported in this statement: stay quiet */
} parser;

/* ---- token helpers --------------------------------------------------------------- */

static const token *peek(parser *P) { return &P->toks[P->pos]; }
static const token *peek2(parser *P)
{
    return &P->toks[P->pos + 1 < P->ntoks ? P->pos + 1 : P->pos];
}
static bool at(parser *P, tok_kind k) { return peek(P)->kind == k; }

static const token *next(parser *P)
{
    const token *t = &P->toks[P->pos];
    if (t->kind != TK_EOF)
        P->pos++;
    return t;
}

static bool accept(parser *P, tok_kind k)
{
    if (!at(P, k))
        return false;
    next(P);
    return true;
}

static void error_at(parser *P, src_loc loc, const char *fmt, ...) SUP_PRINTF(3, 4);
static void error_at(parser *P, src_loc loc, const char *fmt, ...)
{
    if (P->panic)
        return;
    P->panic = true;
    P->m->nerrors++;
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(P->ds, DIAG_ERROR, loc, fmt, ap);
    va_end(ap);
}

/* "expected X, found Y" at the current token; a bad token was reported by
 * the lexer already. */
static void expected(parser *P, const char *what)
{
    const token *t = peek(P);
    if (t->kind == TK_ERROR) {
        P->panic = true;
        P->m->nerrors++;
        return;
    }
    if (t->kind == TK_IDENT || t->kind == TK_INT || t->kind == TK_FLOAT)
        error_at(P, t->loc, "expected %s, found '%.*s'", what, t->len > 40 ? 40 : t->len,
                 t->text);
    else
        error_at(P, t->loc, "expected %s, found %s", what, lex_kind_name(t->kind));
}

static bool expect(parser *P, tok_kind k, const char *what)
{
    if (accept(P, k))
        return true;
    expected(P, what);
    return false;
}

static const char *tok_str(parser *P, const token *t)
{
    return arena_strndup(&P->m->arena, t->text, (size_t)t->len);
}

void *fe_arena_push(arena *a, void *items, int n, size_t elem)
{
    /* Capacities are powers of two: grow when n reaches one. */
    if (n > 0 && (n & (n - 1)) != 0)
        return items;
    void *bigger = arena_alloc(a, elem * (size_t)(n ? 2 * n : 4));
    if (n)
        memcpy(bigger, items, elem * (size_t)n);
    return bigger;
}

static ast_expr *new_expr(parser *P, ast_expr_kind k, src_loc loc)
{
    ast_expr *e = ARENA_NEW(&P->m->arena, ast_expr);
    e->kind = k;
    e->loc = loc;
    return e;
}

/* Skip to a point where a new statement can start. */
static void synchronize(parser *P)
{
    int depth = 0;
    for (;;) {
        switch (peek(P)->kind) {
        case TK_EOF: return;
        case TK_NEWLINE: case TK_SEMI:
            if (depth <= 0) {
                next(P);
                return;
            }
            break;
        case TK_LBRACE: depth++; break;
        case TK_RBRACE:
            if (depth <= 0)
                return;
            depth--;
            break;
        case TK_LET: case TK_OUT: case TK_RETURN: case TK_IF: case TK_FOR: case TK_LOSS:
        case TK_FN:
            if (depth <= 0)
                return;
            break;
        default: break;
        }
        next(P);
    }
}

/* ---- expressions ------------------------------------------------------------------- */

static ast_expr *parse_expr(parser *P);

/* args = (arg ("," arg)*)? ","?    arg = IDENT "=" expr | expr */
static void parse_args(parser *P, ast_expr *call)
{
    while (!at(P, TK_RPAREN) && !at(P, TK_EOF)) {
        ast_arg *a = FE_PUSH(&P->m->arena, call->args, call->nargs);
        a->loc = peek(P)->loc;
        if (at(P, TK_IDENT) && peek2(P)->kind == TK_ASSIGN) {
            a->name = tok_str(P, next(P));
            next(P);
        }
        a->value = parse_expr(P);
        if (!a->value || !accept(P, TK_COMMA))
            break;
    }
    expect(P, TK_RPAREN, "')' to close the argument list");
}

/* idents = IDENT ("," IDENT)* */
static bool parse_idents(parser *P, ast_ident **out, int *n, const char *what)
{
    do {
        if (!at(P, TK_IDENT)) {
            expected(P, what);
            return false;
        }
        const token *t = next(P);
        ast_ident *id = FE_PUSH(&P->m->arena, *out, *n);
        *id = (ast_ident){tok_str(P, t), t->loc};
    } while (accept(P, TK_COMMA));
    return true;
}

/* IDENT "[" idents "]" "(" args ")": a reduction over index variables. The
 * caller saw IDENT "[" and knows a "(" follows the matching "]". */
static ast_expr *parse_reduce(parser *P, const token *name)
{
    ast_expr *e = new_expr(P, E_REDUCE, name->loc);
    e->name = tok_str(P, name);
    next(P); /* [ */
    if (!parse_idents(P, &e->vars, &e->nvars, "an index variable"))
        return NULL;
    if (!expect(P, TK_RBRACK, "']'") || !expect(P, TK_LPAREN, "'('"))
        return NULL;
    parse_args(P, e);
    return e;
}

/* Is the "[" at the current position closed by a "]" followed by "("? */
static bool bracket_then_paren(parser *P)
{
    int depth = 0;
    for (int i = P->pos; i < P->ntoks; i++) {
        tok_kind k = P->toks[i].kind;
        if (k == TK_LBRACK)
            depth++;
        else if (k == TK_RBRACK && --depth == 0)
            return i + 1 < P->ntoks && P->toks[i + 1].kind == TK_LPAREN;
        else if (k == TK_NEWLINE || k == TK_EOF || k == TK_LBRACE || k == TK_RBRACE)
            return false;
    }
    return false;
}

static ast_expr *parse_number(parser *P)
{
    const token *t = next(P);
    ast_expr *e = new_expr(P, E_NUM, t->loc);
    e->is_int = t->kind == TK_INT;
    e->num = t->num;
    e->ival = t->ival;
    return e;
}

static ast_expr *parse_string(parser *P)
{
    const token *t = next(P);
    ast_expr *e = new_expr(P, E_STR, t->loc);
    char *s = arena_alloc(&P->m->arena, (size_t)t->len);
    int k = 0;
    for (int i = 1; i < t->len - 1; i++) {
        char c = t->text[i];
        if (c == '\\' && i + 1 < t->len - 1) {
            c = t->text[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        }
        s[k++] = c;
    }
    s[k] = '\0';
    e->name = s;
    return e;
}

/* "(" ")" | "(" expr ("," expr)* ")" */
static ast_expr *parse_paren(parser *P)
{
    const token *open = next(P);
    if (accept(P, TK_RPAREN))
        return new_expr(P, E_TUPLE, open->loc);
    ast_expr *first = parse_expr(P);
    if (!first)
        return NULL;
    if (!at(P, TK_COMMA)) {
        return expect(P, TK_RPAREN, "')'") ? first : NULL;
    }
    ast_expr *t = new_expr(P, E_TUPLE, open->loc);
    *FE_PUSH(&P->m->arena, t->items, t->nitems) = first;
    while (accept(P, TK_COMMA) && !at(P, TK_RPAREN)) {
        ast_expr *item = parse_expr(P);
        if (!item)
            return NULL;
        *FE_PUSH(&P->m->arena, t->items, t->nitems) = item;
    }
    return expect(P, TK_RPAREN, "')'") ? t : NULL;
}

static ast_expr *parse_name(parser *P)
{
    const token *t = peek(P);
    if (peek2(P)->kind == TK_LBRACK) {
        P->pos++;
        bool red = bracket_then_paren(P);
        P->pos--;
        if (red) {
            next(P);
            return parse_reduce(P, t);
        }
    }
    next(P);
    ast_expr *e = new_expr(P, E_NAME, t->loc);
    e->name = tok_str(P, t);
    if (accept(P, TK_LPAREN)) {
        e->kind = E_CALL;
        parse_args(P, e);
    }
    return e;
}

static ast_expr *parse_primary(parser *P)
{
    const token *t = peek(P);
    ast_expr *e;
    switch (t->kind) {
    case TK_INT: case TK_FLOAT: return parse_number(P);
    case TK_STRING: return parse_string(P);
    case TK_TRUE: case TK_FALSE:
        e = new_expr(P, E_BOOL, next(P)->loc);
        e->num = t->kind == TK_TRUE;
        return e;
    case TK_INF: case TK_NAN:
        e = new_expr(P, E_NUM, next(P)->loc);
        e->num = t->kind == TK_INF ? HUGE_VAL : NAN;
        return e;
    case TK_NONE: return new_expr(P, E_NONE, next(P)->loc);
    case TK_IDENT: return parse_name(P);
    case TK_LPAREN: return parse_paren(P);
    default: expected(P, "an expression"); return NULL;
    }
}

/* postfix = primary ("[" expr ("," expr)* "]")* */
static ast_expr *parse_postfix(parser *P)
{
    ast_expr *e = parse_primary(P);
    while (e && at(P, TK_LBRACK)) {
        ast_expr *ix = new_expr(P, E_INDEX, next(P)->loc);
        ix->a = e;
        do {
            ast_expr *item = parse_expr(P);
            if (!item)
                return NULL;
            *FE_PUSH(&P->m->arena, ix->items, ix->nitems) = item;
        } while (accept(P, TK_COMMA));
        if (!expect(P, TK_RBRACK, "']'"))
            return NULL;
        e = ix;
    }
    return e;
}

static ast_expr *binary(parser *P, const token *op, ast_expr *a, ast_expr *b)
{
    if (!a || !b)
        return NULL;
    ast_expr *e = new_expr(P, E_BINARY, op->loc);
    e->op = op->kind;
    e->a = a;
    e->b = b;
    return e;
}

static ast_expr *parse_unary(parser *P);

/* power = postfix ("^" unary)?   (right-assoc; -x^2 is -(x^2), as in Python) */
static ast_expr *parse_power(parser *P)
{
    ast_expr *e = parse_postfix(P);
    if (e && at(P, TK_CARET)) {
        const token *op = next(P);
        return binary(P, op, e, parse_unary(P));
    }
    return e;
}

/* unary = ("-" | "+" | "!") unary | power */
static ast_expr *parse_unary(parser *P)
{
    if (++P->depth > MAX_NESTING) {
        error_at(P, peek(P)->loc, "expression nested too deeply");
        P->depth--;
        return NULL;
    }
    ast_expr *e;
    if (at(P, TK_MINUS) || at(P, TK_BANG) || at(P, TK_PLUS)) {
        const token *op = next(P);
        ast_expr *x = parse_unary(P);
        if (!x || op->kind == TK_PLUS) {
            e = x;
        } else {
            e = new_expr(P, E_UNARY, op->loc);
            e->op = op->kind;
            e->a = x;
        }
    } else {
        e = parse_power(P);
    }
    P->depth--;
    return e;
}

/* term = unary (("*" | "/" | "//" | "%") unary)* */
static ast_expr *parse_term(parser *P)
{
    ast_expr *e = parse_unary(P);
    while (e && (at(P, TK_STAR) || at(P, TK_SLASH) || at(P, TK_SLASHSLASH) ||
                 at(P, TK_PERCENT))) {
        const token *op = next(P);
        e = binary(P, op, e, parse_unary(P));
    }
    return e;
}

/* sum = term (("+" | "-") term)* */
static ast_expr *parse_sum(parser *P)
{
    ast_expr *e = parse_term(P);
    while (e && (at(P, TK_PLUS) || at(P, TK_MINUS))) {
        const token *op = next(P);
        e = binary(P, op, e, parse_term(P));
    }
    return e;
}

static bool is_cmp(tok_kind k)
{
    return k == TK_EQ || k == TK_NE || k == TK_LT || k == TK_LE || k == TK_GT || k == TK_GE;
}

/* cmp = sum (cmpop sum)?   (comparisons do not chain) */
static ast_expr *parse_cmp(parser *P)
{
    ast_expr *e = parse_sum(P);
    if (e && is_cmp(peek(P)->kind)) {
        const token *op = next(P);
        e = binary(P, op, e, parse_sum(P));
        if (e && is_cmp(peek(P)->kind)) {
            error_at(P, peek(P)->loc,
                     "comparisons do not chain: write (a < b) && (b < c)");
            return NULL;
        }
    }
    return e;
}

/* and = cmp ("&&" cmp)* */
static ast_expr *parse_and(parser *P)
{
    ast_expr *e = parse_cmp(P);
    while (e && at(P, TK_ANDAND)) {
        const token *op = next(P);
        e = binary(P, op, e, parse_cmp(P));
    }
    return e;
}

/* or = and ("||" and)* */
static ast_expr *parse_expr(parser *P)
{
    if (++P->depth > MAX_NESTING) {
        error_at(P, peek(P)->loc, "expression nested too deeply");
        P->depth--;
        return NULL;
    }
    ast_expr *e = parse_and(P);
    while (e && at(P, TK_OROR)) {
        const token *op = next(P);
        e = binary(P, op, e, parse_and(P));
    }
    P->depth--;
    return e;
}

/* ---- statements -------------------------------------------------------------------- */

static void parse_block(parser *P, ast_block *b);

static ast_stmt *new_stmt(parser *P, ast_stmt_kind k, src_loc loc)
{
    ast_stmt *s = ARENA_NEW(&P->m->arena, ast_stmt);
    s->kind = k;
    s->loc = loc;
    return s;
}

static bool parse_name_into(parser *P, ast_ident *id, const char *what)
{
    if (!at(P, TK_IDENT)) {
        expected(P, what);
        return false;
    }
    const token *t = next(P);
    *id = (ast_ident){tok_str(P, t), t->loc};
    return true;
}

/* "let" IDENT ("[" idents "]")? "=" expr */
static ast_stmt *parse_let(parser *P)
{
    ast_stmt *s = new_stmt(P, S_LET, next(P)->loc);
    if (!parse_name_into(P, &s->name, "a name after 'let'"))
        return NULL;
    if (accept(P, TK_LBRACK)) {
        s->indexed = true;
        if (!parse_idents(P, &s->vars, &s->nvars, "an index variable") ||
            !expect(P, TK_RBRACK, "']'"))
            return NULL;
    }
    if (!expect(P, TK_ASSIGN, "'=' after the name"))
        return NULL;
    s->value = parse_expr(P);
    return s->value ? s : NULL;
}

/* "out" IDENT "=" expr */
static ast_stmt *parse_out(parser *P)
{
    ast_stmt *s = new_stmt(P, S_OUT, next(P)->loc);
    if (!parse_name_into(P, &s->name, "the output's name") ||
        !expect(P, TK_ASSIGN, "'=' after the output's name"))
        return NULL;
    s->value = parse_expr(P);
    return s->value ? s : NULL;
}

/* "if" expr block ("else" (block | if-stmt))? */
static ast_stmt *parse_if(parser *P)
{
    if (++P->depth > MAX_NESTING) {
        error_at(P, peek(P)->loc, "statements nested too deeply");
        P->depth--;
        return NULL;
    }
    ast_stmt *s = new_stmt(P, S_IF, next(P)->loc);
    s->value = parse_expr(P);
    if (s->value && at(P, TK_LBRACE)) {
        parse_block(P, &s->then_b);
        /* `}` NEWLINE `else` still continues the if. */
        if (at(P, TK_NEWLINE) && peek2(P)->kind == TK_ELSE)
            next(P);
        if (accept(P, TK_ELSE)) {
            if (at(P, TK_IF)) {
                ast_stmt *inner = parse_if(P);
                if (inner)
                    *FE_PUSH(&P->m->arena, s->else_b.stmts, s->else_b.n) = inner;
            } else if (at(P, TK_LBRACE)) {
                parse_block(P, &s->else_b);
            } else {
                expected(P, "'{' or 'if' after 'else'");
            }
        }
    } else if (s->value) {
        expected(P, "'{' after the condition");
    }
    P->depth--;
    return s->value ? s : NULL;
}

/* "for" IDENT "in" expr block   (`in` is a plain name, not a keyword) */
static ast_stmt *parse_for(parser *P)
{
    if (++P->depth > MAX_NESTING) {
        error_at(P, peek(P)->loc, "statements nested too deeply");
        P->depth--;
        return NULL;
    }
    ast_stmt *s = new_stmt(P, S_FOR, next(P)->loc);
    bool ok = parse_name_into(P, &s->name, "the loop variable after 'for'");
    if (ok && !(at(P, TK_IDENT) && peek(P)->len == 2 && memcmp(peek(P)->text, "in", 2) == 0)) {
        expected(P, "'in' after the loop variable");
        ok = false;
    }
    if (ok) {
        next(P);
        s->value = parse_expr(P);
        ok = s->value != NULL;
    }
    if (ok && at(P, TK_LBRACE))
        parse_block(P, &s->then_b);
    else if (ok)
        expected(P, "'{' after the range");
    P->depth--;
    return ok ? s : NULL;
}

static ast_stmt *parse_stmt(parser *P)
{
    switch (peek(P)->kind) {
    case TK_LET: return parse_let(P);
    case TK_OUT: return parse_out(P);
    case TK_IF: return parse_if(P);
    case TK_FOR: return parse_for(P);
    case TK_RETURN: {
        ast_stmt *s = new_stmt(P, S_RETURN, next(P)->loc);
        s->value = parse_expr(P);
        return s->value ? s : NULL;
    }
    default: {
        src_loc loc = peek(P)->loc;
        ast_expr *e = parse_expr(P);
        if (!e)
            return NULL;
        if (at(P, TK_ASSIGN)) {
            error_at(P, peek(P)->loc, "assignment needs 'let' (values are bound once)");
            return NULL;
        }
        ast_stmt *s = new_stmt(P, S_EXPR, loc);
        s->value = e;
        return s;
    }
    }
}

/* After a statement: a newline, ';', or the block's '}'. */
static void end_stmt(parser *P)
{
    if (accept(P, TK_NEWLINE) || accept(P, TK_SEMI) || at(P, TK_RBRACE) || at(P, TK_EOF))
        return;
    expected(P, "end of line after the statement");
}

/* block = "{" stmt* "}" */
static void parse_block(parser *P, ast_block *b)
{
    const token *open = peek(P);
    if (!expect(P, TK_LBRACE, "'{'"))
        return;
    for (;;) {
        while (accept(P, TK_NEWLINE) || accept(P, TK_SEMI))
            ;
        if (at(P, TK_RBRACE) || at(P, TK_EOF) || at(P, TK_LOSS) || at(P, TK_FN))
            break;
        P->panic = false;
        ast_stmt *s = parse_stmt(P);
        if (s)
            *FE_PUSH(&P->m->arena, b->stmts, b->n) = s;
        if (s && !P->panic)
            end_stmt(P);
        if (P->panic)
            synchronize(P);
    }
    if (!at(P, TK_RBRACE)) {
        P->panic = false;
        error_at(P, open->loc, "this '{' is never closed");
        return;
    }
    next(P);
}

/* ---- definitions ------------------------------------------------------------------- */

/* dim = IDENT | INT */
static bool parse_dim(parser *P, ast_type *ty)
{
    const token *t = peek(P);
    ast_dim *d = FE_PUSH(&P->m->arena, ty->dims, ty->ndims);
    d->loc = t->loc;
    d->size = -1;
    if (t->kind == TK_IDENT) {
        d->name = tok_str(P, next(P));
        return true;
    }
    if (t->kind == TK_INT) {
        next(P);
        if (t->ival <= 0 || t->ival > ((int64_t)1 << 40)) {
            error_at(P, t->loc, "a dim size must be a positive integer");
            return false;
        }
        d->size = t->ival;
        d->name = arena_printf(&P->m->arena, "%lld", (long long)t->ival);
        return true;
    }
    expected(P, "a dim name or size");
    return false;
}

/* type = IDENT ("[" (dim ("," dim)*)? "]")? */
static bool parse_type(parser *P, ast_type *ty)
{
    if (!at(P, TK_IDENT)) {
        expected(P, "a type (f32, f64, i32, i64, bool, float, int or str)");
        return false;
    }
    const token *t = next(P);
    char name[16] = "";
    if (t->len < (int)sizeof name)
        memcpy(name, t->text, (size_t)t->len);
    ty->loc = t->loc;
    int dt = ir_dtype_by_name(name);
    if (dt >= 0) {
        ty->kind = T_DTYPE;
        ty->dtype = dt;
    } else if (strcmp(name, "float") == 0) {
        ty->kind = T_FLOAT;
    } else if (strcmp(name, "int") == 0) {
        ty->kind = T_INT;
    } else if (strcmp(name, "str") == 0) {
        ty->kind = T_STR;
        return true;
    } else {
        error_at(P, t->loc, "unknown type '%.*s' (types are f32, f64, i32, i64, bool, "
                            "float, int, str)", t->len > 40 ? 40 : t->len, t->text);
        return false;
    }
    if (!accept(P, TK_LBRACK))
        return true;
    ty->tensor = true;
    if (accept(P, TK_RBRACK))
        return true;
    do {
        if (!parse_dim(P, ty))
            return false;
    } while (accept(P, TK_COMMA));
    return expect(P, TK_RBRACK, "']' to close the dims");
}

/* param = IDENT (":" type)? ("=" expr)? */
static bool parse_param(parser *P, ast_def *d)
{
    ast_param *p = FE_PUSH(&P->m->arena, d->params, d->nparams);
    if (!parse_name_into(P, &p->name, "a parameter name"))
        return false;
    p->type.loc = p->name.loc;
    if (accept(P, TK_COLON) && !parse_type(P, &p->type))
        return false;
    if (accept(P, TK_ASSIGN)) {
        p->def = parse_expr(P);
        if (!p->def)
            return false;
    }
    return true;
}

/* params = param ("," param)* ","? */
static bool parse_params(parser *P, ast_def *d)
{
    if (!expect(P, TK_LPAREN, "'(' after the name"))
        return false;
    while (!at(P, TK_RPAREN)) {
        if (!parse_param(P, d))
            return false;
        if (!accept(P, TK_COMMA))
            break;
    }
    return expect(P, TK_RPAREN, "')' to close the parameters");
}

/* def = ("loss" | "fn") IDENT "(" params ")" ("=" expr | block) */
static ast_def *parse_def(parser *P)
{
    ast_def *d = ARENA_NEW(&P->m->arena, ast_def);
    d->is_loss = next(P)->kind == TK_LOSS;
    if (!parse_name_into(P, &d->name, d->is_loss ? "the loss's name" : "the function's name") ||
        !parse_params(P, d))
        return NULL;
    if (accept(P, TK_ASSIGN)) {
        d->expr_body = parse_expr(P);
        d->end_loc = peek(P)->loc;
        if (!d->expr_body)
            return NULL;
        end_stmt(P);
        return P->panic ? NULL : d;
    }
    if (!at(P, TK_LBRACE)) {
        expected(P, "'{' or '=' to start the body");
        return NULL;
    }
    parse_block(P, &d->body);
    d->end_loc = P->toks[P->pos > 0 ? P->pos - 1 : 0].loc;
    return d;
}

/* Skip to the next top-level definition after an error. */
static void skip_to_def(parser *P)
{
    while (!at(P, TK_EOF)) {
        if ((at(P, TK_LOSS) || at(P, TK_FN)) && (P->pos == 0 ||
            P->toks[P->pos - 1].kind == TK_NEWLINE || P->toks[P->pos - 1].kind == TK_RBRACE))
            return;
        next(P);
    }
}

/* Lexing runs before parsing: order a file's syntax errors by position. */
static void sort_diags(diag_set *ds, size_t from)
{
    for (size_t i = from + 1; i < ds->count; i++)
        for (size_t j = i; j > from; j--) {
            diag *a = &ds->items[j - 1], *b = &ds->items[j];
            if (a->loc.line < b->loc.line ||
                (a->loc.line == b->loc.line && a->loc.col <= b->loc.col))
                break;
            diag t = *a;
            *a = *b;
            *b = t;
        }
}

/* Skip a stray top-level line (with any braced block it opens). */
static void skip_line(parser *P)
{
    int depth = 0;
    while (!at(P, TK_EOF)) {
        const token *t = next(P);
        if (t->kind == TK_LBRACE)
            depth++;
        else if (t->kind == TK_RBRACE && depth > 0)
            depth--;
        else if (t->kind == TK_NEWLINE && depth == 0)
            return;
    }
}

ast_module *parse_module(diag_set *ds, int file)
{
    size_t first_diag = ds->count;
    ast_module *m = sup_calloc(1, sizeof *m);
    arena_init(&m->arena);
    m->file = file;
    parser P = {.ds = ds, .m = m};
    int errors_before = ds->nerrors;
    P.ntoks = lex_tokenize(ds, file, &P.toks);
    m->nerrors += ds->nerrors - errors_before; /* lexical errors */
    while (!at(&P, TK_EOF)) {
        if (accept(&P, TK_NEWLINE) || accept(&P, TK_SEMI))
            continue;
        P.panic = false;
        if (at(&P, TK_LOSS) || at(&P, TK_FN)) {
            ast_def *d = parse_def(&P);
            if (d)
                *FE_PUSH(&m->arena, m->defs, m->ndefs) = d;
            if (!P.panic)
                continue;
        } else {
            if (at(&P, TK_RETURN) || at(&P, TK_LET) || at(&P, TK_OUT) || at(&P, TK_IF) ||
                at(&P, TK_FOR))
                error_at(&P, peek(&P)->loc, "%s outside of a loss or fn body",
                         lex_kind_name(peek(&P)->kind));
            else
                expected(&P, "'loss' or 'fn' to start a definition");
            skip_line(&P);
            continue;
        }
        if (!at(&P, TK_LOSS) && !at(&P, TK_FN))
            next(&P);
        skip_to_def(&P);
    }
    sup_free(P.toks);
    sort_diags(ds, first_diag);
    return m;
}

void parse_module_free(ast_module *m)
{
    if (!m)
        return;
    arena_free(&m->arena);
    sup_free(m);
}
