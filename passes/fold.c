/* passes/fold.c — pass "fold": simplifications that need no cost model.
 *
 * Requires: "infer".  Guarantees, in order:
 *   - merge_heads(split_heads(x)) becomes x (same shape, a pure reshape pair);
 *   - common subexpressions are shared: two nodes with the same op, operands
 *     and attributes become one (attention is kept apart: it owns a KV cache);
 *   - nodes no output depends on are removed (inputs stay: the runtime feeds them).
 * Invalidates: node ids (renumbered by the pipeline). */
#include <string.h>

#include "passes/passes.h"

static bool same_attrs(const Node *a, const Node *b)
{
    switch (a->op) {
    case OP_RMS_NORM: return a->a.eps == b->a.eps;
    case OP_SPLIT_HEADS: return a->a.heads == b->a.heads;
    case OP_ROPE: return !memcmp(&a->a.rope, &b->a.rope, sizeof a->a.rope);
    case OP_FUSED: return !memcmp(&a->a.ew, &b->a.ew, sizeof a->a.ew);
    default: return true;
    }
}

static bool same_node(const Node *a, const Node *b)
{
    if (a->op != b->op || a->nsrc != b->nsrc || a->op == OP_ATTENTION || (ir_ops[a->op].flags & OPF_LEAF))
        return false;
    for (int i = 0; i < a->nsrc; i++)
        if (a->src[i] != b->src[i])
            return false;
    return same_attrs(a, b);
}

/* Drop nodes not reachable from an output; keep inputs. */
void fold_remove_dead(Graph *g)
{
    bool *live = arena_alloc(g->arena, (size_t)g->n * sizeof *live);
    for (int i = g->n - 1; i >= 0; i--) {
        Node *n = g->nodes[i];
        if (n->output || n->op == OP_INPUT)
            live[i] = true;
        if (live[i])
            for (int j = 0; j < n->nsrc; j++)
                live[n->src[j]->id] = true;
    }
    int k = 0;
    for (int i = 0; i < g->n; i++)
        if (live[i])
            g->nodes[k++] = g->nodes[i];
    g->n = k;
    ir_renumber(g);
}

/* Common subexpressions through a hash table of the nodes kept so far, keyed
 * by op and operands (attributes are compared on a hit): linear in the graph,
 * where comparing every pair took minutes for a few thousand layers. */
static size_t node_hash(const Node *n)
{
    size_t h = (size_t)n->op * 0x9e3779b97f4a7c15u + (size_t)n->nsrc;
    for (int i = 0; i < n->nsrc; i++)
        h = (h ^ (size_t)n->src[i]->id) * 0x100000001b3u;
    return h ^ (h >> 29);
}

bool pass_fold(Compilation *c)
{
    Graph *g = c->graph;
    ir_renumber(g);
    Node **repl = arena_alloc(c->arena, (size_t)g->n * sizeof *repl);
    size_t cap = 16;
    while (cap < 2 * (size_t)g->n)
        cap *= 2;
    Node **seen = arena_alloc(c->arena, cap * sizeof *seen);   /* zeroed by the arena */
    for (int i = 0; i < g->n; i++) {
        Node *n = g->nodes[i];
        for (int j = 0; j < n->nsrc; j++)
            if (repl[n->src[j]->id])
                n->src[j] = repl[n->src[j]->id];
        if (n->output)
            continue;
        if (n->op == OP_MERGE_HEADS && n->src[0]->op == OP_SPLIT_HEADS) {
            Node *x = n->src[0]->src[0];
            if (x->rank == n->rank && !memcmp(x->shape, n->shape, (size_t)n->rank * sizeof *n->shape)) {
                repl[i] = x;
                continue;
            }
        }
        if (n->op == OP_ATTENTION || (ir_ops[n->op].flags & OPF_LEAF))
            continue;
        size_t k = node_hash(n) & (cap - 1);
        for (; seen[k]; k = (k + 1) & (cap - 1))
            if (same_node(seen[k], n)) {
                repl[i] = seen[k];
                break;
            }
        if (!repl[i])
            seen[k] = n;
    }
    fold_remove_dead(g);
    return true;
}
