/* passes/epilogue.c — pass "epilogue" (CUDA target): linears take on the
 * work beside them, so a decode step runs fewer, fuller kernels.
 *
 *   1. An elementwise node whose operands include linears of one input and
 *      one width, each read only there, becomes one linear_ew node: the
 *      kernel forms those products together and runs the elementwise
 *      program on them as it stores, reading the other operands there.  In
 *      a Llama block: x + o_proj(a) and x + down(m) (the residual adds),
 *      silu(gate(h)) * up(h).
 *   2. attention(rope(q), rope(k), v), each rope read there alone, becomes
 *      attention(q, k, v) {rope}: the attention kernels rotate q as they
 *      load it and k as they store it in the cache.
 *   3. Linears of one input that are left (q, k and v of a block) share a
 *      launch: the first is the lead and computes them all; the others
 *      point at it (Node.lead) and get no kernel of their own.  At most
 *      IR_MAX_GROUP to a launch.
 *
 * Requires: "fuse" (elementwise chains are single nodes).  Before "plan",
 * which places a grouped linear's output as written at its lead.  The CPU
 * target skips this pass: its linear kernels already read x once per
 * weight tile, and it has no launches to save. */
#include "passes/passes.h"

void fold_remove_dead(Graph *g);

static bool plain_weight(const Node *w)
{
    return w->dt == DT_F32 || w->dt == DT_F16 || w->dt == DT_BF16;
}

/* A linear whose kernel may take on more: [seq, N] of f32/f16/bf16 weights. */
static bool plain_linear(const Node *l)
{
    return l->op == OP_LINEAR && !l->lead && l->rank == 2 && l->shape[0] == DIM_SEQ && plain_weight(l->src[1]);
}

/* ... and read by one elementwise node alone. */
static bool absorbable(const Node *l)
{
    return plain_linear(l) && l->nuses == 1 && !l->output;
}

static void absorb_linears(Node *n)
{
    EwProg p;
    ir_ew_program(n, &p);
    const Node *first = NULL;
    for (int k = 0; k < n->nsrc && !first; k++)
        if (absorbable(n->src[k]))
            first = n->src[k];
    if (!first)
        return;
    /* the products: linears of first's input, width and weight dtype */
    int map[IR_MAX_SRC], nw = 0, ne = 0;
    Node *w[IR_MAX_SRC], *e[IR_MAX_SRC];
    for (int k = 0; k < n->nsrc; k++) {
        Node *s = n->src[k];
        if (absorbable(s) && s->src[0] == first->src[0] && s->src[1]->shape[0] == first->src[1]->shape[0] &&
            s->src[1]->dt == first->src[1]->dt) {
            map[k] = nw;
            w[nw++] = s->src[1];
        } else {
            map[k] = -1 - ne;
            e[ne++] = s;
        }
    }
    if (1 + nw + ne > IR_MAX_SRC)
        return;   /* only if the elementwise node had IR_MAX_SRC operands, none of them products */
    for (int k = 0; k < n->nsrc; k++)
        if (map[k] >= 0)
            n->src[k]->nuses = 0;
    EwProg q = p;
    for (int i = 0; i < q.n; i++)
        if (q.code[i] == EW_LOAD)
            q.arg[i] = (uint8_t)(map[p.arg[i]] >= 0 ? map[p.arg[i]] : nw - 1 - map[p.arg[i]]);
    Node *x = first->src[0];
    n->op = OP_LINEAR_EW;
    n->a.lew.ew = q;
    n->a.lew.nw = nw;
    n->nsrc = 1 + nw + ne;
    n->src[0] = x;
    for (int i = 0; i < nw; i++)
        n->src[1 + i] = w[i];
    for (int i = 0; i < ne; i++)
        n->src[1 + nw + i] = e[i];
}

static bool same_rope(const RopeAttr *a, const RopeAttr *b)
{
    return a->theta == b->theta && a->llama3 == b->llama3 &&
           (!a->llama3 || (a->factor == b->factor && a->low_freq == b->low_freq && a->high_freq == b->high_freq &&
                           a->orig_ctx == b->orig_ctx));
}

static void absorb_rope(Node *n)
{
    Node *q = n->src[0], *k = n->src[1];
    if (q->op != OP_ROPE || k->op != OP_ROPE || q == k || q->nuses != 1 || k->nuses != 1 || q->output || k->output ||
        !same_rope(&q->a.rope, &k->a.rope))
        return;
    n->a.attn.rope = true;
    n->a.attn.rope_attr = q->a.rope;
    n->src[0] = q->src[0];
    n->src[1] = k->src[0];
    q->nuses = k->nuses = 0;
}

static void group_siblings(Graph *g, int i)
{
    Node *l = g->nodes[i];
    int count = 1;
    for (int j = i + 1; j < g->n && count < IR_MAX_GROUP; j++) {
        Node *m = g->nodes[j];
        if (plain_linear(m) && m->src[0] == l->src[0] && m->src[1]->dt == l->src[1]->dt) {
            m->lead = l;
            count++;
        }
    }
}

bool pass_epilogue(Compilation *c)
{
    if (c->env->target != RT_TARGET_CUDA)
        return true;
    Graph *g = c->graph;
    ir_count_uses(g);
    for (int i = 0; i < g->n; i++) {
        if (ir_ops[g->nodes[i]->op].flags & OPF_ELEMENTWISE)
            absorb_linears(g->nodes[i]);
        else if (g->nodes[i]->op == OP_ATTENTION)
            absorb_rope(g->nodes[i]);
    }
    fold_remove_dead(g);
    for (int i = 0; i < g->n; i++) {
        Node *l = g->nodes[i];
        if (plain_linear(l))
            group_siblings(g, i);
    }
    return true;
}
