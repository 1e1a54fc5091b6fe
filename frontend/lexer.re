/* lexer.re - the tokens of the .loss language (re2c; the build regenerates
 * lexer.c from this file).
 *
 * The source is the NUL-terminated copy the diag_set keeps, so re2c runs with
 * a sentinel: a NUL before the end of the text is a stray character, at the
 * end it is the end of input.
 *
 * Newlines end statements, except where a line obviously continues: inside
 * parentheses or brackets, and after an operator or a comma (Python's rule
 * plus the trailing-operator one). That is decided here, so the parser only
 * ever sees the newlines that matter.
 */
#include "frontend/fe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    diag_set *ds;
    int file;
    const unsigned char *start, *end;
    const unsigned char *line_start;
    int line;
} lexer;

static src_loc loc_at(const lexer *L, const unsigned char *p)
{
    return (src_loc){L->file, L->line, (int32_t)(p - L->line_start) + 1};
}

static const struct {
    const char *word;
    tok_kind kind;
} keywords[] = {
    {"loss", TK_LOSS}, {"fn", TK_FN}, {"let", TK_LET}, {"out", TK_OUT},
    {"return", TK_RETURN}, {"if", TK_IF}, {"else", TK_ELSE}, {"for", TK_FOR},
    {"none", TK_NONE},
    {"true", TK_TRUE}, {"false", TK_FALSE}, {"inf", TK_INF}, {"nan", TK_NAN},
};

static tok_kind keyword_or_ident(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < SUP_ARRAY_LEN(keywords); i++)
        if (strlen(keywords[i].word) == n && memcmp(keywords[i].word, s, n) == 0)
            return keywords[i].kind;
    return TK_IDENT;
}

/* Scan one token starting at *pp; returns its kind and advances *pp.
 * Whitespace and comments are skipped before the token. */
static tok_kind scan(lexer *L, const unsigned char **pp, const unsigned char **tok_start)
{
    const unsigned char *YYCURSOR = *pp, *YYMARKER = YYCURSOR;
    for (;;) {
        *tok_start = YYCURSOR;
        /*!re2c
        re2c:define:YYCTYPE = "unsigned char";
        re2c:yyfill:enable = 0;

        digit = [0-9];
        exp = [eE] [+-]? digit+;

        "\x00" {
            if (YYCURSOR - 1 >= L->end) { *pp = YYCURSOR - 1; return TK_EOF; }
            *pp = YYCURSOR;
            diag_error(L->ds, loc_at(L, *tok_start), "stray NUL byte in the source");
            return TK_ERROR;
        }
        [ \t\r\f\v]+ { continue; }
        "#" [^\n\x00]* { continue; }
        "\n" { *pp = YYCURSOR; return TK_NEWLINE; }

        [a-zA-Z_][a-zA-Z0-9_]* {
            *pp = YYCURSOR;
            return keyword_or_ident(*tok_start, (size_t)(YYCURSOR - *tok_start));
        }
        digit+ { *pp = YYCURSOR; return TK_INT; }
        digit+ exp | digit+ "." digit* exp? | "." digit+ exp? {
            *pp = YYCURSOR;
            return TK_FLOAT;
        }
        ["] ([^"\\\n\x00] | "\\" [^\n\x00])* ["] { *pp = YYCURSOR; return TK_STRING; }
        ["] {
            *pp = YYCURSOR;
            diag_error(L->ds, loc_at(L, *tok_start), "unterminated string literal");
            return TK_ERROR;
        }

        "("  { *pp = YYCURSOR; return TK_LPAREN; }
        ")"  { *pp = YYCURSOR; return TK_RPAREN; }
        "["  { *pp = YYCURSOR; return TK_LBRACK; }
        "]"  { *pp = YYCURSOR; return TK_RBRACK; }
        "{"  { *pp = YYCURSOR; return TK_LBRACE; }
        "}"  { *pp = YYCURSOR; return TK_RBRACE; }
        ","  { *pp = YYCURSOR; return TK_COMMA; }
        ":"  { *pp = YYCURSOR; return TK_COLON; }
        ";"  { *pp = YYCURSOR; return TK_SEMI; }
        "="  { *pp = YYCURSOR; return TK_ASSIGN; }
        "+"  { *pp = YYCURSOR; return TK_PLUS; }
        "-"  { *pp = YYCURSOR; return TK_MINUS; }
        "*"  { *pp = YYCURSOR; return TK_STAR; }
        "/"  { *pp = YYCURSOR; return TK_SLASH; }
        "//" { *pp = YYCURSOR; return TK_SLASHSLASH; }
        "%"  { *pp = YYCURSOR; return TK_PERCENT; }
        "^"  { *pp = YYCURSOR; return TK_CARET; }
        "==" { *pp = YYCURSOR; return TK_EQ; }
        "!=" { *pp = YYCURSOR; return TK_NE; }
        "<"  { *pp = YYCURSOR; return TK_LT; }
        "<=" { *pp = YYCURSOR; return TK_LE; }
        ">"  { *pp = YYCURSOR; return TK_GT; }
        ">=" { *pp = YYCURSOR; return TK_GE; }
        "&&" { *pp = YYCURSOR; return TK_ANDAND; }
        "||" { *pp = YYCURSOR; return TK_OROR; }
        "!"  { *pp = YYCURSOR; return TK_BANG; }
        "**" {
            *pp = YYCURSOR;
            diag_error(L->ds, loc_at(L, *tok_start), "'**' is written '^' in this language");
            return TK_CARET;
        }
        * {
            *pp = YYCURSOR;
            unsigned c = **tok_start;
            if (c >= 0x20 && c < 0x7f)
                diag_error(L->ds, loc_at(L, *tok_start), "unexpected character '%c'", (int)c);
            else
                diag_error(L->ds, loc_at(L, *tok_start), "unexpected byte 0x%02x", c);
            return TK_ERROR;
        }
        */
    }
}

/* A newline right after one of these continues the line. */
static bool continues_line(tok_kind k)
{
    switch (k) {
    case TK_COMMA: case TK_ASSIGN: case TK_PLUS: case TK_MINUS: case TK_STAR:
    case TK_SLASH: case TK_SLASHSLASH: case TK_PERCENT: case TK_CARET: case TK_EQ:
    case TK_NE: case TK_LT: case TK_LE: case TK_GT: case TK_GE: case TK_ANDAND:
    case TK_OROR: case TK_BANG: case TK_COLON:
        return true;
    default:
        return false;
    }
}

/* These never occur inside an expression: seeing one (or a '}' inside
 * brackets) means the line before was cut short (an unclosed bracket, a
 * dangling operator). */
static bool starts_statement(tok_kind k)
{
    return k == TK_LET || k == TK_OUT || k == TK_RETURN || k == TK_IF || k == TK_FOR ||
           k == TK_LOSS || k == TK_FN;
}

static void fill_number(token *t)
{
    char buf[64];
    int n = t->len < 63 ? t->len : 63;
    memcpy(buf, t->text, (size_t)n);
    buf[n] = '\0';
    errno = 0;
    t->num = strtod(buf, NULL);
    if (t->kind == TK_INT) {
        unsigned long long v = strtoull(buf, NULL, 10);
        t->ival = errno || v > INT64_MAX ? INT64_MAX : (int64_t)v;
    }
}

int lex_tokenize(diag_set *ds, int file, token **out)
{
    const src_file *f = diag_file(ds, file);
    lexer L = {ds, file, (const unsigned char *)f->text,
               (const unsigned char *)f->text + f->len, (const unsigned char *)f->text, 1};
    token *toks = NULL;
    size_t cap = 0;
    int n = 0, depth = 0;
    const unsigned char *p = L.start;
    token skipped_nl = {TK_EOF, NULL, 0, {file, 0, 0}, 0, 0};
    for (;;) {
        const unsigned char *ts;
        tok_kind k = scan(&L, &p, &ts);
        token t = {k, (const char *)ts, (int)(p - ts), loc_at(&L, ts), 0, 0};
        if (k == TK_NEWLINE) {
            L.line++;
            L.line_start = p;
            bool skip = depth > 0 || n == 0 || toks[n - 1].kind == TK_NEWLINE ||
                        continues_line(toks[n - 1].kind);
            if (skip) {
                if (n > 0 && toks[n - 1].kind != TK_NEWLINE)
                    skipped_nl = t;
                continue;
            }
        }
        bool cut_short = starts_statement(k) || (k == TK_RBRACE && depth > 0);
        if (cut_short && skipped_nl.kind == TK_NEWLINE && n > 0 &&
            toks[n - 1].kind != TK_NEWLINE) {
            SUP_GROW(toks, cap, (size_t)n + 1);
            toks[n++] = skipped_nl; /* end the cut-short line here */
            depth = 0;
        }
        if (k != TK_NEWLINE)
            skipped_nl.kind = TK_EOF;
        if (k == TK_LPAREN || k == TK_LBRACK)
            depth++;
        else if ((k == TK_RPAREN || k == TK_RBRACK) && depth > 0)
            depth--;
        else if (k == TK_LBRACE || k == TK_RBRACE)
            depth = 0; /* a block resynchronizes bracket counting after errors */
        if (k == TK_INT || k == TK_FLOAT)
            fill_number(&t);
        SUP_GROW(toks, cap, (size_t)n + 1);
        toks[n++] = t;
        if (k == TK_EOF)
            break;
    }
    *out = toks;
    return n;
}

const char *lex_kind_name(tok_kind k)
{
    static const char *const names[TK__COUNT] = {
        [TK_EOF] = "end of file", [TK_NEWLINE] = "end of line", [TK_ERROR] = "bad token",
        [TK_IDENT] = "a name", [TK_INT] = "a number", [TK_FLOAT] = "a number",
        [TK_STRING] = "a string", [TK_LOSS] = "'loss'", [TK_FN] = "'fn'",
        [TK_LET] = "'let'", [TK_OUT] = "'out'", [TK_RETURN] = "'return'",
        [TK_IF] = "'if'", [TK_ELSE] = "'else'", [TK_FOR] = "'for'", [TK_NONE] = "'none'",
        [TK_TRUE] = "'true'", [TK_FALSE] = "'false'", [TK_INF] = "'inf'",
        [TK_NAN] = "'nan'", [TK_LPAREN] = "'('", [TK_RPAREN] = "')'",
        [TK_LBRACK] = "'['", [TK_RBRACK] = "']'", [TK_LBRACE] = "'{'",
        [TK_RBRACE] = "'}'", [TK_COMMA] = "','", [TK_COLON] = "':'", [TK_SEMI] = "';'",
        [TK_ASSIGN] = "'='", [TK_PLUS] = "'+'", [TK_MINUS] = "'-'", [TK_STAR] = "'*'",
        [TK_SLASH] = "'/'", [TK_SLASHSLASH] = "'//'", [TK_PERCENT] = "'%'",
        [TK_CARET] = "'^'", [TK_EQ] = "'=='", [TK_NE] = "'!='", [TK_LT] = "'<'",
        [TK_LE] = "'<='", [TK_GT] = "'>'", [TK_GE] = "'>='", [TK_ANDAND] = "'&&'",
        [TK_OROR] = "'||'", [TK_BANG] = "'!'",
    };
    return k < TK__COUNT && names[k] ? names[k] : "?";
}
