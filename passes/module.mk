PASSES_SRCS := passes/pipeline.c passes/lower.c passes/infer.c passes/fold.c passes/fuse.c passes/epilogue.c passes/quantize.c passes/plan.c passes/select.c
