/* runtime/quant.c — ggml block formats to f32.
 *
 * Each dequantizer reads one block at a time from an unaligned byte stream
 * (GGUF packs blocks back to back) and writes its elements in order.  The
 * arithmetic is ggml's, step for step: a half scale widened to f32, the
 * integer quant converted to f32, one product and at most one sum, each
 * rounded to f32 (the build uses -std=c11, so GCC does not contract them
 * into FMAs).  That keeps the output bit-identical to ggml's reference
 * dequantize_row_* and to gguf-py's dequantize.
 *
 * Layouts (bytes; d, m, dmin are IEEE halves, little-endian):
 *   Q4_0  d[2] qs[16]                     x = (nibble - 8) * d
 *   Q4_1  d[2] m[2] qs[16]                x = nibble * d + m
 *   Q8_0  d[2] qs[32] (int8)              x = q * d
 *   Q4_K  d[2] dmin[2] scales[12] qs[128] 8 sub-blocks of 32, 6-bit scale and min each
 *   Q5_K  d[2] dmin[2] scales[12] qh[32] qs[128]   as Q4_K plus a fifth bit from qh
 *   Q6_K  ql[128] qh[64] scales[16] (int8) d[2]    16 sub-blocks of 16
 * In the 32-element formats the low nibbles of qs are elements 0..15 and
 * the high nibbles 16..31. */
#include "runtime/quant.h"

#include "runtime/runtime.h"


/* ggml's names for every type number it has used, supported or not. */
static const char *const ggml_names[] = {
    [0] = "F32",      [1] = "F16",     [2] = "Q4_0",     [3] = "Q4_1",    [4] = "Q4_2",
    [5] = "Q4_3",     [6] = "Q5_0",    [7] = "Q5_1",     [8] = "Q8_0",    [9] = "Q8_1",
    [10] = "Q2_K",    [11] = "Q3_K",   [12] = "Q4_K",    [13] = "Q5_K",   [14] = "Q6_K",
    [15] = "Q8_K",    [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S",
    [20] = "IQ4_NL",  [21] = "IQ3_S",  [22] = "IQ2_S",   [23] = "IQ4_XS", [24] = "I8",
    [25] = "I16",     [26] = "I32",    [27] = "I64",     [28] = "F64",    [29] = "IQ1_M",
    [30] = "BF16",    [31] = "Q4_0_4_4", [32] = "Q4_0_4_8", [33] = "Q4_0_8_8", [34] = "TQ1_0",
    [35] = "TQ2_0",   [36] = "IQ4_NL_4_4", [37] = "IQ4_NL_4_8", [38] = "IQ4_NL_8_8", [39] = "MXFP4",
    [40] = "NVFP4",   [41] = "Q1_0",
};

static float half_at(const unsigned char *p)
{
    return rt_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

void rt_dequant_q4_0(const void *src, float *dst, int64_t nblocks)
{
    const unsigned char *b = src;
    for (int64_t i = 0; i < nblocks; i++, b += 18, dst += 32) {
        const float d = half_at(b);
        const unsigned char *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            const int x0 = (qs[j] & 0x0f) - 8;
            const int x1 = (qs[j] >> 4) - 8;
            dst[j] = (float)x0 * d;
            dst[j + 16] = (float)x1 * d;
        }
    }
}

void rt_dequant_q4_1(const void *src, float *dst, int64_t nblocks)
{
    const unsigned char *b = src;
    for (int64_t i = 0; i < nblocks; i++, b += 20, dst += 32) {
        const float d = half_at(b), m = half_at(b + 2);
        const unsigned char *qs = b + 4;
        for (int j = 0; j < 16; j++) {
            dst[j] = (float)(qs[j] & 0x0f) * d + m;
            dst[j + 16] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

void rt_dequant_q8_0(const void *src, float *dst, int64_t nblocks)
{
    const unsigned char *b = src;
    for (int64_t i = 0; i < nblocks; i++, b += 34, dst += 32) {
        const float d = half_at(b);
        const signed char *qs = (const signed char *)(b + 2);
        for (int j = 0; j < 32; j++)
            dst[j] = (float)qs[j] * d;
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block: for
 * j < 4 the low six bits of bytes j and j+4; for j >= 4 a nibble of byte
 * j+4 with the top two bits of bytes j-4 (scale) and j (min) above it. */
static void scale_min_k4(int j, const unsigned char *s, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

void rt_dequant_q4_k(const void *src, float *dst, int64_t nblocks)
{
    const unsigned char *b = src;
    for (int64_t i = 0; i < nblocks; i++, b += 144) {
        const float d = half_at(b), dmin = half_at(b + 2);
        const unsigned char *scales = b + 4, *q = b + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {   /* two sub-blocks share 32 bytes of q */
            int sc, m;
            scale_min_k4(j, scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(j + 1, scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void rt_dequant_q5_k(const void *src, float *dst, int64_t nblocks)
{
    const unsigned char *b = src;
    for (int64_t i = 0; i < nblocks; i++, b += 176) {
        const float d = half_at(b), dmin = half_at(b + 2);
        const unsigned char *scales = b + 4, *qh = b + 16, *ql = b + 48;
        for (int j = 0; j < 8; j += 2, ql += 32) {  /* sub-block j takes bit j of qh */
            int sc, m;
            scale_min_k4(j, scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(j + 1, scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * (float)((ql[l] & 0x0f) | ((qh[l] >> j) & 1) << 4) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * (float)((ql[l] >> 4) | ((qh[l] >> (j + 1)) & 1) << 4) - m2;
        }
    }
}

void rt_dequant_q6_k(const void *src, float *dst, int64_t nblocks)
{
    const unsigned char *b = src;
    for (int64_t i = 0; i < nblocks; i++, b += 210) {
        const float d = half_at(b + 208);
        const unsigned char *ql = b, *qh = b + 128;
        const signed char *sc = (const signed char *)(b + 192);
        /* two halves of 128; in each, element l + 32k takes the nibble k/2
         * of ql[l + 32(k%2)], bits 2k..2k+1 of qh[l], scale sc[l/16 + 2k] */
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8, dst += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                dst[l] = d * (float)sc[is] * (float)q1;
                dst[l + 32] = d * (float)sc[is + 2] * (float)q2;
                dst[l + 64] = d * (float)sc[is + 4] * (float)q3;
                dst[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

static const RtGgmlInfo infos[] = {
#define RT_GGML_INFO(name, num, block, bytes, fn) {#name, num, block, bytes, fn},
    RT_GGML_TYPES(RT_GGML_INFO)
#undef RT_GGML_INFO
};

const RtGgmlInfo *rt_ggml_info(uint32_t type)
{
    for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++)
        if (infos[i].type == type)
            return &infos[i];
    return NULL;
}

const char *rt_ggml_type_name(uint32_t type)
{
    return type < sizeof ggml_names / sizeof ggml_names[0] ? ggml_names[type] : NULL;
}
