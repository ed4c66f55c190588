# runtime/: loaders (safetensors, checkpoints, config.json, .npy) and execution.
RUNTIME_SRCS := runtime/err.c runtime/half.c runtime/safetensors.c runtime/checkpoint.c runtime/config.c runtime/npy.c \
                runtime/pool.c runtime/exec.c
