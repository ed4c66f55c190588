/* runtime/api.c — the C API of modelc.h over the runtime. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/modelc.h"
#include "runtime/runtime.h"

struct Modelc {
    RtProgram *prog;
    RtCheckpoint *ckpt;
    RtSession *s;
    ModelcOptions opt;
    const float *logits;
    int64_t rows;
    char err[1024];
};

static ModelcStatus fail(Modelc *m, ModelcStatus st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    return st;
}

const char *modelc_model_info(const ModelcModelDesc *model)
{
    return model ? ((const RtEmbedded *)model)->info : "";
}

ModelcStatus modelc_open(const ModelcModelDesc *model, const char *weights, const ModelcOptions *opt, Modelc **out)
{
    if (!out)
        return MODELC_EINVAL;
    Modelc *m = calloc(1, sizeof *m);
    *out = m;
    if (!m)
        return MODELC_ENOMEM;
    if (!model || !weights)
        return fail(m, MODELC_EINVAL, "modelc_open: model and weights must not be NULL");
    m->opt = opt ? *opt : (ModelcOptions){0};
    if (m->opt.max_ctx <= 0)
        m->opt.max_ctx = 4096;
    if (m->opt.max_step <= 0)
        m->opt.max_step = 512;
    if (m->opt.max_step > m->opt.max_ctx)
        m->opt.max_step = m->opt.max_ctx;
    const RtEmbedded *e = (const RtEmbedded *)model;
    RtErr err = {.msg = ""};
    if (!rt_program_from_embedded(e, &m->prog, &err))
        return fail(m, MODELC_EPLAN, "%s", err.msg);
    if (!rt_ckpt_open_opts(weights, m->prog->dequantize, &m->ckpt, &err))
        return fail(m, MODELC_EWEIGHTS, "%s", err.msg);
    RtSessionOptions so = {.threads = m->opt.threads, .max_ctx = m->opt.max_ctx, .max_step = m->opt.max_step};
    if (!rt_session_new(m->prog, m->ckpt, &so, &m->s, &err))
        return fail(m, strstr(err.msg, "out of memory") || strstr(err.msg, "out of GPU memory") ? MODELC_ENOMEM
                       : err.device                                                          ? MODELC_EDEVICE
                                                                                             : MODELC_EWEIGHTS,
                    "%s", err.msg);
    return MODELC_OK;
}

void modelc_close(Modelc *m)
{
    if (!m)
        return;
    rt_session_free(m->s);
    rt_ckpt_close(m->ckpt);
    rt_program_free(m->prog);
    free(m);
}

const char *modelc_errmsg(const Modelc *m)
{
    return m ? m->err : "out of memory";
}

static ModelcStatus step(Modelc *m, const int32_t *tokens, int64_t n)
{
    if (!m->s)
        return fail(m, MODELC_EINVAL, "the model did not open: %s", m->err);
    if (rt_session_pos(m->s) + n > m->opt.max_ctx)
        return fail(m, MODELC_ECONTEXT, "context is full: %lld positions used, %lld more asked, room for %lld",
                    (long long)rt_session_pos(m->s), (long long)n, (long long)m->opt.max_ctx);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (m->prog->n_token_ids && tokens[i] >= m->prog->n_token_ids))
            return fail(m, MODELC_ETOKEN, "token id %d is out of range (the vocabulary has %lld ids)", tokens[i],
                        (long long)m->prog->n_token_ids);
    RtErr err = {.msg = ""};
    for (int64_t done = 0; done < n;) {
        int64_t k = n - done < m->opt.max_step ? n - done : m->opt.max_step;
        const float *l = rt_session_step(m->s, tokens + done, k, &err);
        if (!l)
            return fail(m, err.device ? MODELC_EDEVICE : MODELC_EINVAL, "%s", err.msg);
        m->logits = l;
        m->rows = k;
        done += k;
    }
    return MODELC_OK;
}

ModelcStatus modelc_prefill(Modelc *m, const int32_t *tokens, int64_t n)
{
    if (!m)
        return MODELC_EINVAL;
    if (!tokens || n <= 0)
        return fail(m, MODELC_EINVAL, "modelc_prefill: no tokens");
    return step(m, tokens, n);
}

ModelcStatus modelc_decode(Modelc *m, int32_t token)
{
    if (!m)
        return MODELC_EINVAL;
    return step(m, &token, 1);
}

const float *modelc_logits(const Modelc *m, int64_t *rows, int64_t *vocab)
{
    if (rows)
        *rows = m && m->logits ? m->rows : 0;
    if (vocab)
        *vocab = m && m->prog ? m->prog->vocab : 0;
    return m ? m->logits : NULL;
}

static int32_t argmax(const float *row, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return (int32_t)best;
}

ModelcStatus modelc_generate(Modelc *m, const int32_t *prompt, int64_t n, int64_t max_new, ModelcTokenFn on_token,
                             void *user)
{
    ModelcStatus st = modelc_prefill(m, prompt, n);
    for (int64_t i = 0; st == MODELC_OK && i < max_new; i++) {
        int32_t next = argmax(m->logits + (m->rows - 1) * m->prog->vocab, m->prog->vocab);
        if (on_token && on_token(next, user))
            break;
        if (i + 1 < max_new)
            st = modelc_decode(m, next);
    }
    return st;
}

int64_t modelc_position(const Modelc *m)
{
    return m && m->s ? rt_session_pos(m->s) : 0;
}

void modelc_reset(Modelc *m)
{
    if (m && m->s)
        rt_session_reset(m->s);
    if (m)
        m->logits = NULL;
}
