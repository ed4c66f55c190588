/* runtime/quant.h — ggml's tensor types as GGUF stores them, and the
 * dequantization of its block formats to f32.  Inside the runtime only.
 *
 * A quantized row is a run of blocks; each block holds `block` elements in
 * `block_bytes` bytes (its scales as IEEE halves, then packed integers), with
 * no alignment or padding between blocks.  The dequantizers follow ggml's
 * reference definitions (dequantize_row_* in ggml-quants.c) operation for
 * operation, so their results are bit-identical to ggml's scalar path. */
#ifndef MODELC_RUNTIME_QUANT_H
#define MODELC_RUNTIME_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* The types modelc reads, the one table everything else expands from:
 * X(name, ggml type number, elements per block, bytes per block, dequantizer).
 * F32, F16 and BF16 have no dequantizer: they are used as stored. */
#define RT_GGML_TYPES(X)                          \
    X(F32, 0, 1, 4, NULL)                         \
    X(F16, 1, 1, 2, NULL)                         \
    X(Q4_0, 2, 32, 18, rt_dequant_q4_0)           \
    X(Q4_1, 3, 32, 20, rt_dequant_q4_1)           \
    X(Q8_0, 8, 32, 34, rt_dequant_q8_0)           \
    X(Q4_K, 12, 256, 144, rt_dequant_q4_k)        \
    X(Q5_K, 13, 256, 176, rt_dequant_q5_k)        \
    X(Q6_K, 14, 256, 210, rt_dequant_q6_k)        \
    X(BF16, 30, 1, 2, NULL)

typedef enum {
#define RT_GGML_ENUM(name, num, block, bytes, fn) RT_GGML_##name = num,
    RT_GGML_TYPES(RT_GGML_ENUM)
#undef RT_GGML_ENUM
} RtGgmlType;

/* Dequantize nblocks consecutive blocks at src into nblocks * block floats. */
typedef void (*RtDequantFn)(const void *src, float *dst, int64_t nblocks);

typedef struct RtGgmlInfo {
    const char *name;       /* ggml's spelling: "Q4_K" */
    uint32_t type;          /* ggml type number */
    int64_t block;          /* elements per block */
    int64_t block_bytes;    /* bytes per block */
    RtDequantFn dequant;    /* NULL for F32, F16, BF16 (kept as stored) */
} RtGgmlInfo;

const RtGgmlInfo *rt_ggml_info(uint32_t type);   /* NULL: not a type modelc reads */
const char *rt_ggml_type_name(uint32_t type);    /* any ggml type, for messages; NULL if unknown */

void rt_dequant_q4_0(const void *src, float *dst, int64_t nblocks);
void rt_dequant_q4_1(const void *src, float *dst, int64_t nblocks);
void rt_dequant_q8_0(const void *src, float *dst, int64_t nblocks);
void rt_dequant_q4_k(const void *src, float *dst, int64_t nblocks);
void rt_dequant_q5_k(const void *src, float *dst, int64_t nblocks);
void rt_dequant_q6_k(const void *src, float *dst, int64_t nblocks);

#endif
