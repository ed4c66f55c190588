/* codegen/cuda/kernels.c — CUDA C templates, one per op and kernel family,
 * instantiated with the node's shapes, dtypes and the parameters pass
 * "select" chose.  Every kernel takes (const RtGpuStep *st, buffers...):
 * the step's T rows start at row st->row0 (0 except for tail launches on the
 * last row alone) and position st->pos0.  Activations are f32; weights are
 * read as stored (f32, f16 or bf16) and widened, with f32 accumulation. */
#include <math.h>
#include <stdlib.h>
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

/* half: the rows stored as f16 (select: y_f16, for a wgmma GEMM) */
static const char *rms_norm_kernel(CudaGen *g, const Node *n, const WType *w, const Rows *r, bool half)
{
    int64_t D = n->shape[n->rank - 1];
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
            "        %s[row * %lld + d] = %sx[d] * inv * ldw_%s(W, d)%s;\n"
            "}\n",
            w->c, r->skip, r->first, (long long)D, (long long)D, (long long)D, n->a.eps, (long long)D,
            half ? "((u16 *)Y)" : "Y", (long long)D, half ? "f2h(" : "", w->sfx, half ? ")" : "");
    return cg_kernel(g, n, &t, half ? "_h" : "");
}

static bool emit_rms_norm(CudaGen *g, Node *n)
{
    WType w;
    if (!weight_type(g, n->src[1], &w))
        return false;
    Rows r = rows_of(g, n, n->shape[n->rank - 1]);
    int args[] = {cg_buf(g, n->src[0]), cg_buf(g, n->src[1]), cg_buf(g, n)};
    if (!n->nchoice) {
        rows_grid(cg_launch(g, n, rms_norm_kernel(g, n, &w, &r, false), 3, args, 256), &r);
        return true;
    }
    for (int i = 0; i < n->nchoice; i++)   /* select folded it into its reader's GEMVs: launch it for the rest */
        if (n->choice[i].family == KF_NORM_ROWS) {
            RtLaunch *l = cg_launch(g, n, rms_norm_kernel(g, n, &w, &r, n->choice[i].y_f16), 3, args, 256);
            rows_grid(l, &r);
            l->min_T = n->choice[i].min_T;
            l->max_T = n->choice[i].max_T;
        }
    return true;
}

/* ---- linear ------------------------------------------------------------------- */

/* What one linear launch computes (pass "epilogue"): a plain linear; a lead
 * with the linears grouped with it (parts, each with its own weight, width
 * and output, picked by blockIdx.x); or a linear_ew: nw products of one
 * width, combined as they are stored by its elementwise program, which also
 * reads the operands E. */
typedef struct LinJob {
    const Node *n;
    int nparts, nw, ne;
    const Node *part[IR_MAX_GROUP];   /* the nodes whose outputs the launch writes */
    const Node *w[IR_MAX_SRC];     /* a weight per part (groups), or the nw products' weights */
    const Node *e[IR_MAX_SRC];
    const EwProg *prog;            /* NULL: store the product */
    int64_t N[IR_MAX_GROUP], K;
    WType wt;
    const Node *norm;              /* the rms_norm that the GEMV variants fold in (select: KF_NORM_IN_GEMV) */
    WType gt;                      /* its weight's type */
} LinJob;

static bool lin_job(CudaGen *g, Node *n, LinJob *j)
{
    *j = (LinJob){.n = n, .K = n->src[1]->shape[1], .nw = 1};
    if (n->op == OP_LINEAR_EW) {
        j->nparts = 1;
        j->part[0] = n;
        j->N[0] = n->src[1]->shape[0];
        j->nw = n->a.lew.nw;
        for (int i = 0; i < j->nw; i++)
            j->w[i] = n->src[1 + i];
        for (int i = 1 + j->nw; i < n->nsrc; i++)
            j->e[j->ne++] = n->src[i];
        j->prog = &n->a.lew.ew;
    } else {
        j->nparts = ir_group(g->c->graph, n, j->part);
        for (int i = 0; i < j->nparts; i++) {
            j->w[i] = j->part[i]->src[1];
            j->N[i] = j->part[i]->src[1]->shape[0];
        }
    }
    const Node *x = n->src[0];
    if (x->op == OP_RMS_NORM && x->nchoice > 0) {
        j->norm = x;
        if (!weight_type(g, x->src[1], &j->gt))
            return false;
    }
    return weight_type(g, n->src[1], &j->wt);
}

static int lin_nweights(const LinJob *j)
{
    return j->nparts > 1 ? j->nparts : j->nw;
}

/* The buffers a launch takes: X (with a folded norm: its input, then its
 * weight G), the weights, E, the outputs. */
static int lin_args(CudaGen *g, const LinJob *j, bool norm, int *args)
{
    int k = 0;
    if (norm) {
        args[k++] = cg_buf(g, j->norm->src[0]);
        args[k++] = cg_buf(g, j->norm->src[1]);
    } else {
        args[k++] = cg_buf(g, j->n->src[0]);
    }
    for (int i = 0; i < lin_nweights(j); i++)
        args[k++] = cg_buf(g, j->w[i]);
    for (int i = 0; i < j->ne; i++)
        args[k++] = cg_buf(g, j->e[i]);
    for (int i = 0; i < j->nparts; i++)
        args[k++] = cg_buf(g, j->part[i]);
    return k;
}

/* min_blocks > 0: registers for that many blocks per SM (__launch_bounds__);
 * scratch: the K-split GEMM's counters and partial sums (Sc) last. */
static void lin_signature(FILE *f, const LinJob *j, const char *wc, bool norm, int min_blocks, bool scratch)
{
    if (min_blocks > 0)
        fprintf(f, "extern \"C\" __global__ void __launch_bounds__(256, %d) KNAME(const RtGpuStep *st, "
                   "const float *__restrict__ X", min_blocks);
    else
        fprintf(f, "extern \"C\" __global__ void __launch_bounds__(256) KNAME(const RtGpuStep *st, const float *__restrict__ X");
    if (norm)
        fprintf(f, ", const %s *__restrict__ G", j->gt.c);
    for (int i = 0; i < lin_nweights(j); i++)
        fprintf(f, ", const %s *__restrict__ W%d", wc, i);
    for (int i = 0; i < j->ne; i++)
        fprintf(f, ", const float *E%d", i);
    for (int i = 0; i < j->nparts; i++)
        fprintf(f, ", float *Y%d", i);
    fprintf(f, "%s)\n{\n", scratch ? ", float *Sc" : "");
}

/* Blocks of one part: its width over the columns a block covers. */
static int lin_blocks(int64_t N, int per_block)
{
    return (int)((N + per_block - 1) / per_block);
}

/* bx (the block within its part, from blockIdx.`dim`), N, Y and Wv[NW] for
 * this block. */
static void lin_pick_part(FILE *f, const LinJob *j, const char *wc, int per_block, char dim)
{
    if (j->nparts == 1) {
        fprintf(f, "    const int bx = blockIdx.%c, N = %lld;\n    float *const Y = Y0;\n    const %s *const Wv[NW] = {W0",
                dim, (long long)j->N[0], wc);
        for (int i = 1; i < j->nw; i++)
            fprintf(f, ", W%d", i);
        fprintf(f, "};\n");
        return;
    }
    fprintf(f, "    int bx = blockIdx.%c, N;\n    float *Y;\n    const %s *Wp;\n", dim, wc);
    int first = 0;
    for (int i = 0; i < j->nparts; i++) {
        int nb = lin_blocks(j->N[i], per_block);
        if (i + 1 < j->nparts)
            fprintf(f, "    %sif (bx < %d) { bx -= %d; N = %lld; Wp = W%d; Y = Y%d; }\n", i ? "else " : "", first + nb,
                    first, (long long)j->N[i], i, i);
        else
            fprintf(f, "    else { bx -= %d; N = %lld; Wp = W%d; Y = Y%d; }\n", first, (long long)j->N[i], i, i);
        first += nb;
    }
    fprintf(f, "    const %s *const Wv[NW] = {Wp};\n", wc);
}

static int lin_grid(const LinJob *j, int per_block)
{
    int blocks = 0;
    for (int i = 0; i < j->nparts; i++)
        blocks += lin_blocks(j->N[i], per_block);
    return blocks;
}

static const char *ew_expr(CudaGen *g, const EwProg *p, int nw, const char *idx);

/* The value stored at Y[i] from the products v[0..NW-1]; regs: the operands
 * E as the GEMV loaded them early, ev[e][r][u]. */
static const char *lin_value(CudaGen *g, const LinJob *j, bool regs)
{
    return j->prog ? ew_expr(g, j->prog, j->nw, regs ? NULL : "i") : "v[0]";
}

/* A decode GEMV may load its operands E (the residual) before pdl_wait when
 * each was written two launches back or more with a GEMV between: a GEMV
 * asks for the next launch only after its own pdl_wait, so by the time this
 * one's blocks start, every launch before that GEMV has completed (each
 * kernel's blocks all pass pdl_wait, so a launch completes only after the
 * one before it).  The loads bypass L1 (__ldcg). */
static bool lin_early_e(CudaGen *g, const LinJob *j, const KernelChoice *ch)
{
    if (!j->ne || ch->family != KF_GEMV || ch->max_T == 0 || ch->max_T > 4)
        return false;
    const Graph *gr = g->c->graph;
    for (int e = 0; e < j->ne; e++) {
        bool between = false;
        for (int i = j->e[e]->id + 1; i < j->n->id && !between; i++) {
            const Node *m = gr->nodes[i];
            between = (m->op == OP_LINEAR || m->op == OP_LINEAR_EW) && !m->lead && m->nchoice > 0 &&
                      m->choice[0].family == KF_GEMV && m->choice[0].max_T >= ch->max_T;
        }
        if (!between)
            return false;
    }
    return true;
}

static const char *lin_suffix(CudaGen *g, const LinJob *j, const char *kind, int param, const char *more)
{
    const Node *w = j->w[0];
    const char *name = w->name ? w->name : "w";
    const char *what = j->nparts > 1 ? "_group" : j->prog ? "_ew" : "";
    return arena_printf(g->c->arena, "_%s%s_%s%d%s", name, what, kind, param, more);
}

/* The plain (f16, bf16, f32) weights of the `nth` linear launch after node
 * n, up to 4, and how many bytes of each to pull into L2 so that they add up
 * to at most `kb` KB: decode attention's lookahead (select: ATTN_SPLIT's p[2]). */
static int ahead_weights(CudaGen *g, const Node *n, int nth, int kb, int *bufs, int64_t *bytes)
{
    const Graph *gr = g->c->graph;
    const Node *target = NULL;
    for (int i = n->id + 1, seen = 0; i < gr->n && !target; i++) {
        const Node *m = gr->nodes[i];
        if ((m->op == OP_LINEAR || m->op == OP_LINEAR_EW) && !m->lead && ++seen == nth)
            target = m;
    }
    if (!target)
        return 0;
    const Node *w[IR_MAX_GROUP + 4];
    int nw = 0;
    if (target->op == OP_LINEAR_EW)
        for (int q = 0; q < target->a.lew.nw && nw < 4; q++)
            w[nw++] = target->src[1 + q];
    else {
        const Node *parts[IR_MAX_GROUP];
        int np = ir_group(gr, target, parts);
        for (int q = 0; q < np && nw < 4; q++)
            w[nw++] = parts[q]->src[1];
    }
    int k = 0;
    for (int q = 0; q < nw; q++) {
        int esz = w[q]->dt == DT_F32 ? 4 : w[q]->dt == DT_F16 || w[q]->dt == DT_BF16 ? 2 : 0;
        if (!esz || w[q]->op != OP_WEIGHT)
            continue;
        int64_t all = w[q]->shape[0] * w[q]->shape[1] * esz, share = ((int64_t)kb << 10) / nw / 128 * 128;
        bufs[k] = cg_buf(g, w[q]);
        bytes[k++] = share < all ? share : all / 128 * 128;
    }
    return k;
}

/* The lookahead's loop: lines of 128 bytes of P0.. spread over every thread
 * of the grid (before pdl_wait: the weights do not depend on the kernel before). */
static void emit_ahead(FILE *f, int na, const int64_t *bytes)
{
    fprintf(f, "    {\n"
               "        const size_t nb = (size_t)gridDim.x * gridDim.y * gridDim.z * blockDim.x;\n"
               "        const size_t b = (((size_t)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;\n");
    for (int a = 0; a < na; a++)
        fprintf(f, "        for (size_t c = b; c < %lldu; c += nb) prefetch_l2(P%d + c * 128);\n", (long long)(bytes[a] / 128), a);
    fprintf(f, "    }\n");
}

/* GEMV: each warp computes `rows` outputs (of every product) for up to 4
 * tokens (blockIdx.y picks the group of 4), reading each weight row once
 * with 16-byte loads. */
static const char *gemv_kernel(CudaGen *g, const LinJob *j, const KernelChoice *ch)
{
    int R = ch->p[0], S = ir_gemv_warps_per_row(ch);   /* S warps share a row (K split S ways) */
    bool vec = ch->p[1], norm = j->norm != NULL, early = lin_early_e(g, j, ch) && !getenv("MODELC_NO_EARLY_E");
    IR_ASSERT(S == 1 || (vec && 8 % S == 0));
    /* loads in flight per lane and row (select: gemv_batch) */
    int un = ch->p[3] > 0 ? ch->p[3] : j->nw * R == 1 ? 8 : 2;
    IR_ASSERT(un >= 2 && un <= 8);
    KText t;
    FILE *f = cg_text(&t);
    /* two rows or products per warp: registers for the blocks per SM that select counted on (2 loads:
       4 blocks, 64 registers; ptxas takes 76-90 unbounded, 2-3 blocks).  Not for one row: bounded,
       ptxas hoists more and spills */
    lin_signature(f, j, j->wt.c, norm, ir_gemv_min_blocks(un), false);
    fprintf(f, "    enum { K = %lld, R = %d, NW = %d, S = %d, PF = %d };\n", (long long)j->K, R, j->nw, S,
            ch->p[4] > 0 ? ch->p[4] : ch->p[4] < 0 ? 0 : 128);
    lin_pick_part(f, j, j->wt.c, 8 * R / S, 'x');
    /* the weights do not depend on the kernel before: start pulling the first PF lines of 128
       bytes of this warp's rows into L2 (select: gemv_prefetch, what the L2 holds) before waiting
       for it.  The next kernel may start once every block is past its loads (pdl_launch after the
       loop): one kernel ahead */
    fprintf(f,
            "    const int T = st->T, r0 = st->row0, t0 = blockIdx.y * 4;\n"
            "    const int nt = min(4, T - t0), lane = threadIdx.x & 31, ks = (threadIdx.x >> 5) %% S;\n"
            "    {\n"
            "        const int n = (bx * (8 / S) + (threadIdx.x >> 5) / S) * R;\n"
            "        enum { LINES = (K * (int)sizeof(Wv[0][0]) + 127) / 128 };\n"
            "#pragma unroll\n"
            "        for (int q = 0; q < NW; q++)\n"
            "#pragma unroll\n"
            "            for (int r = 0; r < R; r++)\n"
            "                if (t0 == 0 && n + r < N)\n"
            "                    for (int c = lane + 32 * ks; c < LINES && c < PF; c += 32 * S)\n"
            "                        prefetch_l2((const char *)(Wv[q] + (size_t)(n + r) * K) + c * 128);\n"
            "    }\n");
    if (early) {   /* the epilogue's operands, written launches ago (lin_early_e): off the path after the loop */
        fprintf(f, "    float ev[%d][R][4];\n"
                   "    {\n"
                   "        const int n = (bx * (8 / S) + (threadIdx.x >> 5) / S) * R;\n"
                   "#pragma unroll\n"
                   "        for (int r = 0; r < R; r++)\n"
                   "#pragma unroll\n"
                   "            for (int u = 0; u < 4; u++) {\n"
                   "                const bool on = lane == 0 && ks == 0 && u < nt && n + r < N;\n"
                   "                const size_t i = (size_t)(r0 + t0 + u) * N + n + r;\n",
                j->ne);
        for (int e = 0; e < j->ne; e++)
            fprintf(f, "                ev[%d][r][u] = on ? __ldcg(E%d + i) : 0.f;\n", e, e);
        fprintf(f, "            }\n"
                   "    }\n");
    }
    fprintf(f,
            "    pdl_wait();\n"
            "    if (t0 >= T) return;\n"
            "    const float *x = X + (size_t)(r0 + t0) * K;\n");
    if (norm)   /* the folded rms_norm: each token's 1/rms, by the whole block */
        fprintf(f,
                "    __shared__ float sh[32];\n"
                "    float inv[4];\n"
                "#pragma unroll\n"
                "    for (int u = 0; u < 4; u++) {\n"
                "        float ss = 0.f;\n"
                "        if (u < nt)\n"
                "%s"
                "        inv[u] = u < nt ? 1.0f / sqrtf(block_sum(ss, sh) / %lld.0f + %.9ef) : 0.f;\n"
                "    }\n",
                vec ? "            for (int k = threadIdx.x * 4; k < K; k += 1024) {\n"
                      "                const float4 a = *(const float4 *)(x + (size_t)u * K + k);\n"
                      "                ss += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;\n"
                      "            }\n"
                    : "            for (int k = threadIdx.x; k < K; k += 256) ss += x[(size_t)u * K + k] * x[(size_t)u * K + k];\n",
                (long long)j->K, j->norm->a.eps);
    fprintf(f,
            "    const int n = (bx * (8 / S) + (threadIdx.x >> 5) / S) * R;\n"
            "    if (S == 1 && n >= N) return;   /* with S > 1 every warp reaches the reduction */\n"
            "    float acc[NW][R][4];\n"
            "#pragma unroll\n"
            "    for (int q = 0; q < NW; q++)\n"
            "#pragma unroll\n"
            "        for (int r = 0; r < R; r++)\n"
            "#pragma unroll\n"
            "            for (int u = 0; u < 4; u++) acc[q][r][u] = 0.f;\n");
    if (vec)   /* UN 16-byte loads per lane and row issued before any is used */
        fprintf(f,
                "    enum { UN = %d };\n"
                "    for (int k0 = lane * 8 + ks * 256; k0 < K; k0 += 256 * UN * S) {\n"
                "        Raw8 raw[UN][NW][R];\n"
                "#pragma unroll\n"
                "        for (int i = 0; i < UN; i++)\n"
                "#pragma unroll\n"
                "            for (int q = 0; q < NW; q++)\n"
                "#pragma unroll\n"
                "                for (int r = 0; r < R; r++)\n"
                "                    if (k0 + i * 256 * S < K && n + r < N)\n"
                "                        ldr8_%s(Wv[q], (size_t)(n + r) * K + k0 + i * 256 * S, raw[i][q][r]);\n"
                "                    else raw[i][q][r] = Raw8{};\n"
                "#pragma unroll\n"
                "        for (int i = 0; i < UN; i++) {\n"
                "            const int k = k0 + i * 256 * S;\n"
                "            if (k >= K) break;\n"
                "            float wv[NW][R][8];\n"
                "#pragma unroll\n"
                "            for (int q = 0; q < NW; q++)\n"
                "#pragma unroll\n"
                "                for (int r = 0; r < R; r++) cvt8_%s(raw[i][q][r], wv[q][r]);\n"
                "%s"
                "#pragma unroll\n"
                "            for (int u = 0; u < 4; u++) {\n"
                "                if (u < nt) {\n"
                "                    float4 a = *(const float4 *)(x + (size_t)u * K + k);\n"
                "                    float4 b = *(const float4 *)(x + (size_t)u * K + k + 4);\n"
                "%s"
                "#pragma unroll\n"
                "                    for (int q = 0; q < NW; q++)\n"
                "#pragma unroll\n"
                "                        for (int r = 0; r < R; r++)\n"
                "                            acc[q][r][u] += wv[q][r][0] * a.x + wv[q][r][1] * a.y + wv[q][r][2] * a.z +\n"
                "                                            wv[q][r][3] * a.w + wv[q][r][4] * b.x + wv[q][r][5] * b.y +\n"
                "                                            wv[q][r][6] * b.z + wv[q][r][7] * b.w;\n"
                "                }\n"
                "            }\n"
                "        }\n"
                "    }\n",
                un, j->wt.sfx, j->wt.sfx,
                norm ? arena_printf(g->c->arena, "            float gv[8];\n            ld8_%s(G, k, gv);\n", j->gt.sfx) : "",
                norm ? "                    a.x *= gv[0] * inv[u]; a.y *= gv[1] * inv[u]; a.z *= gv[2] * inv[u]; a.w *= gv[3] * inv[u];\n"
                       "                    b.x *= gv[4] * inv[u]; b.y *= gv[5] * inv[u]; b.z *= gv[6] * inv[u]; b.w *= gv[7] * inv[u];\n"
                     : "");
    else
        fprintf(f,
                "    for (int k = lane; k < K; k += 32) {\n"
                "        float wv[NW][R];\n"
                "#pragma unroll\n"
                "        for (int q = 0; q < NW; q++)\n"
                "#pragma unroll\n"
                "            for (int r = 0; r < R; r++) wv[q][r] = n + r < N ? ldw_%s(Wv[q], (size_t)(n + r) * K + k) : 0.f;\n"
                "#pragma unroll\n"
                "        for (int u = 0; u < 4; u++)\n"
                "            if (u < nt) {\n"
                "                const float xv = x[(size_t)u * K + k]%s;\n"
                "#pragma unroll\n"
                "                for (int q = 0; q < NW; q++)\n"
                "#pragma unroll\n"
                "                    for (int r = 0; r < R; r++) acc[q][r][u] += wv[q][r] * xv;\n"
                "            }\n"
                "    }\n",
                j->wt.sfx, norm ? arena_printf(g->c->arena, " * ldw_%s(G, k) * inv[u]", j->gt.sfx) : "");
    fprintf(f, "    pdl_launch();\n");
    if (S > 1)   /* the S warps of a row: each one's sums through shared memory, the first adds them */
        fprintf(f,
                "    __shared__ float red[8][NW][R][4];\n"
                "#pragma unroll\n"
                "    for (int q = 0; q < NW; q++)\n"
                "#pragma unroll\n"
                "        for (int r = 0; r < R; r++)\n"
                "#pragma unroll\n"
                "            for (int u = 0; u < 4; u++) {\n"
                "                const float v = warp_sum(acc[q][r][u]);\n"
                "                if (lane == 0) red[threadIdx.x >> 5][q][r][u] = v;\n"
                "            }\n"
                "    __syncthreads();\n"
                "    if (ks != 0 || n >= N) return;\n"
                "#pragma unroll\n"
                "    for (int q = 0; q < NW; q++)\n"
                "#pragma unroll\n"
                "        for (int r = 0; r < R; r++)\n"
                "#pragma unroll\n"
                "            for (int u = 0; u < 4; u++) {\n"
                "                float v = 0.f;\n"
                "#pragma unroll\n"
                "                for (int w = 0; w < S; w++) v += red[(threadIdx.x >> 5) + w][q][r][u];\n"
                "                acc[q][r][u] = v;\n"
                "            }\n");
    fprintf(f,
            "#pragma unroll\n"
            "    for (int r = 0; r < R; r++)\n"
            "#pragma unroll\n"
            "        for (int u = 0; u < 4; u++) {\n"
            "            float v[NW];\n"
            "#pragma unroll\n"
            "            for (int q = 0; q < NW; q++) v[q] = %s;\n"
            "            if (lane == 0 && u < nt && n + r < N) {\n"
            "                const size_t i = (size_t)(r0 + t0 + u) * N + n + r;\n"
            "                Y[i] = %s;\n"
            "            }\n"
            "        }\n"
            "}\n",
            S > 1 ? "acc[q][r][u]" : "warp_sum(acc[q][r][u])", lin_value(g, j, early));
    /* the name tells the variants apart: warps per row, and the loads and prefetch select chose */
    const char *more = arena_printf(g->c->arena, "%s%s%s", S > 1 ? arena_printf(g->c->arena, "s%d", S) : "",
                                    ch->p[3] > 0 ? arena_printf(g->c->arena, "b%d", ch->p[3]) : "",
                                    ch->p[4] ? arena_printf(g->c->arena, "p%d", ch->p[4] > 0 ? ch->p[4] : 0) : "");
    return cg_kernel(g, j->n, &t, lin_suffix(g, j, "gemv", R, more));
}

/* The GEMMs' f32 activation loader, LOAD_A(kt): step kt's `bk` columns of the
 * block's rows into the registers ar[] (float4s, `chunks` per thread of 256),
 * zeros past M and K; `ldg` through the read-only cache. */
static void mma_load_a_f32(FILE *f, const char *chunks, int bk, bool ldg)
{
    int per_row = bk / 4;   /* float4s of a row */
    fprintf(f,
            "#define LOAD_A(kt) \\\n"
            "    for (int c = 0; c < %s; c++) { \\\n"
            "        const int fi = tid + c * 256, r = fi >> %d, col = (fi & %d) * 4, gk = (kt) * %d + col; \\\n"
            "        ar[c] = (m0 + r < M && gk < K) ? %s(const float4 *)(X + (size_t)(r0 + m0 + r) * K + gk)%s \\\n"
            "                                       : make_float4(0.f, 0.f, 0.f, 0.f); \\\n"
            "    }\n",
            chunks, per_row == 8 ? 3 : 4, per_row - 1, bk, ldg ? "__ldg(" : "*", ldg ? ")" : "");
}

/* The GEMMs' weight tile loader, LOAD_B(buf, kt): step kt's 32 columns of the
 * block's weight rows (BN of each product) into Bs[buf] by cp.async, 16
 * bytes per thread and chunk, zeros past N and K; one commit group per call.
 * `guard`: steps past NK commit an empty group (the multi-stage pipeline). */
static void mma_load_b(FILE *f, int chunks, bool guard)
{
    const char *in = guard ? "    " : "";
    fprintf(f, "#define LOAD_B(buf, kt) \\\n%s", guard ? "    if ((kt) < NK) \\\n" : "");
    fprintf(f,
            "%s    for (int c = 0; c < %d; c++) { \\\n"
            "%s        const int fi = tid + c * 256, r = fi >> 2, col = (fi & 3) * 8, gk = (kt) * 32 + col; \\\n"
            "%s        const int q = r / BN, nn = n0 + r %% BN; \\\n"
            "%s        const bool ok = nn < N && gk < K; \\\n"
            "%s        cp_async16(&Bs[buf][r][col], Wv[q] + (ok ? (size_t)nn * K + gk : 0), ok ? 16 : 0); \\\n"
            "%s    } \\\n"
            "    cp_async_commit();\n",
            in, chunks, in, in, in, in, in);
}

/* MMA(acc, a, b): acc[4] += a (16 x 16, 4 registers) * b (16 x 8, 2), f32 sums. */
static void mma_define(FILE *f, const char *ty)
{
    fprintf(f,
            "#define MMA(acc, a, b) \\\n"
            "    asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.%s.%s.f32 {%%0,%%1,%%2,%%3}, \" \\\n"
            "                 \"{%%4,%%5,%%6,%%7}, {%%8,%%9}, {%%0,%%1,%%2,%%3};\\n\" \\\n"
            "                 : \"+f\"(acc[0]), \"+f\"(acc[1]), \"+f\"(acc[2]), \"+f\"(acc[3]) \\\n"
            "                 : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]))\n",
            ty, ty);
}

/* Tensor-core GEMM, C[M,N] = A[M,K] W[N,K]^T: a BM x 128 tile per block of 8
 * warps (2 x 4, each BM/2 x 32), K in steps of 32, double-buffered shared
 * memory (dynamic): W tiles by cp.async, A tiles (f32) through registers,
 * rounded to the weight's 16-bit type as they are stored -- with SPLIT, as
 * two terms hi + lo (lo = a - hi), each multiplied, so the activations keep
 * about 16 bits.  Rows of 40 halves keep the fragment loads free of bank
 * conflicts.  mma.sync m16n8k16, f32 accumulators.  With two products
 * (linear_ew), the tile's 128 columns are 64 of each at the same n, and the
 * epilogue meets them through shared memory. */
static int mma_smem(int BM, bool split, int nw)
{
    int pipe = (split ? 2 : 1) * 2 * BM * 40 * 2 + 2 * 128 * 40 * 2;
    int epi = nw == 2 ? BM * 132 * 4 : 0;
    return pipe > epi ? pipe : epi;
}

static const char *mma_kernel(CudaGen *g, const LinJob *j, const KernelChoice *ch)
{
    int BM = ch->p[0], ks = ir_mma_ksplit(ch);
    bool split = ch->p[4];
    const char *ty = j->w[0]->dt == DT_BF16 ? "bf16" : "f16";
    KText t;
    FILE *f = cg_text(&t);
    lin_signature(f, j, "u16", false, 0, ks > 1);
    fprintf(f, "    enum { K = %lld, BM = %d, NW = %d, BN = 128 / NW, SPLIT = %d, MT = BM / 32, AV = BM / 32, NK = (K + 31) / 32 };\n"
               "    enum { KS = %d, KC = (NK + KS - 1) / KS, CNT = %lld };   // K splits, steps of 32 per split, counters\n",
            (long long)j->K, BM, j->nw, split, ks, (long long)g->counters);
    lin_pick_part(f, j, "u16", 128 / j->nw, 'x');
    fprintf(f,
            "    const int M = st->T, r0 = st->row0, m0 = blockIdx.y * BM, n0 = bx * BN;\n"
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
            "        for (int c = 0; c < 4; c++)\n"
            "#pragma unroll\n"
            "            for (int e = 0; e < 4; e++) acc[i][c][e] = 0.f;\n"
            "    float4 ar[AV];\n");
    mma_load_a_f32(f, "AV", 32, false);
    fprintf(f,
            "#define STORE_A(buf) \\\n"
            "    for (int c = 0; c < AV; c++) { \\\n"
            "        const int fi = tid + c * 256, r = fi >> 3, col = (fi & 7) * 4; \\\n"
            "        const uint2 hi = make_uint2(pack_%s(ar[c].x, ar[c].y), pack_%s(ar[c].z, ar[c].w)); \\\n"
            "        *(uint2 *)&As[buf][r][col] = hi; \\\n"
            "        if (SPLIT) { \\\n"
            "            const float2 h0 = unpack_%s(hi.x), h1 = unpack_%s(hi.y); \\\n"
            "            *(uint2 *)&Al[buf][r][col] = make_uint2(pack_%s(ar[c].x - h0.x, ar[c].y - h0.y), \\\n"
            "                                                    pack_%s(ar[c].z - h1.x, ar[c].w - h1.y)); \\\n"
            "        } \\\n"
            "    }\n",
            ty, ty, ty, ty, ty, ty);
    mma_load_b(f, 2, false);
    mma_define(f, ty);
    fprintf(f,
            "    const int k0 = blockIdx.z * KC, k1 = min((int)NK, k0 + KC);   // this block's steps of K\n"
            "    LOAD_A(k0);\n"
            "    STORE_A(0);\n"
            "    LOAD_B(0, k0);\n"
            "    cp_async_wait_all();\n"
            "    __syncthreads();\n"
            "    for (int kt = k0; kt < k1; kt++) {\n"
            "        const int cur = (kt - k0) & 1;\n"
            "        if (kt + 1 < k1) {\n"
            "            LOAD_B(cur ^ 1, kt + 1);\n"
            "            LOAD_A(kt + 1);\n"
            "        }\n"
            "#pragma unroll\n"
            "        for (int kk = 0; kk < 32; kk += 16) {\n"
            "            u32 a[MT][4], al[MT][4], b[4][2];\n"
            "#pragma unroll\n"
            "            for (int i = 0; i < MT; i++) {   // ldmatrix: lanes 0-15 rows at k, 16-31 the same rows at k + 8\n"
            "                const int row = wm * (BM / 2) + i * 16 + (lane & 15), col = kk + (lane >> 4) * 8;\n"
            "                ldsm_x4(a[i], &As[cur][row][col]);\n"
            "                if (SPLIT) ldsm_x4(al[i], &Al[cur][row][col]);\n"
            "            }\n"
            "#pragma unroll\n"
            "            for (int c = 0; c < 4; c += 2)   // two n tiles of 8 per ldmatrix.x4\n"
            "                ldsm_x4_b2(b[c], b[c + 1], &Bs[cur][wn * 32 + c * 8 + (lane & 7) + (lane >> 4) * 8][kk + ((lane >> 3) & 1) * 8]);\n"
            "#pragma unroll\n"
            "            for (int i = 0; i < MT; i++)\n"
            "#pragma unroll\n"
            "                for (int c = 0; c < 4; c++) {\n"
            "                    MMA(acc[i][c], a[i], b[c]);\n"
            "                    if (SPLIT) MMA(acc[i][c], al[i], b[c]);\n"
            "                }\n"
            "        }\n"
            "        if (kt + 1 < k1) {\n"
            "            STORE_A(cur ^ 1);\n"
            "            cp_async_wait_all();\n"
            "        }\n"
            "        __syncthreads();\n"
            "    }\n"
            "#undef LOAD_A\n"
            "#undef STORE_A\n"
            "#undef LOAD_B\n"
            "#undef MMA\n");
    if (ks > 1)   /* each block's sums to its slot; the tile's last block adds them all up, in slot order */
        fprintf(f,
                "    {\n"
                "        const int tile = blockIdx.y * gridDim.x + blockIdx.x;\n"
                "        float *const P = Sc + CNT + (size_t)tile * KS * BM * 128;\n"
                "#define AT(i, c, e) ((wm * (BM / 2) + (i) * 16 + gq + ((e) >> 1) * 8) * 128 + wn * 32 + (c) * 8 + 2 * cq + ((e) & 1))\n"
                "#pragma unroll\n"
                "        for (int i = 0; i < MT; i++)\n"
                "#pragma unroll\n"
                "            for (int c = 0; c < 4; c++)\n"
                "#pragma unroll\n"
                "                for (int e = 0; e < 4; e++) P[(size_t)blockIdx.z * BM * 128 + AT(i, c, e)] = acc[i][c][e];\n"
                "        __threadfence();\n"
                "        __syncthreads();\n"
                "        __shared__ int last;\n"
                "        if (tid == 0) {\n"
                "            unsigned *const cn = (unsigned *)Sc + tile;\n"
                "            last = atomicAdd(cn, 1u) == KS - 1;\n"
                "            if (last) *cn = 0;\n"
                "        }\n"
                "        __syncthreads();\n"
                "        if (!last) return;\n"
                "        __threadfence();\n"
                "#pragma unroll\n"
                "        for (int i = 0; i < MT; i++)\n"
                "#pragma unroll\n"
                "            for (int c = 0; c < 4; c++)\n"
                "#pragma unroll\n"
                "                for (int e = 0; e < 4; e++) {\n"
                "                    float v = 0.f;\n"
                "#pragma unroll\n"
                "                    for (int s = 0; s < KS; s++) v += __ldcg(P + (size_t)s * BM * 128 + AT(i, c, e));\n"
                "                    acc[i][c][e] = v;\n"
                "                }\n"
                "#undef AT\n"
                "    }\n");
    if (j->nw == 1)
        fprintf(f,
                "#pragma unroll\n"
                "    for (int mt = 0; mt < MT; mt++)\n"
                "#pragma unroll\n"
                "        for (int c = 0; c < 4; c++)\n"
                "#pragma unroll\n"
                "            for (int e = 0; e < 4; e++) {\n"
                "                const int row = m0 + wm * (BM / 2) + mt * 16 + gq + (e >> 1) * 8;\n"
                "                const int col = n0 + wn * 32 + c * 8 + 2 * cq + (e & 1);\n"
                "                if (row < M && col < N) {\n"
                "                    const size_t i = (size_t)(r0 + row) * N + col;\n"
                "                    const float v[1] = {acc[mt][c][e]};\n"
                "                    Y[i] = %s;\n"
                "                }\n"
                "            }\n"
                "}\n",
                lin_value(g, j, false));
    else
        fprintf(f,
                "    float (*Cs)[132] = (float (*)[132])smem;   // the pipeline is drained: reuse its memory\n"
                "#pragma unroll\n"
                "    for (int i = 0; i < MT; i++)\n"
                "#pragma unroll\n"
                "        for (int c = 0; c < 4; c++)\n"
                "#pragma unroll\n"
                "            for (int e = 0; e < 4; e++)\n"
                "                Cs[wm * (BM / 2) + i * 16 + gq + (e >> 1) * 8][wn * 32 + c * 8 + 2 * cq + (e & 1)] = acc[i][c][e];\n"
                "    __syncthreads();\n"
                "    for (int e = tid; e < BM * BN; e += 256) {\n"
                "        const int row = m0 + e / BN, col = n0 + e %% BN;\n"
                "        if (row < M && col < N) {\n"
                "            const size_t i = (size_t)(r0 + row) * N + col;\n"
                "            float v[NW];\n"
                "#pragma unroll\n"
                "            for (int q = 0; q < NW; q++) v[q] = Cs[e / BN][q * BN + e %% BN];\n"
                "            Y[i] = %s;\n"
                "        }\n"
                "    }\n"
                "}\n",
                lin_value(g, j, false));
    return cg_kernel(g, j->n, &t,
                     lin_suffix(g, j, "mma", BM, arena_printf(g->c->arena, "%s%s", split ? "s" : "",
                                                               ks > 1 ? arena_printf(g->c->arena, "k%d", ks) : "")));
}

/* The wide tensor-core GEMM of long prompts (select: BN 256, f16
 * activations as one term): a block computes 128 rows x 256 weight rows, 8
 * warps of 64 x 64, so each ldmatrix feeds twice the MMAs of the 128-wide
 * tile; the weights come through a cp.async pipeline of `wide_stages`
 * steps of 32, the activations (f32) through registers one step ahead.
 * blockIdx.x is the M tile: the blocks running at once share weight tiles,
 * which past the L2's size would otherwise come from DRAM once per M tile.
 * With two products (gate, up) a warp's 64 columns are 32 of each, so it
 * holds both values of every output it writes. */
static int wide_stages(const CudaGen *g)
{
    return g->sm == 80 || g->sm >= 90 ? 4 : 3;   /* sm_86/89 have 99 KB of shared memory per block */
}

static int wide_smem(const CudaGen *g)
{
    return (2 * 128 * 40 + wide_stages(g) * 256 * 40) * 2;
}

static const char *mma_wide_kernel(CudaGen *g, const LinJob *j)
{
    const char *ty = j->w[0]->dt == DT_BF16 ? "bf16" : "f16";
    KText t;
    FILE *f = cg_text(&t);
    lin_signature(f, j, "u16", false, 1, false);
    fprintf(f, "    enum { K = %lld, BM = 128, NW = %d, BN = 256 / NW, S = %d, NK = (K + 31) / 32, CW = 8 / NW };\n",
            (long long)j->K, j->nw, wide_stages(g));
    lin_pick_part(f, j, "u16", 256 / j->nw, 'y');
    fprintf(f,
            "    const int M = st->T, r0 = st->row0, m0 = blockIdx.x * BM, n0 = bx * BN;\n"
            "    if (m0 >= M) return;\n"
            "    extern __shared__ __align__(16) u16 smem[];\n"
            "    typedef u16 ATile[BM][40];\n"
            "    typedef u16 BTile[256][40];\n"
            "    ATile *As = (ATile *)smem;                      // [2]\n"
            "    BTile *Bs = (BTile *)(smem + 2 * BM * 40);     // [S]\n"
            "    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;\n"
            "    const int wm = warp >> 2, wn = warp & 3, gq = lane >> 2, cq = lane & 3;\n"
            "    float acc[4][8][4];\n"
            "#pragma unroll\n"
            "    for (int i = 0; i < 4; i++)\n"
            "#pragma unroll\n"
            "        for (int c = 0; c < 8; c++)\n"
            "#pragma unroll\n"
            "            for (int e = 0; e < 4; e++) acc[i][c][e] = 0.f;\n"
            "    float4 ar[4];\n");
    mma_load_a_f32(f, "4", 32, true);
    fprintf(f,
            "#define STORE_A(buf) \\\n"
            "    for (int c = 0; c < 4; c++) { \\\n"
            "        const int fi = tid + c * 256, r = fi >> 3, col = (fi & 7) * 4; \\\n"
            "        *(uint2 *)&As[buf][r][col] = make_uint2(pack_%s(ar[c].x, ar[c].y), pack_%s(ar[c].z, ar[c].w)); \\\n"
            "    }\n",
            ty, ty);
    mma_load_b(f, 4, true);
    mma_define(f, ty);
    fprintf(f,
            "    // B row of the warp's n tile c: with NW = 2, tiles 0-3 are gate rows, 4-7 the same up rows\n"
            "#define BROW(c) (((c) / CW) * BN + wn * (64 / NW) + ((c) %% CW) * 8)\n"
            "#pragma unroll\n"
            "    for (int s = 0; s < S - 1; s++) { LOAD_B(s, s); }\n"
            "    LOAD_A(0);\n"
            "    STORE_A(0);\n"
            "    cp_async_wait<S - 2>();\n"
            "    __syncthreads();\n"
            "    for (int kt = 0; kt < NK; kt++) {\n"
            "        const int ab = kt & 1, bb = kt %% S;\n"
            "        if (kt + 1 < NK) LOAD_A(kt + 1);\n"
            "        LOAD_B((kt + S - 1) %% S, kt + S - 1);\n"
            "#pragma unroll\n"
            "        for (int kk = 0; kk < 32; kk += 16) {\n"
            "            u32 a[4][4], b[8][2];\n"
            "#pragma unroll\n"
            "            for (int i = 0; i < 4; i++)\n"
            "                ldsm_x4(a[i], &As[ab][wm * 64 + i * 16 + (lane & 15)][kk + (lane >> 4) * 8]);\n"
            "#pragma unroll\n"
            "            for (int c = 0; c < 8; c += 2)   // two n tiles of 8 per ldmatrix.x4\n"
            "                ldsm_x4_b2(b[c], b[c + 1], &Bs[bb][BROW(c) + (lane & 7) + (lane >> 4) * 8][kk + ((lane >> 3) & 1) * 8]);\n"
            "#pragma unroll\n"
            "            for (int i = 0; i < 4; i++)\n"
            "#pragma unroll\n"
            "                for (int c = 0; c < 8; c++) MMA(acc[i][c], a[i], b[c]);\n"
            "        }\n"
            "        if (kt + 1 < NK) STORE_A(ab ^ 1);\n"
            "        cp_async_wait<S - 2>();\n"
            "        __syncthreads();\n"
            "    }\n"
            "#undef LOAD_A\n"
            "#undef STORE_A\n"
            "#undef LOAD_B\n"
            "#undef MMA\n"
            "#undef BROW\n"
            "#pragma unroll\n"
            "    for (int mt = 0; mt < 4; mt++)\n"
            "#pragma unroll\n"
            "        for (int c = 0; c < CW; c++)\n"
            "#pragma unroll\n"
            "            for (int e = 0; e < 4; e++) {\n"
            "                const int row = m0 + wm * 64 + mt * 16 + gq + (e >> 1) * 8;\n"
            "                const int col = n0 + wn * (64 / NW) + c * 8 + 2 * cq + (e & 1);\n"
            "                if (row < M && col < N) {\n"
            "                    const size_t i = (size_t)(r0 + row) * N + col;\n"
            "                    float v[NW];\n"
            "#pragma unroll\n"
            "                    for (int q = 0; q < NW; q++) v[q] = acc[mt][q * CW + c][e];\n"
            "                    Y[i] = %s;\n"
            "                }\n"
            "            }\n"
            "}\n",
            lin_value(g, j, false));
    return cg_kernel(g, j->n, &t, lin_suffix(g, j, "mmaw", 128, ""));
}

/* The wide GEMM on sm_90a's warpgroup MMA (select: KF_WGMMA): the same 128 x
 * 256 tile, computed by two warpgroups of 64 rows x 256 columns, each step of
 * 64 columns of K one wgmma.m64n256k16 per 16, both operands read from shared
 * memory in the 128-byte swizzle (row r's 16-byte chunk c at chunk c ^ (r &
 * 7) of its 128-byte row; the tiles 1024-byte aligned).  A warpgroup keeps
 * one step's MMAs in flight while it issues the next step's, so a tile of
 * shared memory is refilled two steps after the MMAs that read it: the
 * weights through S stages of cp.async (S - 2 steps ahead).  Activations
 * written as f16 for it (select: x_f16) come the same way, in the same
 * stages; f32 ones are loaded for the next step and stored as f16 while the
 * MMAs run, in three tiles of their own.  The accumulators are the wgmma's
 * fragment: thread (warp w of its warpgroup, lane) holds, for each 8 columns
 * j, rows 16 w + lane / 4 (+ 8) and columns 8 j + 2 (lane % 4) (+ 1). */
static int wgmma_smem(const KernelChoice *ch)
{
    int a_tiles = ch->x_f16 ? ch->p[4] : 3;
    return (a_tiles * ch->p[0] + ch->p[4] * ch->p[1]) * 128 + 1024;   /* + 1024: aligning the tiles */
}

static const char *wgmma_kernel(CudaGen *g, const LinJob *j, const KernelChoice *ch)
{
    /* f16 only (select): the activations are rounded to f16 for the f16 MMA */
    IR_ASSERT(ch->p[0] == 128 && ch->p[1] == 256 && ch->p[2] == 64 && ch->p[3] == 2 && ch->p[4] >= 3);
    IR_ASSERT(j->w[0]->dt == DT_F16);
    bool xh = ch->x_f16;
    g->wgmma = true;
    KText t;
    FILE *f = cg_text(&t);
    lin_signature(f, j, "u16", false, 1, false);
    fprintf(f, "    enum { K = %lld, BM = 128, NW = %d, BN = 256 / NW, S = %d, NK = (K + 63) / 64, AT = %d };\n",
            (long long)j->K, j->nw, ch->p[4], xh ? ch->p[4] : 3);
    lin_pick_part(f, j, "u16", 256 / j->nw, 'y');
    fprintf(f,
            "    const int M = st->T, r0 = st->row0, m0 = blockIdx.x * BM, n0 = bx * BN;\n"
            "    if (m0 >= M) return;\n"
            "    extern __shared__ __align__(16) u16 smem[];\n"
            "    const u32 sA = ((u32)__cvta_generic_to_shared(smem) + 1023u) & ~1023u;   // [AT][BM rows][128 B]\n"
            "    const u32 sB = sA + AT * BM * 128;                                         // [S][256 rows][128 B]\n"
            "    const int tid = threadIdx.x, wg = tid >> 7, wl = (tid >> 5) & 3, lane = tid & 31, gq = lane >> 2, cq = lane & 3;\n"
            "    float acc[128];\n"
            "#pragma unroll\n"
            "    for (int i = 0; i < 128; i++) acc[i] = 0.f;\n"
            "#define SWZ(r, c) ((r) * 128 + ((((c) ^ (r)) & 7) << 4))\n"
            "#define LOAD_B(s, kt) \\\n"
            "    if ((kt) < NK) \\\n"
            "        for (int c = 0; c < 8; c++) { \\\n"
            "            const int fi = tid + c * 256, r = fi >> 3, ch = fi & 7, gk = (kt) * 64 + ch * 8; \\\n"
            "            const int q = r / BN, nn = n0 + r %% BN; \\\n"
            "            const bool ok = nn < N && gk < K; \\\n"
            "            cp_async16_s(sB + (s) * 256 * 128 + SWZ(r, ch), Wv[q] + (ok ? (size_t)nn * K + gk : 0), ok ? 16 : 0); \\\n"
            "        }\n");
    if (xh) {
        fprintf(f,
                "    const u16 *const Xh = (const u16 *)X;   // f16 activations (select: x_f16)\n"
                "#define LOAD_A(s, kt) \\\n"
                "    if ((kt) < NK) \\\n"
                "        for (int c = 0; c < 4; c++) { \\\n"
                "            const int fi = tid + c * 256, r = fi >> 3, ch = fi & 7, gk = (kt) * 64 + ch * 8; \\\n"
                "            const bool ok = m0 + r < M && gk < K; \\\n"
                "            cp_async16_s(sA + (s) * BM * 128 + SWZ(r, ch), Xh + (ok ? (size_t)(r0 + m0 + r) * K + gk : 0), ok ? 16 : 0); \\\n"
                "        }\n"
                "#define LOAD(s, kt) LOAD_A(s, kt) LOAD_B(s, kt) cp_async_commit();\n"
                "#pragma unroll\n"
                "    for (int s = 0; s < S - 2; s++) { LOAD(s, s); }\n");
    } else {
        fprintf(f, "    float4 ar[8];\n");
        mma_load_a_f32(f, "8", 64, true);
        fprintf(f,
                "#define STORE_A(buf) \\\n"
                "    for (int c = 0; c < 8; c++) { \\\n"
                "        const int fi = tid + c * 256, r = fi >> 4, q = fi & 15; \\\n"
                "        st_shared_u2(sA + (buf) * BM * 128 + SWZ(r, q >> 1) + (q & 1) * 8, pack_f16(ar[c].x, ar[c].y), \\\n"
                "                     pack_f16(ar[c].z, ar[c].w)); \\\n"
                "    }\n"
                "#define LOAD(s, kt) LOAD_B(s, kt) cp_async_commit();\n"
                "#pragma unroll\n"
                "    for (int s = 0; s < S - 2; s++) { LOAD(s, s); }\n"
                "    LOAD_A(0);\n"
                "    STORE_A(0);\n");
    }
    fprintf(f,
            "    for (int kt = 0; kt < NK; kt++) {\n"
            "        cp_async_wait<S - 3>();   // this thread's part of step kt's tiles is in\n"
            "        fence_async_smem();       // its shared-memory writes, to the wgmma's (async) proxy\n"
            "        __syncthreads();          // everyone's; and both warpgroups' MMAs of step kt - 2 are done\n"
            "        const u32 a = sA + (kt %% AT) * BM * 128 + wg * 64 * 128, b = sB + (kt %% S) * 256 * 128;\n"
            "        wg_fence();\n"
            "#pragma unroll\n"
            "        for (int k = 0; k < 4; k++) wg_mma_f16(acc, wg_desc(a + k * 32), wg_desc(b + k * 32));\n"
            "        wg_commit();\n"
            "        wg_wait<1>(acc);   // step kt - 1's MMAs are done, kt's run\n"
            "        LOAD((kt + S - 2) %% S, kt + S - 2);   // into the stage step kt - 2 read\n");
    if (!xh)
        fprintf(f,
                "        if (kt + 1 < NK) {\n"
                "            LOAD_A(kt + 1);\n"
                "            STORE_A((kt + 1) %% 3);\n"
                "        }\n");
    fprintf(f,
            "    }\n"
            "    wg_wait<0>(acc);\n"
            "#undef SWZ\n"
            "#undef LOAD_A\n"
            "#undef LOAD_B\n"
            "#undef LOAD\n"
            "%s"
            "    // with two products (gate, up) columns 0-127 are the first's rows n0.., 128-255 the second's\n"
            "#pragma unroll\n"
            "    for (int c = 0; c < 32 / NW; c++)\n"
            "#pragma unroll\n"
            "        for (int e = 0; e < 4; e++) {\n"
            "            const int row = m0 + wg * 64 + wl * 16 + gq + (e >> 1) * 8, col = n0 + c * 8 + 2 * cq + (e & 1);\n"
            "            if (row < M && col < N) {\n"
            "                const size_t i = (size_t)(r0 + row) * N + col;\n"
            "                float v[NW];\n"
            "#pragma unroll\n"
            "                for (int q = 0; q < NW; q++) v[q] = acc[(q * (32 / NW) + c) * 4 + e];\n"
            "                %s = %s%s%s;\n"
            "            }\n"
            "        }\n"
            "}\n",
            xh ? "" : "#undef STORE_A\n", ch->y_f16 ? "((u16 *)Y)[i]" : "Y[i]", ch->y_f16 ? "f2h(" : "",
            lin_value(g, j, false), ch->y_f16 ? ")" : "");
    return cg_kernel(g, j->n, &t, lin_suffix(g, j, "wgmma", 128, arena_printf(g->c->arena, "%s%s", xh ? "x" : "",
                                                                              ch->y_f16 ? "y" : "")));
}

/* The helpers of the wgmma kernels, after the prelude when a kernel uses them
 * (sm_90a only).  wg_mma_f16: acc[128] += A (64 x 16, descriptor a) * B (256 x
 * 16, descriptor b)^T; wg_wait<N>: until at most N of this warpgroup's
 * committed groups of MMAs run (the empty asm keeps the compiler from moving
 * accumulator accesses across the wait). */
void cg_wgmma_helpers(FILE *f)
{
    fputs("\n// ---- wgmma (sm_90a) ----\n"
          "// a shared-memory matrix descriptor: K-major, 128-byte swizzle, groups of 8 rows 1024 bytes apart\n"
          "DEV u64 wg_desc(u32 addr)\n"
          "{\n"
          "    return (u64)((addr & 0x3ffffu) >> 4) | (u64)1 << 16 | (u64)(1024 >> 4) << 32 | (u64)1 << 62;\n"
          "}\n"
          "DEV void wg_fence() { asm volatile(\"wgmma.fence.sync.aligned;\\n\" ::: \"memory\"); }\n"
          "DEV void wg_commit() { asm volatile(\"wgmma.commit_group.sync.aligned;\\n\" ::: \"memory\"); }\n"
          "DEV void fence_async_smem() { asm volatile(\"fence.proxy.async.shared::cta;\\n\" ::: \"memory\"); }\n"
          "DEV void st_shared_u2(u32 addr, u32 x, u32 y)\n"
          "{\n"
          "    asm volatile(\"st.shared.v2.b32 [%0], {%1, %2};\\n\" ::\"r\"(addr), \"r\"(x), \"r\"(y) : \"memory\");\n"
          "}\n"
          "template <int N> DEV void wg_wait(float *d)\n"
          "{\n"
          "    asm volatile(\"wgmma.wait_group.sync.aligned %0;\\n\" ::\"n\"(N) : \"memory\");\n"
          "#pragma unroll\n"
          "    for (int i = 0; i < 128; i++) asm volatile(\"\" : \"+f\"(d[i])::\"memory\");\n"
          "}\n",
          f);
    fputs("DEV void wg_mma_f16(float *d, u64 a, u64 b)\n{\n    asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %130, 0;\\n\"\n"
          "                 \"wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {\"\n                 \"",
          f);
    for (int i = 0; i < 128; i++)
        fprintf(f, "%%%d%s", i, i == 127 ? "},\"\n" : i % 16 == 15 ? ",\"\n                 \"" : ", ");
    fprintf(f, "                 \" %%128, %%129, p, 1, 1, 0, 0;\\n}\\n\"\n                 : ");
    for (int i = 0; i < 128; i++)
        fprintf(f, "\"+f\"(d[%d])%s", i, i == 127 ? "\n" : i % 8 == 7 ? ",\n                   " : ", ");
    fprintf(f, "                 : \"l\"(a), \"l\"(b), \"r\"(1));\n}\n");
    fputs("// ---- end of wgmma ----\n", f);
}

static bool emit_linear(CudaGen *g, Node *n)
{
    if (n->lead)   /* its lead's launch computes it */
        return true;
    LinJob j;
    if (!lin_job(g, n, &j))
        return false;
    IR_ASSERT(n->nchoice > 0 && j.nw <= 2);
    for (int i = 0; i < n->nchoice; i++) {
        const KernelChoice *ch = &n->choice[i];
        int args[RT_MAX_ARGS];
        int nargs = lin_args(g, &j, j.norm && ch->family == KF_GEMV, args);
        RtLaunch *l;
        if (ch->family == KF_GEMV) {
            l = cg_launch(g, n, gemv_kernel(g, &j, ch), nargs, args, 256);
            set_grid(l, lin_grid(&j, 8 * ch->p[0] / ir_gemv_warps_per_row(ch)), 1, 1);
            l->grid_tok[1] = 4;
        } else if (ch->p[1] == 256) {   /* 128 x 256 tiles (wgmma or mma.sync): blockIdx.x the M tile, .y the column block */
            bool wg = ch->family == KF_WGMMA;
            l = cg_launch(g, n, wg ? wgmma_kernel(g, &j, ch) : mma_wide_kernel(g, &j), nargs, args, 256);
            l->smem = wg ? wgmma_smem(ch) : wide_smem(g);
            set_grid(l, 1, lin_grid(&j, 256 / j.nw), 1);
            l->grid_tok[0] = 128;
        } else {
            int ks = ir_mma_ksplit(ch), gx = lin_grid(&j, 128 / j.nw);
            if (ks > 1) {   /* the counters and each tile's KS partial sums, at the most M tiles */
                int64_t tiles = (int64_t)gx * ((ch->max_T + ch->p[0] - 1) / ch->p[0]);
                IR_ASSERT(ch->max_T > 0 && tiles <= IR_KSPLIT_MAX_TILES);
                args[nargs++] = cg_scratch(g, tiles * ks * ch->p[0] * 128);
            }
            l = cg_launch(g, n, mma_kernel(g, &j, ch), nargs, args, 256);
            l->smem = mma_smem(ch->p[0], ch->p[4], j.nw);
            set_grid(l, gx, 1, ks);
            l->grid_tok[1] = ch->p[0];
        }
        l->min_T = ch->min_T;
        l->max_T = ch->max_T;
    }
    return true;
}

/* ---- rope ----------------------------------------------------------------------- */

/* Rotary embedding as a device function of the kernel, KNAME_rope(x, d,
 * pos): element d of the head row x rotated for position pos, the angles in
 * f32 as transformers computes them (inv_freq * position, then cos, sin). */
static void rope_fn(CudaGen *g, FILE *f, const RopeAttr *r, int64_t dh)
{
    int64_t half = dh / 2;
    double *inv = arena_alloc(g->c->arena, (size_t)half * sizeof *inv);
    ir_rope_inv_freq(r, dh, inv);
    fprintf(f, "__constant__ float KNAME_inv[%lld] = {", (long long)half);
    for (int64_t i = 0; i < half; i++)
        fprintf(f, "%s%.9ef", i ? ", " : "", (double)(float)inv[i]);
    fprintf(f,
            "};\n"
            "DEV float KNAME_rope(const float *x, int d, float pos)\n"
            "{\n"
            "    float s, c;\n"
            "    sincosf(pos * KNAME_inv[d %% %lld], &s, &c);\n"
            "    return d < %lld ? x[d] * c - x[d + %lld] * s : x[d] * c + x[d - %lld] * s;\n"
            "}\n",
            (long long)half, (long long)half, (long long)half, (long long)half);
}

static bool emit_rope(CudaGen *g, Node *n)
{
    int64_t H = n->shape[1], dh = n->shape[2];
    KText t;
    FILE *f = cg_text(&t);
    rope_fn(g, f, &n->a.rope, dh);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(128) KNAME(const RtGpuStep *st, const float *X, float *Y)\n"
            "{\n"
            "    if ((int)blockIdx.x >= st->T) return;\n"
            "    const int row = st->row0 + blockIdx.x;\n"
            "    const float pos = (float)(st->pos0 + row);\n"
            "    for (int e = threadIdx.x; e < %lld; e += 128) {\n"
            "        const size_t o = (size_t)row * %lld + e / %lld * %lld;\n"
            "        Y[o + e %% %lld] = KNAME_rope(X + o, e %% %lld, pos);\n"
            "    }\n"
            "}\n",
            (long long)(H * dh), (long long)(H * dh), (long long)dh, (long long)dh, (long long)dh, (long long)dh);
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

/* One query row of one head against keys [j0, j1): 4 warps, each taking 8
 * consecutive keys of every 32, lanes split the head dimension.  A warp
 * loads its 8 keys and values (every lane's share) before it uses any, so a
 * piece costs one round trip to memory rather than one per key.  Keys before
 * pos0 come from the caches, the step's own from K and V (rotated here when
 * RoPE is on), so the kernel need not wait for them to be stored.  The
 * caller defines DH, ND, KB, lane and warp, and (EKV) has loaded each warp's
 * first 8 cached keys and values (kp, vp) before its pdl_wait. */
static void attn_core(FILE *f, bool rope)
{
    fprintf(f,
            "    __shared__ float sacc[4][DH], sl[4], smax[4];\n"
            "    float q[ND], acc[ND], l, mx, phi = %.1ff;\n"
            "    const float *qr = Q + ((size_t)t * HQ + h) * DH;\n"
            "#pragma unroll\n"
            "    for (int i = 0; i < ND; i++) q[i] = lane + 32 * i < DH ? %s * SCALE : 0.f;\n"
            "    for (int pass = 0; pass < 2; pass++) {\n"
            "        l = 0.f;\n"
            "        mx = NEG_INF;\n"
            "#pragma unroll\n"
            "        for (int i = 0; i < ND; i++) acc[i] = 0.f;\n"
            "        for (int jb = j0 + warp * KB; jb < j1; jb += 4 * KB) {\n"
            "            float kv[KB][ND], vv[KB][ND], s[KB];\n"
            "            const bool first = pass == 0 && jb == j0 + warp * KB;\n"
            "#pragma unroll\n"
            "            for (int u = 0; u < KB; u++) {\n"
            "                const int j = jb + u;\n"
            "                const bool ok = j < j1, old = j < pos0;\n"
            "                const size_t o = ((size_t)(old ? j : j - pos0) * HKV + kvh) * DH;\n"
            "                const float *kr = (old ? Kc : K) + o, *vr = (old ? Vc : V) + o;\n"
            "#pragma unroll\n"
            "                for (int i = 0; i < ND; i++) {\n"
            "                    const bool in = ok && lane + 32 * i < DH;\n"
            "                    if (EKV && first && old) {   /* loaded before pdl_wait */\n"
            "                        kv[u][i] = kp[u][i];\n"
            "                        vv[u][i] = vp[u][i];\n"
            "                    } else {\n"
            "                        kv[u][i] = in ? (old ? kr[lane + 32 * i] : %s) : 0.f;\n"
            "                        vv[u][i] = in ? vr[lane + 32 * i] : 0.f;\n"
            "                    }\n"
            "                }\n"
            "            }\n"
            "#pragma unroll\n"
            "            for (int u = 0; u < KB; u++) {\n"
            "                s[u] = 0.f;\n"
            "#pragma unroll\n"
            "                for (int i = 0; i < ND; i++) s[u] += q[i] * kv[u][i];\n"
            "            }\n"
            "#pragma unroll\n"
            "            for (int u = 0; u < KB; u++) s[u] = warp_sum(s[u]);\n"
            "#pragma unroll\n"
            "            for (int u = 0; u < KB; u++) {\n"
            "                if (jb + u >= j1) break;\n"
            "                mx = fmaxf(mx, s[u]);\n"
            "                const float p = expf(s[u] - phi);\n"
            "                l += p;\n"
            "#pragma unroll\n"
            "                for (int i = 0; i < ND; i++) acc[i] += p * vv[u][i];\n"
            "            }\n"
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
            ATTN_PHI, rope ? "KNAME_rope(qr, lane + 32 * i, (float)(pos0 + t))" : "qr[lane + 32 * i]",
            rope ? "KNAME_rope(kr, lane + 32 * i, (float)j)" : "kr[lane + 32 * i]", ATTN_PHI_RANGE, ATTN_PHI_RANGE);
}

/* A prefill attention kernel's head: the RoPE table when q is rotated there,
 * then the signature (Q, the caches, O) up to the body's first line. */
static void prefill_head(CudaGen *g, FILE *f, const Node *n)
{
    if (n->a.attn.rope)
        rope_fn(g, f, &n->a.attn.rope_attr, n->src[0]->shape[2]);
    fprintf(f, "extern \"C\" __global__ void __launch_bounds__(128) KNAME(const RtGpuStep *st, const float *Q, "
               "const float *Kc, const float *Vc, float *O)\n"
               "{\n");
}

/* Prefill attention on the tensor cores (FlashAttention-2's loop): 64 queries
 * of one head per block of 4 warps (16 rows each), 64-key tiles of the cache
 * rounded to f16 in shared memory (V transposed), S = Q K^T and O += P V by
 * mma.sync m16n8k16 with f32 accumulators, the online softmax in registers
 * in base 2 (the scale folded into q with log2 e).  q, k, v and p are f16
 * operands, so select keeps the f32 tiles for short prompts. */
/* half: the output stored as f16 (select: y_f16, for a wgmma GEMM) */
static const char *attn_mma_kernel(CudaGen *g, const Node *n, bool half)
{
    int64_t hq = n->src[0]->shape[1], hkv = n->src[1]->shape[1], dh = n->src[0]->shape[2];
    bool rope = n->a.attn.rope;
    KText t;
    FILE *f = cg_text(&t);
    prefill_head(g, f, n);
    fprintf(f,
            "    enum { HQ = %lld, HKV = %lld, DH = %lld, BQ = 64, BK = 64, KD = DH / 16, ND = DH / 8, KP = DH + 8, VP = BK + 8 };\n"
            "    const float SCALE = %.9ef;   // the score scale times log2(e)\n"
            "    __shared__ __align__(16) u16 Ks[BK][KP];   // first the q tile\n"
            "    __shared__ __align__(16) u16 Vt[DH][VP];\n"
            "    const int T = st->T, pos0 = st->pos0, t0 = blockIdx.x * BQ, h = blockIdx.y, kvh = h / (HQ / HKV);\n"
            "    if (t0 >= T) return;\n"
            "    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gq = lane >> 2, cq = lane & 3;\n"
            "    for (int e = tid; e < BQ * DH / 4; e += 128) {\n"
            "        const int i = e / (DH / 4), d = e %% (DH / 4) * 4;\n"
            "        float v[4] = {0.f, 0.f, 0.f, 0.f};\n"
            "        if (t0 + i < T) {\n"
            "            const float *qr = Q + ((size_t)(t0 + i) * HQ + h) * DH;\n"
            "#pragma unroll\n"
            "            for (int c = 0; c < 4; c++) v[c] = %s * SCALE;\n"
            "        }\n"
            "        *(uint2 *)&Ks[i][d] = make_uint2(pack_f16(v[0], v[1]), pack_f16(v[2], v[3]));\n"
            "    }\n"
            "    __syncthreads();\n"
            "    u32 qf[KD][4];\n"
            "#pragma unroll\n"
            "    for (int kd = 0; kd < KD; kd++) {\n"
            "        const int row = warp * 16 + gq, col = kd * 16 + 2 * cq;\n"
            "        qf[kd][0] = *(const u32 *)&Ks[row][col];\n"
            "        qf[kd][1] = *(const u32 *)&Ks[row + 8][col];\n"
            "        qf[kd][2] = *(const u32 *)&Ks[row][col + 8];\n"
            "        qf[kd][3] = *(const u32 *)&Ks[row + 8][col + 8];\n"
            "    }\n"
            "    float o[ND][4], m[2] = {NEG_INF, NEG_INF}, l[2] = {0.f, 0.f};\n"
            "#pragma unroll\n"
            "    for (int i = 0; i < ND; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;\n"
            "    const int tr[2] = {t0 + warp * 16 + gq, t0 + warp * 16 + gq + 8};\n"
            "    int Lr[2];   // keys each of this thread's two rows sees (1 for rows past T: no empty rows)\n"
            "#pragma unroll\n"
            "    for (int r = 0; r < 2; r++) { const int t = tr[r]; Lr[r] = t < T ? %s : 1; }\n"
            "    const int tl = min(T, t0 + BQ) - 1, Lmax = %s;\n"
            "#define MMA16(acc, a, b0, b1) \\\n"
            "    asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%%0,%%1,%%2,%%3}, {%%4,%%5,%%6,%%7}, \" \\\n"
            "                 \"{%%8,%%9}, {%%0,%%1,%%2,%%3};\\n\" \\\n"
            "                 : \"+f\"(acc[0]), \"+f\"(acc[1]), \"+f\"(acc[2]), \"+f\"(acc[3]) \\\n"
            "                 : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b0), \"r\"(b1))\n"
            "    for (int j0 = 0; j0 < Lmax; j0 += BK) {\n"
            "        __syncthreads();\n"
            "        for (int e = tid; e < BK * DH / 4; e += 128) {   // K rows as they are, V a key per lane (transposed)\n"
            "            const int j = e / (DH / 4), d = e %% (DH / 4) * 4;\n"
            "            const bool ok = j0 + j < Lmax;\n"
            "            const float4 kv = ok ? *(const float4 *)(Kc + ((size_t)(j0 + j) * HKV + kvh) * DH + d)\n"
            "                                 : make_float4(0.f, 0.f, 0.f, 0.f);\n"
            "            *(uint2 *)&Ks[j][d] = make_uint2(pack_f16(kv.x, kv.y), pack_f16(kv.z, kv.w));\n"
            "            const int vj = e %% BK, vd = e / BK * 4;\n"
            "            const float4 vv = j0 + vj < Lmax ? *(const float4 *)(Vc + ((size_t)(j0 + vj) * HKV + kvh) * DH + vd)\n"
            "                                             : make_float4(0.f, 0.f, 0.f, 0.f);\n"
            "            const u32 v01 = pack_f16(vv.x, vv.y), v23 = pack_f16(vv.z, vv.w);\n"
            "            Vt[vd][vj] = (u16)(v01 & 0xffffu);\n"
            "            Vt[vd + 1][vj] = (u16)(v01 >> 16);\n"
            "            Vt[vd + 2][vj] = (u16)(v23 & 0xffffu);\n"
            "            Vt[vd + 3][vj] = (u16)(v23 >> 16);\n"
            "        }\n"
            "        __syncthreads();\n"
            "        float s[BK / 8][4];\n"
            "#pragma unroll\n"
            "        for (int nt = 0; nt < BK / 8; nt++) {\n"
            "            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;\n"
            "#pragma unroll\n"
            "            for (int kd = 0; kd < KD; kd++)\n"
            "                MMA16(s[nt], qf[kd], *(const u32 *)&Ks[nt * 8 + gq][kd * 16 + 2 * cq],\n"
            "                      *(const u32 *)&Ks[nt * 8 + gq][kd * 16 + 2 * cq + 8]);\n"
            "        }\n"
            "        float mx[2] = {m[0], m[1]};\n"
            "#pragma unroll\n"
            "        for (int nt = 0; nt < BK / 8; nt++)\n"
            "#pragma unroll\n"
            "            for (int e = 0; e < 4; e++) {\n"
            "                if (j0 + nt * 8 + 2 * cq + (e & 1) >= Lr[e >> 1]) s[nt][e] = NEG_INF;\n"
            "                mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);\n"
            "            }\n"
            "        float a[2], rs[2] = {0.f, 0.f};\n"
            "#pragma unroll\n"
            "        for (int r = 0; r < 2; r++) {\n"
            "            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));\n"
            "            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));\n"
            "            a[r] = exp2f(m[r] - mx[r]);\n"
            "            m[r] = mx[r];\n"
            "        }\n"
            "#pragma unroll\n"
            "        for (int nt = 0; nt < BK / 8; nt++)\n"
            "#pragma unroll\n"
            "            for (int e = 0; e < 4; e++) {\n"
            "                s[nt][e] = exp2f(s[nt][e] - mx[e >> 1]);\n"
            "                rs[e >> 1] += s[nt][e];\n"
            "            }\n"
            "#pragma unroll\n"
            "        for (int r = 0; r < 2; r++) l[r] = l[r] * a[r] + rs[r];\n"
            "#pragma unroll\n"
            "        for (int i = 0; i < ND; i++) { o[i][0] *= a[0]; o[i][1] *= a[0]; o[i][2] *= a[1]; o[i][3] *= a[1]; }\n"
            "#pragma unroll\n"
            "        for (int kk = 0; kk < BK / 16; kk++) {\n"
            "            const u32 p[4] = {pack_f16(s[2 * kk][0], s[2 * kk][1]), pack_f16(s[2 * kk][2], s[2 * kk][3]),\n"
            "                              pack_f16(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack_f16(s[2 * kk + 1][2], s[2 * kk + 1][3])};\n"
            "#pragma unroll\n"
            "            for (int i = 0; i < ND; i++)\n"
            "                MMA16(o[i], p, *(const u32 *)&Vt[i * 8 + gq][kk * 16 + 2 * cq],\n"
            "                      *(const u32 *)&Vt[i * 8 + gq][kk * 16 + 2 * cq + 8]);\n"
            "        }\n"
            "    }\n"
            "#undef MMA16\n"
            "#pragma unroll\n"
            "    for (int r = 0; r < 2; r++) {\n"
            "        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);\n"
            "        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);\n"
            "    }\n"
            "#pragma unroll\n"
            "    for (int i = 0; i < ND; i++)\n"
            "#pragma unroll\n"
            "        for (int e = 0; e < 4; e++) {\n"
            "            const int t = tr[e >> 1];\n"
            "            const size_t at = ((size_t)t * HQ + h) * DH + i * 8 + 2 * cq + (e & 1);\n"
            "            if (t < T) %s;\n"
            "        }\n"
            "}\n",
            (long long)hq, (long long)hkv, (long long)dh, ir_attention_scale(n) * 1.4426950408889634,
            rope ? "KNAME_rope(qr, d + c, (float)(pos0 + t0 + i))" : "qr[d + c]",
            n->a.attn.causal ? "pos0 + t + 1" : "pos0 + T", n->a.attn.causal ? "pos0 + tl + 1" : "pos0 + T",
            half ? "((u16 *)O)[at] = f2h(o[i][e] / l[e >> 1])" : "O[at] = o[i][e] / l[e >> 1]");
    return cg_kernel(g, n, &t, half ? "_fa_h" : "_fa");
}

/* Decode attention (T <= 4), split-KV: the context in up to SPLITS pieces of
 * at least MINCH keys (select's choice: p[1], p[0]; more pieces, shorter
 * serial loops, as the context grows), a block per piece, head and token.  Block 0 of each KV head's first
 * query head also stores the step's keys (rotated) and values in the caches;
 * the pieces read those from K and V, so no launch runs between.  Each piece
 * leaves its sums (with its max, phi) in the scratch buffer and counts itself
 * done; the last of a head's pieces adds them up and writes O (FlashDecoding++'s
 * unified max: pieces with the same phi add without rescaling), loading every
 * piece's sums in one round trip: H100, Llama-3.2-1B decode, same run, 861.6
 * tok/s with three (max, sums, columns) -> 870.0 (bench/RESULTS.md, 2026-12-07).
 * A context of one piece writes O directly. */
static void emit_attn_split(CudaGen *g, Node *n, const KernelChoice *ch, int kc, int vc)
{
    int64_t hq = n->src[0]->shape[1], hkv = n->src[1]->shape[1], dh = n->src[0]->shape[2];
    int minch = ch->p[0], splits = ch->p[1];
    int scratch = cg_scratch(g, (int64_t)splits * 4 * hq * (dh + 2));
    bool rope = n->a.attn.rope;
    int abuf[4];
    int64_t abytes[4];
    int na = ch->p[2] > 0 ? ahead_weights(g, n, 2, ch->p[2], abuf, abytes) : 0;
    KText t;
    FILE *f = cg_text(&t);
    if (rope)
        rope_fn(g, f, &n->a.attn.rope_attr, dh);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(128, 5) KNAME(const RtGpuStep *st, const float *Q, const float *K, "
            "const float *V, float *Kc, float *Vc, float *S, float *O");
    for (int a = 0; a < na; a++)
        fprintf(f, ", const char *P%d", a);
    fprintf(f, ")\n{\n"
               "    pdl_launch();\n");
    if (na)   /* the lookahead, before waiting */
        emit_ahead(f, na, abytes);
    /* before waiting too, where select chose it (EKV: p[3]): the first 8 keys and values of each
       warp that earlier steps left in the caches (the kernel before wrote only this step's) */
    fprintf(f,
            "    enum { HQ = %lld, HKV = %lld, SPLITS = %d, MINCH = %d, CNT = %lld, DH = %lld, ND = %d, KB = 8, EKV = %d };\n"
            "    const float SCALE = %.9ef;\n"
            "    const int T = st->T, pos0 = st->pos0, h = blockIdx.y, t = blockIdx.z, kvh = h / (HQ / HKV);\n"
            "    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
            "    const int L = %s, chunk = max((int)MINCH, (L + SPLITS - 1) / SPLITS), ns = (L + chunk - 1) / chunk;\n"
            "    const int j0 = blockIdx.x * chunk, j1 = min(L, j0 + chunk);\n"
            "    if (t >= T || j0 >= L) return;   /* no piece of the context (never block 0): gone before the wait */\n"
            "    float kp[KB][ND], vp[KB][ND];\n"
            "#pragma unroll\n"
            "    for (int u = 0; u < KB; u++) {\n"
            "        const int j = j0 + warp * KB + u;\n"
            "        const size_t o = ((size_t)j * HKV + kvh) * DH;\n"
            "#pragma unroll\n"
            "        for (int i = 0; i < ND; i++) {\n"
            "            const bool in = EKV && j < j1 && j < pos0 && lane + 32 * i < DH;\n"
            "            kp[u][i] = in ? __ldcg(Kc + o + lane + 32 * i) : 0.f;\n"
            "            vp[u][i] = in ? __ldcg(Vc + o + lane + 32 * i) : 0.f;\n"
            "        }\n"
            "    }\n"
            "    pdl_wait();\n"
            "    if (blockIdx.x == 0 && t == 0 && h %% (HQ / HKV) == 0)\n"
            "        for (int e = threadIdx.x; e < T * %lld; e += 128) {\n"
            "            const int u = e / %lld, d = e %% %lld;\n"
            "            const size_t src = ((size_t)u * HKV + kvh) * %lld, dst = ((size_t)(pos0 + u) * HKV + kvh) * %lld;\n"
            "            Kc[dst + d] = %s;\n"
            "            Vc[dst + d] = V[src + d];\n"
            "        }\n",
            (long long)hq, (long long)hkv, splits, minch, (long long)g->counters, (long long)dh, (int)((dh + 31) / 32),
            ch->p[3], ir_attention_scale(n), n->a.attn.causal ? "pos0 + t + 1" : "pos0 + T",
            (long long)dh, (long long)dh, (long long)dh, (long long)dh, (long long)dh,
            rope ? "KNAME_rope(K + src, d, (float)(pos0 + u))" : "K[src + d]");
    attn_core(f, rope);
    fprintf(f,
            "    float *const out = O + ((size_t)t * HQ + h) * DH;\n"
            "    if (ns == 1) {\n"
            "        for (int d = threadIdx.x; d < DH; d += 128) out[d] = (sacc[0][d] + sacc[1][d] + sacc[2][d] + sacc[3][d]) / lt;\n"
            "        return;\n"
            "    }\n"
            "    float *const P = S + CNT;\n"
            "    float *o = P + (((size_t)blockIdx.x * 4 + t) * HQ + h) * (DH + 2);\n"
            "    for (int d = threadIdx.x; d < DH; d += 128) o[d] = sacc[0][d] + sacc[1][d] + sacc[2][d] + sacc[3][d];\n"
            "    if (threadIdx.x == 0) { o[DH] = phi; o[DH + 1] = lt; }\n"
            "    __threadfence();\n"
            "    __syncthreads();\n"
            "    __shared__ int last;\n"
            "    if (threadIdx.x == 0) {\n"
            "        unsigned *c = (unsigned *)S + t * HQ + h;\n"
            "        last = atomicAdd(c, 1u) == (unsigned)ns - 1;\n"
            "        if (last) *c = 0;\n"
            "    }\n"
            "    __syncthreads();\n"
            "    if (!last) return;\n"
            "    __threadfence();\n"
            "    /* every piece's max, sum and this thread's column at once: one round trip, not three */\n"
            "    const int d = threadIdx.x;   /* DH <= 128 */\n"
            "    float pm[SPLITS], pl[SPLITS], pv[SPLITS], m = NEG_INF, den = 0.f, num = 0.f;\n"
            "#pragma unroll\n"
            "    for (int s = 0; s < SPLITS; s++) {\n"
            "        const float *p = P + (((size_t)s * 4 + t) * HQ + h) * (DH + 2);\n"
            "        pm[s] = s < ns ? __ldcg(p + DH) : NEG_INF;\n"
            "        pl[s] = s < ns ? __ldcg(p + DH + 1) : 0.f;\n"
            "        pv[s] = s < ns && d < DH ? __ldcg(p + d) : 0.f;\n"
            "    }\n"
            "#pragma unroll\n"
            "    for (int s = 0; s < SPLITS; s++) m = fmaxf(m, pm[s]);\n"
            "#pragma unroll\n"
            "    for (int s = 0; s < SPLITS; s++)\n"
            "        if (s < ns) {\n"
            "            const float e = expf(pm[s] - m);\n"
            "            den += pl[s] * e;\n"
            "            num += pv[s] * e;\n"
            "        }\n"
            "    if (d < DH) out[d] = num / den;\n"
            "}\n");
    const char *k = cg_kernel(g, n, &t, "_split");
    int args[RT_MAX_ARGS] = {cg_buf(g, n->src[0]), cg_buf(g, n->src[1]), cg_buf(g, n->src[2]), kc, vc, scratch, cg_buf(g, n)};
    for (int a = 0; a < na; a++)
        args[7 + a] = abuf[a];
    RtLaunch *l = cg_launch(g, n, k, 7 + na, args, 128);
    set_grid(l, splits, (int)hq, 1);
    l->min_T = ch->min_T;
    l->max_T = ch->max_T;
    l->grid_tok[2] = 1;
}

static bool emit_attention(CudaGen *g, Node *n)
{
    int64_t hq = n->src[0]->shape[1], hkv = n->src[1]->shape[1], dh = n->src[0]->shape[2];
    if (dh > 128) {
        diag_error(g->c->diags, n->loc, "the CUDA attention kernels take head_dim up to 128, this one is %lld",
                   (long long)dh);
        return false;
    }
    int kc = pt_new_kv_buf(&g->t, n, 0), vc = pt_new_kv_buf(&g->t, n, 1);
    KText t;
    /* the step's keys and values into the caches at pos0.. */
    FILE *f = cg_text(&t);
    bool rope = n->a.attn.rope;
    if (rope)   /* pass "epilogue" moved k's rotation here */
        rope_fn(g, f, &n->a.attn.rope_attr, dh);
    fprintf(f,
            "extern \"C\" __global__ void __launch_bounds__(128) KNAME(const RtGpuStep *st, const float *K, const float *V, "
            "float *Kc, float *Vc)\n"
            "{\n"
            "    if ((int)blockIdx.x >= st->T) return;\n"
            "    const size_t src = (size_t)blockIdx.x * %lld, dst = (size_t)(st->pos0 + blockIdx.x) * %lld;\n"
            "    for (int e = threadIdx.x; e < %lld; e += 128) {\n"
            "        Kc[dst + e] = %s;\n"
            "        Vc[dst + e] = V[src + e];\n"
            "    }\n"
            "}\n",
            (long long)(hkv * dh), (long long)(hkv * dh), (long long)(hkv * dh),
            rope ? arena_printf(g->c->arena, "KNAME_rope(K + src + e / %lld * %lld, e %% %lld, (float)(st->pos0 + blockIdx.x))",
                                (long long)dh, (long long)dh, (long long)dh)
                 : "K[src + e]");
    const char *k = cg_kernel(g, n, &t, "_kv_store");
    int sargs[] = {cg_buf(g, n->src[1]), cg_buf(g, n->src[2]), kc, vc};
    RtLaunch *l = cg_launch(g, n, k, 4, sargs, 128);
    l->grid_tok[0] = 1;
    int store = g->t.nlaunch - 1;   /* an index: later launches may move the table */

    for (int c = 0; c < n->nchoice; c++) {
        const KernelChoice *ch = &n->choice[c];
        if (ch->family == KF_ATTN_SPLIT) {
            emit_attn_split(g, n, ch, kc, vc);
            g->t.launch[store].min_T = ch->max_T + 1;   /* the split kernel stores the step's keys itself */
        } else if (ch->family == KF_ATTN_MMA) {
            int aargs[] = {cg_buf(g, n->src[0]), kc, vc, cg_buf(g, n)};
            l = cg_launch(g, n, attn_mma_kernel(g, n, ch->y_f16), 4, aargs, 128);
            set_grid(l, 1, (int)hq, 1);
            l->grid_tok[0] = 64;
            l->min_T = ch->min_T;
            l->max_T = ch->max_T;
        } else {
            /* prefill: 16 queries of one head per block (4 per warp) against tiles of
             * 32 keys in shared memory (a key per lane), online softmax per query */
            int nd = (int)((dh + 31) / 32);
            double scale = ir_attention_scale(n);
            f = cg_text(&t);
            prefill_head(g, f, n);
            fprintf(f,
                    "    enum { HQ = %lld, HKV = %lld, DH = %lld, ND = %d, BQ = 16, BK = 32 };\n"
                    "    const float SCALE = %.9ef;\n"
                    "    __shared__ float Qs[BQ][DH], Ks[BK][DH + 1], Vs[BK][DH];\n"
                    "    const int T = st->T, pos0 = st->pos0, t0 = blockIdx.x * BQ, h = blockIdx.y, kvh = h / (HQ / HKV);\n"
                    "    if (t0 >= T) return;\n"
                    "    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
                    "    for (int e = threadIdx.x; e < BQ * DH; e += 128) {\n"
                    "        const int i = e / DH, d = e %% DH;\n"
                    "        Qs[i][d] = t0 + i < T ? %s * SCALE : 0.f;\n"
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
                    rope ? "KNAME_rope(Q + ((size_t)(t0 + i) * HQ + h) * DH, d, (float)(pos0 + t0 + i))"
                         : "Q[((size_t)(t0 + i) * HQ + h) * DH + d]",
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

/* A postfix program as a C expression: $a is v[a] for a < nw (a linear's
 * products), else X(a - nw)[idx] -- E for a linear_ew's operands, X for an
 * elementwise kernel's (nw 0). */
static const char *ew_expr(CudaGen *g, const EwProg *p, int nw, const char *idx)
{
    const char *stack[IR_MAX_EW];
    int sp = 0;
    for (int i = 0; i < p->n; i++) {
        switch ((EwCode)p->code[i]) {
        case EW_LOAD:
            stack[sp++] = p->arg[i] < nw ? arena_printf(g->c->arena, "v[%d]", p->arg[i])
                          : idx ? arena_printf(g->c->arena, "%s%d[%s]", nw ? "E" : "X", p->arg[i] - nw, idx)
                                : arena_printf(g->c->arena, "ev[%d][r][u]", p->arg[i] - nw);
            break;
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
            ew_expr(g, &prog, 0, "i"));
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
    case OP_LINEAR: case OP_LINEAR_EW: return emit_linear(g, n);
    case OP_ROPE: return emit_rope(g, n);
    case OP_ATTENTION: return emit_attention(g, n);
    case OP_SILU: case OP_ADD: case OP_SUB: case OP_MUL: case OP_FUSED: return emit_elementwise(g, n);
    case OP_SOFTMAX: return emit_softmax(g, n);
    case OP_ARGMAX: return emit_argmax(g, n);
    case OP_QUANTIZE: case OP_COUNT: break;   /* pass "quantize" runs for the CPU alone */
    }
    IR_BUG("no CUDA kernel for op %s", ir_op_name(n->op));
}
