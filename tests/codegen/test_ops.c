/* test_ops.c - every operator's semantics in kernels, against the
 * interpreter (the definition): special values (0, -0, inf, NaN, 1e30),
 * Python // and % on ints with zero and negative divisors, NaN-propagating
 * min/max, casts, bools; reductions in every placement (inline along a row,
 * down a column with per-chunk partials, global, nested, materialized and
 * read back through a gather); inputs in a layout other than canonical.
 *
 * Tolerances: f32 elementwise results within 4e-6 relative (a few ulp: the
 * kernel computes in f32, the interpreter in f64) plus 1e-37 absolute (f32
 * denormals); reductions within 2e-5 of the output's largest magnitude; f64
 * within 1e-12 relative; ints and bools exact.
 */
#include "cg_losses.h"


static void out(ir_graph *g, const char *name, ir_node *n)
{
    if (!n)
        fail_msg("builder: %s", ir_graph_error(g));
    ir_output_add(g, name, IR_OUT_EXTRA, -1, n);
}

static const ir_op unary_float[] = {OP_NEG, OP_ABS, OP_SIGN, OP_RELU, OP_FLOOR, OP_CEIL,
                                    OP_EXP, OP_EXPM1, OP_LOG, OP_LOG1P, OP_SQRT, OP_RSQRT,
                                    OP_TANH, OP_SIGMOID, OP_SOFTPLUS, OP_ISFINITE};
static const ir_op binary_arith[] = {OP_ADD, OP_SUB, OP_MUL, OP_FLOORDIV, OP_MOD, OP_MIN,
                                     OP_MAX, OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE};

static ir_graph *zoo_float(ir_dtype T)
{
    ir_graph *g = ir_graph_new("zoo_float");
    int N = ir_dim_add(g, "N", -1, -1, L_);
    ir_node *a = IN(g, "a", IR_IN_TENSOR, T, 1, &N), *b = IN(g, "b", IR_IN_TENSOR, T, 1, &N);
    for (size_t i = 0; i < SUP_ARRAY_LEN(unary_float); i++)
        out(g, ir_op_name(unary_float[i]), U(g, unary_float[i], a));
    for (size_t i = 0; i < SUP_ARRAY_LEN(binary_arith); i++)
        out(g, ir_op_name(binary_arith[i]), B(g, binary_arith[i], a, b));
    out(g, "div", B(g, OP_DIV, a, b));
    out(g, "pow", B(g, OP_POW, a, b));
    /* constant exponents take shortcuts, a uniform one branches on 2 */
    const double cexp[] = {0, 1, 2, 3, 4, -1, -2, 0.5, 1.5, -0.5};
    for (size_t i = 0; i < SUP_ARRAY_LEN(cexp); i++)
        out(g, "pow_const", B(g, OP_POW, a, K(g, T, cexp[i])));
    ir_node *e = IN(g, "e", IR_IN_SCALAR, T, 0, NULL);
    out(g, "pow_uniform", B(g, OP_POW, a, e));
    out(g, "pow_uniform_base", B(g, OP_POW, e, a));
    out(g, "where", ir_where(g, B(g, OP_LT, a, b), a, b, L_));
    /* casts: huge finite values are zeroed (the interpreter does not model
     * integer overflow), inf and NaN go through (they become 0) */
    ir_node *huge = B(g, OP_AND, B(g, OP_GT, U(g, OP_ABS, a), K(g, T, 1e6)), U(g, OP_ISFINITE, a));
    ir_node *tame = ir_where(g, huge, K(g, T, 0), a, L_);
    out(g, "to_i32", ir_cast(g, DT_I32, tame, L_));
    out(g, "to_i64", ir_cast(g, DT_I64, tame, L_));
    out(g, "to_bool", ir_cast(g, DT_BOOL, a, L_));
    out(g, "to_other", ir_cast(g, T == DT_F32 ? DT_F64 : DT_F32, a, L_));
    return g;
}

static ir_graph *zoo_int(ir_dtype T)
{
    ir_graph *g = ir_graph_new("zoo_int");
    int N = ir_dim_add(g, "N", -1, -1, L_);
    ir_node *a = IN(g, "a", IR_IN_TENSOR, T, 1, &N), *b = IN(g, "b", IR_IN_TENSOR, T, 1, &N);
    const ir_op un[] = {OP_NEG, OP_ABS, OP_SIGN, OP_RELU};
    for (size_t i = 0; i < SUP_ARRAY_LEN(un); i++)
        out(g, ir_op_name(un[i]), U(g, un[i], a));
    for (size_t i = 0; i < SUP_ARRAY_LEN(binary_arith); i++)
        out(g, ir_op_name(binary_arith[i]), B(g, binary_arith[i], a, b));
    /* exponents in [-2, 4]: no overflow, negative ones by the interpreter's rule */
    ir_node *e = B(g, OP_SUB, B(g, OP_MOD, b, K(g, T, 7)), K(g, T, 2));
    out(g, "pow", B(g, OP_POW, a, e));
    out(g, "div", B(g, OP_DIV, a, b)); /* true division: f32 */
    out(g, "to_f32", ir_cast(g, DT_F32, a, L_));
    out(g, "to_f64", ir_cast(g, DT_F64, a, L_));
    out(g, "to_bool", ir_cast(g, DT_BOOL, a, L_));
    out(g, "to_other", ir_cast(g, T == DT_I32 ? DT_I64 : DT_I32, a, L_));
    out(g, "where", ir_where(g, B(g, OP_GE, a, b), a, b, L_));
    return g;
}

static ir_graph *zoo_bool(void)
{
    ir_graph *g = ir_graph_new("zoo_bool");
    int N = ir_dim_add(g, "N", -1, -1, L_);
    ir_node *a = IN(g, "a", IR_IN_TENSOR, DT_BOOL, 1, &N), *b = IN(g, "b", IR_IN_TENSOR, DT_BOOL, 1, &N);
    out(g, "not", U(g, OP_NOT, a));
    out(g, "and", B(g, OP_AND, a, b));
    out(g, "or", B(g, OP_OR, a, b));
    out(g, "eq", B(g, OP_EQ, a, b));
    out(g, "ne", B(g, OP_NE, a, b));
    out(g, "where", ir_where(g, a, b, U(g, OP_NOT, b), L_));
    out(g, "to_f32", ir_cast(g, DT_F32, a, L_));
    out(g, "to_i32", ir_cast(g, DT_I32, b, L_));
    return g;
}

static void run_zoo(ir_graph *g, int gen, double lo, double hi, double rtol)
{
    static const int64_t sizes[] = {1, 7, 1000, 10007};
    static const double exponents[] = {2, 2.5, -3, 0};
    for (size_t si = 0; si < SUP_ARRAY_LEN(sizes); si++) {
        cg_case c = {.g = g, .seed = 11 + si, .rtol = rtol, .abs_tol = 1e-37};
        c.size[0] = sizes[si];
        c.gen[0] = c.gen[1] = gen;
        c.lo[0] = c.lo[1] = lo;
        c.hi[0] = c.hi[1] = hi;
        c.gen[2] = GEN_FIXED, c.lo[2] = exponents[si % 4]; /* the scalar, if any */
        run_and_check(g_jit, &c);
        free_case_buffers(&c);
    }
    ir_graph_free(g);
}

static void test_float_ops(void **state)
{
    (void)state;
    /* f32 without 1e30 and 1e-30: their quotients under- and overflow in f32
     * (the interpreter computes in f64), which is not the kernel's doing */
    run_zoo(zoo_float(DT_F32), GEN_SPECIAL_SMALL, 0, 0, 4e-6);
    run_zoo(zoo_float(DT_F64), GEN_SPECIAL, 0, 0, 1e-12);
    run_zoo(zoo_float(DT_F32), GEN_UNIFORM, -30, 30, 4e-6);
    run_zoo(zoo_float(DT_F64), GEN_UNIFORM, -30, 30, 1e-12);
}

static void test_int_and_bool_ops(void **state)
{
    (void)state;
    /* ints and bools must be exact; `div` is f32 (true division) */
    run_zoo(zoo_int(DT_I32), GEN_UNIFORM, -10, 10, 4e-6);
    run_zoo(zoo_int(DT_I64), GEN_UNIFORM, -10, 10, 4e-6);
    run_zoo(zoo_bool(), GEN_BOOL, 0, 0, 0);
}

/* Reductions along rows, down columns, over everything; nested; gathered. */
static ir_graph *reductions(ir_dtype T)
{
    ir_graph *g = ir_graph_new("reductions");
    int N = ir_dim_add(g, "N", -1, -1, L_), C = ir_dim_add(g, "C", -1, -1, L_);
    int D = ir_dim_add(g, "D", -1, -1, L_);
    int nc[2] = {N, C}, cd[2] = {C, D};
    ir_node *x = IN(g, "x", IR_IN_TENSOR, T, 2, nc);
    ir_node *w = IN(g, "w", IR_IN_TENSOR, T, 2, cd);
    ir_node *y = IN(g, "y", IR_IN_TENSOR, DT_I64, 1, &N);
    ir_dimset n = ir_dimbit(N), c = ir_dimbit(C);
    const ir_op ops[] = {OP_SUM, OP_PROD, OP_RMAX, OP_RMIN, OP_LSE};
    for (size_t i = 0; i < SUP_ARRAY_LEN(ops); i++) {
        char name[32];
        snprintf(name, sizeof name, "%s_rows", ir_op_name(ops[i]));
        out(g, name, R(g, ops[i], x, c));
        if (ops[i] != OP_PROD) {
            snprintf(name, sizeof name, "%s_cols", ir_op_name(ops[i]));
            out(g, name, R(g, ops[i], x, n));
            snprintf(name, sizeof name, "%s_all", ir_op_name(ops[i]));
            out(g, name, R(g, ops[i], x, n | c));
        }
    }
    /* a column sum used inside a row sum: materialized [C], then inline */
    ir_node *col = R(g, OP_SUM, x, n);
    out(g, "nested", R(g, OP_SUM, B(g, OP_MUL, x, col), c));
    /* a row reduction of w read through a gather (materialized [C]) */
    ir_node *table = R(g, OP_RMAX, w, ir_dimbit(D));
    out(g, "gathered", ir_gather(g, table, c, &y, L_));
    /* softmax: exp(x - lse) over rows, and the centered columns */
    out(g, "softmax", U(g, OP_EXP, B(g, OP_SUB, x, R(g, OP_LSE, x, c))));
    out(g, "centered", B(g, OP_SUB, x, B(g, OP_DIV, col, SIZE(g, N, T))));
    return g;
}

static void test_reductions(void **state)
{
    (void)state;
    static const int64_t shapes[][3] = {{1, 1, 1}, {7, 3, 2}, {1000, 17, 5}, {129, 40, 33}};
    for (int ti = 0; ti < 2; ti++) {
        ir_dtype T = ti ? DT_F64 : DT_F32;
        for (size_t si = 0; si < SUP_ARRAY_LEN(shapes); si++) {
            cg_case c = {.g = reductions(T), .seed = 21 + si};
            c.rtol = T == DT_F32 ? 2e-5 : 1e-12;
            c.atol = T == DT_F32 ? 2e-5 : 1e-12;
            memcpy(c.size, shapes[si], sizeof shapes[si]);
            c.gen[0] = GEN_UNIFORM, c.lo[0] = 0.6, c.hi[0] = 1.4;
            c.gen[1] = GEN_UNIFORM, c.lo[1] = -5, c.hi[1] = 5;
            c.gen[2] = GEN_INDEX, c.hi[2] = (double)shapes[si][1];
            run_and_check(g_jit, &c);
            free_case_buffers(&c);
            ir_graph_free(c.g);
        }
    }
}

/* Column reductions of a wide tensor: 256 chunks of their three [D]
 * partials would take 42 MB, so the chunks are capped (PARTIAL_BYTES in
 * codegen/lower_kernel.c): 49 of 21 rows. */
static void test_wide_partials(void **state)
{
    (void)state;
    ir_graph *g = ir_graph_new("wide_partials");
    int N = ir_dim_add(g, "N", -1, -1, L_), D = ir_dim_add(g, "D", -1, -1, L_);
    int nd[2] = {N, D};
    ir_node *x = IN(g, "x", IR_IN_TENSOR, DT_F32, 2, nd);
    ir_node *w = IN(g, "w", IR_IN_TENSOR, DT_F32, 1, &N);
    out(g, "sum", R(g, OP_SUM, x, ir_dimbit(N)));
    out(g, "max", R(g, OP_RMAX, x, ir_dimbit(N)));
    out(g, "weighted", R(g, OP_SUM, B(g, OP_MUL, x, w), ir_dimbit(N)));
    cg_case c = {.g = g, .seed = 91, .rtol = 2e-5, .atol = 2e-5};
    c.size[0] = 1021;
    c.size[1] = 8195;
    c.gen[0] = GEN_UNIFORM, c.lo[0] = -2, c.hi[0] = 2;
    c.gen[1] = GEN_UNIFORM, c.lo[1] = 0, c.hi[1] = 1;
    run_and_check(g_jit, &c);
    free_case_buffers(&c);
    ir_graph_free(g);
}

/* A dot product along a row adds each product to its lane's sum in one
 * fma: lane 0 sums x0 y0 = -1 and x64 y64 = (1 + 2^-12)^2 (64 is a multiple
 * of every vector width), which is 2^-11 + 2^-24 exactly when the product
 * is not rounded first and 2^-11 when it is. 65 columns: the along-rows
 * body, element 64 in the masked last iteration. (LLVM fused the product
 * on its own with one register per vector, not with two.) */
static void test_dot_fused(void **state)
{
    (void)state;
    ir_graph *g = ir_graph_new("dot");
    int N = ir_dim_add(g, "N", -1, -1, L_), D = ir_dim_add(g, "D", -1, -1, L_);
    int nd[2] = {N, D};
    ir_node *x = IN(g, "x", IR_IN_TENSOR, DT_F32, 2, nd);
    ir_node *y = IN(g, "y", IR_IN_TENSOR, DT_F32, 2, nd);
    /* inline in a row's expression (times 2, exactly) */
    out(g, "dot", B(g, OP_MUL, R(g, OP_SUM, B(g, OP_MUL, x, y), ir_dimbit(D)), K(g, DT_F32, 2)));
    out(g, "exp", U(g, OP_EXP, x)); /* two registers per vector on AVX2 */
    cg_case c = {.g = g};
    c.size[N] = 1;
    c.size[D] = 65;
    c.gen[0] = c.gen[1] = GEN_FIXED;
    double **data = make_inputs(&c);
    float *xs = c.in[0], *ys = c.in[1];
    xs[0] = -1.0f, ys[0] = 1.0f;
    xs[64] = ys[64] = 1.0f + 0x1p-12f;
    cg_kernel_info info;
    lk_kernel_fn fn = compile_case(g_jit, &c, &info);
    assert_int_equal(run_kernel(&c, fn, NULL, NULL), LK_OK);
    assert_true(((float *)c.out[0])[0] == 0x1p-10f + 0x1p-23f);
    cg_kernel_info_free(&info);
    free_inputs(&c, data);
    free_case_buffers(&c);
    ir_graph_free(g);
}

/* Max and min propagate NaN, inf - inf sums to NaN, through row, column
 * and global reductions. */
static void test_reductions_special_values(void **state)
{
    (void)state;
    static const int64_t shapes[][3] = {{7, 3, 2}, {100, 17, 3}};
    for (int ti = 0; ti < 2; ti++) {
        ir_dtype T = ti ? DT_F64 : DT_F32;
        for (size_t si = 0; si < SUP_ARRAY_LEN(shapes); si++) {
            ir_graph *g = ir_graph_new("special_reductions");
            int N = ir_dim_add(g, "N", -1, -1, L_), C = ir_dim_add(g, "C", -1, -1, L_);
            int nc[2] = {N, C};
            ir_node *x = IN(g, "x", IR_IN_TENSOR, T, 2, nc);
            const ir_op ops[] = {OP_SUM, OP_RMAX, OP_RMIN, OP_LSE};
            for (size_t i = 0; i < SUP_ARRAY_LEN(ops); i++) {
                out(g, "rows", R(g, ops[i], x, ir_dimbit(C)));
                out(g, "cols", R(g, ops[i], x, ir_dimbit(N)));
            }
            cg_case c = {.g = g, .seed = 31 + si, .rtol = T == DT_F32 ? 1e-5 : 1e-12};
            c.atol = c.rtol;
            memcpy(c.size, shapes[si], sizeof shapes[si]);
            c.gen[0] = GEN_SPECIAL_SMALL;
            run_and_check(g_jit, &c);
            free_case_buffers(&c);
            ir_graph_free(g);
        }
    }
}

static void test_int_reductions(void **state)
{
    (void)state;
    ir_graph *g = ir_graph_new("int_reductions");
    int N = ir_dim_add(g, "N", -1, -1, L_), C = ir_dim_add(g, "C", -1, -1, L_);
    int nc[2] = {N, C};
    ir_node *x = IN(g, "x", IR_IN_TENSOR, DT_I32, 2, nc);
    ir_node *z = IN(g, "z", IR_IN_TENSOR, DT_I64, 2, nc);
    out(g, "sum_rows", R(g, OP_SUM, x, ir_dimbit(C)));
    out(g, "sum_all", R(g, OP_SUM, x, ir_dimbit(C) | ir_dimbit(N)));
    out(g, "max_cols", R(g, OP_RMAX, z, ir_dimbit(N)));
    out(g, "min_rows", R(g, OP_RMIN, z, ir_dimbit(C)));
    out(g, "prod_rows", R(g, OP_PROD, B(g, OP_MOD, x, K(g, DT_I32, 3)), ir_dimbit(C)));
    cg_case c = {.g = g, .seed = 41};
    c.size[0] = 1001;
    c.size[1] = 11;
    c.gen[0] = c.gen[1] = GEN_UNIFORM;
    c.lo[0] = c.lo[1] = -1000;
    c.hi[0] = c.hi[1] = 1000;
    run_and_check(g_jit, &c);
    free_case_buffers(&c);
    ir_graph_free(g);
}

/* An input laid out [C, N] while the canonical order is [N, C]: loads are
 * strided or gathered, its gradient is stored in its own layout. */
static void test_layouts(void **state)
{
    (void)state;
    for (int ti = 0; ti < 2; ti++) {
        ir_dtype T = ti ? DT_F64 : DT_F32;
        ir_graph *g = ir_graph_new("layouts");
        int N = ir_dim_add(g, "N", -1, -1, L_), C = ir_dim_add(g, "C", -1, -1, L_);
        int cn[2] = {C, N}, nc[2] = {N, C};
        ir_node *xt = IN(g, "xt", IR_IN_TENSOR, T, 2, cn);
        ir_node *x2 = IN(g, "x2", IR_IN_TENSOR, T, 2, nc);
        ir_node *s = IN(g, "s", IR_IN_SCALAR, T, 0, NULL);
        ir_output_add(g, "grad_xt", IR_OUT_GRAD, 0,
                      B(g, OP_ADD, B(g, OP_MUL, xt, K(g, T, 2)), x2));
        out(g, "sum", B(g, OP_ADD, xt, x2));
        out(g, "cols", R(g, OP_SUM, xt, ir_dimbit(N)));
        out(g, "rows", R(g, OP_LSE, xt, ir_dimbit(C)));
        ir_node *iota_n = ir_cast(g, T, ir_iota(g, N, L_), L_);
        ir_node *half = B(g, OP_LT, ir_iota(g, C, L_),
                          B(g, OP_FLOORDIV, ir_dimsize(g, C, L_), K(g, DT_I64, 2)));
        out(g, "iota", B(g, OP_MUL, ir_where(g, half, x2, U(g, OP_NEG, x2), L_), iota_n));
        out(g, "expand", ir_expand(g, B(g, OP_MUL, iota_n, s), ir_dimbit(N) | ir_dimbit(C), L_));
        out(g, "scalar", B(g, OP_MUL, s, K(g, T, 3)));
        out(g, "copy", x2);
        static const int64_t shapes[][2] = {{1, 1}, {7, 3}, {1000, 17}, {33, 100}};
        for (size_t si = 0; si < SUP_ARRAY_LEN(shapes); si++) {
            cg_case c = {.g = g, .seed = 51 + si, .rtol = T == DT_F32 ? 2e-5 : 1e-12};
            c.atol = c.rtol;
            memcpy(c.size, shapes[si], sizeof shapes[si]);
            c.gen[0] = c.gen[1] = GEN_UNIFORM;
            c.lo[0] = c.lo[1] = -2;
            c.hi[0] = c.hi[1] = 2;
            c.gen[2] = GEN_FIXED, c.lo[2] = 0.5;
            run_and_check(g_jit, &c);
            free_case_buffers(&c);
        }
        ir_graph_free(g);
    }
}

/* Comparisons of a row's position with a per-row integer (the one-hot of a
 * label, a causal mask), every predicate in both orders, for values below,
 * inside and above the row and the vector lanes: the kernels compare the
 * position relative to the vector's first lane (linear_compare in
 * codegen/lower_expr.c). */
static void test_index_compares(void **state)
{
    (void)state;
    ir_graph *g = ir_graph_new("index_compares");
    int N = ir_dim_add(g, "N", -1, -1, L_), C = ir_dim_add(g, "C", -1, -1, L_);
    int nc[2] = {N, C};
    ir_node *x = IN(g, "x", IR_IN_TENSOR, DT_F32, 2, nc);
    ir_node *k = IN(g, "k", IR_IN_TENSOR, DT_I64, 1, &N);
    ir_node *pos = ir_iota(g, C, L_);
    const ir_op cmps[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
    for (size_t i = 0; i < SUP_ARRAY_LEN(cmps); i++) {
        char name[32];
        snprintf(name, sizeof name, "pos_%s_k", ir_op_name(cmps[i]));
        out(g, name, ir_where(g, B(g, cmps[i], pos, k), x, K(g, DT_F32, 0), L_));
        snprintf(name, sizeof name, "k_%s_pos", ir_op_name(cmps[i]));
        out(g, name, ir_where(g, B(g, cmps[i], k, pos), x, K(g, DT_F32, 0), L_));
    }
    /* a constant far outside any row */
    out(g, "pos_lt_huge", ir_cast(g, DT_I64, B(g, OP_LT, pos, K(g, DT_I64, 1e18)), L_));
    out(g, "pos_gt_tiny", ir_cast(g, DT_I64, B(g, OP_GT, pos, K(g, DT_I64, -1e18)), L_));
    static const int64_t shapes[][2] = {{1, 1}, {7, 3}, {5, 17}, {40, 37}, {9, 100}};
    for (size_t si = 0; si < SUP_ARRAY_LEN(shapes); si++) {
        cg_case c = {.g = g, .seed = 71 + si, .rtol = 0};
        memcpy(c.size, shapes[si], sizeof shapes[si]);
        c.gen[0] = GEN_UNIFORM, c.lo[0] = -2, c.hi[0] = 2;
        c.gen[1] = GEN_UNIFORM, c.lo[1] = -40, c.hi[1] = 140;
        run_and_check(g_jit, &c);
        free_case_buffers(&c);
    }
    ir_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_ops),
        cmocka_unit_test(test_int_and_bool_ops),
        cmocka_unit_test(test_reductions),
        cmocka_unit_test(test_reductions_special_values),
        cmocka_unit_test(test_int_reductions),
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_wide_partials),
        cmocka_unit_test(test_dot_fused),
        cmocka_unit_test(test_index_compares),
    };
    return cmocka_run_group_tests(tests, jit_setup, jit_teardown);
}
