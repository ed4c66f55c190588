/* tests/runtime/test_gguf.c — GGUF files through rt_ckpt_open: valid files
 * of every supported tensor type open with the right names, shapes, dtypes
 * and values; llama files get Hugging Face names, un-permuted Q/K rows and a
 * config; each way a file can break the format is rejected with the exact
 * message.
 *
 * A small writer below builds files in a fresh mkdtemp directory: metadata
 * entries and tensor infos are appended to byte buffers, tensor data is laid
 * out at aligned offsets, and image() joins header, metadata, infos,
 * padding and data.  Malformed files are written with raw infos (any
 * offset, type or dims) or by cutting and patching a valid image.  The
 * quantized data comes from reference quantizers written here from ggml's
 * definitions (Q8_0, Q4_0, Q4_1) and from k-quant blocks packed here from
 * chosen integer scales and quants, so every expected value is computed
 * independently of runtime/quant.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/test_util.h"

#include "runtime/internal.h"
#include "runtime/runtime.h"

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q8_0 = 8, T_Q4_K = 12, T_Q5_K = 13,
       T_Q6_K = 14, T_BF16 = 30 };

static char dir[64];
static char path[512];

/* ---- byte buffers ---------------------------------------------------------- */

typedef struct Buf {
    unsigned char *p;
    size_t n, cap;
} Buf;

static void put(Buf *b, const void *x, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n)
        memcpy(b->p + b->n, x, n);
    b->n += n;
}

static void put_u8(Buf *b, uint8_t v)
{
    put(b, &v, 1);
}

static void put_u16(Buf *b, uint16_t v)
{
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(b, x, 2);
}

static void put_u32(Buf *b, uint32_t v)
{
    unsigned char x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (unsigned char)(v >> 8 * i);
    put(b, x, 4);
}

static void put_u64(Buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> 8 * i);
    put(b, x, 8);
}

static void put_f32(Buf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}

static void put_strn(Buf *b, const char *s, size_t n)
{
    put_u64(b, n);
    put(b, s, n);
}

static void put_str(Buf *b, const char *s)
{
    put_strn(b, s, strlen(s));
}

static void pad_to(Buf *b, uint64_t align)
{
    while (b->n % align)
        put_u8(b, 0);
}

/* ---- the GGUF writer --------------------------------------------------------- */

typedef struct Gguf {
    uint32_t version;
    uint64_t align;               /* where data goes (say general.alignment to match) */
    uint64_t nkv, nti;
    Buf kv, ti, data;
} Gguf;

static Gguf G;                    /* the file being built; reset by gguf_new */

static Gguf *gguf_new(void)
{
    free(G.kv.p);
    free(G.ti.p);
    free(G.data.p);
    memset(&G, 0, sizeof G);
    G.version = 3;
    G.align = 32;
    return &G;
}

static void kv_key(Gguf *g, const char *key, uint32_t type)
{
    put_str(&g->kv, key);
    put_u32(&g->kv, type);
    g->nkv++;
}

static void kv_u8(Gguf *g, const char *k, uint8_t v) { kv_key(g, k, GGUF_U8); put_u8(&g->kv, v); }
static void kv_i8(Gguf *g, const char *k, int8_t v) { kv_key(g, k, GGUF_I8); put_u8(&g->kv, (uint8_t)v); }
static void kv_u16(Gguf *g, const char *k, uint16_t v) { kv_key(g, k, GGUF_U16); put_u16(&g->kv, v); }
static void kv_i16(Gguf *g, const char *k, int16_t v) { kv_key(g, k, GGUF_I16); put_u16(&g->kv, (uint16_t)v); }
static void kv_u32(Gguf *g, const char *k, uint32_t v) { kv_key(g, k, GGUF_U32); put_u32(&g->kv, v); }
static void kv_i32(Gguf *g, const char *k, int32_t v) { kv_key(g, k, GGUF_I32); put_u32(&g->kv, (uint32_t)v); }
static void kv_u64(Gguf *g, const char *k, uint64_t v) { kv_key(g, k, GGUF_U64); put_u64(&g->kv, v); }
static void kv_i64(Gguf *g, const char *k, int64_t v) { kv_key(g, k, GGUF_I64); put_u64(&g->kv, (uint64_t)v); }
static void kv_f32(Gguf *g, const char *k, float v) { kv_key(g, k, GGUF_F32); put_f32(&g->kv, v); }
static void kv_bool(Gguf *g, const char *k, uint8_t v) { kv_key(g, k, GGUF_BOOL); put_u8(&g->kv, v); }
static void kv_str(Gguf *g, const char *k, const char *v) { kv_key(g, k, GGUF_STRING); put_str(&g->kv, v); }

static void kv_f64(Gguf *g, const char *k, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    kv_key(g, k, GGUF_F64);
    put_u64(&g->kv, u);
}

static void kv_array(Gguf *g, const char *k, uint32_t elem_type, uint64_t n)
{
    kv_key(g, k, GGUF_ARRAY);
    put_u32(&g->kv, elem_type);
    put_u64(&g->kv, n);
}

static void kv_strs(Gguf *g, const char *k, int n, const char *const *v)
{
    kv_array(g, k, GGUF_STRING, (uint64_t)n);
    for (int i = 0; i < n; i++)
        put_str(&g->kv, v[i]);
}

static void kv_f32s(Gguf *g, const char *k, int n, const float *v)
{
    kv_array(g, k, GGUF_F32, (uint64_t)n);
    for (int i = 0; i < n; i++)
        put_f32(&g->kv, v[i]);
}

static void kv_i32s(Gguf *g, const char *k, int n, const int32_t *v)
{
    kv_array(g, k, GGUF_I32, (uint64_t)n);
    for (int i = 0; i < n; i++)
        put_u32(&g->kv, (uint32_t)v[i]);
}

/* A tensor info with whatever the test says: nothing is checked. */
static void tensor_info(Gguf *g, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                        uint64_t offset)
{
    put_str(&g->ti, name);
    put_u32(&g->ti, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        put_u64(&g->ti, ne[d]);
    put_u32(&g->ti, type);
    put_u64(&g->ti, offset);
    g->nti++;
}

/* A tensor and its data, at the next aligned offset. */
static void tensor(Gguf *g, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne, const void *data,
                   size_t nbytes)
{
    pad_to(&g->data, g->align);
    tensor_info(g, name, type, n_dims, ne, g->data.n);
    put(&g->data, data, nbytes);
}

/* A tensor of zeros of the right size for type and ne. */
static void tensor_zeros(Gguf *g, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne)
{
    size_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        n *= ne[d];
    size_t bytes = type == T_F32 ? 4 * n : type == T_F16 || type == T_BF16 ? 2 * n
                 : type == T_Q8_0 ? n / 32 * 34 : type == T_Q4_0 ? n / 32 * 18 : type == T_Q4_1 ? n / 32 * 20
                 : type == T_Q4_K ? n / 256 * 144 : type == T_Q5_K ? n / 256 * 176 : n / 256 * 210;
    void *z = calloc(bytes ? bytes : 1, 1);
    assert_non_null(z);
    tensor(g, name, type, n_dims, ne, z, bytes);
    free(z);
}

/* header, metadata, infos, padding, data */
static Buf image(const Gguf *g)
{
    Buf f = {0};
    put(&f, "GGUF", 4);
    put_u32(&f, g->version);
    put_u64(&f, g->nti);
    put_u64(&f, g->nkv);
    put(&f, g->kv.p, g->kv.n);
    put(&f, g->ti.p, g->ti.n);
    pad_to(&f, g->align);
    put(&f, g->data.p, g->data.n);
    return f;
}

static const char *write_bytes(const char *name, const void *bytes, size_t n)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *write_gguf(const Gguf *g, const char *name)
{
    Buf f = image(g);
    write_bytes(name, f.p, f.n);
    free(f.p);
    return path;
}

/* Opened to dequantize every quantized tensor, so values can be compared. */
static RtCheckpoint *open_ok(const char *p)
{
    RtCheckpoint *c = NULL;
    RtErr err = {.msg = ""};
    if (!rt_ckpt_open_opts(p, true, &c, &err))
        fail_msg("rt_ckpt_open failed: %s", err.msg);
    assert_non_null(c);
    return c;
}

/* rt_ckpt_open(p) fails with exactly "<p>: <fault>". */
static void expect_fault(const char *p, const char *fault)
{
    RtCheckpoint *c = (RtCheckpoint *)&c;
    RtErr err = {.msg = ""};
    char want[1024];
    snprintf(want, sizeof want, "%s: %s", p, fault);
    assert_false(rt_ckpt_open(p, &c, &err));
    assert_null(c);
    assert_string_equal(err.msg, want);
}

static void reject(const Gguf *g, const char *fault)
{
    expect_fault(write_gguf(g, "bad.gguf"), fault);
}

static void reject_bytes(const void *bytes, size_t n, const char *fault)
{
    expect_fault(write_bytes("bad.gguf", bytes, n), fault);
}

/* The llama keys a config needs. */
static void llama_meta(Gguf *g, uint32_t embd, uint32_t ff, uint32_t layers, uint32_t heads, uint32_t kv_heads)
{
    kv_str(g, "general.architecture", "llama");
    kv_u32(g, "llama.embedding_length", embd);
    kv_u32(g, "llama.feed_forward_length", ff);
    kv_u32(g, "llama.block_count", layers);
    kv_u32(g, "llama.attention.head_count", heads);
    kv_u32(g, "llama.attention.head_count_kv", kv_heads);
    kv_u32(g, "llama.vocab_size", 8);
}

/* ---- reference quantizers (ggml's quantize_row_*_ref) and k-quant packers ---- */

static float half_round(float x)
{
    return rt_f16_to_f32(rt_f32_to_f16(x));
}

static void store_half(unsigned char *p, float x)
{
    uint16_t h = rt_f32_to_f16(x);
    p[0] = (unsigned char)h;
    p[1] = (unsigned char)(h >> 8);
}

/* Q8_0: d = max|x| / 127, q = round(x / d); expected x' = q * half(d). */
static void quant_q8_0(const float *x, int64_t n, unsigned char *out, float *expect)
{
    for (int64_t b = 0; b < n / 32; b++, x += 32, out += 34, expect += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127, id = d ? 1 / d : 0;
        store_half(out, d);
        for (int j = 0; j < 32; j++) {
            int q = (int)roundf(x[j] * id);
            out[2 + j] = (unsigned char)(int8_t)q;
            expect[j] = (float)q * half_round(d);
        }
    }
}

/* Q4_0: d = (the value of largest magnitude) / -8, q = min(15, (int)(x / d + 8.5));
 * element j in the low nibble of byte j, element j + 16 in its high nibble. */
static void quant_q4_0(const float *x, int64_t n, unsigned char *out, float *expect)
{
    for (int64_t b = 0; b < n / 32; b++, x += 32, out += 18, expect += 32) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float d = max / -8, id = d ? 1 / d : 0;
        store_half(out, d);
        int q[32];
        for (int j = 0; j < 32; j++) {
            q[j] = (int)(x[j] * id + 8.5f);
            q[j] = q[j] > 15 ? 15 : q[j];
            expect[j] = (float)(q[j] - 8) * half_round(d);
        }
        for (int j = 0; j < 16; j++)
            out[2 + j] = (unsigned char)(q[j] | q[j + 16] << 4);
    }
}

/* Q4_1: d = (max - min) / 15, m = min, q = min(15, (int)((x - min) / d + 0.5)). */
static void quant_q4_1(const float *x, int64_t n, unsigned char *out, float *expect)
{
    for (int64_t b = 0; b < n / 32; b++, x += 32, out += 20, expect += 32) {
        float min = x[0], max = x[0];
        for (int j = 1; j < 32; j++) {
            min = fminf(min, x[j]);
            max = fmaxf(max, x[j]);
        }
        float d = (max - min) / 15, id = d ? 1 / d : 0;
        store_half(out, d);
        store_half(out + 2, min);
        int q[32];
        for (int j = 0; j < 32; j++) {
            q[j] = (int)((x[j] - min) * id + 0.5f);
            q[j] = q[j] > 15 ? 15 : q[j];
            expect[j] = (float)q[j] * half_round(d) + half_round(min);
        }
        for (int j = 0; j < 16; j++)
            out[4 + j] = (unsigned char)(q[j] | q[j + 16] << 4);
    }
}

/* Q4_K/Q5_K's 12 scale bytes from eight 6-bit scales and mins. */
static void pack_k_scales(const int *sc, const int *m, unsigned char *s)
{
    for (int j = 0; j < 4; j++) {
        s[j] = (unsigned char)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (unsigned char)(m[j] | (m[j + 4] >> 4) << 6);
        s[j + 8] = (unsigned char)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

static uint32_t rng = 12345;

static int next_int(int mod)
{
    rng = rng * 1103515245u + 12345u;
    return (int)((rng >> 16) % (uint32_t)mod);
}

/* One Q4_K (bits 4) or Q5_K (bits 5) block of random quants with d = 0.5,
 * dmin = 0.25 and random 6-bit scales and mins: element 32s + l is
 * 0.5 * sc[s] * q - 0.25 * m[s]; sub-blocks 2p, 2p+1 share qs[32p..) as low
 * and high nibbles; Q5_K's fifth bit of element l of sub-block s is bit s of
 * qh[l]. */
static void make_k_block(int bits, unsigned char *out, float *expect)
{
    int sc[8], m[8], q[256];
    for (int s = 0; s < 8; s++) {
        sc[s] = next_int(64);
        m[s] = next_int(64);
    }
    for (int e = 0; e < 256; e++)
        q[e] = next_int(1 << bits);
    store_half(out, 0.5f);
    store_half(out + 2, 0.25f);
    pack_k_scales(sc, m, out + 4);
    unsigned char *qh = out + 16, *qs = out + (bits == 5 ? 48 : 16);
    if (bits == 5)
        memset(qh, 0, 32);
    for (int p = 0; p < 4; p++)
        for (int l = 0; l < 32; l++) {
            int lo = q[64 * p + l], hi = q[64 * p + 32 + l];
            qs[32 * p + l] = (unsigned char)((lo & 15) | (hi & 15) << 4);
            if (bits == 5)
                qh[l] |= (unsigned char)((lo >> 4) << (2 * p) | (hi >> 4) << (2 * p + 1));
        }
    for (int e = 0; e < 256; e++)
        expect[e] = 0.5f * (float)sc[e / 32] * (float)q[e] - 0.25f * (float)m[e / 32];
}

/* One Q6_K block: d = 0.125, random int8 scales, random 6-bit quants; in
 * each half n of 128, element 32k + l takes nibble k/2 of
 * ql[64n + 32(k%2) + l], bits 2k.. of qh[32n + l], scale sc[8n + 2k + l/16]. */
static void make_q6_k_block(unsigned char *out, float *expect)
{
    int q[256];
    signed char sc[16];
    for (int i = 0; i < 16; i++)
        sc[i] = (signed char)(next_int(256) - 128);
    for (int e = 0; e < 256; e++)
        q[e] = next_int(64);
    memset(out, 0, 210);
    for (int e = 0; e < 256; e++) {
        int n = e / 128, k = (e % 128) / 32, l = e % 32;
        out[64 * n + 32 * (k % 2) + l] |= (unsigned char)((q[e] & 15) << 4 * (k / 2));
        out[128 + 32 * n + l] |= (unsigned char)((q[e] >> 4) << 2 * k);
        expect[e] = 0.125f * (float)sc[8 * n + 2 * k + l / 16] * (float)(q[e] - 32);
    }
    memcpy(out + 192, sc, 16);
    store_half(out + 208, 0.125f);
}

static void expect_values(const RtTensor *t, const float *want, int64_t n)
{
    assert_int_equal(t->dtype, RT_F32);
    assert_int_equal(t->numel, n);
    assert_int_equal(t->nbytes, 4 * n);
    assert_int_equal((uintptr_t)t->data % 4, 0);
    const float *got = t->data;
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s[%lld]: got %.9g, want %.9g", t->name, (long long)i, (double)got[i], (double)want[i]);
}

/* ---- valid files: every type --------------------------------------------------- */

static void test_every_type(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_str(g, "general.name", "every type");

    float f32[6] = {0.5f, -1.25f, 3, 1e-8f, -0.0f, 1e30f};
    tensor(g, "f32", T_F32, 2, (uint64_t[]){3, 2}, f32, sizeof f32);
    uint16_t f16[4] = {rt_f32_to_f16(1), rt_f32_to_f16(-2), rt_f32_to_f16(0.5f), 0x7bff};
    tensor(g, "f16", T_F16, 1, (uint64_t[]){4}, f16, sizeof f16);
    uint16_t bf16[8];
    for (int i = 0; i < 8; i++)
        bf16[i] = rt_f32_to_bf16((float)i - 3.5f);
    tensor(g, "bf16", T_BF16, 3, (uint64_t[]){2, 2, 2}, bf16, sizeof bf16);
    float scalar = 42;
    tensor(g, "scalar", T_F32, 0, NULL, &scalar, 4);

    enum { N = 128 };               /* [4, 32] in HF order */
    float x[N], e_q8[N], e_q40[N], e_q41[N];
    for (int i = 0; i < N; i++)
        x[i] = 3 * sinf(0.37f * (float)i) + (i % 7 == 0 ? 5.0f : 0.0f);
    unsigned char q8[N / 32 * 34], q40[N / 32 * 18], q41[N / 32 * 20];
    quant_q8_0(x, N, q8, e_q8);
    quant_q4_0(x, N, q40, e_q40);
    quant_q4_1(x, N, q41, e_q41);
    tensor(g, "q8_0", T_Q8_0, 2, (uint64_t[]){32, 4}, q8, sizeof q8);
    tensor(g, "q4_0", T_Q4_0, 2, (uint64_t[]){32, 4}, q40, sizeof q40);
    tensor(g, "q4_1", T_Q4_1, 2, (uint64_t[]){64, 2}, q41, sizeof q41);

    unsigned char q4k[2 * 144], q5k[2 * 176], q6k[3 * 210];
    float e_q4k[512], e_q5k[512], e_q6k[768];
    for (int b = 0; b < 2; b++) {
        make_k_block(4, q4k + 144 * b, e_q4k + 256 * b);
        make_k_block(5, q5k + 176 * b, e_q5k + 256 * b);
    }
    for (int b = 0; b < 3; b++)
        make_q6_k_block(q6k + 210 * b, e_q6k + 256 * b);
    tensor(g, "q4_k", T_Q4_K, 2, (uint64_t[]){256, 2}, q4k, sizeof q4k);
    tensor(g, "q5_k", T_Q5_K, 1, (uint64_t[]){512}, q5k, sizeof q5k);
    tensor(g, "q6_k", T_Q6_K, 3, (uint64_t[]){256, 1, 3}, q6k, sizeof q6k);

    RtCheckpoint *c = open_ok(write_gguf(g, "every.gguf"));
    assert_int_equal(rt_ckpt_count(c), 10);
    assert_non_null(rt_ckpt_gguf(c));
    assert_null(rt_ckpt_config(c));        /* no general.architecture: no config */
    assert_null(rt_ckpt_config_path(c));

    const RtTensor *t = rt_ckpt_find(c, "f32");
    assert_non_null(t);
    assert_string_equal(t->file, path);
    assert_int_equal(t->rank, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    expect_values(t, f32, 6);

    t = rt_ckpt_find(c, "f16");
    assert_int_equal(t->dtype, RT_F16);
    assert_int_equal(t->rank, 1);
    assert_int_equal(t->shape[0], 4);
    assert_int_equal(t->nbytes, 8);
    assert_memory_equal(t->data, f16, 8);

    t = rt_ckpt_find(c, "bf16");
    assert_int_equal(t->dtype, RT_BF16);
    assert_int_equal(t->rank, 3);
    assert_int_equal(t->numel, 8);
    assert_memory_equal(t->data, bf16, 16);

    t = rt_ckpt_find(c, "scalar");
    assert_int_equal(t->rank, 0);
    expect_values(t, &scalar, 1);

    t = rt_ckpt_find(c, "q8_0");
    assert_int_equal(t->rank, 2);
    assert_int_equal(t->shape[0], 4);
    assert_int_equal(t->shape[1], 32);
    expect_values(t, e_q8, N);
    t = rt_ckpt_find(c, "q4_0");
    expect_values(t, e_q40, N);
    t = rt_ckpt_find(c, "q4_1");
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 64);
    expect_values(t, e_q41, N);
    for (int i = 0; i < N; i++) {              /* and the quantizers did quantize x */
        assert_true(fabsf(e_q8[i] - x[i]) < 0.05f);
        assert_true(fabsf(e_q40[i] - x[i]) < 0.6f);
        assert_true(fabsf(e_q41[i] - x[i]) < 0.6f);
    }
    expect_values(rt_ckpt_find(c, "q4_k"), e_q4k, 512);
    expect_values(rt_ckpt_find(c, "q5_k"), e_q5k, 512);
    t = rt_ckpt_find(c, "q6_k");
    assert_int_equal(t->rank, 3);
    assert_int_equal(t->shape[0], 3);
    assert_int_equal(t->shape[1], 1);
    assert_int_equal(t->shape[2], 256);
    expect_values(t, e_q6k, 768);

    for (int i = 1; i < rt_ckpt_count(c); i++)   /* served sorted by name */
        assert_true(strcmp(rt_ckpt_tensor(c, i - 1)->name, rt_ckpt_tensor(c, i)->name) < 0);
    assert_null(rt_ckpt_tensor(c, 10));
    assert_null(rt_ckpt_find(c, "q4_2"));
    rt_ckpt_close(c);
}

static void test_version_2(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    g->version = 2;
    kv_u32(g, "x", 1);
    tensor(g, "w", T_F32, 1, (uint64_t[]){2}, (float[]){1, 2}, 8);
    RtCheckpoint *c = open_ok(write_gguf(g, "v2.gguf"));
    expect_values(rt_ckpt_find(c, "w"), (float[]){1, 2}, 2);
    rt_ckpt_close(c);
}

static void test_no_tensors(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    RtCheckpoint *c = open_ok(write_gguf(g, "empty.gguf"));
    assert_int_equal(rt_ckpt_count(c), 0);
    rt_ckpt_close(c);
    /* the bare 24-byte header, with no padding after it */
    Buf f = image(g);
    assert_int_equal(f.n, 32);
    c = open_ok(write_bytes("bare.gguf", f.p, 24));
    assert_int_equal(rt_ckpt_count(c), 0);
    rt_ckpt_close(c);
    free(f.p);
}

/* Detected by the magic, whatever the name; a .safetensors checkpoint has no GGUF side. */
static void test_dispatch_by_magic(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor(g, "w", T_F32, 1, (uint64_t[]){1}, (float[]){7}, 4);
    RtCheckpoint *c = open_ok(write_gguf(g, "weights.bin"));
    assert_non_null(rt_ckpt_gguf(c));
    expect_values(rt_ckpt_find(c, "w"), (float[]){7}, 1);
    rt_ckpt_close(c);

    static const char st[] = "{\"w\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}";
    Buf b = {0};
    put_u64(&b, sizeof st - 1);
    put(&b, st, sizeof st - 1);
    put_u8(&b, 9);
    c = open_ok(write_bytes("w.safetensors", b.p, b.n));
    assert_null(rt_ckpt_gguf(c));
    assert_null(rt_ckpt_config(c));
    assert_int_equal(rt_ckpt_count(c), 1);
    rt_ckpt_close(c);
    free(b.p);
}

/* general.alignment 1: tensors at any byte; f32 and f16 data that the map
 * leaves misaligned are copied to aligned buffers.  64: data at multiples of 64. */
static void test_alignment(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    g->align = 1;
    kv_u32(g, "general.alignment", 1);
    put_u8(&g->data, 0xee);
    tensor(g, "a", T_F32, 1, (uint64_t[]){3}, (float[]){1, 2, 3}, 12);
    uint16_t h[2] = {rt_f32_to_f16(1.5f), rt_f32_to_f16(-4)};
    put_u8(&g->data, 0xee);
    tensor(g, "h", T_F16, 1, (uint64_t[]){2}, h, 4);
    RtCheckpoint *c = open_ok(write_gguf(g, "align1.gguf"));
    expect_values(rt_ckpt_find(c, "a"), (float[]){1, 2, 3}, 3);
    const RtTensor *t = rt_ckpt_find(c, "h");
    assert_int_equal((uintptr_t)t->data % 2, 0);
    assert_memory_equal(t->data, h, 4);
    rt_ckpt_close(c);

    g = gguf_new();
    g->align = 64;
    kv_u32(g, "general.alignment", 64);
    tensor(g, "a", T_F32, 1, (uint64_t[]){1}, (float[]){5}, 4);
    tensor(g, "b", T_F32, 1, (uint64_t[]){1}, (float[]){6}, 4);
    c = open_ok(write_gguf(g, "align64.gguf"));
    expect_values(rt_ckpt_find(c, "b"), (float[]){6}, 1);
    assert_int_equal((const char *)rt_ckpt_find(c, "b")->data - (const char *)rt_ckpt_find(c, "a")->data, 64);
    rt_ckpt_close(c);
}

/* ---- metadata accessors ------------------------------------------------------ */

static void test_accessors(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_u8(g, "t.u8", 200);
    kv_i8(g, "t.i8", -100);
    kv_u16(g, "t.u16", 60000);
    kv_i16(g, "t.i16", -30000);
    kv_u32(g, "t.u32", 4000000000u);
    kv_i32(g, "t.i32", -2000000000);
    kv_u64(g, "t.u64", 1ull << 40);
    kv_u64(g, "t.u64big", UINT64_MAX);
    kv_i64(g, "t.i64", -(1ll << 50));
    kv_f32(g, "t.f32", 0.1f);
    kv_f64(g, "t.f64", 0.1);
    kv_bool(g, "t.bool", 1);
    kv_str(g, "t.str", "caf\xc3\xa9");
    kv_key(g, "t.nul", GGUF_STRING);
    put_strn(&g->kv, "a\0b", 3);
    kv_str(g, "t.empty", "");
    kv_strs(g, "t.strs", 3, (const char *const[]){"x", "", "yz"});
    kv_f32s(g, "t.f32s", 2, (float[]){1.5f, -2});
    kv_i32s(g, "t.i32s", 2, (int32_t[]){-7, 7});
    kv_array(g, "t.u8s", GGUF_U8, 2);
    put_u8(&g->kv, 1);
    put_u8(&g->kv, 255);
    kv_array(g, "t.bools", GGUF_BOOL, 2);
    put_u8(&g->kv, 0);
    put_u8(&g->kv, 1);
    kv_array(g, "t.none", GGUF_I64, 0);
    RtCheckpoint *c = open_ok(write_gguf(g, "meta.gguf"));
    const RtGguf *m = rt_ckpt_gguf(c);

    int64_t i;
    double f;
    assert_true(rt_gguf_int(m, "t.u8", &i) && i == 200);
    assert_true(rt_gguf_int(m, "t.i8", &i) && i == -100);
    assert_true(rt_gguf_int(m, "t.u16", &i) && i == 60000);
    assert_true(rt_gguf_int(m, "t.i16", &i) && i == -30000);
    assert_true(rt_gguf_int(m, "t.u32", &i) && i == 4000000000ll);
    assert_true(rt_gguf_int(m, "t.i32", &i) && i == -2000000000);
    assert_true(rt_gguf_int(m, "t.u64", &i) && i == 1ll << 40);
    assert_false(rt_gguf_int(m, "t.u64big", &i));      /* does not fit int64 */
    assert_true(rt_gguf_float(m, "t.u64big", &f) && f == 18446744073709551616.0);
    assert_true(rt_gguf_int(m, "t.i64", &i) && i == -(1ll << 50));
    assert_true(rt_gguf_int(m, "t.bool", &i) && i == 1);
    assert_false(rt_gguf_int(m, "t.f32", &i));
    assert_false(rt_gguf_int(m, "t.str", &i));
    assert_false(rt_gguf_int(m, "t.missing", &i));
    assert_true(rt_gguf_float(m, "t.f32", &f) && f == (double)0.1f);
    assert_true(rt_gguf_float(m, "t.f64", &f) && f == 0.1);
    assert_true(rt_gguf_float(m, "t.i8", &f) && f == -100);
    assert_false(rt_gguf_float(m, "t.bool", &f));
    assert_false(rt_gguf_float(m, "t.strs", &f));

    const char *s;
    size_t len;
    assert_true(rt_gguf_str(m, "t.str", &s, &len));
    assert_string_equal(s, "caf\xc3\xa9");
    assert_int_equal(len, 5);
    assert_true(rt_gguf_str(m, "t.nul", &s, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(s, "a\0b", 4);             /* NUL-terminated too */
    assert_true(rt_gguf_str(m, "t.empty", &s, &len) && len == 0 && s[0] == '\0');
    assert_false(rt_gguf_str(m, "t.u8", &s, &len));
    assert_false(rt_gguf_str(m, "t.strs", &s, &len));
    assert_false(rt_gguf_str(m, "t", &s, &len));

    int et = -1;
    assert_int_equal(rt_gguf_array(m, "t.strs", &et), 3);
    assert_int_equal(et, GGUF_STRING);
    assert_string_equal(rt_gguf_array_str(m, "t.strs", 0, &len), "x");
    assert_int_equal(len, 1);
    assert_string_equal(rt_gguf_array_str(m, "t.strs", 1, &len), "");
    assert_int_equal(len, 0);
    assert_string_equal(rt_gguf_array_str(m, "t.strs", 2, &len), "yz");
    assert_int_equal(len, 2);
    assert_null(rt_gguf_array_str(m, "t.strs", 3, &len));
    assert_null(rt_gguf_array_str(m, "t.strs", -1, &len));
    assert_null(rt_gguf_array_str(m, "t.f32s", 0, &len));
    assert_null(rt_gguf_array_str(m, "t.str", 0, &len));
    assert_false(rt_gguf_array_num(m, "t.strs", 0, &f));

    assert_int_equal(rt_gguf_array(m, "t.f32s", &et), 2);
    assert_int_equal(et, GGUF_F32);
    assert_true(rt_gguf_array_num(m, "t.f32s", 0, &f) && f == 1.5);
    assert_true(rt_gguf_array_num(m, "t.f32s", 1, &f) && f == -2);
    assert_false(rt_gguf_array_num(m, "t.f32s", 2, &f));
    assert_int_equal(rt_gguf_array(m, "t.i32s", &et), 2);
    assert_int_equal(et, GGUF_I32);
    assert_true(rt_gguf_array_num(m, "t.i32s", 0, &f) && f == -7);
    assert_true(rt_gguf_array_num(m, "t.u8s", 1, &f) && f == 255);
    assert_true(rt_gguf_array_num(m, "t.bools", 1, &f) && f == 1);
    assert_int_equal(rt_gguf_array(m, "t.none", &et), 0);
    assert_int_equal(et, GGUF_I64);
    assert_false(rt_gguf_array_num(m, "t.none", 0, &f));
    assert_int_equal(rt_gguf_array(m, "t.u8", &et), -1);
    assert_int_equal(rt_gguf_array(m, "t.missing", NULL), -1);
    rt_ckpt_close(c);
}

/* ---- llama: names, shapes, Q/K rows, config ------------------------------------ */

static void test_llama_names_and_shapes(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    llama_meta(g, 32, 64, 2, 2, 1);
    tensor_zeros(g, "token_embd.weight", T_F32, 2, (uint64_t[]){32, 8});
    tensor_zeros(g, "output_norm.weight", T_F32, 1, (uint64_t[]){32});
    tensor_zeros(g, "output.weight", T_Q8_0, 2, (uint64_t[]){32, 8});
    for (int l = 0; l < 2; l++) {
        char n[64];
#define LAYER(suffix, type, nd, ...) \
        snprintf(n, sizeof n, "blk.%d." suffix, l), tensor_zeros(g, n, type, nd, (uint64_t[]){__VA_ARGS__})
        LAYER("attn_norm.weight", T_F32, 1, 32);
        LAYER("attn_q.weight", T_F16, 2, 32, 32);
        LAYER("attn_k.weight", T_Q8_0, 2, 32, 16);
        LAYER("attn_v.weight", T_F32, 2, 32, 16);
        LAYER("attn_output.weight", T_F32, 2, 32, 32);
        LAYER("ffn_norm.weight", T_F32, 1, 32);
        LAYER("ffn_gate.weight", T_Q4_0, 2, 32, 64);
        LAYER("ffn_up.weight", T_Q4_1, 2, 32, 64);
        LAYER("ffn_down.weight", T_F32, 2, 64, 32);
#undef LAYER
    }
    tensor_zeros(g, "blk.0.attn_q.bias", T_F32, 1, (uint64_t[]){32});    /* names it does not know stay */
    tensor_zeros(g, "blk.x.attn_q.weight", T_F32, 1, (uint64_t[]){2});
    tensor_zeros(g, "blk.1.extra.weight", T_F32, 1, (uint64_t[]){2});
    tensor_zeros(g, "blk.12", T_F32, 1, (uint64_t[]){2});

    RtCheckpoint *c = open_ok(write_gguf(g, "llama.gguf"));
    static const struct {
        const char *name;
        RtDType dtype;
        int rank;
        int64_t rows, cols;
    } want[] = {
        {"blk.0.attn_q.bias", RT_F32, 1, 32, 0},
        {"blk.1.extra.weight", RT_F32, 1, 2, 0},
        {"blk.12", RT_F32, 1, 2, 0},
        {"blk.x.attn_q.weight", RT_F32, 1, 2, 0},
        {"lm_head.weight", RT_F32, 2, 8, 32},
        {"model.embed_tokens.weight", RT_F32, 2, 8, 32},
        {"model.layers.0.input_layernorm.weight", RT_F32, 1, 32, 0},
        {"model.layers.0.mlp.down_proj.weight", RT_F32, 2, 32, 64},
        {"model.layers.0.mlp.gate_proj.weight", RT_F32, 2, 64, 32},
        {"model.layers.0.mlp.up_proj.weight", RT_F32, 2, 64, 32},
        {"model.layers.0.post_attention_layernorm.weight", RT_F32, 1, 32, 0},
        {"model.layers.0.self_attn.k_proj.weight", RT_F32, 2, 16, 32},
        {"model.layers.0.self_attn.o_proj.weight", RT_F32, 2, 32, 32},
        {"model.layers.0.self_attn.q_proj.weight", RT_F16, 2, 32, 32},
        {"model.layers.0.self_attn.v_proj.weight", RT_F32, 2, 16, 32},
    };
    int n = (int)(sizeof want / sizeof want[0]);
    assert_int_equal(rt_ckpt_count(c), n + 10);
    for (int i = 0; i < n; i++) {
        const RtTensor *t = rt_ckpt_tensor(c, i);
        assert_string_equal(t->name, want[i].name);
        assert_ptr_equal(rt_ckpt_find(c, want[i].name), t);
        assert_int_equal(t->dtype, want[i].dtype);
        assert_int_equal(t->rank, want[i].rank);
        assert_int_equal(t->shape[0], want[i].rows);
        if (want[i].rank == 2)
            assert_int_equal(t->shape[1], want[i].cols);
    }
    assert_non_null(rt_ckpt_find(c, "model.layers.1.self_attn.q_proj.weight"));
    assert_non_null(rt_ckpt_find(c, "model.norm.weight"));
    assert_null(rt_ckpt_find(c, "token_embd.weight"));
    assert_null(rt_ckpt_find(c, "blk.0.attn_q.weight"));
    rt_ckpt_close(c);
}

/* llama.cpp's converter: permute(w, n_head) = w.reshape(n_head, 2, rows/n_head/2, cols)
 * .swapaxes(1, 2).reshape(rows, cols).  perm[g] is the HF row that lands on GGUF row g. */
static void converter_permute(int64_t rows, int64_t n_head, int64_t *perm)
{
    int64_t half = rows / n_head / 2;
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t s = 0; s < 2; s++)
            for (int64_t i = 0; i < half; i++)
                perm[h * 2 * half + i * 2 + s] = h * 2 * half + s * half + i;   /* [h][i][s] <- [h][s][i] */
}

static void test_unpermute_inverts_permute(void **state)
{
    (void)state;
    static const int64_t cases[][2] = {{2, 1}, {8, 2}, {12, 3}, {64, 4}, {192, 3}, {576, 9}, {4096, 32}, {1024, 8}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t rows = cases[k][0], heads = cases[k][1];
        int64_t *perm = malloc((size_t)rows * sizeof *perm);
        char *seen = calloc((size_t)rows, 1);
        assert_non_null(perm);
        assert_non_null(seen);
        converter_permute(rows, heads, perm);
        for (int64_t r = 0; r < rows; r++) {
            int64_t from = rt_gguf_unpermute_row(r, rows, heads);
            assert_true(from >= 0 && from < rows);
            assert_false(seen[from]);
            seen[from] = 1;
            assert_int_equal(perm[from], r);    /* unpermute(permute(w)) == w, row by row */
        }
        free(perm);
        free(seen);
    }
}

/* Eight q rows, two heads of four: GGUF holds rows [0 2 1 3 | 4 6 5 7] of the
 * HF matrix; four k rows, one kv head: [0 2 1 3]. */
static void test_unpermute_by_hand(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    llama_meta(g, 2, 4, 1, 2, 1);
    kv_u32(g, "llama.attention.key_length", 4);
    float q[16], k[8];
    for (int r = 0; r < 8; r++) {
        q[2 * r] = 10.0f * (float)r;
        q[2 * r + 1] = 10.0f * (float)r + 1;
    }
    for (int r = 0; r < 4; r++) {
        k[2 * r] = -10.0f * (float)r;
        k[2 * r + 1] = -10.0f * (float)r - 1;
    }
    tensor(g, "blk.0.attn_q.weight", T_F32, 2, (uint64_t[]){2, 8}, q, sizeof q);
    tensor(g, "blk.0.attn_k.weight", T_F32, 2, (uint64_t[]){2, 4}, k, sizeof k);
    tensor(g, "blk.0.attn_v.weight", T_F32, 2, (uint64_t[]){2, 4}, k, sizeof k);
    RtCheckpoint *c = open_ok(write_gguf(g, "perm.gguf"));
    expect_values(rt_ckpt_find(c, "model.layers.0.self_attn.q_proj.weight"),
                  (float[]){0, 1, 20, 21, 10, 11, 30, 31, 40, 41, 60, 61, 50, 51, 70, 71}, 16);
    expect_values(rt_ckpt_find(c, "model.layers.0.self_attn.k_proj.weight"), (float[]){0, -1, -20, -21, -10, -11, -30, -31},
                  8);
    expect_values(rt_ckpt_find(c, "model.layers.0.self_attn.v_proj.weight"), k, 8);   /* v keeps its rows */
    rt_ckpt_close(c);
}

/* Quantized and f16 q/k are un-permuted too, row by row. */
static void test_unpermute_quantized(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    llama_meta(g, 32, 64, 1, 2, 2);
    kv_u32(g, "llama.attention.key_length", 4);
    float x[8 * 32], e[8 * 32];
    for (int r = 0; r < 8; r++)
        for (int j = 0; j < 32; j++)
            x[32 * r + j] = (float)(r + 1) * (float)(j - 16) / 16.0f;
    unsigned char q8[8 * 34];
    quant_q8_0(x, 256, q8, e);
    tensor(g, "blk.0.attn_q.weight", T_Q8_0, 2, (uint64_t[]){32, 8}, q8, sizeof q8);
    uint16_t h[8 * 32];
    for (int i = 0; i < 256; i++)
        h[i] = rt_f32_to_f16(x[i]);
    tensor(g, "blk.0.attn_k.weight", T_F16, 2, (uint64_t[]){32, 8}, h, sizeof h);
    RtCheckpoint *c = open_ok(write_gguf(g, "permq.gguf"));
    static const int from[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    float want[256];
    for (int r = 0; r < 8; r++)
        memcpy(want + 32 * r, e + 32 * from[r], 32 * sizeof(float));
    expect_values(rt_ckpt_find(c, "model.layers.0.self_attn.q_proj.weight"), want, 256);
    const RtTensor *t = rt_ckpt_find(c, "model.layers.0.self_attn.k_proj.weight");
    assert_int_equal(t->dtype, RT_F16);
    assert_int_equal(t->nbytes, 512);
    for (int r = 0; r < 8; r++)
        assert_memory_equal((const uint16_t *)t->data + 32 * r, h + 32 * from[r], 64);
    rt_ckpt_close(c);
}

/* By default Q8_0/Q4_0/Q4_1 stay as blocks (rows reordered for q/k like
 * the rest); other quantized types are still dequantized. */
static void test_blocks_kept(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    llama_meta(g, 32, 64, 1, 2, 2);
    kv_u32(g, "llama.attention.key_length", 4);
    float x[8 * 32], e[8 * 32];
    for (int r = 0; r < 8; r++)
        for (int j = 0; j < 32; j++)
            x[32 * r + j] = (float)(r + 1) * (float)(j - 16) / 16.0f;
    unsigned char q8[8 * 34];
    quant_q8_0(x, 256, q8, e);
    tensor(g, "blk.0.attn_q.weight", T_Q8_0, 2, (uint64_t[]){32, 8}, q8, sizeof q8);
    tensor(g, "blk.0.attn_v.weight", T_Q8_0, 2, (uint64_t[]){32, 8}, q8, sizeof q8);
    const char *p = write_gguf(g, "blocks.gguf");
    RtCheckpoint *c = NULL;
    RtErr err = {.msg = ""};
    assert_true(rt_ckpt_open(p, &c, &err));
    const RtTensor *q = rt_ckpt_find(c, "model.layers.0.self_attn.q_proj.weight");
    const RtTensor *v = rt_ckpt_find(c, "model.layers.0.self_attn.v_proj.weight");
    assert_int_equal(q->dtype, RT_Q8_0);
    assert_int_equal(v->dtype, RT_Q8_0);
    assert_int_equal(q->nbytes, sizeof q8);
    assert_int_equal(q->shape[0], 8);
    assert_int_equal(q->shape[1], 32);
    static const int from[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    for (int r = 0; r < 8; r++)
        assert_memory_equal((const unsigned char *)q->data + 34 * r, q8 + 34 * from[r], 34);
    assert_memory_equal(v->data, q8, sizeof q8);
    rt_ckpt_close(c);
}

static RtCfgValue cfg(const RtCheckpoint *c, const char *key)
{
    return rt_config_get(rt_ckpt_config(c), key);
}

static void test_config(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_str(g, "general.architecture", "llama");
    kv_u32(g, "llama.embedding_length", 64);
    kv_u32(g, "llama.feed_forward_length", 160);
    kv_u64(g, "llama.block_count", 3);
    kv_i32(g, "llama.attention.head_count", 4);
    kv_u32(g, "llama.attention.head_count_kv", 2);
    kv_u32(g, "llama.context_length", 2048);
    kv_f32(g, "llama.rope.freq_base", 100000);
    kv_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_u32(g, "llama.rope.dimension_count", 16);
    kv_strs(g, "tokenizer.ggml.tokens", 5, (const char *const[]){"a", "b", "c", "d", "e"});
    kv_u32(g, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(g, "tokenizer.ggml.eos_token_id", 2);
    tensor_zeros(g, "token_embd.weight", T_F32, 2, (uint64_t[]){64, 5});
    RtCheckpoint *c = open_ok(write_gguf(g, "cfg.gguf"));
    assert_string_equal(cfg(c, "model_type").s, "llama");
    assert_int_equal(cfg(c, "vocab_size").i, 5);          /* from the tokens */
    assert_int_equal(cfg(c, "hidden_size").i, 64);
    assert_int_equal(cfg(c, "intermediate_size").i, 160);
    assert_int_equal(cfg(c, "num_hidden_layers").i, 3);
    assert_int_equal(cfg(c, "num_attention_heads").i, 4);
    assert_int_equal(cfg(c, "num_key_value_heads").i, 2);
    assert_int_equal(cfg(c, "max_position_embeddings").i, 2048);
    assert_int_equal(cfg(c, "rope_theta").kind, CFG_FLOAT);
    assert_true(cfg(c, "rope_theta").f == 100000.0);
    assert_int_equal(cfg(c, "rms_norm_eps").kind, CFG_FLOAT);
    assert_true(cfg(c, "rms_norm_eps").f == 1e-5);          /* the shortest f32 text, read as a double */
    assert_int_equal(cfg(c, "head_dim").kind, CFG_MISSING);
    assert_int_equal(cfg(c, "tie_word_embeddings").kind, CFG_BOOL);
    assert_true(cfg(c, "tie_word_embeddings").b);
    assert_int_equal(cfg(c, "bos_token_id").i, 1);
    assert_int_equal(cfg(c, "eos_token_id").i, 2);
    rt_ckpt_close(c);

    /* defaults: kv heads = heads, theta 10000.0; vocab from llama.vocab_size;
     * head_dim from key_length; an output.weight unties the head */
    g = gguf_new();
    kv_str(g, "general.architecture", "llama");
    kv_u32(g, "llama.embedding_length", 64);
    kv_u32(g, "llama.feed_forward_length", 160);
    kv_u32(g, "llama.block_count", 1);
    kv_u32(g, "llama.attention.head_count", 4);
    kv_u32(g, "llama.attention.key_length", 32);
    kv_u32(g, "llama.vocab_size", 7);
    kv_f64(g, "llama.attention.layer_norm_rms_epsilon", 1e-6);
    tensor_zeros(g, "output.weight", T_F32, 2, (uint64_t[]){64, 7});
    c = open_ok(write_gguf(g, "cfg2.gguf"));
    assert_int_equal(cfg(c, "vocab_size").i, 7);
    assert_int_equal(cfg(c, "num_key_value_heads").i, 4);
    assert_int_equal(cfg(c, "head_dim").i, 32);
    assert_int_equal(cfg(c, "rope_theta").kind, CFG_FLOAT);
    assert_true(cfg(c, "rope_theta").f == 10000.0);
    assert_true(cfg(c, "rms_norm_eps").f == 1e-6);
    assert_false(cfg(c, "tie_word_embeddings").b);
    assert_int_equal(cfg(c, "max_position_embeddings").kind, CFG_MISSING);
    assert_int_equal(cfg(c, "bos_token_id").kind, CFG_MISSING);
    rt_ckpt_close(c);

    /* vocabulary from the embedding's rows when nothing else says */
    g = gguf_new();
    kv_str(g, "general.architecture", "llama");
    kv_u32(g, "llama.embedding_length", 4);
    kv_u32(g, "llama.feed_forward_length", 8);
    kv_u32(g, "llama.block_count", 1);
    kv_u32(g, "llama.attention.head_count", 2);
    tensor_zeros(g, "token_embd.weight", T_F32, 2, (uint64_t[]){4, 9});
    c = open_ok(write_gguf(g, "cfg3.gguf"));
    assert_int_equal(cfg(c, "vocab_size").i, 9);
    rt_ckpt_close(c);
}

/* ---- the header ------------------------------------------------------------- */

/* A valid file cut at a point in every section and field. */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    char name[65];
    memset(name, 'n', 64);
    name[64] = '\0';
    kv_str(g, "general.name", name);                                   /* 24..120 */
    kv_strs(g, "test.strs", 2, (const char *const[]){"ab", "cde"});   /* 120..174 */
    kv_u32(g, "test.u32", 7);                                          /* 174..198 */
    tensor(g, "a", T_F32, 1, (uint64_t[]){4}, (float[]){1, 2, 3, 4}, 16);   /* info 198..231, data 288..304 */
    unsigned char q8[68] = {0};
    tensor(g, "b", T_Q8_0, 2, (uint64_t[]){32, 2}, q8, 68);           /* info 231..272, data 320..388 */
    Buf f = image(g);
    assert_int_equal(f.n, 388);
    static const struct {
        size_t cut;
        const char *fault;
    } cuts[] = {
        {0, "header: truncated: needs 4 bytes at offset 0, the file has 0"},
        {2, "header: truncated: needs 4 bytes at offset 0, the file has 2"},
        {7, "header: truncated: needs 4 bytes at offset 4, the file has 7"},
        {15, "header: truncated: needs 8 bytes at offset 8, the file has 15"},
        {23, "header: truncated: needs 8 bytes at offset 16, the file has 23"},
        {50, "header: 3 metadata entries and 2 tensor infos need at least 84 bytes, the file has 26 after the header"},
        {110, "metadata 'general.name': truncated: needs 64 bytes at offset 56, the file has 110"},
        {124, "metadata entry 1: truncated: needs 8 bytes at offset 120, the file has 124"},
        {133, "metadata entry 1: truncated: needs 9 bytes at offset 128, the file has 133"},
        {139, "metadata 'test.strs': truncated: needs 4 bytes at offset 137, the file has 139"},
        {143, "metadata 'test.strs': truncated: needs 4 bytes at offset 141, the file has 143"},
        {150, "metadata 'test.strs': truncated: needs 8 bytes at offset 145, the file has 150"},
        {155, "metadata 'test.strs': truncated: needs 16 bytes at offset 153, the file has 155"},
        {170, "metadata 'test.strs': truncated: needs 8 bytes at offset 163, the file has 170"},
        {172, "metadata 'test.strs': truncated: needs 3 bytes at offset 171, the file has 172"},
        {176, "metadata entry 2: truncated: needs 8 bytes at offset 174, the file has 176"},
        {192, "metadata 'test.u32': truncated: needs 4 bytes at offset 190, the file has 192"},
        {196, "metadata 'test.u32': truncated: needs 4 bytes at offset 194, the file has 196"},
        {200, "tensor info 0: truncated: needs 8 bytes at offset 198, the file has 200"},
        {206, "tensor info 0: truncated: needs 1 byte at offset 206, the file has 206"},
        {209, "tensor 'a': truncated: needs 4 bytes at offset 207, the file has 209"},
        {215, "tensor 'a': truncated: needs 8 bytes at offset 211, the file has 215"},
        {221, "tensor 'a': truncated: needs 4 bytes at offset 219, the file has 221"},
        {225, "tensor 'a': truncated: needs 8 bytes at offset 223, the file has 225"},
        {235, "tensor info 1: truncated: needs 8 bytes at offset 231, the file has 235"},
        {250, "tensor 'b': truncated: needs 8 bytes at offset 244, the file has 250"},
        {262, "tensor 'b': truncated: needs 4 bytes at offset 260, the file has 262"},
        {270, "tensor 'b': truncated: needs 8 bytes at offset 264, the file has 270"},
        {280, "tensor 'a' offset 0 + size 16 is past the end of the data section (0 bytes)"},
        {300, "tensor 'a' offset 0 + size 16 is past the end of the data section (12 bytes)"},
        {387, "tensor 'b' offset 32 + size 68 is past the end of the data section (99 bytes)"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        reject_bytes(f.p, cuts[i].cut, cuts[i].fault);
    RtCheckpoint *c = open_ok(write_bytes("whole.gguf", f.p, f.n));
    assert_int_equal(rt_ckpt_count(c), 2);
    rt_ckpt_close(c);
    free(f.p);
}

static void test_bad_magic(void **state)
{
    (void)state;
    reject_bytes("GGML\3\0\0\0", 8, "header: bad magic 47 47 4d 4c (expected \"GGUF\")");
    reject_bytes("{\"a\": 1}", 8, "header: bad magic 7b 22 61 22 (expected \"GGUF\")");
    reject_bytes("gguf", 4, "header: bad magic 67 67 75 66 (expected \"GGUF\")");
}

static void test_version(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    g->version = 1;
    reject(g, "header: GGUF version 1 is not supported (only 2 and 3)");
    g->version = 4;
    reject(g, "header: GGUF version 4 is not supported (only 2 and 3)");
    g->version = 3u << 24;
    reject(g, "header: GGUF version 50331648 is not supported (only 2 and 3); the file looks big-endian");
}

static void test_huge_counts(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    Buf f = image(g);
    memcpy(f.p + 8, "\x01\x00\x10\x00\x00\x00\x00\x00", 8);          /* 2^20 + 1 tensors */
    reject_bytes(f.p, f.n, "header: tensor count 1048577 exceeds the maximum of 1048576");
    memcpy(f.p + 8, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    reject_bytes(f.p, f.n, "header: tensor count 18446744073709551615 exceeds the maximum of 1048576");
    memset(f.p + 8, 0, 8);
    memcpy(f.p + 16, "\x01\x00\x01\x00\x00\x00\x00\x00", 8);          /* 65537 entries */
    reject_bytes(f.p, f.n, "header: metadata count 65537 exceeds the maximum of 65536");
    memcpy(f.p + 16, "\x00\x00\x00\x00\x00\x01\x00\x00", 8);
    reject_bytes(f.p, f.n, "header: metadata count 1099511627776 exceeds the maximum of 65536");
    /* within the caps but more than the file could hold */
    memcpy(f.p + 16, "\x00\x00\x01\x00\x00\x00\x00\x00", 8);
    reject_bytes(f.p, f.n, "header: 65536 metadata entries and 0 tensor infos need at least 786432 bytes, the file "
                           "has 8 after the header");
    memcpy(f.p + 8, "\x00\x00\x10\x00\x00\x00\x00\x00", 8);
    memset(f.p + 16, 0, 8);
    reject_bytes(f.p, f.n, "header: 0 metadata entries and 1048576 tensor infos need at least 25165824 bytes, the "
                           "file has 8 after the header");
    free(f.p);
}

/* ---- metadata ----------------------------------------------------------------- */

static void test_huge_string_length(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    put_u64(&g->kv, 1ull << 34);                                 /* a key of 16 GiB */
    put(&g->kv, "general.name", 12);
    g->nkv = 1;
    reject(g, "metadata entry 0: key length 17179869184 exceeds the maximum of 16777216");

    g = gguf_new();
    kv_key(g, "general.name", GGUF_STRING);
    put_u64(&g->kv, RT_GGUF_MAX_STRING + 1ull);
    reject(g, "metadata 'general.name': string length 16777217 exceeds the maximum of 16777216");

    g = gguf_new();
    kv_key(g, "general.name", GGUF_STRING);
    put_u64(&g->kv, UINT64_MAX);
    reject(g, "metadata 'general.name': string length 18446744073709551615 exceeds the maximum of 16777216");

    g = gguf_new();                                               /* under the cap, past the end */
    kv_key(g, "general.name", GGUF_STRING);
    put_u64(&g->kv, 1000);
    put(&g->kv, "abc", 3);
    reject(g, "metadata 'general.name': truncated: needs 1000 bytes at offset 56, the file has 64");

    g = gguf_new();
    kv_array(g, "tokenizer.ggml.tokens", GGUF_STRING, 2);
    put_str(&g->kv, "ok");
    put_u64(&g->kv, RT_GGUF_MAX_STRING + 1ull);
    reject(g, "metadata 'tokenizer.ggml.tokens': string length 16777217 exceeds the maximum of 16777216");
}

static void test_huge_array(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_array(g, "t.a", GGUF_U8, RT_GGUF_MAX_ARRAY + 1ull);
    reject(g, "metadata 't.a': array length 16777217 exceeds the maximum of 16777216");
    g = gguf_new();
    kv_array(g, "t.a", GGUF_U64, UINT64_MAX);
    reject(g, "metadata 't.a': array length 18446744073709551615 exceeds the maximum of 16777216");
    g = gguf_new();                                               /* under the cap, past the end */
    kv_array(g, "t.a", GGUF_F64, 1000);
    reject(g, "metadata 't.a': truncated: needs 8000 bytes at offset 51, the file has 64");
    g = gguf_new();
    kv_array(g, "t.a", GGUF_STRING, RT_GGUF_MAX_ARRAY);
    reject(g, "metadata 't.a': truncated: needs 134217728 bytes at offset 51, the file has 64");
}

static void test_nested_array(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_array(g, "t.nested", GGUF_ARRAY, 1);
    put_u32(&g->kv, GGUF_U8);
    put_u64(&g->kv, 1);
    put_u8(&g->kv, 0);
    reject(g, "metadata 't.nested': nested arrays are not supported");
}

static void test_unknown_value_type(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_key(g, "t.x", 13);
    put_u64(&g->kv, 0);
    reject(g, "metadata 't.x': unknown value type 13");
    g = gguf_new();
    kv_array(g, "t.x", 0xffffffffu, 1);
    reject(g, "metadata 't.x': unknown array element type 4294967295");
}

static void test_bad_key(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_key(g, "", GGUF_U8);
    put_u8(&g->kv, 1);
    reject(g, "metadata entry 0: empty key");
    g = gguf_new();
    kv_u8(g, "ok", 1);
    put_strn(&g->kv, "a\0b", 3);
    put_u32(&g->kv, GGUF_U8);
    put_u8(&g->kv, 1);
    g->nkv++;
    reject(g, "metadata entry 1: key contains a NUL byte");
}

static void test_bool_not_0_or_1(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_bool(g, "t.b", 2);
    reject(g, "metadata 't.b': bool value 2 is not 0 or 1");
    g = gguf_new();
    kv_array(g, "t.bs", GGUF_BOOL, 3);
    put(&g->kv, "\1\0\377", 3);
    reject(g, "metadata 't.bs': bool element 2 is 255, not 0 or 1");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_u32(g, "t.a", 1);
    kv_str(g, "general.name", "x");
    kv_f32(g, "t.a", 2);
    reject(g, "duplicate metadata key 't.a'");
}

static void test_known_key_wrong_type(void **state)
{
    (void)state;
#define ARR(t) (100 + (t))     /* an array of t */
    static const struct {
        const char *key;
        int type;
        const char *fault;
    } cases[] = {
        {"general.alignment", GGUF_U64, "metadata 'general.alignment' is u64, expected u32"},
        {"general.alignment", GGUF_I32, "metadata 'general.alignment' is i32, expected u32"},
        {"general.architecture", GGUF_U32, "metadata 'general.architecture' is u32, expected a string"},
        {"llama.block_count", GGUF_F32, "metadata 'llama.block_count' is f32, expected an integer"},
        {"llama.attention.head_count", GGUF_BOOL, "metadata 'llama.attention.head_count' is bool, expected an integer"},
        {"llama.attention.head_count_kv", ARR(GGUF_I32),
         "metadata 'llama.attention.head_count_kv' is an array of i32, expected an integer"},
        {"llama.rope.freq_base", GGUF_U32, "metadata 'llama.rope.freq_base' is u32, expected f32 or f64"},
        {"llama.attention.layer_norm_rms_epsilon", GGUF_STRING,
         "metadata 'llama.attention.layer_norm_rms_epsilon' is string, expected f32 or f64"},
        {"tokenizer.ggml.tokens", ARR(GGUF_I32), "metadata 'tokenizer.ggml.tokens' is an array of i32, expected an array "
                                             "of strings"},
        {"tokenizer.ggml.tokens", GGUF_STRING, "metadata 'tokenizer.ggml.tokens' is string, expected an array of strings"},
        {"tokenizer.ggml.scores", ARR(GGUF_F64), "metadata 'tokenizer.ggml.scores' is an array of f64, expected an array "
                                             "of f32"},
        {"tokenizer.ggml.token_type", ARR(GGUF_U32),
         "metadata 'tokenizer.ggml.token_type' is an array of u32, expected an array of i32"},
        {"tokenizer.ggml.merges", ARR(GGUF_U8), "metadata 'tokenizer.ggml.merges' is an array of u8, expected an array of "
                                            "strings"},
        {"tokenizer.ggml.bos_token_id", GGUF_F32, "metadata 'tokenizer.ggml.bos_token_id' is f32, expected an integer"},
        {"tokenizer.ggml.padding_token_id", GGUF_STRING,
         "metadata 'tokenizer.ggml.padding_token_id' is string, expected an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Gguf *g = gguf_new();
        int t = cases[i].type;
        if (t >= ARR(0)) {
            kv_array(g, cases[i].key, (uint32_t)(t - ARR(0)), 1);
            put_u64(&g->kv, 0);                  /* one element of up to 8 bytes */
            g->kv.n -= 8 - (t == ARR(GGUF_F64) ? 8 : t == ARR(GGUF_U8) ? 1 : 4);
        } else if (t == GGUF_STRING) {
            kv_str(g, cases[i].key, "s");
        } else {
            kv_key(g, cases[i].key, (uint32_t)t);
            put_u64(&g->kv, 1);
            g->kv.n -= 8 - (t == GGUF_U64 ? 8 : t == GGUF_BOOL ? 1 : 4);
        }
        reject(g, cases[i].fault);
    }
#undef ARR
}

static void test_tokenizer_lengths(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_strs(g, "tokenizer.ggml.tokens", 3, (const char *const[]){"a", "b", "c"});
    kv_f32s(g, "tokenizer.ggml.scores", 2, (float[]){0, -1});
    reject(g, "metadata 'tokenizer.ggml.scores' has 2 entries but tokenizer.ggml.tokens has 3");
    g = gguf_new();
    kv_i32s(g, "tokenizer.ggml.token_type", 4, (int32_t[]){1, 1, 1, 1});
    kv_strs(g, "tokenizer.ggml.tokens", 3, (const char *const[]){"a", "b", "c"});
    reject(g, "metadata 'tokenizer.ggml.token_type' has 4 entries but tokenizer.ggml.tokens has 3");
}

static void test_bad_alignment(void **state)
{
    (void)state;
    static const uint32_t bad[] = {0, 3, 48, 1u << 17, 1u << 20, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Gguf *g = gguf_new();
        kv_u32(g, "general.alignment", bad[i]);
        char want[128];
        snprintf(want, sizeof want, "general.alignment %u is not a power of two in 1..65536", bad[i]);
        reject(g, want);
    }
}

/* ---- tensor infos ------------------------------------------------------------ */

static void test_bad_tensor_name(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor_info(g, "", T_F32, 1, (uint64_t[]){1}, 0);
    reject(g, "tensor info 0: empty name");
    g = gguf_new();
    tensor_info(g, "ok", T_F32, 1, (uint64_t[]){1}, 0);
    put_strn(&g->ti, "x\0", 2);
    put(&g->ti, "\1\0\0\0\1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24);
    g->nti++;
    reject(g, "tensor info 1: name contains a NUL byte");
    g = gguf_new();
    put_u64(&g->ti, 1ull << 40);
    g->nti = 1;
    put(&g->ti, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
    reject(g, "tensor info 0: name length 1099511627776 exceeds the maximum of 16777216");
}

static void test_n_dims(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor_info(g, "w", T_F32, 5, (uint64_t[]){1, 1, 1, 1, 1}, 0);
    reject(g, "tensor 'w': n_dims 5 exceeds the maximum of 4");
    g = gguf_new();
    put_str(&g->ti, "w");
    put_u32(&g->ti, 0xffffffffu);
    put(&g->ti, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
    g->nti = 1;
    reject(g, "tensor 'w': n_dims 4294967295 exceeds the maximum of 4");
}

static void test_zero_dim(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor_info(g, "w", T_F32, 2, (uint64_t[]){4, 0}, 0);
    reject(g, "tensor 'w': dimension 1 is 0");
    g = gguf_new();
    tensor_info(g, "w", T_F32, 3, (uint64_t[]){0, 4, 4}, 0);
    reject(g, "tensor 'w': dimension 0 is 0");
}

static void test_dim_product_overflow(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor_info(g, "w", T_F32, 2, (uint64_t[]){1ull << 32, 1ull << 32}, 0);
    reject(g, "tensor 'w': element count of dims [4294967296, 4294967296] overflows int64");
    g = gguf_new();
    tensor_info(g, "w", T_F32, 1, (uint64_t[]){1ull << 63}, 0);
    reject(g, "tensor 'w': element count of dims [9223372036854775808] overflows int64");
    g = gguf_new();
    tensor_info(g, "w", T_F32, 4, (uint64_t[]){1 << 16, 1 << 16, 1 << 16, 1 << 16}, 0);
    reject(g, "tensor 'w': element count of dims [65536, 65536, 65536, 65536] overflows int64");
    /* the element count fits, the byte count does not */
    g = gguf_new();
    tensor_info(g, "w", T_F32, 2, (uint64_t[]){1ull << 31, 1ull << 31}, 0);
    reject(g, "tensor 'w': size of 4611686018427387904 F32 elements overflows");
}

static void test_unknown_tensor_type(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor_info(g, "blk.0.attn_q.weight", T_Q5_0, 2, (uint64_t[]){32, 2}, 0);
    reject(g, "tensor 'blk.0.attn_q.weight': type 6 (Q5_0) is not supported (supported: F32, F16, Q4_0, Q4_1, Q8_0, "
              "Q4_K, Q5_K, Q6_K, BF16)");
    g = gguf_new();
    tensor_info(g, "w", 99, 1, (uint64_t[]){1}, 0);
    reject(g, "tensor 'w': type 99 is not supported (supported: F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, BF16)");
    /* checked before the size: a type with no size must not be used for one */
    g = gguf_new();
    tensor_info(g, "w", 4, 2, (uint64_t[]){1ull << 40, 1ull << 20}, 0);
    reject(g, "tensor 'w': type 4 (Q4_2) is not supported (supported: F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, "
              "BF16)");
}

static void test_row_not_whole_blocks(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor_info(g, "w", T_Q4_0, 2, (uint64_t[]){33, 2}, 0);
    reject(g, "tensor 'w': row length 33 is not a multiple of the Q4_0 block size 32");
    g = gguf_new();
    tensor_info(g, "w", T_Q6_K, 2, (uint64_t[]){128, 4}, 0);
    reject(g, "tensor 'w': row length 128 is not a multiple of the Q6_K block size 256");
}

static void test_offset_misaligned(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor_info(g, "w", T_F32, 1, (uint64_t[]){1}, 4);
    put(&g->data, "\0\0\0\0\0\0\0\0", 8);
    reject(g, "tensor 'w': offset 4 is not a multiple of the alignment 32");
    g = gguf_new();
    g->align = 8;
    kv_u32(g, "general.alignment", 8);
    tensor_info(g, "w", T_F32, 1, (uint64_t[]){1}, 12);
    reject(g, "tensor 'w': offset 12 is not a multiple of the alignment 8");
}

static void test_offset_past_end(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor(g, "a", T_F32, 1, (uint64_t[]){2}, (float[]){1, 2}, 8);
    tensor_info(g, "blk.0.attn_q.weight", T_F32, 2, (uint64_t[]){64, 32}, 4096);
    put(&g->data, "\0\0\0\0", 4);       /* data: 12 bytes */
    reject(g, "tensor 'blk.0.attn_q.weight' offset 4096 + size 8192 is past the end of the data section (12 bytes)");
    /* offset + size wraps around 2^64 */
    g = gguf_new();
    tensor_info(g, "w", T_F32, 1, (uint64_t[]){16}, UINT64_MAX - 31);
    put(&g->data, "\0\0\0\0\0\0\0\0", 8);
    reject(g, "tensor 'w' offset 18446744073709551584 + size 64 is past the end of the data section (8 bytes)");
    /* just one byte short */
    g = gguf_new();
    tensor_info(g, "w", T_Q8_0, 1, (uint64_t[]){64}, 0);
    static const unsigned char zeros[67];
    put(&g->data, zeros, sizeof zeros);
    reject(g, "tensor 'w' offset 0 + size 68 is past the end of the data section (67 bytes)");
}

static void test_duplicate_tensor(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    tensor(g, "a", T_F32, 1, (uint64_t[]){1}, (float[]){1}, 4);
    tensor(g, "b", T_F32, 1, (uint64_t[]){1}, (float[]){2}, 4);
    tensor(g, "a", T_F32, 1, (uint64_t[]){1}, (float[]){3}, 4);
    reject(g, "duplicate tensor name 'a'");
}

/* ---- llama-specific refusals -------------------------------------------------- */

static void test_unsupported_architecture(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_str(g, "general.architecture", "gpt2");
    reject(g, "architecture 'gpt2' is not supported (only llama)");
}

static void test_rope_freqs(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    llama_meta(g, 4, 8, 1, 2, 2);
    tensor_zeros(g, "rope_freqs.weight", T_F32, 1, (uint64_t[]){1});
    reject(g, "tensor 'rope_freqs.weight' holds Llama 3 rope scaling factors; llama3 rope scaling from GGUF is not "
              "supported yet");
    g = gguf_new();
    llama_meta(g, 4, 8, 1, 2, 2);
    kv_str(g, "llama.rope.scaling.type", "linear");
    reject(g, "rope scaling 'linear' (llama.rope.scaling.type) is not supported yet");
    g = gguf_new();
    llama_meta(g, 4, 8, 1, 2, 2);
    kv_str(g, "llama.rope.scaling.type", "none");
    rt_ckpt_close(open_ok(write_gguf(g, "none.gguf")));
}

static void test_llama_hparams(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    kv_str(g, "general.architecture", "llama");
    kv_u32(g, "llama.feed_forward_length", 8);
    reject(g, "metadata 'llama.embedding_length' is missing");
    g = gguf_new();
    llama_meta(g, 4, 8, 0, 2, 2);
    reject(g, "metadata 'llama.block_count' is 0, not a count in 1..2147483647");
    g = gguf_new();
    kv_str(g, "general.architecture", "llama");
    kv_u32(g, "llama.embedding_length", 4);
    kv_u32(g, "llama.feed_forward_length", 8);
    kv_u32(g, "llama.block_count", 1);
    kv_i32(g, "llama.attention.head_count", -3);
    reject(g, "metadata 'llama.attention.head_count' is -3, not a count in 1..2147483647");
    g = gguf_new();
    llama_meta(g, 4, 8, 1, 3, 2);
    reject(g, "llama.attention.head_count 3 is not a multiple of llama.attention.head_count_kv 2");
    g = gguf_new();
    llama_meta(g, 64, 8, 1, 4, 4);
    kv_u32(g, "llama.rope.dimension_count", 8);
    reject(g, "llama.rope.dimension_count 8 is not the head size 16; partial rotary embeddings are not supported");
    g = gguf_new();
    llama_meta(g, 64, 8, 1, 4, 4);
    kv_u32(g, "llama.expert_count", 8);
    reject(g, "mixture of experts (llama.expert_count 8) is not supported");
    g = gguf_new();
    llama_meta(g, 64, 8, 1, 4, 4);
    kv_f32(g, "llama.rope.freq_base", -1);
    reject(g, "metadata 'llama.rope.freq_base' is -1, not a positive number");
}

static void test_names_collide(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    llama_meta(g, 4, 8, 1, 2, 2);
    tensor_zeros(g, "token_embd.weight", T_F32, 2, (uint64_t[]){4, 8});
    tensor_zeros(g, "model.embed_tokens.weight", T_F32, 2, (uint64_t[]){4, 8});
    reject(g, "tensors 'model.embed_tokens.weight' and 'token_embd.weight' both become 'model.embed_tokens.weight'");
}

static void test_qk_rows_do_not_split(void **state)
{
    (void)state;
    Gguf *g = gguf_new();
    llama_meta(g, 4, 8, 1, 4, 2);
    tensor_zeros(g, "blk.0.attn_q.weight", T_F32, 2, (uint64_t[]){4, 6});
    reject(g, "tensor 'blk.0.attn_q.weight': 6 rows do not split into 4 heads of even size");
    g = gguf_new();
    llama_meta(g, 4, 8, 1, 4, 2);
    tensor_zeros(g, "blk.3.attn_k.weight", T_F32, 1, (uint64_t[]){8});
    reject(g, "tensor 'blk.3.attn_k.weight' has rank 1, expected 2");
}

/* ---- harness --------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rt_gguf_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gguf_new();
    free(G.kv.p);
    free(G.ti.p);
    free(G.data.p);
    return test_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_version_2),
        cmocka_unit_test(test_no_tensors),
        cmocka_unit_test(test_dispatch_by_magic),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_llama_names_and_shapes),
        cmocka_unit_test(test_unpermute_inverts_permute),
        cmocka_unit_test(test_unpermute_by_hand),
        cmocka_unit_test(test_unpermute_quantized),
        cmocka_unit_test(test_blocks_kept),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_huge_string_length),
        cmocka_unit_test(test_huge_array),
        cmocka_unit_test(test_nested_array),
        cmocka_unit_test(test_unknown_value_type),
        cmocka_unit_test(test_bad_key),
        cmocka_unit_test(test_bool_not_0_or_1),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_known_key_wrong_type),
        cmocka_unit_test(test_tokenizer_lengths),
        cmocka_unit_test(test_bad_alignment),
        cmocka_unit_test(test_bad_tensor_name),
        cmocka_unit_test(test_n_dims),
        cmocka_unit_test(test_zero_dim),
        cmocka_unit_test(test_dim_product_overflow),
        cmocka_unit_test(test_unknown_tensor_type),
        cmocka_unit_test(test_row_not_whole_blocks),
        cmocka_unit_test(test_offset_misaligned),
        cmocka_unit_test(test_offset_past_end),
        cmocka_unit_test(test_duplicate_tensor),
        cmocka_unit_test(test_unsupported_architecture),
        cmocka_unit_test(test_rope_freqs),
        cmocka_unit_test(test_llama_hparams),
        cmocka_unit_test(test_names_collide),
        cmocka_unit_test(test_qk_rows_do_not_split),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
