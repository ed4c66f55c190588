/* runtime/plan.c — an RtProgram to JSON and back (see runtime.h).
 *
 * A CUDA program's plan also carries its target and architecture, each
 * launch's step range, grid, block and shared memory; its kernels are the
 * cubin, embedded beside the plan rather than in it.
 *
 * The writer is deterministic (fixed key order, no addresses), so the same
 * program always gives the same text and `modelc build` is reproducible.
 * The reader trusts nothing: every buffer, slot and kernel index is checked
 * before the program is used. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

static const char *const kind_names[] = {"slot", "weight", "input", "kv", "scratch"};
enum { NKINDS = sizeof kind_names / sizeof *kind_names };

static json_t *int_array(const int64_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

char *rt_program_to_json(const RtProgram *p)
{
    json_t *root = json_object();
    bool cuda = p->target == RT_TARGET_CUDA;
    json_object_set_new(root, "format", json_integer(1));
    json_object_set_new(root, "model", json_string(p->model));
    json_object_set_new(root, "target", json_string(cuda ? "cuda" : "cpu"));
    if (cuda)
        json_object_set_new(root, "sm", json_integer(p->sm));
    json_object_set_new(root, "vocab", json_integer(p->vocab));
    json_object_set_new(root, "n_token_ids", json_integer(p->n_token_ids));
    json_object_set_new(root, "dequantize", json_boolean(p->dequantize));
    json_object_set_new(root, "tokens_buf", json_integer(p->tokens_buf));
    json_object_set_new(root, "logits_buf", json_integer(p->logits_buf));
    json_t *slots = json_array();
    for (int i = 0; i < p->nslots; i++)
        json_array_append_new(slots, int_array((int64_t[]){p->slot_per_tok[i], p->slot_const[i]}, 2));
    json_object_set_new(root, "slots", slots);
    json_t *bufs = json_array();
    for (int i = 0; i < p->nbufs; i++) {
        const RtBuf *b = &p->bufs[i];
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(kind_names[b->kind]));
        if (b->name)
            json_object_set_new(o, "name", json_string(b->name));
        json_object_set_new(o, "dtype", json_string(rt_dtype_name(b->dtype)));
        json_object_set_new(o, "shape", int_array(b->shape, b->rank));
        json_object_set_new(o, "slot", json_integer(b->slot));
        json_object_set_new(o, "bytes_per_pos", json_integer(b->bytes_per_pos));
        if (b->bytes_const)
            json_object_set_new(o, "bytes_const", json_integer(b->bytes_const));
        json_array_append_new(bufs, o);
    }
    json_object_set_new(root, "bufs", bufs);
    json_t *ls = json_array();
    for (int i = 0; i < p->nlaunch; i++) {
        const RtLaunch *l = &p->launch[i];
        json_t *o = json_object();
        int64_t args[RT_MAX_ARGS];
        for (int a = 0; a < l->nargs; a++)
            args[a] = l->args[a];
        json_object_set_new(o, "kernel", json_string(l->kernel));
        json_object_set_new(o, "args", int_array(args, l->nargs));
        json_object_set_new(o, "work", int_array((int64_t[]){l->work_per_tok, l->work_const, l->grain}, 3));
        json_object_set_new(o, "cost", int_array((int64_t[]){l->cost, l->cost_per_tok, l->cost_per_pos}, 3));
        json_object_set_new(o, "what", json_string(l->what ? l->what : ""));
        if (cuda) {
            int64_t grid[6] = {l->grid[0], l->grid[1], l->grid[2], l->grid_tok[0], l->grid_tok[1], l->grid_tok[2]};
            json_object_set_new(o, "steps", int_array((int64_t[]){l->min_T, l->max_T}, 2));
            json_object_set_new(o, "grid", int_array(grid, 3));
            json_object_set_new(o, "grid_tok", int_array(grid + 3, 3));
            json_object_set_new(o, "block", json_integer(l->block));
            json_object_set_new(o, "smem", json_integer(l->smem));
            json_object_set_new(o, "tail", json_boolean(l->tail));
        }
        json_array_append_new(ls, o);
    }
    json_object_set_new(root, "launches", ls);
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

/* ---- reading ---- */

typedef struct Reader {
    RtErr *err;
    bool ok;
} Reader;

static bool bad(Reader *r, const char *what)
{
    if (r->ok)
        rt_fail(r->err, "embedded plan: %s", what);
    r->ok = false;
    return false;
}

static int64_t get_int(Reader *r, json_t *o, const char *key, int64_t lo, int64_t hi)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "'%s' is missing or out of range", key);
        bad(r, msg);
        return lo;
    }
    return json_integer_value(v);
}

static int64_t get_at(Reader *r, json_t *a, size_t i, int64_t lo, int64_t hi)
{
    json_t *v = json_array_get(a, i);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        bad(r, "an array entry is missing or out of range");
        return lo;
    }
    return json_integer_value(v);
}

static char *dup_str(Reader *r, json_t *o, const char *key, bool required)
{
    json_t *v = json_object_get(o, key);
    if (!v && !required)
        return NULL;
    if (!json_is_string(v)) {
        bad(r, "a string field is missing");
        return NULL;
    }
    char *s = strdup(json_string_value(v));
    if (!s)
        bad(r, "out of memory");
    return s;
}

static RtDType dtype_named(Reader *r, const char *name)
{
    for (int t = 0; t < RT_DTYPE_COUNT; t++)
        if (name && !strcmp(rt_dtype_name((RtDType)t), name))
            return (RtDType)t;
    bad(r, "unknown dtype");
    return RT_F32;
}

bool rt_program_from_json(const char *json, size_t len, const RtKernelFn *kernels, int64_t nkernels, RtProgram **out,
                          RtErr *err)
{
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return rt_fail(err, "embedded plan: not a JSON object (%s)", root ? "another value" : rt_json_why(&je));
    }
    Reader r = {.err = err, .ok = true};
    RtProgram *p = calloc(1, sizeof *p);
    if (!p) {
        json_decref(root);
        return rt_fail(err, "out of memory");
    }
    const int64_t BIG = (int64_t)1 << 50;
    if (get_int(&r, root, "format", 1, 1) != 1)
        bad(&r, "unknown format");
    p->model = dup_str(&r, root, "model", true);
    json_t *target = json_object_get(root, "target");
    if (target && !(json_is_string(target) && (!strcmp(json_string_value(target), "cpu") ||
                                               !strcmp(json_string_value(target), "cuda"))))
        bad(&r, "'target' is neither cpu nor cuda");
    bool cuda = target && json_is_string(target) && !strcmp(json_string_value(target), "cuda");
    p->target = cuda ? RT_TARGET_CUDA : RT_TARGET_CPU;
    if (cuda)
        p->sm = (int)get_int(&r, root, "sm", 50, 1000);
    p->vocab = get_int(&r, root, "vocab", 1, BIG);
    p->n_token_ids = get_int(&r, root, "n_token_ids", 0, BIG);
    json_t *dq = json_object_get(root, "dequantize");
    if (!json_is_boolean(dq))
        bad(&r, "'dequantize' is missing");
    p->dequantize = json_is_true(dq);
    json_t *slots = json_object_get(root, "slots"), *bufs = json_object_get(root, "bufs");
    json_t *ls = json_object_get(root, "launches");
    if (!json_is_array(slots) || !json_is_array(bufs) || !json_is_array(ls))
        bad(&r, "slots, bufs or launches missing");
    if (r.ok) {
        p->nslots = (int)json_array_size(slots);
        p->nbufs = (int)json_array_size(bufs);
        p->nlaunch = (int)json_array_size(ls);
        int64_t *spt = calloc((size_t)p->nslots + 1, sizeof *spt), *sc = calloc((size_t)p->nslots + 1, sizeof *sc);
        p->slot_per_tok = spt;
        p->slot_const = sc;
        p->bufs = calloc((size_t)p->nbufs + 1, sizeof *p->bufs);
        p->launch = calloc((size_t)p->nlaunch + 1, sizeof *p->launch);
        if (!spt || !sc || !p->bufs || !p->launch)
            bad(&r, "out of memory");
        if (cuda ? nkernels != 0 : p->nlaunch != nkernels)   /* a CUDA program's kernels are its cubin */
            bad(&r, "the kernel table and the launches differ in number");
        for (int i = 0; r.ok && i < p->nslots; i++) {
            json_t *s = json_array_get(slots, (size_t)i);
            spt[i] = get_at(&r, s, 0, 0, BIG);
            sc[i] = get_at(&r, s, 1, 0, BIG);
        }
        for (int i = 0; r.ok && i < p->nbufs; i++) {
            json_t *o = json_array_get(bufs, (size_t)i);
            RtBuf *b = &p->bufs[i];
            const char *kind = json_string_value(json_object_get(o, "kind"));
            int k = 0;
            while (k < NKINDS && (!kind || strcmp(kind, kind_names[k])))
                k++;
            if (k == NKINDS || (k == RB_SCRATCH && !cuda)) {
                bad(&r, "unknown buffer kind");
                break;
            }
            b->kind = (RtBufKind)k;
            b->name = dup_str(&r, o, "name", false);
            b->dtype = dtype_named(&r, json_string_value(json_object_get(o, "dtype")));
            json_t *shape = json_object_get(o, "shape");
            if (!json_is_array(shape) || json_array_size(shape) > RT_MAX_RANK) {
                bad(&r, "bad shape");
                break;
            }
            b->rank = (int)json_array_size(shape);
            for (int d = 0; d < b->rank; d++)
                b->shape[d] = get_at(&r, shape, (size_t)d, 0, BIG);
            b->slot = (int)get_int(&r, o, "slot", 0, p->nslots ? p->nslots - 1 : 0);
            b->bytes_per_pos = get_int(&r, o, "bytes_per_pos", 0, BIG);
            if (json_object_get(o, "bytes_const"))
                b->bytes_const = get_int(&r, o, "bytes_const", 0, BIG);
            if (b->kind == RB_WEIGHT && !b->name)
                bad(&r, "a weight without a name");
        }
        for (int i = 0; r.ok && i < p->nlaunch; i++) {
            json_t *o = json_array_get(ls, (size_t)i), *args = json_object_get(o, "args");
            json_t *work = json_object_get(o, "work"), *cost = json_object_get(o, "cost");
            RtLaunch *l = &p->launch[i];
            l->kernel = dup_str(&r, o, "kernel", true);
            l->what = dup_str(&r, o, "what", false);
            if (!json_is_array(args) || json_array_size(args) > RT_MAX_ARGS || !json_is_array(work) || !json_is_array(cost)) {
                bad(&r, "bad launch");
                break;
            }
            l->nargs = (int)json_array_size(args);
            for (int a = 0; a < l->nargs; a++)
                l->args[a] = (int)get_at(&r, args, (size_t)a, 0, p->nbufs - 1);
            l->work_per_tok = get_at(&r, work, 0, 0, BIG);
            l->work_const = get_at(&r, work, 1, 0, BIG);
            l->grain = get_at(&r, work, 2, cuda ? 0 : 1, BIG);
            l->cost = get_at(&r, cost, 0, 0, BIG);
            l->cost_per_tok = get_at(&r, cost, 1, 0, BIG);
            l->cost_per_pos = get_at(&r, cost, 2, 0, BIG);
            if (cuda) {
                json_t *steps = json_object_get(o, "steps"), *grid = json_object_get(o, "grid");
                json_t *gtok = json_object_get(o, "grid_tok"), *tail = json_object_get(o, "tail");
                if (json_array_size(steps) != 2 || json_array_size(grid) != 3 || json_array_size(gtok) != 3 ||
                    !json_is_boolean(tail)) {
                    bad(&r, "a CUDA launch without its steps, grid or tail");
                    break;
                }
                l->min_T = get_at(&r, steps, 0, 1, BIG);
                l->max_T = get_at(&r, steps, 1, 0, BIG);
                for (int d = 0; d < 3; d++) {
                    l->grid[d] = (int)get_at(&r, grid, (size_t)d, 1, INT32_MAX);
                    l->grid_tok[d] = (int)get_at(&r, gtok, (size_t)d, 0, INT32_MAX);
                }
                l->block = (int)get_int(&r, o, "block", 32, 1024);
                l->smem = (int)get_int(&r, o, "smem", 0, 1 << 20);
                l->tail = json_is_true(tail);
                if (l->block % 32)
                    bad(&r, "a CUDA block that is not whole warps");
            } else {
                l->fn = kernels[i];
                if (!l->fn)
                    bad(&r, "a kernel entry is NULL");
            }
        }
        p->tokens_buf = (int)get_int(&r, root, "tokens_buf", 0, p->nbufs - 1);
        p->logits_buf = (int)get_int(&r, root, "logits_buf", 0, p->nbufs - 1);
        if (r.ok && (p->bufs[p->tokens_buf].kind != RB_INPUT || p->bufs[p->logits_buf].kind != RB_SLOT))
            bad(&r, "tokens or logits buffer of the wrong kind");
    }
    json_decref(root);
    if (!r.ok) {
        rt_program_free(p);
        return false;
    }
    *out = p;
    return true;
}

bool rt_program_from_embedded(const RtEmbedded *e, RtProgram **out, RtErr *err)
{
    if (!rt_program_from_json(e->plan, (size_t)e->plan_len, e->kernels, e->nkernels, out, err))
        return false;
    RtProgram *p = *out;
    if ((p->target == RT_TARGET_CUDA) != (e->cubin_len > 0)) {
        rt_fail(err, "embedded plan: a %s program %s a cubin", p->target == RT_TARGET_CUDA ? "CUDA" : "CPU",
                e->cubin_len > 0 ? "with" : "without");
        rt_program_free(p);
        *out = NULL;
        return false;
    }
    p->cubin = e->cubin;
    p->cubin_len = e->cubin_len;
    return true;
}

void rt_program_free(RtProgram *p)
{
    if (!p)
        return;
    for (int i = 0; p->bufs && i < p->nbufs; i++)
        free((char *)p->bufs[i].name);
    for (int i = 0; p->launch && i < p->nlaunch; i++) {
        free((char *)p->launch[i].kernel);
        free((char *)p->launch[i].what);
    }
    free((char *)p->model);
    free((void *)p->slot_per_tok);
    free((void *)p->slot_const);
    free(p->bufs);
    free(p->launch);
    free(p);
}
