/* runtime/half.c — IEEE binary16 and bfloat16 to and from binary32.
 *
 * Widening is exact for every bit pattern: subnormal halves become normal
 * floats, infinities stay infinite and a NaN keeps its sign and payload (the
 * payload moves to the top of the wider mantissa).  Narrowing rounds to
 * nearest, ties to even, in integer arithmetic so that the result does not
 * depend on the FPU's rounding mode or flush-to-zero setting; overflow gives
 * infinity and a NaN stays a NaN (quieted, keeping what of its payload fits). */
#include <string.h>

#include "runtime/runtime.h"

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float rt_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;

    if (exp == 0x1f)                            /* inf, nan: payload kept */
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp != 0)                               /* normal: rebias 15 -> 127 */
        return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0)
        return bits_f32(sign);
    /* subnormal mant * 2^-24: shift the leading one up to bit 10 */
    exp = 113;
    while (!(mant & 0x400)) {
        mant <<= 1;
        exp--;
    }
    return bits_f32(sign | (exp << 23) | ((mant & 0x3ff) << 13));
}

float rt_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

/* Round v right by shift bits (1..31), to nearest, ties to even. */
static uint32_t shift_rne(uint32_t v, int shift)
{
    uint32_t kept = v >> shift;
    uint32_t rest = v & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (kept & 1)))
        kept++;
    return kept;
}

uint16_t rt_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t mant = x & 0x7fffff;

    if (exp == 0xff) {
        if (mant == 0)
            return sign | 0x7c00;
        return sign | 0x7e00 | (uint16_t)(mant >> 13);   /* quiet nan */
    }
    if (exp >= 143)                             /* >= 2^16: past the largest half */
        return sign | 0x7c00;
    if (exp >= 113) {
        /* normal half; a carry out of the mantissa bumps the exponent, which
         * also turns values from 65520 up into infinity, as it should */
        uint32_t v = ((exp - 112) << 23) | mant;
        return sign | (uint16_t)shift_rne(v, 13);
    }
    /* subnormal half (or zero): value = (1.mant) * 2^(exp-127) = m * 2^-24 */
    if (exp < 102)                              /* below 2^-25: rounds to zero */
        return sign;
    /* a carry into bit 10 yields the smallest normal, encoded correctly */
    return sign | (uint16_t)shift_rne(mant | 0x800000, (int)(126 - exp));
}

uint16_t rt_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000)           /* nan: truncate, keep it quiet */
        return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)shift_rne(x, 16);          /* carry into the exponent: inf */
}
