/* runtime/tokenizer.c — text <-> token ids for byte-level BPE (GPT-2 style:
 * SmolLM2, Llama 3, Qwen2) and SentencePiece-style BPE (Llama 2), from GGUF
 * metadata or a Hugging Face tokenizer.json; chat prompts for ChatML and
 * Llama 3.
 *
 * Encoding runs in three steps:
 *   1. special tokens: the text is cut at every control token (with
 *      parse_special) and user-defined token, leftmost-longest first;
 *   2. pre-tokenization of each piece between them: byte-level models split
 *      it into words with the model's regex, written out by hand over a table
 *      of Unicode classes (pre_gpt2, pre_llama3; SmolLM's digits rule in
 *      encode_bytelevel); SentencePiece models take the piece whole, spaces
 *      made "▁" (with a leading "▁" by add_space_prefix);
 *   3. BPE over each word (bpe_word): symbols in a linked list, candidate
 *      pairs in a max-heap, the best pair merged until none is left.  Byte-
 *      level and tokenizer.json models rank pairs by the merges list (a hash
 *      of id pairs); GGUF SentencePiece models by the score of the token the
 *      pair would make.  Leftovers fall back to <0xXX> byte tokens, then unk.
 *
 * Invariants: every id handed out is in [0, n); everything read from a file
 * is checked first (lengths, ids, UTF-8 is never assumed), so a hostile
 * vocabulary gives an error or skipped entries, never a crash.  The
 * tokenizer owns copies of all its strings: it outlives the GGUF or JSON it
 * came from. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "runtime/tokenizer.h"
#include "runtime/unicode.h"

/* Token types, as tokenizer.ggml.token_type writes them. */
enum { TT_UNDEF = 0, TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef enum { KIND_BYTELEVEL, KIND_SPM } TokKind;
typedef enum { PRE_GPT2, PRE_SMOLLM, PRE_LLAMA3, PRE_QWEN2 } PreType;
/* When a SentencePiece-style piece of text (between special tokens) gets a
 * leading "▁": */
typedef enum {
    PREFIX_NONE,
    PREFIX_SPM,        /* GGUF, as sentencepiece + llama.cpp: at the start of the text and after control tokens */
    PREFIX_EVERY,      /* tokenizer.json Prepend normalizer: every piece */
    PREFIX_METASPACE,  /* tokenizer.json Metaspace "always": every piece not starting with a space */
    PREFIX_FIRST,      /* Metaspace "first": the piece at the start of the text, unless it starts with a space */
} PrefixMode;


typedef struct Token {
    size_t text, text_len;     /* offsets into arena */
    size_t piece, piece_len;   /* decoded bytes, offsets into pieces */
    float score;
    uint8_t type;
} Token;

typedef struct MergeSlot {
    int32_t a, b;              /* a == -1: empty */
    int32_t result, rank;
} MergeSlot;

struct RtTokenizer {
    TokKind kind;
    PreType pre;
    bool by_score;             /* merge by score of the result (GGUF SentencePiece), else by rank */
    bool add_bos, ignore_merges, byte_prefix_space;
    PrefixMode spm_prefix;     /* SentencePiece: when a piece gets a leading "▁" */
    int64_t n;
    Token *tok;
    char *arena;               /* token texts */
    size_t arena_len, arena_cap;
    char *pieces;
    int32_t *vslot;            /* text -> id, open addressing, -1 empty */
    uint32_t vmask;
    MergeSlot *mslot;
    uint32_t mmask;
    int64_t nmerges;
    int32_t byte_tok[256];     /* byte-level: the token of each byte's code point; SPM: <0xXX> */
    int32_t *special;          /* control / user-defined / unknown tokens, by first byte then longest */
    int nspecial;
    int special_at[257];       /* bucket of first byte b: special[special_at[b] .. special_at[b+1]) */
    int32_t bos, eos, eot, unk;
    int32_t eog[TOK_MAX_EOG];
    int neog;
    RtChatFormat chat;
    char *default_system;      /* from the chat template; NULL when none */
};

/* ---- small growable buffers ---- */

typedef struct Buf {
    char *p;
    size_t n, cap;
} Buf;

static bool buf_reserve(Buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->n)
        return false;
    if (b->n + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return false;
    b->p = p;
    b->cap = cap;
    return true;
}

static bool buf_put(Buf *b, const void *s, size_t n)
{
    if (!buf_reserve(b, n + 1))
        return false;
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

static bool buf_puts(Buf *b, const char *s) { return buf_put(b, s, strlen(s)); }

typedef struct Ids {
    int32_t *p;
    int64_t n, cap;
} Ids;

static bool ids_push(Ids *v, int32_t id)
{
    if (v->n == v->cap) {
        int64_t cap = v->cap ? 2 * v->cap : 64;
        int32_t *p = realloc(v->p, (size_t)cap * sizeof *p);
        if (!p)
            return false;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = id;
    return true;
}

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available) and its
 * code point; 0 when the bytes there are not one (a stray or truncated
 * sequence, an overlong form, a surrogate, past U+10FFFF). */
static int utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static int utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | (cp >> 6 & 0x3F)); out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- GPT-2's bytes_to_unicode ----
 * Bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
 * themselves; the other 68 take U+0100, U+0101, ... in byte order. */

static bool byte_printable(unsigned b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The code point standing for byte b: 0x00-0x20 -> U+0100-0120,
 * 0x7F-0xA0 -> U+0121-0142, 0xAD -> U+0143. */
static uint32_t byte_cp(unsigned b)
{
    if (byte_printable(b))
        return b;
    return b <= 0x20 ? 0x100 + b : b == 0xAD ? 0x143 : 0x121 + (b - 0x7F);
}

/* The byte code point cp stands for, or -1. */
static int cp_byte(uint32_t cp)
{
    if (cp < 0x100)
        return byte_printable(cp) ? (int)cp : -1;
    if (cp <= 0x120)
        return (int)(cp - 0x100);
    if (cp <= 0x142)
        return (int)(cp - 0x121 + 0x7F);
    return cp == 0x143 ? 0xAD : -1;
}

/* ---- hashing: the vocabulary (text -> id) and the merges ((a, b) -> rank) ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ h >> 29;
}

static uint64_t hash_pair(int32_t a, int32_t b)
{
    uint64_t h = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ h >> 33;
}

static uint32_t table_size(int64_t n)
{
    uint32_t size = 16;
    while ((int64_t)size < 2 * n)
        size *= 2;
    return size;
}

static int32_t vocab_find(const RtTokenizer *t, const char *s, size_t n)
{
    if (!t->vslot)
        return -1;
    for (uint32_t i = (uint32_t)hash_bytes(s, n) & t->vmask;; i = (i + 1) & t->vmask) {
        int32_t id = t->vslot[i];
        if (id < 0)
            return -1;
        const Token *k = &t->tok[id];
        if (k->text_len == n && memcmp(t->arena + k->text, s, n) == 0)
            return id;
    }
}

static const MergeSlot *merge_find(const RtTokenizer *t, int32_t a, int32_t b)
{
    if (!t->mslot || a < 0 || b < 0)
        return NULL;
    for (uint32_t i = (uint32_t)hash_pair(a, b) & t->mmask;; i = (i + 1) & t->mmask) {
        const MergeSlot *m = &t->mslot[i];
        if (m->a < 0)
            return NULL;
        if (m->a == a && m->b == b)
            return m;
    }
}

/* ---- building a tokenizer: tok_new, tok_set per token, tok_index, tok_merge per merge, tok_finish ---- */

static void tok_free_parts(RtTokenizer *t)
{
    free(t->tok);
    free(t->arena);
    free(t->pieces);
    free(t->vslot);
    free(t->mslot);
    free(t->special);
    free(t->default_system);
}

void rt_tok_free(RtTokenizer *t)
{
    if (!t)
        return;
    tok_free_parts(t);
    free(t);
}

static RtTokenizer *tok_new(int64_t n, const char *path, RtErr *err)
{
    if (n <= 0 || n > TOK_MAX_VOCAB) {
        rt_fail(err, "%s: tokenizer has %lld tokens (must be 1 to %d)", path, (long long)n, TOK_MAX_VOCAB);
        return NULL;
    }
    RtTokenizer *t = calloc(1, sizeof *t);
    if (t)
        t->tok = calloc((size_t)n, sizeof *t->tok);
    if (!t || !t->tok) {
        free(t);
        rt_fail(err, "%s: out of memory", path);
        return NULL;
    }
    t->n = n;
    t->bos = t->eos = t->eot = t->unk = -1;
    for (int64_t i = 0; i < n; i++)
        t->tok[i].type = TT_UNUSED;   /* ids no entry names (tokenizer.json gaps) */
    return t;
}

static bool tok_set(RtTokenizer *t, int64_t id, const char *s, size_t len, int type, float score)
{
    if (len > SIZE_MAX / 4 - t->arena_len)
        return false;
    if (t->arena_len + len + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 1 << 16;
        while (cap < t->arena_len + len + 1)
            cap *= 2;
        char *p = realloc(t->arena, cap);
        if (!p)
            return false;
        t->arena = p;
        t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = 0;
    Token *k = &t->tok[id];
    k->text = t->arena_len;
    k->text_len = len;
    k->type = (uint8_t)type;
    k->score = score;
    t->arena_len += len + 1;
    return true;
}

/* The text -> id table, after every tok_set.  A text named twice keeps its
 * first id; empty texts and unused slots are not looked up. */
static bool tok_index(RtTokenizer *t)
{
    uint32_t size = table_size(t->n);
    t->vslot = malloc((size_t)size * sizeof *t->vslot);
    if (!t->vslot)
        return false;
    memset(t->vslot, 0xff, (size_t)size * sizeof *t->vslot);
    t->vmask = size - 1;
    for (int64_t id = 0; id < t->n; id++) {
        const Token *k = &t->tok[id];
        if (k->text_len == 0)
            continue;
        const char *s = t->arena + k->text;
        uint32_t i = (uint32_t)hash_bytes(s, k->text_len) & t->vmask;
        for (;; i = (i + 1) & t->vmask) {
            int32_t other = t->vslot[i];
            if (other < 0)
                break;
            if (t->tok[other].text_len == k->text_len && memcmp(t->arena + t->tok[other].text, s, k->text_len) == 0)
                goto next;
        }
        t->vslot[i] = (int32_t)id;
    next:;
    }
    return true;
}

static bool merges_alloc(RtTokenizer *t, int64_t count)
{
    uint32_t size = table_size(count);
    t->mslot = malloc((size_t)size * sizeof *t->mslot);
    if (!t->mslot)
        return false;
    for (uint32_t i = 0; i < size; i++)
        t->mslot[i].a = -1;
    t->mmask = size - 1;
    return true;
}

/* One merge "a b", of rank nmerges.  Merges naming a text that is not a
 * token, or making one that is not, are skipped; so are repeats. */
static bool tok_merge(RtTokenizer *t, const char *a, size_t alen, const char *b, size_t blen, Buf *scratch)
{
    int32_t ia = vocab_find(t, a, alen), ib = vocab_find(t, b, blen);
    if (ia < 0 || ib < 0)
        return true;
    scratch->n = 0;
    if (!buf_put(scratch, a, alen) || !buf_put(scratch, b, blen))
        return false;
    int32_t r = vocab_find(t, scratch->p, scratch->n);
    if (r < 0)
        return true;
    uint32_t i = (uint32_t)hash_pair(ia, ib) & t->mmask;
    for (; t->mslot[i].a >= 0; i = (i + 1) & t->mmask)
        if (t->mslot[i].a == ia && t->mslot[i].b == ib)
            return true;
    t->mslot[i] = (MergeSlot){ia, ib, r, (int32_t)t->nmerges++};
    return true;
}

/* "<0xXX>" -> XX, or -1. */
static int byte_token_value(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The bytes each token decodes to. */
static bool build_pieces(RtTokenizer *t)
{
    Buf out = {0};
    for (int64_t id = 0; id < t->n; id++) {
        Token *k = &t->tok[id];
        const char *s = t->arena + k->text;
        size_t n = k->text_len;
        k->piece = out.n;
        bool ok = true;
        if (k->type == TT_CONTROL || k->type == TT_UNUSED) {
            /* nothing */
        } else if (k->type == TT_USER || k->type == TT_UNKNOWN) {
            ok = buf_put(&out, s, n);
        } else if (t->kind == KIND_SPM) {
            int byte = k->type == TT_BYTE ? byte_token_value(s, n) : -1;
            if (byte >= 0) {
                char c = (char)byte;
                ok = buf_put(&out, &c, 1);
            } else {
                for (size_t i = 0; ok && i < n;) {
                    if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                        ok = buf_put(&out, " ", 1);
                        i += 3;
                    } else {
                        ok = buf_put(&out, s + i, 1);
                        i++;
                    }
                }
            }
        } else {
            /* byte-level: each code point back to its byte; anything else as it is */
            for (size_t i = 0; ok && i < n;) {
                uint32_t cp;
                int len = utf8_next((const unsigned char *)s + i, n - i, &cp);
                if (len > 0 && cp_byte(cp) >= 0) {
                    char c = (char)cp_byte(cp);
                    ok = buf_put(&out, &c, 1);
                } else {
                    len = len > 0 ? len : 1;
                    ok = buf_put(&out, s + i, (size_t)len);
                }
                i += (size_t)len;
            }
        }
        if (!ok) {
            free(out.p);
            return false;
        }
        k->piece_len = out.n - k->piece;
    }
    if (!buf_put(&out, "", 0)) {
        free(out.p);
        return false;
    }
    t->pieces = out.p;
    return true;
}

static bool is_special_type(int type) { return type == TT_CONTROL || type == TT_USER || type == TT_UNKNOWN; }

typedef struct SpecialKey {
    unsigned char first;
    size_t len;
    int32_t id;
} SpecialKey;

static int special_cmp(const void *pa, const void *pb)
{
    const SpecialKey *a = pa, *b = pb;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : 1;
}

/* The special tokens (the first id of each text), grouped by first byte,
 * longest first in each group. */
static bool build_specials(RtTokenizer *t)
{
    SpecialKey *keys = malloc((size_t)t->n * sizeof *keys);
    t->special = malloc((size_t)t->n * sizeof *t->special);
    if (!keys || !t->special) {
        free(keys);
        return false;
    }
    int count = 0;
    for (int64_t id = 0; id < t->n; id++) {
        const Token *k = &t->tok[id];
        if (is_special_type(k->type) && k->text_len > 0 && vocab_find(t, t->arena + k->text, k->text_len) == id)
            keys[count++] = (SpecialKey){(unsigned char)t->arena[k->text], k->text_len, (int32_t)id};
    }
    qsort(keys, (size_t)count, sizeof *keys, special_cmp);
    for (int i = 0; i < count; i++)
        t->special[i] = keys[i].id;
    t->nspecial = count;
    int j = 0;
    for (int b = 0; b <= 256; b++) {
        while (j < count && keys[j].first < b)
            j++;
        t->special_at[b] = j;
    }
    free(keys);
    return true;
}

static void add_eog(RtTokenizer *t, int32_t id)
{
    if (id < 0 || id >= t->n || t->neog == TOK_MAX_EOG)
        return;
    for (int i = 0; i < t->neog; i++)
        if (t->eog[i] == id)
            return;
    t->eog[t->neog++] = id;
}

/* ---- chat templates ---- */

/* ChatML templates that add a system turn of their own when the conversation
 * has none write it as a string literal: '<|im_start|>system\n...<|im_end|>'.
 * Find the first such literal whose text is plain (no Jinja, no string
 * concatenation) and set *out to that text unescaped (NULL when there is
 * none); false only when out of memory. */
static bool chatml_default_system(const char *tmpl, char **out_text)
{
    *out_text = NULL;
    static const char head[] = "<|im_start|>system";
    for (const char *p = strstr(tmpl, head); p; p = strstr(p + 1, head)) {
        const char *s = p + strlen(head);
        if (*s == '\n')
            s++;
        else if (s[0] == '\\' && s[1] == 'n')
            s += 2;
        else
            continue;
        const char *end = strstr(s, "<|im_end|>");
        if (!end || end <= s)
            continue;
        bool plain = true;
        for (const char *q = s; q < end && plain; q++)
            if (*q == '\'' || *q == '"' || *q == '{' || *q == '}' || *q == '+')
                plain = false;
        if (!plain)
            continue;
        char *out = malloc((size_t)(end - s) + 1);
        if (!out)
            return false;
        size_t n = 0;
        for (const char *q = s; q < end; q++) {
            if (*q == '\\' && q + 1 < end) {
                char c = *++q;
                out[n++] = c == 'n' ? '\n' : c == 't' ? '\t' : c;
            } else {
                out[n++] = *q;
            }
        }
        out[n] = 0;
        *out_text = out;
        return true;
    }
    return true;
}

/* false: out of memory */
static bool set_chat_template(RtTokenizer *t, const char *tmpl)
{
    if (strstr(tmpl, "<|im_start|>")) {
        t->chat = RT_CHAT_CHATML;
        return chatml_default_system(tmpl, &t->default_system);
    }
    if (strstr(tmpl, "<|start_header_id|>"))
        t->chat = RT_CHAT_LLAMA3;
    return true;
}

/* After every token and merge is in: the decoded pieces, the byte tokens,
 * the special-token matcher and the end-of-generation set. */
static bool tok_finish(RtTokenizer *t, const char *path, RtErr *err)
{
    if (!build_pieces(t) || !build_specials(t))
        return rt_fail(err, "%s: out of memory", path);
    for (int b = 0; b < 256; b++) {
        char s[8];
        if (t->kind == KIND_BYTELEVEL) {
            int len = utf8_put(s, byte_cp((unsigned)b));
            t->byte_tok[b] = vocab_find(t, s, (size_t)len);
        } else {
            snprintf(s, sizeof s, "<0x%02X>", b);
            t->byte_tok[b] = vocab_find(t, s, 6);
        }
    }
    int32_t *ids[] = {&t->bos, &t->eos, &t->eot, &t->unk};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (*ids[i] >= t->n)
            *ids[i] = -1;   /* out of range: as if absent */
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    static const char *const eog_names[] = {"<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<|endoftext|>",
                                            "<|eom_id|>", "<|end|>", "<end_of_turn>"};
    for (size_t i = 0; i < sizeof eog_names / sizeof eog_names[0]; i++) {
        int32_t id = vocab_find(t, eog_names[i], strlen(eog_names[i]));
        if (id >= 0 && is_special_type(t->tok[id].type))
            add_eog(t, id);
    }
    return true;
}

/* ---- from GGUF metadata (or any source of the same keys) ---- */

static bool meta_str(const RtTokMeta *m, const char *key, const char **s, size_t *len)
{
    return m->str(m->ctx, key, s, len);
}

static bool meta_int(const RtTokMeta *m, const char *key, int64_t *v)
{
    return m->integer(m->ctx, key, v);
}

static bool meta_flag(const RtTokMeta *m, const char *key, bool dflt)
{
    int64_t v;
    return meta_int(m, key, &v) ? v != 0 : dflt;
}

static int32_t meta_id(const RtTokMeta *m, const char *key, int32_t dflt)
{
    int64_t v;
    if (!meta_int(m, key, &v))
        return dflt;
    return v >= 0 && v < TOK_MAX_VOCAB ? (int32_t)v : -1;
}

static bool str_is(const char *s, size_t n, const char *lit) { return strlen(lit) == n && memcmp(s, lit, n) == 0; }

/* tokenizer.ggml.pre names, as llama.cpp's converter writes them, by regex family. */
static bool pre_from_name(const char *s, size_t n, PreType *pre)
{
    static const char *const smollm[] = {"smollm", "starcoder", "refact", "codeshell", "command-r", "exaone", "minerva"};
    static const char *const llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"};
    static const char *const qwen2[] = {"qwen2", "stablelm2", "deepseek-r1-qwen", "megrez"};
    static const char *const gpt2[] = {"gpt-2", "gpt2", "default", "mpt", "olmo", "jais", "phi-2", "trillion"};
    for (size_t i = 0; i < sizeof smollm / sizeof *smollm; i++)
        if (str_is(s, n, smollm[i]))
            return *pre = PRE_SMOLLM, true;
    for (size_t i = 0; i < sizeof llama3 / sizeof *llama3; i++)
        if (str_is(s, n, llama3[i]))
            return *pre = PRE_LLAMA3, true;
    for (size_t i = 0; i < sizeof qwen2 / sizeof *qwen2; i++)
        if (str_is(s, n, qwen2[i]))
            return *pre = PRE_QWEN2, true;
    for (size_t i = 0; i < sizeof gpt2 / sizeof *gpt2; i++)
        if (str_is(s, n, gpt2[i]))
            return *pre = PRE_GPT2, true;
    return false;
}

RtTokenizer *rt_tok_from_meta(const RtTokMeta *m, const char *path, RtErr *err)
{
    const char *model, *s;
    size_t model_len, len;
    if (!meta_str(m, "tokenizer.ggml.model", &model, &model_len)) {
        rt_fail(err, "%s: no tokenizer (tokenizer.ggml.model is missing)", path);
        return NULL;
    }
    TokKind kind;
    if (str_is(model, model_len, "gpt2"))
        kind = KIND_BYTELEVEL;
    else if (str_is(model, model_len, "llama"))
        kind = KIND_SPM;
    else {
        rt_fail(err, "%s: tokenizer.ggml.model '%.*s' is not supported (gpt2 or llama)", path,
                (int)(model_len > 64 ? 64 : model_len), model);
        return NULL;
    }
    PreType pre = PRE_GPT2;
    if (kind == KIND_BYTELEVEL && meta_str(m, "tokenizer.ggml.pre", &s, &len) && !pre_from_name(s, len, &pre)) {
        rt_fail(err, "%s: tokenizer.ggml.pre '%.*s' is not supported", path, (int)(len > 64 ? 64 : len), s);
        return NULL;
    }

    int etype = -1;
    int64_t n = m->array(m->ctx, "tokenizer.ggml.tokens", &etype);
    if (n < 0 || etype != GGUF_STRING) {
        rt_fail(err, "%s: tokenizer.ggml.tokens is missing or not an array of strings", path);
        return NULL;
    }
    int64_t ntypes = m->array(m->ctx, "tokenizer.ggml.token_type", &etype);
    if (ntypes >= 0 && (ntypes != n || etype == GGUF_STRING || etype == GGUF_ARRAY)) {
        rt_fail(err, "%s: tokenizer.ggml.token_type has %lld entries for %lld tokens", path, (long long)ntypes,
                (long long)n);
        return NULL;
    }
    int64_t nscores = m->array(m->ctx, "tokenizer.ggml.scores", &etype);
    if (nscores >= 0 && (nscores != n || etype == GGUF_STRING || etype == GGUF_ARRAY)) {
        rt_fail(err, "%s: tokenizer.ggml.scores has %lld entries for %lld tokens", path, (long long)nscores,
                (long long)n);
        return NULL;
    }
    int64_t nmerges = m->array(m->ctx, "tokenizer.ggml.merges", &etype);
    if (kind == KIND_BYTELEVEL && (nmerges < 0 || etype != GGUF_STRING)) {
        rt_fail(err, "%s: tokenizer.ggml.merges is missing or not an array of strings", path);
        return NULL;
    }

    RtTokenizer *t = tok_new(n, path, err);
    if (!t)
        return NULL;
    t->kind = kind;
    t->pre = pre;
    t->by_score = kind == KIND_SPM;
    t->ignore_merges = kind == KIND_BYTELEVEL && pre == PRE_LLAMA3;
    for (int64_t i = 0; i < n; i++) {
        s = m->array_str(m->ctx, "tokenizer.ggml.tokens", i, &len);
        double type = TT_NORMAL, score = 0;
        if (ntypes >= 0 && (!m->array_num(m->ctx, "tokenizer.ggml.token_type", i, &type) || type < 0 || type > 6))
            type = TT_NORMAL;
        if (nscores >= 0 && !m->array_num(m->ctx, "tokenizer.ggml.scores", i, &score))
            score = 0;
        if (score != score)   /* NaN would break the heap's order */
            score = -1e30;
        if (!s) {
            s = "";
            len = 0;
        }
        if (!tok_set(t, i, s, len, (int)type, (float)score)) {
            rt_fail(err, "%s: out of memory", path);
            goto fail;
        }
    }
    if (!tok_index(t)) {
        rt_fail(err, "%s: out of memory", path);
        goto fail;
    }
    if (kind == KIND_BYTELEVEL && nmerges > 0) {   /* SentencePiece merges by score: no list */
        if (!merges_alloc(t, nmerges)) {
            rt_fail(err, "%s: out of memory", path);
            goto fail;
        }
        Buf scratch = {0};
        for (int64_t i = 0; i < nmerges; i++) {
            s = m->array_str(m->ctx, "tokenizer.ggml.merges", i, &len);
            const char *sp = s && len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
            if (!sp)
                continue;
            if (!tok_merge(t, s, (size_t)(sp - s), sp + 1, len - (size_t)(sp - s) - 1, &scratch)) {
                free(scratch.p);
                rt_fail(err, "%s: out of memory", path);
                goto fail;
            }
        }
        free(scratch.p);
    }

    t->add_bos = meta_flag(m, "tokenizer.ggml.add_bos_token", kind == KIND_SPM);
    t->spm_prefix = meta_flag(m, "tokenizer.ggml.add_space_prefix", true) ? PREFIX_SPM : PREFIX_NONE;
    t->bos = meta_id(m, "tokenizer.ggml.bos_token_id", kind == KIND_SPM ? 1 : -1);
    t->eos = meta_id(m, "tokenizer.ggml.eos_token_id", kind == KIND_SPM ? 2 : -1);
    /* byte-level models never need unk (as in llama.cpp: a byte with no token is dropped) */
    t->unk = kind == KIND_SPM ? meta_id(m, "tokenizer.ggml.unknown_token_id", 0) : -1;
    t->eot = meta_id(m, "tokenizer.ggml.eot_token_id", -1);
    if (!tok_finish(t, path, err))
        goto fail;
    add_eog(t, meta_id(m, "tokenizer.ggml.eom_token_id", -1));
    if (meta_str(m, "tokenizer.chat_template", &s, &len)) {
        char *tmpl = strndup(s, len);
        if (!tmpl) {
            rt_fail(err, "%s: out of memory", path);
            goto fail;
        }
        bool ok = set_chat_template(t, tmpl);
        free(tmpl);
        if (!ok) {
            rt_fail(err, "%s: out of memory", path);
            goto fail;
        }
    }
    return t;
fail:
    rt_tok_free(t);
    return NULL;
}

static bool gguf_str(const void *g, const char *key, const char **s, size_t *len) { return rt_gguf_str(g, key, s, len); }
static bool gguf_int(const void *g, const char *key, int64_t *v) { return rt_gguf_int(g, key, v); }
static int64_t gguf_array(const void *g, const char *key, int *et) { return rt_gguf_array(g, key, et); }
static const char *gguf_array_str(const void *g, const char *key, int64_t i, size_t *len)
{
    return rt_gguf_array_str(g, key, i, len);
}
static bool gguf_array_num(const void *g, const char *key, int64_t i, double *v)
{
    return rt_gguf_array_num(g, key, i, v);
}

RtTokenizer *rt_tok_from_gguf(const RtGguf *g, const char *path, RtErr *err)
{
    RtTokMeta m = {g, gguf_str, gguf_int, gguf_array, gguf_array_str, gguf_array_num};
    return rt_tok_from_meta(&m, path, err);
}

/* ---- from a Hugging Face tokenizer.json (and tokenizer_config.json beside it) ---- */

static const char llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

static const char *jstr(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static bool jtype_is(json_t *obj, const char *type)
{
    const char *s = jstr(obj, "type");
    return s && strcmp(s, type) == 0;
}

/* The components of a (possibly Sequence) normalizer / pre-tokenizer /
 * post-processor / decoder: the object itself, or the items of its list. */
static size_t jparts(json_t *obj, json_t **parts, size_t max)
{
    if (!json_is_object(obj))
        return 0;
    json_t *list = jtype_is(obj, "Sequence") ? json_object_get(obj, "pretokenizers") : NULL;
    if (!list)
        list = jtype_is(obj, "Sequence") ? json_object_get(obj, "normalizers") : NULL;
    if (!list)
        list = jtype_is(obj, "Sequence") ? json_object_get(obj, "processors") : NULL;
    if (!list)
        list = jtype_is(obj, "Sequence") ? json_object_get(obj, "decoders") : NULL;
    if (!json_is_array(list)) {
        parts[0] = obj;
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(list) && n < max; i++)
        if (json_is_object(json_array_get(list, i)))
            parts[n++] = json_array_get(list, i);
    return n;
}

/* tokenizer_config.json's bos_token / eos_token: a string or {"content": ...}. */
static const char *jtoken_text(json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : jstr(v, "content");
}

static json_t *load_json(const char *path, RtErr *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    json_error_t je;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!root) {
        rt_fail(err, "%s:%d:%d: %s", path, je.line, je.column, rt_json_why(&je));
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        rt_fail(err, "%s: top level is not an object", path);
        return NULL;
    }
    return root;
}

/* The byte-level pre-tokenizer a tokenizer.json describes. */
static bool hf_bytelevel_pre(json_t *pre_tok, const char *path, PreType *pre, bool *prefix_space, RtErr *err)
{
    json_t *parts[8];
    size_t n = jparts(pre_tok, parts, 8);
    bool digits = false, split_seen = false;
    *pre = PRE_GPT2;
    for (size_t i = 0; i < n; i++) {
        json_t *p = parts[i];
        if (jtype_is(p, "ByteLevel")) {
            *prefix_space = json_is_true(json_object_get(p, "add_prefix_space"));
            json_t *use_regex = json_object_get(p, "use_regex");
            if (!use_regex || json_is_true(use_regex)) {
                if (split_seen)
                    return rt_fail(err, "%s: pre_tokenizer: a regex Split and a regex ByteLevel together are not supported",
                                   path);
                *pre = digits ? PRE_SMOLLM : PRE_GPT2;
            } else if (!split_seen) {
                return rt_fail(err, "%s: pre_tokenizer: ByteLevel without its regex and no Split before it", path);
            }
        } else if (jtype_is(p, "Digits") && json_is_true(json_object_get(p, "individual_digits")) && i + 1 < n) {
            digits = true;
        } else if (jtype_is(p, "Split")) {
            const char *re = jstr(json_object_get(p, "pattern"), "Regex");
            const char *behavior = jstr(p, "behavior");
            if (re && strcmp(re, llama3_regex) == 0)
                *pre = PRE_LLAMA3;
            else if (re && strcmp(re, qwen2_regex) == 0)
                *pre = PRE_QWEN2;
            else
                return rt_fail(err, "%s: pre_tokenizer: this Split pattern is not supported", path);
            if (!behavior || strcmp(behavior, "Isolated") != 0)
                return rt_fail(err, "%s: pre_tokenizer: Split behavior must be Isolated", path);
            split_seen = true;
        } else {
            return rt_fail(err, "%s: pre_tokenizer '%s' is not supported", path, jstr(p, "type") ? jstr(p, "type") : "?");
        }
    }
    return true;
}

/* The directory part of path, with a trailing '/', or "" (malloc'd). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) + 1 : 0;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 1);
    if (p) {
        memcpy(p, dir, a);
        memcpy(p + a, name, b + 1);
    }
    return p;
}

/* bos/eos/add_bos/chat template from tokenizer_config.json (and
 * chat_template.jinja) beside tokenizer.json, when they are there. */
static bool hf_config(RtTokenizer *t, const char *path, RtErr *err)
{
    char *dir = dir_of(path);
    char *cfg_path = dir ? join(dir, "tokenizer_config.json") : NULL;
    char *jinja_path = dir ? join(dir, "chat_template.jinja") : NULL;
    bool ok = cfg_path && jinja_path;
    if (!ok)
        rt_fail(err, "%s: out of memory", path);
    json_t *cfg = NULL;
    if (ok && access(cfg_path, F_OK) == 0 && !(cfg = load_json(cfg_path, err)))
        ok = false;
    if (cfg) {
        const char *s = jtoken_text(json_object_get(cfg, "bos_token"));
        if (s && vocab_find(t, s, strlen(s)) >= 0)
            t->bos = vocab_find(t, s, strlen(s));
        s = jtoken_text(json_object_get(cfg, "eos_token"));
        if (s && vocab_find(t, s, strlen(s)) >= 0)
            t->eos = vocab_find(t, s, strlen(s));
        json_t *add_bos = json_object_get(cfg, "add_bos_token");
        if (json_is_boolean(add_bos))
            t->add_bos = json_is_true(add_bos);
        json_t *tmpl = json_object_get(cfg, "chat_template");
        if (json_is_array(tmpl)) {   /* [{"name": ..., "template": ...}]: the default one, else the first */
            json_t *pick = json_array_get(tmpl, 0);
            for (size_t i = 0; i < json_array_size(tmpl); i++)
                if (jstr(json_array_get(tmpl, i), "name") && strcmp(jstr(json_array_get(tmpl, i), "name"), "default") == 0)
                    pick = json_array_get(tmpl, i);
            tmpl = json_object_get(pick, "template");
        }
        if (json_is_string(tmpl) && !set_chat_template(t, json_string_value(tmpl)))
            ok = rt_fail(err, "%s: out of memory", path);
        json_decref(cfg);
    }
    if (ok && t->chat == RT_CHAT_NONE) {
        FILE *f = fopen(jinja_path, "rb");
        if (f) {
            Buf b = {0};
            char chunk[4096];
            size_t got;
            bool mem = true;
            while (mem && (got = fread(chunk, 1, sizeof chunk, f)) > 0 && b.n < (16u << 20))
                mem = buf_put(&b, chunk, got);
            fclose(f);
            if (!mem || (b.p && !set_chat_template(t, b.p)))
                ok = rt_fail(err, "%s: out of memory", jinja_path);
            free(b.p);
        }
    }
    free(dir);
    free(cfg_path);
    free(jinja_path);
    return ok;
}

RtTokenizer *rt_tok_from_hf(const char *path, RtErr *err)
{
    json_t *root = load_json(path, err);
    if (!root)
        return NULL;
    RtTokenizer *t = NULL;
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(model) || (jstr(model, "type") && !jtype_is(model, "BPE"))) {
        rt_fail(err, "%s: model.type must be BPE", path);
        goto fail;
    }
    if (!json_is_object(vocab) || !json_is_array(merges)) {
        rt_fail(err, "%s: model.vocab must be an object and model.merges an array", path);
        goto fail;
    }
    if (added && !json_is_array(added)) {
        rt_fail(err, "%s: added_tokens must be an array", path);
        goto fail;
    }

    /* The vocabulary: ids from model.vocab and added_tokens, gaps allowed. */
    int64_t n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= TOK_MAX_VOCAB) {
            rt_fail(err, "%s: model.vocab[\"%.64s\"]: id must be an integer in [0, %d)", path, key, TOK_MAX_VOCAB);
            goto fail;
        }
        n = id + 1 > n ? id + 1 : n;
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *a = json_array_get(added, i), *idv = json_object_get(a, "id");
        if (!json_is_integer(idv) || json_integer_value(idv) < 0 || json_integer_value(idv) >= TOK_MAX_VOCAB ||
            !jstr(a, "content")) {
            rt_fail(err, "%s: added_tokens[%zu]: needs an integer id in [0, %d) and a content string", path, i,
                    TOK_MAX_VOCAB);
            goto fail;
        }
        n = json_integer_value(idv) + 1 > n ? json_integer_value(idv) + 1 : n;
    }
    /* gaps are allowed, a vocabulary that is mostly holes is not (a 20-byte file could ask for 2^24 slots) */
    int64_t entries = (int64_t)json_object_size(vocab) + (int64_t)json_array_size(added);
    if (n > entries + TOK_MAX_ID_GAP) {
        rt_fail(err, "%s: token id %lld is far past the %lld tokens listed (more than %d unused ids)", path,
                (long long)n - 1, (long long)entries, TOK_MAX_ID_GAP);
        goto fail;
    }
    t = tok_new(n, path, err);
    if (!t)
        goto fail;

    json_t *parts[8];
    json_t *pre_tok = json_object_get(root, "pre_tokenizer");
    json_t *decoder = json_object_get(root, "decoder");
    bool bytelevel = false, spm = false;
    size_t np = jparts(pre_tok, parts, 8);
    for (size_t i = 0; i < np; i++) {
        bytelevel |= jtype_is(parts[i], "ByteLevel");
        if (jtype_is(parts[i], "Metaspace")) {
            spm = true;
            const char *scheme = jstr(parts[i], "prepend_scheme");
            bool prefix = scheme ? strcmp(scheme, "never") != 0 : !json_is_false(json_object_get(parts[i], "add_prefix_space"));
            t->spm_prefix = !prefix ? PREFIX_NONE : scheme && strcmp(scheme, "first") == 0 ? PREFIX_FIRST : PREFIX_METASPACE;
        }
    }
    np = jparts(decoder, parts, 8);
    for (size_t i = 0; i < np; i++)
        bytelevel |= jtype_is(parts[i], "ByteLevel");
    np = jparts(json_object_get(root, "normalizer"), parts, 8);
    for (size_t i = 0; i < np && !bytelevel; i++) {
        const char *content = jstr(parts[i], "content");
        if (jtype_is(parts[i], "Replace") && content && strcmp(content, "\xe2\x96\x81") == 0)
            spm = true;
        if (jtype_is(parts[i], "Prepend") && jstr(parts[i], "prepend") && strcmp(jstr(parts[i], "prepend"), "\xe2\x96\x81") == 0)
            t->spm_prefix = PREFIX_EVERY;
    }
    if (bytelevel) {
        t->kind = KIND_BYTELEVEL;
        if (!hf_bytelevel_pre(pre_tok, path, &t->pre, &t->byte_prefix_space, err))
            goto fail;
    } else if (spm) {
        t->kind = KIND_SPM;
    } else {
        rt_fail(err, "%s: neither a byte-level nor a SentencePiece-style (\xe2\x96\x81) tokenizer", path);
        goto fail;
    }
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    bool byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));

    json_object_foreach(vocab, key, val) {
        int64_t id = json_integer_value(val);
        if (t->tok[id].type != TT_UNUSED) {
            rt_fail(err, "%s: model.vocab: id %lld is given twice", path, (long long)id);
            goto fail;
        }
        size_t len = strlen(key);
        int type = t->kind == KIND_SPM && byte_fallback && byte_token_value(key, len) >= 0 ? TT_BYTE : TT_NORMAL;
        if (!tok_set(t, id, key, len, type, 0)) {
            rt_fail(err, "%s: out of memory", path);
            goto fail;
        }
    }
    for (size_t i = 0; i < json_array_size(added); i++) {
        json_t *a = json_array_get(added, i);
        int64_t id = json_integer_value(json_object_get(a, "id"));
        const char *content = jstr(a, "content");
        size_t len = strlen(content);
        Token *k = &t->tok[id];
        if (k->type != TT_UNUSED && !(k->text_len == len && memcmp(t->arena + k->text, content, len) == 0)) {
            rt_fail(err, "%s: added_tokens[%zu]: id %lld is already \"%.64s\"", path, i, (long long)id,
                    t->arena + k->text);
            goto fail;
        }
        if (!tok_set(t, id, content, len, json_is_true(json_object_get(a, "special")) ? TT_CONTROL : TT_USER, 0)) {
            rt_fail(err, "%s: out of memory", path);
            goto fail;
        }
    }
    if (!tok_index(t) || !merges_alloc(t, (int64_t)json_array_size(merges))) {
        rt_fail(err, "%s: out of memory", path);
        goto fail;
    }
    Buf scratch = {0};
    for (size_t i = 0; i < json_array_size(merges); i++) {
        json_t *mg = json_array_get(merges, i);
        const char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        if (json_is_string(mg)) {   /* "a b" */
            a = json_string_value(mg);
            size_t len = json_string_length(mg);
            const char *sp = len > 1 ? memchr(a + 1, ' ', len - 1) : NULL;
            if (!sp)
                continue;
            alen = (size_t)(sp - a);
            b = sp + 1;
            blen = len - alen - 1;
        } else if (json_is_array(mg) && json_array_size(mg) == 2) {   /* ["a", "b"] */
            a = json_string_value(json_array_get(mg, 0));
            b = json_string_value(json_array_get(mg, 1));
            if (!a || !b)
                continue;
            alen = json_string_length(json_array_get(mg, 0));
            blen = json_string_length(json_array_get(mg, 1));
        } else {
            continue;
        }
        if (!tok_merge(t, a, alen, b, blen, &scratch)) {
            free(scratch.p);
            rt_fail(err, "%s: out of memory", path);
            goto fail;
        }
    }
    free(scratch.p);

    const char *unk = jstr(model, "unk_token");
    t->unk = unk ? vocab_find(t, unk, strlen(unk)) : -1;
    /* BOS: the special token a TemplateProcessing post-processor puts before $A. */
    np = jparts(json_object_get(root, "post_processor"), parts, 8);
    for (size_t i = 0; i < np; i++) {
        json_t *single = json_object_get(parts[i], "single");
        if (!jtype_is(parts[i], "TemplateProcessing") || !json_is_array(single))
            continue;
        const char *first = jstr(json_object_get(json_array_get(single, 0), "SpecialToken"), "id");
        if (first && vocab_find(t, first, strlen(first)) >= 0) {
            t->bos = vocab_find(t, first, strlen(first));
            t->add_bos = true;
        }
    }
    if (!hf_config(t, path, err))
        goto fail;
    if (t->eos < 0) {
        static const char *const names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>"};
        for (size_t i = 0; i < 3 && t->eos < 0; i++)
            t->eos = vocab_find(t, names[i], strlen(names[i]));
    }
    if (!tok_finish(t, path, err))
        goto fail;
    json_decref(root);
    return t;
fail:
    rt_tok_free(t);
    json_decref(root);
    return NULL;
}

/* ---- queries ---- */

int64_t rt_tok_vocab(const RtTokenizer *t) { return t->n; }
int32_t rt_tok_bos(const RtTokenizer *t) { return t->bos; }
int32_t rt_tok_eos(const RtTokenizer *t) { return t->eos; }
bool rt_tok_adds_bos(const RtTokenizer *t) { return t->add_bos && t->bos >= 0; }
RtChatFormat rt_tok_chat_format(const RtTokenizer *t) { return t->chat; }

bool rt_tok_is_eog(const RtTokenizer *t, int32_t id)
{
    for (int i = 0; i < t->neog; i++)
        if (t->eog[i] == id)
            return true;
    return false;
}

int32_t rt_tok_find(const RtTokenizer *t, const char *text, size_t len)
{
    return text ? vocab_find(t, text, len) : -1;
}

const char *rt_tok_piece(const RtTokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n) {
        *len = 0;
        return NULL;
    }
    *len = t->tok[id].piece_len;
    return t->pieces + t->tok[id].piece;
}

/* ---- encoding ---- */

typedef struct Sym {
    int32_t id;                /* -1: a character that is no token (byte fallback / unk) */
    int32_t start, len;        /* bytes in the word; len 0: merged away */
    int32_t prev, next;
} Sym;

typedef struct Cand {
    double prio;               /* higher first: -rank, or the merged token's score */
    int32_t left, right, len, id;
} Cand;

typedef struct Work {
    Buf word, text;
    Sym *sym;
    int64_t sym_cap;
    Cand *heap;
    int64_t nheap, heap_cap;
    uint32_t *cp;              /* pre-tokenizer: code points, their byte offsets and classes */
    int32_t *off;
    uint8_t *cls;
    int64_t cp_cap;
} Work;

static void work_free(Work *w)
{
    free(w->word.p);
    free(w->text.p);
    free(w->sym);
    free(w->heap);
    free(w->cp);
    free(w->off);
    free(w->cls);
}

static bool cand_before(const Cand *x, const Cand *y)
{
    return x->prio > y->prio || (x->prio == y->prio && x->left < y->left);
}

static bool heap_push(Work *w, Cand c)
{
    if (w->nheap == w->heap_cap) {
        int64_t cap = w->heap_cap ? 2 * w->heap_cap : 256;
        Cand *p = realloc(w->heap, (size_t)cap * sizeof *p);
        if (!p)
            return false;
        w->heap = p;
        w->heap_cap = cap;
    }
    int64_t i = w->nheap++;
    while (i > 0 && cand_before(&c, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
    return true;
}

static Cand heap_pop(Work *w)
{
    Cand top = w->heap[0], last = w->heap[--w->nheap];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= w->nheap)
            break;
        if (c + 1 < w->nheap && cand_before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!cand_before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->nheap > 0)
        w->heap[i] = last;
    return top;
}

static bool usable(int type) { return type != TT_CONTROL && type != TT_UNUSED && type != TT_UNKNOWN; }

/* Queue the merge of symbols l and r, if the model has one. */
static bool try_pair(const RtTokenizer *t, Work *w, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return true;
    const Sym *a = &w->sym[l], *b = &w->sym[r];
    Cand c = {0, l, r, a->len + b->len, -1};
    if (t->by_score) {
        int32_t id = vocab_find(t, w->word.p + a->start, (size_t)(a->len + b->len));
        if (id < 0 || !usable(t->tok[id].type))
            return true;
        c.id = id;
        c.prio = t->tok[id].score;
    } else {
        const MergeSlot *m = merge_find(t, a->id, b->id);
        if (!m)
            return true;
        c.id = m->result;
        c.prio = -(double)m->rank;
    }
    return heap_push(w, c);
}

static bool emit_fallback(const RtTokenizer *t, const Work *w, const Sym *s, Ids *out)
{
    if (t->kind == KIND_SPM) {
        bool all = true;
        for (int32_t i = 0; i < s->len; i++)
            all &= t->byte_tok[(unsigned char)w->word.p[s->start + i]] >= 0;
        if (all) {
            for (int32_t i = 0; i < s->len; i++)
                if (!ids_push(out, t->byte_tok[(unsigned char)w->word.p[s->start + i]]))
                    return false;
            return true;
        }
    }
    return t->unk < 0 || ids_push(out, t->unk);
}

/* BPE over one word (w->word, already mapped: byte-level code points or
 * SentencePiece "▁" text).  Byte-level words hold one symbol per source
 * byte (src), SentencePiece words one per UTF-8 character. */
static bool bpe_word(const RtTokenizer *t, Work *w, const unsigned char *src, Ids *out)
{
    if (t->ignore_merges) {
        int32_t id = vocab_find(t, w->word.p, w->word.n);
        if (id >= 0)
            return ids_push(out, id);
    }
    int64_t nsym = (int64_t)w->word.n;   /* at most one symbol per byte of the word */
    if (nsym > w->sym_cap) {
        Sym *p = realloc(w->sym, (size_t)nsym * sizeof *p);
        if (!p)
            return false;
        w->sym = p;
        w->sym_cap = nsym;
    }
    int32_t count = 0;
    const unsigned char *word = (const unsigned char *)w->word.p;
    for (size_t i = 0, k = 0; i < w->word.n; k++) {
        int32_t len, id;
        if (t->kind == KIND_BYTELEVEL) {   /* one symbol per source byte */
            len = byte_cp(src[k]) < 0x80 ? 1 : 2;
            id = t->byte_tok[src[k]];
        } else {   /* one per UTF-8 character */
            uint32_t cp;
            len = utf8_next(word + i, w->word.n - i, &cp);
            len = len > 0 ? len : 1;
            id = vocab_find(t, (const char *)word + i, (size_t)len);
            if (id >= 0 && !usable(t->tok[id].type))
                id = -1;
        }
        if (id < 0 && !t->by_score) {
            /* As Hugging Face's BPE: a character that is no token becomes its
             * <0xXX> byte tokens (SentencePiece-style), else unk, else
             * nothing — and its neighbours may then merge across it. */
            bool bytes = t->kind == KIND_SPM;
            for (int32_t q = 0; bytes && q < len; q++)
                bytes = t->byte_tok[word[i + (size_t)q]] >= 0;
            for (int32_t q = 0; bytes && q < len; q++, count++)
                w->sym[count] = (Sym){t->byte_tok[word[i + (size_t)q]], (int32_t)i + q, 1, count - 1, count + 1};
            if (!bytes && t->unk >= 0) {
                w->sym[count] = (Sym){t->unk, (int32_t)i, len, count - 1, count + 1};
                count++;
            }
        } else {
            w->sym[count] = (Sym){id, (int32_t)i, len, count - 1, count + 1};
            count++;
        }
        i += (size_t)len;
    }
    if (count == 0)
        return true;
    w->sym[count - 1].next = -1;
    w->nheap = 0;
    for (int32_t i = 1; i < count; i++)
        if (!try_pair(t, w, i - 1, i))
            return false;
    while (w->nheap > 0) {
        Cand c = heap_pop(w);
        Sym *l = &w->sym[c.left], *r = &w->sym[c.right];
        if (l->len == 0 || r->len == 0 || l->next != c.right || l->len + r->len != c.len)
            continue;   /* stale: one side has merged since */
        l->len += r->len;
        l->id = c.id;
        l->next = r->next;
        if (r->next >= 0)
            w->sym[r->next].prev = c.left;
        r->len = 0;
        if (!try_pair(t, w, l->prev, c.left) || !try_pair(t, w, c.left, l->next))
            return false;
    }
    for (int32_t i = 0; i >= 0; i = w->sym[i].next) {
        const Sym *s = &w->sym[i];
        if (s->id >= 0 ? !ids_push(out, s->id) : !emit_fallback(t, w, s, out))
            return false;
    }
    return true;
}

/* ---- pre-tokenizers: one regex match at code point i of c[0..n) ---- */

enum { C_OTHER = RT_UNI_OTHER, C_L = RT_UNI_LETTER, C_N = RT_UNI_NUMBER, C_S = RT_UNI_SPACE };

static int64_t run_of(const uint8_t *cls, int64_t i, int64_t n, int k)
{
    while (i < n && cls[i] == k)
        i++;
    return i;
}

static int64_t run_not_lns(const uint8_t *cls, int64_t i, int64_t n)
{
    return run_of(cls, i, n, C_OTHER);
}

static uint32_t fold(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    return c == 0x17F ? 's' : c;   /* U+017F LATIN SMALL LETTER LONG S folds to s */
}

/* 's 't 're 've 'm 'll 'd at i: the length matched, 0 if none. */
static int contraction(const uint32_t *c, int64_t i, int64_t n, bool icase)
{
    if (c[i] != '\'' || i + 1 >= n)
        return 0;
    uint32_t a = icase ? fold(c[i + 1]) : c[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (i + 2 >= n)
        return 0;
    uint32_t b = icase ? fold(c[i + 2]) : c[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* \s+(?!\S)|\s+ at i (a whitespace code point): all of the run when it ends
 * the text, else all but its last (which goes with what follows), and a lone
 * whitespace before non-space as itself. */
static int64_t space_run(const uint8_t *cls, int64_t i, int64_t n)
{
    int64_t j = run_of(cls, i, n, C_S);
    if (j == n || j - i == 1)
        return j;
    return j - 1;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static int64_t pre_gpt2(const uint32_t *c, const uint8_t *cls, int64_t i, int64_t n)
{
    int k = contraction(c, i, n, false);
    if (k)
        return i + k;
    int64_t j = c[i] == ' ' && i + 1 < n && cls[i + 1] != C_S ? i + 1 : i;
    if (cls[j] == C_L)
        return run_of(cls, j, n, C_L);
    if (cls[j] == C_N)
        return run_of(cls, j, n, C_N);
    if (cls[j] == C_OTHER)
        return run_not_lns(cls, j, n);
    return space_run(cls, i, n);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
 * \s+(?!\S)|\s+   — Qwen2's is the same with \p{N} (max_digits 1). */
static int64_t pre_llama3(const uint32_t *c, const uint8_t *cls, int64_t i, int64_t n, int max_digits)
{
    int k = contraction(c, i, n, true);
    if (k)
        return i + k;
    bool newline = c[i] == '\r' || c[i] == '\n';
    if (!newline && cls[i] != C_L && cls[i] != C_N && i + 1 < n && cls[i + 1] == C_L)
        return run_of(cls, i + 1, n, C_L);
    if (cls[i] == C_L)
        return run_of(cls, i, n, C_L);
    if (cls[i] == C_N) {
        int64_t j = i;
        while (j < n && j - i < max_digits && cls[j] == C_N)
            j++;
        return j;
    }
    int64_t j = c[i] == ' ' && i + 1 < n && cls[i + 1] == C_OTHER ? i + 1 : i;
    if (cls[j] == C_OTHER) {
        j = run_not_lns(cls, j, n);
        while (j < n && (c[j] == '\r' || c[j] == '\n'))
            j++;
        return j;
    }
    /* whitespace: \s*[\r\n]+ ends after the run's last \r or \n */
    int64_t end = run_of(cls, i, n, C_S), last = -1;
    for (int64_t q = i; q < end; q++)
        if (c[q] == '\r' || c[q] == '\n')
            last = q;
    if (last >= 0)
        return last + 1;
    return space_run(cls, i, n);
}

/* Map bytes to GPT-2's code points into w->word and run BPE. */
static bool bytelevel_word(const RtTokenizer *t, Work *w, const unsigned char *s, size_t n, Ids *out)
{
    w->word.n = 0;
    if (!buf_reserve(&w->word, 2 * n + 1))
        return false;
    for (size_t i = 0; i < n; i++)
        w->word.n += (size_t)utf8_put(w->word.p + w->word.n, byte_cp(s[i]));
    w->word.p[w->word.n] = 0;
    return bpe_word(t, w, s, out);
}

static bool encode_bytelevel(const RtTokenizer *t, Work *w, const unsigned char *s, size_t n, Ids *out)
{
    if (t->byte_prefix_space && s[0] != ' ') {
        w->text.n = 0;
        if (!buf_put(&w->text, " ", 1) || !buf_put(&w->text, s, n))
            return false;
        s = (const unsigned char *)w->text.p;
        n = w->text.n;
    }
    if ((int64_t)n + 1 > w->cp_cap) {
        int64_t cap = (int64_t)n + 1;
        uint32_t *cp = realloc(w->cp, (size_t)cap * sizeof *cp);
        if (cp)
            w->cp = cp;
        int32_t *off = realloc(w->off, (size_t)cap * sizeof *off);
        if (off)
            w->off = off;
        uint8_t *cls = realloc(w->cls, (size_t)cap);
        if (cls)
            w->cls = cls;
        if (!cp || !off || !cls)
            return false;
        w->cp_cap = cap;
    }
    int64_t m = 0;
    for (size_t i = 0; i < n; m++) {
        uint32_t cp;
        int len = utf8_next(s + i, n - i, &cp);
        if (len == 0) {   /* a byte that is not UTF-8: punctuation-like, kept as the byte */
            cp = 0x110000 + s[i];
            len = 1;
        }
        w->cp[m] = cp;
        w->off[m] = (int32_t)i;
        w->cls[m] = (uint8_t)rt_uni_class(cp);
        i += (size_t)len;
    }
    w->off[m] = (int32_t)n;
    /* SmolLM first isolates each digit, then runs GPT-2's regex between them. */
    for (int64_t a = 0; a < m;) {
        int64_t b = m;
        if (t->pre == PRE_SMOLLM) {
            if (w->cls[a] == C_N) {
                if (!bytelevel_word(t, w, s + w->off[a], (size_t)(w->off[a + 1] - w->off[a]), out))
                    return false;
                a++;
                continue;
            }
            b = a;
            while (b < m && w->cls[b] != C_N)
                b++;
        }
        const uint32_t *c = w->cp + a;
        const uint8_t *cls = w->cls + a;
        int64_t len = b - a;
        for (int64_t i = 0; i < len;) {
            int64_t j = t->pre == PRE_LLAMA3   ? pre_llama3(c, cls, i, len, 3)
                        : t->pre == PRE_QWEN2 ? pre_llama3(c, cls, i, len, 1)
                                              : pre_gpt2(c, cls, i, len);
            if (!bytelevel_word(t, w, s + w->off[a + i], (size_t)(w->off[a + j] - w->off[a + i]), out))
                return false;
            i = j;
        }
        a = b;
    }
    return true;
}

static bool encode_spm(const RtTokenizer *t, Work *w, const char *s, size_t n, bool prefix, Ids *out)
{
    w->word.n = 0;
    if (!buf_reserve(&w->word, 3 * n + 4))
        return false;
    if (prefix)
        buf_put(&w->word, "\xe2\x96\x81", 3);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            buf_put(&w->word, "\xe2\x96\x81", 3);
        else
            buf_put(&w->word, s + i, 1);
    }
    return bpe_word(t, w, NULL, out);
}

/* The longest special token at s, or -1.  Control (and unknown) tokens
 * count only with parse_special; user-defined ones always. */
static int32_t match_special(const RtTokenizer *t, const char *s, size_t n, bool parse_special, size_t *len)
{
    unsigned b = (unsigned char)s[0];
    for (int i = t->special_at[b]; i < t->special_at[b + 1]; i++) {
        const Token *k = &t->tok[t->special[i]];
        if (!parse_special && k->type != TT_USER)
            continue;
        if (k->text_len <= n && memcmp(t->arena + k->text, s, k->text_len) == 0) {
            *len = k->text_len;
            return t->special[i];
        }
    }
    return -1;
}

int32_t *rt_tok_encode(const RtTokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                       int64_t *n, RtErr *err)
{
    *n = 0;
    if (!text && len > 0) {
        rt_fail(err, "tokenizer: no text");
        return NULL;
    }
    if (len > (size_t)INT32_MAX / 4) {
        rt_fail(err, "tokenizer: text of %zu bytes is too long", len);
        return NULL;
    }
    Work w = {0};
    Ids out = {0};
    bool ok = true;
    if (add_bos && t->add_bos && t->bos >= 0)
        ok = ids_push(&out, t->bos);
    size_t frag = 0;
    bool after_control = true;   /* SentencePiece's leading "▁": at the start and after control tokens */
    for (size_t p = 0; ok && p <= len;) {
        size_t slen = 0;
        int32_t sid = p < len && t->nspecial ? match_special(t, text + p, len - p, parse_special, &slen) : -1;
        if (sid < 0 && p < len) {
            p++;
            continue;
        }
        /* sentencepiece gives text that starts with a user-defined token its
         * leading "▁" all the same, as a token of its own */
        bool lone_prefix = p == 0 && sid >= 0 && t->kind == KIND_SPM && t->spm_prefix == PREFIX_SPM &&
                           t->tok[sid].type == TT_USER;
        if (p > frag || lone_prefix) {
            if (t->kind == KIND_SPM) {
                bool space = p > frag && text[frag] == ' ';
                bool prefix = t->spm_prefix == PREFIX_SPM ? after_control
                              : t->spm_prefix == PREFIX_EVERY ? true
                              : t->spm_prefix == PREFIX_METASPACE ? !space
                              : t->spm_prefix == PREFIX_FIRST ? frag == 0 && !space
                                                              : false;
                ok = encode_spm(t, &w, text + frag, p - frag, prefix, &out);
            } else {
                ok = encode_bytelevel(t, &w, (const unsigned char *)text + frag, p - frag, &out);
            }
        }
        if (sid < 0)
            break;
        ok = ok && ids_push(&out, sid);
        after_control = t->tok[sid].type != TT_USER;
        p += slen;
        frag = p;
    }
    work_free(&w);
    if (!ok) {
        free(out.p);
        rt_fail(err, "tokenizer: out of memory");
        return NULL;
    }
    if (!out.p && !(out.p = malloc(sizeof *out.p))) {
        rt_fail(err, "tokenizer: out of memory");
        return NULL;
    }
    *n = out.n;
    return out.p;
}

/* ---- chat prompts ---- */

char *rt_tok_chat_prompt(const RtTokenizer *t, const char *system, const char *user, RtErr *err)
{
    Buf b = {0};
    bool ok = true;
    if (!user)
        user = "";
    switch (t->chat) {
    case RT_CHAT_CHATML:
        if (!system)
            system = t->default_system;
        if (system)
            ok = buf_puts(&b, "<|im_start|>system\n") && buf_puts(&b, system) && buf_puts(&b, "<|im_end|>\n");
        ok = ok && buf_puts(&b, "<|im_start|>user\n") && buf_puts(&b, user) &&
             buf_puts(&b, "<|im_end|>\n<|im_start|>assistant\n");
        break;
    case RT_CHAT_LLAMA3:
        /* <|begin_of_text|> is the BOS: in the text only when encoding will not add it */
        if (!rt_tok_adds_bos(t))
            ok = buf_puts(&b, "<|begin_of_text|>");
        if (system)
            ok = ok && buf_puts(&b, "<|start_header_id|>system<|end_header_id|>\n\n") && buf_puts(&b, system) &&
                 buf_puts(&b, "<|eot_id|>");
        ok = ok && buf_puts(&b, "<|start_header_id|>user<|end_header_id|>\n\n") && buf_puts(&b, user) &&
             buf_puts(&b, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    default:
        rt_fail(err, "tokenizer: the model has no chat template this runtime knows (ChatML or Llama 3)");
        return NULL;
    }
    if (!ok) {
        free(b.p);
        rt_fail(err, "tokenizer: out of memory");
        return NULL;
    }
    return b.p;
}

/* ---- streaming UTF-8 ---- */

/* How the bytes at s (n available) begin: the length of a complete valid
 * sequence (> 0), 0 if they are a valid but unfinished prefix, or -k when the
 * first k bytes are an invalid (maximal) prefix to replace with U+FFFD. */
static int utf8_classify(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    int len;
    unsigned lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0;
        unsigned lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (s[i] < lo_i || s[i] > hi_i)
            return -i;
    }
    return len;
}

size_t rt_utf8_stream(RtUtf8Stream *st, const char *piece, size_t len, char *out, size_t cap)
{
    unsigned char buf[16];
    size_t w = 0;
    int np = st->npending > 0 && st->npending < 4 ? st->npending : 0;
    /* Work on pending + piece without copying the piece: a small window
     * over the join of the two. */
    size_t total = (size_t)np + len, i = 0;
    while (i < total) {
        size_t k = 0;
        for (; k < 4 && i + k < total; k++)
            buf[k] = i + k < (size_t)np ? (unsigned char)st->pending[i + k] : (unsigned char)piece[i + k - (size_t)np];
        int r = utf8_classify(buf, k);
        if (r == 0) {   /* unfinished: hold back */
            for (size_t q = 0; q < k; q++)
                st->pending[q] = (char)buf[q];
            st->npending = (int)k;
            return w;
        }
        size_t used = r > 0 ? (size_t)r : (size_t)-r;
        const char *emit = r > 0 ? (const char *)buf : "\xef\xbf\xbd";
        size_t elen = r > 0 ? used : 3;
        if (w + elen > cap)
            break;   /* out is full: the rest is dropped (see RT_UTF8_STREAM_MAX) */
        memcpy(out + w, emit, elen);
        w += elen;
        i += used;
    }
    st->npending = 0;
    return w;
}

size_t rt_utf8_flush(RtUtf8Stream *st, char *out, size_t cap)
{
    size_t w = 0;
    if (st->npending > 0 && cap >= 3) {
        memcpy(out, "\xef\xbf\xbd", 3);
        w = 3;
    }
    st->npending = 0;
    return w;
}
