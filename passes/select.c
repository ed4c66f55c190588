/* passes/select.c — pass "select": heuristic dataflow selection (as in
 * FlashDecoding++) for the CUDA target.  Each linear and attention gets a
 * kernel family and tile sizes per range of step sizes T, from its shape,
 * weight dtype and the GPU's multiprocessor count; the runtime picks the
 * variant by T at each step.  --print-after=select shows each choice and why.
 *
 *   linear, T <= 4        GEMV: one warp per 1-2 weight rows, 16-byte loads,
 *                         all T tokens per row read (decode is memory-bound)
 *   linear, 5 <= T <= 32  flat GEMM: tensor cores (mma m16n8k16) with M tiles
 *                         of 32 rather than 128, so little of the tile is padding
 *   linear, T > 32        tiled tensor-core GEMM, 64 or 128 rows per tile
 *                         (64 when there are too few N tiles to fill the SMs,
 *                         128 from T = 512)
 *
 * The tensor cores take 16-bit operands; activations are f32.  Rounding them
 * to bf16 (8 bits) costs about 1e-2 relative error in the logits of a 16-layer
 * model, to f16 about 1.5e-3 (measured against HF in float32), so each
 * activation goes in as two 16-bit terms, hi + lo, at twice the tensor-core
 * work: the error is then the weights' own.
 *   attention, T <= 4     split-KV decoding with a unified max (async softmax)
 *   attention, T > 4      16 queries of a head per block against 32-key tiles
 *                         in shared memory, online softmax
 *
 * Tensor cores need f16/bf16 weights and K a multiple of 8; otherwise the
 * GEMV kernel runs every step size, four tokens per block row.  On the CPU
 * target this pass changes nothing (its kernels have one shape). */
#include "passes/passes.h"

static KernelChoice *choices(Compilation *c, Node *n, int count)
{
    n->choice = arena_alloc(c->arena, (size_t)count * sizeof *n->choice);
    n->nchoice = count;
    for (int i = 0; i < count; i++)
        n->choice[i] = (KernelChoice){0};
    return n->choice;
}

static void select_linear(Compilation *c, Node *n, int sms)
{
    const Node *w = n->src[1];
    int64_t N = w->shape[0], K = w->shape[1];
    bool half = w->dt == DT_F16 || w->dt == DT_BF16;
    bool vec = K % 8 == 0 && (half || w->dt == DT_F32);
    bool mma = half && K % 8 == 0;
    KernelChoice *k = choices(c, n, mma ? 5 : 2);
    /* two rows per warp when there are still blocks for every SM (four measured slower on the H100:
       8B decode 115 tok/s against 123 with two) */
    int rows = (N + 15) / 16 >= sms ? 2 : 1;
    k[0] = (KernelChoice){.family = KF_GEMV, .min_T = 1, .max_T = 4, .p = {rows, vec},
                          .why = arena_printf(c->arena, "M<=4 is memory-bound: %lld rows in %lld blocks of 8 warps on %d SMs",
                                              (long long)N, (long long)((N + 8 * rows - 1) / (8 * rows)), sms)};
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
                          .why = arena_printf(c->arena, "%lld N tiles %s half of %d SMs", (long long)ntiles,
                                              big ? "fill at least" : "fill less than: smaller M tiles,", sms)};
    k[4] = (KernelChoice){.family = KF_MMA, .min_T = 512, .p = {128, 128, 32, 8, 1},
                          .why = "long prompt: 4+ M tiles per N tile fill the SMs"};
}

static void select_attention(Compilation *c, Node *n)
{
    KernelChoice *k = choices(c, n, 2);
    k[0] = (KernelChoice){.family = KF_ATTN_SPLIT, .min_T = 1, .max_T = 4, .p = {128},
                          .why = "decode: the context split in 128-key pieces, one unified max, pieces summed"};
    k[1] = (KernelChoice){.family = KF_ATTN_ROWS, .min_T = 5,
                          .why = "prefill: 16 queries x 32-key tiles in shared memory per block, online softmax"};
}

bool pass_select_kernels(Compilation *c)
{
    if (c->env->target != RT_TARGET_CUDA)
        return true;
    int sms = c->env->sms > 0 ? c->env->sms : 132;
    Graph *g = c->graph;
    for (int i = 0; i < g->n; i++) {
        Node *n = g->nodes[i];
        if (n->op == OP_LINEAR)
            select_linear(c, n, sms);
        else if (n->op == OP_ATTENTION)
            select_attention(c, n);
    }
    return true;
}
