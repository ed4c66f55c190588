/* ir/verify.c — structural invariants every pass must leave true (see ir.h).
 * A violation is a compiler bug, not a user error: print the IR and abort. */
#include "ir/ir.h"

static _Noreturn void fail(const Graph *g, const char *after, const Node *n, const char *what)
{
    fprintf(stderr, "modelc: IR verification failed after pass '%s' at %%%d: %s\n", after, n ? n->id : -1, what);
    ir_print(g, stderr);
    IR_BUG("invalid IR after '%s'", after);
}

/* A postfix program over nsrc operands leaves exactly one value. */
static void verify_ew(const Graph *g, const char *after, const Node *n, const EwProg *p, int nsrc)
{
    int depth = 0;
    for (int k = 0; k < p->n; k++) {
        int c = p->code[k];
        if (c == EW_LOAD) {
            if (p->arg[k] >= nsrc)
                fail(g, after, n, "fused program loads a missing operand");
            depth++;
        } else {
            depth -= (c == EW_SILU) ? 0 : 1;
        }
        if (depth < 1)
            fail(g, after, n, "fused program underflows its stack");
    }
    if (depth != 1)
        fail(g, after, n, "fused program leaves more than one value");
}

void ir_verify(const Graph *g, const char *after)
{
    for (int i = 0; i < g->n; i++) {
        const Node *n = g->nodes[i];
        if (!n || n->id != i)
            fail(g, after, n, "node id does not match its position");
        if (n->op < 0 || n->op >= OP_COUNT)
            fail(g, after, n, "unknown op");
        if ((ir_ops[n->op].flags & OPF_LEAF) && n->nsrc)
            fail(g, after, n, "leaf with operands");
        if (!(ir_ops[n->op].flags & OPF_LEAF) && !n->nsrc)
            fail(g, after, n, "op without operands");
        for (int j = 0; j < n->nsrc; j++) {
            if (!n->src[j])
                fail(g, after, n, "NULL operand");
            if (n->src[j]->id >= i || g->nodes[n->src[j]->id] != n->src[j])
                fail(g, after, n, "operand not defined before use");
        }
        if (n->rank < 0 || n->rank > IR_MAX_RANK)
            fail(g, after, n, "bad rank");
        if (n->dt == DT_NONE && n->rank)
            fail(g, after, n, "shape without dtype");
        if (n->op == OP_FUSED)
            verify_ew(g, after, n, &n->a.ew, n->nsrc);
        if (n->op == OP_LINEAR_EW) {
            if (n->a.lew.nw < 1 || 1 + n->a.lew.nw > n->nsrc)
                fail(g, after, n, "linear_ew without its weights");
            verify_ew(g, after, n, &n->a.lew.ew, n->nsrc - 1);
        }
        if (n->lead && (n->op != OP_LINEAR || n->lead->op != OP_LINEAR || n->lead->id >= i || g->nodes[n->lead->id] != n->lead ||
                        n->lead->src[0] != n->src[0] || n->lead->lead))
            fail(g, after, n, "a grouped linear's lead is not an earlier linear of the same input");
    }
}
