/* passes/passes.h — the pass pipeline.
 *
 * A Compilation carries one spec through the pipeline: the checked AST, the
 * environment that binds its parameters (config.json, --set, a checkpoint for
 * weight dtypes), and the graph the passes rewrite.  Each pass is one
 * function, registered in the ordered table in passes/pipeline.c; the
 * pipeline loop, not the passes, handles --print-after, verification and
 * timing. */
#ifndef MODELC_PASSES_H
#define MODELC_PASSES_H

#include <stdbool.h>
#include <stdio.h>

#include "frontend/ast.h"
#include "ir/ir.h"
#include "runtime/runtime.h"

typedef struct CompileEnv {
    const RtConfig *config;        /* NULL: no config.json; unbound params stay unknown */
    const RtCheckpoint *ckpt;      /* NULL: weight dtypes from the spec or default_weight_dt */
    const char *ckpt_path;         /* for messages */
    const char *config_path;       /* for messages */
    int nset;                      /* --set name=value overrides */
    const char *const *set_names, *const *set_values;
    DType default_weight_dt;       /* DT_NONE means f32 */
    int target;                    /* RT_TARGET_CPU or RT_TARGET_CUDA */
    int sm, sms;                   /* CUDA: architecture (90) and multiprocessors (0: unknown, 132 assumed) */
    bool f32_activations;          /* CPU: linears of block weights read f32 activations (pass "quantize" off) */
} CompileEnv;

typedef struct Compilation {
    Arena *arena;
    Diags *diags;
    const Module *module;
    const CompileEnv *env;
    Graph *graph;
    bool unbound;                  /* some parameter had no value: shapes are partly unknown */
    const char *config_values;     /* lower: "n_heads = 0 (num_attention_heads), ...": the parameters bound from
                                      the config, for a note when compiling fails (NULL: none) */
} Compilation;

typedef struct PassOptions {
    const char *print_after;       /* pass name, or NULL */
    bool print_after_all;
    const char *stop_after;        /* stop the pipeline after this pass (NULL: run all) */
    bool time_passes;              /* print each pass's time to stderr */
    FILE *dump;                    /* where IR dumps go (stdout if NULL) */
} PassOptions;

typedef bool PassFn(Compilation *c);

typedef struct Pass {
    const char *name;
    PassFn *run;
    const char *what;              /* one line for --help */
} Pass;

extern const Pass pass_pipeline[];
extern const int pass_count;

/* Run the pipeline; false (diagnostics recorded) when a pass reports a user error. */
bool pass_run_pipeline(Compilation *c, const PassOptions *o);
bool pass_exists(const char *name);

PassFn pass_lower, pass_infer_shapes, pass_fold, pass_fuse_elementwise, pass_epilogue, pass_quantize_act,
    pass_plan_memory, pass_select_kernels;

#endif
