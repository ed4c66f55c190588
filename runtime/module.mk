# runtime/: loaders (safetensors, checkpoints, config.json, .npy) and execution.
RUNTIME_SRCS := runtime/err.c runtime/half.c runtime/safetensors.c runtime/checkpoint.c runtime/config.c runtime/npy.c \
                runtime/pool.c runtime/exec.c runtime/cuda.c runtime/run.c runtime/plan.c runtime/exe_main.c runtime/api.c runtime/sample.c \
                runtime/timeline.c
RUNTIME_SRCS += runtime/gguf.c runtime/quant.c
RUNTIME_SRCS += runtime/tokenizer.c runtime/unicode.c
