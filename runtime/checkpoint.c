/* runtime/checkpoint.c — a model's weights: one .safetensors file or a
 * Hugging Face directory of them.
 *
 * A directory is read through model.safetensors.index.json when it has one
 * ({"weight_map": {tensor: file}, "metadata": {...}}): each file it names is
 * opened once, every tensor it lists must be in the file it names and every
 * tensor of those files must be listed.  The index is treated as hostile: a
 * file name must be a plain name inside the directory (no '/', not "." or
 * "..").  Without an index every *.safetensors in the directory is opened, in
 * name order.  Either way no tensor name may appear in two files.
 *
 * A single file that starts with the GGUF magic (or is named *.gguf) is read
 * as GGUF instead (runtime/gguf.c): its tensors under Hugging Face names, its
 * config from its metadata.
 *
 * The checkpoint owns its RtSafetensors (or RtGguf); RtTensor pointers stay
 * valid until rt_ckpt_close.  Tensors are served sorted by name (so the order
 * does not depend on how the weights were sharded) and found by binary
 * search. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/internal.h"

struct RtCheckpoint {
    RtSafetensors **files;
    int nfiles;
    const RtTensor **by_name;  /* every tensor of every file, sorted by name */
    int ntensors;
    char *config_path;         /* NULL unless a directory with config.json */
    RtGguf *gguf;              /* a GGUF file: it owns the tensors */
};

static const char index_name[] = "model.safetensors.index.json";

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bool is_regular(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int tensor_ptr_cmp(const void *a, const void *b)
{
    const RtTensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Append a copy of s to the growable list names[0..*n). */
static bool push_name(char ***names, int *n, int *cap, const char *s)
{
    if (*n == *cap) {
        int ncap = *cap ? 2 * *cap : 8;
        char **grown = realloc(*names, (size_t)ncap * sizeof *grown);
        if (!grown)
            return false;
        *names = grown;
        *cap = ncap;
    }
    if (!((*names)[*n] = strdup(s)))
        return false;
    (*n)++;
    return true;
}

/* Every *.safetensors regular file (symlinks followed, as in the HF cache)
 * in dir, sorted by name. */
static bool list_safetensors(const char *dir, char ***out, int *count, RtErr *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return rt_fail(err, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    bool ok = true;
    struct dirent *e;
    static const char ext[] = ".safetensors";
    while (ok && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= sizeof ext - 1 || strcmp(e->d_name + len - (sizeof ext - 1), ext) != 0)
            continue;
        char *full = join_path(dir, e->d_name);
        if (!full) {
            ok = rt_fail(err, "%s: out of memory", dir);
            break;
        }
        if (is_regular(full) && !push_name(&names, &n, &cap, e->d_name))
            ok = rt_fail(err, "%s: out of memory", dir);
        free(full);
    }
    closedir(d);
    if (ok && n == 0)
        ok = rt_fail(err, "%s: no *.safetensors files in the directory", dir);
    if (!ok) {
        free_names(names, n);
        return false;
    }
    qsort(names, (size_t)n, sizeof *names, str_ptr_cmp);
    *out = names;
    *count = n;
    return true;
}

/* A file name from the index must stay inside the directory. */
static bool plain_name(const char *s)
{
    return s[0] && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Load and check the index; return its weight_map (borrowed from *root) and
 * the distinct file names it uses, sorted. */
static bool read_index(const char *index, json_t **root, json_t **weight_map, char ***out,
                       int *count, RtErr *err)
{
    json_error_t je;
    *root = json_load_file(index, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!*root)
        return rt_fail(err, "%s:%d:%d: %s", index, je.line, je.column, rt_json_why(&je));
    if (!json_is_object(*root))
        return rt_fail(err, "%s: top level is not an object", index);
    json_t *meta = json_object_get(*root, "metadata");
    if (meta && !json_is_object(meta) && !json_is_null(meta))
        return rt_fail(err, "%s: \"metadata\" is not an object", index);
    json_t *map = json_object_get(*root, "weight_map");
    if (!map)
        return rt_fail(err, "%s: no \"weight_map\"", index);
    if (!json_is_object(map))
        return rt_fail(err, "%s: \"weight_map\" is not an object", index);
    if (json_object_size(map) > RT_MAX_TENSORS)
        return rt_fail(err, "%s: %zu tensors exceed the maximum of %u", index,
                       json_object_size(map), RT_MAX_TENSORS);

    char **names = NULL;
    int n = 0, cap = 0;
    const char *key;
    json_t *val;
    json_object_foreach(map, key, val) {
        if (!json_is_string(val)) {
            free_names(names, n);
            return rt_fail(err, "%s: weight_map entry for '%s' is not a string", index, key);
        }
        const char *file = json_string_value(val);
        if (!plain_name(file)) {
            free_names(names, n);
            return rt_fail(err, "%s: weight_map entry for '%s' names '%s', which is not a plain"
                           " file name in the directory", index, key, file);
        }
        if (!push_name(&names, &n, &cap, file)) {
            free_names(names, n);
            return rt_fail(err, "%s: out of memory", index);
        }
    }
    if (n == 0) {
        free(names);
        return rt_fail(err, "%s: weight_map is empty", index);
    }
    qsort(names, (size_t)n, sizeof *names, str_ptr_cmp);
    int u = 0;                        /* drop duplicates */
    for (int i = 0; i < n; i++) {
        if (u > 0 && strcmp(names[i], names[u - 1]) == 0)
            free(names[i]);
        else
            names[u++] = names[i];
    }
    *weight_map = map;
    *out = names;
    *count = u;
    return true;
}

/* Index and files agree: each listed tensor lies in the file named for it,
 * and each tensor of each file is listed. */
static bool check_index(const RtCheckpoint *c, const char *index, json_t *map, RtErr *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(map, key, val) {
        const char *file = json_string_value(val);
        const RtTensor *t = rt_ckpt_find(c, key);
        if (!t) {
            return rt_fail(err, "%s: tensor '%s' is mapped to '%s', which does not hold it",
                           index, key, file);
        }
        const char *base = strrchr(t->file, '/');
        base = base ? base + 1 : t->file;
        if (strcmp(base, file) != 0)
            return rt_fail(err, "%s: tensor '%s' is mapped to '%s' but is in %s", index, key,
                           file, t->file);
    }
    for (int i = 0; i < c->ntensors; i++)
        if (!json_object_get(map, c->by_name[i]->name))
            return rt_fail(err, "%s: tensor '%s' of %s is not in the weight_map", index,
                           c->by_name[i]->name, c->by_name[i]->file);
    return true;
}

/* Open each of dir/names[i]; gather and sort the tensors; reject a name held
 * by two files. */
static bool open_files(RtCheckpoint *c, const char *dir, const char *const *names, int n,
                       RtErr *err)
{
    c->files = calloc((size_t)n, sizeof *c->files);
    if (!c->files)
        return rt_fail(err, "%s: out of memory", dir ? dir : names[0]);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        char *full = dir ? join_path(dir, names[i]) : strdup(names[i]);
        if (!full)
            return rt_fail(err, "%s: out of memory", names[i]);
        bool ok = rt_st_open(full, &c->files[i], err);
        free(full);
        if (!ok)
            return false;
        c->nfiles++;
        total += (size_t)rt_st_count(c->files[i]);
    }
    if (total > RT_MAX_TENSORS)
        return rt_fail(err, "%s: %zu tensors exceed the maximum of %u", dir ? dir : names[0],
                       total, RT_MAX_TENSORS);
    c->by_name = calloc(total ? total : 1, sizeof *c->by_name);
    if (!c->by_name)
        return rt_fail(err, "%s: out of memory", dir ? dir : names[0]);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < rt_st_count(c->files[i]); k++)
            c->by_name[c->ntensors++] = rt_st_tensor(c->files[i], k);
    qsort(c->by_name, total, sizeof *c->by_name, tensor_ptr_cmp);
    for (int i = 1; i < c->ntensors; i++) {
        const RtTensor *a = c->by_name[i - 1], *b = c->by_name[i];
        if (strcmp(a->name, b->name) == 0) {
            if (strcmp(a->file, b->file) > 0) {
                const RtTensor *t = a;
                a = b;
                b = t;
            }
            return rt_fail(err, "tensor '%s' appears in both %s and %s", a->name, a->file,
                           b->file);
        }
    }
    return true;
}

static bool open_dir(RtCheckpoint *c, const char *dir, RtErr *err)
{
    char *cfg = join_path(dir, "config.json");
    char *index = join_path(dir, index_name);
    char **names = NULL;
    int n = 0;
    json_t *root = NULL, *map = NULL;
    bool ok = false;
    if (!cfg || !index) {
        rt_fail(err, "%s: out of memory", dir);
        goto done;
    }
    if (is_regular(cfg)) {
        c->config_path = cfg;
        cfg = NULL;
    }
    if (is_regular(index)) {
        if (!read_index(index, &root, &map, &names, &n, err))
            goto done;
        for (int i = 0; i < n; i++) {
            char *full = join_path(dir, names[i]);
            bool there = full && is_regular(full);
            free(full);
            if (!there) {
                rt_fail(err, "%s: weight_map names '%s', which is not a file in %s", index,
                        names[i], dir);
                goto done;
            }
        }
        ok = open_files(c, dir, (const char *const *)names, n, err) &&
             check_index(c, index, map, err);
    } else {
        ok = list_safetensors(dir, &names, &n, err) &&
             open_files(c, dir, (const char *const *)names, n, err);
    }
done:
    json_decref(root);
    free_names(names, n);
    free(cfg);
    free(index);
    return ok;
}

/* GGUF by its magic; a *.gguf file without it goes to the GGUF reader too,
 * which says what is wrong in GGUF terms. */
static bool is_gguf(const char *path)
{
    unsigned char magic[4];
    FILE *f = fopen(path, "rb");
    bool yes = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0;
    if (f)
        fclose(f);
    size_t n = strlen(path);
    return yes || (n > 5 && strcmp(path + n - 5, ".gguf") == 0);
}

static bool open_gguf(RtCheckpoint *c, const char *path, bool dequantize, RtErr *err)
{
    if (!rt_gguf_open_opts(path, dequantize, &c->gguf, err))
        return false;
    int n = rt_gguf_count(c->gguf);
    c->by_name = calloc(n ? (size_t)n : 1, sizeof *c->by_name);
    if (!c->by_name)
        return rt_fail(err, "%s: out of memory", path);
    for (int i = 0; i < n; i++)
        c->by_name[i] = rt_gguf_tensor(c->gguf, i);   /* already sorted by name */
    c->ntensors = n;
    return true;
}

bool rt_ckpt_open(const char *path, RtCheckpoint **out, RtErr *err)
{
    return rt_ckpt_open_opts(path, false, out, err);
}

bool rt_ckpt_open_opts(const char *path, bool dequantize, RtCheckpoint **out, RtErr *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return rt_fail(err, "%s: cannot open checkpoint: %s", path, strerror(errno));
    RtCheckpoint *c = calloc(1, sizeof *c);
    if (!c)
        return rt_fail(err, "%s: out of memory", path);
    bool ok;
    if (S_ISDIR(sb.st_mode)) {
        ok = open_dir(c, path, err);
    } else if (S_ISREG(sb.st_mode)) {
        ok = is_gguf(path) ? open_gguf(c, path, dequantize, err) : open_files(c, NULL, &path, 1, err);
    } else {
        ok = rt_fail(err, "%s: checkpoint is neither a file nor a directory", path);
    }
    if (!ok) {
        rt_ckpt_close(c);
        return false;
    }
    *out = c;
    return true;
}

void rt_ckpt_close(RtCheckpoint *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nfiles; i++)
        rt_st_close(c->files[i]);
    free(c->files);
    free(c->by_name);
    free(c->config_path);
    rt_gguf_close(c->gguf);
    free(c);
}

const RtTensor *rt_ckpt_find(const RtCheckpoint *c, const char *name)
{
    int lo = 0, hi = c->ntensors;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int cmp = strcmp(name, c->by_name[mid]->name);
        if (cmp == 0)
            return c->by_name[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int rt_ckpt_count(const RtCheckpoint *c)
{
    return c->ntensors;
}

const RtTensor *rt_ckpt_tensor(const RtCheckpoint *c, int i)
{
    return i >= 0 && i < c->ntensors ? c->by_name[i] : NULL;
}

const char *rt_ckpt_config_path(const RtCheckpoint *c)
{
    return c->config_path;
}

const RtGguf *rt_ckpt_gguf(const RtCheckpoint *c)
{
    return c->gguf;
}

const RtConfig *rt_ckpt_config(const RtCheckpoint *c)
{
    return c->gguf ? rt_gguf_config(c->gguf) : NULL;
}
