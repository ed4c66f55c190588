/* runtime/sample.c — choosing the next token from logits.
 *
 * Order (as llama.cpp and transformers apply them): repetition penalty over
 * the last rep_window tokens (CTRL: a positive logit is divided by the
 * penalty, a negative one multiplied), then temperature 0 = greedy (argmax),
 * else top-k, softmax at the temperature, top-p (the smallest set whose
 * probabilities sum to at least p), and a draw from what is left with a
 * seeded xoshiro256** generator: the same seed gives the same tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sample.h"

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static double uniform(RtSampler *s)
{
    uint64_t *q = s->rng;
    uint64_t r = rotl(q[1] * 5, 7) * 9, t = q[1] << 17;
    q[2] ^= q[0];
    q[3] ^= q[1];
    q[1] ^= q[2];
    q[0] ^= q[3];
    q[2] ^= t;
    q[3] = rotl(q[3], 45);
    return (double)(r >> 11) * 0x1.0p-53;
}

void rt_sampler_init(RtSampler *s, const RtSamplerParams *p)
{
    memset(s, 0, sizeof *s);
    s->p = *p;
    if (s->p.rep_window <= 0)
        s->p.rep_window = 64;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix(&x);
}

void rt_sampler_free(RtSampler *s)
{
    free(s->cand);
    s->cand = NULL;
}

typedef struct Cand {
    float logit;
    int32_t id;
} Cand;

static int by_logit_desc(const void *a, const void *b)
{
    const Cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit < y->logit ? 1 : -1;
    return x->id - y->id;   /* ties: lower id first, as argmax */
}

/* Restore the heap below j: the root is the worst of the first k. */
static void sift_down(Cand *c, int64_t k, int64_t j)
{
    for (;;) {
        int64_t l = 2 * j + 1, m = j;
        if (l < k && by_logit_desc(&c[l], &c[m]) > 0)
            m = l;
        if (l + 1 < k && by_logit_desc(&c[l + 1], &c[m]) > 0)
            m = l + 1;
        if (m == j)
            return;
        Cand t = c[j];
        c[j] = c[m];
        c[m] = t;
        j = m;
    }
}

/* Keep the k largest candidates (by a heap over the first k), sorted. */
static int64_t top_k(Cand *c, int64_t n, int64_t k)
{
    if (k <= 0 || k >= n) {
        qsort(c, (size_t)n, sizeof *c, by_logit_desc);
        return n;
    }
    for (int64_t i = k / 2 - 1; i >= 0; i--)
        sift_down(c, k, i);
    for (int64_t i = k; i < n; i++) {
        if (by_logit_desc(&c[i], &c[0]) >= 0)
            continue;
        c[0] = c[i];
        sift_down(c, k, 0);
    }
    qsort(c, (size_t)k, sizeof *c, by_logit_desc);
    return k;
}

int32_t rt_sample(RtSampler *s, const float *logits, int64_t vocab, const int32_t *history, int64_t nhistory)
{
    const RtSamplerParams *p = &s->p;
    if (!s->cand || s->ncand < vocab) {
        free(s->cand);
        s->cand = malloc((size_t)vocab * sizeof(Cand));
        s->ncand = s->cand ? vocab : 0;
    }
    Cand *c = s->cand;
    bool penalize = p->rep_penalty > 0 && p->rep_penalty != 1.0f && history && nhistory > 0;
    if (!c) {   /* out of memory: greedy on the raw logits */
        int64_t best = 0;
        for (int64_t i = 1; i < vocab; i++)
            if (logits[i] > logits[best])
                best = i;
        return (int32_t)best;
    }
    for (int64_t i = 0; i < vocab; i++)
        c[i] = (Cand){logits[i], (int32_t)i};
    if (penalize)
        for (int64_t h = nhistory > p->rep_window ? nhistory - p->rep_window : 0; h < nhistory; h++) {
            int32_t id = history[h];
            if (id < 0 || id >= vocab || c[id].id != id)
                continue;
            float *l = &c[id].logit;
            *l = *l > 0 ? *l / p->rep_penalty : *l * p->rep_penalty;
            c[id].id = -1 - id;   /* penalized once, however often it repeats */
        }
    if (penalize)
        for (int64_t i = 0; i < vocab; i++)
            if (c[i].id < 0)
                c[i].id = -1 - c[i].id;
    if (p->temperature <= 0) {
        int64_t best = 0;
        for (int64_t i = 1; i < vocab; i++)
            if (c[i].logit > c[best].logit)
                best = i;
        return c[best].id;
    }
    int64_t n = top_k(c, vocab, p->top_k);
    /* softmax at the temperature over the survivors (sorted, best first) */
    double sum = 0, maxl = c[0].logit;
    for (int64_t i = 0; i < n; i++)
        sum += exp((c[i].logit - maxl) / p->temperature);
    if (p->top_p > 0 && p->top_p < 1) {
        double cum = 0;
        int64_t keep = n;
        for (int64_t i = 0; i < n; i++) {
            cum += exp((c[i].logit - maxl) / p->temperature) / sum;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0;
        for (int64_t i = 0; i < n; i++)
            sum += exp((c[i].logit - maxl) / p->temperature);
    }
    double r = uniform(s) * sum, acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += exp((c[i].logit - maxl) / p->temperature);
        if (r < acc)
            return c[i].id;
    }
    return c[n - 1].id;
}
