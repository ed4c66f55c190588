/* tests/fuzz/fuzz_gguf.c — libFuzzer target: GGUF files through rt_ckpt_open.
 *
 * The input is written to <tmpfs dir>/model.gguf (the .gguf name sends it to
 * the GGUF reader whatever its first bytes) and opened twice, keeping the
 * ggml blocks and dequantizing them.  What opens is walked: every tensor
 * checked against the runtime's promises (fuzz_common.h) and every byte of
 * its data read, looked up again by name, the config read, the metadata
 * read through every rt_gguf_* accessor on the keys the runtime knows (and
 * those of tests/fuzz/corpus/gguf/values.gguf), arrays element by element,
 * and the tokenizer built from the metadata and put through encode/decode
 * (once per input). */
#include "tests/fuzz/fuzz_common.h"

static const char *const keys[] = {
    "general.alignment", "general.architecture", "general.name", "llama.vocab_size", "llama.context_length",
    "llama.embedding_length", "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count",
    "llama.attention.head_count_kv", "llama.attention.key_length", "llama.attention.value_length",
    "llama.rope.dimension_count", "llama.expert_count", "llama.rope.freq_base",
    "llama.attention.layer_norm_rms_epsilon", "llama.rope.scaling.type", "llama.rope.scaling.factor",
    "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.chat_template", "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix", "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
    "t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.u64", "t.u64big", "t.i64", "t.f32", "t.f64", "t.bool",
    "t.str", "t.nul", "t.empty", "t.strs", "t.f32s", "t.i32s", "t.u8s", "t.bools", "t.none", "t.nested", "", "t",
};

static const char *const config_keys[] = {
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "tie_word_embeddings",
    "max_position_embeddings", "bos_token_id", "eos_token_id", "architectures", "model_type",
};

static void metadata(const RtGguf *g)
{
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *key = keys[k];
        const char *s = NULL;
        size_t len = 0;
        if (rt_gguf_str(g, key, &s, &len)) {
            FUZZ_CHECK(s && s[len] == '\0');
            fz_touch(s, len + 1);
        }
        int64_t i;
        double f;
        (void)rt_gguf_int(g, key, &i);
        (void)rt_gguf_float(g, key, &f);
        int et = -1;
        int64_t n = rt_gguf_array(g, key, &et);
        FUZZ_CHECK(n >= -1);
        if (n < 0)
            continue;
        FUZZ_CHECK(et >= 0 && et < GGUF_TYPE_COUNT);
        for (int64_t j = 0; j < n; j++) {
            s = rt_gguf_array_str(g, key, j, &len);
            FUZZ_CHECK((s != NULL) == (et == GGUF_STRING));
            if (s) {
                FUZZ_CHECK(s[len] == '\0');
                fz_touch(s, len + 1);
            }
            bool num = rt_gguf_array_num(g, key, j, &f);
            FUZZ_CHECK(!(num && et == GGUF_STRING));
        }
        FUZZ_CHECK(rt_gguf_array_str(g, key, n, &len) == NULL);
        FUZZ_CHECK(rt_gguf_array_str(g, key, -1, &len) == NULL);
        FUZZ_CHECK(!rt_gguf_array_num(g, key, n, &f));
        FUZZ_CHECK(!rt_gguf_array_num(g, key, -1, &f));
    }
}

static void walk(const RtCheckpoint *c, bool meta, const char *path, const uint8_t *data, size_t size)
{
    int n = rt_ckpt_count(c);
    FUZZ_CHECK(n >= 0);
    for (int i = 0; i < n; i++) {
        const RtTensor *t = rt_ckpt_tensor(c, i);
        fz_check_tensor(t);
        FUZZ_CHECK(rt_ckpt_find(c, t->name) != NULL);
        FUZZ_CHECK(strcmp(rt_ckpt_find(c, t->name)->name, t->name) == 0);
    }
    FUZZ_CHECK(rt_ckpt_find(c, "no such tensor") == NULL || n > 0);
    const RtConfig *cfg = rt_ckpt_config(c);
    for (size_t k = 0; cfg && k < sizeof config_keys / sizeof config_keys[0]; k++) {
        RtCfgValue v = rt_config_get(cfg, config_keys[k]);
        if (v.kind == CFG_STRING)
            fz_touch(v.s, strlen(v.s));
    }
    const RtGguf *g = rt_ckpt_gguf(c);
    FUZZ_CHECK(g != NULL);
    if (!meta)
        return;
    metadata(g);
    RtErr err = {.msg = ""};
    RtTokenizer *t = rt_tok_from_gguf(g, path, &err);
    if (!t) {
        FUZZ_CHECK_ERR(err);
        return;
    }
    fz_tok_workout(t, data, size);
    rt_tok_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fz_write(0, "model.gguf", data, size);
    bool meta = true;   /* the metadata and tokenizer once: both opens read the same */
    for (int dequantize = 0; dequantize < 2; dequantize++) {
        RtCheckpoint *c = NULL;
        RtErr err = {.msg = ""};
        if (!rt_ckpt_open_opts(path, dequantize != 0, &c, &err)) {
            FUZZ_CHECK(c == NULL);
            FUZZ_CHECK_ERR(err);
            continue;
        }
        FUZZ_CHECK(c != NULL);
        walk(c, meta, path, data, size);
        meta = false;
        rt_ckpt_close(c);
    }
    return 0;
}
