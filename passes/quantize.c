/* passes/quantize.c — pass "quantize" (CPU target): linears of block weights
 * take 8-bit activations, as llama.cpp computes them.
 *
 * A linear whose weight is Q8_0, Q4_0 or Q4_1 reads its input through a
 * quantize node instead: x [..., K] becomes q8_1 blocks of 32 (ggml's
 * block_q8_1: d = max|x| / 127 and s = d * sum q as halves, q = x * 127 /
 * max|x| rounded half to even), and the linear's kernel forms integer dot
 * products of the weight's blocks with those (codegen/cpu/kernels.c).
 * Linears of one input share one quantize node, placed just before the
 * first of them.  That is llama.cpp's arithmetic for these types: quantized
 * activations cost about 1e-2 relative error per product against f32
 * (tests/e2e/test_gguf.py checks both against NumPy references), and the
 * integer products run at about twice the speed of widening every weight to
 * f32.  --activations f32 (CompileEnv.f32_activations) skips the pass: the
 * kernels then widen the blocks and compute in f32, bit-identical to
 * dequantizing at load.
 *
 * Requires: "fuse" (linears read their final producers).  Before "plan",
 * which sizes the q8_1 slots (36 bytes per 32 values). */
#include <string.h>

#include "passes/passes.h"

static bool takes_q8(const Node *n)
{
    return n->op == OP_LINEAR && ir_block_bytes(n->src[1]->dt) && n->src[0]->dt == DT_F32 &&
           n->src[0]->rank >= 1 && n->src[0]->shape[n->src[0]->rank - 1] % 32 == 0;
}

bool pass_quantize_act(Compilation *c)
{
    Graph *g = c->graph;
    if (c->env->target != RT_TARGET_CPU || c->env->f32_activations)
        return true;
    int n = g->n, added = 0;
    for (int i = 0; i < n; i++)
        added += takes_q8(g->nodes[i]);
    if (!added)
        return true;
    /* the old order, with each new quantize node inserted before its first reader */
    Node **old = arena_alloc(c->arena, (size_t)n * sizeof *old);
    memcpy(old, g->nodes, (size_t)n * sizeof *old);
    Node **q = arena_alloc(c->arena, (size_t)n * sizeof *q);   /* by operand id: its quantize node */
    memset(q, 0, (size_t)n * sizeof *q);
    Node **order = arena_alloc(c->arena, (size_t)(2 * n) * sizeof *order);
    int m = 0;
    for (int i = 0; i < n; i++) {
        Node *nd = old[i];
        if (takes_q8(nd)) {
            Node *x = nd->src[0];
            if (!q[x->id]) {
                q[x->id] = ir_node(g, OP_QUANTIZE, nd->loc, 1, &x);
                q[x->id]->layer = nd->layer;
                if (!ir_infer_node(q[x->id], c->diags))
                    return false;
                order[m++] = q[x->id];
            }
            nd->src[0] = q[x->id];
        }
        order[m++] = nd;
    }
    IR_ASSERT(m == g->n);
    memcpy(g->nodes, order, (size_t)m * sizeof *order);
    ir_count_uses(g);
    return true;
}
