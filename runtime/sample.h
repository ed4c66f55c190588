/* runtime/sample.h — token sampling (see sample.c for the order of steps). */
#ifndef MODELC_SAMPLE_H
#define MODELC_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct RtSamplerParams {
    float temperature;    /* <= 0: greedy */
    int64_t top_k;        /* <= 0: off */
    float top_p;          /* >= 1 or <= 0: off */
    float rep_penalty;    /* 1: off */
    int64_t rep_window;   /* last tokens the penalty looks at (0: 64) */
    uint64_t seed;
} RtSamplerParams;

typedef struct RtSampler {
    RtSamplerParams p;
    uint64_t rng[4];
    void *cand;           /* scratch: vocab candidates */
    int64_t ncand;
} RtSampler;

void rt_sampler_init(RtSampler *s, const RtSamplerParams *p);
void rt_sampler_free(RtSampler *s);
/* The next token; history: the tokens so far (prompt + generated), for the penalty. */
int32_t rt_sample(RtSampler *s, const float *logits, int64_t vocab, const int32_t *history, int64_t nhistory);

#endif
