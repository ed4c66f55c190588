/* codegen/cuda/kernels.c — CUDA C templates, one per op and kernel family,
 * instantiated with the node's shapes, dtypes and the parameters pass
 * "select" chose.  Every kernel takes (const RtGpuStep *st, buffers...):
 * the step's T rows start at row st->row0 (0 except for tail launches on the
 * last row alone) and position st->pos0.  Activations are f32; weights are
 * read as stored (f32, f16 or bf16) and widened, with f32 accumulation. */
#include <math.h>
#include <string.h>

#include "codegen/cuda/internal.h"
#include "ir/ir.h"

/* ---- weights ---------------------------------------------------------------- */

typedef struct WType {
    const char *c;        /* C type of one stored element */
    const char *sfx;      /* f32, f16, bf16: picks ldw_/ld8_/pack_ helpers */
} WType;

static bool weight_type(CudaGen *g, const Node *w, WType *t)
{
    switch (w->dt) {
    case DT_F32: *t = (WType){"float", "f32"}; return true;
    case DT_F16: *t = (WType){"u16", "f16"}; return true;
    case DT_BF16: *t = (WType){"u16", "bf16"}; return true;
    default:
        diag_error(g->c->diags, w->loc,
                   "the CUDA target reads f32, f16 or bf16 weights; '%s' is %s (GGUF blocks are dequantized when "
                   "loaded for CUDA)", w->weight ? w->weight : "?", ir_dtype_name(w->dt));
        return false;
    }
}

static void set_grid(RtLaunch *l, int gx, int gy, int gz)
{
    l->grid[0] = gx;
    l->grid[1] = gy;
    l->grid[2] = gz;
}

/* Elements of a row op: `per` per token (or `per` in all, when not per token). */
static void row_extent(const Node *n, int64_t *per, bool *by_tok)
{
    int64_t per_tok, cst;
    ir_numel_per_tok(n, &per_tok, &cst);
    *by_tok = per_tok > 0;
    *per = per_tok > 0 ? per_tok : cst;
    IR_ASSERT(!(per_tok > 0 && cst > 0));
}

/* Ops over rows of D values, a block per row: blockIdx.y is the token (for
 * per-token ops) and blockIdx.x the row within it.  skip: the guard a block
 * returns on; first: the index of the token's first row. */
typedef struct Rows {
    int64_t rows;              /* rows per token, or in all */
    bool by_tok;
    const char *skip, *first;
} Rows;

static Rows rows_of(CudaGen *g, const Node *n, int64_t D)
{
    int64_t per;
    Rows r;
    row_extent(n, &per, &r.by_tok);
    r.rows = per / D;
    r.skip = r.by_tok ? "(int)blockIdx.y >= st->T" : "false";
    r.first = r.by_tok ? arena_printf(g->c->arena, "(size_t)(st->row0 + blockIdx.y) * %lld", (long long)r.rows)
                       : "(size_t)0";
    return r;
}

static void rows_grid(RtLaunch *l, const Rows *r)
{
    set_grid(l, (int)r->rows, 1, 1);
    l->grid_tok[1] = r->by_tok ? 1 : 0;
}

/* ---- embedding, rms_norm ---------------------------------------------------- */

static bool emit_embedding(CudaGen *g, Node *n)
{
    WType w;
    if (!weight_type(g, n->src[0], &w))
        return false;
    int64_t D = n->shape[1];
    KText t;
    FILE *f = cg_text(&t);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(256) KNAME(const RtGpuStep *st, const %s *E, const int *ids, float *Y)\n"
            "{\n"
            "    if ((int)blockIdx.x >= st->T) return;\n"
            "    const size_t row = st->row0 + blockIdx.x, id = (size_t)ids[row];\n"
            "    for (int d = threadIdx.x; d < %lld; d += 256)\n"
            "        Y[row * %lld + d] = ldw_%s(E, id * %lld + d);\n"
            "}\n",
            w.c, (long long)D, (long long)D, w.sfx, (long long)D);
    const char *k = cg_kernel(g, n, &t, "");
    int args[] = {cg_buf(g, n->src[0]), cg_buf(g, n->src[1]), cg_buf(g, n)};
    RtLaunch *l = cg_launch(g, n, k, 3, args, 256);
    l->grid_tok[0] = 1;
    return true;
}

static bool emit_rms_norm(CudaGen *g, Node *n)
{
    WType w;
    if (!weight_type(g, n->src[1], &w))
        return false;
    int64_t D = n->shape[n->rank - 1];
    Rows r = rows_of(g, n, D);
    KText t;
    FILE *f = cg_text(&t);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(256) KNAME(const RtGpuStep *st, const float *X, const %s *W, float *Y)\n"
            "{\n"
            "    __shared__ float sh[32];\n"
            "    if (%s) return;\n"
            "    const size_t row = %s + blockIdx.x;\n"
            "    const float *x = X + row * %lld;\n"
            "    float ss = 0.f;\n"
            "    for (int d = threadIdx.x; d < %lld; d += 256) ss += x[d] * x[d];\n"
            "    ss = block_sum(ss, sh);\n"
            "    const float inv = 1.0f / sqrtf(ss / %lld.0f + %.9ef);\n"
            "    for (int d = threadIdx.x; d < %lld; d += 256)\n"
            "        Y[row * %lld + d] = x[d] * inv * ldw_%s(W, d);\n"
            "}\n",
            w.c, r.skip, r.first, (long long)D, (long long)D, (long long)D, n->a.eps, (long long)D, (long long)D, w.sfx);
    const char *k = cg_kernel(g, n, &t, "");
    int args[] = {cg_buf(g, n->src[0]), cg_buf(g, n->src[1]), cg_buf(g, n)};
    rows_grid(cg_launch(g, n, k, 3, args, 256), &r);
    return true;
}

/* ---- linear ------------------------------------------------------------------- */

/* GEMV: each warp computes `rows` outputs for up to 4 tokens (blockIdx.y picks
 * the group of 4), reading each weight row once with 16-byte loads. */
static const char *gemv_kernel(CudaGen *g, Node *n, const WType *w, const KernelChoice *ch)
{
    int64_t N = n->src[1]->shape[0], K = n->src[1]->shape[1];
    int R = ch->p[0];
    bool vec = ch->p[1];
    KText t;
    FILE *f = cg_text(&t);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(256) KNAME(const RtGpuStep *st, const float *__restrict__ X, "
            "const %s *__restrict__ W, float *Y)\n"
            "{\n"
            "    enum { N = %lld, K = %lld, R = %d };\n"
            "    const int T = st->T, r0 = st->row0, t0 = blockIdx.y * 4;\n"
            "    if (t0 >= T) return;\n"
            "    const int nt = min(4, T - t0), lane = threadIdx.x & 31;\n"
            "    const int n = (blockIdx.x * 8 + (threadIdx.x >> 5)) * R;\n"
            "    if (n >= N) return;\n"
            "    float acc[R][4];\n"
            "#pragma unroll\n"
            "    for (int r = 0; r < R; r++)\n"
            "#pragma unroll\n"
            "        for (int u = 0; u < 4; u++) acc[r][u] = 0.f;\n"
            "    const float *x = X + (size_t)(r0 + t0) * K;\n",
            w->c, (long long)N, (long long)K, R);
    if (vec)
        fprintf(f,
                "#pragma unroll 4\n"
                "    for (int k = lane * 8; k < K; k += 256) {\n"
                "        float wv[R][8];\n"
                "#pragma unroll\n"
                "        for (int r = 0; r < R; r++) {\n"
                "            if (n + r < N) ld8_%s(W, (size_t)(n + r) * K + k, wv[r]);\n"
                "            else for (int j = 0; j < 8; j++) wv[r][j] = 0.f;\n"
                "        }\n"
                "#pragma unroll\n"
                "        for (int u = 0; u < 4; u++) {\n"
                "            if (u < nt) {\n"
                "                const float4 a = *(const float4 *)(x + (size_t)u * K + k);\n"
                "                const float4 b = *(const float4 *)(x + (size_t)u * K + k + 4);\n"
                "#pragma unroll\n"
                "                for (int r = 0; r < R; r++)\n"
                "                    acc[r][u] += wv[r][0] * a.x + wv[r][1] * a.y + wv[r][2] * a.z + wv[r][3] * a.w +\n"
                "                                 wv[r][4] * b.x + wv[r][5] * b.y + wv[r][6] * b.z + wv[r][7] * b.w;\n"
                "            }\n"
                "        }\n"
                "    }\n",
                w->sfx);
    else
        fprintf(f,
                "    for (int k = lane; k < K; k += 32) {\n"
                "        float wv[R];\n"
                "#pragma unroll\n"
                "        for (int r = 0; r < R; r++) wv[r] = n + r < N ? ldw_%s(W, (size_t)(n + r) * K + k) : 0.f;\n"
                "#pragma unroll\n"
                "        for (int u = 0; u < 4; u++)\n"
                "            if (u < nt) {\n"
                "                const float xv = x[(size_t)u * K + k];\n"
                "#pragma unroll\n"
                "                for (int r = 0; r < R; r++) acc[r][u] += wv[r] * xv;\n"
                "            }\n"
                "    }\n",
                w->sfx);
    fprintf(f,
            "#pragma unroll\n"
            "    for (int r = 0; r < R; r++)\n"
            "#pragma unroll\n"
            "        for (int u = 0; u < 4; u++) {\n"
            "            const float v = warp_sum(acc[r][u]);\n"
            "            if (lane == 0 && u < nt && n + r < N) Y[(size_t)(r0 + t0 + u) * N + n + r] = v;\n"
            "        }\n"
            "}\n");
    return cg_kernel(g, n, &t, arena_printf(g->c->arena, "_%s_gemv%d", n->src[1]->name ? n->src[1]->name : "w", R));
}

/* Tensor-core GEMM, C[M,N] = A[M,K] W[N,K]^T: a BM x 128 tile per block of 8
 * warps (2 x 4, each BM/2 x 32), K in steps of 32, double-buffered shared
 * memory (dynamic): W tiles by cp.async, A tiles (f32) through registers,
 * rounded to the weight's 16-bit type as they are stored -- with SPLIT, as
 * two terms hi + lo (lo = a - hi), each multiplied, so the activations keep
 * about 16 bits.  Rows of 40 halves keep the fragment loads free of bank
 * conflicts.  mma.sync m16n8k16, f32 accumulators. */
static int mma_smem(int BM, bool split)
{
    return (split ? 2 : 1) * 2 * BM * 40 * 2 + 2 * 128 * 40 * 2;
}

static const char *mma_kernel(CudaGen *g, Node *n, const KernelChoice *ch)
{
    int64_t N = n->src[1]->shape[0], K = n->src[1]->shape[1];
    int BM = ch->p[0];
    bool split = ch->p[4];
    const char *ty = n->src[1]->dt == DT_BF16 ? "bf16" : "f16";
    KText t;
    FILE *f = cg_text(&t);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(256) KNAME(const RtGpuStep *st, const float *__restrict__ A, "
            "const u16 *__restrict__ W, float *C)\n"
            "{\n"
            "    enum { N = %lld, K = %lld, BM = %d, SPLIT = %d, MT = BM / 32, AV = BM / 32, NK = (K + 31) / 32 };\n"
            "    const int M = st->T, r0 = st->row0, m0 = blockIdx.y * BM, n0 = blockIdx.x * 128;\n"
            "    if (m0 >= M) return;\n"
            "    extern __shared__ __align__(16) u16 smem[];\n"
            "    typedef u16 Tile[BM][40];\n"
            "    typedef u16 BTile[128][40];\n"
            "    Tile *As = (Tile *)smem, *Al = As + 2;                 // [2] hi, [2] lo (SPLIT)\n"
            "    BTile *Bs = (BTile *)(smem + (SPLIT ? 4 : 2) * BM * 40);\n"
            "    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;\n"
            "    const int wm = warp >> 2, wn = warp & 3, gq = lane >> 2, cq = lane & 3;\n"
            "    float acc[MT][4][4];\n"
            "#pragma unroll\n"
            "    for (int i = 0; i < MT; i++)\n"
            "#pragma unroll\n"
            "        for (int j = 0; j < 4; j++)\n"
            "#pragma unroll\n"
            "            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;\n"
            "    float4 ar[AV];\n"
            "#define LOAD_A(kt) \\\n"
            "    for (int j = 0; j < AV; j++) { \\\n"
            "        const int fi = tid + j * 256, r = fi >> 3, col = (fi & 7) * 4, gk = (kt) * 32 + col; \\\n"
            "        ar[j] = (m0 + r < M && gk < K) ? *(const float4 *)(A + (size_t)(r0 + m0 + r) * K + gk) \\\n"
            "                                       : make_float4(0.f, 0.f, 0.f, 0.f); \\\n"
            "    }\n"
            "#define STORE_A(buf) \\\n"
            "    for (int j = 0; j < AV; j++) { \\\n"
            "        const int fi = tid + j * 256, r = fi >> 3, col = (fi & 7) * 4; \\\n"
            "        const uint2 hi = make_uint2(pack_%s(ar[j].x, ar[j].y), pack_%s(ar[j].z, ar[j].w)); \\\n"
            "        *(uint2 *)&As[buf][r][col] = hi; \\\n"
            "        if (SPLIT) { \\\n"
            "            const float2 h0 = unpack_%s(hi.x), h1 = unpack_%s(hi.y); \\\n"
            "            *(uint2 *)&Al[buf][r][col] = make_uint2(pack_%s(ar[j].x - h0.x, ar[j].y - h0.y), \\\n"
            "                                                    pack_%s(ar[j].z - h1.x, ar[j].w - h1.y)); \\\n"
            "        } \\\n"
            "    }\n"
            "#define LOAD_B(buf, kt) \\\n"
            "    for (int j = 0; j < 2; j++) { \\\n"
            "        const int fi = tid + j * 256, r = fi >> 2, col = (fi & 3) * 8, gk = (kt) * 32 + col, nn = n0 + r; \\\n"
            "        const bool ok = nn < N && gk < K; \\\n"
            "        cp_async16(&Bs[buf][r][col], W + (ok ? (size_t)nn * K + gk : 0), ok ? 16 : 0); \\\n"
            "    } \\\n"
            "    cp_async_commit();\n"
            "#define MMA(acc, a, b) \\\n"
            "    asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.%s.%s.f32 {%%0,%%1,%%2,%%3}, \" \\\n"
            "                 \"{%%4,%%5,%%6,%%7}, {%%8,%%9}, {%%0,%%1,%%2,%%3};\\n\" \\\n"
            "                 : \"+f\"(acc[0]), \"+f\"(acc[1]), \"+f\"(acc[2]), \"+f\"(acc[3]) \\\n"
            "                 : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]))\n"
            "    LOAD_A(0);\n"
            "    STORE_A(0);\n"
            "    LOAD_B(0, 0);\n"
            "    cp_async_wait_all();\n"
            "    __syncthreads();\n"
            "    for (int kt = 0; kt < NK; kt++) {\n"
            "        const int cur = kt & 1;\n"
            "        if (kt + 1 < NK) {\n"
            "            LOAD_B(cur ^ 1, kt + 1);\n"
            "            LOAD_A(kt + 1);\n"
            "        }\n"
            "#pragma unroll\n"
            "        for (int kk = 0; kk < 32; kk += 16) {\n"
            "            u32 a[MT][4], al[MT][4], b[4][2];\n"
            "#pragma unroll\n"
            "            for (int i = 0; i < MT; i++) {\n"
            "                const int row = wm * (BM / 2) + i * 16 + gq;\n"
            "                a[i][0] = *(const u32 *)&As[cur][row][kk + 2 * cq];\n"
            "                a[i][1] = *(const u32 *)&As[cur][row + 8][kk + 2 * cq];\n"
            "                a[i][2] = *(const u32 *)&As[cur][row][kk + 2 * cq + 8];\n"
            "                a[i][3] = *(const u32 *)&As[cur][row + 8][kk + 2 * cq + 8];\n"
            "                if (SPLIT) {\n"
            "                    al[i][0] = *(const u32 *)&Al[cur][row][kk + 2 * cq];\n"
            "                    al[i][1] = *(const u32 *)&Al[cur][row + 8][kk + 2 * cq];\n"
            "                    al[i][2] = *(const u32 *)&Al[cur][row][kk + 2 * cq + 8];\n"
            "                    al[i][3] = *(const u32 *)&Al[cur][row + 8][kk + 2 * cq + 8];\n"
            "                }\n"
            "            }\n"
            "#pragma unroll\n"
            "            for (int j = 0; j < 4; j++) {\n"
            "                const int col = wn * 32 + j * 8 + gq;\n"
            "                b[j][0] = *(const u32 *)&Bs[cur][col][kk + 2 * cq];\n"
            "                b[j][1] = *(const u32 *)&Bs[cur][col][kk + 2 * cq + 8];\n"
            "            }\n"
            "#pragma unroll\n"
            "            for (int i = 0; i < MT; i++)\n"
            "#pragma unroll\n"
            "                for (int j = 0; j < 4; j++) {\n"
            "                    MMA(acc[i][j], a[i], b[j]);\n"
            "                    if (SPLIT) MMA(acc[i][j], al[i], b[j]);\n"
            "                }\n"
            "        }\n"
            "        if (kt + 1 < NK) {\n"
            "            STORE_A(cur ^ 1);\n"
            "            cp_async_wait_all();\n"
            "        }\n"
            "        __syncthreads();\n"
            "    }\n"
            "#undef LOAD_A\n"
            "#undef STORE_A\n"
            "#undef LOAD_B\n"
            "#undef MMA\n"
            "#pragma unroll\n"
            "    for (int i = 0; i < MT; i++)\n"
            "#pragma unroll\n"
            "        for (int j = 0; j < 4; j++)\n"
            "#pragma unroll\n"
            "            for (int e = 0; e < 4; e++) {\n"
            "                const int row = m0 + wm * (BM / 2) + i * 16 + gq + (e >> 1) * 8;\n"
            "                const int col = n0 + wn * 32 + j * 8 + 2 * cq + (e & 1);\n"
            "                if (row < M && col < N) C[(size_t)(r0 + row) * N + col] = acc[i][j][e];\n"
            "            }\n"
            "}\n",
            (long long)N, (long long)K, BM, split, ty, ty, ty, ty, ty, ty, ty, ty);
    return cg_kernel(g, n, &t, arena_printf(g->c->arena, "_%s_mma%d%s", n->src[1]->name ? n->src[1]->name : "w", BM,
                                            split ? "s" : ""));
}

static bool emit_linear(CudaGen *g, Node *n)
{
    WType w;
    if (!weight_type(g, n->src[1], &w))
        return false;
    IR_ASSERT(n->nchoice > 0);
    int64_t N = n->src[1]->shape[0];
    int args[] = {cg_buf(g, n->src[0]), cg_buf(g, n->src[1]), cg_buf(g, n)};
    for (int i = 0; i < n->nchoice; i++) {
        const KernelChoice *ch = &n->choice[i];
        RtLaunch *l;
        if (ch->family == KF_GEMV) {
            l = cg_launch(g, n, gemv_kernel(g, n, &w, ch), 3, args, 256);
            set_grid(l, (int)((N + 8 * ch->p[0] - 1) / (8 * ch->p[0])), 1, 1);
            l->grid_tok[1] = 4;
        } else {
            l = cg_launch(g, n, mma_kernel(g, n, ch), 3, args, 256);
            l->smem = mma_smem(ch->p[0], ch->p[4]);
            set_grid(l, (int)((N + 127) / 128), 1, 1);
            l->grid_tok[1] = ch->p[0];
        }
        l->min_T = ch->min_T;
        l->max_T = ch->max_T;
    }
    return true;
}

/* ---- rope ----------------------------------------------------------------------- */

static bool emit_rope(CudaGen *g, Node *n)
{
    int64_t H = n->shape[1], dh = n->shape[2], half = dh / 2;
    double *inv = arena_alloc(g->c->arena, (size_t)half * sizeof *inv);
    ir_rope_inv_freq(&n->a.rope, dh, inv);
    KText t;
    FILE *f = cg_text(&t);
    /* angles in f32, as transformers computes them (inv_freq * position, then cos and sin) */
    fprintf(f, "__constant__ float KNAME_inv[%lld] = {", (long long)half);
    for (int64_t i = 0; i < half; i++)
        fprintf(f, "%s%.9ef", i ? ", " : "", (double)(float)inv[i]);
    fprintf(f,
            "};\n"
            "extern \"C\" __global__ void __launch_bounds__(128) KNAME(const RtGpuStep *st, const float *X, float *Y)\n"
            "{\n"
            "    if ((int)blockIdx.x >= st->T) return;\n"
            "    const int row = st->row0 + blockIdx.x;\n"
            "    const float pos = (float)(st->pos0 + row);\n"
            "    for (int e = threadIdx.x; e < %lld; e += 128) {\n"
            "        const int h = e / %lld, i = e %% %lld;\n"
            "        float sf, cf;\n"
            "        sincosf(pos * KNAME_inv[i], &sf, &cf);\n"
            "        const size_t o = ((size_t)row * %lld + h) * %lld + i;\n"
            "        const float a = X[o], b = X[o + %lld];\n"
            "        Y[o] = a * cf - b * sf;\n"
            "        Y[o + %lld] = b * cf + a * sf;\n"
            "    }\n"
            "}\n",
            (long long)(H * half), (long long)half, (long long)half, (long long)H, (long long)dh, (long long)half,
            (long long)half);
    const char *k = cg_kernel(g, n, &t, "");
    int args[] = {cg_buf(g, n->src[0]), cg_buf(g, n)};
    RtLaunch *l = cg_launch(g, n, k, 2, args, 128);
    l->grid_tok[0] = 1;
    return true;
}

/* ---- attention ------------------------------------------------------------------- */

/* The unified max of FlashDecoding++'s asynchronous softmax: partial sums
 * use exp(s - PHI) with one fixed PHI, so pieces of the context add up
 * without rescaling; a piece whose scores stray more than PHI_RANGE from it
 * is recomputed with its own max (and the combine rescales just that one). */
#define ATTN_PHI 0.0
#define ATTN_PHI_RANGE 60.0

/* One query row of one head against keys [j0, j1) of the cache: 4 warps, a
 * key per warp at a time, lanes split the head dimension. */
static void attn_core(FILE *f, int64_t dh)
{
    int nd = (int)((dh + 31) / 32);
    fprintf(f,
            "    enum { DH = %lld, ND = %d };\n"
            "    __shared__ float sacc[4][DH], sl[4], smax[4];\n"
            "    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
            "    float q[ND], acc[ND], l, mx, phi = %.1ff;\n"
            "    const float *qr = Q + ((size_t)t * HQ + h) * DH;\n"
            "#pragma unroll\n"
            "    for (int i = 0; i < ND; i++) q[i] = lane + 32 * i < DH ? qr[lane + 32 * i] * SCALE : 0.f;\n"
            "    for (int pass = 0; pass < 2; pass++) {\n"
            "        l = 0.f;\n"
            "        mx = NEG_INF;\n"
            "#pragma unroll\n"
            "        for (int i = 0; i < ND; i++) acc[i] = 0.f;\n"
            "        for (int j = j0 + warp; j < j1; j += 4) {\n"
            "            const float *kr = Kc + ((size_t)j * HKV + kvh) * DH, *vr = Vc + ((size_t)j * HKV + kvh) * DH;\n"
            "            float s = 0.f;\n"
            "#pragma unroll\n"
            "            for (int i = 0; i < ND; i++) if (lane + 32 * i < DH) s += q[i] * kr[lane + 32 * i];\n"
            "            s = warp_sum(s);\n"
            "            mx = fmaxf(mx, s);\n"
            "            const float p = expf(s - phi);\n"
            "            l += p;\n"
            "#pragma unroll\n"
            "            for (int i = 0; i < ND; i++) if (lane + 32 * i < DH) acc[i] += p * vr[lane + 32 * i];\n"
            "        }\n"
            "        if (lane == 0) smax[warp] = mx;\n"
            "        __syncthreads();\n"
            "        const float bm = fmaxf(fmaxf(smax[0], smax[1]), fmaxf(smax[2], smax[3]));\n"
            "        __syncthreads();\n"
            "        if (pass == 0 && (bm - phi > %.1ff || bm - phi < -%.1ff)) { phi = bm; continue; }\n"
            "        break;\n"
            "    }\n"
            "#pragma unroll\n"
            "    for (int i = 0; i < ND; i++) if (lane + 32 * i < DH) sacc[warp][lane + 32 * i] = acc[i];\n"
            "    if (lane == 0) sl[warp] = l;\n"
            "    __syncthreads();\n"
            "    const float lt = sl[0] + sl[1] + sl[2] + sl[3];\n",
            (long long)dh, nd, ATTN_PHI, ATTN_PHI_RANGE, ATTN_PHI_RANGE);
}

static void attn_head(FILE *f, const Node *n, const char *out_name)
{
    int64_t hq = n->src[0]->shape[1], hkv = n->src[1]->shape[1];
    double scale = ir_attention_scale(n);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(128) KNAME(const RtGpuStep *st, const float *Q, const float *Kc, "
            "const float *Vc, float *%s)\n"
            "{\n"
            "    enum { HQ = %lld, HKV = %lld };\n"
            "    const float SCALE = %.9ef;\n"
            "    const int T = st->T, pos0 = st->pos0, h = blockIdx.y, t = blockIdx.z, kvh = h / (HQ / HKV);\n"
            "    if (t >= T) return;\n"
            "    const int L = %s;\n",
            out_name, (long long)hq, (long long)hkv, scale, n->a.attn.causal ? "pos0 + t + 1" : "pos0 + T");
}

static int kv_cache(CudaGen *g, const Node *n, int which)
{
    int64_t hkv = n->src[1]->shape[1], dh = n->src[1]->shape[2];
    int id = pt_new_buf(&g->t);
    RtBuf *b = &g->t.bufs[id];
    b->kind = RB_KV;
    b->name = arena_printf(g->c->arena, "%s cache of %%%d (layer %d)", which ? "v" : "k", n->id, n->layer);
    b->dtype = RT_F32;
    b->bytes_per_pos = hkv * dh * 4;
    return id;
}

static bool emit_attention(CudaGen *g, Node *n)
{
    int64_t hq = n->src[0]->shape[1], hkv = n->src[1]->shape[1], dh = n->src[0]->shape[2];
    if (dh > 128) {
        diag_error(g->c->diags, n->loc, "the CUDA attention kernels take head_dim up to 128, this one is %lld",
                   (long long)dh);
        return false;
    }
    int kc = kv_cache(g, n, 0), vc = kv_cache(g, n, 1);
    KText t;
    /* the step's keys and values into the caches at pos0.. */
    FILE *f = cg_text(&t);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(128) KNAME(const RtGpuStep *st, const float *K, const float *V, "
            "float *Kc, float *Vc)\n"
            "{\n"
            "    if ((int)blockIdx.x >= st->T) return;\n"
            "    const size_t src = (size_t)blockIdx.x * %lld, dst = (size_t)(st->pos0 + blockIdx.x) * %lld;\n"
            "    for (int e = threadIdx.x; e < %lld; e += 128) {\n"
            "        Kc[dst + e] = K[src + e];\n"
            "        Vc[dst + e] = V[src + e];\n"
            "    }\n"
            "}\n",
            (long long)(hkv * dh), (long long)(hkv * dh), (long long)(hkv * dh));
    const char *k = cg_kernel(g, n, &t, "_kv_store");
    int sargs[] = {cg_buf(g, n->src[1]), cg_buf(g, n->src[2]), kc, vc};
    RtLaunch *l = cg_launch(g, n, k, 4, sargs, 128);
    l->grid_tok[0] = 1;

    for (int c = 0; c < n->nchoice; c++) {
        const KernelChoice *ch = &n->choice[c];
        if (ch->family == KF_ATTN_SPLIT) {
            int chunk = ch->p[0];
            int64_t per_split = 4 * hq * (dh + 2) * 4;   /* up to 4 rows, HQ heads, acc + ref max + sum */
            if (g->scratch_buf < 0) {
                g->scratch_buf = pt_new_buf(&g->t);
                g->t.bufs[g->scratch_buf].kind = RB_SCRATCH;
                g->t.bufs[g->scratch_buf].name = "split-KV partial results";
                g->t.bufs[g->scratch_buf].dtype = RT_F32;
            }
            int64_t pp = (per_split + chunk - 1) / chunk;
            if (pp > g->scratch_per_pos)
                g->scratch_per_pos = pp;
            if (per_split > g->scratch_const)
                g->scratch_const = per_split;
            f = cg_text(&t);
            attn_head(f, n, "P");
            fprintf(f,
                    "    const int j0 = blockIdx.x * %d, j1 = min(L, j0 + %d);\n"
                    "    if (j0 >= L) return;\n",
                    chunk, chunk);
            attn_core(f, dh);
            fprintf(f,
                    "    float *o = P + (((size_t)blockIdx.x * 4 + t) * HQ + h) * (DH + 2);\n"
                    "    for (int d = threadIdx.x; d < DH; d += 128) o[d] = sacc[0][d] + sacc[1][d] + sacc[2][d] + sacc[3][d];\n"
                    "    if (threadIdx.x == 0) { o[DH] = phi; o[DH + 1] = lt; }\n"
                    "}\n");
            k = cg_kernel(g, n, &t, "_split");
            int aargs[] = {cg_buf(g, n->src[0]), kc, vc, g->scratch_buf};
            l = cg_launch(g, n, k, 4, aargs, 128);
            set_grid(l, 1, (int)hq, 1);
            l->grid_ctx[0] = chunk;
            l->grid_tok[2] = 1;
            l->min_T = ch->min_T;
            l->max_T = ch->max_T;
            /* the pieces, combined */
            f = cg_text(&t);
            fprintf(f,
                    "extern \"C\" __global__ void __launch_bounds__(128) KNAME(const RtGpuStep *st, const float *P, float *O)\n"
                    "{\n"
                    "    enum { HQ = %lld, DH = %lld, CHUNK = %d };\n"
                    "    const int T = st->T, h = blockIdx.x, t = blockIdx.y;\n"
                    "    if (t >= T) return;\n"
                    "    const int L = %s, ns = (L + CHUNK - 1) / CHUNK;\n"
                    "    float m = NEG_INF;\n"
                    "    for (int s = 0; s < ns; s++) m = fmaxf(m, P[(((size_t)s * 4 + t) * HQ + h) * (DH + 2) + DH]);\n"
                    "    float den = 0.f;\n"
                    "    for (int s = 0; s < ns; s++) {\n"
                    "        const float *p = P + (((size_t)s * 4 + t) * HQ + h) * (DH + 2);\n"
                    "        den += p[DH + 1] * expf(p[DH] - m);\n"
                    "    }\n"
                    "    for (int d = threadIdx.x; d < DH; d += 128) {\n"
                    "        float num = 0.f;\n"
                    "        for (int s = 0; s < ns; s++) {\n"
                    "            const float *p = P + (((size_t)s * 4 + t) * HQ + h) * (DH + 2);\n"
                    "            num += p[d] * expf(p[DH] - m);\n"
                    "        }\n"
                    "        O[((size_t)t * HQ + h) * DH + d] = num / den;\n"
                    "    }\n"
                    "}\n",
                    (long long)hq, (long long)dh, chunk, n->a.attn.causal ? "st->pos0 + t + 1" : "st->pos0 + T");
            k = cg_kernel(g, n, &t, "_combine");
            int cargs[] = {g->scratch_buf, cg_buf(g, n)};
            l = cg_launch(g, n, k, 2, cargs, 128);
            set_grid(l, (int)hq, 1, 1);
            l->grid_tok[1] = 1;
            l->min_T = ch->min_T;
            l->max_T = ch->max_T;
        } else {
            /* prefill: 16 queries of one head per block (4 per warp) against tiles of
             * 32 keys in shared memory (a key per lane), online softmax per query */
            int nd = (int)((dh + 31) / 32);
            double scale = ir_attention_scale(n);
            f = cg_text(&t);
            fprintf(f,
                    "extern \"C\" __global__ void __launch_bounds__(128) KNAME(const RtGpuStep *st, const float *Q, "
                    "const float *Kc, const float *Vc, float *O)\n"
                    "{\n"
                    "    enum { HQ = %lld, HKV = %lld, DH = %lld, ND = %d, BQ = 16, BK = 32 };\n"
                    "    const float SCALE = %.9ef;\n"
                    "    __shared__ float Qs[BQ][DH], Ks[BK][DH + 1], Vs[BK][DH];\n"
                    "    const int T = st->T, pos0 = st->pos0, t0 = blockIdx.x * BQ, h = blockIdx.y, kvh = h / (HQ / HKV);\n"
                    "    if (t0 >= T) return;\n"
                    "    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
                    "    for (int e = threadIdx.x; e < BQ * DH; e += 128) {\n"
                    "        const int i = e / DH, d = e %% DH;\n"
                    "        Qs[i][d] = t0 + i < T ? Q[((size_t)(t0 + i) * HQ + h) * DH + d] * SCALE : 0.f;\n"
                    "    }\n"
                    "    float m[4], l[4], acc[4][ND];\n"
                    "    int Lq[4];\n"
                    "#pragma unroll\n"
                    "    for (int i = 0; i < 4; i++) {\n"
                    "        const int t = t0 + warp * 4 + i;\n"
                    "        Lq[i] = t < T ? %s : 0;\n"
                    "        m[i] = NEG_INF;\n"
                    "        l[i] = 0.f;\n"
                    "#pragma unroll\n"
                    "        for (int c = 0; c < ND; c++) acc[i][c] = 0.f;\n"
                    "    }\n"
                    "    const int tl = min(T, t0 + BQ) - 1, Lmax = %s;\n"
                    "    for (int j0 = 0; j0 < Lmax; j0 += BK) {\n"
                    "        __syncthreads();\n"
                    "        for (int e = threadIdx.x; e < BK * DH; e += 128) {\n"
                    "            const int j = e / DH, d = e %% DH;\n"
                    "            const bool ok = j0 + j < Lmax;\n"
                    "            const size_t o = ((size_t)(j0 + j) * HKV + kvh) * DH + d;\n"
                    "            Ks[j][d] = ok ? Kc[o] : 0.f;\n"
                    "            Vs[j][d] = ok ? Vc[o] : 0.f;\n"
                    "        }\n"
                    "        __syncthreads();\n"
                    "        float s[4] = {0.f, 0.f, 0.f, 0.f};\n"
                    "        for (int d = 0; d < DH; d++) {\n"
                    "            const float k = Ks[lane][d];\n"
                    "#pragma unroll\n"
                    "            for (int i = 0; i < 4; i++) s[i] += Qs[warp * 4 + i][d] * k;\n"
                    "        }\n"
                    "        float p[4];\n"
                    "#pragma unroll\n"
                    "        for (int i = 0; i < 4; i++) {\n"
                    "            const bool ok = j0 + lane < Lq[i];\n"
                    "            const float mt = warp_max(ok ? s[i] : NEG_INF);\n"
                    "            const float mn = fmaxf(m[i], mt);\n"
                    "            const float a = mn == NEG_INF ? 1.f : expf(m[i] - mn);\n"
                    "            p[i] = ok ? expf(s[i] - mn) : 0.f;\n"
                    "            l[i] = l[i] * a + warp_sum(p[i]);\n"
                    "            m[i] = mn;\n"
                    "#pragma unroll\n"
                    "            for (int c = 0; c < ND; c++) acc[i][c] *= a;\n"
                    "        }\n"
                    "        for (int j = 0; j < BK; j++) {\n"
                    "            float v[ND];\n"
                    "#pragma unroll\n"
                    "            for (int c = 0; c < ND; c++) v[c] = lane + 32 * c < DH ? Vs[j][lane + 32 * c] : 0.f;\n"
                    "#pragma unroll\n"
                    "            for (int i = 0; i < 4; i++) {\n"
                    "                const float pj = __shfl_sync(0xffffffffu, p[i], j);\n"
                    "#pragma unroll\n"
                    "                for (int c = 0; c < ND; c++) acc[i][c] += pj * v[c];\n"
                    "            }\n"
                    "        }\n"
                    "    }\n"
                    "#pragma unroll\n"
                    "    for (int i = 0; i < 4; i++) {\n"
                    "        const int t = t0 + warp * 4 + i;\n"
                    "        if (t >= T) continue;\n"
                    "#pragma unroll\n"
                    "        for (int c = 0; c < ND; c++)\n"
                    "            if (lane + 32 * c < DH) O[((size_t)t * HQ + h) * DH + lane + 32 * c] = acc[i][c] / l[i];\n"
                    "    }\n"
                    "}\n",
                    (long long)hq, (long long)hkv, (long long)dh, nd, scale,
                    n->a.attn.causal ? "pos0 + t + 1" : "pos0 + T", n->a.attn.causal ? "pos0 + tl + 1" : "pos0 + T");
            k = cg_kernel(g, n, &t, "_tiles");
            int aargs[] = {cg_buf(g, n->src[0]), kc, vc, cg_buf(g, n)};
            l = cg_launch(g, n, k, 4, aargs, 128);
            set_grid(l, 1, (int)hq, 1);
            l->grid_tok[0] = 16;
            l->min_T = ch->min_T;
            l->max_T = ch->max_T;
        }
    }
    return true;
}

/* ---- elementwise, softmax, argmax ------------------------------------------------ */

static const char *ew_expr(CudaGen *g, const EwProg *p)
{
    const char *stack[IR_MAX_EW];
    int sp = 0;
    for (int i = 0; i < p->n; i++) {
        switch ((EwCode)p->code[i]) {
        case EW_LOAD: stack[sp++] = arena_printf(g->c->arena, "X%d[i]", p->arg[i]); break;
        case EW_SILU: stack[sp - 1] = arena_printf(g->c->arena, "silu(%s)", stack[sp - 1]); break;
        case EW_ADD: sp--; stack[sp - 1] = arena_printf(g->c->arena, "(%s + %s)", stack[sp - 1], stack[sp]); break;
        case EW_SUB: sp--; stack[sp - 1] = arena_printf(g->c->arena, "(%s - %s)", stack[sp - 1], stack[sp]); break;
        case EW_MUL: sp--; stack[sp - 1] = arena_printf(g->c->arena, "(%s * %s)", stack[sp - 1], stack[sp]); break;
        }
    }
    IR_ASSERT(sp == 1);
    return stack[0];
}

static bool emit_elementwise(CudaGen *g, Node *n)
{
    EwProg prog;
    ir_ew_program(n, &prog);
    int64_t per;
    bool by_tok;
    row_extent(n, &per, &by_tok);
    KText t;
    FILE *f = cg_text(&t);
    fprintf(f, "extern \"C\" __global__ void __launch_bounds__(256) KNAME(const RtGpuStep *st");
    for (int i = 0; i < n->nsrc; i++)
        fprintf(f, ", const float *X%d", i);
    fprintf(f,
            ", float *Y)\n"
            "{\n"
            "    const int e = blockIdx.x * 256 + threadIdx.x;\n"
            "    if (e >= %lld%s) return;\n"
            "    const size_t i = %s + e;\n"
            "    Y[i] = %s;\n"
            "}\n",
            (long long)per, by_tok ? " || (int)blockIdx.y >= st->T" : "",
            by_tok ? arena_printf(g->c->arena, "(size_t)(st->row0 + blockIdx.y) * %lld", (long long)per) : "(size_t)0",
            ew_expr(g, &prog));
    const char *k = cg_kernel(g, n, &t, "");
    int args[IR_MAX_SRC + 1];
    for (int i = 0; i < n->nsrc; i++)
        args[i] = cg_buf(g, n->src[i]);
    args[n->nsrc] = cg_buf(g, n);
    RtLaunch *l = cg_launch(g, n, k, n->nsrc + 1, args, 256);
    set_grid(l, (int)((per + 255) / 256), 1, 1);
    l->grid_tok[1] = by_tok ? 1 : 0;
    return true;
}

static bool emit_softmax(CudaGen *g, Node *n)
{
    int64_t D = n->shape[n->rank - 1];
    Rows r = rows_of(g, n, D);
    KText t;
    FILE *f = cg_text(&t);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(256) KNAME(const RtGpuStep *st, const float *X, float *Y)\n"
            "{\n"
            "    __shared__ float sh[32];\n"
            "    if (%s) return;\n"
            "    const size_t row = %s + blockIdx.x;\n"
            "    const float *x = X + row * %lld;\n"
            "    float m = NEG_INF;\n"
            "    for (int d = threadIdx.x; d < %lld; d += 256) m = fmaxf(m, x[d]);\n"
            "    m = block_max(m, sh);\n"
            "    float s = 0.f;\n"
            "    for (int d = threadIdx.x; d < %lld; d += 256) s += expf(x[d] - m);\n"
            "    s = block_sum(s, sh);\n"
            "    for (int d = threadIdx.x; d < %lld; d += 256) Y[row * %lld + d] = expf(x[d] - m) / s;\n"
            "}\n",
            r.skip, r.first, (long long)D, (long long)D, (long long)D, (long long)D, (long long)D);
    const char *k = cg_kernel(g, n, &t, "");
    int args[] = {cg_buf(g, n->src[0]), cg_buf(g, n)};
    rows_grid(cg_launch(g, n, k, 2, args, 256), &r);
    return true;
}

static bool emit_argmax(CudaGen *g, Node *n)
{
    const Node *x = n->src[0];
    int64_t D = x->shape[x->rank - 1];
    Rows r = rows_of(g, x, D);
    KText t;
    FILE *f = cg_text(&t);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(256) KNAME(const RtGpuStep *st, const float *X, int *Y)\n"
            "{\n"
            "    __shared__ float sv[256];\n"
            "    __shared__ int si[256];\n"
            "    if (%s) return;\n"
            "    const size_t row = %s + blockIdx.x;\n"
            "    const float *x = X + row * %lld;\n"
            "    float bv = NEG_INF;\n"
            "    int bi = 0;\n"
            "    for (int d = threadIdx.x; d < %lld; d += 256) if (x[d] > bv) { bv = x[d]; bi = d; }\n"
            "    sv[threadIdx.x] = bv;\n"
            "    si[threadIdx.x] = bi;\n"
            "    __syncthreads();\n"
            "    for (int s = 128; s; s >>= 1) {\n"
            "        if ((int)threadIdx.x < s) {\n"
            "            const float ov = sv[threadIdx.x + s];\n"
            "            const int oi = si[threadIdx.x + s];\n"
            "            if (ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < si[threadIdx.x])) {\n"
            "                sv[threadIdx.x] = ov;\n"
            "                si[threadIdx.x] = oi;\n"
            "            }\n"
            "        }\n"
            "        __syncthreads();\n"
            "    }\n"
            "    if (threadIdx.x == 0) Y[row] = si[0];\n"
            "}\n",
            r.skip, r.first, (long long)D, (long long)D);
    const char *k = cg_kernel(g, n, &t, "");
    int args[] = {cg_buf(g, x), cg_buf(g, n)};
    rows_grid(cg_launch(g, n, k, 2, args, 256), &r);
    return true;
}

bool cuda_emit_node(CudaGen *g, Node *n)
{
    switch (n->op) {
    case OP_INPUT: case OP_WEIGHT: case OP_SPLIT_HEADS: case OP_MERGE_HEADS: return true;
    case OP_EMBEDDING: return emit_embedding(g, n);
    case OP_RMS_NORM: return emit_rms_norm(g, n);
    case OP_LINEAR: return emit_linear(g, n);
    case OP_ROPE: return emit_rope(g, n);
    case OP_ATTENTION: return emit_attention(g, n);
    case OP_SILU: case OP_ADD: case OP_SUB: case OP_MUL: case OP_FUSED: return emit_elementwise(g, n);
    case OP_SOFTMAX: return emit_softmax(g, n);
    case OP_ARGMAX: return emit_argmax(g, n);
    case OP_COUNT: break;
    }
    IR_BUG("no CUDA kernel for op %s", ir_op_name(n->op));
}
