/* passes/infer.c — pass "infer": shapes and dtypes for every node.
 *
 * Requires: "lower".  Guarantees: every node has dt and shape; operand shapes
 * agree with each op's rules (ir/infer.c), or a diagnostic at the node's spec
 * location.  A node whose operand already failed is skipped, so one mistake
 * gives one error, not a cascade.  Also checks the model has an output. */
#include "passes/passes.h"

bool pass_infer_shapes(Compilation *c)
{
    Graph *g = c->graph;
    bool ok = true, any_output = false;
    for (int i = 0; i < g->n; i++) {
        Node *n = g->nodes[i];
        if (n->output)
            any_output = true;
        if (ir_ops[n->op].flags & OPF_LEAF)
            continue;
        bool skip = false;
        for (int j = 0; j < n->nsrc; j++)
            skip |= n->src[j]->dt == DT_NONE;
        if (skip || !ir_infer_node(n, c->diags)) {
            n->dt = DT_NONE;
            n->rank = 0;
            ok = false;
        }
    }
    if (!any_output) {
        diag_error(c->diags, c->module->loc, "model '%s' has no output", g->name);
        ok = false;
    }
    return ok;
}
