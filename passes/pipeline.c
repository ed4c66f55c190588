/* passes/pipeline.c — the ordered pass table and the loop that runs it.
 *
 * The loop, not each pass, verifies the IR after every pass, prints it when
 * asked (--print-after=PASS, --print-after-all) and times the passes. */
#include <string.h>
#include <time.h>

#include "passes/passes.h"

const Pass pass_pipeline[] = {
    {"lower", pass_lower, "spec -> graph IR: parameters bound, repeat blocks expanded, weights bound"},
    {"infer", pass_infer_shapes, "shape and dtype inference; user-facing shape checks"},
    {"fold", pass_fold, "fold reshapes that undo each other, common subexpressions, dead nodes"},
    {"fuse", pass_fuse_elementwise, "fuse chains of elementwise ops into one kernel"},
    {"epilogue", pass_epilogue, "CUDA: linears absorb the elementwise ops they feed; linears of one input share a launch"},
    {"quantize", pass_quantize_act, "CPU: linears of Q8_0/Q4_0/Q4_1 weights read 8-bit activations (q8_1 blocks)"},
    {"plan", pass_plan_memory, "activation buffers: liveness and slot reuse"},
    {"select", pass_select_kernels, "CUDA: kernel family and tile sizes per op, shape and GPU (heuristic dataflow)"},
};
const int pass_count = sizeof pass_pipeline / sizeof pass_pipeline[0];

bool pass_exists(const char *name)
{
    for (int i = 0; i < pass_count; i++)
        if (!strcmp(pass_pipeline[i].name, name))
            return true;
    return false;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool pass_run_pipeline(Compilation *c, const PassOptions *o)
{
    FILE *dump = o && o->dump ? o->dump : stdout;
    for (int i = 0; i < pass_count; i++) {
        const Pass *p = &pass_pipeline[i];
        double t0 = now();
        bool ok = p->run(c);
        if (o && o->time_passes)
            fprintf(stderr, "modelc: pass %-6s %8.3f ms\n", p->name, (now() - t0) * 1e3);
        if (!ok || diag_has_errors(c->diags))
            return false;
        ir_renumber(c->graph);
        ir_verify(c->graph, p->name);
        if (o && (o->print_after_all || (o->print_after && !strcmp(o->print_after, p->name)))) {
            fprintf(dump, "; IR after %s\n", p->name);
            ir_print(c->graph, dump);
        }
        if (o && o->stop_after && !strcmp(o->stop_after, p->name))
            break;
    }
    return true;
}
