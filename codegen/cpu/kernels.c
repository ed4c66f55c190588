/* codegen/cpu/kernels.c — one LLVM kernel emitter per op (named in ops.def).
 *
 * Each emitter builds one or more functions with the RtKernelFn signature and
 * registers their launches: which buffers they take and how many work items
 * a step has (per token + constant) for the thread pool to split.  Shapes and
 * weight dtypes are compile-time constants here; only T (tokens this step),
 * pos0 (position of the first) and the work range [lo, hi) vary at run time.
 *
 * Arithmetic is f32 with f32 accumulation; f16/bf16 weights are widened as
 * they are loaded.  Reductions use a fixed pairwise order, so a result does
 * not depend on how the pool split the work. */
#include <math.h>
#include <string.h>

#include "codegen/cpu/internal.h"

static int bufid(CpuGen *g, Node *n) { return g->t.node_buf[n->id]; }

/* Rough multiply-adds per work item, so the pool keeps tiny launches on one thread. */
static void set_cost(CpuGen *g, int launch, int64_t cost, int64_t per_tok, int64_t per_pos)
{
    g->t.launch[launch].cost = cost;
    g->t.launch[launch].cost_per_tok = per_tok;
    g->t.launch[launch].cost_per_pos = per_pos;
}

bool cpu_emit_none(CpuGen *g, Node *n)
{
    (void)g, (void)n;
    return true;
}

/* Ops that only a CUDA pass creates (pass "epilogue" runs for CUDA alone). */
bool cpu_emit_cuda_only(CpuGen *g, Node *n)
{
    (void)g;
    IR_BUG("%s reached the CPU code generator", ir_op_name(n->op));
}

/* ---- dot products -------------------------------------------------------- */

/* out[r*U + u] = sum_k w[wrow[r] + k] * x[xoff[u] + k], k < K: R weight rows
 * against U activation rows at once.  Each weight vector is loaded (and
 * widened) once and used U times; R*U independent accumulators keep the FMA
 * units busy. */
/* dot_tile for block weights (Q8_0/Q4_0/Q4_1): wrow[r] is the byte offset
 * of row r; K is a multiple of 32.  Each block is widened once (kb_loadq)
 * and used for U rows of x; the vectors go through the accumulators in the
 * same k order as the f32 path, so the result equals dequantize-then-f32. */
static void dot_tile_blocks(KB *k, int R, int U, LLVMValueRef x, const LLVMValueRef *xoff, LLVMValueRef w,
                            const LLVMValueRef *wrow, DType wdt, int64_t K, LLVMValueRef *out)
{
    LLVMValueRef acc[32];
    IR_ASSERT(R * U <= 32 && K % 32 == 0);
    for (int i = 0; i < R * U; i++)
        acc[i] = kb_alloca(k, k->vf, LLVMConstNull(k->vf));
    int nv = 32 / k->vw, bb = ir_block_bytes(wdt);
    Loop l;
    LLVMValueRef b = kb_loop(k, &l, kb_i64(k, 0), kb_i64(k, K / 32), kb_i64(k, 1));
    LLVMValueRef kbase = kb_mul(k, b, kb_i64(k, 32)), boff = kb_mul(k, b, kb_i64(k, bb));
    for (int r = 0; r < R; r++) {
        LLVMValueRef wv[8];
        kb_loadq(k, w, kb_add(k, wrow[r], boff), wdt, wv);
        for (int v = 0; v < nv; v++)
            for (int u = 0; u < U; u++) {
                LLVMValueRef xv = kb_loadv(k, x, kb_add(k, xoff[u], kb_add(k, kbase, kb_i64(k, (int64_t)v * k->vw))), DT_F32);
                kb_set(k, acc[r * U + u], kb_fma(k, wv[v], xv, kb_get(k, acc[r * U + u])));
            }
    }
    kb_loop_end(k, &l);
    for (int i = 0; i < R * U; i++)
        out[i] = kb_hsum(k, kb_get(k, acc[i]));
}

/* dot_tile for q8_1 activations (pass "quantize") against block weights:
 * xoff[u] and wrow[r] are byte offsets.  Per block, the integer products
 * in 8 lanes of 4 (kb_dot4_i8) are scaled by d_w * d_x into an <8 x float>
 * accumulator; Q4_1's offsets add m_w * s_x per block; the lanes are
 * summed pairwise at the end.  ggml's AVX2 vec_dot_q4_1_q8_1 /
 * q4_0_q8_0 / q8_0_q8_0 compute it in that order too. */
static void dot_tile_q8(KB *k, int R, int U, LLVMValueRef x, const LLVMValueRef *xoff, LLVMValueRef w,
                        const LLVMValueRef *wrow, DType wdt, int64_t K, LLVMValueRef *out)
{
    LLVMTypeRef v8f = LLVMVectorType(k->f32, 8);
    LLVMValueRef acc[32], ms[32];
    bool q41 = wdt == DT_Q4_1;
    IR_ASSERT(R * U <= 32 && U <= 8 && K % 32 == 0);
    for (int i = 0; i < R * U; i++) {
        acc[i] = kb_alloca(k, v8f, LLVMConstNull(v8f));
        ms[i] = q41 ? kb_alloca(k, k->f32, kb_f32(k, 0.0)) : NULL;
    }
    int bb = ir_block_bytes(wdt), xb = ir_block_bytes(DT_Q8_1);
    Loop l;
    LLVMValueRef b = kb_loop(k, &l, kb_i64(k, 0), kb_i64(k, K / 32), kb_i64(k, 1));
    LLVMValueRef xo = kb_mul(k, b, kb_i64(k, xb)), wo = kb_mul(k, b, kb_i64(k, bb));
    LLVMValueRef dx[8], sx[8], qx[8];
    for (int u = 0; u < U; u++) {
        LLVMValueRef o = kb_add(k, xoff[u], xo);
        dx[u] = kb_load_half(k, x, o);
        sx[u] = q41 ? kb_load_half(k, x, kb_add(k, o, kb_i64(k, 2))) : NULL;
        qx[u] = kb_load_bytes(k, x, kb_add(k, o, kb_i64(k, 4)), 32);
    }
    for (int r = 0; r < R; r++) {
        LLVMValueRef dw, mw, qw;
        kb_loadq_i8(k, w, kb_add(k, wrow[r], wo), wdt, &dw, &mw, &qw);
        for (int u = 0; u < U; u++) {
            LLVMValueRef p = LLVMBuildSIToFP(k->b, kb_dot4_i8(k, qw, qx[u], q41), v8f, "");
            LLVMValueRef sv = kb_splat(k, LLVMBuildFMul(k->b, dw, dx[u], ""), 8);
            LLVMValueRef a = acc[r * U + u];
            kb_set(k, a, kb_fma(k, sv, p, kb_get(k, a)));
            if (q41)
                kb_set(k, ms[r * U + u], LLVMBuildFAdd(k->b, kb_get(k, ms[r * U + u]), LLVMBuildFMul(k->b, mw, sx[u], ""), ""));
        }
    }
    kb_loop_end(k, &l);
    for (int i = 0; i < R * U; i++) {
        out[i] = kb_hsum(k, kb_get(k, acc[i]));
        if (q41)
            out[i] = LLVMBuildFAdd(k->b, out[i], kb_get(k, ms[i]), "");
    }
}

static void dot_tile(KB *k, int R, int U, LLVMValueRef x, const LLVMValueRef *xoff, LLVMValueRef w,
                     const LLVMValueRef *wrow, DType wdt, int64_t K, LLVMValueRef *out)
{
    if (ir_block_bytes(wdt)) {
        dot_tile_blocks(k, R, U, x, xoff, w, wrow, wdt, K, out);
        return;
    }
    LLVMValueRef acc[32];
    IR_ASSERT(R * U <= 32);
    for (int i = 0; i < R * U; i++)
        acc[i] = kb_alloca(k, k->vf, LLVMConstNull(k->vf));
    /* Main loop: for one row of x (decode), one 64-byte cache line of every
     * weight row per iteration; for tiles of several rows (prefill), one
     * vector (unrolling them spills: f16 prefill 122 -> 85 tok/s measured);
     * then single vectors; then scalars.  (A software prefetch 1 KiB ahead
     * was measured: no gain on decode, so there is none.) */
    int esz = ir_dtype_size(wdt);
    int unroll = U == 1 && 64 / (k->vw * esz) > 1 ? 64 / (k->vw * esz) : 1;   /* tiles of U > 1 would spill */
    int64_t step = (int64_t)k->vw * unroll;
    int64_t kmain = K - K % step, kv = K - K % k->vw;
    for (int pass = 0; pass < 2; pass++) {
        int64_t from = pass ? kmain : 0, to = pass ? kv : kmain, st = pass ? k->vw : step;
        if (to <= from)
            continue;
        Loop l;
        LLVMValueRef i = kb_loop(k, &l, kb_i64(k, from), kb_i64(k, to), kb_i64(k, st));
        for (int v = 0; v < (pass ? 1 : unroll); v++) {
            LLVMValueRef iv = kb_add(k, i, kb_i64(k, (int64_t)v * k->vw));
            LLVMValueRef xv[8];
            for (int u = 0; u < U; u++)
                xv[u] = kb_loadv(k, x, kb_add(k, xoff[u], iv), DT_F32);
            for (int r = 0; r < R; r++) {
                LLVMValueRef wv = kb_loadv(k, w, kb_add(k, wrow[r], iv), wdt);
                for (int u = 0; u < U; u++)
                    kb_set(k, acc[r * U + u], kb_fma(k, wv, xv[u], kb_get(k, acc[r * U + u])));
            }
        }
        kb_loop_end(k, &l);
    }
    for (int r = 0; r < R; r++)
        for (int u = 0; u < U; u++) {
            LLVMValueRef s = kb_hsum(k, kb_get(k, acc[r * U + u]));
            for (int64_t j = kv; j < K; j++) {
                LLVMValueRef xs = kb_loads(k, x, kb_add(k, xoff[u], kb_i64(k, j)), DT_F32);
                LLVMValueRef ws = kb_loads(k, w, kb_add(k, wrow[r], kb_i64(k, j)), wdt);
                s = kb_fma(k, ws, xs, s);
            }
            out[r * U + u] = s;
        }
}

static void dot_rows(KB *k, int R, LLVMValueRef x, LLVMValueRef xoff, LLVMValueRef w, LLVMValueRef *wrow, DType wdt,
                     int64_t K, LLVMValueRef *out)
{
    dot_tile(k, R, 1, x, &xoff, w, wrow, wdt, K, out);
}

/* ---- linear -------------------------------------------------------------- */

/* y[t, n] = sum_k x[t, k] * w[n, k] over every row t of x (T tokens times
 * the dims between seq and K).  Work items are output columns n: a thread
 * streams its rows of w once and applies them to every row of x, U rows at a
 * time (then one at a time for the rest). */
static void linear_rows(KB *k, int R, int U, LLVMValueRef r0, LLVMValueRef x, DType xdt, LLVMValueRef w, LLVMValueRef y,
                        DType wdt, int64_t K, int64_t N, LLVMValueRef rows)
{
    int64_t xstride = xdt == DT_Q8_1 ? K / 32 * ir_block_bytes(DT_Q8_1) : K;   /* bytes for q8_1 */
    LLVMValueRef wrow[8];
    int64_t stride = ir_block_bytes(wdt) ? K / 32 * ir_block_bytes(wdt) : K;   /* elements, or bytes for blocks */
    for (int r = 0; r < R; r++)
        wrow[r] = kb_mul(k, kb_add(k, r0, kb_i64(k, r)), kb_i64(k, stride));
    LLVMValueRef tiled = kb_mul(k, LLVMBuildSDiv(k->b, rows, kb_i64(k, U), ""), kb_i64(k, U));
    for (int pass = 0; pass < 2; pass++) {
        int u_n = pass == 0 ? U : 1;
        if (pass == 0 && U == 1)
            continue;
        Loop lt;
        LLVMValueRef t = pass == 0 ? kb_loop(k, &lt, kb_i64(k, 0), tiled, kb_i64(k, U))
                                   : kb_loop(k, &lt, U == 1 ? kb_i64(k, 0) : tiled, rows, kb_i64(k, 1));
        LLVMValueRef xoff[8], sums[32];
        for (int u = 0; u < u_n; u++)
            xoff[u] = kb_mul(k, kb_add(k, t, kb_i64(k, u)), kb_i64(k, xstride));
        if (xdt == DT_Q8_1)
            dot_tile_q8(k, R, u_n, x, xoff, w, wrow, wdt, K, sums);
        else
            dot_tile(k, R, u_n, x, xoff, w, wrow, wdt, K, sums);
        for (int u = 0; u < u_n; u++) {
            LLVMValueRef yrow = kb_add(k, kb_mul(k, kb_add(k, t, kb_i64(k, u)), kb_i64(k, N)), r0);
            for (int r = 0; r < R; r++)
                kb_stores(k, y, kb_add(k, yrow, kb_i64(k, r)), sums[r * u_n + u]);
        }
        kb_loop_end(k, &lt);
    }
}

bool cpu_emit_linear(CpuGen *g, Node *n)
{
    KB *k = &g->k;
    Node *xn = n->src[0], *wn = n->src[1];
    int64_t K = wn->shape[1], N = wn->shape[0], per_tok, cst;
    ir_numel_per_tok(xn, &per_tok, &cst);
    enum { R = 4 };
    const char *name = cpu_kernel_name(g, n, "");
    kb_begin(k, name);
    LLVMValueRef x = kb_arg(k, 0, kb_elem(k, xn->dt)), w = kb_arg(k, 1, kb_elem(k, wn->dt)), y = kb_arg(k, 2, k->f32);
    LLVMValueRef rows = kb_add(k, kb_mul(k, k->T, kb_i64(k, per_tok / K)), kb_i64(k, cst / K));
    /* columns [lo, mid) in blocks of R, then [mid, hi) one at a time */
    LLVMValueRef span = LLVMBuildSub(k->b, k->hi, k->lo, "");
    LLVMValueRef mid = kb_add(k, k->lo, kb_mul(k, LLVMBuildSDiv(k->b, span, kb_i64(k, R), ""), kb_i64(k, R)));
    Loop lb, l1;
    int U = k->vw >= 16 ? 4 : 2;   /* R*U accumulators: 16 vector registers on AVX2, 32 on AVX-512 */
    LLVMValueRef r = kb_loop(k, &lb, k->lo, mid, kb_i64(k, R));
    linear_rows(k, R, U, r, x, xn->dt, w, y, wn->dt, K, N, rows);
    kb_loop_end(k, &lb);
    r = kb_loop(k, &l1, mid, k->hi, kb_i64(k, 1));
    linear_rows(k, 1, U, r, x, xn->dt, w, y, wn->dt, K, N, rows);
    kb_loop_end(k, &l1);
    kb_finish(k);
    int args[] = {bufid(g, n->src[0]), bufid(g, wn), bufid(g, n)};
    set_cost(g, cpu_launch(g, n, name, 3, args, 0, N, R), cst, per_tok, 0);
    return true;
}

/* ---- quantize ------------------------------------------------------------ */

/* q8_1 blocks of each row of x (pass "quantize"); work items are rows. */
bool cpu_emit_quantize(CpuGen *g, Node *n)
{
    KB *k = &g->k;
    Node *xn = n->src[0];
    int64_t K = xn->shape[xn->rank - 1], per_tok, cst, bb = ir_block_bytes(DT_Q8_1);
    ir_numel_per_tok(xn, &per_tok, &cst);
    const char *name = cpu_kernel_name(g, n, "");
    kb_begin(k, name);
    LLVMValueRef x = kb_arg(k, 0, k->f32), y = kb_arg(k, 1, k->i8);
    Loop lr, lb;
    LLVMValueRef row = kb_loop(k, &lr, k->lo, k->hi, kb_i64(k, 1));
    LLVMValueRef b = kb_loop(k, &lb, kb_i64(k, 0), kb_i64(k, K / 32), kb_i64(k, 1));
    kb_quantize_q8_1(k, x, kb_add(k, kb_mul(k, row, kb_i64(k, K)), kb_mul(k, b, kb_i64(k, 32))), y,
                     kb_add(k, kb_mul(k, row, kb_i64(k, K / 32 * bb)), kb_mul(k, b, kb_i64(k, bb))));
    kb_loop_end(k, &lb);
    kb_loop_end(k, &lr);
    kb_finish(k);
    int args[] = {bufid(g, xn), bufid(g, n)};
    set_cost(g, cpu_launch(g, n, name, 2, args, per_tok / K, cst / K, 1), 2 * K, 0, 0);
    return true;
}

/* ---- embedding ----------------------------------------------------------- */

/* out[t, :] = table[ids[t], :], widened to f32.  Token ids were range-checked
 * by the runtime; ids computed inside the model (argmax) are checked here:
 * one outside the table gives a row of zeros, never a read past the table. */
bool cpu_emit_embedding(CpuGen *g, Node *n)
{
    KB *k = &g->k;
    Node *tn = n->src[0];
    int64_t V = tn->shape[0], D = tn->shape[1], per_tok, cst;
    ir_numel_per_tok(n->src[1], &per_tok, &cst);
    const char *name = cpu_kernel_name(g, n, "");
    kb_begin(k, name);
    LLVMValueRef table = kb_arg(k, 0, kb_elem(k, tn->dt)), ids = kb_arg(k, 1, k->i32), out = kb_arg(k, 2, k->f32);
    Loop lt, ld;
    LLVMValueRef t = kb_loop(k, &lt, k->lo, k->hi, kb_i64(k, 1));
    LLVMValueRef id = LLVMBuildSExt(k->b, kb_loads(k, ids, t, DT_I32), k->i64, "");
    LLVMValueRef ok = LLVMBuildAnd(k->b, LLVMBuildICmp(k->b, LLVMIntSGE, id, kb_i64(k, 0), ""),
                                   LLVMBuildICmp(k->b, LLVMIntSLT, id, kb_i64(k, V), ""), "");
    id = LLVMBuildSelect(k->b, ok, id, kb_i64(k, 0), "");
    LLVMValueRef okv = kb_vsplat(k, ok), zero = LLVMConstNull(k->vf), dst = kb_mul(k, t, kb_i64(k, D));
    if (ir_block_bytes(tn->dt)) {
        int bb = ir_block_bytes(tn->dt), nv = 32 / k->vw;
        LLVMValueRef src = kb_mul(k, id, kb_i64(k, D / 32 * bb));
        LLVMValueRef b = kb_loop(k, &ld, kb_i64(k, 0), kb_i64(k, D / 32), kb_i64(k, 1));
        LLVMValueRef wv[8];
        kb_loadq(k, table, kb_add(k, src, kb_mul(k, b, kb_i64(k, bb))), tn->dt, wv);
        for (int v = 0; v < nv; v++)
            kb_storev(k, out, kb_add(k, dst, kb_add(k, kb_mul(k, b, kb_i64(k, 32)), kb_i64(k, (int64_t)v * k->vw))),
                      LLVMBuildSelect(k->b, okv, wv[v], zero, ""));
        kb_loop_end(k, &ld);
    } else {
        LLVMValueRef src = kb_mul(k, id, kb_i64(k, D));
        int64_t dv = D - D % k->vw;
        if (dv) {
            LLVMValueRef d = kb_loop(k, &ld, kb_i64(k, 0), kb_i64(k, dv), kb_i64(k, k->vw));
            kb_storev(k, out, kb_add(k, dst, d),
                      LLVMBuildSelect(k->b, okv, kb_loadv(k, table, kb_add(k, src, d), tn->dt), zero, ""));
            kb_loop_end(k, &ld);
        }
        for (int64_t j = dv; j < D; j++)
            kb_stores(k, out, kb_add(k, dst, kb_i64(k, j)),
                      LLVMBuildSelect(k->b, ok, kb_loads(k, table, kb_add(k, src, kb_i64(k, j)), tn->dt), kb_f32(k, 0), ""));
    }
    kb_loop_end(k, &lt);
    kb_finish(k);
    int args[] = {bufid(g, tn), bufid(g, n->src[1]), bufid(g, n)};
    set_cost(g, cpu_launch(g, n, name, 3, args, per_tok, cst, 1), D, 0, 0);
    return true;
}

/* ---- rms_norm ------------------------------------------------------------ */

/* y = w * (x * 1/sqrt(mean(x^2) + eps)), per row of the last dim. */
bool cpu_emit_rms_norm(CpuGen *g, Node *n)
{
    KB *k = &g->k;
    Node *wn = n->src[1];
    int64_t D = wn->shape[0], per_tok, cst;
    ir_numel_per_tok(n, &per_tok, &cst);
    const char *name = cpu_kernel_name(g, n, "");
    kb_begin(k, name);
    LLVMValueRef x = kb_arg(k, 0, k->f32), w = kb_arg(k, 1, kb_elem(k, wn->dt)), y = kb_arg(k, 2, k->f32);
    Loop lr, ld;
    LLVMValueRef row = kb_loop(k, &lr, k->lo, k->hi, kb_i64(k, 1));
    LLVMValueRef base = kb_mul(k, row, kb_i64(k, D));
    LLVMValueRef ss;
    dot_rows(k, 1, x, base, x, &base, DT_F32, D, &ss);
    LLVMValueRef mean = LLVMBuildFDiv(k->b, ss, kb_f32(k, (double)D), "");
    LLVMValueRef var = LLVMBuildFAdd(k->b, mean, kb_f32(k, n->a.eps), "");
    LLVMValueRef rs = LLVMBuildFDiv(k->b, kb_f32(k, 1.0), kb_call(k, "llvm.sqrt", k->f32, &var, 1), "");
    int64_t dv = D - D % k->vw;
    if (dv) {
        LLVMValueRef rv = kb_vsplat(k, rs);
        LLVMValueRef d = kb_loop(k, &ld, kb_i64(k, 0), kb_i64(k, dv), kb_i64(k, k->vw));
        LLVMValueRef xv = kb_loadv(k, x, kb_add(k, base, d), DT_F32);
        LLVMValueRef v = LLVMBuildFMul(k->b, kb_loadv(k, w, d, wn->dt), LLVMBuildFMul(k->b, xv, rv, ""), "");
        kb_storev(k, y, kb_add(k, base, d), v);
        kb_loop_end(k, &ld);
    }
    for (int64_t j = dv; j < D; j++) {
        LLVMValueRef idx = kb_add(k, base, kb_i64(k, j));
        LLVMValueRef v = LLVMBuildFMul(k->b, kb_loads(k, w, kb_i64(k, j), wn->dt),
                                       LLVMBuildFMul(k->b, kb_loads(k, x, idx, DT_F32), rs, ""), "");
        kb_stores(k, y, idx, v);
    }
    kb_loop_end(k, &lr);
    kb_finish(k);
    int args[] = {bufid(g, n->src[0]), bufid(g, wn), bufid(g, n)};
    set_cost(g, cpu_launch(g, n, name, 3, args, per_tok / D, cst / D, 1), 3 * D, 0, 0);
    return true;
}

/* ---- rope ---------------------------------------------------------------- */

/* HF rotate_half convention: element j pairs with j + dh/2.  Work items are
 * tokens; cos/sin are computed once per token and used by every head. */
bool cpu_emit_rope(CpuGen *g, Node *n)
{
    KB *k = &g->k;
    int64_t H = n->shape[1], dh = n->shape[2], half = dh / 2;
    double *inv = arena_alloc(g->c->arena, (size_t)half * sizeof *inv);
    ir_rope_inv_freq(&n->a.rope, dh, inv);
    const char *name = cpu_kernel_name(g, n, "");
    LLVMValueRef *vals = arena_alloc(g->c->arena, (size_t)half * sizeof *vals);
    for (int64_t j = 0; j < half; j++)
        vals[j] = LLVMConstReal(k->f64, inv[j]);
    LLVMValueRef table = LLVMAddGlobal(k->mod, LLVMArrayType(k->f64, (unsigned)half), arena_printf(g->c->arena, "%s.inv_freq", name));
    LLVMSetInitializer(table, LLVMConstArray(k->f64, vals, (unsigned)half));
    LLVMSetGlobalConstant(table, 1);
    LLVMSetLinkage(table, LLVMPrivateLinkage);

    kb_begin(k, name);
    LLVMValueRef x = kb_arg(k, 0, k->f32), y = kb_arg(k, 1, k->f32);
    LLVMValueRef invp = LLVMBuildBitCast(k->b, table, LLVMPointerType(k->f64, 0), "");
    LLVMValueRef cs = kb_alloca_array(k, k->f32, half), sn = kb_alloca_array(k, k->f32, half);
    Loop lt, lj, lh, lk;
    LLVMValueRef t = kb_loop(k, &lt, k->lo, k->hi, kb_i64(k, 1));
    LLVMValueRef pos = LLVMBuildSIToFP(k->b, kb_add(k, k->pos0, t), k->f64, "");
    LLVMValueRef j = kb_loop(k, &lj, kb_i64(k, 0), kb_i64(k, half), kb_i64(k, 1));
    LLVMValueRef ang = LLVMBuildFMul(k->b, pos, LLVMBuildLoad2(k->b, k->f64, kb_gep(k, invp, j), ""), "");
    kb_stores(k, cs, j, LLVMBuildFPTrunc(k->b, kb_call(k, "llvm.cos", k->f64, &ang, 1), k->f32, ""));
    kb_stores(k, sn, j, LLVMBuildFPTrunc(k->b, kb_call(k, "llvm.sin", k->f64, &ang, 1), k->f32, ""));
    kb_loop_end(k, &lj);
    LLVMValueRef h = kb_loop(k, &lh, kb_i64(k, 0), kb_i64(k, H), kb_i64(k, 1));
    LLVMValueRef base = kb_mul(k, kb_add(k, kb_mul(k, t, kb_i64(k, H)), h), kb_i64(k, dh));
    LLVMValueRef i = kb_loop(k, &lk, kb_i64(k, 0), kb_i64(k, half), kb_i64(k, 1));
    LLVMValueRef ia = kb_add(k, base, i), ib = kb_add(k, ia, kb_i64(k, half));
    LLVMValueRef a = kb_loads(k, x, ia, DT_F32), b = kb_loads(k, x, ib, DT_F32);
    LLVMValueRef c = kb_loads(k, cs, i, DT_F32), s = kb_loads(k, sn, i, DT_F32);
    kb_stores(k, y, ia, LLVMBuildFSub(k->b, LLVMBuildFMul(k->b, a, c, ""), LLVMBuildFMul(k->b, b, s, ""), ""));
    kb_stores(k, y, ib, LLVMBuildFAdd(k->b, LLVMBuildFMul(k->b, b, c, ""), LLVMBuildFMul(k->b, a, s, ""), ""));
    kb_loop_end(k, &lk);
    kb_loop_end(k, &lh);
    kb_loop_end(k, &lt);
    kb_finish(k);
    int args[] = {bufid(g, n->src[0]), bufid(g, n)};
    set_cost(g, cpu_launch(g, n, name, 2, args, 1, 0, 1), 2 * H * dh + 20 * dh, 0, 0);
    return true;
}

/* ---- attention ----------------------------------------------------------- */

/* Copy this step's k and v rows into the caches at positions pos0.. */
static void emit_kv_store(CpuGen *g, Node *n, int kc, int vc)
{
    KB *k = &g->k;
    int64_t row = n->src[1]->shape[1] * n->src[1]->shape[2];
    const char *name = cpu_kernel_name(g, n, "_kv_store");
    kb_begin(k, name);
    LLVMValueRef ks = kb_arg(k, 0, k->f32), vs = kb_arg(k, 1, k->f32);
    LLVMValueRef kd = kb_arg(k, 2, k->f32), vd = kb_arg(k, 3, k->f32);
    Loop lt;
    LLVMValueRef t = kb_loop(k, &lt, k->lo, k->hi, kb_i64(k, 1));
    LLVMValueRef src = kb_mul(k, t, kb_i64(k, row)), dst = kb_mul(k, kb_add(k, k->pos0, t), kb_i64(k, row));
    LLVMValueRef bytes = kb_i64(k, row * 4);
    LLVMBuildMemCpy(k->b, kb_gep(k, kd, dst), 4, kb_gep(k, ks, src), 4, bytes);
    LLVMBuildMemCpy(k->b, kb_gep(k, vd, dst), 4, kb_gep(k, vs, src), 4, bytes);
    kb_loop_end(k, &lt);
    kb_finish(k);
    int args[] = {bufid(g, n->src[1]), bufid(g, n->src[2]), kc, vc};
    set_cost(g, cpu_launch(g, n, name, 4, args, 1, 0, 1), 2 * row, 0, 0);
}

/* One work item is one (token, query head).  Scores for every visible
 * position go to a stack buffer (stacksave/stackrestore around it), then a
 * softmax with one exp per position, then the weighted sum of v. */
bool cpu_emit_attention(CpuGen *g, Node *n)
{
    KB *k = &g->k;
    int64_t hq = n->src[0]->shape[1], hkv = n->src[1]->shape[1], dh = n->src[0]->shape[2];
    double scale = ir_attention_scale(n);
    /* the KV caches: buffers of their own, sized by the runtime's max context */
    int kc = pt_new_kv_buf(&g->t, n, 0), vc = pt_new_kv_buf(&g->t, n, 1);
    emit_kv_store(g, n, kc, vc);

    const char *name = cpu_kernel_name(g, n, "");
    kb_begin(k, name);
    LLVMValueRef q = kb_arg(k, 0, k->f32), kcache = kb_arg(k, 1, k->f32), vcache = kb_arg(k, 2, k->f32);
    LLVMValueRef out = kb_arg(k, 3, k->f32);
    int64_t nch = dh / k->vw, tail = dh % k->vw;
    LLVMValueRef *acc = arena_alloc(g->c->arena, (size_t)(nch + tail + 1) * sizeof *acc);
    for (int64_t c = 0; c < nch; c++)
        acc[c] = kb_alloca(k, k->vf, NULL);
    for (int64_t c = 0; c < tail; c++)
        acc[nch + c] = kb_alloca(k, k->f32, NULL);
    LLVMValueRef mvar = kb_alloca(k, k->f32, NULL), lvar = kb_alloca(k, k->f32, NULL);

    Loop li, lj1, lj2, lj3;
    LLVMValueRef item = kb_loop(k, &li, k->lo, k->hi, kb_i64(k, 1));
    LLVMValueRef t = LLVMBuildSDiv(k->b, item, kb_i64(k, hq), "");
    LLVMValueRef h = LLVMBuildSRem(k->b, item, kb_i64(k, hq), "");
    LLVMValueRef kvh = LLVMBuildSDiv(k->b, h, kb_i64(k, hq / hkv), "");
    LLVMValueRef L = n->a.attn.causal ? kb_add(k, kb_add(k, k->pos0, t), kb_i64(k, 1)) : kb_add(k, k->pos0, k->T);
    LLVMValueRef qoff = kb_mul(k, item, kb_i64(k, dh));
    LLVMTypeRef i8p = k->i8p;
    LLVMValueRef sp = kb_call(k, "llvm.stacksave", NULL, NULL, 0);
    (void)i8p;
    LLVMValueRef scores = LLVMBuildArrayAlloca(k->b, k->f32, L, "scores");
    /* pass 1: scores and their max */
    kb_set(k, mvar, kb_f32(k, -INFINITY));
    LLVMValueRef j = kb_loop(k, &lj1, kb_i64(k, 0), L, kb_i64(k, 1));
    LLVMValueRef koff = kb_mul(k, kb_add(k, kb_mul(k, j, kb_i64(k, hkv)), kvh), kb_i64(k, dh));
    LLVMValueRef dot;
    dot_rows(k, 1, q, qoff, kcache, &koff, DT_F32, dh, &dot);
    LLVMValueRef s = LLVMBuildFMul(k->b, dot, kb_f32(k, scale), "");
    kb_stores(k, scores, j, s);
    LLVMValueRef m = kb_get(k, mvar);
    kb_set(k, mvar, LLVMBuildSelect(k->b, LLVMBuildFCmp(k->b, LLVMRealOGT, s, m, ""), s, m, ""));
    kb_loop_end(k, &lj1);
    /* pass 2: p = exp(s - max), their sum */
    m = kb_get(k, mvar);
    kb_set(k, lvar, kb_f32(k, 0));
    j = kb_loop(k, &lj2, kb_i64(k, 0), L, kb_i64(k, 1));
    LLVMValueRef d = LLVMBuildFSub(k->b, kb_loads(k, scores, j, DT_F32), m, "");
    LLVMValueRef p = kb_call(k, "llvm.exp", k->f32, &d, 1);
    kb_stores(k, scores, j, p);
    kb_set(k, lvar, LLVMBuildFAdd(k->b, kb_get(k, lvar), p, ""));
    kb_loop_end(k, &lj2);
    /* pass 3: acc = sum p_j v_j; out = acc / sum p */
    for (int64_t c = 0; c < nch; c++)
        kb_set(k, acc[c], LLVMConstNull(k->vf));
    for (int64_t c = 0; c < tail; c++)
        kb_set(k, acc[nch + c], kb_f32(k, 0));
    j = kb_loop(k, &lj3, kb_i64(k, 0), L, kb_i64(k, 1));
    LLVMValueRef voff = kb_mul(k, kb_add(k, kb_mul(k, j, kb_i64(k, hkv)), kvh), kb_i64(k, dh));
    LLVMValueRef pj = kb_loads(k, scores, j, DT_F32), pv = kb_vsplat(k, pj);
    for (int64_t c = 0; c < nch; c++) {
        LLVMValueRef vv = kb_loadv(k, vcache, kb_add(k, voff, kb_i64(k, c * k->vw)), DT_F32);
        kb_set(k, acc[c], kb_fma(k, pv, vv, kb_get(k, acc[c])));
    }
    for (int64_t c = 0; c < tail; c++) {
        LLVMValueRef vs = kb_loads(k, vcache, kb_add(k, voff, kb_i64(k, nch * k->vw + c)), DT_F32);
        kb_set(k, acc[nch + c], kb_fma(k, pj, vs, kb_get(k, acc[nch + c])));
    }
    kb_loop_end(k, &lj3);
    LLVMValueRef inv = LLVMBuildFDiv(k->b, kb_f32(k, 1.0), kb_get(k, lvar), "");
    LLVMValueRef invv = kb_vsplat(k, inv);
    for (int64_t c = 0; c < nch; c++)
        kb_storev(k, out, kb_add(k, qoff, kb_i64(k, c * k->vw)), LLVMBuildFMul(k->b, kb_get(k, acc[c]), invv, ""));
    for (int64_t c = 0; c < tail; c++)
        kb_stores(k, out, kb_add(k, qoff, kb_i64(k, nch * k->vw + c)), LLVMBuildFMul(k->b, kb_get(k, acc[nch + c]), inv, ""));
    kb_call(k, "llvm.stackrestore", NULL, &sp, 1);
    kb_loop_end(k, &li);
    kb_finish(k);
    int args[] = {bufid(g, n->src[0]), kc, vc, bufid(g, n)};
    set_cost(g, cpu_launch(g, n, name, 4, args, hq, 0, 1), 0, 0, 2 * dh + 20);
    return true;
}

/* ---- elementwise --------------------------------------------------------- */

static LLVMValueRef ew_eval(KB *k, const EwProg *p, LLVMValueRef *srcs, LLVMValueRef idx, bool vec)
{
    LLVMValueRef stack[IR_MAX_EW];
    int sp = 0;
    LLVMValueRef one = vec ? kb_vsplat(k, kb_f32(k, 1)) : kb_f32(k, 1);
    for (int i = 0; i < p->n; i++) {
        switch ((EwCode)p->code[i]) {
        case EW_LOAD:
            stack[sp++] = vec ? kb_loadv(k, srcs[p->arg[i]], idx, DT_F32) : kb_loads(k, srcs[p->arg[i]], idx, DT_F32);
            break;
        case EW_SILU: {   /* x / (1 + exp(-x)) */
            LLVMValueRef x = stack[sp - 1];
            LLVMValueRef neg = LLVMBuildFNeg(k->b, x, "");
            LLVMValueRef e = kb_call(k, "llvm.exp", LLVMTypeOf(x), &neg, 1);
            stack[sp - 1] = LLVMBuildFDiv(k->b, x, LLVMBuildFAdd(k->b, one, e, ""), "");
            break;
        }
        case EW_ADD: sp--; stack[sp - 1] = LLVMBuildFAdd(k->b, stack[sp - 1], stack[sp], ""); break;
        case EW_SUB: sp--; stack[sp - 1] = LLVMBuildFSub(k->b, stack[sp - 1], stack[sp], ""); break;
        case EW_MUL: sp--; stack[sp - 1] = LLVMBuildFMul(k->b, stack[sp - 1], stack[sp], ""); break;
        }
    }
    IR_ASSERT(sp == 1);
    return stack[0];
}

/* Work items are elements; the pool hands out multiples of the vector width. */
bool cpu_emit_elementwise(CpuGen *g, Node *n)
{
    KB *k = &g->k;
    EwProg prog;
    ir_ew_program(n, &prog);
    int64_t per_tok, cst;
    ir_numel_per_tok(n, &per_tok, &cst);
    const char *name = cpu_kernel_name(g, n, "");
    kb_begin(k, name);
    LLVMValueRef srcs[IR_MAX_SRC];
    for (int i = 0; i < n->nsrc; i++)
        srcs[i] = kb_arg(k, i, k->f32);
    LLVMValueRef out = kb_arg(k, n->nsrc, k->f32);
    LLVMValueRef span = LLVMBuildSub(k->b, k->hi, k->lo, "");
    LLVMValueRef mid = kb_add(k, k->lo, kb_mul(k, LLVMBuildSDiv(k->b, span, kb_i64(k, k->vw), ""), kb_i64(k, k->vw)));
    Loop lv, ls;
    LLVMValueRef i = kb_loop(k, &lv, k->lo, mid, kb_i64(k, k->vw));
    kb_storev(k, out, i, ew_eval(k, &prog, srcs, i, true));
    kb_loop_end(k, &lv);
    i = kb_loop(k, &ls, mid, k->hi, kb_i64(k, 1));
    kb_stores(k, out, i, ew_eval(k, &prog, srcs, i, false));
    kb_loop_end(k, &ls);
    kb_finish(k);
    int args[IR_MAX_SRC + 1];
    for (int s = 0; s < n->nsrc; s++)
        args[s] = bufid(g, n->src[s]);
    args[n->nsrc] = bufid(g, n);
    set_cost(g, cpu_launch(g, n, name, n->nsrc + 1, args, per_tok, cst, k->vw * 4), 2 * prog.n, 0, 0);
    return true;
}

/* ---- softmax, argmax ------------------------------------------------------ */

bool cpu_emit_softmax(CpuGen *g, Node *n)
{
    KB *k = &g->k;
    int64_t D = n->shape[n->rank - 1], per_tok, cst;
    ir_numel_per_tok(n, &per_tok, &cst);
    const char *name = cpu_kernel_name(g, n, "");
    kb_begin(k, name);
    LLVMValueRef x = kb_arg(k, 0, k->f32), y = kb_arg(k, 1, k->f32);
    LLVMValueRef mvar = kb_alloca(k, k->f32, NULL), svar = kb_alloca(k, k->f32, NULL);
    Loop lr, l1, l2, l3;
    LLVMValueRef row = kb_loop(k, &lr, k->lo, k->hi, kb_i64(k, 1));
    LLVMValueRef base = kb_mul(k, row, kb_i64(k, D));
    kb_set(k, mvar, kb_f32(k, -INFINITY));
    LLVMValueRef j = kb_loop(k, &l1, kb_i64(k, 0), kb_i64(k, D), kb_i64(k, 1));
    LLVMValueRef v = kb_loads(k, x, kb_add(k, base, j), DT_F32), m = kb_get(k, mvar);
    kb_set(k, mvar, LLVMBuildSelect(k->b, LLVMBuildFCmp(k->b, LLVMRealOGT, v, m, ""), v, m, ""));
    kb_loop_end(k, &l1);
    kb_set(k, svar, kb_f32(k, 0));
    m = kb_get(k, mvar);
    j = kb_loop(k, &l2, kb_i64(k, 0), kb_i64(k, D), kb_i64(k, 1));
    LLVMValueRef d = LLVMBuildFSub(k->b, kb_loads(k, x, kb_add(k, base, j), DT_F32), m, "");
    LLVMValueRef e = kb_call(k, "llvm.exp", k->f32, &d, 1);
    kb_stores(k, y, kb_add(k, base, j), e);
    kb_set(k, svar, LLVMBuildFAdd(k->b, kb_get(k, svar), e, ""));
    kb_loop_end(k, &l2);
    LLVMValueRef inv = LLVMBuildFDiv(k->b, kb_f32(k, 1), kb_get(k, svar), "");
    j = kb_loop(k, &l3, kb_i64(k, 0), kb_i64(k, D), kb_i64(k, 1));
    LLVMValueRef idx = kb_add(k, base, j);
    kb_stores(k, y, idx, LLVMBuildFMul(k->b, kb_loads(k, y, idx, DT_F32), inv, ""));
    kb_loop_end(k, &l3);
    kb_loop_end(k, &lr);
    kb_finish(k);
    int args[] = {bufid(g, n->src[0]), bufid(g, n)};
    set_cost(g, cpu_launch(g, n, name, 2, args, per_tok / D, cst / D, 1), 20 * D, 0, 0);
    return true;
}

/* First index of the largest value of each row. */
bool cpu_emit_argmax(CpuGen *g, Node *n)
{
    KB *k = &g->k;
    Node *x = n->src[0];
    int64_t D = x->shape[x->rank - 1], per_tok, cst;
    ir_numel_per_tok(n, &per_tok, &cst);
    const char *name = cpu_kernel_name(g, n, "");
    kb_begin(k, name);
    LLVMValueRef xp = kb_arg(k, 0, k->f32), y = kb_arg(k, 1, k->i32);
    LLVMValueRef best = kb_alloca(k, k->f32, NULL), at = kb_alloca(k, k->i64, NULL);
    Loop lr, lj;
    LLVMValueRef row = kb_loop(k, &lr, k->lo, k->hi, kb_i64(k, 1));
    LLVMValueRef base = kb_mul(k, row, kb_i64(k, D));
    kb_set(k, best, kb_f32(k, -INFINITY));
    kb_set(k, at, kb_i64(k, 0));
    LLVMValueRef j = kb_loop(k, &lj, kb_i64(k, 0), kb_i64(k, D), kb_i64(k, 1));
    LLVMValueRef v = kb_loads(k, xp, kb_add(k, base, j), DT_F32);
    LLVMValueRef gt = LLVMBuildFCmp(k->b, LLVMRealOGT, v, kb_get(k, best), "");
    kb_set(k, best, LLVMBuildSelect(k->b, gt, v, kb_get(k, best), ""));
    kb_set(k, at, LLVMBuildSelect(k->b, gt, j, kb_get(k, at), ""));
    kb_loop_end(k, &lj);
    kb_stores(k, y, row, LLVMBuildTrunc(k->b, kb_get(k, at), k->i32, ""));
    kb_loop_end(k, &lr);
    kb_finish(k);
    int args[] = {bufid(g, x), bufid(g, n)};
    set_cost(g, cpu_launch(g, n, name, 2, args, per_tok, cst, 1), D, 0, 0);
    return true;
}
