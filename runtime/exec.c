/* runtime/exec.c — a session: a program bound to weights, with its
 * activations, KV cache and thread pool.
 *
 * Memory: activation slots share one 64-byte-aligned block sized for the
 * largest step (max_step tokens); each KV cache holds max_ctx positions.
 * Weights are not copied: kernels read the checkpoint's mmap directly.
 * Every launch's argument table is built once here, so a step is just the
 * launches in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/internal.h"

struct RtSession {
    const RtProgram *p;
    RtPool *pool;
    void **buf;             /* per RtBuf */
    void ***largs;          /* per launch: its argument table */
    void *slots;            /* activation block */
    void **kv;              /* per RtBuf (NULL unless RB_KV) */
    int32_t *tokens;
    int64_t max_step, max_ctx, pos;
    double *prof;           /* per launch: seconds, when profiling */
    int64_t prof_steps;
    bool last_row;
    RtGpuSession *gpu;      /* CUDA programs: the device half (runtime/cuda.c) */
    char device[64];
};

static const char *shape_text(char *out, size_t cap, const int64_t *shape, int rank)
{
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < rank && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap)
        snprintf(out + k, cap - k, "]");
    return out;
}

static bool check_weight(const RtBuf *b, const RtCheckpoint *ckpt, const RtTensor **out, RtErr *err)
{
    const RtTensor *t = rt_ckpt_find(ckpt, b->name);
    if (!t)
        return rt_fail(err, "weight '%s' is not in the checkpoint", b->name);
    if (t->dtype != b->dtype)
        return rt_fail(err, "%s: weight '%s' is %s, the compiled model expects %s", t->file, b->name,
                       rt_dtype_name(t->dtype), rt_dtype_name(b->dtype));
    bool same = t->rank == b->rank;
    for (int d = 0; same && d < b->rank; d++)
        same = t->shape[d] == b->shape[d];
    if (!same) {
        char have[128], want[128];
        return rt_fail(err, "%s: weight '%s' has shape %s, the compiled model expects %s", t->file, b->name,
                       shape_text(have, sizeof have, t->shape, t->rank), shape_text(want, sizeof want, b->shape, b->rank));
    }
    *out = t;
    return true;
}

static bool bind_weight(RtSession *s, int i, const RtCheckpoint *ckpt, RtErr *err)
{
    const RtTensor *t;
    if (!check_weight(&s->p->bufs[i], ckpt, &t, err))
        return false;
    s->buf[i] = (void *)t->data;
    return true;
}

/* CUDA programs: every weight checked here, then the device half. */
static bool gpu_session_new(RtSession *s, const RtCheckpoint *ckpt, const RtSessionOptions *o, RtErr *err)
{
    const RtTensor *t;
    for (int i = 0; i < s->p->nbufs; i++)
        if (s->p->bufs[i].kind == RB_WEIGHT && !check_weight(&s->p->bufs[i], ckpt, &t, err))
            return false;
    if (rt_gpu_session_new(s->p, ckpt, o, &s->gpu, err))
        return true;
    err->device = true;
    return false;
}

static bool mul_add(int64_t a, int64_t b, int64_t c, int64_t *out)
{
    int64_t m;
    return !__builtin_mul_overflow(a, b, &m) && !__builtin_add_overflow(m, c, out) && *out >= 0;
}

int64_t *rt_slot_offsets(const RtProgram *p, int64_t max_step, int64_t align, RtErr *err)
{
    int64_t *off = calloc((size_t)p->nslots + 1, sizeof *off);
    if (!off) {
        rt_fail(err, "out of memory");
        return NULL;
    }
    for (int i = 0; i < p->nslots; i++) {
        int64_t bytes;
        if (!mul_add(p->slot_per_tok[i], max_step, p->slot_const[i], &bytes) ||
            __builtin_add_overflow(off[i], (bytes + align - 1) & ~(align - 1), &off[i + 1])) {
            free(off);
            rt_fail(err, "activation memory for %lld tokens overflows", (long long)max_step);
            return NULL;
        }
    }
    return off;
}

bool rt_ctx_bytes(const RtBuf *b, int64_t max_ctx, int64_t *bytes, RtErr *err)
{
    return mul_add(b->bytes_per_pos, max_ctx, b->bytes_const, bytes) ||
           rt_fail(err, "%s for %lld positions overflows", b->name, (long long)max_ctx);
}

bool rt_session_new(const RtProgram *p, const RtCheckpoint *ckpt, const RtSessionOptions *o, RtSession **out,
                    RtErr *err)
{
    *out = NULL;
    if (o->max_step < 1 || o->max_ctx < o->max_step)
        return rt_fail(err, "bad session sizes: max_step %lld, max_ctx %lld", (long long)o->max_step,
                       (long long)o->max_ctx);
    RtSession *s = calloc(1, sizeof *s);
    if (!s)
        return rt_fail(err, "out of memory");
    s->p = p;
    s->max_step = o->max_step;
    s->max_ctx = o->max_ctx;
    s->last_row = o->last_row;
    if (p->target == RT_TARGET_CUDA) {
        if (!gpu_session_new(s, ckpt, o, err)) {
            free(s);
            return false;
        }
        *out = s;
        return true;
    }
    s->buf = calloc((size_t)p->nbufs, sizeof *s->buf);
    s->kv = calloc((size_t)p->nbufs, sizeof *s->kv);
    s->largs = calloc((size_t)p->nlaunch, sizeof *s->largs);
    if (!s->buf || !s->kv || !s->largs) {
        rt_session_free(s);
        return rt_fail(err, "out of memory");
    }
    /* activations: one block, slots at 64-byte boundaries */
    int64_t *slot_off = rt_slot_offsets(p, o->max_step, 64, err);
    if (!slot_off) {
        rt_session_free(s);
        return false;
    }
    int64_t total = slot_off[p->nslots];
    if (total && posix_memalign(&s->slots, 64, (size_t)total)) {
        free(slot_off);
        rt_session_free(s);
        return rt_fail(err, "out of memory: activations need %lld bytes for %lld tokens", (long long)total,
                       (long long)o->max_step);
    }
    int64_t kv_total = 0;
    bool ok = true;
    for (int i = 0; i < p->nbufs && ok; i++) {
        const RtBuf *b = &p->bufs[i];
        switch (b->kind) {
        case RB_SLOT: s->buf[i] = (char *)s->slots + slot_off[b->slot]; break;
        case RB_WEIGHT: ok = bind_weight(s, i, ckpt, err); break;
        case RB_INPUT:
            s->tokens = calloc((size_t)o->max_step, sizeof *s->tokens);
            s->buf[i] = s->tokens;
            ok = s->tokens || rt_fail(err, "out of memory");
            break;
        case RB_SCRATCH:
            ok = rt_fail(err, "buffer %s: scratch buffers are for CUDA programs", b->name);
            break;
        case RB_KV: {
            int64_t bytes;
            if (!(ok = rt_ctx_bytes(b, o->max_ctx, &bytes, err)))
                break;
            kv_total += bytes;
            s->kv[i] = calloc(1, (size_t)bytes ? (size_t)bytes : 1);
            if (!s->kv[i])
                ok = rt_fail(err, "out of memory: the KV cache needs %lld bytes for %lld positions (%lld so far)",
                             (long long)bytes, (long long)o->max_ctx, (long long)kv_total);
            s->buf[i] = s->kv[i];
            break;
        }
        }
    }
    free(slot_off);
    for (int l = 0; l < p->nlaunch && ok; l++) {
        s->largs[l] = calloc(RT_MAX_ARGS, sizeof(void *));
        if (!s->largs[l]) {
            ok = rt_fail(err, "out of memory");
            break;
        }
        for (int a = 0; a < p->launch[l].nargs; a++)
            s->largs[l][a] = s->buf[p->launch[l].args[a]];
        if (!p->launch[l].fn)
            ok = rt_fail(err, "kernel %s was not compiled", p->launch[l].kernel);
    }
    if (ok) {
        int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
        s->pool = rt_pool_new(threads > 0 ? threads : 1, err);
        ok = s->pool != NULL;
    }
    if (!ok) {
        rt_session_free(s);
        return false;
    }
    *out = s;
    return true;
}

void rt_session_free(RtSession *s)
{
    if (!s)
        return;
    rt_gpu_session_free(s->gpu);
    rt_pool_free(s->pool);
    if (s->largs)
        for (int l = 0; l < s->p->nlaunch; l++)
            free(s->largs[l]);
    if (s->kv)
        for (int i = 0; i < s->p->nbufs; i++)
            free(s->kv[i]);
    free(s->largs);
    free(s->prof);
    free(s->kv);
    free(s->buf);
    free(s->slots);
    free(s->tokens);
    free(s);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void rt_session_profile(RtSession *s, bool on)
{
    if (s->gpu) {
        RtErr err;
        if (!rt_gpu_profile(s->gpu, on, &err))
            fprintf(stderr, "modelc: warning: no profile: %s\n", err.msg);
        return;
    }
    free(s->prof);
    s->prof = on ? calloc((size_t)s->p->nlaunch, sizeof *s->prof) : NULL;
    s->prof_steps = 0;
}

typedef struct ProfRow {
    const char *kernel;
    double sec;
    int launches;
} ProfRow;

static int by_time(const void *a, const void *b)
{
    double x = ((const ProfRow *)a)->sec, y = ((const ProfRow *)b)->sec;
    return x < y ? 1 : x > y ? -1 : 0;
}

void rt_session_print_profile(const RtSession *s, FILE *f, int top)
{
    const double *prof = s->prof;
    int64_t steps = s->prof_steps;
    if (s->gpu)
        prof = rt_gpu_profile_times(s->gpu, &steps);
    if (!prof)
        return;
    ProfRow *rows = calloc((size_t)s->p->nlaunch, sizeof *rows);
    if (!rows)
        return;
    int n = 0;
    double total = 0;
    for (int l = 0; l < s->p->nlaunch; l++) {
        int r = 0;
        while (r < n && strcmp(rows[r].kernel, s->p->launch[l].kernel))
            r++;
        if (r == n)
            rows[n++].kernel = s->p->launch[l].kernel;
        rows[r].sec += prof[l];
        rows[r].launches += prof[l] > 0;   /* variants for other step sizes did not run */
        total += prof[l];
    }
    qsort(rows, (size_t)n, sizeof *rows, by_time);
    fprintf(f, "profile: %lld steps, %.1f ms in kernels\n%10s %6s %9s  %s\n", (long long)steps, total * 1e3,
            "ms", "%", "launches", "kernel");
    for (int r = 0; r < n && r < top; r++)
        fprintf(f, "%10.2f %5.1f%% %9d  %s\n", rows[r].sec * 1e3, total > 0 ? 100 * rows[r].sec / total : 0,
                rows[r].launches, rows[r].kernel);
    free(rows);
}

int64_t rt_session_pos(const RtSession *s)
{
    return s->pos;
}

void rt_session_reset(RtSession *s)
{
    s->pos = 0;
}

const float *rt_session_step(RtSession *s, const int32_t *tokens, int64_t T, RtErr *err)
{
    const RtProgram *p = s->p;
    if (T < 1 || T > s->max_step) {
        rt_fail(err, "a step of %lld tokens is outside 1..%lld", (long long)T, (long long)s->max_step);
        return NULL;
    }
    if (s->pos + T > s->max_ctx) {
        rt_fail(err, "context is full: %lld positions used, %lld more asked, room for %lld", (long long)s->pos,
                (long long)T, (long long)s->max_ctx);
        return NULL;
    }
    for (int64_t i = 0; i < T; i++)
        if (tokens[i] < 0 || (p->n_token_ids && tokens[i] >= p->n_token_ids)) {
            rt_fail(err, "token id %d is out of range (the vocabulary has %lld ids)", tokens[i],
                    (long long)p->n_token_ids);
            return NULL;
        }
    if (s->gpu) {
        const float *logits = rt_gpu_step(s->gpu, tokens, T, s->pos, err);
        if (logits)
            s->pos += T;
        else
            err->device = true;
        return logits;
    }
    memcpy(s->tokens, tokens, (size_t)T * sizeof *tokens);
    for (int l = 0; l < p->nlaunch; l++) {
        const RtLaunch *L = &p->launch[l];
        int64_t items = L->work_per_tok * T + L->work_const;
        int64_t cost = items * (L->cost + L->cost_per_tok * T + (L->cost_per_pos ? L->cost_per_pos * (s->pos + T) : 0));
        double t0 = s->prof ? seconds() : 0;
        rt_pool_run(s->pool, L->fn, s->largs[l], T, s->pos, items, L->grain, cost);
        if (s->prof)
            s->prof[l] += seconds() - t0;
    }
    s->prof_steps++;
    s->pos += T;
    const float *logits = s->buf[p->logits_buf];
    return s->last_row ? logits + (T - 1) * p->vocab : logits;
}

bool rt_session_step_greedy(RtSession *s, int32_t token, int32_t *next, RtErr *err)
{
    if (!s->gpu) {
        const float *l = rt_session_step(s, &token, 1, err);
        if (!l)
            return false;
        int64_t best = 0;
        for (int64_t i = 1; i < s->p->vocab; i++)
            if (l[i] > l[best])
                best = i;
        *next = (int32_t)best;
        return true;
    }
    if (s->pos + 1 > s->max_ctx)
        return rt_fail(err, "context is full: %lld positions used, 1 more asked, room for %lld", (long long)s->pos,
                       (long long)s->max_ctx);
    if (token < 0 || (s->p->n_token_ids && token >= s->p->n_token_ids))
        return rt_fail(err, "token id %d is out of range (the vocabulary has %lld ids)", token,
                       (long long)s->p->n_token_ids);
    if (!rt_gpu_step_greedy(s->gpu, token, s->pos, s->pos + 2 <= s->max_ctx, next, err)) {
        err->device = true;
        return false;
    }
    s->pos++;
    return true;
}

const char *rt_session_device(const RtSession *s)
{
    if (s->gpu)
        return rt_gpu_device(s->gpu);
    snprintf(((RtSession *)s)->device, sizeof s->device, "cpu: %d threads", rt_pool_threads(s->pool));
    return s->device;
}
