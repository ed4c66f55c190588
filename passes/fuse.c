/* passes/fuse.c — pass "fuse": elementwise fusion.
 *
 * Requires: "fold".  An elementwise node (add, sub, mul, silu, fused) whose
 * operand is itself elementwise, used only there and not an output, absorbs
 * that operand: the two become one OP_FUSED node with a postfix program over
 * their combined operands (ir.h EwProg), so the intermediate never touches
 * memory.  silu(gate) * up becomes one kernel.  Limits: IR_MAX_SRC operands,
 * IR_MAX_EW instructions; past them a node is left unfused.
 * Guarantees: every elementwise node is OP_FUSED or a plain op whose operands
 * could not be absorbed.  Invalidates: node ids. */
#include <string.h>

#include "passes/passes.h"

void fold_remove_dead(Graph *g);

static bool fusible(const Node *n)
{
    return (ir_ops[n->op].flags & OPF_ELEMENTWISE) && n->nuses == 1 && !n->output;
}

/* Try to absorb operand k of n; true on success. */
static bool absorb(Node *n, int k)
{
    Node *p = n->src[k];
    EwProg outer, inner, out = {0};
    ir_ew_program(n, &outer);
    ir_ew_program(p, &inner);
    Node *src[IR_MAX_SRC * 2];
    int nsrc = 0;
    for (int i = 0; i < n->nsrc; i++)
        if (i != k)
            src[nsrc++] = n->src[i];
    int base = nsrc;
    for (int i = 0; i < p->nsrc; i++)
        src[nsrc++] = p->src[i];
    if (nsrc > IR_MAX_SRC || outer.n - 1 + inner.n > IR_MAX_EW)
        return false;
    for (int i = 0; i < outer.n; i++) {
        if (outer.code[i] == EW_LOAD && outer.arg[i] == k) {
            for (int j = 0; j < inner.n; j++) {
                out.code[out.n] = inner.code[j];
                out.arg[out.n++] = inner.code[j] == EW_LOAD ? (uint8_t)(base + inner.arg[j]) : 0;
            }
        } else if (outer.code[i] == EW_LOAD) {
            out.code[out.n] = EW_LOAD;
            out.arg[out.n++] = (uint8_t)(outer.arg[i] > k ? outer.arg[i] - 1 : outer.arg[i]);
        } else {
            out.code[out.n++] = outer.code[i];
        }
    }
    n->op = OP_FUSED;
    n->a.ew = out;
    n->nsrc = nsrc;
    memcpy(n->src, src, (size_t)nsrc * sizeof *src);
    p->nuses = 0;
    return true;
}

bool pass_fuse_elementwise(Compilation *c)
{
    Graph *g = c->graph;
    ir_count_uses(g);
    for (int i = 0; i < g->n; i++) {
        Node *n = g->nodes[i];
        if (!(ir_ops[n->op].flags & OPF_ELEMENTWISE))
            continue;
        for (bool again = true; again;) {
            again = false;
            for (int k = 0; k < n->nsrc; k++)
                if (fusible(n->src[k]) && absorb(n, k)) {
                    again = true;
                    break;
                }
        }
    }
    fold_remove_dead(g);
    return true;
}
