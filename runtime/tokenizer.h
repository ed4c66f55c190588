/* runtime/tokenizer.h — text <-> token ids, and chat prompts.
 *
 * Two families, loaded from GGUF metadata (tokenizer.ggml.*) or from a
 * Hugging Face tokenizer.json:
 *   - byte-level BPE (GPT-2 style: bytes mapped to printable code points, a
 *     pre-tokenizer regex chosen by tokenizer.ggml.pre / the tokenizer.json
 *     pre_tokenizer, then merges by rank);
 *   - SentencePiece-style BPE (Llama 2: "▁" for spaces, merges by score,
 *     <0xXX> byte fallback).
 * Special tokens are matched as whole tokens, leftmost-longest: control
 * tokens (e.g. <|im_start|>) when parse_special is set, user-defined ones
 * always.  Chat templates: ChatML (SmolLM2, Qwen) and Llama 3, recognised
 * from the chat template.  Encodings match Hugging Face `tokenizers` (and
 * sentencepiece for GGUF "llama" vocabularies) id for id on the tests'
 * golden texts. */
#ifndef MODELC_TOKENIZER_H
#define MODELC_TOKENIZER_H

#include "runtime/runtime.h"

typedef struct RtTokenizer RtTokenizer;

typedef enum { RT_CHAT_NONE, RT_CHAT_CHATML, RT_CHAT_LLAMA3 } RtChatFormat;

/* From GGUF metadata: tokenizer.ggml.model "gpt2" (byte-level BPE; the
 * regex by tokenizer.ggml.pre: smollm/starcoder/..., llama3/llama-bpe/...,
 * qwen2, gpt2/default/...; absent: gpt2) or "llama" (SentencePiece, merges by
 * tokenizer.ggml.scores).  Token types from tokenizer.ggml.token_type
 * (3 control, 4 user-defined, 6 byte), BOS/EOS/EOT/unk from the *_token_id
 * keys, add_bos_token (default: true for llama, false for gpt2),
 * add_space_prefix (default true), chat_template. */
RtTokenizer *rt_tok_from_gguf(const RtGguf *g, const char *path_for_msgs, RtErr *err);
/* From tokenizer.json (model.type BPE; byte-level by its ByteLevel
 * pre-tokenizer/decoder, else SentencePiece-style by a "▁" Replace
 * normalizer or Metaspace; merges as "a b" or ["a", "b"]; added_tokens with
 * "special": control, else user-defined), with tokenizer_config.json beside
 * it when there (bos_token, eos_token, add_bos_token, chat_template) and
 * chat_template.jinja. */
RtTokenizer *rt_tok_from_hf(const char *tokenizer_json_path, RtErr *err);
void rt_tok_free(RtTokenizer *t);

/* The GGUF loader reads its keys through these (all six must be set), so
 * tests and other containers can hand it the same keys. */
typedef struct RtTokMeta {
    const void *ctx;
    bool (*str)(const void *ctx, const char *key, const char **s, size_t *len);
    bool (*integer)(const void *ctx, const char *key, int64_t *v);   /* integers and bools */
    int64_t (*array)(const void *ctx, const char *key, int *elem_type);   /* -1: absent */
    const char *(*array_str)(const void *ctx, const char *key, int64_t i, size_t *len);
    bool (*array_num)(const void *ctx, const char *key, int64_t i, double *v);
} RtTokMeta;
RtTokenizer *rt_tok_from_meta(const RtTokMeta *m, const char *path_for_msgs, RtErr *err);

/* Encode text (UTF-8; invalid bytes are kept as bytes).  add_bos: prepend
 * BOS when the model asks for it (tokenizer.ggml.add_bos_token / the HF
 * post-processor or add_bos_token); parse_special: recognise control-token
 * text.  SentencePiece models put "▁" before the text and after each control
 * token (add_space_prefix).  Returns a malloc'd array (never NULL on
 * success, even when *n is 0), *n its length; NULL only when out of memory
 * or text is NULL with len > 0. */
int32_t *rt_tok_encode(const RtTokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                       int64_t *n, RtErr *err);
/* The bytes of one token (byte-level tokens mapped back; SentencePiece "▁"
 * as a space, <0xXX> as that byte; control tokens as ""; user-defined and
 * unknown tokens as their text), valid while t lives.  NULL (*len 0) for an
 * id out of range.  Not NUL-terminated in general: use *len. */
const char *rt_tok_piece(const RtTokenizer *t, int32_t id, size_t *len);
int64_t rt_tok_vocab(const RtTokenizer *t);   /* ids are in [0, vocab) */
int32_t rt_tok_bos(const RtTokenizer *t);   /* -1 when none */
int32_t rt_tok_eos(const RtTokenizer *t);   /* -1 when none */
bool rt_tok_adds_bos(const RtTokenizer *t);   /* rt_tok_encode(add_bos = true) prepends BOS */
bool rt_tok_is_eog(const RtTokenizer *t, int32_t id);   /* EOS, EOT, EOM, <|im_end|>, <|eot_id|>, </s> ... */
int32_t rt_tok_find(const RtTokenizer *t, const char *text, size_t len);   /* the id of a token's text, -1 */

/* A single-turn chat prompt in the model's format (with its default system
 * prompt where the template has one and system is NULL), ending in the
 * generation prompt; malloc'd.  Encode it with add_bos = true and
 * parse_special = true: Llama 3's <|begin_of_text|> is in the text only when
 * encoding will not add it.  Fails for RT_CHAT_NONE. */
RtChatFormat rt_tok_chat_format(const RtTokenizer *t);
char *rt_tok_chat_prompt(const RtTokenizer *t, const char *system, const char *user, RtErr *err);

/* Streaming decode: feed token pieces, get out only complete UTF-8. */
typedef struct RtUtf8Stream {
    char pending[8];
    int npending;
} RtUtf8Stream;
/* Writes to out what can be printed now: complete characters, U+FFFD for
 * each invalid sequence; an unfinished one at the end is held back.  Returns
 * the bytes written.  out needs RT_UTF8_STREAM_MAX(len) bytes; with less,
 * what does not fit is dropped.  Start with a zeroed RtUtf8Stream. */
#define RT_UTF8_STREAM_MAX(len) (3 * (size_t)(len) + 12)
size_t rt_utf8_stream(RtUtf8Stream *s, const char *piece, size_t len, char *out, size_t cap);
/* At the end: U+FFFD for a held-back unfinished sequence (out: 3 bytes). */
size_t rt_utf8_flush(RtUtf8Stream *s, char *out, size_t cap);

#endif
