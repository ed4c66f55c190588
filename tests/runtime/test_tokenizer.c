/* tests/runtime/test_tokenizer.c — runtime/tokenizer.c against references.
 *
 * Golden ids (tests/runtime/tokenizer/<name>.golden.txt, written by make_golden.py
 * with Hugging Face `tokenizers` and `sentencepiece`):
 *   - SmolLM2's vocabulary (cut down to what the texts need, ids kept) under
 *     its own pre-tokenizer and under GPT-2's, Llama 3's and Qwen2's, read
 *     from tokenizer.json and from GGUF-style metadata;
 *   - a small SentencePiece BPE model, from GGUF-style metadata (scores) and
 *     from a Llama-2-style tokenizer.json (merges);
 *   - the real SmolLM2 GGUF when MODELC_SMOLLM2_GGUF names it (or
 *     tools/fetch-smollm2.sh has cached it); skipped otherwise.
 * GGUF metadata comes through rt_tok_from_meta from a JSON object here
 * (meta_*), so no GGUF file is needed.  Hand-derived cases cover a tiny
 * SentencePiece vocabulary, a tiny tokenizer.json, pieces, EOG, chat prompts
 * and streaming UTF-8; hostile vocabularies must fail cleanly or be skipped. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/test_util.h"

#include "runtime/internal.h"
#include "runtime/tokenizer.h"

#define DATA "tests/runtime/tokenizer/"

static char dir[64];

/* ---- GGUF-style metadata from a JSON object ---- */

static json_t *meta_get(const void *ctx, const char *key) { return json_object_get((const json_t *)ctx, key); }

static bool meta_str(const void *ctx, const char *key, const char **s, size_t *len)
{
    json_t *v = meta_get(ctx, key);
    if (!json_is_string(v))
        return false;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return true;
}

static bool meta_int(const void *ctx, const char *key, int64_t *out)
{
    json_t *v = meta_get(ctx, key);
    if (json_is_integer(v))
        *out = json_integer_value(v);
    else if (json_is_boolean(v))
        *out = json_is_true(v);
    else
        return false;
    return true;
}

static int64_t meta_array(const void *ctx, const char *key, int *et)
{
    json_t *v = meta_get(ctx, key);
    if (!json_is_array(v))
        return -1;
    json_t *e = json_array_get(v, 0);
    *et = json_is_string(e) ? GGUF_STRING : json_is_integer(e) ? GGUF_I32 : json_is_array(e) ? GGUF_ARRAY : GGUF_F32;
    return (int64_t)json_array_size(v);
}

static const char *meta_array_str(const void *ctx, const char *key, int64_t i, size_t *len)
{
    json_t *e = json_array_get(meta_get(ctx, key), (size_t)i);
    if (!json_is_string(e))
        return NULL;
    *len = json_string_length(e);
    return json_string_value(e);
}

static bool meta_array_num(const void *ctx, const char *key, int64_t i, double *v)
{
    json_t *e = json_array_get(meta_get(ctx, key), (size_t)i);
    if (!json_is_number(e))
        return false;
    *v = json_number_value(e);
    return true;
}

static RtTokenizer *from_meta(json_t *m, RtErr *err)
{
    RtTokMeta tm = {m, meta_str, meta_int, meta_array, meta_array_str, meta_array_num};
    return rt_tok_from_meta(&tm, "model.gguf", err);
}

static RtTokenizer *from_meta_text(const char *json)
{
    json_error_t je;
    json_t *m = json_loads(json, 0, &je);
    if (!m)
        fail_msg("bad test JSON: %s", je.text);
    RtErr err = {.msg = ""};
    RtTokenizer *t = from_meta(m, &err);
    json_decref(m);
    if (!t)
        fail_msg("rt_tok_from_meta: %s", err.msg);
    return t;
}

static void expect_meta_error(const char *json, const char *msg)
{
    json_error_t je;
    json_t *m = json_loads(json, 0, &je);
    if (!m)
        fail_msg("bad test JSON: %s", je.text);
    RtErr err = {.msg = ""};
    RtTokenizer *t = from_meta(m, &err);
    json_decref(m);
    assert_null(t);
    assert_string_equal(err.msg, msg);
}

/* SmolLM2's cut-down tokenizer.json as GGUF keys: a dense token array (gaps
 * as unused tokens), token types, "a b" merges. */
static json_t *smollm2_meta(const char *pre)
{
    json_error_t je;
    json_t *doc = json_load_file(DATA "smollm2/tokenizer.json", 0, &je);
    json_t *cfg = json_load_file(DATA "smollm2/tokenizer_config.json", 0, &je);
    assert_non_null(doc);
    assert_non_null(cfg);
    json_t *vocab = json_object_get(json_object_get(doc, "model"), "vocab");
    int64_t n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) n = json_integer_value(val) + 1 > n ? json_integer_value(val) + 1 : n;
    json_t *toks = json_array(), *types = json_array();
    for (int64_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "<unused%lld>", (long long)i);
        json_array_append_new(toks, json_string(name));
        json_array_append_new(types, json_integer(5));
    }
    json_object_foreach(vocab, key, val) {
        json_array_set_new(toks, (size_t)json_integer_value(val), json_string(key));
        json_array_set_new(types, (size_t)json_integer_value(val), json_integer(json_integer_value(val) < 17 ? 3 : 1));
    }
    json_t *m = json_object();
    json_object_set_new(m, "tokenizer.ggml.model", json_string("gpt2"));
    json_object_set_new(m, "tokenizer.ggml.pre", json_string(pre));
    json_object_set_new(m, "tokenizer.ggml.tokens", toks);
    json_object_set_new(m, "tokenizer.ggml.token_type", types);
    json_object_set(m, "tokenizer.ggml.merges", json_object_get(json_object_get(doc, "model"), "merges"));
    json_object_set_new(m, "tokenizer.ggml.bos_token_id", json_integer(1));
    json_object_set_new(m, "tokenizer.ggml.eos_token_id", json_integer(2));
    json_object_set_new(m, "tokenizer.ggml.unknown_token_id", json_integer(0));
    json_object_set_new(m, "tokenizer.ggml.add_bos_token", json_false());
    json_object_set(m, "tokenizer.chat_template", json_object_get(cfg, "chat_template"));
    json_decref(doc);
    json_decref(cfg);
    return m;
}

/* ---- golden files ---- */

static char *write_file(const char *name, const char *text)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* Encode every case of a golden file and compare; byte-level cases without
 * special tokens must also decode back to their text. */
static void check_golden(const RtTokenizer *t, const char *golden, bool add_bos, bool roundtrip)
{
    FILE *f = fopen(golden, "r");
    if (!f)
        fail_msg("cannot open %s", golden);
    char line[8192];
    json_t *text = NULL;
    bool special = false;
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '>') {
            special = line[1] == '!';
            json_error_t je;
            text = json_loads(line + (special ? 3 : 2), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            assert_true(json_is_string(text));
        } else if (line[0] == '=') {
            assert_non_null(text);
            int64_t want[4096], nwant = 0;
            for (char *p = line + 1, *end; nwant < 4096; p = end) {
                long long v = strtoll(p, &end, 10);
                if (end == p)
                    break;
                want[nwant++] = v;
            }
            int64_t n = -1;
            RtErr err = {.msg = ""};
            const char *s = json_string_value(text);
            size_t len = json_string_length(text);
            int32_t *ids = rt_tok_encode(t, s, len, add_bos, special, &n, &err);
            if (!ids)
                fail_msg("%s: %s: %s", golden, s, err.msg);
            bool same = n == nwant;
            for (int64_t i = 0; same && i < n; i++)
                same = ids[i] == want[i];
            if (!same) {
                fprintf(stderr, "%s: text %s\n  want", golden, line);
                for (int64_t i = 0; i < nwant; i++)
                    fprintf(stderr, " %lld", (long long)want[i]);
                fprintf(stderr, "\n  got ");
                for (int64_t i = 0; i < n; i++)
                    fprintf(stderr, " %d", ids[i]);
                fprintf(stderr, "\n");
                fail_msg("%s: ids differ for %s", golden, s);
            }
            if (roundtrip && !special) {
                char *back = malloc(4 * len + 16);
                size_t nb = 0;
                for (int64_t i = 0; i < n; i++) {
                    size_t pl;
                    const char *piece = rt_tok_piece(t, ids[i], &pl);
                    assert_non_null(piece);
                    memcpy(back + nb, piece, pl);
                    nb += pl;
                }
                assert_int_equal(nb, len);
                assert_memory_equal(back, s, len);
                free(back);
            }
            free(ids);
            json_decref(text);
            text = NULL;
            cases++;
        }
    }
    fclose(f);
    assert_true(cases > 10);
}

static RtTokenizer *hf_ok(const char *path)
{
    RtErr err = {.msg = ""};
    RtTokenizer *t = rt_tok_from_hf(path, &err);
    if (!t)
        fail_msg("rt_tok_from_hf: %s", err.msg);
    return t;
}

static void test_smollm2_hf(void **state)
{
    (void)state;
    RtTokenizer *t = hf_ok(DATA "smollm2/tokenizer.json");
    check_golden(t, DATA "smollm.golden.txt", true, true);
    /* tokenizer_config.json: BOS <|im_start|> (but not added), EOS <|im_end|>, the chat template */
    assert_int_equal(rt_tok_bos(t), 1);
    assert_int_equal(rt_tok_eos(t), 2);
    assert_false(rt_tok_adds_bos(t));
    assert_int_equal(rt_tok_chat_format(t), RT_CHAT_CHATML);
    assert_true(rt_tok_is_eog(t, 2));
    assert_true(rt_tok_is_eog(t, 0));   /* <|endoftext|> */
    assert_false(rt_tok_is_eog(t, 1));
    rt_tok_free(t);
}

/* The other pre-tokenizers, over the same vocabulary: tokenizer.json with its
 * pre_tokenizer swapped. */
static void check_hf_pre(const char *pre_json, bool ignore_merges, const char *golden)
{
    json_error_t je;
    json_t *doc = json_load_file(DATA "smollm2/tokenizer.json", 0, &je);
    json_t *pre = json_loads(pre_json, 0, &je);
    assert_non_null(doc);
    assert_non_null(pre);
    json_object_set_new(doc, "pre_tokenizer", pre);
    json_object_set_new(json_object_get(doc, "model"), "ignore_merges", json_boolean(ignore_merges));
    char p[512];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    assert_int_equal(json_dump_file(doc, p, 0), 0);
    json_decref(doc);
    RtTokenizer *t = hf_ok(p);
    check_golden(t, golden, false, true);
    rt_tok_free(t);
}

#define LLAMA3_RE                                                                                                       \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|" \
    "\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"
#define QWEN2_RE                                                                                                        \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|" \
    "\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"

static void test_pretokenizers_hf(void **state)
{
    (void)state;
    check_hf_pre("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}", false,
                 DATA "gpt2.golden.txt");
    check_hf_pre("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"" LLAMA3_RE
                 "\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": "
                 "false, \"use_regex\": false}]}",
                 true, DATA "llama3.golden.txt");
    check_hf_pre("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"" QWEN2_RE
                 "\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": "
                 "false, \"use_regex\": false}]}",
                 false, DATA "qwen2.golden.txt");
}

static void test_smollm2_meta(void **state)
{
    (void)state;
    static const char *const pres[][2] = {{"smollm", DATA "smollm.golden.txt"}, {"gpt-2", DATA "gpt2.golden.txt"},
                                          {"llama-bpe", DATA "llama3.golden.txt"}, {"qwen2", DATA "qwen2.golden.txt"}};
    for (size_t i = 0; i < 4; i++) {
        json_t *m = smollm2_meta(pres[i][0]);
        RtErr err = {.msg = ""};
        RtTokenizer *t = from_meta(m, &err);
        json_decref(m);
        if (!t)
            fail_msg("%s", err.msg);
        check_golden(t, pres[i][1], true, true);
        if (i == 0) {
            assert_int_equal(rt_tok_bos(t), 1);
            assert_int_equal(rt_tok_eos(t), 2);
            assert_false(rt_tok_adds_bos(t));
            assert_true(rt_tok_is_eog(t, 2));
            assert_true(rt_tok_is_eog(t, 0));
            assert_false(rt_tok_is_eog(t, 17));
        }
        rt_tok_free(t);
    }
}

/* The real GGUF, when it is at hand. */
static void test_smollm2_gguf(void **state)
{
    (void)state;
    const char *path = getenv("MODELC_SMOLLM2_GGUF");
    char cached[1024];
    if (!path || !*path) {
        const char *cache = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (cache && *cache)
            snprintf(cached, sizeof cached, "%s/modelc/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
        else
            snprintf(cached, sizeof cached, "%s/.cache/modelc/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                     home ? home : "");
        path = cached;
    }
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "  (no SmolLM2 GGUF: set MODELC_SMOLLM2_GGUF or run tools/fetch-smollm2.sh; skipped)\n");
        skip();
    }
    RtErr err = {.msg = ""};
    RtGguf *g = NULL;
    if (!rt_gguf_open(path, &g, &err))
        fail_msg("%s", err.msg);
    RtTokenizer *t = rt_tok_from_gguf(g, path, &err);
    rt_gguf_close(g);   /* the tokenizer keeps copies of what it needs */
    if (!t)
        fail_msg("%s", err.msg);
    assert_int_equal(rt_tok_vocab(t), 49152);
    check_golden(t, DATA "smollm.golden.txt", true, true);
    assert_int_equal(rt_tok_find(t, "<|im_start|>", 12), 1);
    assert_int_equal(rt_tok_find(t, "<|im_end|>", 10), 2);
    assert_int_equal(rt_tok_bos(t), 1);
    assert_int_equal(rt_tok_eos(t), 2);
    assert_false(rt_tok_adds_bos(t));
    assert_true(rt_tok_is_eog(t, 2));
    assert_int_equal(rt_tok_chat_format(t), RT_CHAT_CHATML);
    char *prompt = rt_tok_chat_prompt(t, NULL, "hi", &err);
    assert_string_equal(prompt, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                                "Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    free(prompt);
    rt_tok_free(t);
}

static void test_spm_golden(void **state)
{
    (void)state;
    json_error_t je;
    json_t *m = json_load_file(DATA "spm/meta.json", 0, &je);
    assert_non_null(m);
    RtErr err = {.msg = ""};
    RtTokenizer *t = from_meta(m, &err);
    json_decref(m);
    if (!t)
        fail_msg("%s", err.msg);
    assert_true(rt_tok_adds_bos(t));
    check_golden(t, DATA "spm.golden.txt", true, false);
    rt_tok_free(t);

    t = hf_ok(DATA "spm/tokenizer.json");
    assert_true(rt_tok_adds_bos(t));
    assert_int_equal(rt_tok_bos(t), 1);
    assert_int_equal(rt_tok_eos(t), 2);   /* no tokenizer_config.json: found by name (</s>) */
    check_golden(t, DATA "spm_hf.golden.txt", true, false);
    rt_tok_free(t);
}

/* ---- hand-derived cases ---- */

/* SentencePiece by score:  ▁abc -> (bc -0.5 first) ▁ a bc -> (▁a -2) ▁a bc;
 * ▁ab -> (ab -1) ▁ ab -> (▁ab -0.1) ▁ab; é has no piece -> <0xC3><0xA9>;
 * z has no piece and no byte tokens -> unk. */
static const char tiny_spm[] =
    "{\"tokenizer.ggml.model\": \"llama\","
    " \"tokenizer.ggml.tokens\": [\"<unk>\", \"<s>\", \"</s>\", \"\xe2\x96\x81\", \"a\", \"b\", \"c\", \"ab\", \"bc\","
    "   \"\xe2\x96\x81" "a\", \"\xe2\x96\x81" "ab\", \"<0xC3>\", \"<0xA9>\", \"<ctl>\"],"
    " \"tokenizer.ggml.scores\": [0, 0, 0, -10, -5, -5, -5, -1, -0.5, -2, -0.1, 0, 0, 0],"
    " \"tokenizer.ggml.token_type\": [2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6, 3]}";

static int32_t *enc(const RtTokenizer *t, const char *s, bool bos, bool special, int64_t *n)
{
    RtErr err = {.msg = ""};
    int32_t *ids = rt_tok_encode(t, s, strlen(s), bos, special, n, &err);
    if (!ids)
        fail_msg("rt_tok_encode: %s", err.msg);
    return ids;
}

static void expect_ids(const RtTokenizer *t, const char *s, bool bos, bool special, const int32_t *want, int64_t nwant)
{
    int64_t n;
    int32_t *ids = enc(t, s, bos, special, &n);
    if (n != nwant || (n > 0 && memcmp(ids, want, (size_t)n * sizeof *ids) != 0)) {
        fprintf(stderr, "got");
        for (int64_t i = 0; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
        fail_msg("ids differ for \"%s\"", s);
    }
    free(ids);
}

#define EXPECT(t, s, bos, special, ...)                                                                                \
    do {                                                                                                               \
        static const int32_t want_[] = {__VA_ARGS__};                                                                  \
        expect_ids(t, s, bos, special, want_, (int64_t)(sizeof want_ / sizeof want_[0]));                              \
    } while (0)

static void expect_piece(const RtTokenizer *t, int32_t id, const char *want, size_t wlen)
{
    size_t len = 99;
    const char *p = rt_tok_piece(t, id, &len);
    assert_non_null(p);
    assert_int_equal(len, wlen);
    assert_memory_equal(p, want, wlen);
}

static void test_spm_tiny(void **state)
{
    (void)state;
    RtTokenizer *t = from_meta_text(tiny_spm);
    assert_int_equal(rt_tok_vocab(t), 14);
    assert_int_equal(rt_tok_bos(t), 1);   /* llama defaults: bos 1, eos 2, unk 0, add_bos */
    assert_int_equal(rt_tok_eos(t), 2);
    assert_true(rt_tok_adds_bos(t));
    EXPECT(t, "abc", true, false, 1, 9, 8);
    EXPECT(t, "abc", false, false, 9, 8);
    EXPECT(t, "ab", false, false, 10);
    EXPECT(t, "ab ab", false, false, 10, 10);
    EXPECT(t, "\xc3\xa9", false, false, 3, 11, 12);
    EXPECT(t, "z", false, false, 3, 0);
    EXPECT(t, "", true, false, 1);
    /* control tokens as text, or as themselves with parse_special; a "▁" after them */
    EXPECT(t, "<ctl>ab", false, true, 13, 10);
    EXPECT(t, "</s>", false, false, 3, 0, 0, 0, 0);
    /* pieces: "▁" as a space, bytes as bytes, control as nothing */
    expect_piece(t, 10, " ab", 3);
    expect_piece(t, 3, " ", 1);
    expect_piece(t, 11, "\xc3", 1);
    expect_piece(t, 1, "", 0);
    expect_piece(t, 0, "<unk>", 5);
    size_t len = 7;
    assert_null(rt_tok_piece(t, 14, &len));
    assert_int_equal(len, 0);
    assert_null(rt_tok_piece(t, -1, &len));
    assert_true(rt_tok_is_eog(t, 2));
    assert_false(rt_tok_is_eog(t, 1));
    assert_int_equal(rt_tok_chat_format(t), RT_CHAT_NONE);
    RtErr err = {.msg = ""};
    assert_null(rt_tok_chat_prompt(t, NULL, "hi", &err));
    assert_string_equal(err.msg, "tokenizer: the model has no chat template this runtime knows (ChatML or Llama 3)");
    rt_tok_free(t);
}

/* A byte-level tokenizer.json written here: merges a+b (rank 0), ab+c, Ġ+a,
 * given in both spellings, plus broken merges that must be skipped.  The
 * vocabulary has no 'z': a byte with no token is dropped. */
static const char tiny_hf[] =
    "{\"version\": \"1.0\", \"added_tokens\": ["
    "  {\"id\": 9, \"content\": \"<|end|>\", \"special\": true},"
    "  {\"id\": 10, \"content\": \"<|im_start|>\", \"special\": true},"
    "  {\"id\": 11, \"content\": \"<|im_end|>\", \"special\": true},"
    "  {\"id\": 12, \"content\": \"[U]\", \"special\": false}],"
    " \"normalizer\": null,"
    " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true},"
    " \"post_processor\": {\"type\": \"ByteLevel\"},"
    " \"decoder\": {\"type\": \"ByteLevel\"},"
    " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"\xc4\xa0\": 3, \"ab\": 4, \"abc\": 5,"
    "   \"\xc4\xa0" "a\": 6, \"\xc3\x83\": 7, \"\xc2\xa9\": 8},"
    "   \"merges\": [\"a b\", [\"ab\", \"c\"], \"\xc4\xa0 a\", \"a zz\", \"nospace\", \"\", [\"a\"], [1, 2], \"a  b\", \"b c\"]}}";

static void test_hf_tiny(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s", write_file("tokenizer.json", tiny_hf));
    RtTokenizer *t = hf_ok(p);
    assert_int_equal(rt_tok_vocab(t), 13);
    assert_int_equal(rt_tok_bos(t), -1);
    assert_false(rt_tok_adds_bos(t));
    assert_int_equal(rt_tok_eos(t), -1);
    EXPECT(t, "abc", false, false, 5);
    EXPECT(t, "abc abc", false, false, 5, 3, 5);   /* " abc": Ġ a b c -> Ġ ab c -> Ġ abc (no Ġab) */
    EXPECT(t, "a a", false, false, 0, 6);
    EXPECT(t, "azb", false, false, 4);            /* z dropped, then a b merge (as tokenizers does) */
    EXPECT(t, "\xc3\xa9", false, false, 7, 8);     /* é = bytes C3 A9 -> Ã © */
    EXPECT(t, "a<|end|>b", false, true, 0, 9, 1);
    EXPECT(t, "a[U]b", false, false, 0, 12, 1);    /* user-defined: matched without parse_special */
    EXPECT(t, "<|im_start|><|im_end|>", true, true, 10, 11);
    assert_true(rt_tok_is_eog(t, 11));
    assert_true(rt_tok_is_eog(t, 9));
    assert_false(rt_tok_is_eog(t, 10));
    expect_piece(t, 3, " ", 1);
    expect_piece(t, 7, "\xc3", 1);
    expect_piece(t, 9, "", 0);
    expect_piece(t, 12, "[U]", 3);
    assert_int_equal(rt_tok_find(t, "abc", 3), 5);
    assert_int_equal(rt_tok_find(t, "abcd", 4), -1);
    assert_int_equal(rt_tok_chat_format(t), RT_CHAT_NONE);
    rt_tok_free(t);

    /* tokenizer_config.json beside it: bos/eos by text, add_bos, a Llama 3 template */
    write_file("tokenizer_config.json",
               "{\"bos_token\": {\"content\": \"<|im_start|>\"}, \"eos_token\": \"<|end|>\", \"add_bos_token\": true,"
               " \"chat_template\": \"{{ bos_token }}{% for m in messages %}<|start_header_id|>...{% endfor %}\"}");
    t = hf_ok(p);
    assert_int_equal(rt_tok_bos(t), 10);
    assert_int_equal(rt_tok_eos(t), 9);
    assert_true(rt_tok_adds_bos(t));
    EXPECT(t, "abc", true, false, 10, 5);
    EXPECT(t, "abc", false, false, 5);
    assert_int_equal(rt_tok_chat_format(t), RT_CHAT_LLAMA3);
    rt_tok_free(t);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    unlink(cfg);
}

static void test_chat(void **state)
{
    (void)state;
    RtErr err = {.msg = ""};
    RtTokenizer *t = hf_ok(DATA "smollm2/tokenizer.json");
    char *s = rt_tok_chat_prompt(t, NULL, "What is 2+2?", &err);
    assert_string_equal(s, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                           "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    s = rt_tok_chat_prompt(t, "Be brief.", "hi", &err);
    assert_string_equal(s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                           "<|im_start|>assistant\n");
    /* the prompt encodes with its special tokens as single ids */
    int64_t n;
    int32_t *ids = enc(t, s, true, true, &n);
    int starts = 0, ends = 0;
    for (int64_t i = 0; i < n; i++) {
        starts += ids[i] == 1;
        ends += ids[i] == 2;
    }
    assert_int_equal(ids[0], 1);
    assert_int_equal(starts, 3);
    assert_int_equal(ends, 2);
    assert_int_equal(ids[n - 1], 198);   /* "\n" */
    free(ids);
    free(s);
    rt_tok_free(t);

    /* Llama 3: <|begin_of_text|> in the text only when encoding will not add it */
    const char *tmpl_ll3 = "{{- bos_token }}{%- for m in messages %}{{- '<|start_header_id|>' + m['role'] + "
                           "'<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{%- endfor %}";
    for (int add_bos = 0; add_bos < 2; add_bos++) {
        json_t *m = json_loads(tiny_spm, 0, NULL);
        json_object_set_new(m, "tokenizer.chat_template", json_string(tmpl_ll3));
        json_object_set_new(m, "tokenizer.ggml.add_bos_token", json_boolean(add_bos));
        t = from_meta(m, &err);
        json_decref(m);
        assert_non_null(t);
        assert_int_equal(rt_tok_chat_format(t), RT_CHAT_LLAMA3);
        s = rt_tok_chat_prompt(t, add_bos ? "sys" : NULL, "hi", &err);
        assert_string_equal(s, add_bos ? "<|start_header_id|>system<|end_header_id|>\n\nsys<|eot_id|>"
                                         "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                                         "<|start_header_id|>assistant<|end_header_id|>\n\n"
                                       : "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                                         "<|start_header_id|>assistant<|end_header_id|>\n\n");
        free(s);
        rt_tok_free(t);
    }

    /* ChatML whose system turn is only the conversation's: no default */
    json_t *m = json_loads(tiny_spm, 0, NULL);
    json_object_set_new(m, "tokenizer.chat_template",
                        json_string("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + "
                                    "'<|im_end|>\\n'}}{% endfor %}{{ '<|im_start|>system\\n' + x + '<|im_end|>' }}"));
    t = from_meta(m, &err);
    json_decref(m);
    s = rt_tok_chat_prompt(t, NULL, "hi", &err);
    assert_string_equal(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    free(s);
    rt_tok_free(t);
}

static void test_utf8_stream(void **state)
{
    (void)state;
    RtUtf8Stream st = {{0}, 0};
    char out[64];
    /* "é" split over two pieces, then "日" over three */
    assert_int_equal(rt_utf8_stream(&st, "a\xc3", 2, out, sizeof out), 1);
    assert_memory_equal(out, "a", 1);
    assert_int_equal(rt_utf8_stream(&st, "\xa9", 1, out, sizeof out), 2);
    assert_memory_equal(out, "\xc3\xa9", 2);
    assert_int_equal(rt_utf8_stream(&st, "\xe6", 1, out, sizeof out), 0);
    assert_int_equal(rt_utf8_stream(&st, "\x97", 1, out, sizeof out), 0);
    assert_int_equal(rt_utf8_stream(&st, "\xa5!", 2, out, sizeof out), 4);
    assert_memory_equal(out, "\xe6\x97\xa5!", 4);
    /* invalid bytes: a stray continuation, a lead cut short, an overlong, a surrogate */
    size_t n = rt_utf8_stream(&st, "\x80x\xc3y\xc0\xaf\xed\xa0\x80", 9, out, sizeof out);
    assert_int_equal(n, 3 + 1 + 3 + 1 + 3 + 3 + 3 + 3 + 3);
    assert_memory_equal(out, "\xef\xbf\xbdx\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", n);
    /* a 4-byte emoji byte by byte, then an unfinished one flushed as U+FFFD */
    const char emoji[] = "\xf0\x9f\x99\x82";
    for (int i = 0; i < 3; i++)
        assert_int_equal(rt_utf8_stream(&st, emoji + i, 1, out, sizeof out), 0);
    assert_int_equal(rt_utf8_stream(&st, emoji + 3, 1, out, sizeof out), 4);
    assert_memory_equal(out, emoji, 4);
    assert_int_equal(rt_utf8_stream(&st, "\xf0\x9f", 2, out, sizeof out), 0);
    assert_int_equal(rt_utf8_flush(&st, out, sizeof out), 3);
    assert_memory_equal(out, "\xef\xbf\xbd", 3);
    assert_int_equal(rt_utf8_flush(&st, out, sizeof out), 0);
    /* a pending lead followed by a non-continuation */
    assert_int_equal(rt_utf8_stream(&st, "\xe6", 1, out, sizeof out), 0);
    assert_int_equal(rt_utf8_stream(&st, "ab", 2, out, sizeof out), 5);
    assert_memory_equal(out, "\xef\xbf\xbd" "ab", 5);
    /* too small an out: never overrun */
    char small[4];
    assert_int_equal(rt_utf8_stream(&st, "\x80\x80", 2, small, sizeof small), 3);
}

static void test_hostile_meta(void **state)
{
    (void)state;
    expect_meta_error("{}", "model.gguf: no tokenizer (tokenizer.ggml.model is missing)");
    expect_meta_error("{\"tokenizer.ggml.model\": \"bert\"}",
                      "model.gguf: tokenizer.ggml.model 'bert' is not supported (gpt2 or llama)");
    expect_meta_error("{\"tokenizer.ggml.model\": \"gpt2\", \"tokenizer.ggml.pre\": \"mystery\"}",
                      "model.gguf: tokenizer.ggml.pre 'mystery' is not supported");
    expect_meta_error("{\"tokenizer.ggml.model\": \"llama\"}",
                      "model.gguf: tokenizer.ggml.tokens is missing or not an array of strings");
    expect_meta_error("{\"tokenizer.ggml.model\": \"llama\", \"tokenizer.ggml.tokens\": [1, 2]}",
                      "model.gguf: tokenizer.ggml.tokens is missing or not an array of strings");
    expect_meta_error("{\"tokenizer.ggml.model\": \"llama\", \"tokenizer.ggml.tokens\": []}",
                      "model.gguf: tokenizer.ggml.tokens is missing or not an array of strings");
    expect_meta_error("{\"tokenizer.ggml.model\": \"llama\", \"tokenizer.ggml.tokens\": [\"a\", \"b\"],"
                      " \"tokenizer.ggml.token_type\": [1]}",
                      "model.gguf: tokenizer.ggml.token_type has 1 entries for 2 tokens");
    expect_meta_error("{\"tokenizer.ggml.model\": \"llama\", \"tokenizer.ggml.tokens\": [\"a\", \"b\"],"
                      " \"tokenizer.ggml.scores\": [\"x\", \"y\"]}",
                      "model.gguf: tokenizer.ggml.scores has 2 entries for 2 tokens");
    expect_meta_error("{\"tokenizer.ggml.model\": \"gpt2\", \"tokenizer.ggml.tokens\": [\"a\"]}",
                      "model.gguf: tokenizer.ggml.merges is missing or not an array of strings");

    /* Survivable: empty and invalid-UTF-8 and duplicate tokens, a token
     * array with holes (not strings), types and scores out of range or not
     * numbers, merges naming nothing, special ids out of range. */
    RtTokenizer *t = from_meta_text(
        "{\"tokenizer.ggml.model\": \"gpt2\", \"tokenizer.ggml.tokens\": [\"\", \"a\", \"b\", \"ab\", \"a\", 7, "
        "\"\\u00ff\\u00fe\", \"\xc4\xa0\"],"
        " \"tokenizer.ggml.token_type\": [3, 1, 1, 99, -4, \"x\", 1, 1],"
        " \"tokenizer.ggml.merges\": [\"a b\", \"ab\", \"\", \" \", \"a \", \"zz a\", \"a b\", \"b a\", 5],"
        " \"tokenizer.ggml.bos_token_id\": 1000, \"tokenizer.ggml.eos_token_id\": -3,"
        " \"tokenizer.ggml.add_bos_token\": true}");
    assert_int_equal(rt_tok_vocab(t), 8);
    assert_int_equal(rt_tok_bos(t), -1);
    assert_int_equal(rt_tok_eos(t), -1);
    EXPECT(t, "ab", true, true, 3);
    EXPECT(t, "ba a", true, true, 2, 1, 7, 1);
    expect_ids(t, "x\xff", true, true, NULL, 0);   /* bytes with no token: dropped */
    size_t len;
    rt_tok_piece(t, 6, &len);   /* "ÿþ" are the bytes FF FE */
    assert_int_equal(len, 2);
    expect_piece(t, 6, "\xff\xfe", 2);
    expect_piece(t, 5, "", 0);
    rt_tok_free(t);

    /* tokens that are not UTF-8, merges over them, and hostile text */
    t = from_meta_text("{\"tokenizer.ggml.model\": \"llama\", \"tokenizer.ggml.tokens\": [\"<unk>\", \"\\u00e9\", "
                       "\"\\u2581\", \"x\", \"\\u2581x\"], \"tokenizer.ggml.scores\": [0, 0, 0, 0, 1]}");
    int64_t n;
    RtErr err = {.msg = ""};
    int32_t *ids = rt_tok_encode(t, "\xff\xc3 x\0x", 6, false, true, &n, &err);
    assert_non_null(ids);
    free(ids);
    ids = rt_tok_encode(t, NULL, 0, true, true, &n, &err);
    assert_non_null(ids);
    assert_int_equal(n, 1);
    free(ids);
    assert_null(rt_tok_encode(t, NULL, 3, true, true, &n, &err));
    assert_string_equal(err.msg, "tokenizer: no text");
    EXPECT(t, "x x", false, false, 4, 4);
    rt_tok_free(t);
}

static void expect_hf_error(const char *json, const char *msg)
{
    const char *p = write_file("bad.json", json);
    RtErr err = {.msg = ""};
    RtTokenizer *t = rt_tok_from_hf(p, &err);
    assert_null(t);
    char want[1024];
    snprintf(want, sizeof want, msg, p);
    assert_string_equal(err.msg, want);
}

static void test_hostile_hf(void **state)
{
    (void)state;
    RtErr err = {.msg = ""};
    assert_null(rt_tok_from_hf("/nonexistent/tokenizer.json", &err));
    assert_string_equal(err.msg, "/nonexistent/tokenizer.json: cannot open: No such file or directory");
    expect_hf_error("[1, 2]", "%s: top level is not an object");
    expect_hf_error("{\"model\": {\"type\": \"WordPiece\"}}", "%s: model.type must be BPE");
    expect_hf_error("{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}",
                    "%s: model.vocab must be an object and model.merges an array");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": -1}, \"merges\": []}}",
                    "%s: model.vocab[\"a\"]: id must be an integer in [0, 16777216)");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 99999999}, \"merges\": []}}",
                    "%s: model.vocab[\"a\"]: id must be an integer in [0, 16777216)");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": \"0\"}, \"merges\": []}}",
                    "%s: model.vocab[\"a\"]: id must be an integer in [0, 16777216)");
    expect_hf_error("{\"model\": {\"vocab\": {}, \"merges\": []}}", "%s: tokenizer has 0 tokens (must be 1 to 16777216)");
    /* found by fuzz_tokenizer: one id near the limit asked for 2^24 slots */
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 16777215}, \"merges\": []}}",
                    "%s: token id 16777215 is far past the 1 tokens listed (more than 65536 unused ids)");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []},"
                    " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
                    "%s: model.vocab: id 0 is given twice");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"},"
                    " \"added_tokens\": [{\"id\": 0, \"content\": \"<s>\"}]}",
                    "%s: added_tokens[0]: id 0 is already \"a\"");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": [{\"id\": \"x\"}]}",
                    "%s: added_tokens[0]: needs an integer id in [0, 16777216) and a content string");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": {}}",
                    "%s: added_tokens must be an array");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
                    "%s: neither a byte-level nor a SentencePiece-style (\xe2\x96\x81) tokenizer");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Sequence\","
                    " \"pretokenizers\": [{\"type\": \"Whitespace\"}, {\"type\": \"ByteLevel\"}]}}",
                    "%s: pre_tokenizer 'Whitespace' is not supported");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Sequence\","
                    " \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}, \"behavior\": "
                    "\"Isolated\"}, {\"type\": \"ByteLevel\", \"use_regex\": false}]}}",
                    "%s: pre_tokenizer: this Split pattern is not supported");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []},"
                    " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": false}}",
                    "%s: pre_tokenizer: ByteLevel without its regex and no Split before it");
    expect_hf_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []", "%s:1:42: '}' expected near end of file");
    /* gaps in the ids are unused tokens */
    const char *p = write_file("gaps.json", "{\"model\": {\"vocab\": {\"a\": 0, \"b\": 5}, \"merges\": [\"a b\"]},"
                                            " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}");
    RtTokenizer *t = hf_ok(p);
    assert_int_equal(rt_tok_vocab(t), 6);
    expect_piece(t, 3, "", 0);
    EXPECT(t, "ab", false, false, 0, 5);
    rt_tok_free(t);
}

/* Long inputs take milliseconds: one 100 KB word (the merge heap's worst
 * case) and 100 KB of ordinary text. */
static void test_speed(void **state)
{
    (void)state;
    RtTokenizer *t = hf_ok(DATA "smollm2/tokenizer.json");
    size_t len = 100000;
    char *text = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        text[i] = "ab"[i % 7 == 0];
    static const char words[] = "The quick brown fox jumps over the lazy dog, 12345 times! ";
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            for (size_t i = 0; i < len; i++)
                text[i] = words[i % (sizeof words - 1)];
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int64_t n;
        RtErr err = {.msg = ""};
        int32_t *ids = rt_tok_encode(t, text, len, false, true, &n, &err);
        clock_gettime(CLOCK_MONOTONIC, &b);
        assert_non_null(ids);
        assert_true(n > 0);
        double s = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        assert_true(s < 5.0);   /* ~10 ms natively; generous for valgrind and sanitizers */
        free(ids);
    }
    free(text);
    rt_tok_free(t);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/modelc_tok_XXXXXX");
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
        cmocka_unit_test(test_smollm2_hf),
        cmocka_unit_test(test_pretokenizers_hf),
        cmocka_unit_test(test_smollm2_meta),
        cmocka_unit_test(test_smollm2_gguf),
        cmocka_unit_test(test_spm_golden),
        cmocka_unit_test(test_spm_tiny),
        cmocka_unit_test(test_hf_tiny),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_utf8_stream),
        cmocka_unit_test(test_hostile_meta),
        cmocka_unit_test(test_hostile_hf),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
