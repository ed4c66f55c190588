/* runtime/gguf.c — open, validate and convert one GGUF file (v2 or v3).
 *
 * Layout (little-endian): "GGUF", version u32, tensor_count u64, kv_count
 * u64; kv_count entries (key string, value type u32, value); tensor_count
 * tensor infos (name string, n_dims u32, n_dims dims u64 with dims[0] the
 * fastest, ggml type u32, offset u64); padding to general.alignment
 * (default 32); the data section, where each tensor lies at its offset.  A
 * string is a u64 byte count and that many bytes; an array is an element
 * type u32, a count u64 and the elements.
 *
 * rt_gguf_open reads the whole header with a bounds-checked cursor before it
 * trusts any of it: every count, length and size is capped and checked
 * against the bytes the file has before anything is allocated for it,
 * arithmetic on file values is checked for overflow, and each tensor's
 * [offset, offset + size) must lie inside the data section.  Every rejection
 * is "<path>: <where>: <fault>", where says which part of the file.
 *
 * Then the file becomes a checkpoint.  For general.architecture "llama" the
 * tensors get Hugging Face names and llama.cpp's Q/K row permutation is
 * undone; for any file the shapes are reversed to [rows, cols] (HF order)
 * and quantized tensors are dequantized to f32 buffers this file owns.
 * F32/F16/BF16 tensors stay in the map unless their rows must be reordered
 * (or an f32/half is misaligned there), in which case they are copied.  The
 * llama metadata becomes a config.json-like RtConfig.  A file without
 * general.architecture (a vocabulary-only file) opens with its tensors under
 * their GGUF names and no config; other architectures are refused.
 *
 * Ownership: RtGguf owns the map, the metadata (keys and strings copied out
 * NUL-terminated; numbers read from the map), the tensors and their buffers,
 * and the config.  Everything lives until rt_gguf_close. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "runtime/quant.h"

#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct GgufKV {
    char *key;                    /* NUL-terminated copy */
    uint32_t type;                /* GGUF_* */
    uint32_t elem_type;           /* arrays: the elements' type */
    uint64_t n;                   /* arrays: the length */
    const unsigned char *raw;     /* numbers (a scalar or an array's elements), in the map */
    char *s;                      /* GGUF_STRING: NUL-terminated copy */
    size_t len;
    char **strs;                  /* arrays of strings: n + 1 pointers into one block; */
                                  /* element i is strs[i], of length strs[i+1] - strs[i] - 1 */
} GgufKV;

typedef struct GgufTensor {
    char *name;                   /* as in the file */
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];   /* ne[0] fastest; 1 past n_dims */
    int64_t numel;
    const RtGgmlInfo *type;
    uint64_t offset, nbytes;      /* within the data section */
} GgufTensor;

struct RtGguf {
    char *path;
    unsigned char *map;
    size_t map_size;
    GgufKV *kv;                   /* sorted by key */
    int64_t nkv;
    GgufTensor *ti;               /* in file order */
    int64_t nti;
    uint64_t alignment, data_start, data_size;
    RtTensor *tensors;            /* ti[i] as a checkpoint tensor */
    char **names;                 /* tensors[i].name */
    void **owned;                 /* tensors[i]'s buffer when not in the map */
    bool keep_blocks;             /* Q8_0/Q4_0/Q4_1 stay as blocks (the kernels read them) */
    const RtTensor **by_name;     /* sorted by name */
    RtConfig *config;             /* NULL without general.architecture */
};

static const char *const type_names[GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const uint64_t scalar_size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* ---- little-endian numbers ---------------------------------------------- */

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

typedef struct Num {
    bool is_int;                  /* an integer type or bool */
    bool fits;                    /* is_int and within int64 */
    int64_t i;
    double f;                     /* always set */
} Num;

/* The scalar of type t (not string or array) at p. */
static Num num_at(uint32_t t, const unsigned char *p)
{
    Num n = {.is_int = true, .fits = true};
    switch (t) {
    case GGUF_U8:
    case GGUF_BOOL: n.i = p[0]; break;
    case GGUF_I8: n.i = (int8_t)p[0]; break;
    case GGUF_U16: n.i = le16(p); break;
    case GGUF_I16: n.i = (int16_t)le16(p); break;
    case GGUF_U32: n.i = le32(p); break;
    case GGUF_I32: n.i = (int32_t)le32(p); break;
    case GGUF_I64: n.i = (int64_t)le64(p); break;
    case GGUF_U64: {
        uint64_t u = le64(p);
        n.fits = u <= INT64_MAX;
        n.i = n.fits ? (int64_t)u : 0;
        n.f = (double)u;
        return n;
    }
    case GGUF_F32: {
        uint32_t b = le32(p);
        float f;
        memcpy(&f, &b, sizeof f);
        return (Num){.f = f};
    }
    case GGUF_F64: {
        uint64_t b = le64(p);
        double f;
        memcpy(&f, &b, sizeof f);
        return (Num){.f = f};
    }
    default: return (Num){.f = 0};
    }
    n.f = (double)n.i;
    return n;
}

static bool is_int_type(uint32_t t)
{
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 ||
           t == GGUF_I32 || t == GGUF_U64 || t == GGUF_I64;
}

/* ---- the cursor ------------------------------------------------------------ */

typedef struct Reader {
    const char *path;
    const unsigned char *p;
    uint64_t size, at;
    RtErr *err;
    enum { IN_HEADER, IN_METADATA, IN_TENSORS } section;
    int64_t index;                /* entry being read */
    const char *name;             /* its key or name once read */
} Reader;

/* "<path>: <where>: <fault>", where is "header", "metadata entry 3" or
 * "metadata 'general.name'", "tensor info 0" or "tensor 'output.weight'". */
static bool fault(const Reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fault(const Reader *r, const char *fmt, ...)
{
    static const char *const entry[] = {"header", "metadata entry", "tensor info"};
    static const char *const named[] = {"header", "metadata", "tensor"};
    char what[1024], where[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r->section == IN_HEADER)
        snprintf(where, sizeof where, "header");
    else if (r->name)
        snprintf(where, sizeof where, "%s '%s'", named[r->section], r->name);
    else
        snprintf(where, sizeof where, "%s %" PRId64, entry[r->section], r->index);
    return rt_fail(r->err, "%s: %s: %s", r->path, where, what);
}

static bool need(const Reader *r, uint64_t n)
{
    if (n <= r->size - r->at)
        return true;
    return fault(r, "truncated: needs %" PRIu64 " byte%s at offset %" PRIu64 ", the file has %" PRIu64, n,
                 n == 1 ? "" : "s", r->at, r->size);
}

static bool rd_u32(Reader *r, uint32_t *v)
{
    if (!need(r, 4))
        return false;
    *v = le32(r->p + r->at);
    r->at += 4;
    return true;
}

static bool rd_u64(Reader *r, uint64_t *v)
{
    if (!need(r, 8))
        return false;
    *v = le64(r->p + r->at);
    r->at += 8;
    return true;
}

/* A string: *s points into the map, *len bytes, not NUL-terminated. */
static bool rd_str(Reader *r, const char *what, const unsigned char **s, uint64_t *len)
{
    if (!rd_u64(r, len))
        return false;
    if (*len > RT_GGUF_MAX_STRING)
        return fault(r, "%s length %" PRIu64 " exceeds the maximum of %u", what, *len, RT_GGUF_MAX_STRING);
    if (!need(r, *len))
        return false;
    *s = r->p + r->at;
    r->at += *len;
    return true;
}

static char *copy_str(const unsigned char *s, uint64_t len)
{
    char *c = malloc((size_t)len + 1);
    if (c) {
        memcpy(c, s, (size_t)len);
        c[len] = '\0';
    }
    return c;
}

static bool out_of_memory(const Reader *r)
{
    return fault(r, "out of memory");
}

/* A name or key: non-empty, no NUL byte (it becomes a C string). */
static bool rd_name(Reader *r, const char *what, char **out)
{
    const unsigned char *s;
    uint64_t len;
    if (!rd_str(r, what, &s, &len))
        return false;
    if (len == 0)
        return fault(r, "empty %s", what);
    if (memchr(s, 0, (size_t)len))
        return fault(r, "%s contains a NUL byte", what);
    return (*out = copy_str(s, len)) ? true : out_of_memory(r);
}

/* ---- metadata ------------------------------------------------------------ */

/* Scalars of type t, n of them, at the cursor: bools must be 0 or 1. */
static bool rd_scalars(Reader *r, GgufKV *kv, uint32_t t, uint64_t n)
{
    uint64_t bytes = n * scalar_size[t];  /* n <= RT_GGUF_MAX_ARRAY: no overflow */
    if (!need(r, bytes))
        return false;
    kv->raw = r->p + r->at;
    for (uint64_t i = 0; t == GGUF_BOOL && i < n; i++) {
        if (kv->raw[i] <= 1)
            continue;
        if (kv->type == GGUF_ARRAY)
            return fault(r, "bool element %" PRIu64 " is %u, not 0 or 1", i, kv->raw[i]);
        return fault(r, "bool value %u is not 0 or 1", kv->raw[i]);
    }
    r->at += bytes;
    return true;
}

/* An array of n strings: validated in one pass, then copied into one block. */
static bool rd_str_array(Reader *r, GgufKV *kv, uint64_t n)
{
    if (!need(r, n * 8))            /* each string has at least its length */
        return false;
    uint64_t start = r->at, total = 0;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *s;
        uint64_t len;
        if (!rd_str(r, "string", &s, &len))
            return false;
        total += len + 1;           /* <= file size + n */
    }
    char **strs = malloc(((size_t)n + 1) * sizeof *strs);
    char *block = malloc(total ? (size_t)total : 1);
    if (!strs || !block) {
        free(strs);
        free(block);
        return out_of_memory(r);
    }
    kv->strs = strs;
    const unsigned char *p = r->p + start;
    char *at = block;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = le64(p);
        kv->strs[i] = at;
        memcpy(at, p + 8, (size_t)len);
        at[len] = '\0';
        at += len + 1;
        p += 8 + len;
    }
    kv->strs[n] = at;
    return true;
}

static bool rd_value(Reader *r, GgufKV *kv)
{
    if (!rd_u32(r, &kv->type))
        return false;
    if (kv->type >= GGUF_TYPE_COUNT)
        return fault(r, "unknown value type %u", kv->type);
    if (kv->type == GGUF_STRING) {
        const unsigned char *s;
        uint64_t len;
        if (!rd_str(r, "string", &s, &len))
            return false;
        kv->len = (size_t)len;
        return (kv->s = copy_str(s, len)) ? true : out_of_memory(r);
    }
    if (kv->type != GGUF_ARRAY)
        return rd_scalars(r, kv, kv->type, 1);
    if (!rd_u32(r, &kv->elem_type) || !rd_u64(r, &kv->n))
        return false;
    if (kv->elem_type == GGUF_ARRAY)
        return fault(r, "nested arrays are not supported");
    if (kv->elem_type >= GGUF_TYPE_COUNT)
        return fault(r, "unknown array element type %u", kv->elem_type);
    if (kv->n > RT_GGUF_MAX_ARRAY)
        return fault(r, "array length %" PRIu64 " exceeds the maximum of %u", kv->n, RT_GGUF_MAX_ARRAY);
    if (kv->elem_type == GGUF_STRING)
        return rd_str_array(r, kv, kv->n);
    return rd_scalars(r, kv, kv->elem_type, kv->n);
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const GgufKV *)a)->key, ((const GgufKV *)b)->key);
}

static const GgufKV *find_kv(const RtGguf *g, const char *key)
{
    int64_t lo = 0, hi = g ? g->nkv : 0;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, g->kv[mid].key);
        if (c == 0)
            return &g->kv[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* What a known key must hold. */
typedef enum { K_U32, K_STRING, K_INT, K_FLOAT, K_BOOL, K_STRINGS, K_F32S, K_I32S } KeyKind;

static const char *const kind_text[] = {
    [K_U32] = "u32", [K_STRING] = "a string", [K_INT] = "an integer", [K_FLOAT] = "f32 or f64",
    [K_BOOL] = "a bool", [K_STRINGS] = "an array of strings", [K_F32S] = "an array of f32",
    [K_I32S] = "an array of i32",
};

static const struct {
    const char *key;
    KeyKind kind;
} known_keys[] = {
    {"general.alignment", K_U32},
    {"general.architecture", K_STRING},
    {"llama.vocab_size", K_INT},
    {"llama.context_length", K_INT},
    {"llama.embedding_length", K_INT},
    {"llama.block_count", K_INT},
    {"llama.feed_forward_length", K_INT},
    {"llama.attention.head_count", K_INT},
    {"llama.attention.head_count_kv", K_INT},
    {"llama.attention.key_length", K_INT},
    {"llama.attention.value_length", K_INT},
    {"llama.rope.dimension_count", K_INT},
    {"llama.expert_count", K_INT},
    {"llama.expert_used_count", K_INT},
    {"llama.rope.freq_base", K_FLOAT},
    {"llama.attention.layer_norm_rms_epsilon", K_FLOAT},
    {"llama.rope.scaling.type", K_STRING},
    {"llama.rope.scaling.factor", K_FLOAT},
    {"tokenizer.ggml.model", K_STRING},
    {"tokenizer.ggml.pre", K_STRING},
    {"tokenizer.chat_template", K_STRING},
    {"tokenizer.ggml.tokens", K_STRINGS},
    {"tokenizer.ggml.scores", K_F32S},
    {"tokenizer.ggml.token_type", K_I32S},
    {"tokenizer.ggml.merges", K_STRINGS},
    {"tokenizer.ggml.add_bos_token", K_BOOL},
    {"tokenizer.ggml.add_eos_token", K_BOOL},
    {"tokenizer.ggml.add_space_prefix", K_BOOL},
};

static bool kind_ok(const GgufKV *kv, KeyKind k)
{
    switch (k) {
    case K_U32: return kv->type == GGUF_U32;
    case K_STRING: return kv->type == GGUF_STRING;
    case K_INT: return is_int_type(kv->type);
    case K_FLOAT: return kv->type == GGUF_F32 || kv->type == GGUF_F64;
    case K_BOOL: return kv->type == GGUF_BOOL;
    case K_STRINGS: return kv->type == GGUF_ARRAY && kv->elem_type == GGUF_STRING;
    case K_F32S: return kv->type == GGUF_ARRAY && kv->elem_type == GGUF_F32;
    case K_I32S: return kv->type == GGUF_ARRAY && kv->elem_type == GGUF_I32;
    }
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Known keys hold the type they must; the tokenizer's parallel arrays agree
 * in length with tokenizer.ggml.tokens. */
static bool check_known_keys(const RtGguf *g, RtErr *err)
{
    for (int64_t i = 0; i < g->nkv; i++) {
        const GgufKV *kv = &g->kv[i];
        int k = -1;
        for (size_t j = 0; j < sizeof known_keys / sizeof known_keys[0] && k < 0; j++)
            if (strcmp(kv->key, known_keys[j].key) == 0)
                k = (int)known_keys[j].kind;
        if (k < 0 && strncmp(kv->key, "tokenizer.", 10) == 0 && ends_with(kv->key, "_token_id"))
            k = K_INT;
        if (k < 0 || kind_ok(kv, (KeyKind)k))
            continue;
        if (kv->type == GGUF_ARRAY)
            return rt_fail(err, "%s: metadata '%s' is an array of %s, expected %s", g->path, kv->key,
                           type_names[kv->elem_type], kind_text[k]);
        return rt_fail(err, "%s: metadata '%s' is %s, expected %s", g->path, kv->key, type_names[kv->type],
                       kind_text[k]);
    }
    const GgufKV *tokens = find_kv(g, "tokenizer.ggml.tokens");
    static const char *const parallel[] = {"tokenizer.ggml.scores", "tokenizer.ggml.token_type"};
    for (int j = 0; j < 2 && tokens; j++) {
        const GgufKV *kv = find_kv(g, parallel[j]);
        if (kv && kv->n != tokens->n)
            return rt_fail(err, "%s: metadata '%s' has %" PRIu64 " entries but tokenizer.ggml.tokens has %" PRIu64,
                           g->path, kv->key, kv->n, tokens->n);
    }
    return true;
}

/* ---- tensor infos ---------------------------------------------------------- */

/* ", F32, F16, ...": the supported types, for messages (skip the first two bytes) */
static const char supported_types[] =
#define RT_GGML_NAME(name, num, block, bytes, fn) ", " #name
    RT_GGML_TYPES(RT_GGML_NAME)
#undef RT_GGML_NAME
    ;

static bool rd_tensor_info(Reader *r, GgufTensor *t, uint64_t alignment)
{
    if (!rd_name(r, "name", &t->name))
        return false;
    r->name = t->name;
    if (!rd_u32(r, &t->n_dims))
        return false;
    if (t->n_dims > GGUF_MAX_DIMS)
        return fault(r, "n_dims %u exceeds the maximum of %d", t->n_dims, GGUF_MAX_DIMS);
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (!rd_u64(r, &t->ne[d]))
            return false;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (t->ne[d] == 0)
            return fault(r, "dimension %u is 0", d);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] > INT64_MAX || numel > INT64_MAX / t->ne[d]) {
            char dims[200];
            size_t n = 0;
            for (uint32_t k = 0; k < t->n_dims; k++)
                n += (size_t)snprintf(dims + n, sizeof dims - n, "%s%" PRIu64, k ? ", " : "", t->ne[k]);
            return fault(r, "element count of dims [%s] overflows int64", dims);
        }
        numel *= t->ne[d];
    }
    t->numel = (int64_t)numel;

    uint32_t type;
    if (!rd_u32(r, &type))
        return false;
    if (!(t->type = rt_ggml_info(type))) {
        const char *name = rt_ggml_type_name(type);
        char named[32] = "";
        if (name)
            snprintf(named, sizeof named, " (%s)", name);
        return fault(r, "type %u%s is not supported (supported: %s)", type, named, supported_types + 2);
    }
    uint64_t row = t->ne[0], block = (uint64_t)t->type->block;
    if (row % block != 0)
        return fault(r, "row length %" PRIu64 " is not a multiple of the %s block size %" PRIu64, row,
                     t->type->name, block);
    uint64_t row_bytes = row / block * (uint64_t)t->type->block_bytes;   /* row <= 2^63: fits */
    if (__builtin_mul_overflow(row_bytes, numel / row, &t->nbytes))
        return fault(r, "size of %" PRIu64 " %s elements overflows", numel, t->type->name);

    if (!rd_u64(r, &t->offset))
        return false;
    if (t->offset % alignment != 0)
        return fault(r, "offset %" PRIu64 " is not a multiple of the alignment %" PRIu64, t->offset, alignment);
    return true;
}

static int tensor_name_cmp(const void *a, const void *b)
{
    const GgufTensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* ---- the whole header ------------------------------------------------------ */

/* nkv entries, then: sorted by key, no key twice, known keys well typed,
 * general.alignment valid. */
static bool read_metadata(RtGguf *g, Reader *r, uint64_t nkv)
{
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    if (!g->kv)
        return out_of_memory(r);
    r->section = IN_METADATA;
    for (uint64_t i = 0; i < nkv; i++) {
        r->index = (int64_t)i;
        r->name = NULL;
        GgufKV *kv = &g->kv[g->nkv++];
        if (!rd_name(r, "key", &kv->key))
            return false;
        r->name = kv->key;
        if (!rd_value(r, kv))
            return false;
    }
    qsort(g->kv, (size_t)g->nkv, sizeof *g->kv, kv_cmp);
    for (int64_t i = 1; i < g->nkv; i++)
        if (strcmp(g->kv[i - 1].key, g->kv[i].key) == 0)
            return rt_fail(r->err, "%s: duplicate metadata key '%s'", g->path, g->kv[i].key);
    if (!check_known_keys(g, r->err))
        return false;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const GgufKV *al = find_kv(g, "general.alignment");
    if (al) {
        uint32_t a = le32(al->raw);
        if (a == 0 || (a & (a - 1)) != 0 || a > GGUF_MAX_ALIGNMENT)
            return rt_fail(r->err, "%s: general.alignment %u is not a power of two in 1..%d", g->path, a,
                           GGUF_MAX_ALIGNMENT);
        g->alignment = a;
    }
    return true;
}

/* nti tensor infos, then: the data section placed, no name twice, every
 * tensor inside the data section. */
static bool read_tensor_infos(RtGguf *g, Reader *r, uint64_t nti)
{
    g->ti = calloc(nti ? (size_t)nti : 1, sizeof *g->ti);
    const GgufTensor **sorted = malloc((size_t)(nti ? nti : 1) * sizeof *sorted);
    bool ok = g->ti && sorted ? true : out_of_memory(r);
    r->section = IN_TENSORS;
    for (uint64_t i = 0; ok && i < nti; i++) {
        r->index = (int64_t)i;
        r->name = NULL;
        ok = rd_tensor_info(r, &g->ti[g->nti++], g->alignment);
    }
    if (ok) {
        for (int64_t i = 0; i < g->nti; i++)
            sorted[i] = &g->ti[i];
        qsort(sorted, (size_t)g->nti, sizeof *sorted, tensor_name_cmp);
        for (int64_t i = 1; ok && i < g->nti; i++)
            if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
                ok = rt_fail(r->err, "%s: duplicate tensor name '%s'", g->path, sorted[i]->name);
    }
    free(sorted);
    if (!ok)
        return false;
    g->data_start = (r->at + g->alignment - 1) / g->alignment * g->alignment;
    g->data_size = g->data_start < r->size ? r->size - g->data_start : 0;
    for (int64_t i = 0; i < g->nti; i++) {
        const GgufTensor *t = &g->ti[i];
        if (t->offset > g->data_size || t->nbytes > g->data_size - t->offset)
            return rt_fail(r->err, "%s: tensor '%s' offset %" PRIu64 " + size %" PRIu64
                           " is past the end of the data section (%" PRIu64 " bytes)", g->path, t->name, t->offset,
                           t->nbytes, g->data_size);
    }
    return true;
}

static bool parse(RtGguf *g, RtErr *err)
{
    Reader r = {.path = g->path, .p = g->map, .size = g->map_size, .err = err, .section = IN_HEADER};
    uint32_t version;
    uint64_t nti, nkv;
    if (!need(&r, 4))
        return false;
    if (memcmp(r.p, "GGUF", 4) != 0)
        return fault(&r, "bad magic %02x %02x %02x %02x (expected \"GGUF\")", r.p[0], r.p[1], r.p[2], r.p[3]);
    r.at = 4;
    if (!rd_u32(&r, &version))
        return false;
    if (version != 2 && version != 3) {
        uint32_t swapped = __builtin_bswap32(version);
        return fault(&r, "GGUF version %u is not supported (only 2 and 3)%s", version,
                     swapped == 2 || swapped == 3 ? "; the file looks big-endian" : "");
    }
    if (!rd_u64(&r, &nti) || !rd_u64(&r, &nkv))
        return false;
    if (nti > RT_MAX_TENSORS)
        return fault(&r, "tensor count %" PRIu64 " exceeds the maximum of %u", nti, RT_MAX_TENSORS);
    if (nkv > RT_GGUF_MAX_KV)
        return fault(&r, "metadata count %" PRIu64 " exceeds the maximum of %u", nkv, RT_GGUF_MAX_KV);
    /* each entry is at least a key length and a type (12 bytes); each tensor
     * info at least a name length, n_dims, type and offset (24 bytes) */
    if (nkv * 12 + nti * 24 > r.size - r.at)
        return fault(&r, "%" PRIu64 " metadata entries and %" PRIu64 " tensor infos need at least %" PRIu64
                     " bytes, the file has %" PRIu64 " after the header", nkv, nti, nkv * 12 + nti * 24,
                     r.size - r.at);
    return read_metadata(g, &r, nkv) && read_tensor_infos(g, &r, nti);
}

/* ---- llama: names, permutation, config ------------------------------------- */

static const struct {
    const char *gguf, *hf;
} global_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

/* blk.N.<gguf> -> model.layers.N.<hf>; heads: which head count permutes its rows */
enum { NO_PERMUTE, PERMUTE_Q, PERMUTE_K };
static const struct {
    const char *gguf, *hf;
    int permute;
} layer_names[] = {
    {"attn_norm.weight", "input_layernorm.weight", NO_PERMUTE},
    {"attn_q.weight", "self_attn.q_proj.weight", PERMUTE_Q},
    {"attn_k.weight", "self_attn.k_proj.weight", PERMUTE_K},
    {"attn_v.weight", "self_attn.v_proj.weight", NO_PERMUTE},
    {"attn_output.weight", "self_attn.o_proj.weight", NO_PERMUTE},
    {"ffn_norm.weight", "post_attention_layernorm.weight", NO_PERMUTE},
    {"ffn_gate.weight", "mlp.gate_proj.weight", NO_PERMUTE},
    {"ffn_up.weight", "mlp.up_proj.weight", NO_PERMUTE},
    {"ffn_down.weight", "mlp.down_proj.weight", NO_PERMUTE},
};

/* The Hugging Face name of a llama GGUF tensor (malloc'd), and which
 * permutation its rows carry.  Names it does not know are kept. */
static char *hf_name(const char *name, int *permute)
{
    *permute = NO_PERMUTE;
    for (size_t i = 0; i < sizeof global_names / sizeof global_names[0]; i++)
        if (strcmp(name, global_names[i].gguf) == 0)
            return strdup(global_names[i].hf);
    if (strncmp(name, "blk.", 4) == 0) {
        const char *digits = name + 4, *end = digits;
        while (*end >= '0' && *end <= '9')
            end++;
        if (end > digits && *end == '.') {
            for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
                if (strcmp(end + 1, layer_names[i].gguf) != 0)
                    continue;
                size_t n = strlen("model.layers.") + (size_t)(end - digits) + 1 + strlen(layer_names[i].hf) + 1;
                char *s = malloc(n);
                if (s)
                    snprintf(s, n, "model.layers.%.*s.%s", (int)(end - digits), digits, layer_names[i].hf);
                *permute = layer_names[i].permute;
                return s;
            }
        }
    }
    return strdup(name);
}

int64_t rt_gguf_unpermute_row(int64_t r, int64_t rows, int64_t n_head)
{
    int64_t hd = rows / n_head, half = hd / 2;
    int64_t h = r / hd, within = r % hd;
    return h * hd + 2 * (within % half) + within / half;
}

/* The llama hyperparameters the tensors and the config need. */
typedef struct Llama {
    int64_t n_vocab, n_embd, n_ff, n_layer, n_head, n_head_kv, head_dim, n_ctx;
    bool has_head_dim;
} Llama;

/* A count from key: absent -> def (or an error when def < 0); present ->
 * 1..INT32_MAX. */
static bool llama_count(const RtGguf *g, const char *key, int64_t def, int64_t *out, RtErr *err)
{
    const GgufKV *kv = find_kv(g, key);
    if (!kv) {
        if (def < 0)
            return rt_fail(err, "%s: metadata '%s' is missing", g->path, key);
        *out = def;
        return true;
    }
    Num n = num_at(kv->type, kv->raw);
    if (!n.fits || n.i < 1 || n.i > INT32_MAX)
        return rt_fail(err, "%s: metadata '%s' is %.17g, not a count in 1..%d", g->path, key, n.f, INT32_MAX);
    *out = n.i;
    return true;
}

static const GgufTensor *find_ti(const RtGguf *g, const char *name)
{
    for (int64_t i = 0; i < g->nti; i++)
        if (strcmp(g->ti[i].name, name) == 0)
            return &g->ti[i];
    return NULL;
}

static bool llama_params(const RtGguf *g, Llama *L, RtErr *err)
{
    if (find_ti(g, "rope_freqs.weight"))
        return rt_fail(err, "%s: tensor 'rope_freqs.weight' holds Llama 3 rope scaling factors; llama3 rope scaling "
                       "from GGUF is not supported yet", g->path);
    const char *scaling;
    size_t len;
    if (rt_gguf_str(g, "llama.rope.scaling.type", &scaling, &len) && strcmp(scaling, "none") != 0)
        return rt_fail(err, "%s: rope scaling '%s' (llama.rope.scaling.type) is not supported yet", g->path,
                       scaling);
    int64_t experts = 0;
    if (rt_gguf_int(g, "llama.expert_count", &experts) && experts > 0)
        return rt_fail(err, "%s: mixture of experts (llama.expert_count %" PRId64 ") is not supported", g->path,
                       experts);
    if (!llama_count(g, "llama.embedding_length", -1, &L->n_embd, err) ||
        !llama_count(g, "llama.feed_forward_length", -1, &L->n_ff, err) ||
        !llama_count(g, "llama.block_count", -1, &L->n_layer, err) ||
        !llama_count(g, "llama.attention.head_count", -1, &L->n_head, err) ||
        !llama_count(g, "llama.attention.head_count_kv", L->n_head, &L->n_head_kv, err) ||
        !llama_count(g, "llama.context_length", 0, &L->n_ctx, err))
        return false;
    if (L->n_head % L->n_head_kv != 0)
        return rt_fail(err, "%s: llama.attention.head_count %" PRId64 " is not a multiple of "
                       "llama.attention.head_count_kv %" PRId64, g->path, L->n_head, L->n_head_kv);
    L->has_head_dim = find_kv(g, "llama.attention.key_length") != NULL;
    if (!llama_count(g, "llama.attention.key_length", L->n_embd / L->n_head, &L->head_dim, err))
        return false;
    int64_t v;
    if (!llama_count(g, "llama.attention.value_length", L->head_dim, &v, err))
        return false;
    if (v != L->head_dim)
        return rt_fail(err, "%s: llama.attention.value_length %" PRId64 " differs from the key length %" PRId64
                       "; not supported", g->path, v, L->head_dim);
    if (!llama_count(g, "llama.rope.dimension_count", L->head_dim, &v, err))
        return false;
    if (v != L->head_dim)
        return rt_fail(err, "%s: llama.rope.dimension_count %" PRId64 " is not the head size %" PRId64
                       "; partial rotary embeddings are not supported", g->path, v, L->head_dim);
    const GgufKV *tokens = find_kv(g, "tokenizer.ggml.tokens");
    const GgufTensor *embd = find_ti(g, "token_embd.weight");
    if (find_kv(g, "llama.vocab_size"))
        return llama_count(g, "llama.vocab_size", -1, &L->n_vocab, err);
    if (tokens && tokens->n > 0)
        L->n_vocab = (int64_t)tokens->n;
    else if (embd && embd->n_dims == 2)
        L->n_vocab = (int64_t)embd->ne[1];
    else
        return rt_fail(err, "%s: no vocabulary size (no llama.vocab_size, tokenizer.ggml.tokens or "
                       "token_embd.weight)", g->path);
    return true;
}

/* Shortest decimal that reads back as the same f32 (single) or f64, always
 * with a '.' or exponent so that JSON keeps it a float. */
static void fmt_float(char *buf, size_t n, double v, bool single)
{
    for (int prec = single ? 6 : 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (single ? (float)back == (float)v : back == v)
            break;
    }
    if (!strpbrk(buf, ".eE"))
        strncat(buf, ".0", n - strlen(buf) - 1);
}

/* key's float value (def when absent) as JSON text. */
static bool json_float(const RtGguf *g, const char *key, double def, char *buf, size_t n, RtErr *err)
{
    const GgufKV *kv = find_kv(g, key);
    double v = kv ? num_at(kv->type, kv->raw).f : def;
    if (!isfinite(v) || v <= 0)
        return rt_fail(err, "%s: metadata '%s' is %g, not a positive number", g->path, key, v);
    fmt_float(buf, n, v, kv && kv->type == GGUF_F32);
    return true;
}

static bool llama_config(RtGguf *g, const Llama *L, RtErr *err)
{
    char json[2048], eps[64], theta[64];
    size_t n = 0;
    n += (size_t)snprintf(json + n, sizeof json - n,
                          "{\"model_type\": \"llama\", \"architectures\": [\"LlamaForCausalLM\"], "
                          "\"vocab_size\": %" PRId64 ", \"hidden_size\": %" PRId64 ", \"intermediate_size\": %" PRId64
                          ", \"num_hidden_layers\": %" PRId64 ", \"num_attention_heads\": %" PRId64
                          ", \"num_key_value_heads\": %" PRId64 ", \"tie_word_embeddings\": %s",
                          L->n_vocab, L->n_embd, L->n_ff, L->n_layer, L->n_head, L->n_head_kv,
                          find_ti(g, "output.weight") ? "false" : "true");
    if (L->has_head_dim)
        n += (size_t)snprintf(json + n, sizeof json - n, ", \"head_dim\": %" PRId64, L->head_dim);
    if (find_kv(g, "llama.attention.layer_norm_rms_epsilon")) {
        if (!json_float(g, "llama.attention.layer_norm_rms_epsilon", 0, eps, sizeof eps, err))
            return false;
        n += (size_t)snprintf(json + n, sizeof json - n, ", \"rms_norm_eps\": %s", eps);
    }
    if (!json_float(g, "llama.rope.freq_base", 10000.0, theta, sizeof theta, err))
        return false;
    n += (size_t)snprintf(json + n, sizeof json - n, ", \"rope_theta\": %s", theta);
    if (L->n_ctx > 0)
        n += (size_t)snprintf(json + n, sizeof json - n, ", \"max_position_embeddings\": %" PRId64, L->n_ctx);
    static const char *const ids[][2] = {{"tokenizer.ggml.bos_token_id", "bos_token_id"},
                                         {"tokenizer.ggml.eos_token_id", "eos_token_id"}};
    for (int i = 0; i < 2; i++) {
        int64_t id;
        if (rt_gguf_int(g, ids[i][0], &id))
            n += (size_t)snprintf(json + n, sizeof json - n, ", \"%s\": %" PRId64, ids[i][1], id);
    }
    snprintf(json + n, sizeof json - n, "}");
    return rt_config_parse(g->path, json, strlen(json), &g->config, err);
}

/* ---- tensors --------------------------------------------------------------- */

static const RtDType stored_dtype[] = {[RT_GGML_F32] = RT_F32, [RT_GGML_F16] = RT_F16, [RT_GGML_BF16] = RT_BF16,
                                       [RT_GGML_Q8_0] = RT_Q8_0, [RT_GGML_Q4_0] = RT_Q4_0, [RT_GGML_Q4_1] = RT_Q4_1};

/* Stored as is: plain types always, the block types the kernels read unless
 * the checkpoint was opened to dequantize. */
static bool kept_raw(const RtGguf *g, const RtGgmlInfo *type)
{
    if (!type->dequant)
        return true;
    return g->keep_blocks && (type->type == RT_GGML_Q8_0 || type->type == RT_GGML_Q4_0 || type->type == RT_GGML_Q4_1);
}

/* ti[i] as checkpoint tensor i, all but its data: name, HF shape, and the
 * head count its rows are permuted by (0: none). */
static bool describe_tensor(RtGguf *g, int64_t i, bool llama, const Llama *L, int64_t *n_head, RtErr *err)
{
    const GgufTensor *ti = &g->ti[i];
    RtTensor *t = &g->tensors[i];
    int permute = NO_PERMUTE;
    char *name = llama ? hf_name(ti->name, &permute) : strdup(ti->name);
    if (!(g->names[i] = name))
        return rt_fail(err, "%s: out of memory", g->path);
    t->name = name;
    t->file = g->path;
    t->rank = (int)ti->n_dims;
    for (uint32_t d = 0; d < ti->n_dims; d++)
        t->shape[d] = (int64_t)ti->ne[ti->n_dims - 1 - d];
    t->numel = ti->numel;
    *n_head = permute == PERMUTE_Q ? L->n_head : permute == PERMUTE_K ? L->n_head_kv : 0;
    if (*n_head) {
        int64_t rows = ti->numel / (int64_t)ti->ne[0];
        if (ti->n_dims != 2)
            return rt_fail(err, "%s: tensor '%s' has rank %u, expected 2", g->path, ti->name, ti->n_dims);
        if (rows % (2 * *n_head) != 0)
            return rt_fail(err, "%s: tensor '%s': %" PRId64 " rows do not split into %" PRId64
                           " heads of even size", g->path, ti->name, rows, *n_head);
    }
    return true;
}

/* Tensor i's data: in the map, or a buffer of ours (dequantized, rows
 * un-permuted by n_head, or realigned). */
static bool load_tensor(RtGguf *g, int64_t i, int64_t n_head, RtErr *err)
{
    const GgufTensor *ti = &g->ti[i];
    RtTensor *t = &g->tensors[i];
    const RtGgmlInfo *type = ti->type;
    const unsigned char *src = g->map + g->data_start + ti->offset;
    bool raw = kept_raw(g, type);
    if (raw) {
        t->dtype = stored_dtype[type->type];
        t->nbytes = (size_t)ti->nbytes;
        size_t align = rt_dtype_size(t->dtype) ? rt_dtype_size(t->dtype) : 1;   /* blocks: read unaligned */
        if (!n_head && (uintptr_t)src % align == 0) {
            t->data = src;
            return true;
        }
    } else {
        t->dtype = RT_F32;
        if (__builtin_mul_overflow((size_t)ti->numel, sizeof(float), &t->nbytes))
            return rt_fail(err, "%s: tensor '%s' is too large to dequantize", g->path, ti->name);
    }
    void *buf = NULL;
    if (posix_memalign(&buf, 64, t->nbytes) != 0)
        return rt_fail(err, "%s: out of memory for tensor '%s' (%zu bytes)", g->path, ti->name, t->nbytes);
    g->owned[i] = buf;
    t->data = buf;
    if (!n_head && !raw) {
        type->dequant(src, buf, ti->numel / type->block);
        return true;
    }
    int64_t cols = (int64_t)ti->ne[0], rows = ti->numel / cols;
    size_t src_row = (size_t)(cols / type->block * type->block_bytes), dst_row = t->nbytes / (size_t)rows;
    for (int64_t r = 0; r < rows; r++) {
        int64_t from = n_head ? rt_gguf_unpermute_row(r, rows, n_head) : r;
        unsigned char *dst = (unsigned char *)buf + (size_t)r * dst_row;
        if (!raw)
            type->dequant(src + (size_t)from * src_row, (float *)dst, cols / type->block);
        else
            memcpy(dst, src + (size_t)from * src_row, src_row);
    }
    return true;
}

static int tensor_ptr_cmp(const void *a, const void *b)
{
    const RtTensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static bool convert(RtGguf *g, RtErr *err)
{
    const char *arch = NULL;
    size_t len;
    Llama L = {0};
    bool llama = false;
    if (rt_gguf_str(g, "general.architecture", &arch, &len)) {
        if (strcmp(arch, "llama") != 0)
            return rt_fail(err, "%s: architecture '%s' is not supported (only llama)", g->path, arch);
        llama = true;
        if (!llama_params(g, &L, err) || !llama_config(g, &L, err))
            return false;
    }
    size_t n = (size_t)(g->nti ? g->nti : 1);
    g->tensors = calloc(n, sizeof *g->tensors);
    g->names = calloc(n, sizeof *g->names);
    g->owned = calloc(n, sizeof *g->owned);
    g->by_name = calloc(n, sizeof *g->by_name);
    int64_t *heads = calloc(n, sizeof *heads);
    bool ok = g->tensors && g->names && g->owned && g->by_name && heads
                  ? true
                  : rt_fail(err, "%s: out of memory for %" PRId64 " tensors", g->path, g->nti);
    for (int64_t i = 0; ok && i < g->nti; i++)
        ok = describe_tensor(g, i, llama, &L, &heads[i], err);
    if (ok) {                         /* two GGUF names must not become one */
        for (int64_t i = 0; i < g->nti; i++)
            g->by_name[i] = &g->tensors[i];
        qsort(g->by_name, (size_t)g->nti, sizeof *g->by_name, tensor_ptr_cmp);
        for (int64_t i = 1; ok && i < g->nti; i++) {
            if (strcmp(g->by_name[i - 1]->name, g->by_name[i]->name) != 0)
                continue;
            const char *a = g->ti[g->by_name[i - 1] - g->tensors].name, *b = g->ti[g->by_name[i] - g->tensors].name;
            if (strcmp(a, b) > 0) {
                const char *s = a;
                a = b;
                b = s;
            }
            ok = rt_fail(err, "%s: tensors '%s' and '%s' both become '%s'", g->path, a, b, g->by_name[i]->name);
        }
    }
    for (int64_t i = 0; ok && i < g->nti; i++)
        ok = load_tensor(g, i, heads[i], err);
    free(heads);
    return ok;
}

/* ---- open / close ---------------------------------------------------------- */

bool rt_gguf_open(const char *path, RtGguf **out, RtErr *err)
{
    return rt_gguf_open_opts(path, true, out, err);
}

bool rt_gguf_open_opts(const char *path, bool dequantize, RtGguf **out, RtErr *err)
{
    *out = NULL;
    RtGguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return rt_fail(err, "%s: out of memory", path);
    }
    g->keep_blocks = !dequantize;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    bool ok = false;
    if (fd < 0) {
        rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    } else if (fstat(fd, &sb) != 0) {
        rt_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        rt_fail(err, "%s: not a regular file", path);
    } else if ((uint64_t)sb.st_size > SIZE_MAX) {
        rt_fail(err, "%s: file of %lld bytes is too large to map", path, (long long)sb.st_size);
    } else {
        g->map_size = (size_t)sb.st_size;
        void *m = g->map_size ? mmap(NULL, g->map_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
        if (m == MAP_FAILED) {
            g->map_size = 0;
            rt_fail(err, "%s: cannot mmap %lld bytes: %s", path, (long long)sb.st_size, strerror(errno));
        } else {
            g->map = m;
            ok = true;
        }
    }
    if (fd >= 0)
        close(fd);
    if (ok)
        ok = parse(g, err) && convert(g, err);
    if (!ok) {
        rt_gguf_close(g);
        return false;
    }
    *out = g;
    return true;
}

void rt_gguf_close(RtGguf *g)
{
    if (!g)
        return;
    for (int64_t i = 0; i < g->nkv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].s);
        if (g->kv[i].strs)
            free(g->kv[i].strs[0]);
        free(g->kv[i].strs);
    }
    free(g->kv);
    for (int64_t i = 0; i < g->nti; i++) {
        free(g->ti[i].name);
        if (g->names)
            free(g->names[i]);
        if (g->owned)
            free(g->owned[i]);
    }
    free(g->ti);
    free(g->tensors);
    free(g->names);
    free(g->owned);
    free(g->by_name);
    rt_config_free(g->config);
    if (g->map)
        munmap(g->map, g->map_size);
    free(g->path);
    free(g);
}

int rt_gguf_count(const RtGguf *g)
{
    return (int)g->nti;
}

const RtTensor *rt_gguf_tensor(const RtGguf *g, int i)
{
    return i >= 0 && i < g->nti ? g->by_name[i] : NULL;
}

const RtConfig *rt_gguf_config(const RtGguf *g)
{
    return g->config;
}

/* ---- metadata accessors ---------------------------------------------------- */

bool rt_gguf_str(const RtGguf *g, const char *key, const char **s, size_t *len)
{
    const GgufKV *kv = find_kv(g, key);
    if (!kv || kv->type != GGUF_STRING)
        return false;
    *s = kv->s;
    if (len)
        *len = kv->len;
    return true;
}

bool rt_gguf_int(const RtGguf *g, const char *key, int64_t *v)
{
    const GgufKV *kv = find_kv(g, key);
    if (!kv || !(is_int_type(kv->type) || kv->type == GGUF_BOOL))
        return false;
    Num n = num_at(kv->type, kv->raw);
    if (!n.fits)
        return false;
    *v = n.i;
    return true;
}

bool rt_gguf_float(const RtGguf *g, const char *key, double *v)
{
    const GgufKV *kv = find_kv(g, key);
    if (!kv || !(is_int_type(kv->type) || kv->type == GGUF_F32 || kv->type == GGUF_F64))
        return false;
    *v = num_at(kv->type, kv->raw).f;
    return true;
}

int64_t rt_gguf_array(const RtGguf *g, const char *key, int *elem_type)
{
    const GgufKV *kv = find_kv(g, key);
    if (!kv || kv->type != GGUF_ARRAY)
        return -1;
    if (elem_type)
        *elem_type = (int)kv->elem_type;
    return (int64_t)kv->n;
}

const char *rt_gguf_array_str(const RtGguf *g, const char *key, int64_t i, size_t *len)
{
    const GgufKV *kv = find_kv(g, key);
    if (!kv || kv->type != GGUF_ARRAY || kv->elem_type != GGUF_STRING || i < 0 || (uint64_t)i >= kv->n)
        return NULL;
    if (len)
        *len = (size_t)(kv->strs[i + 1] - kv->strs[i] - 1);
    return kv->strs[i];
}

bool rt_gguf_array_num(const RtGguf *g, const char *key, int64_t i, double *v)
{
    const GgufKV *kv = find_kv(g, key);
    if (!kv || kv->type != GGUF_ARRAY || kv->elem_type == GGUF_STRING || i < 0 || (uint64_t)i >= kv->n)
        return false;
    *v = num_at(kv->elem_type, kv->raw + (uint64_t)i * scalar_size[kv->elem_type]).f;
    return true;
}
