/* runtime/safetensors.c — open, validate and mmap one .safetensors file.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON (an
 * object, optionally padded with 0x20), then the data region, which the
 * tensors' data_offsets tile exactly.  rt_st_open checks the whole format
 * before handing anything out, so a file it accepts is safe to index: every
 * RtTensor's [data, data + nbytes) lies inside the map, the tensors cover the
 * data region without gap or overlap, and numel * dtype size neither
 * overflows nor disagrees with the byte count.  Every rejection names the
 * file and the fault.
 *
 * Ownership: one RtSafetensors owns the map, the path, a single block of
 * NUL-terminated names (tensor names, metadata keys and values) and the
 * tensor array; RtTensor pointers stay valid until rt_st_close.  Tensors are
 * kept in data order (by offset); a second array sorted by name serves
 * rt_st_find by binary search. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/runtime.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [RT_F64] = {"F64", 8},   [RT_F32] = {"F32", 4},   [RT_F16] = {"F16", 2},
    [RT_BF16] = {"BF16", 2}, [RT_I64] = {"I64", 8},   [RT_I32] = {"I32", 4},
    [RT_I16] = {"I16", 2},   [RT_I8] = {"I8", 1},     [RT_U8] = {"U8", 1},
    [RT_BOOL] = {"BOOL", 1}, [RT_F8_E4M3] = {"F8_E4M3", 1},
    [RT_F8_E5M2] = {"F8_E5M2", 1},
    [RT_Q8_0] = {"Q8_0", 0}, [RT_Q4_0] = {"Q4_0", 0}, [RT_Q4_1] = {"Q4_1", 0},   /* GGUF blocks: never in safetensors */
};
_Static_assert(sizeof dtypes / sizeof dtypes[0] == RT_DTYPE_COUNT, "dtype table out of step with RtDType");

const char *rt_dtype_name(RtDType t)
{
    return (unsigned)t < RT_DTYPE_COUNT ? dtypes[t].name : "?";
}

size_t rt_dtype_size(RtDType t)
{
    return (unsigned)t < RT_DTYPE_COUNT ? dtypes[t].size : 0;
}

bool rt_dtype_block(RtDType t, int *values, int *bytes)
{
    static const int block_bytes[] = {[RT_Q8_0] = 34, [RT_Q4_0] = 18, [RT_Q4_1] = 20};
    if (t != RT_Q8_0 && t != RT_Q4_0 && t != RT_Q4_1)
        return false;
    *values = 32;
    *bytes = block_bytes[t];
    return true;
}

typedef struct StMeta {
    const char *key, *value;
} StMeta;

struct RtSafetensors {
    char *path;
    void *map;
    size_t map_size;
    char *strings;            /* every name, key and value, NUL-terminated */
    RtTensor *tensors;        /* in data order */
    const RtTensor **by_name; /* sorted by strcmp of name */
    int ntensors;
    StMeta *meta;             /* sorted by key */
    int nmeta;
};

/* ---- header text ----------------------------------------------------------- */

/* Offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), or -1 when all of s is well formed. */
static int64_t utf8_bad_offset(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf;   /* range of the second byte */
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            return (int64_t)i;
        }
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return (int64_t)i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return (int64_t)i;
        i += len;
    }
    return -1;
}

/* ---- one tensor entry ------------------------------------------------------ */

static bool parse_dtype(const char *path, const char *name, json_t *v, RtDType *out, RtErr *err)
{
    if (!json_is_string(v))
        return rt_fail(err, "%s: tensor '%s': dtype is not a string", path, name);
    const char *s = json_string_value(v);
    for (int t = 0; t < RT_DTYPE_COUNT; t++)
        if (dtypes[t].size && strcmp(s, dtypes[t].name) == 0) {
            *out = (RtDType)t;
            return true;
        }
    return rt_fail(err, "%s: tensor '%s': unknown dtype '%s'", path, name, s);
}

/* A JSON number that must be a non-negative integer. */
static bool parse_count(const char *path, const char *name, const char *what, json_t *v,
                        int64_t *out, RtErr *err)
{
    if (json_is_real(v)) {
        double r = json_real_value(v);
        char text[64];                 /* 2.0 must not print as "2" */
        bool whole = r > -1e15 && r < 1e15 && r == (double)(int64_t)r;
        snprintf(text, sizeof text, whole ? "%.1f" : "%g", r);
        return rt_fail(err, "%s: tensor '%s': %s %s is not an integer", path, name, what, text);
    }
    if (!json_is_integer(v))
        return rt_fail(err, "%s: tensor '%s': %s is not an integer", path, name, what);
    json_int_t i = json_integer_value(v);
    if (i < 0)
        return rt_fail(err, "%s: tensor '%s': %s %" JSON_INTEGER_FORMAT " is negative", path,
                       name, what, i);
    *out = (int64_t)i;
    return true;
}

/* shape: up to RT_MAX_RANK non-negative integers.  The product of the nonzero
 * dimensions must fit in int64 (so every stride does); any zero dimension
 * makes an empty tensor.  Also fills nbytes = numel * dtype size, checked. */
static bool parse_shape(const char *path, const char *name, json_t *v, RtTensor *t, RtErr *err)
{
    if (!json_is_array(v))
        return rt_fail(err, "%s: tensor '%s': shape is not an array", path, name);
    size_t rank = json_array_size(v);
    if (rank > RT_MAX_RANK)
        return rt_fail(err, "%s: tensor '%s': rank %zu exceeds the maximum of %d", path, name,
                       rank, RT_MAX_RANK);
    int64_t prod = 1;
    bool empty = false;
    t->rank = (int)rank;
    for (size_t i = 0; i < rank; i++) {
        int64_t d;
        if (!parse_count(path, name, "shape dimension", json_array_get(v, i), &d, err))
            return false;
        t->shape[i] = d;
        if (d == 0) {
            empty = true;
        } else if (prod > INT64_MAX / d) {
            return rt_fail(err, "%s: tensor '%s': shape product overflows int64", path, name);
        } else {
            prod *= d;
        }
    }
    t->numel = empty ? 0 : prod;
    size_t size = dtypes[t->dtype].size;
    if (t->numel > INT64_MAX / (int64_t)size)
        return rt_fail(err, "%s: tensor '%s': byte count of %" PRId64 " %s elements overflows",
                       path, name, t->numel, dtypes[t->dtype].name);
    t->nbytes = (size_t)t->numel * size;
    return true;
}

static bool parse_offsets(const char *path, const char *name, json_t *v, uint64_t off[2], RtErr *err)
{
    if (!json_is_array(v) || json_array_size(v) != 2)
        return rt_fail(err, "%s: tensor '%s': data_offsets is not a [begin, end] pair", path, name);
    for (int k = 0; k < 2; k++) {
        int64_t x;
        if (!parse_count(path, name, k ? "data_offsets end" : "data_offsets begin",
                         json_array_get(v, k), &x, err))
            return false;
        off[k] = (uint64_t)x;
    }
    if (off[0] > off[1])
        return rt_fail(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] are reversed",
                       path, name, off[0], off[1]);
    return true;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} and nothing else. */
static bool parse_tensor(const char *path, const char *name, json_t *v, RtTensor *t,
                         uint64_t off[2], RtErr *err)
{
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    if (!json_is_object(v))
        return rt_fail(err, "%s: tensor '%s': entry is not an object", path, name);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        bool known = false;
        for (int k = 0; k < 3; k++)
            known |= strcmp(key, fields[k]) == 0;
        if (!known)
            return rt_fail(err, "%s: tensor '%s': unknown field '%s'", path, name, key);
    }
    for (int k = 0; k < 3; k++)
        if (!json_object_get(v, fields[k]))
            return rt_fail(err, "%s: tensor '%s': missing field '%s'", path, name, fields[k]);

    if (!parse_dtype(path, name, json_object_get(v, "dtype"), &t->dtype, err) ||
        !parse_shape(path, name, json_object_get(v, "shape"), t, err) ||
        !parse_offsets(path, name, json_object_get(v, "data_offsets"), off, err))
        return false;
    if (off[1] - off[0] != (uint64_t)t->nbytes)
        return rt_fail(err, "%s: tensor '%s': data_offsets span %" PRIu64 " bytes but %" PRId64
                       " %s elements need %zu", path, name, off[1] - off[0], t->numel,
                       dtypes[t->dtype].name, t->nbytes);
    return true;
}

/* ---- the whole header ------------------------------------------------------ */

typedef struct Slot {         /* a tensor while its offsets are checked */
    RtTensor t;
    uint64_t begin, end;
} Slot;

static int slot_cmp(const void *a, const void *b)
{
    const Slot *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

static int tensor_ptr_cmp(const void *a, const void *b)
{
    const RtTensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int meta_cmp(const void *a, const void *b)
{
    return strcmp(((const StMeta *)a)->key, ((const StMeta *)b)->key);
}

static bool check_metadata(const char *path, json_t *meta, RtErr *err)
{
    if (!json_is_object(meta))
        return rt_fail(err, "%s: __metadata__ is not an object", path);
    const char *key;
    json_t *val;
    json_object_foreach(meta, key, val)
        if (!json_is_string(val))
            return rt_fail(err, "%s: __metadata__ value for '%s' is not a string", path, key);
    return true;
}

/* Copy s into the string block at *cursor; return where it went. */
static const char *stash(char **cursor, const char *s)
{
    size_t n = strlen(s) + 1;
    char *at = *cursor;
    memcpy(at, s, n);
    *cursor += n;
    return at;
}

/* Parse the header object into st (tensors, metadata) and check the offsets
 * against data_len.  data is the start of the data region in the map. */
static bool load_header(RtSafetensors *st, json_t *root, const unsigned char *data,
                        uint64_t data_len, RtErr *err)
{
    const char *path = st->path;
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta && !check_metadata(path, meta, err))
        return false;

    size_t nt = json_object_size(root) - (meta != NULL);
    if (nt > RT_MAX_TENSORS)
        return rt_fail(err, "%s: %zu tensors exceed the maximum of %u", path, nt, RT_MAX_TENSORS);
    size_t nm = meta ? json_object_size(meta) : 0;

    /* one block for every string we keep */
    size_t bytes = 1;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
        bytes += strlen(key) + 1;
    if (meta)
        json_object_foreach(meta, key, val)
            bytes += strlen(key) + strlen(json_string_value(val)) + 2;
    st->strings = malloc(bytes);
    Slot *slots = calloc(nt ? nt : 1, sizeof *slots);
    st->meta = calloc(nm ? nm : 1, sizeof *st->meta);
    if (!st->strings || !slots || !st->meta) {
        free(slots);
        return rt_fail(err, "%s: out of memory for a header of %zu tensors", path, nt);
    }
    char *cursor = st->strings;

    bool ok = false;
    size_t n = 0;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        Slot *s = &slots[n++];
        uint64_t off[2] = {0, 0};
        if (!parse_tensor(path, key, val, &s->t, off, err))
            goto done;
        s->t.name = stash(&cursor, key);
        s->t.file = st->path;
        s->begin = off[0];
        s->end = off[1];
    }
    if (meta) {
        json_object_foreach(meta, key, val) {
            StMeta *m = &st->meta[st->nmeta++];
            m->key = stash(&cursor, key);
            m->value = stash(&cursor, json_string_value(val));
        }
        qsort(st->meta, (size_t)st->nmeta, sizeof *st->meta, meta_cmp);
    }

    /* the offsets tile [0, data_len) exactly */
    qsort(slots, nt, sizeof *slots, slot_cmp);
    uint64_t at = 0;
    for (size_t i = 0; i < nt; i++) {
        const Slot *s = &slots[i], *prev = i ? &slots[i - 1] : NULL;
        if (!prev && s->begin != 0) {
            rt_fail(err, "%s: first tensor '%s' begins at offset %" PRIu64 ", not 0", path,
                    s->t.name, s->begin);
            goto done;
        }
        if (prev && s->begin < at) {
            rt_fail(err, "%s: tensor '%s' [%" PRIu64 ", %" PRIu64 ") overlaps tensor '%s' [%"
                    PRIu64 ", %" PRIu64 ")", path, s->t.name, s->begin, s->end, prev->t.name,
                    prev->begin, prev->end);
            goto done;
        }
        if (prev && s->begin > at) {
            rt_fail(err, "%s: gap of %" PRIu64 " bytes between tensor '%s' (ends at %" PRIu64
                    ") and tensor '%s' (begins at %" PRIu64 ")", path, s->begin - at,
                    prev->t.name, at, s->t.name, s->begin);
            goto done;
        }
        at = s->end;
    }
    if (at > data_len) {
        rt_fail(err, "%s: tensor '%s' ends at offset %" PRIu64 ", past the data length %" PRIu64,
                path, slots[nt - 1].t.name, at, data_len);
        goto done;
    }
    if (at < data_len) {
        rt_fail(err, "%s: %" PRIu64 " trailing bytes after the last tensor (data length %" PRIu64
                ", tensors end at %" PRIu64 ")", path, data_len - at, data_len, at);
        goto done;
    }

    st->tensors = calloc(nt ? nt : 1, sizeof *st->tensors);
    st->by_name = calloc(nt ? nt : 1, sizeof *st->by_name);
    if (!st->tensors || !st->by_name) {
        rt_fail(err, "%s: out of memory for %zu tensors", path, nt);
        goto done;
    }
    for (size_t i = 0; i < nt; i++) {
        st->tensors[i] = slots[i].t;
        st->tensors[i].data = data + slots[i].begin;
        st->by_name[i] = &st->tensors[i];
    }
    st->ntensors = (int)nt;
    qsort(st->by_name, nt, sizeof *st->by_name, tensor_ptr_cmp);
    ok = true;
done:
    free(slots);
    return ok;
}

/* Header bytes h[0..n): UTF-8, one JSON object starting at byte 0, then only
 * 0x20 padding. */
static bool parse_header(RtSafetensors *st, const unsigned char *h, size_t n,
                         uint64_t data_len, RtErr *err)
{
    const char *path = st->path;
    int64_t bad = utf8_bad_offset(h, n);
    if (bad >= 0)
        return rt_fail(err, "%s: header is not valid UTF-8 (byte %" PRId64 " of the header)",
                       path, bad);
    size_t len = n;
    while (len > 0 && h[len - 1] == ' ')
        len--;

    json_error_t je;
    json_t *root = json_loadb((const char *)h, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root)
        return json_error_code(&je) == json_error_out_of_memory || !je.text[0]
                   ? rt_fail(err, "%s: out of memory reading the header", path)
                   : rt_fail(err, "%s: header is not valid JSON: %s (byte %d of the header)", path, je.text,
                             je.position);
    bool ok;
    if (!json_is_object(root))
        ok = rt_fail(err, "%s: header's top level is not a JSON object", path);
    else if (h[0] != '{')
        ok = rt_fail(err, "%s: header does not start with '{'", path);
    else if (h[len - 1] != '}')
        ok = rt_fail(err, "%s: header has bytes other than 0x20 padding after the JSON object",
                     path);
    else
        ok = load_header(st, root, h + n, data_len, err);
    json_decref(root);
    return ok;
}

/* ---- open / close / look up ------------------------------------------------ */

bool rt_st_open(const char *path, RtSafetensors **out, RtErr *err)
{
    *out = NULL;
    RtSafetensors *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(path))) {
        free(st);
        return rt_fail(err, "%s: out of memory", path);
    }

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rt_fail(err, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rt_fail(err, "%s: cannot stat: %s", path, strerror(errno));
        goto fail_fd;
    }
    if (!S_ISREG(sb.st_mode)) {
        rt_fail(err, "%s: not a regular file", path);
        goto fail_fd;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        rt_fail(err, "%s: file is %" PRIu64 " bytes, too short for the 8-byte header length",
                path, size);
        goto fail_fd;
    }
    unsigned char lenbuf[8];
    ssize_t got = pread(fd, lenbuf, 8, 0);
    if (got != 8) {
        rt_fail(err, "%s: cannot read the header length: %s", path,
                got < 0 ? strerror(errno) : "short read");
        goto fail_fd;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | lenbuf[i];
    if (n > size - 8) {                      /* 8 + n > size, without overflow */
        rt_fail(err, "%s: header length %" PRIu64 " exceeds file size %" PRIu64, path, n, size);
        goto fail_fd;
    }
    if (n > RT_MAX_HEADER_BYTES) {
        rt_fail(err, "%s: header length %" PRIu64 " exceeds the cap of %u bytes", path, n,
                RT_MAX_HEADER_BYTES);
        goto fail_fd;
    }
    if (n == 0) {
        rt_fail(err, "%s: header is empty (header length 0)", path);
        goto fail_fd;
    }
    if (size > SIZE_MAX) {
        rt_fail(err, "%s: file of %" PRIu64 " bytes is too large to map", path, size);
        goto fail_fd;
    }
    st->map_size = (size_t)size;
    st->map = mmap(NULL, st->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (st->map == MAP_FAILED) {
        st->map = NULL;
        rt_fail(err, "%s: cannot mmap %" PRIu64 " bytes: %s", path, size, strerror(errno));
        goto fail_fd;
    }
    close(fd);
    if (!parse_header(st, (const unsigned char *)st->map + 8, (size_t)n, size - 8 - n, err))
        goto fail;
    *out = st;
    return true;

fail_fd:
    close(fd);
fail:
    rt_st_close(st);
    return false;
}

void rt_st_close(RtSafetensors *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, st->map_size);
    free(st->tensors);
    free(st->by_name);
    free(st->meta);
    free(st->strings);
    free(st->path);
    free(st);
}

int rt_st_count(const RtSafetensors *st)
{
    return st->ntensors;
}

const RtTensor *rt_st_tensor(const RtSafetensors *st, int i)
{
    return i >= 0 && i < st->ntensors ? &st->tensors[i] : NULL;
}

const RtTensor *rt_st_find(const RtSafetensors *st, const char *name)
{
    int lo = 0, hi = st->ntensors;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->by_name[mid]->name);
        if (c == 0)
            return st->by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *rt_st_metadata(const RtSafetensors *st, const char *key)
{
    int lo = 0, hi = st->nmeta;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(key, st->meta[mid].key);
        if (c == 0)
            return st->meta[mid].value;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
