/* modelc.h — the C API of a model compiled with `modelc build --lib`.
 *
 *   modelc build models/llama.mdl --weights DIR --lib -o libllama.so
 *
 * writes libllama.so and llama.h; llama.h declares `llama_model`, the
 * compiled model, to pass to modelc_open.  Build against it with
 *   cc app.c $(pkg-config --cflags --libs modelc) -L. -lllama
 * With --target cuda the library holds the GPU kernels (a cubin) and opens
 * libcuda.so.1 when a handle is opened; it links no CUDA library.
 *
 * Threading: a Modelc handle is not thread-safe — use each handle from one
 * thread at a time.  Different handles (of the same or different models) may
 * be used from different threads at once; each has its own threads for the
 * kernels (ModelcOptions.threads; on the GPU, its own stream in the device's
 * primary context), its own buffers and KV cache.  Weights are
 * mapped read-only and may be shared by the OS between handles.
 *
 * Errors: every call that can fail returns a ModelcStatus; modelc_errmsg
 * says what went wrong and where.  modelc_open fills *out even when it fails
 * (except for MODELC_ENOMEM with no handle), so the message can be read; close
 * it with modelc_close either way. */
#ifndef MODELC_API_H
#define MODELC_API_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ModelcModelDesc ModelcModelDesc;   /* a compiled model (NAME_model in NAME.h) */
typedef struct Modelc Modelc;                     /* a model bound to weights, with its KV cache */

typedef enum ModelcStatus {
    MODELC_OK = 0,
    MODELC_EINVAL,     /* a bad argument: NULL pointer, zero tokens */
    MODELC_EWEIGHTS,   /* the weights could not be opened or do not match the compiled model */
    MODELC_ENOMEM,     /* out of memory */
    MODELC_ECONTEXT,   /* the KV cache is full (see ModelcOptions.max_ctx) */
    MODELC_ETOKEN,     /* a token id outside the vocabulary */
    MODELC_EPLAN,      /* the compiled model's embedded plan is damaged */
    MODELC_EDEVICE,    /* built with --target cuda: no CUDA driver or GPU, the wrong GPU, or a driver call or
                          kernel failed (after a kernel fault the handle can only be closed) */
} ModelcStatus;

typedef struct ModelcOptions {
    int threads;             /* 0: all online CPUs (unused by a library built with --target cuda) */
    int64_t max_ctx;         /* KV cache positions; 0: 4096 */
    int64_t max_step;        /* most tokens per forward pass (longer prompts go in chunks); 0: 512 */
} ModelcOptions;

/* A token callback for modelc_generate: return nonzero to stop early. */
typedef int (*ModelcTokenFn)(int32_t token, void *user);

ModelcStatus modelc_open(const ModelcModelDesc *model, const char *weights, const ModelcOptions *opt, Modelc **out);
void modelc_close(Modelc *m);
const char *modelc_errmsg(const Modelc *m);
const char *modelc_model_info(const ModelcModelDesc *model);   /* spec, build options, content hash */

/* Run the prompt through the model at the current position. */
ModelcStatus modelc_prefill(Modelc *m, const int32_t *tokens, int64_t n);
/* Run one token. */
ModelcStatus modelc_decode(Modelc *m, int32_t token);
/* Logits of the last forward pass: rows x vocab floats, valid until the next call. */
const float *modelc_logits(const Modelc *m, int64_t *rows, int64_t *vocab);
/* Greedy generation: prefill, then up to max_new tokens, each passed to on_token. */
ModelcStatus modelc_generate(Modelc *m, const int32_t *prompt, int64_t n, int64_t max_new, ModelcTokenFn on_token,
                             void *user);
int64_t modelc_position(const Modelc *m);   /* tokens in the KV cache */
void modelc_reset(Modelc *m);               /* empty the KV cache */

#ifdef __cplusplus
}
#endif

#endif
