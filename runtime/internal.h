/* runtime/internal.h — shared inside the runtime only. */
#ifndef MODELC_RUNTIME_INTERNAL_H
#define MODELC_RUNTIME_INTERNAL_H

#include "runtime/runtime.h"

/* A fixed set of threads that run one launch at a time: the calling thread
 * takes the first share, workers the rest; rt_pool_run returns when all are
 * done.  Idle workers spin briefly, then sleep on a condition variable. */
typedef struct RtPool RtPool;

RtPool *rt_pool_new(int threads, RtErr *err);
/* Items whose total cost is under RT_POOL_MIN_COST run on the calling thread
 * alone: waking the others would cost more than it saves. */
#define RT_POOL_MIN_COST 32768
void rt_pool_run(RtPool *p, RtKernelFn fn, void **args, int64_t T, int64_t pos0, int64_t total, int64_t grain,
                 int64_t cost);
int rt_pool_threads(const RtPool *p);
void rt_pool_free(RtPool *p);

/* One GGUF file as a checkpoint (runtime/gguf.c): validated, its tensors
 * converted (HF names and shapes, dequantized) and sorted by name, its
 * llama metadata as a config (NULL without general.architecture). */
bool rt_gguf_open(const char *path, RtGguf **out, RtErr *err);   /* every quantized tensor dequantized */
bool rt_gguf_open_opts(const char *path, bool dequantize, RtGguf **out, RtErr *err);
void rt_gguf_close(RtGguf *g);
int rt_gguf_count(const RtGguf *g);
const RtTensor *rt_gguf_tensor(const RtGguf *g, int i);
const RtConfig *rt_gguf_config(const RtGguf *g);
/* Row r of an HF q/k weight of `rows` rows and n_head heads comes from this
 * row of the GGUF tensor (llama.cpp's converter interleaves each head's two
 * rotary halves: GGUF row h*hd + 2i + s holds HF row h*hd + s*hd/2 + i). */
int64_t rt_gguf_unpermute_row(int64_t r, int64_t rows, int64_t n_head);

/* Memory a session lays out the same on either target (runtime/exec.c):
 * the activation slots as one block, each slot at an `align`-byte boundary and
 * sized for max_step tokens -- offsets[0..nslots], the last one the total
 * (malloc'd; NULL with err set on overflow or out of memory) -- and the bytes
 * of a KV or scratch buffer for max_ctx positions (false on overflow). */
int64_t *rt_slot_offsets(const RtProgram *p, int64_t max_step, int64_t align, RtErr *err);
bool rt_ctx_bytes(const RtBuf *b, int64_t max_ctx, int64_t *bytes, RtErr *err);

/* A session's GPU half (runtime/cuda.c). */
typedef struct RtGpuSession RtGpuSession;
bool rt_gpu_session_new(const RtProgram *p, const RtCheckpoint *ckpt, const RtSessionOptions *o, RtGpuSession **out,
                        RtErr *err);
void rt_gpu_session_free(RtGpuSession *g);
const float *rt_gpu_step(RtGpuSession *g, const int32_t *tokens, int64_t T, int64_t pos, RtErr *err);
bool rt_gpu_step_greedy(RtGpuSession *g, int32_t token, int64_t pos, bool room, int32_t *next, RtErr *err);
const char *rt_gpu_device(const RtGpuSession *g);
bool rt_gpu_profile(RtGpuSession *g, bool on, RtErr *err);
const double *rt_gpu_profile_times(const RtGpuSession *g, int64_t *steps);
/* timeline.c: MODELC_TIMELINE's report of one step's n records (sorted in place). */
bool rt_tl_report(FILE *f, const RtProgram *p, int64_t T, int64_t T_tail, RtTlRecord *rec, int64_t n);

/* What jansson said of a failed parse: its text, or "out of memory" (its text is empty then). */
struct json_error_t;
const char *rt_json_why(const struct json_error_t *je);

#endif
