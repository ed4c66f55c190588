/* passes/plan.c — pass "plan": where every activation lives.
 *
 * Requires: "fuse" (the final set of kernels).  Every node that a kernel
 * writes gets an activation slot (node->buf); views (split/merge heads) share
 * their operand's slot; leaves (inputs, weights) get none (the runtime binds
 * them).  Slots are reused by liveness: a node may take a slot whose every
 * occupant's last reader ran strictly before it (a kernel never writes a
 * buffer it reads); a linear grouped with a lead (pass "epilogue") counts as
 * written where its lead runs.  Outputs live to the end.  Slot sizes are bytes per token
 * plus a constant, so the runtime sizes them for the longest step it runs.
 * Guarantees: g->nslots, g->slot_per_tok/slot_const.  A graph with unbound
 * parameters (c->unbound: `modelc check` without a config) has unknown dims
 * and is left unplanned (every buf -1, no slots); codegen refuses it. */
#include <string.h>

#include "passes/passes.h"

static Node *base_of(Node *n)
{
    while (ir_ops[n->op].flags & OPF_VIEW)
        n = n->src[0];
    return n;
}

bool pass_plan_memory(Compilation *c)
{
    Graph *g = c->graph;
    int n = g->n;
    g->nslots = 0;
    if (c->unbound)
        return true;
    int *last = arena_alloc(c->arena, (size_t)n * sizeof *last);
    for (int i = 0; i < n; i++)
        last[i] = g->nodes[i]->output ? n : i;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < g->nodes[i]->nsrc; j++) {
            Node *b = base_of(g->nodes[i]->src[j]);
            if (last[b->id] < i)
                last[b->id] = i;
        }
    /* a view's own readers keep its base alive; outputs that are views too */
    for (int i = 0; i < n; i++)
        if (g->nodes[i]->output && (ir_ops[g->nodes[i]->op].flags & OPF_VIEW))
            last[base_of(g->nodes[i])->id] = n;

    int *slot_free_after = arena_alloc(c->arena, (size_t)n * sizeof *slot_free_after);
    g->slot_per_tok = arena_alloc(c->arena, (size_t)n * sizeof *g->slot_per_tok);
    g->slot_const = arena_alloc(c->arena, (size_t)n * sizeof *g->slot_const);
    g->nslots = 0;
    for (int i = 0; i < n; i++) {
        Node *nd = g->nodes[i];
        nd->buf = -1;
        if (ir_ops[nd->op].flags & OPF_LEAF)
            continue;
        if (ir_ops[nd->op].flags & OPF_VIEW) {
            nd->buf = base_of(nd)->buf;
            continue;
        }
        int64_t per_tok, cst;
        int r = ir_numel_per_tok(nd, &per_tok, &cst);
        if (r == -1) {
            diag_error(c->diags, nd->loc,
                       "'%s' has shape %s, which cannot be planned (only one seq dim and concrete dims are supported)",
                       ir_op_name(nd->op), ir_shape_str(c->arena, nd));
            return false;
        }
        /* bytes (blocks of 32 for q8_1 activations: the last dim is whole blocks), and a
         * sane bound: 2^40 bytes per token or in all */
        int esz = ir_dtype_size(nd->dt), bb = ir_block_bytes(nd->dt);
        if (bb && r == 0) {
            per_tok /= 32, cst /= 32;
            esz = bb;
        }
        if (r == -2 || __builtin_mul_overflow(per_tok, esz, &per_tok) ||
            __builtin_mul_overflow(cst, esz, &cst) || per_tok > ((int64_t)1 << 40) ||
            cst > ((int64_t)1 << 40)) {
            diag_error(c->diags, nd->loc, "'%s' has shape %s, too large to plan (more than 2^40 bytes)",
                       ir_op_name(nd->op), ir_shape_str(c->arena, nd));
            return false;
        }
        /* a grouped linear is written by its lead's launch */
        int at = nd->lead ? nd->lead->id : i;
        int s = -1;
        for (int k = 0; k < g->nslots; k++)
            if (slot_free_after[k] < at) {
                s = k;
                break;
            }
        if (s < 0)
            s = g->nslots++;
        nd->buf = s;
        slot_free_after[s] = last[i];
        if (per_tok > g->slot_per_tok[s])
            g->slot_per_tok[s] = per_tok;
        if (cst > g->slot_const[s])
            g->slot_const[s] = cst;
    }
    return true;
}
