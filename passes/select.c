/* passes/select.c — pass "select": heuristic dataflow selection (as in
 * FlashDecoding++) for the CUDA target.  Each linear and attention gets a
 * kernel family and tile sizes per range of step sizes T, from its shape,
 * weight dtype and the GPU's multiprocessor count; the runtime picks the
 * variant by T at each step.  --print-after=select shows each choice and why.
 *
 *   linear, T <= 4        GEMV: one warp per 1-2 weight rows (whichever spreads
 *                         the blocks more evenly over the SMs), 16-byte loads,
 *                         all T tokens per row read (decode is memory-bound);
 *                         2-8 loads per lane in flight, by the blocks an SM
 *                         holds; rows prefetched to L2 only as far as it holds
 *   linear, 5 <= T <= 32  flat GEMM: tensor cores (mma m16n8k16) with M tiles
 *                         of 32 rather than 128, so little of the tile is padding
 *   linear, T > 32        tiled tensor-core GEMM, 64 or 128 rows per tile
 *                         (64 when there are too few N tiles to fill the SMs,
 *                         128 from T = 512)
 *   linear, 5 <= T < 512  K split over up to 8 blocks per output tile when
 *                         the tiles leave most SMs idle (split-K)
 *   linear, T >= 512, f16 wide tiles: 128 x 256, warps of 64 x 64, a 3-4
 *                         step cp.async pipeline for the weights; the blocks
 *                         running at once take the M tiles of a few weight tiles;
 *                         on sm_90 the same tiles on wgmma (two warpgroups of
 *                         64 x 256, steps of 64, four weight stages)
 *
 * The tensor cores take 16-bit operands; activations are f32.  Rounding them
 * to bf16 (8 bits) costs about 1e-2 relative error in the logits of a 16-layer
 * model, to f16 about 1.5e-3 (measured against HF in float32), so each
 * activation goes in as two 16-bit terms, hi + lo, at twice the tensor-core
 * work: the error is then the weights' own.  Past T = 512 the GEMM is
 * compute-bound and f16 activations go in as one term, as fp16 frameworks
 * compute.
 *   rms_norm              folded into the GEMV variants of the one launch that
 *                         reads it (each block normalizes its tokens' rows)
 *   attention, T <= 4     split-KV decoding with a unified max (async softmax)
 *   attention, 5..63      16 queries of a head per block against 32-key tiles
 *                         in shared memory, online softmax, all f32
 *   attention, T >= 64    FlashAttention-2 on the tensor cores: 64 queries x
 *                         64-key tiles, f16 operands, f32 accumulators
 *
 * Tensor cores need f16/bf16 weights and K a multiple of 8; otherwise the
 * GEMV kernel runs every step size, four tokens per block row.  On the CPU
 * target this pass changes nothing (its kernels have one shape). */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

static KernelChoice *choices(Compilation *c, Node *n, int count)
{
    n->choice = arena_alloc(c->arena, (size_t)count * sizeof *n->choice);
    n->nchoice = count;
    for (int i = 0; i < count; i++)
        n->choice[i] = (KernelChoice){0};
    return n->choice;
}

/* The rows a linear's launch computes: its own, those of the linears
 * grouped with it, or (linear_ew) one per product. */
static int64_t launch_rows(const Graph *g, const Node *n)
{
    if (n->op == OP_LINEAR_EW)
        return n->a.lew.nw * n->src[1]->shape[0];
    const Node *parts[IR_MAX_GROUP];
    int64_t rows = 0;
    for (int i = ir_group(g, n, parts); i-- > 0;)
        rows += parts[i]->src[1]->shape[0];
    return rows;
}

/* The GEMV blocks of a launch at `rows` rows per warp and `split` warps per
 * row: a linear_ew's warps compute that many rows of every product, so its
 * products share blocks. */
static int64_t gemv_blocks(const Graph *g, const Node *n, int rows, int split)
{
    int64_t N = n->op == OP_LINEAR_EW ? n->src[1]->shape[0] : launch_rows(g, n);
    int per = 8 * rows / split;
    return (N + per - 1) / per;
}

/* Rows per warp of a GEMV: the blocks go to the SMs in turn and the launch
 * lasts as long as the busiest SM, so 1 or 2 rows, whichever loads the SMs
 * more evenly (2 on a tie: fewer blocks; 4 measured slower on the H100, 8B
 * decode 115 tok/s against 123 with two).  One row of each weight for
 * gate/up's two products (two of each: 8B gate+up 115 us against 90 us for
 * the two linears apart). */
static int gemv_rows(const Graph *g, const Node *n, int sms)
{
    if (n->op == OP_LINEAR_EW)
        return 1;
    int rows = 2;
    double best = 0;
    for (int r = 2; r >= 1; r--) {
        int64_t b = gemv_blocks(g, n, r, 1);
        double even = (double)b / ((double)sms * (double)((b + sms - 1) / sms));
        if (even > best + 1e-9) {
            best = even;
            rows = r;
        }
    }
    return rows;
}

/* The linear launch (a linear, or its group's lead) that alone reads r, as
 * its x; NULL if anything else reads r. */
static const Node *sole_x_launch(const Graph *g, const Node *r)
{
    const Node *launch = NULL;
    for (int i = r->id + 1; i < g->n; i++) {
        const Node *m = g->nodes[i];
        for (int k = 0; k < m->nsrc; k++) {
            if (m->src[k] != r)
                continue;
            const Node *l = m->lead ? m->lead : m;
            if (k != 0 || (m->op != OP_LINEAR && m->op != OP_LINEAR_EW) || (launch && launch != l))
                return NULL;
            launch = l;
        }
    }
    return launch;
}

/* Linear n's launch alone reads its input, an rms_norm: select_norm folds
 * the norm into its GEMV, whose every block reads the row and sums its
 * squares before it loads a weight. */
static bool reads_own_norm(const Graph *g, const Node *n)
{
    return n->src[0]->op == OP_RMS_NORM && sole_x_launch(g, n->src[0]) == n;
}

/* Warps per GEMV row (1, 2 or 4).  On the H100, 1B's down projection (256
 * blocks, 2 per SM) read its weights at 1.4 TB/s and gate+up (1024 blocks) at
 * 2.1: too few warps in flight.  So a one-row-per-warp launch of fewer than 3
 * blocks per SM splits each row's K over 2 or 4 warps (each with 2+ chunks of
 * 256 columns) until it has 4 per SM; one product per launch, 16-byte loads.
 * Measured (same runs, H100): 1B decode 650 -> 699 tok/s with its o/down split
 * 4 ways and qkv 2 ways; 8B's 512-block launches split 2 ways went from 136.5
 * to 132.9, hence the 3 blocks per SM, and none for two-row launches.  Nor
 * for a GEMV with its norm folded in: each block pays for the norm before its
 * loads, so fewer blocks -- the 1B qkv GEMV with 384 blocks in one wave, not
 * 768 in two: decode 829.0-830.1 -> 843.7 tok/s (H100, same run,
 * bench/RESULTS.md, 2026-12-06). */
static int gemv_split(const Graph *g, const Node *n, int rows, bool vec, int sms)
{
    int64_t K = n->src[1]->shape[1];
    if (!vec || rows != 1 || (n->op == OP_LINEAR_EW && n->a.lew.nw > 1) || gemv_blocks(g, n, 1, 1) >= 3 * (int64_t)sms ||
        reads_own_norm(g, n))
        return 1;
    int split = 1;
    while (split < 4 && gemv_blocks(g, n, rows, split) < 4 * (int64_t)sms && K >= 512 * 2 * split)
        split *= 2;
    return split;
}

/* The N tiles of a tensor-core launch: 128 columns each, or 128 / nw of each
 * of a linear_ew's nw products. */
static int64_t mma_ntiles(const Graph *g, const Node *n)
{
    if (n->op == OP_LINEAR_EW) {
        int per = 128 / n->a.lew.nw;
        return (n->src[1]->shape[0] + per - 1) / per;
    }
    const Node *parts[IR_MAX_GROUP];
    int64_t tiles = 0;
    for (int i = ir_group(g, n, parts); i-- > 0;)
        tiles += (parts[i]->src[1]->shape[0] + 127) / 128;
    return tiles;
}

/* K splits of a tensor-core choice for T in [min_T, max_T].  A block computes
 * one BM x 128 tile over all of K, so a launch with few N tiles (o_proj and
 * down of a 2048-wide model: 16) gives a short prompt a block for every 8th
 * SM, each reading all of K (8192 for down: the flat GEMM at 5.7x cuBLAS's
 * time at M = 16, H100).  So K is split over up to 8 blocks per tile,
 * doubling while the launch at its fewest M tiles still has at most one block
 * per SM and each block keeps 8+ steps of 32; the last block of a tile to
 * finish adds the others' sums (through the scratch buffer) and applies the
 * epilogue. */
static int mma_ksplit(const Graph *g, const Node *n, int BM, int64_t min_T, int64_t max_T, int sms)
{
    int64_t nk = (n->src[1]->shape[1] + 31) / 32, nt = mma_ntiles(g, n);
    int64_t fewest = nt * ((min_T + BM - 1) / BM), most = nt * ((max_T + BM - 1) / BM);
    int ks = 1;
    while (max_T && ks < 8 && fewest * ks * 2 <= sms && nk / (ks * 2) >= 8 && most <= IR_KSPLIT_MAX_TILES)
        ks *= 2;
    return ks;
}

static const char *ksplit_why(Compilation *c, const Node *n, const KernelChoice *k, const char *why, int sms)
{
    int ks = ir_mma_ksplit(k);
    if (ks == 1)
        return why;
    int64_t tiles = mma_ntiles(c->graph, n) * ((k->min_T + k->p[0] - 1) / k->p[0]);
    return arena_printf(c->arena, "%s; K split %d ways: %lld tiles at T=%lld for %d SMs", why, ks, (long long)tiles,
                        (long long)k->min_T, sms);
}

/* 16-byte loads a GEMV lane issues per row and product before it uses any.
 * One row per warp: 8.  Two (rows or products): as many as the registers of
 * the blocks an SM holds at once allow -- 2 at 4+ blocks per SM (64
 * registers), 3 at 3 (80), 4 at 1-2 (128): a launch with few blocks per SM
 * needs more bytes in flight per warp to keep the memory busy (8B down: 256
 * blocks, 2 rows per warp, read at 74% of the copy bandwidth with 2; H200). */
static int gemv_batch(int64_t blocks, int rows, int nw, int sms)
{
    if (rows * nw == 1)
        return 8;
    int64_t per_sm = (blocks + sms - 1) / sms;
    return per_sm <= 2 ? 4 : per_sm == 3 ? 3 : 2;
}

/* Lines of 128 bytes of each weight row a GEMV warp asks the L2 to fetch
 * before it waits for the kernel before it: the rows of every block an SM
 * holds at once, together at most GEMV_PREFETCH_BYTES.  Whole rows (the rule
 * before) of 8B's gate+up -- 528 blocks of 16 rows of 8 KB, 67 MB, more than
 * the H100's 50 MB of L2 -- were evicted before they were read and read
 * again: 294 MB from DRAM for 235 MB of weights (Nsight Compute, H200; the
 * lm_head 1.41 GB for 1.05).  Decode tok/s on the H100, 1B / 8B: whole rows
 * 756.2 / 142.4; at most 32 MB 759.3 / 159.0; 16 MB 799.4 and 795.7 / 162.9
 * and 163.2; 8 MB 812.7 / 163.8 (bench/RESULTS.md, 2026-12-05).
 * MODELC_GEMV_PREFETCH_KB sets another budget (0: none), for tuning runs. */
enum { GEMV_PREFETCH_BYTES = 8 << 20 };

static int64_t gemv_prefetch_budget(void)
{
    const char *v = getenv("MODELC_GEMV_PREFETCH_KB");
    char *end;
    long long kb = v && *v ? strtoll(v, &end, 10) : -1;
    return v && *v && !*end && kb >= 0 && kb <= (1 << 30) ? (int64_t)kb << 10 : GEMV_PREFETCH_BYTES;
}

/* Decode attention reads little and waits much: its blocks pull the first
 * ATTN_PREFETCH_KB of the weights of the launch after the next (the MLP's
 * gate+up, behind o_proj) into L2 meanwhile, so that DRAM works while they
 * wait.  H100, Llama-3.2-1B decode, same run (bench/RESULTS.md, 2026-12-07):
 * 831.1 tok/s without, 843.5 with 8 MB, 841.5 with 16, 839.1 with 24.
 * MODELC_ATTN_PREFETCH_KB=N sets it (0: none). */
enum { ATTN_PREFETCH_KB = 8192 };

static int attn_prefetch_kb(void)
{
    const char *v = getenv("MODELC_ATTN_PREFETCH_KB");
    char *end;
    long kb = v && *v ? strtol(v, &end, 10) : -1;
    return v && *v && !*end && kb >= 0 && kb <= (1 << 20) ? (int)kb : ATTN_PREFETCH_KB;
}

static int gemv_prefetch(const Node *n, int64_t blocks, int rows, int nw, int split, int batch, int sms)
{
    int64_t K = n->src[1]->shape[1], esz = n->src[1]->dt == DT_F32 ? 4 : 2, lines = (K * esz + 127) / 128;
    /* blocks an SM holds: the kernel's bound, or 6 where it has none (an estimate on the high side:
       the one-row kernels took 38-65 registers in Nsight Compute, 3-6 blocks) */
    int per_sm = ir_gemv_min_blocks(batch) ? ir_gemv_min_blocks(batch) : 6;
    int64_t held = blocks < (int64_t)per_sm * sms ? blocks : (int64_t)per_sm * sms;
    int64_t fit = gemv_prefetch_budget() / (held * (8 / split) * rows * nw * 128);
    if (fit > lines)
        fit = lines;
    return fit < 1 ? -1 : (int)(fit < 128 ? fit : 128);   /* -1: none */
}

/* Steps of 64 columns of weights in the wgmma GEMM's shared memory: 4 x 32 KB, with the
 * activations' 3 x 16 KB, of the 227 KB a block of sm_90 may have. */
enum { WGMMA_STAGES = 4, WGMMA_MIN_T = 512 };

static void select_linear(Compilation *c, Node *n, int sms)
{
    const Node *w = n->src[1];
    int64_t N = launch_rows(c->graph, n), K = w->shape[1];
    bool half = w->dt == DT_F16 || w->dt == DT_BF16;
    bool vec = K % 8 == 0 && (half || w->dt == DT_F32);
    bool mma = half && K % 8 == 0;
    KernelChoice *k = choices(c, n, mma ? 5 : 2);
    int rows = gemv_rows(c->graph, n, sms), split = gemv_split(c->graph, n, rows, vec, sms);
    int64_t blocks = gemv_blocks(c->graph, n, rows, split);
    int nw = n->op == OP_LINEAR_EW ? n->a.lew.nw : 1, batch = vec ? gemv_batch(blocks, rows, nw, sms) : 0;
    k[0] = (KernelChoice){.family = KF_GEMV, .min_T = 1, .max_T = 4,
                          .p = {rows, vec, split, batch, vec ? gemv_prefetch(n, blocks, rows, nw, split, batch, sms) : 0},
                          .why = arena_printf(c->arena, "M<=4 is memory-bound: %lld rows in %lld blocks of 8 warps on %d SMs "
                                              "(the busiest SM has %lld)%s",
                                              (long long)N, (long long)blocks, sms, (long long)((blocks + sms - 1) / sms),
                                              split > 1 ? "; K split over the warps of a row, for more warps in flight" : "")};
    if (!mma) {
        k[1] = (KernelChoice){.family = KF_GEMV, .min_T = 5, .p = {rows, vec},
                              .why = half ? "K is not a multiple of 8: no tensor-core path; 4 tokens per block row"
                                          : "weights are not f16/bf16: no tensor-core path; 4 tokens per block row"};
        return;
    }
    k[1] = (KernelChoice){.family = KF_MMA, .min_T = 5, .max_T = 32, .p = {32, 128, 32, 8, 1},
                          .why = "flat GEMM: M padded to 32, not 128"};
    k[2] = (KernelChoice){.family = KF_MMA, .min_T = 33, .max_T = 64, .p = {64, 128, 32, 8, 1},
                          .why = "M tile 64 fits the step"};
    int64_t ntiles = (N + 127) / 128;
    bool big = ntiles * 2 >= sms;
    k[3] = (KernelChoice){.family = KF_MMA, .min_T = 65, .max_T = 511, .p = {big ? 128 : 64, 128, 32, 8, 1},
                          .why = arena_printf(c->arena, "%lld N tiles fill %s half of %d SMs%s", (long long)ntiles,
                                              big ? "at least" : "less than", sms, big ? "" : ": M tiles of 64")};
    /* from T = 512 the GEMM is compute-bound: f16 activations go in as one term (as in an fp16
       framework), bf16 keeps hi + lo (one bf16 term costs ~1e-2 in the logits).  f16 takes the
       128 x 256 tiles: 2048-token prefill +6% (1B) and +13% (8B) over 128 x 128 on the H100
       (bench/RESULTS.md, 2026-12-06) */
    bool one = w->dt == DT_F16;
    k[4] = (KernelChoice){.family = KF_MMA, .min_T = 512, .p = {128, one ? 256 : 128, 32, 8, one ? 0 : 1},
                          .why = one ? "long prompt: compute-bound, so f16 activations as one term; 128 x 256 tiles, "
                                       "warps of 64 x 64, M tiles side by side sharing weight tiles"
                                     : "long prompt: 4+ M tiles per N tile fill the SMs"};
    /* sm_90a: the same tiles on the warpgroup MMA (wgmma), which reads both operands from shared
       memory and runs while the warps load the next step: mma.sync with one block of 8 warps per
       SM kept the tensor pipe 35% busy (Nsight Compute, bench/RESULTS.md, 2026-12-06) */
    if (one && (c->env->sm ? c->env->sm : 90) == 90)
        k[4] = (KernelChoice){.family = KF_WGMMA, .min_T = WGMMA_MIN_T, .p = {128, 256, 64, 2, WGMMA_STAGES},
                              .why = "long prompt: compute-bound, so f16 activations as one term; 128 x 256 tiles, a "
                                     "warpgroup MMA per 64 rows from 128-byte-swizzled shared memory, one step in "
                                     "flight, weights through a cp.async pipeline, M tiles side by side sharing "
                                     "weight tiles"};
    for (int i = 1; i < 4; i++) {
        k[i].p[5] = mma_ksplit(c->graph, n, k[i].p[0], k[i].min_T, k[i].max_T, sms);
        k[i].why = ksplit_why(c, n, &k[i], k[i].why, sms);
    }
}

/* Decode attention: each warp loads its first 8 cached keys and values (written by earlier
 * steps) before it waits for the kernel before, and holds them in 2 x 8 x head_dim/32
 * registers across the wait.  The kernel has 96 registers: at head_dim 64 that fits (no
 * spill), at 128 ptxas spills 280 bytes (28 without the early loads).  H100, same run
 * (bench/RESULTS.md, 2026-12-07, seventeenth session): Llama-3.2-1B (head_dim 64) 870.0
 * tok/s with them, 863.0 without; Llama-3.1-8B (128) 159.0 with, 166.2 without.
 * MODELC_NO_EARLY_KV=1 turns them off for every head_dim. */
enum { ATTN_EARLY_KV_MAX_DH = 64 };

static void select_attention(Compilation *c, Node *n)
{
    int64_t dh = n->src[0]->shape[2];
    bool tc = dh % 16 == 0 && dh <= 128;
    KernelChoice *k = choices(c, n, tc ? 3 : 2);
    int ahead = attn_prefetch_kb();
    bool early = dh <= ATTN_EARLY_KV_MAX_DH && !getenv("MODELC_NO_EARLY_KV");
    k[0] = (KernelChoice){.family = KF_ATTN_SPLIT, .min_T = 1, .max_T = 4, .p = {32, 16, ahead, early},
                          .why = arena_printf(c->arena, "decode: the context in up to 16 pieces of 32+ keys, one unified "
                                              "max, the last piece of a head adds them up%s%s",
                                              ahead ? arena_printf(c->arena, "; pulls the first %d KB of the weights of "
                                                                   "the second linear launch after it into L2", ahead)
                                                    : "",
                                              early ? "; each warp loads its first 8 cached keys and values before "
                                                      "waiting for the kernel before"
                                                    : dh > ATTN_EARLY_KV_MAX_DH
                                                        ? arena_printf(c->arena, "; no early cached keys (at head_dim > %d "
                                                                       "they spill registers)", ATTN_EARLY_KV_MAX_DH)
                                                        : "")};
    k[1] = (KernelChoice){.family = KF_ATTN_ROWS, .min_T = 5, .max_T = tc ? 63 : 0,
                          .why = tc ? "short prompt: 16 queries x 32-key tiles in f32, online softmax"
                                    : "prefill: 16 queries x 32-key tiles in f32, online softmax (head_dim not a multiple "
                                      "of 16: no tensor cores)"};
    if (tc)
        k[2] = (KernelChoice){.family = KF_ATTN_MMA, .min_T = 64,
                              .why = "long prompt: FlashAttention-2 tiles of 64 queries x 64 keys on the tensor cores "
                                     "(f16 operands, f32 sums)"};
}

/* An rms_norm read by one linear launch alone (as its input x) is folded into
 * that launch's GEMV variants: each GEMV block normalizes the rows it reads
 * (its tokens' sums of squares from x, then x * inv * g as it loads), so
 * decode runs no norm kernel.  Every block reads the whole row again, so not
 * for launches of more than NORM_FOLD_BLOCKS blocks (the lm_head). */
enum { NORM_FOLD_BLOCKS = 2048 };

static void select_norm(Compilation *c, Node *r)
{
    const Graph *g = c->graph;
    if (r->output || r->rank != 2 || r->shape[0] != DIM_SEQ)
        return;
    const Node *launch = sole_x_launch(g, r);
    if (!launch || launch->nchoice == 0 || launch->choice[0].family != KF_GEMV)
        return;
    /* the GEMV reads the norm's input where it runs: no kernel may run in between (the plan may reuse its slot) */
    for (int i = r->id + 1; i < launch->id; i++)
        if (!(ir_ops[g->nodes[i]->op].flags & (OPF_LEAF | OPF_VIEW)))
            return;
    int64_t blocks = gemv_blocks(g, launch, launch->choice[0].p[0], ir_gemv_warps_per_row(&launch->choice[0]));
    if (blocks > NORM_FOLD_BLOCKS)
        return;
    KernelChoice *k = choices(c, r, launch->nchoice);
    for (int i = 0; i < launch->nchoice; i++) {
        const KernelChoice *lc = &launch->choice[i];
        bool fold = lc->family == KF_GEMV;
        k[i] = (KernelChoice){.family = fold ? KF_NORM_IN_GEMV : KF_NORM_ROWS, .min_T = lc->min_T, .max_T = lc->max_T,
                              .why = fold ? arena_printf(c->arena, "no kernel: the GEMV of %%%d normalizes its %lld blocks' rows",
                                                         launch->id, (long long)blocks)
                                          : "a block per row, for the tensor-core GEMM that reads it"};
    }
}

/* ---- f16 activations for the wgmma GEMMs ------------------------------------------ */

/* The launch whose last variant reads `n` as its x, if `n` is a linear's x:
 * the linear itself or its group's lead. */
static const Node *x_reader(const Node *m, const Node *n)
{
    if ((m->op != OP_LINEAR && m->op != OP_LINEAR_EW) || m->src[0] != n)
        return NULL;
    for (int k = 1; k < m->nsrc; k++)
        if (m->src[k] == n)
            return NULL;
    return m->lead ? m->lead : m;
}

static bool wgmma_last(const Node *l)
{
    return l->nchoice > 0 && l->choice[l->nchoice - 1].family == KF_WGMMA && l->choice[l->nchoice - 1].min_T == WGMMA_MIN_T;
}

/* Whether every reader of n (through views) is a linear's x whose launch ends
 * in a wgmma variant; marks those variants' x f16 when `mark`. */
static bool only_wgmma_readers(Graph *g, const Node *n, bool mark)
{
    int readers = 0;
    for (int i = n->id + 1; i < g->n; i++) {
        Node *m = g->nodes[i];
        bool reads = false;
        for (int k = 0; k < m->nsrc; k++)
            reads |= m->src[k] == n;
        if (!reads)
            continue;
        if (ir_ops[m->op].flags & OPF_VIEW) {
            if (m->output || m->src[0] != n || !only_wgmma_readers(g, m, mark))
                return false;
            readers++;
            continue;
        }
        const Node *l = x_reader(m, n);
        if (!l || !wgmma_last(l))
            return false;
        if (mark)
            ((Node *)l)->choice[l->nchoice - 1].x_f16 = true;
        readers++;
    }
    return readers > 0;
}

/* The variant of producer p that runs from WGMMA_MIN_T on, split off its last
 * one if that starts earlier; NULL if p has none that could write f16. */
static KernelChoice *producer_tail(Compilation *c, Node *p)
{
    if (p->nchoice == 0 || p->output)
        return NULL;
    KernelChoice *last = &p->choice[p->nchoice - 1];
    bool fits = (p->op == OP_RMS_NORM && last->family == KF_NORM_ROWS) ||
                (p->op == OP_ATTENTION && last->family == KF_ATTN_MMA) ||
                (p->op == OP_LINEAR_EW && last->family == KF_WGMMA);
    if (!fits || last->max_T != 0 || last->min_T > WGMMA_MIN_T)
        return NULL;
    if (last->min_T < WGMMA_MIN_T) {
        KernelChoice *k = arena_alloc(c->arena, (size_t)(p->nchoice + 1) * sizeof *k);
        memcpy(k, p->choice, (size_t)p->nchoice * sizeof *k);
        k[p->nchoice] = k[p->nchoice - 1];
        k[p->nchoice - 1].max_T = WGMMA_MIN_T - 1;
        k[p->nchoice].min_T = WGMMA_MIN_T;
        p->choice = k;
        last = &k[p->nchoice++];
    }
    return last;
}

/* A wgmma GEMM reads its activations as f16 by cp.async, like its weights,
 * where whatever writes them can write f16 instead of f32 (a norm, the
 * prefill attention, the gate+up GEMM) and nothing else reads them: half the
 * bytes through the L2 and no registers staging them.  The rounding is the
 * one the f32 -> f16 load did. */
static void select_half_x(Compilation *c)
{
    Graph *g = c->graph;
    for (int i = 0; i < g->n; i++) {
        Node *p = g->nodes[i];
        if ((p->op != OP_RMS_NORM && p->op != OP_ATTENTION && p->op != OP_LINEAR_EW) || p->dt != DT_F32 ||
            !only_wgmma_readers(g, p, false))
            continue;
        KernelChoice *k = producer_tail(c, p);
        if (!k)
            continue;
        k->y_f16 = true;
        only_wgmma_readers(g, p, true);
    }
}

bool pass_select_kernels(Compilation *c)
{
    if (c->env->target != RT_TARGET_CUDA)
        return true;
    int sms = c->env->sms > 0 ? c->env->sms : 132;
    Graph *g = c->graph;
    for (int i = 0; i < g->n; i++) {
        Node *n = g->nodes[i];
        if ((n->op == OP_LINEAR && !n->lead) || n->op == OP_LINEAR_EW)
            select_linear(c, n, sms);
        else if (n->op == OP_ATTENTION)
            select_attention(c, n);
    }
    for (int i = 0; i < g->n; i++)
        if (g->nodes[i]->op == OP_RMS_NORM)
            select_norm(c, g->nodes[i]);
    select_half_x(c);
    return true;
}
