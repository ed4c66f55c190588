/* tests/runtime/test_half.c — binary16 and bfloat16 conversions, checked
 * exhaustively over every 16-bit pattern:
 *   - widening matches the value computed independently with ldexp;
 *   - every non-NaN pattern round-trips narrow(widen(h)) == h bit for bit;
 *     NaNs stay NaNs with their sign (and, once quiet, their payload);
 *   - narrowing rounds to nearest even: the exact midpoint between each pair
 *     of neighbours goes to the even one, and the floats just either side of
 *     it go to the nearer one — which pins down every rounding boundary.
 * When the compiler has _Float16 its conversion is a further reference. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/runtime.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static bool f16_is_nan(uint16_t h)
{
    return (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

static bool bf16_is_nan(uint16_t h)
{
    return (h & 0x7f80) == 0x7f80 && (h & 0x7f);
}

/* The value of a binary16 pattern, computed independently of half.c. */
static double f16_value(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (exp == 0x1f)
        return sign * INFINITY;            /* NaNs are handled separately */
    if (exp == 0)
        return sign * ldexp(mant, -24);
    return sign * ldexp(1024 + mant, exp - 25);
}

static void test_f16_widen_exact(void **state)
{
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = rt_f16_to_f32((uint16_t)h);
        if (f16_is_nan((uint16_t)h)) {
            assert_true(isnan(f));
            assert_int_equal(bits(f) >> 31, h >> 15);
            continue;
        }
        if ((double)f != f16_value((uint16_t)h) || !!signbit(f) != !!(h & 0x8000))
            fail_msg("f16 0x%04x widened to %a, want %a", h, (double)f, f16_value((uint16_t)h));
    }
    assert_true(rt_f16_to_f32(0x3c00) == 1.0f);
    assert_true(rt_f16_to_f32(0xc000) == -2.0f);
    assert_true(rt_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(rt_f16_to_f32(0x0400) == ldexpf(1, -14));   /* smallest normal */
    assert_true(rt_f16_to_f32(0x0001) == ldexpf(1, -24));   /* smallest subnormal */
    assert_true(rt_f16_to_f32(0x03ff) == ldexpf(1023, -24));
    assert_true(isinf(rt_f16_to_f32(0x7c00)) && rt_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(rt_f16_to_f32(0xfc00)) && rt_f16_to_f32(0xfc00) < 0);
    assert_int_equal(bits(rt_f16_to_f32(0x8000)), 0x80000000u);
}

static void test_f16_round_trip(void **state)
{
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        uint16_t back = rt_f32_to_f16(rt_f16_to_f32((uint16_t)h));
        if (f16_is_nan((uint16_t)h)) {
            /* stays a NaN of the same sign; a quiet NaN keeps its payload */
            assert_true(f16_is_nan(back));
            assert_int_equal(back | 0x200, h | 0x200);
            continue;
        }
        if (back != h)
            fail_msg("f16 0x%04x round-tripped to 0x%04x", h, back);
    }
}

static void test_f16_rounding_boundaries(void **state)
{
    (void)state;
    /* h and h+1 are neighbours for every non-negative finite h < 0x7bff, and
     * 0x7bff's upper neighbour is infinity (the "next" pattern, 0x7c00) */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float lo = rt_f16_to_f32((uint16_t)h);
        float hi = h + 1 < 0x7c00 ? rt_f16_to_f32((uint16_t)(h + 1)) : 65536.0f;
        float mid = (lo + hi) / 2;                   /* exact: 12 significant bits */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        for (int neg = 0; neg < 2; neg++) {
            uint16_t s = neg ? 0x8000 : 0;
            float m = neg ? -mid : mid;
            if (rt_f32_to_f16(m) != (s | even))
                fail_msg("midpoint %a -> 0x%04x, want 0x%04x", (double)m, rt_f32_to_f16(m), s | even);
            assert_int_equal(rt_f32_to_f16(nextafterf(m, 0)), s | h);
            assert_int_equal(rt_f32_to_f16(nextafterf(m, neg ? -INFINITY : INFINITY)), s | (h + 1));
            assert_int_equal(rt_f32_to_f16(neg ? -lo : lo), s | h);
        }
    }
    /* past the largest finite half, and far below the smallest subnormal */
    assert_int_equal(rt_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(rt_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(rt_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(rt_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(rt_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(rt_f32_to_f16(ldexpf(1, -25)), 0x0000);     /* tie to even zero */
    assert_int_equal(rt_f32_to_f16(ldexpf(1, -40)), 0x0000);
    assert_int_equal(rt_f32_to_f16(-ldexpf(1, -40)), 0x8000);
    assert_int_equal(rt_f32_to_f16(from_bits(1)), 0x0000);       /* f32 subnormal */
    assert_int_equal(rt_f32_to_f16(-0.0f), 0x8000);
    assert_true(f16_is_nan(rt_f32_to_f16(NAN)));
    assert_true(f16_is_nan(rt_f32_to_f16(from_bits(0x7f800001))));  /* payload only in low bits */
    assert_true(f16_is_nan(rt_f32_to_f16(from_bits(0xffc00000))));
    assert_int_equal(rt_f32_to_f16(from_bits(0xffc00000)) & 0x8000, 0x8000);
}

static void test_f16_against_compiler(void **state)
{
    (void)state;
#ifdef __FLT16_MAX__
    /* a spread of float patterns (xorshift), compared with _Float16's conversion */
    uint32_t x = 2463534242u;
    for (int i = 0; i < 1000000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        /* bias the exponent into and around the half range half the time */
        uint32_t u = (i & 1) ? x : (x & 0x807fffffu) | ((100u + (x >> 24) % 50u) << 23);
        float f = from_bits(u);
        if (isnan(f))
            continue;
        _Float16 ref = (_Float16)f;
        uint16_t rb;
        memcpy(&rb, &ref, sizeof rb);
        if (rt_f32_to_f16(f) != rb)
            fail_msg("%a (0x%08x) -> 0x%04x, compiler says 0x%04x", (double)f, u, rt_f32_to_f16(f), rb);
    }
#else
    skip();
#endif
}

static void test_bf16_widen_and_round_trip(void **state)
{
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = rt_bf16_to_f32((uint16_t)h);
        assert_int_equal(bits(f), h << 16);
        uint16_t back = rt_f32_to_bf16(f);
        if (bf16_is_nan((uint16_t)h)) {
            assert_true(bf16_is_nan(back));
            assert_int_equal(back | 0x40, h | 0x40);
            continue;
        }
        if (back != h)
            fail_msg("bf16 0x%04x round-tripped to 0x%04x", h, back);
    }
}

static void test_bf16_rounding_boundaries(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x7f80; h++) {
        /* the midpoint to the next pattern is the f32 with 0x8000 below */
        uint32_t mid = (h << 16) | 0x8000;
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        for (uint32_t s = 0; s <= 0x8000; s += 0x8000) {
            uint32_t m = mid | (s << 16);
            assert_int_equal(rt_f32_to_bf16(from_bits(m)), s | even);
            assert_int_equal(rt_f32_to_bf16(from_bits(m - 1)), s | h);
            assert_int_equal(rt_f32_to_bf16(from_bits(m + 1)), s | (h + 1));
        }
    }
    assert_int_equal(rt_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(rt_f32_to_bf16(from_bits(0x7f7fffff)), 0x7f80);   /* FLT_MAX -> inf */
    assert_int_equal(rt_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(rt_f32_to_bf16(-INFINITY), 0xff80);
    assert_true(bf16_is_nan(rt_f32_to_bf16(from_bits(0x7f800001))));  /* must not become inf */
    assert_true(bf16_is_nan(rt_f32_to_bf16(from_bits(0xff800001))));
    assert_int_equal(rt_f32_to_bf16(from_bits(0xff800001)) & 0x8000, 0x8000);
    assert_true(bf16_is_nan(rt_f32_to_bf16(NAN)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_widen_exact),
        cmocka_unit_test(test_f16_round_trip),
        cmocka_unit_test(test_f16_rounding_boundaries),
        cmocka_unit_test(test_f16_against_compiler),
        cmocka_unit_test(test_bf16_widen_and_round_trip),
        cmocka_unit_test(test_bf16_rounding_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
