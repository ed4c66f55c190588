/* runtime/runtime.h — the runtime's public surface.
 *
 * The runtime is small and dependency-light (libc, pthreads, jansson for JSON;
 * libcuda.so.1 later through dlopen).  It knows nothing of the IR: the compiler
 * hands it a RtProgram (kernels + buffer plan, plain data) and weights come in
 * through RtCheckpoint.  Errors are returned, never printed-and-exited: every
 * fallible call takes an RtErr and returns false with a message that names the
 * file and the fault. */
#ifndef MODELC_RUNTIME_H
#define MODELC_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/limits.h"

typedef struct RtErr {
    char msg[1024];
    bool device;   /* set where the GPU failed (no driver, a driver call, its memory): the C API's MODELC_EDEVICE */
} RtErr;

bool rt_fail(RtErr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));  /* sets msg, returns false */

/* ---- tensors and checkpoints (runtime/safetensors.c, runtime/checkpoint.c) ---- */


typedef enum {
    RT_F64, RT_F32, RT_F16, RT_BF16,
    RT_I64, RT_I32, RT_I16, RT_I8, RT_U8, RT_BOOL,
    RT_F8_E4M3, RT_F8_E5M2,
    RT_Q8_0, RT_Q4_0, RT_Q4_1,   /* ggml blocks of 32 (GGUF only): rows of whole blocks */
    RT_DTYPE_COUNT
} RtDType;

const char *rt_dtype_name(RtDType t);   /* safetensors spelling: "F32", "BF16", ... */
size_t rt_dtype_size(RtDType t);   /* 0 for block types */
/* Block types: values per block and bytes per block; false for plain types. */
bool rt_dtype_block(RtDType t, int *values, int *bytes);

typedef struct RtTensor {
    const char *name;
    RtDType dtype;
    int rank;
    int64_t shape[RT_MAX_RANK];
    int64_t numel;
    const void *data;     /* inside the mmap; may be unaligned for 2-byte types only if the file is */
    size_t nbytes;
    const char *file;     /* the .safetensors file it came from */
} RtTensor;

typedef struct RtSafetensors RtSafetensors;   /* one mmapped .safetensors file */

/* Open and validate one file: header length u64 LE with 8+N <= size and N <= cap;
 * header is a UTF-8 JSON object, no duplicate keys; "__metadata__" maps
 * string->string; known dtypes; shapes of non-negative ints with checked
 * products; data_offsets [begin,end] with end-begin == numel*size; offsets
 * sorted, contiguous from 0, non-overlapping, last end == data length. */
bool rt_st_open(const char *path, RtSafetensors **out, RtErr *err);
void rt_st_close(RtSafetensors *st);
int rt_st_count(const RtSafetensors *st);
const RtTensor *rt_st_tensor(const RtSafetensors *st, int i);
const RtTensor *rt_st_find(const RtSafetensors *st, const char *name);
const char *rt_st_metadata(const RtSafetensors *st, const char *key);   /* NULL if absent */

/* A checkpoint: a single .safetensors file, or a Hugging Face directory with
 * config.json and one or more *.safetensors (model.safetensors.index.json when
 * sharded: every tensor it names must be in the file it names; no tensor may
 * appear in two files). */
typedef struct RtCheckpoint RtCheckpoint;

bool rt_ckpt_open(const char *path, RtCheckpoint **out, RtErr *err);
/* dequantize: GGUF Q8_0/Q4_0/Q4_1 tensors become F32 at load too (by default
 * they stay as blocks, which the kernels read directly). */
bool rt_ckpt_open_opts(const char *path, bool dequantize, RtCheckpoint **out, RtErr *err);
void rt_ckpt_close(RtCheckpoint *c);
const RtTensor *rt_ckpt_find(const RtCheckpoint *c, const char *name);
int rt_ckpt_count(const RtCheckpoint *c);
const RtTensor *rt_ckpt_tensor(const RtCheckpoint *c, int i);
const char *rt_ckpt_config_path(const RtCheckpoint *c);   /* dir/config.json if it exists, else NULL */

/* ---- GGUF (runtime/gguf.c, runtime/quant.c) ----
 * rt_ckpt_open also takes a .gguf file (v2 or v3).  Everything in it is
 * validated before it is trusted.  Its llama tensors appear under Hugging
 * Face names (token_embd.weight -> model.embed_tokens.weight, blk.N.attn_q
 * -> model.layers.N.self_attn.q_proj, ...) with HF shapes ([rows, cols]) and
 * llama.cpp's Q/K row permutation undone, so models/llama.mdl binds to it
 * unchanged; quantized tensors (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K) are
 * dequantized to F32 at load; F32/F16/BF16 tensors stay as stored.  The
 * metadata gives the config (rt_ckpt_config) and the tokenizer. */

typedef struct RtGguf RtGguf;

enum {   /* GGUF metadata value types, as in the format */
    GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING,
    GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_TYPE_COUNT
};


const RtGguf *rt_ckpt_gguf(const RtCheckpoint *c);       /* NULL unless the checkpoint is a GGUF file */
const struct RtConfig *rt_ckpt_config(const RtCheckpoint *c);   /* GGUF: config from metadata; else NULL */
bool rt_gguf_str(const RtGguf *g, const char *key, const char **s, size_t *len);   /* false: absent or not a string */
bool rt_gguf_int(const RtGguf *g, const char *key, int64_t *v);      /* any integer type (or bool) */
bool rt_gguf_float(const RtGguf *g, const char *key, double *v);     /* f32/f64, or an integer */
/* Arrays: rt_gguf_array returns the length (-1: absent or not an array) and the element type. */
int64_t rt_gguf_array(const RtGguf *g, const char *key, int *elem_type);
const char *rt_gguf_array_str(const RtGguf *g, const char *key, int64_t i, size_t *len);   /* NULL if not strings */
bool rt_gguf_array_num(const RtGguf *g, const char *key, int64_t i, double *v);

/* ---- config.json (runtime/config.c) ---- */

typedef enum { CFG_MISSING, CFG_NULL, CFG_BOOL, CFG_INT, CFG_FLOAT, CFG_STRING, CFG_OTHER } RtCfgKind;

typedef struct RtCfgValue {
    RtCfgKind kind;
    bool b;
    int64_t i;
    double f;          /* also set for CFG_INT */
    const char *s;     /* CFG_STRING; valid while the RtConfig lives */
} RtCfgValue;

typedef struct RtConfig RtConfig;   /* (struct RtConfig is declared above for rt_ckpt_config) */

bool rt_config_load(const char *path, RtConfig **out, RtErr *err);     /* must be a JSON object */
bool rt_config_parse(const char *path_for_msgs, const char *text, size_t len, RtConfig **out, RtErr *err);
void rt_config_free(RtConfig *c);
/* Look up a dotted key ("rope_scaling.factor"): each segment descends into an
 * object; CFG_MISSING when any segment is absent or the parent is not an object. */
RtCfgValue rt_config_get(const RtConfig *c, const char *dotted_key);

/* ---- .npy output (runtime/npy.c) ---- */

/* Write a float32 C-order array of the given shape as NumPy .npy v1.0, through a
 * temporary file renamed into place: on failure nothing is left at path. */
bool rt_npy_write_f32(const char *path, const float *data, const int64_t *shape, int rank, RtErr *err);

/* ---- half-precision conversions (runtime/half.c) ---- */

float rt_f16_to_f32(uint16_t h);
float rt_bf16_to_f32(uint16_t h);
uint16_t rt_f32_to_f16(float f);    /* round to nearest even */
uint16_t rt_f32_to_bf16(float f);   /* round to nearest even */

/* ---- execution (runtime/exec.c, runtime/pool.c) ---- */

/* Every CPU kernel has one signature: the buffer table, the tokens in this
 * step (T), the position of the first of them (pos0), and the half-open range
 * of work items [lo, hi) this thread does.  A launch has
 * work_per_tok*T + work_const items; the pool splits them among its threads in
 * multiples of grain. */
typedef void (*RtKernelFn)(void **bufs, int64_t T, int64_t pos0, int64_t lo, int64_t hi);

typedef enum { RB_SLOT, RB_WEIGHT, RB_INPUT, RB_KV, RB_SCRATCH } RtBufKind;

typedef struct RtBuf {
    RtBufKind kind;
    const char *name;         /* weight: checkpoint tensor name; input: spec name; kv: description */
    RtDType dtype;            /* weight: the dtype the kernels were built for */
    int rank;
    int64_t shape[RT_MAX_RANK];   /* weight: exact shape expected */
    int slot;                 /* RB_SLOT: activation slot */
    int64_t bytes_per_pos;    /* RB_KV, RB_SCRATCH: bytes per position of the context */
    int64_t bytes_const;      /* RB_SCRATCH: plus this many (bytes = bytes_per_pos * max_ctx + bytes_const) */
} RtBuf;

enum { RT_MAX_ARGS = 12 };   /* buffers a launch takes, at most */

typedef struct RtLaunch {
    const char *kernel;       /* symbol name */
    RtKernelFn fn;            /* filled by the JIT (or the linker, for built executables) */
    int nargs;
    int args[RT_MAX_ARGS];    /* buffer ids */
    int64_t work_per_tok, work_const, grain;
    int64_t cost, cost_per_tok, cost_per_pos;   /* rough work of one item: cost + cost_per_tok*T + cost_per_pos*ctx */
    const char *what;         /* the IR node it came from, for traces */
    /* CUDA launches (RtProgram.target == RT_TARGET_CUDA).  A kernel takes a
     * pointer to the step's RtGpuStep, then its buffers in order.  Several
     * launches of one node are variants for different step sizes: a launch
     * runs when min_T <= T and (max_T == 0 or T <= max_T).  Grid dimension d
     * is grid[d] * ceil(T / grid_tok[d]) (when grid_tok[d] > 0). */
    int64_t min_T, max_T;
    int grid[3], grid_tok[3];
    int block, smem;
    bool tail;                /* a per-row op after the last attention: may run on the last row alone */
} RtLaunch;

/* What a CUDA kernel reads of the step: T rows, the first at position pos0;
 * row0 is the first row a tail launch works on (0 unless only the last row's
 * logits are wanted). */
typedef struct RtGpuStep {
    int32_t T, pos0, row0, pad;
} RtGpuStep;

/* The timeline (MODELC_TIMELINE=1): kernels compiled with it log, per block,
 * when it started, when it passed pdl_wait and when it ended (%globaltimer,
 * ns), and their id: rt_timeline_id of the kernel's name (FNV-1a) in the
 * high 32 bits of the fourth word, the SM in the low 8 (prelude.cu: TlScope). */
enum { RT_TL_CAP = 1 << 18 };   /* records a step may log */
typedef struct RtTlRecord {
    uint64_t start, waited, end, id_sm;
} RtTlRecord;
static inline uint32_t rt_timeline_id(const char *name)
{
    uint32_t h = 2166136261u;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h;
}

enum { RT_TARGET_CPU = 0, RT_TARGET_CUDA = 1 };

typedef struct RtProgram {
    const char *model;
    int nbufs;
    RtBuf *bufs;
    int nslots;
    const int64_t *slot_per_tok, *slot_const;   /* bytes */
    int nlaunch;
    RtLaunch *launch;
    int tokens_buf;           /* RB_INPUT, i32 [T] */
    int logits_buf;           /* RB_SLOT, f32 [T, vocab] */
    int64_t vocab;
    int64_t n_token_ids;      /* token ids must be < this (rows of the embedding table) */
    bool dequantize;          /* compiled for GGUF blocks dequantized at load (rt_ckpt_open_opts) */
    int target;               /* RT_TARGET_CPU or RT_TARGET_CUDA */
    int sm;                   /* CUDA: the architecture the cubin is for (90: sm_90) */
    const void *cubin;        /* CUDA: the kernels, one module */
    int64_t cubin_len;
} RtProgram;

typedef struct RtSession RtSession;

typedef struct RtSessionOptions {
    int threads;              /* 0: all online CPUs */
    int64_t max_ctx;          /* KV cache positions */
    int64_t max_step;         /* most tokens in one step (the prompt length) */
    bool last_row;            /* rt_session_step returns the last position's logits only ([vocab]);
                                 the GPU then runs the layers after the last attention on that row alone */
} RtSessionOptions;

/* Bind a program to a checkpoint (every weight by name, dtype and shape
 * checked), allocate activations and the KV cache, start the thread pool. */
bool rt_session_new(const RtProgram *p, const RtCheckpoint *ckpt, const RtSessionOptions *o, RtSession **out,
                    RtErr *err);
void rt_session_free(RtSession *s);
/* Run T tokens at positions pos..pos+T-1 (the KV cache holds 0..pos-1).
 * Token ids are checked against the vocabulary.  Returns logits [T, vocab]
 * (with last_row: [vocab], the last position's) valid until the next step. */
const float *rt_session_step(RtSession *s, const int32_t *tokens, int64_t T, RtErr *err);
/* One decode step whose only result is the greedy next token (the GPU
 * computes the argmax on the device and copies back one id).  On the GPU it
 * also enqueues the step after it, on that id, before it waits: the next
 * call with that id uses it; any other step runs after it (it wrote
 * cache position pos + 1 only, which the next step there overwrites). */
bool rt_session_step_greedy(RtSession *s, int32_t token, int32_t *next, RtErr *err);
/* The target a session runs on, in words ("cpu: 2 threads", "cuda: NVIDIA H100 ..."). */
const char *rt_session_device(const RtSession *s);

/* ---- CUDA (runtime/cuda.c): libcuda.so.1 through dlopen ---- */

typedef struct RtGpuInfo {
    char name[256];
    int sm;                   /* compute capability * 10 */
    int sms;                  /* multiprocessors */
    int64_t total_mem, free_mem;
    int driver;               /* driver API version, e.g. 13000 */
} RtGpuInfo;

/* Device 0's properties; false (err says why) when there is no driver or GPU. */
bool rt_gpu_info(RtGpuInfo *info, RtErr *err);
int64_t rt_session_pos(const RtSession *s);
void rt_session_reset(RtSession *s);
/* Per-kernel timing: on, every launch is timed (a little overhead); the
 * table sums time by kernel and prints the costliest first. */
void rt_session_profile(RtSession *s, bool on);
void rt_session_print_profile(const RtSession *s, FILE *f, int top);

/* ---- running from a command line (runtime/run.c) ----
 * Shared by `modelc run` and the executables `modelc build` writes: the run
 * options, prefill + greedy decoding, the token line on stdout, --logits-out. */


typedef struct RtRunOptions {
    const char *weights, *logits_out;
    int32_t *prompt;          /* parsed --tokens (malloc'd; rt_run_options_free) */
    int64_t nprompt;
    const char *text;         /* --prompt TEXT or --chat TEXT: needs a tokenizer */
    bool chat;                /* text goes through the model's chat template */
    bool special;             /* --special: special-token text in --prompt is parsed as those tokens */
    const char *system;       /* --system: the chat's system prompt */
    const char *tokenizer;    /* --tokenizer PATH: a tokenizer.json (default: the checkpoint's) */
    long long max_new, threads, ctx;
    bool quiet, profile, ignore_eos, dequantize, warmup;
    float temperature, top_p, rep_penalty;
    long long top_k;
    unsigned long long seed;
    bool seed_given;
} RtRunOptions;

void rt_run_options_init(RtRunOptions *o);
void rt_run_options_free(RtRunOptions *o);
/* If argv[*i] is a run option, consume it (and its value) and return 1; 0 if
 * it is not one; -1 if it is malformed (err says why: a usage error). */
int rt_run_option(int argc, char **argv, int *i, RtRunOptions *o, RtErr *err);
extern const char rt_run_usage[];
/* Prefill the prompt, greedy-decode max_new tokens (printed as they come, on
 * one stdout line), write --logits-out last.  Returns the exit status (0, 1). */
int rt_run(const RtProgram *p, const RtCheckpoint *ckpt, const RtRunOptions *o, double compile_seconds);
/* The prompt of --prompt/--chat as token ids, with the checkpoint's tokenizer (malloc'd). */
int32_t *rt_run_tokenize(const RtCheckpoint *ckpt, const RtRunOptions *o, int64_t *n, RtErr *err);

/* ---- programs as data (runtime/plan.c) ----
 * `modelc build` embeds the plan as JSON text beside the kernels' object code
 * and a table of kernel entry points in launch order; the runtime reads it
 * back (every index checked) when the executable or library starts. */

typedef struct RtEmbedded {
    const char *plan;            /* JSON, NUL-terminated */
    int64_t plan_len;
    const RtKernelFn *kernels;   /* one per launch, in launch order */
    int64_t nkernels;
    const char *info;            /* "modelc 0.1.0; spec ...; options ...; hash ..." */
    const void *cubin;           /* CUDA: the kernels, one module; NULL for CPU programs */
    int64_t cubin_len;
} RtEmbedded;

char *rt_program_to_json(const RtProgram *p);   /* malloc'd; NULL when out of memory */
bool rt_program_from_json(const char *json, size_t len, const RtKernelFn *kernels, int64_t nkernels, RtProgram **out,
                          RtErr *err);
void rt_program_free(RtProgram *p);               /* only for programs from rt_program_from_json */
/* The program of an executable or library: its plan, with the kernel table
 * (CPU) or the cubin (CUDA) the plan's target asks for. */
bool rt_program_from_embedded(const RtEmbedded *e, RtProgram **out, RtErr *err);
/* main() of a built executable: the run options, --version, --help. */
int rt_exe_main(int argc, char **argv, const RtEmbedded *e);
/* The same for one built for CUDA, whose RtEmbedded is written in assembly
 * beside a generated main() that is C compiled at build time: it passes the
 * struct as a plain pointer and shares no header with the runtime. */
int rt_exe_main_cuda(int argc, char **argv, const void *embedded);

#endif
