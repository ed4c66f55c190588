/* tests/runtime/test_safetensors.c — rt_st_open accepts well-formed files and
 * rejects each way a file can break the format, with the exact message.
 *
 * A small writer below builds files in a fresh mkdtemp directory: the 8-byte
 * little-endian header length (normally the header's own length, forced for
 * the length tests), the header text, then data bytes in a known pattern. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/test_util.h"

#include "runtime/runtime.h"

static char dir[64];
static char path[512];

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + 1);
}

/* dir/name <- header length hlen, header bytes h[0..hn), data_len pattern bytes. */
static const char *write_raw(const char *name, uint64_t hlen, const char *h, size_t hn, size_t data_len)
{
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(hlen >> (8 * i));
    assert_int_equal(fwrite(len, 1, 8, f), 8);
    assert_int_equal(fwrite(h, 1, hn, f), hn);
    for (size_t i = 0; i < data_len; i++)
        assert_int_not_equal(fputc(pattern(i), f), EOF);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *write_st(const char *name, const char *header, size_t data_len)
{
    return write_raw(name, strlen(header), header, strlen(header), data_len);
}

static RtSafetensors *open_ok(const char *p)
{
    RtSafetensors *st = NULL;
    RtErr err = {.msg = ""};
    if (!rt_st_open(p, &st, &err))
        fail_msg("rt_st_open failed: %s", err.msg);
    assert_non_null(st);
    return st;
}

/* rt_st_open(p) fails with exactly "<p>: <fault>". */
static void expect_fault(const char *p, const char *fault)
{
    RtSafetensors *st = (RtSafetensors *)&st;
    RtErr err = {.msg = ""};
    char want[1024];
    snprintf(want, sizeof want, "%s: %s", p, fault);
    assert_false(rt_st_open(p, &st, &err));
    assert_null(st);
    assert_string_equal(err.msg, want);
}

/* The common case: header h with data_len bytes must fail with fault. */
static void reject(const char *h, size_t data_len, const char *fault)
{
    expect_fault(write_st("bad.safetensors", h, data_len), fault);
}

/* ---- valid files ----------------------------------------------------------- */

/* The safetensors dtypes: RtDType up to the GGUF block types. */
#define ST_DTYPES RT_Q8_0

static void test_every_dtype(void **state)
{
    (void)state;
    char header[4096];
    size_t n = 0, at = 0;
    n += (size_t)snprintf(header + n, sizeof header - n, "{");
    for (int t = 0; t < ST_DTYPES; t++) {
        size_t bytes = 6 * rt_dtype_size((RtDType)t);
        n += (size_t)snprintf(header + n, sizeof header - n,
                              "%s\"w_%s\": {\"dtype\": \"%s\", \"shape\": [2, 3], \"data_offsets\": [%zu, %zu]}",
                              t ? ", " : "", rt_dtype_name((RtDType)t), rt_dtype_name((RtDType)t), at,
                              at + bytes);
        at += bytes;
    }
    snprintf(header + n, sizeof header - n, "}");
    const char *p = write_st("all.safetensors", header, at);
    RtSafetensors *st = open_ok(p);
    assert_int_equal(rt_st_count(st), ST_DTYPES);

    const unsigned char *base = rt_st_tensor(st, 0)->data;
    size_t off = 0;
    for (int t = 0; t < ST_DTYPES; t++) {
        char name[32];
        snprintf(name, sizeof name, "w_%s", rt_dtype_name((RtDType)t));
        const RtTensor *x = rt_st_find(st, name);
        assert_non_null(x);
        assert_ptr_equal(x, rt_st_tensor(st, t));     /* data order */
        assert_string_equal(x->name, name);
        assert_string_equal(x->file, p);
        assert_int_equal(x->dtype, t);
        assert_int_equal(x->rank, 2);
        assert_int_equal(x->shape[0], 2);
        assert_int_equal(x->shape[1], 3);
        assert_int_equal(x->numel, 6);
        assert_int_equal(x->nbytes, 6 * rt_dtype_size((RtDType)t));
        assert_ptr_equal(x->data, base + off);
        for (size_t i = 0; i < x->nbytes; i++)
            assert_int_equal(((const unsigned char *)x->data)[i], pattern(off + i));
        off += x->nbytes;
    }
    assert_null(rt_st_find(st, "w_F128"));
    assert_null(rt_st_find(st, ""));
    assert_null(rt_st_tensor(st, ST_DTYPES));
    assert_null(rt_st_tensor(st, -1));
    rt_st_close(st);
}

static void test_dtype_table(void **state)
{
    (void)state;
    static const size_t size[RT_DTYPE_COUNT] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1, 1, 1, 0, 0, 0};
    static const char *const name[RT_DTYPE_COUNT] = {
        "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "Q8_0", "Q4_0",
        "Q4_1"};
    for (int t = 0; t < RT_DTYPE_COUNT; t++) {
        assert_int_equal(rt_dtype_size((RtDType)t), size[t]);
        assert_string_equal(rt_dtype_name((RtDType)t), name[t]);
    }
    int values, bytes;
    assert_false(rt_dtype_block(RT_F16, &values, &bytes));
    assert_true(rt_dtype_block(RT_Q4_1, &values, &bytes));
    assert_int_equal(values, 32);
    assert_int_equal(bytes, 20);
}

/* GGUF block types are not safetensors dtypes. */
static void test_block_dtype_rejected(void **state)
{
    (void)state;
    expect_fault(write_st("q.safetensors", "{\"q\": {\"dtype\": \"Q4_1\", \"shape\": [32], \"data_offsets\": [0, 20]}}", 20),
                "tensor 'q': unknown dtype 'Q4_1'");
}

static void test_scalar(void **state)
{
    (void)state;
    RtSafetensors *st = open_ok(write_st("scalar.safetensors",
        "{\"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}}", 4));
    const RtTensor *s = rt_st_find(st, "s");
    assert_non_null(s);
    assert_int_equal(s->rank, 0);
    assert_int_equal(s->numel, 1);
    assert_int_equal(s->nbytes, 4);
    rt_st_close(st);
}

static void test_zero_size_tensors(void **state)
{
    (void)state;
    /* empty tensors first, between two others, and last: all at begin == end */
    RtSafetensors *st = open_ok(write_st("empty.safetensors",
        "{\"e0\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [0, 0]},"
        " \"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]},"
        " \"e1\": {\"dtype\": \"F16\", \"shape\": [3, 0, 5], \"data_offsets\": [4, 4]},"
        " \"b\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6]},"
        " \"e2\": {\"dtype\": \"I64\", \"shape\": [0, 0], \"data_offsets\": [6, 6]}}", 6));
    assert_int_equal(rt_st_count(st), 5);
    const RtTensor *e1 = rt_st_find(st, "e1");
    assert_non_null(e1);
    assert_int_equal(e1->numel, 0);
    assert_int_equal(e1->nbytes, 0);
    assert_int_equal(e1->rank, 3);
    assert_int_equal(e1->shape[2], 5);
    assert_int_equal(rt_st_find(st, "e2")->numel, 0);
    assert_int_equal(rt_st_find(st, "b")->nbytes, 2);
    rt_st_close(st);
}

static void test_no_tensors(void **state)
{
    (void)state;
    RtSafetensors *st = open_ok(write_st("none.safetensors", "{}", 0));
    assert_int_equal(rt_st_count(st), 0);
    assert_null(rt_st_find(st, "x"));
    assert_null(rt_st_metadata(st, "format"));
    rt_st_close(st);
}

static void test_metadata(void **state)
{
    (void)state;
    RtSafetensors *st = open_ok(write_st("meta.safetensors",
        "{\"__metadata__\": {\"format\": \"pt\", \"note\": \"caf\xc3\xa9\", \"empty\": \"\"},"
        " \"w\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1));
    assert_int_equal(rt_st_count(st), 1);
    assert_string_equal(rt_st_metadata(st, "format"), "pt");
    assert_string_equal(rt_st_metadata(st, "note"), "caf\xc3\xa9");
    assert_string_equal(rt_st_metadata(st, "empty"), "");
    assert_null(rt_st_metadata(st, "missing"));
    assert_null(rt_st_find(st, "__metadata__"));
    rt_st_close(st);
}

static void test_space_padding(void **state)
{
    (void)state;
    RtSafetensors *st = open_ok(write_st("pad.safetensors",
        "{\"w\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]}}       ", 2));
    assert_int_equal(rt_st_find(st, "w")->nbytes, 2);
    rt_st_close(st);
}

static void test_many_tensors_found(void **state)
{
    (void)state;
    enum { N = 3000 };
    size_t cap = (size_t)N * 96, n = 0;
    char *h = malloc(cap);
    assert_non_null(h);
    n += (size_t)snprintf(h, cap, "{");
    for (int i = 0; i < N; i++)   /* names deliberately not in data order */
        n += (size_t)snprintf(h + n, cap - n,
                              "%s\"layers.%d.w\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [%d, %d]}",
                              i ? ", " : "", (i * 7919) % N, 4 * i, 4 * i + 4);
    snprintf(h + n, cap - n, "}");
    RtSafetensors *st = open_ok(write_st("many.safetensors", h, 4 * N));
    free(h);
    assert_int_equal(rt_st_count(st), N);
    for (int k = 0; k < N; k++) {
        char name[32];
        snprintf(name, sizeof name, "layers.%d.w", k);
        const RtTensor *t = rt_st_find(st, name);
        assert_non_null(t);
        assert_string_equal(t->name, name);
    }
    assert_null(rt_st_find(st, "layers.3000.w"));
    assert_null(rt_st_find(st, "layers.-1.w"));
    rt_st_close(st);
}

/* ---- the file and its header length ---------------------------------------- */

static void test_missing_file(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    expect_fault(path, "cannot open: No such file or directory");
}

static void test_not_regular(void **state)
{
    (void)state;
    expect_fault(dir, "not a regular file");
}

static void test_truncated_under_8_bytes(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "%s/short.safetensors", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("\x02\0\0\0\0", 1, 5, f), 5);
    assert_int_equal(fclose(f), 0);
    expect_fault(path, "file is 5 bytes, too short for the 8-byte header length");
}

static void test_header_length_past_end(void **state)
{
    (void)state;
    char h[504];
    memset(h, ' ', sizeof h);
    h[0] = '{';
    h[1] = '}';
    expect_fault(write_raw("long.safetensors", 1000000, h, sizeof h, 0),
                 "header length 1000000 exceeds file size 512");
}

static void test_header_length_wraps(void **state)
{
    (void)state;
    /* 8 + N wraps to 8 in 64 bits: must still be caught */
    expect_fault(write_raw("wrap.safetensors", 0xFFFFFFFFFFFFFFF0ull, "{}      ", 8, 0),
                 "header length 18446744073709551600 exceeds file size 16");
}

static void test_header_over_cap(void **state)
{
    (void)state;
    /* a sparse file just big enough to hold the oversized header */
    const char *p = write_raw("cap.safetensors", RT_MAX_HEADER_BYTES + 1ull, "{", 1, 0);
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 8 + RT_MAX_HEADER_BYTES + 1), 0);
    assert_int_equal(close(fd), 0);
    expect_fault(p, "header length 104857601 exceeds the cap of 104857600 bytes");
}

static void test_header_length_zero(void **state)
{
    (void)state;
    expect_fault(write_raw("zero.safetensors", 0, "", 0, 4), "header is empty (header length 0)");
}

/* ---- the header text ------------------------------------------------------- */

static void test_header_not_utf8(void **state)
{
    (void)state;
    reject("{\"a\xff\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
           "header is not valid UTF-8 (byte 3 of the header)");
}

static void test_header_utf8_overlong_and_surrogate(void **state)
{
    (void)state;
    reject("{\"\xc0\xaf\": 1}", 0, "header is not valid UTF-8 (byte 2 of the header)");
    reject("{\"\xed\xa0\x80\": 1}", 0, "header is not valid UTF-8 (byte 2 of the header)");
    reject("{\"\xf4\x90\x80\x80\": 1}", 0, "header is not valid UTF-8 (byte 2 of the header)");
    reject("{\"\xe2\x82\": 1}", 0, "header is not valid UTF-8 (byte 2 of the header)");
}

static void test_header_not_json(void **state)
{
    (void)state;
    reject("{not json}", 0,
           "header is not valid JSON: string or '}' expected near 'not' (byte 4 of the header)");
}

static void test_header_nul(void **state)
{
    (void)state;
    reject("{\"__metadata__\": {\"k\": \"a\\u0000b\"}}", 0,
           "header is not valid JSON: \\u0000 is not allowed without JSON_ALLOW_NUL near "
           "'\"a\\u0000b\"' (byte 33 of the header)");
    expect_fault(write_raw("nul.safetensors", 3, "{}\0", 3, 0),
                 "header is not valid JSON: end of file expected near end of file (byte 3 of the header)");
}

static void test_top_level_array(void **state)
{
    (void)state;
    reject("[1, 2]", 0, "header's top level is not a JSON object");
    reject("\"str\"", 0, "header's top level is not a JSON object");
}

static void test_leading_whitespace(void **state)
{
    (void)state;
    reject(" {}", 0, "header does not start with '{'");
}

static void test_header_trailing_bytes(void **state)
{
    (void)state;
    reject("{}\n", 0, "header has bytes other than 0x20 padding after the JSON object");
    reject("{} \t ", 0, "header has bytes other than 0x20 padding after the JSON object");
    reject("{} x", 0, "header is not valid JSON: end of file expected near 'x' (byte 4 of the header)");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]},"
           " \"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}", 2,
           "header is not valid JSON: duplicate object key near '\"a\"' (byte 64 of the header)");
}

static void test_duplicate_keys_nested(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
           "header is not valid JSON: duplicate object key near '\"dtype\"' (byte 29 of the header)");
    reject("{\"__metadata__\": {\"k\": \"1\", \"k\": \"2\"}}", 0,
           "header is not valid JSON: duplicate object key near '\"k\"' (byte 31 of the header)");
}

/* ---- __metadata__ ---------------------------------------------------------- */

static void test_metadata_not_object(void **state)
{
    (void)state;
    reject("{\"__metadata__\": [\"pt\"]}", 0, "__metadata__ is not an object");
}

static void test_metadata_bad_value(void **state)
{
    (void)state;
    reject("{\"__metadata__\": {\"format\": \"pt\", \"step\": 1}}", 0,
           "__metadata__ value for 'step' is not a string");
    reject("{\"__metadata__\": {\"nested\": {\"a\": \"b\"}}}", 0,
           "__metadata__ value for 'nested' is not a string");
}

/* ---- one tensor entry ------------------------------------------------------ */

static void test_entry_not_object(void **state)
{
    (void)state;
    reject("{\"a\": [0, 1]}", 0, "tensor 'a': entry is not an object");
}

static void test_unknown_dtype(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"F4\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
           "tensor 'a': unknown dtype 'F4'");
    reject("{\"a\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
           "tensor 'a': unknown dtype 'f32'");
}

static void test_dtype_not_string(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
           "tensor 'a': dtype is not a string");
}

static void test_extra_field(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1], \"stride\": [1]}}", 1,
           "tensor 'a': unknown field 'stride'");
}

static void test_missing_field(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [1]}}", 1, "tensor 'a': missing field 'data_offsets'");
    reject("{\"a\": {\"shape\": [1], \"data_offsets\": [0, 1]}}", 1, "tensor 'a': missing field 'dtype'");
    reject("{\"a\": {\"dtype\": \"U8\", \"data_offsets\": [0, 1]}}", 1, "tensor 'a': missing field 'shape'");
}

static void test_shape_not_array(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": 1, \"data_offsets\": [0, 1]}}", 1,
           "tensor 'a': shape is not an array");
}

static void test_negative_dim(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [2, -3], \"data_offsets\": [0, 6]}}", 6,
           "tensor 'a': shape dimension -3 is negative");
}

static void test_fractional_dim(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [1.5], \"data_offsets\": [0, 1]}}", 1,
           "tensor 'a': shape dimension 1.5 is not an integer");
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [2.0], \"data_offsets\": [0, 2]}}", 2,
           "tensor 'a': shape dimension 2.0 is not an integer");
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [\"2\"], \"data_offsets\": [0, 2]}}", 2,
           "tensor 'a': shape dimension is not an integer");
}

static void test_rank_over_max(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [1, 1, 1, 1, 1, 1, 1, 1, 1], \"data_offsets\": [0, 1]}}", 1,
           "tensor 'a': rank 9 exceeds the maximum of 8");
}

static void test_shape_product_overflow(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 0]}}", 0,
           "tensor 'a': shape product overflows int64");
    /* overflow among the nonzero dims is rejected even beside a zero dim */
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [4294967296, 4294967296, 0], \"data_offsets\": [0, 0]}}", 0,
           "tensor 'a': shape product overflows int64");
}

static void test_byte_count_overflow(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"F64\", \"shape\": [2305843009213693952], \"data_offsets\": [0, 0]}}", 0,
           "tensor 'a': byte count of 2305843009213693952 F64 elements overflows");
}

static void test_byte_count_mismatch(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}", 20,
           "tensor 'a': data_offsets span 20 bytes but 6 F32 elements need 24");
}

static void test_offsets_malformed(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0]}}", 1,
           "tensor 'a': data_offsets is not a [begin, end] pair");
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [-1, 0]}}", 1,
           "tensor 'a': data_offsets begin -1 is negative");
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1.0]}}", 1,
           "tensor 'a': data_offsets end 1.0 is not an integer");
}

/* ---- offsets across tensors ------------------------------------------------ */

static void test_reversed_offsets(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [8, 0]}}", 8,
           "tensor 'a': data_offsets [8, 0] are reversed");
}

static void test_overlapping(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]},"
           " \"b\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [4, 12]}}", 12,
           "tensor 'b' [4, 12) overlaps tensor 'a' [0, 8)");
    /* an empty tensor may not sit inside another either */
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]},"
           " \"e\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [4, 4]}}", 8,
           "tensor 'e' [4, 4) overlaps tensor 'a' [0, 8)");
}

static void test_gap(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]},"
           " \"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [12, 16]}}", 16,
           "gap of 4 bytes between tensor 'a' (ends at 8) and tensor 'b' (begins at 12)");
}

static void test_first_not_at_zero(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [4, 8]}}", 8,
           "first tensor 'a' begins at offset 4, not 0");
}

static void test_last_end_past_data(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [0, 4]},"
           " \"b\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [4, 8]}}", 6,
           "tensor 'b' ends at offset 8, past the data length 6");
}

static void test_trailing_data_bytes(void **state)
{
    (void)state;
    reject("{\"a\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [0, 8]}}", 12,
           "4 trailing bytes after the last tensor (data length 12, tensors end at 8)");
    reject("{}", 3, "3 trailing bytes after the last tensor (data length 3, tensors end at 0)");
}

/* ---- harness --------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rt_st_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return test_rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_dtype),
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_block_dtype_rejected),
        cmocka_unit_test(test_scalar),
        cmocka_unit_test(test_zero_size_tensors),
        cmocka_unit_test(test_no_tensors),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_space_padding),
        cmocka_unit_test(test_many_tensors_found),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_not_regular),
        cmocka_unit_test(test_truncated_under_8_bytes),
        cmocka_unit_test(test_header_length_past_end),
        cmocka_unit_test(test_header_length_wraps),
        cmocka_unit_test(test_header_over_cap),
        cmocka_unit_test(test_header_length_zero),
        cmocka_unit_test(test_header_not_utf8),
        cmocka_unit_test(test_header_utf8_overlong_and_surrogate),
        cmocka_unit_test(test_header_not_json),
        cmocka_unit_test(test_header_nul),
        cmocka_unit_test(test_top_level_array),
        cmocka_unit_test(test_leading_whitespace),
        cmocka_unit_test(test_header_trailing_bytes),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_duplicate_keys_nested),
        cmocka_unit_test(test_metadata_not_object),
        cmocka_unit_test(test_metadata_bad_value),
        cmocka_unit_test(test_entry_not_object),
        cmocka_unit_test(test_unknown_dtype),
        cmocka_unit_test(test_dtype_not_string),
        cmocka_unit_test(test_extra_field),
        cmocka_unit_test(test_missing_field),
        cmocka_unit_test(test_shape_not_array),
        cmocka_unit_test(test_negative_dim),
        cmocka_unit_test(test_fractional_dim),
        cmocka_unit_test(test_rank_over_max),
        cmocka_unit_test(test_shape_product_overflow),
        cmocka_unit_test(test_byte_count_overflow),
        cmocka_unit_test(test_byte_count_mismatch),
        cmocka_unit_test(test_offsets_malformed),
        cmocka_unit_test(test_reversed_offsets),
        cmocka_unit_test(test_overlapping),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_first_not_at_zero),
        cmocka_unit_test(test_last_end_past_data),
        cmocka_unit_test(test_trailing_data_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
