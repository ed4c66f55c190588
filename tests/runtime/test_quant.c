/* tests/runtime/test_quant.c — the ggml dequantizers against blocks built by
 * hand.
 *
 * Each test lays out a block byte by byte as ggml defines it (scales as
 * halves, then packed quants) with scales that are powers of two or small
 * integers, so every result is exact and can be written down: some
 * elements are spelled out as literals, and every element is checked
 * against the format's definition written independently of the
 * implementation's loop order (element e -> its sub-block, scale, bits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/quant.h"
#include "runtime/runtime.h"

#define H_1 0x3c00        /* 1.0 as a half */
#define H_2 0x4000        /* 2.0 */
#define H_HALF 0x3800     /* 0.5 */
#define H_QUARTER 0x3400  /* 0.25 */
#define H_M1 0xbc00       /* -1.0 */
#define H_MHALF 0xb800    /* -0.5 */
#define H_TINY 0x0001     /* 2^-24, subnormal */

static void put_half(unsigned char *p, uint16_t h)
{
    p[0] = (unsigned char)(h & 0xff);
    p[1] = (unsigned char)(h >> 8);
}

static void expect_floats(const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("element %d: got %.9g, want %.9g", i, (double)got[i], (double)want[i]);
}

/* ---- the type table ----------------------------------------------------- */

static void test_type_table(void **state)
{
    (void)state;
    static const struct {
        uint32_t type;
        const char *name;
        int64_t block, bytes;
        bool dequant;
    } want[] = {
        {0, "F32", 1, 4, false},     {1, "F16", 1, 2, false},      {2, "Q4_0", 32, 18, true},
        {3, "Q4_1", 32, 20, true},   {8, "Q8_0", 32, 34, true},    {12, "Q4_K", 256, 144, true},
        {13, "Q5_K", 256, 176, true}, {14, "Q6_K", 256, 210, true}, {30, "BF16", 1, 2, false},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const RtGgmlInfo *t = rt_ggml_info(want[i].type);
        assert_non_null(t);
        assert_string_equal(t->name, want[i].name);
        assert_int_equal(t->type, want[i].type);
        assert_int_equal(t->block, want[i].block);
        assert_int_equal(t->block_bytes, want[i].bytes);
        assert_int_equal(t->dequant != NULL, want[i].dequant);
        assert_string_equal(rt_ggml_type_name(want[i].type), want[i].name);
    }
    static const uint32_t unsupported[] = {4, 5, 6, 7, 9, 10, 11, 15, 16, 23, 24, 28, 29, 31, 39, 40, 1000};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        assert_null(rt_ggml_info(unsupported[i]));
    assert_string_equal(rt_ggml_type_name(6), "Q5_0");
    assert_string_equal(rt_ggml_type_name(10), "Q2_K");
    assert_string_equal(rt_ggml_type_name(20), "IQ4_NL");
    assert_string_equal(rt_ggml_type_name(28), "F64");
    assert_null(rt_ggml_type_name(1000));
    assert_null(rt_ggml_type_name(UINT32_MAX));
}

/* ---- 32-element formats ---------------------------------------------------- */

static void test_q8_0(void **state)
{
    (void)state;
    static const int8_t q[32] = {-128, -127, -64, -1, 0, 1, 2, 3, 64, 127, 5, -5, 10, -10, 20, -20,
                                 33, -33, 99, -99, 100, -100, 126, -126, 7, 8, 9, 11, 12, 13, 14, 15};
    unsigned char blocks[2 * 34];
    put_half(blocks, H_HALF);
    memcpy(blocks + 2, q, 32);
    put_half(blocks + 34, H_TINY);
    memcpy(blocks + 36, q, 32);
    float got[64], want[64];
    rt_dequant_q8_0(blocks, got, 2);
    for (int j = 0; j < 32; j++) {
        want[j] = (float)q[j] * 0.5f;
        want[32 + j] = (float)q[j] * 0x1p-24f;
    }
    expect_floats(got, want, 64);
    assert_true(got[0] == -64.0f && got[9] == 63.5f && got[3] == -0.5f);
    assert_true(got[32] == -128 * 0x1p-24f);
}

static void test_q4_0(void **state)
{
    (void)state;
    unsigned char blocks[2 * 18];
    put_half(blocks, H_2);
    for (int j = 0; j < 16; j++)
        blocks[2 + j] = (unsigned char)(j | (15 - j) << 4);
    put_half(blocks + 18, H_MHALF);
    memset(blocks + 20, 0xf0, 16);
    float got[64];
    rt_dequant_q4_0(blocks, got, 2);
    static const float want[64] = {
        /* block 0: low nibbles j -> (j - 8) * 2, then high nibbles 15 - j -> (7 - j) * 2 */
        -16, -14, -12, -10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10, 12, 14,
        14, 12, 10, 8, 6, 4, 2, 0, -2, -4, -6, -8, -10, -12, -14, -16,
        /* block 1: d = -0.5, low nibble 0 -> 4, high nibble 15 -> -3.5 */
        4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
        -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5, -3.5,
    };
    expect_floats(got, want, 64);
}

static void test_q4_1(void **state)
{
    (void)state;
    unsigned char block[20];
    put_half(block, H_QUARTER);
    put_half(block + 2, H_M1);
    for (int j = 0; j < 16; j++)
        block[4 + j] = (unsigned char)(j | (15 - j) << 4);
    float got[32];
    rt_dequant_q4_1(block, got, 1);
    static const float want[32] = {
        -1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75,
        2.75, 2.5, 2.25, 2, 1.75, 1.5, 1.25, 1, 0.75, 0.5, 0.25, 0, -0.25, -0.5, -0.75, -1,
    };
    expect_floats(got, want, 32);
}

static void test_zero_blocks(void **state)
{
    (void)state;
    float out[4] = {7, 7, 7, 7};
    unsigned char none[1] = {0};
    rt_dequant_q4_0(none, out, 0);
    rt_dequant_q4_1(none, out, 0);
    rt_dequant_q8_0(none, out, 0);
    rt_dequant_q4_k(none, out, 0);
    rt_dequant_q5_k(none, out, 0);
    rt_dequant_q6_k(none, out, 0);
    assert_true(out[0] == 7 && out[3] == 7);
}

/* ---- k-quants -------------------------------------------------------------- */

/* Eight 6-bit scales and mins, packed by hand into the 12 bytes of Q4_K/Q5_K
 * (bytes 0-3: scale 0-3 | top bits of scale 4-7; 4-7: min 0-3 | top bits of
 * min 4-7; 8-11: low nibbles of scale 4-7 | low nibbles of min 4-7 << 4). */
static const int ksc[8] = {1, 2, 3, 63, 17, 33, 48, 5};
static const int kmin[8] = {0, 1, 62, 4, 16, 32, 63, 7};
static const unsigned char kscales[12] = {0x41, 0x82, 0xc3, 0x3f, 0x40, 0x81, 0xfe, 0x04, 0x01, 0x01, 0xf0, 0x75};

/* The low four bits of element l of sub-block s in these tests: sub-blocks
 * 2p and 2p+1 share bytes qs[32p .. 32p+32), as low and high nibbles. */
static int k_nibble(int s, int l)
{
    return s % 2 == 0 ? (l & 15) : 15 - (l & 15);
}

static void fill_k_quants(unsigned char *qs)
{
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++)
            qs[32 * p + l] = (unsigned char)((l & 15) | (15 - (l & 15)) << 4);
}

static void test_q4_k(void **state)
{
    (void)state;
    unsigned char block[144];
    put_half(block, H_1);
    put_half(block + 2, H_HALF);
    memcpy(block + 4, kscales, 12);
    fill_k_quants(block + 16);
    float got[256];
    rt_dequant_q4_k(block, got, 1);
    /* x = d * scale * q - dmin * min, d = 1, dmin = 0.5 */
    for (int e = 0; e < 256; e++) {
        int s = e / 32, l = e % 32;
        float want = (float)(ksc[s] * k_nibble(s, l)) - 0.5f * (float)kmin[s];
        if (got[e] != want)
            fail_msg("element %d: got %g, want %g", e, (double)got[e], (double)want);
    }
    assert_true(got[0] == 0 && got[5] == 5);
    assert_true(got[32 + 3] == 23.5f);       /* 2 * 12 - 0.5 */
    assert_true(got[64 + 7] == -10.0f);      /* 3 * 7 - 31 */
    assert_true(got[96] == 943.0f);          /* 63 * 15 - 2 */
    assert_true(got[128 + 1] == 9.0f);       /* 17 * 1 - 8: scale with its top bits in byte 0 */
    assert_true(got[160 + 15] == -16.0f);    /* 33 * 0 - 16 */
    assert_true(got[192 + 14] == 640.5f);    /* 48 * 14 - 31.5 */
    assert_true(got[224 + 31] == -3.5f);     /* 5 * 0 - 3.5 */
}

static void test_q5_k(void **state)
{
    (void)state;
    unsigned char block[176];
    put_half(block, H_1);
    put_half(block + 2, H_HALF);
    memcpy(block + 4, kscales, 12);
    for (int l = 0; l < 32; l++)      /* qh[l] bit s is the fifth bit of element l of sub-block s */
        block[16 + l] = (unsigned char)(1u << (l % 8));
    fill_k_quants(block + 48);
    float got[256];
    rt_dequant_q5_k(block, got, 1);
    for (int e = 0; e < 256; e++) {
        int s = e / 32, l = e % 32;
        int q = k_nibble(s, l) + (l % 8 == s ? 16 : 0);
        float want = (float)(ksc[s] * q) - 0.5f * (float)kmin[s];
        if (got[e] != want)
            fail_msg("element %d: got %g, want %g", e, (double)got[e], (double)want);
    }
    assert_true(got[0] == 16.0f);            /* 1 * (0 + 16) */
    assert_true(got[1] == 1.0f);
    assert_true(got[32 + 1] == 59.5f);       /* 2 * (14 + 16) - 0.5 */
    assert_true(got[128 + 4] == 332.0f);     /* 17 * (4 + 16) - 8 */
    assert_true(got[224 + 7] == 116.5f);     /* 5 * (8 + 16) - 3.5 */
    assert_true(got[224 + 15] == 76.5f);     /* 5 * (0 + 16) - 3.5 */
}

static void test_q6_k(void **state)
{
    (void)state;
    static const int8_t sc[16] = {1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 7, -7, 127, -128};
    unsigned char block[210];
    for (int i = 0; i < 128; i++)
        block[i] = (unsigned char)i;      /* ql */
    memset(block + 128, 0xe4, 64);        /* qh: bits 2k..2k+1 = k */
    memcpy(block + 192, sc, 16);
    put_half(block + 208, H_QUARTER);
    float got[512];
    unsigned char two[420];
    memcpy(two, block, 210);
    memcpy(two + 210, block, 210);
    put_half(two + 210 + 208, H_M1);
    rt_dequant_q6_k(two, got, 2);
    /* element e: half n = e / 128; within it quarter k = (e % 128) / 32 and
     * l = e % 32; low bits: nibble k / 2 of ql[64n + 32(k % 2) + l]; high
     * bits: k; scale sc[8n + 2k + l / 16]; q - 32 times d * scale */
    for (int b = 0; b < 2; b++) {
        float d = b ? -1.0f : 0.25f;
        for (int e = 0; e < 256; e++) {
            int n = e / 128, k = (e % 128) / 32, l = e % 32;
            int low = (block[64 * n + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15;
            int q = (low | k << 4) - 32;
            float want = d * (float)sc[8 * n + 2 * k + l / 16] * (float)q;
            if (got[256 * b + e] != want)
                fail_msg("block %d element %d: got %g, want %g", b, e, (double)got[256 * b + e], (double)want);
        }
    }
    assert_true(got[0] == -8.0f);            /* 0.25 * 1 * (0 - 32) */
    assert_true(got[17] == 7.75f);           /* 0.25 * -1 * (1 - 32) */
    assert_true(got[33] == -7.5f);           /* 0.25 * 2 * (17 - 32) */
    assert_true(got[64 + 20] == -0.75f);     /* 0.25 * -3 * (33 - 32) */
    assert_true(got[127] == -19.0f);         /* 0.25 * -4 * (51 - 32) */
    assert_true(got[128] == -40.0f);         /* 0.25 * 5 * (0 - 32) */
    assert_true(got[128 + 64 + 15] == 7.0f); /* 0.25 * 7 * (36 - 32) */
    assert_true(got[255] == -736.0f);        /* 0.25 * -128 * (55 - 32) */
    assert_true(got[256 + 255] == 2944.0f);  /* second block, d = -1 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_q4_1),
        cmocka_unit_test(test_zero_blocks),
        cmocka_unit_test(test_q4_k),
        cmocka_unit_test(test_q5_k),
        cmocka_unit_test(test_q6_k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
