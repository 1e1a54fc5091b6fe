/* fe.h - the frontend's internal header: tokens, the AST, and the pieces of
 * the elaborator, grouped by the file that defines them.
 *
 *   lexer.re    text -> token array (newlines are tokens, except inside
 *               brackets or after an operator, where a line continues)
 *   parse.c     tokens -> AST (ast_module), recovering at line ends
 *   elab.c      definitions, parameters, statements, the environment
 *   elab_expr.c expressions: literals, weak values, operators, indexing
 *   elab_index.c index notation: ranges of index variables, `let v[i] = ...`,
 *               `sum[d](...)`
 *   elab_call.c arguments, inlining of `fn` and `loss` calls, dim binding
 *   builtins.c  the builtin functions, one table
 *   frontend.c  the public API (frontend.h), the embedded library, settings
 *
 * The AST knows nothing of the IR; the elaborator walks it with an
 * environment of values (IR node, compile-time string, none, function).
 */
#ifndef LOSSC_FE_H
#define LOSSC_FE_H

#include "frontend/frontend.h"
#include "ir/ir.h"
#include "support/support.h"

/* ---- tokens (lexer.re) ------------------------------------------------------ */

typedef enum tok_kind {
    TK_EOF, TK_NEWLINE, TK_ERROR,
    TK_IDENT, TK_INT, TK_FLOAT, TK_STRING,
    /* keywords */
    TK_LOSS, TK_FN, TK_LET, TK_OUT, TK_RETURN, TK_IF, TK_ELSE, TK_FOR,
    TK_NONE, TK_TRUE, TK_FALSE, TK_INF, TK_NAN,
    /* punctuation */
    TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_LBRACE, TK_RBRACE,
    TK_COMMA, TK_COLON, TK_SEMI, TK_ASSIGN,
    TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_SLASHSLASH, TK_PERCENT, TK_CARET,
    TK_EQ, TK_NE, TK_LT, TK_LE, TK_GT, TK_GE, TK_ANDAND, TK_OROR, TK_BANG,
    TK__COUNT
} tok_kind;

typedef struct token {
    tok_kind kind;
    const char *text; /* into the diag_set's copy of the source */
    int len;
    src_loc loc;
    double num;    /* TK_INT, TK_FLOAT */
    int64_t ival;  /* TK_INT */
} token;

/* Split file `file` of ds into tokens (ending with TK_EOF). Lexical errors
 * are reported to ds and become TK_ERROR tokens. Returns the count. */
int lex_tokenize(diag_set *ds, int file, token **out);
const char *lex_kind_name(tok_kind k); /* "'+'", "identifier", ... */

/* ---- AST (parse.c) -------------------------------------------------------------- */

typedef struct ast_expr ast_expr;
typedef struct ast_stmt ast_stmt;

typedef struct ast_ident {
    const char *name;
    src_loc loc;
} ast_ident;

typedef struct ast_arg {
    const char *name; /* keyword, or NULL for a positional argument */
    src_loc loc;      /* of the keyword or of the value */
    ast_expr *value;
} ast_arg;

typedef enum ast_expr_kind {
    E_NUM,    /* num, is_int */
    E_STR,    /* name: the decoded string */
    E_BOOL,   /* num: 0 or 1 */
    E_NONE,
    E_NAME,   /* name */
    E_UNARY,  /* op a */
    E_BINARY, /* a op b; loc is the operator's */
    E_CALL,   /* name(args) */
    E_INDEX,  /* a[items] */
    E_REDUCE, /* name[vars](args): a reduction over index variables */
    E_TUPLE,  /* (items) with at least two items, or () */
} ast_expr_kind;

struct ast_expr {
    ast_expr_kind kind;
    src_loc loc;
    tok_kind op;
    bool is_int;
    double num;
    int64_t ival;
    const char *name;
    ast_expr *a, *b;
    ast_expr **items;
    int nitems;
    ast_arg *args;
    int nargs;
    ast_ident *vars;
    int nvars;
};

typedef struct ast_block {
    ast_stmt **stmts;
    int n;
} ast_block;

typedef enum ast_stmt_kind {
    S_LET,    /* let name[vars] = value */
    S_OUT,    /* out name = value */
    S_RETURN, /* return value */
    S_IF,     /* if value { then } else { els } */
    S_FOR,    /* for name in value { then }: value is range(...), unrolled */
    S_EXPR,   /* value (a call evaluated for its diagnostics: error("...")) */
} ast_stmt_kind;

struct ast_stmt {
    ast_stmt_kind kind;
    src_loc loc;
    ast_ident name;
    ast_ident *vars;
    int nvars;
    bool indexed; /* let v[...] */
    ast_expr *value;
    ast_block then_b, else_b;
};

typedef enum ast_type_kind {
    T_ANY,   /* untyped (generic fn parameter) */
    T_DTYPE, /* f32 f64 i32 i64 bool */
    T_FLOAT, /* any float dtype (f32 when compiled as an entry) */
    T_INT,   /* any integer dtype (i64 when compiled as an entry) */
    T_STR,   /* compile-time string */
} ast_type_kind;

typedef struct ast_dim {
    const char *name; /* the dim's name; a literal size is named by its digits */
    int64_t size;     /* literal size, or -1 */
    src_loc loc;
} ast_dim;

typedef struct ast_type {
    ast_type_kind kind;
    int dtype;    /* T_DTYPE */
    bool tensor;  /* written with brackets (possibly empty: rank 0) */
    ast_dim *dims;
    int ndims;
    src_loc loc;
} ast_type;

typedef struct ast_param {
    ast_ident name;
    ast_type type;
    ast_expr *def; /* default, or NULL */
} ast_param;

typedef struct ast_def {
    bool is_loss;
    ast_ident name;
    ast_param *params;
    int nparams;
    ast_block body;
    ast_expr *expr_body; /* fn f(x) = expr */
    src_loc end_loc;     /* the closing brace */
} ast_def;

typedef struct ast_module {
    arena arena;
    int file;
    ast_def **defs;
    int ndefs;
    int nerrors; /* syntax errors */
} ast_module;

/* Parse file `file` of ds. Always returns a module (possibly partial); its
 * nerrors counts the syntax errors reported to ds. */
ast_module *parse_module(diag_set *ds, int file);
void parse_module_free(ast_module *m);

/* Grow an arena array to hold n + 1 elements (amortized doubling). */
void *fe_arena_push(arena *a, void *items, int n, size_t elem);
#define FE_PUSH(a, items, n) \
    ((items) = fe_arena_push((a), (items), (n), sizeof *(items)), &(items)[(n)++])

/* ---- values and the environment (elab.c) ----------------------------------------- */

typedef enum value_kind {
    V_ERR,  /* an error was reported: propagate quietly */
    V_NODE, /* a tensor or scalar: an IR node */
    V_STR,  /* a compile-time string */
    V_NONE, /* `none` */
    V_FN,   /* a function passed by name */
} value_kind;

/* A value. `weak` marks a number not yet tied to a dtype (a literal, a dim
 * size, or arithmetic on those): its node is f64 or i64 and takes the dtype
 * of the strong operand it meets. */
typedef struct value {
    value_kind kind;
    bool weak;
    ir_node *node;
    const char *str;
    const ast_def *fn;
    const struct ast_module *fn_mod; /* V_FN: where fn is defined */
} value;

typedef struct binding {
    const char *name;
    value v;
    src_loc loc;
    int index_dim; /* >= 0: an index variable ranging over this dim */
} binding;

typedef struct dim_binding {
    const char *name;
    int dim;
    src_loc loc;   /* where the name got its meaning (a parameter's type) */
    const char *from; /* the argument that bound it, for messages */
} dim_binding;

/* One function instance being elaborated (the entry, or an inlined call). */
typedef struct frame {
    const ast_def *def;
    const ast_module *mod; /* the module the definition lives in */
    struct frame *caller;
    src_loc call_loc;
    binding *vars;
    int nvars;
    size_t vars_cap;
    /* Dim names visible here. A loss has its own (its parameters' dims); a
     * generic fn sees its caller's. */
    dim_binding *dims;
    int ndims;
    size_t dims_cap;
    bool own_dims;
    bool returned;
    value ret;
    src_loc ret_loc; /* the returned expression */
    bool is_entry;
    bool checking_arg; /* checking an argument written at the call */
} frame;

typedef struct fe_program {
    ast_module *user;
    ast_module **lib;
    int nlib;
} fe_program;

typedef struct out_item {
    const char *name;
    ir_node *node;
    src_loc loc;
} out_item;

typedef struct elab {
    diag_set *ds;
    ir_graph *g;
    const fe_program *prog;
    const fe_options *opts;
    frame *top;
    int depth;     /* inlining depth */
    int expr_depth;
    bool failed;   /* the graph could not be built (an error was reported) */
    int in_index;  /* > 0 inside the body of index notation */
    out_item *outs; /* the entry's `out` values, in order */
    int nouts;
    size_t outs_cap;
} elab;

/* elab.c */
void elab_error(elab *E, src_loc loc, const char *fmt, ...) SUP_PRINTF(3, 4);
void elab_note(elab *E, src_loc loc, const char *fmt, ...) SUP_PRINTF(3, 4);
void elab_error_at_user(elab *E, src_loc loc, const char *fmt, ...) SUP_PRINTF(3, 4);
value v_err(void);
value v_node(ir_node *n);
value v_weak(ir_node *n);
value v_str(const char *s);
value v_none(void);
const binding *elab_lookup(elab *E, const char *name);
void elab_bind(elab *E, const char *name, value v, src_loc loc, int index_dim);
int elab_dim_lookup(elab *E, const char *name); /* graph dim or -1 */
const dim_binding *elab_dim_binding(elab *E, const char *name);
void elab_dim_bind(elab *E, const char *name, int dim, src_loc loc, const char *from);
/* Elaborate a block; stops after a return (frame->returned). */
void elab_block(elab *E, const ast_block *b);
/* Add dim `name` to the graph (or find it). size -1: symbolic. */
int elab_dim_get(elab *E, const char *name, int64_t size, int root, src_loc loc);
/* The k-th axis (k >= 2) of a type that repeats dim `base`: an alias dim
 * named "N_k" with base's size. */
int elab_alias_dim(elab *E, int base, int k, src_loc loc);
/* The builder failed: report its message at loc. */
value elab_ir_fail(elab *E, src_loc loc);
/* Names that are "close" to `name` among those visible: "did you mean". */
const char *elab_suggest(elab *E, const char *name, bool want_fn);
/* "[N, C]" for messages. */
const char *elab_dims_str(elab *E, ir_dimset s);
/* Where dim d got its size, for messages ("N from parameter x at 2:14"). */
const char *elab_dim_origin(elab *E, int d);
const ast_def *elab_find_def(elab *E, const char *name, const ast_module **mod);

/* elab_entry.c: compile `def` as the entry; NULL after errors. In check
 * mode a str parameter without a default is an unknown string (equal to
 * nothing, unequal to nothing) instead of an error. */
ir_graph *elab_entry(diag_set *ds, const fe_program *prog, const ast_def *def,
                     const ast_module *m, const fe_options *opts, bool check_only);

/* frontend.c: the embedded library (lib/NAME.loss, generated lib_sources.c) */
extern const char *const fe_lib_names[];
extern const char *const fe_lib_texts[];
extern const size_t fe_lib_lens[];
extern const int fe_lib_count;

/* elab_expr.c */
value elab_expr(elab *E, const ast_expr *e);
/* The value as a strong node (weak numbers get their natural dtype: f32 for
 * floats, i64 for integers); NULL after reporting if it is not a number. */
ir_node *elab_strong(elab *E, value v, src_loc loc, const char *what);
ir_node *elab_expr_node(elab *E, const ast_expr *e, const char *what);
/* Give a weak value the dtype dt. */
ir_node *elab_weak_to(elab *E, value v, ir_dtype dt, src_loc loc);
value elab_binary(elab *E, tok_kind op, value a, value b, src_loc loc);
value elab_binop(elab *E, ir_op op, value a, value b, src_loc loc); /* + min, max */
value elab_unary_op(elab *E, ir_op op, value x, src_loc loc); /* float math on one value */
value elab_where(elab *E, value c, value a, value b, src_loc loc);
value elab_index(elab *E, const ast_expr *e);
bool elab_is_const(value v, double *out);
const char *elab_value_kind_name(value v);

/* elab_index.c */
void elab_let_indexed(elab *E, const ast_stmt *s);
value elab_reduce_indexed(elab *E, const ast_expr *e);

/* elab_call.c */
typedef struct call_params {
    int n;
    const char *const *names;
    const bool *has_default; /* may be NULL: every parameter required */
    const char *callee;      /* for messages */
} call_params;
/* Match args to parameters by position and keyword: slots[i] gets the
 * argument expression for parameter i, or NULL. False after reporting. */
bool elab_bind_args(elab *E, const call_params *p, const ast_arg *args, int nargs,
                    src_loc loc, const ast_expr **slots);
value elab_call(elab *E, const ast_expr *e);

/* builtins.c */
typedef struct builtin builtin;
const builtin *builtin_find(const char *name);
value builtin_call(elab *E, const builtin *b, const ast_expr *call);
/* Every builtin name, for suggestions; NULL-terminated. */
const char *builtin_name(int i);
/* Reduce x over `axes` with reducer `name` (sum mean max min prod logsumexp). */
value builtin_reduce(elab *E, const char *name, value x, ir_dimset axes, src_loc loc);
bool builtin_is_reducer(const char *name);

/* Levenshtein distance, capped. */
int fe_edit_distance(const char *a, const char *b);

#endif
