/* runtime/run.c — the run loop behind `modelc run` and built executables.
 *
 * Options are parsed here so both front ends accept exactly the same ones.
 * Output contract: the generated token ids on one stdout line, separated by
 * spaces; one timing line on stderr (unless --quiet); --logits-out written
 * last, through a temporary file, only when everything before succeeded. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "runtime/sample.h"
#include "runtime/tokenizer.h"

const char rt_run_usage[] =
    "  --weights PATH        a .gguf or .safetensors file, or a Hugging Face checkpoint directory\n"
    "  --tokens 1,2,3        prompt token ids; the generated ids are printed on one stdout line\n"
    "  --prompt TEXT         a text prompt (the model's tokenizer); the text is streamed to stdout\n"
    "  --chat TEXT           a user message, put in the model's chat template (ChatML, Llama 3)\n"
    "  --special             parse special-token text (<|im_start|> ...) in --prompt\n"
    "  --system TEXT         the chat's system prompt (default: the template's own, if any)\n"
    "  --tokenizer PATH      a tokenizer.json (default: the GGUF's, or the checkpoint directory's)\n"
    "  --max-new N           tokens to generate (default 16; text modes stop earlier at end of turn)\n"
    "  --temperature T       0 (default): greedy; else sample at T\n"
    "  --top-k K             sample among the K likeliest tokens (default 40 when sampling; 0: all)\n"
    "  --top-p P             ... and among the smallest set whose probability reaches P (default 0.95)\n"
    "  --repeat-penalty R    penalize the last 64 tokens (default 1: off; 1.1 is common)\n"
    "  --seed S              sampling seed (default: from the clock); the same seed, the same tokens\n"
    "  --ignore-eos          do not stop at end of turn\n"
    "  --dequantize          GGUF Q8_0/Q4_0/Q4_1 weights to f32 at load (default: kernels read the blocks)\n"
    "  --logits-out F.npy    write float32 logits [T, vocab] for every prompt position\n"
    "  --threads N           CPU threads (default: all online CPUs)\n"
    "  --ctx N               KV cache positions (default: prompt + max-new)\n"
    "  --quiet               no timing line on stderr\n"
    "  --warmup              run the prompt and two decode steps once, untimed, before the timed run\n"
    "  --profile             time every kernel; print the costliest on stderr\n";

void rt_run_options_init(RtRunOptions *o)
{
    memset(o, 0, sizeof *o);
    o->max_new = 16;
    o->top_k = 40;
    o->top_p = 0.95f;
    o->rep_penalty = 1.0f;
}

void rt_run_options_free(RtRunOptions *o)
{
    free(o->prompt);
    o->prompt = NULL;
}

static const char *value_of(int argc, char **argv, int *i, const char *flag, bool *missing)
{
    size_t n = strlen(flag);
    if (!strncmp(argv[*i], flag, n) && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], flag))
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static bool count(const char *flag, const char *v, long long lo, long long hi, long long *out, RtErr *err)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi)
        return rt_fail(err, "%s needs an integer from %lld to %lld, got '%s'", flag, lo, hi, v);
    *out = n;
    return true;
}

static bool real(const char *flag, const char *v, double lo, double hi, float *out, RtErr *err)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !(x >= lo && x <= hi))
        return rt_fail(err, "%s needs a number from %g to %g, got '%s'", flag, lo, hi, v);
    *out = (float)x;
    return true;
}

static bool parse_tokens(const char *s, RtRunOptions *o, RtErr *err)
{
    int64_t cap = 16, k = 0;
    int32_t *t = malloc((size_t)cap * sizeof *t);
    for (const char *p = s; t;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',') || k >= RT_MAX_PROMPT) {
            free(t);
            return rt_fail(err, "--tokens takes comma-separated token ids (0 to 2^31-1, at most %d), got '%.60s'",
                           RT_MAX_PROMPT, s);
        }
        if (k == cap) {
            int32_t *nt = realloc(t, (size_t)(cap *= 2) * sizeof *t);
            if (!nt)
                break;
            t = nt;
        }
        t[k++] = (int32_t)v;
        if (!*end) {
            free(o->prompt);
            o->prompt = t;
            o->nprompt = k;
            return true;
        }
        p = end + 1;
    }
    free(t);
    return rt_fail(err, "out of memory reading --tokens");
}

int rt_run_option(int argc, char **argv, int *i, RtRunOptions *o, RtErr *err)
{
    bool missing = false;
    const char *v;
    const char *a = argv[*i];
    if ((v = value_of(argc, argv, i, "--weights", &missing)))
        o->weights = v;
    else if ((v = value_of(argc, argv, i, "--tokens", &missing)))
        return parse_tokens(v, o, err) ? 1 : -1;
    else if ((v = value_of(argc, argv, i, "--prompt", &missing)))
        o->text = v, o->chat = false;
    else if ((v = value_of(argc, argv, i, "--chat", &missing)))
        o->text = v, o->chat = true;
    else if ((v = value_of(argc, argv, i, "--system", &missing)))
        o->system = v;
    else if ((v = value_of(argc, argv, i, "--tokenizer", &missing)))
        o->tokenizer = v;
    else if ((v = value_of(argc, argv, i, "--temperature", &missing)))
        return real("--temperature", v, 0, 100, &o->temperature, err) ? 1 : -1;
    else if ((v = value_of(argc, argv, i, "--top-p", &missing)))
        return real("--top-p", v, 0, 1, &o->top_p, err) ? 1 : -1;
    else if ((v = value_of(argc, argv, i, "--repeat-penalty", &missing)))
        return real("--repeat-penalty", v, 0.01, 100, &o->rep_penalty, err) ? 1 : -1;
    else if ((v = value_of(argc, argv, i, "--top-k", &missing)))
        return count("--top-k", v, 0, 1 << 30, &o->top_k, err) ? 1 : -1;
    else if ((v = value_of(argc, argv, i, "--seed", &missing))) {
        long long seed;
        if (!count("--seed", v, 0, LLONG_MAX, &seed, err))
            return -1;
        o->seed = (unsigned long long)seed;
        o->seed_given = true;
    } else if (!strcmp(a, "--ignore-eos"))
        o->ignore_eos = true;
    else if (!strcmp(a, "--special"))
        o->special = true;
    else if (!strcmp(a, "--dequantize"))
        o->dequantize = true;
    else if ((v = value_of(argc, argv, i, "--max-new", &missing)))
        return count("--max-new", v, 0, RT_MAX_PROMPT, &o->max_new, err) ? 1 : -1;
    else if ((v = value_of(argc, argv, i, "--logits-out", &missing)))
        o->logits_out = v;
    else if ((v = value_of(argc, argv, i, "--threads", &missing)))
        return count("--threads", v, 1, 1024, &o->threads, err) ? 1 : -1;
    else if ((v = value_of(argc, argv, i, "--ctx", &missing)))
        return count("--ctx", v, 1, 1 << 24, &o->ctx, err) ? 1 : -1;
    else if (!strcmp(a, "--quiet"))
        o->quiet = true;
    else if (!strcmp(a, "--warmup"))
        o->warmup = true;
    else if (!strcmp(a, "--profile"))
        o->profile = true;
    else if (missing)
        return rt_fail(err, "%s needs a value", a), -1;
    else
        return 0;
    return 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The tokenizer for text modes: --tokenizer, else the GGUF's metadata, else
 * tokenizer.json beside the checkpoint's config.json. */
static RtTokenizer *load_tokenizer(const RtCheckpoint *ckpt, const RtRunOptions *o, RtErr *err)
{
    if (o->tokenizer)
        return rt_tok_from_hf(o->tokenizer, err);
    if (rt_ckpt_gguf(ckpt))
        return rt_tok_from_gguf(rt_ckpt_gguf(ckpt), o->weights, err);
    const char *cfg = rt_ckpt_config_path(ckpt);
    if (cfg) {
        char path[4096];
        const char *slash = strrchr(cfg, '/');
        int n = slash ? (int)(slash - cfg) : 0;
        snprintf(path, sizeof path, "%.*s%stokenizer.json", n, cfg, slash ? "/" : "");
        if (access(path, R_OK) == 0)
            return rt_tok_from_hf(path, err);
    }
    rt_fail(err, "%s: no tokenizer (no GGUF metadata, no tokenizer.json beside it); give --tokenizer or --tokens",
            o->weights);
    return NULL;
}

static int32_t *text_prompt(const RtTokenizer *tok, const RtRunOptions *o, int64_t *n, RtErr *err)
{
    if (!o->chat)
        return rt_tok_encode(tok, o->text, strlen(o->text), true, o->special, n, err);
    if (rt_tok_chat_format(tok) == RT_CHAT_NONE) {
        rt_fail(err, "--chat: the model has no chat template modelc knows (ChatML, Llama 3); use --prompt");
        return NULL;
    }
    char *p = rt_tok_chat_prompt(tok, o->system, o->text, err);
    if (!p)
        return NULL;
    int32_t *ids = rt_tok_encode(tok, p, strlen(p), true, true, n, err);
    free(p);
    return ids;
}

int32_t *rt_run_tokenize(const RtCheckpoint *ckpt, const RtRunOptions *o, int64_t *n, RtErr *err)
{
    RtTokenizer *tok = load_tokenizer(ckpt, o, err);
    int32_t *ids = tok ? text_prompt(tok, o, n, err) : NULL;
    rt_tok_free(tok);
    return ids;
}

static void emit_text(const RtTokenizer *tok, RtUtf8Stream *us, int32_t id)
{
    size_t len;
    const char *piece = rt_tok_piece(tok, id, &len);
    char out[RT_UTF8_STREAM_MAX(64)];
    while (piece && len) {
        size_t take = len < 64 ? len : 64;
        size_t k = rt_utf8_stream(us, piece, take, out, sizeof out);
        fwrite(out, 1, k, stdout);
        piece += take;
        len -= take;
    }
    fflush(stdout);
}

static const char *threads_text(int threads)
{
    static char buf[32];
    snprintf(buf, sizeof buf, "%d threads", threads);
    return buf;
}

int rt_run(const RtProgram *p, const RtCheckpoint *ckpt, const RtRunOptions *o, double compile_seconds)
{
    RtErr err = {.msg = ""};
    RtTokenizer *tok = NULL;
    int32_t *ids = o->prompt;
    int64_t T = o->nprompt;
    if (o->text) {
        if (!(tok = load_tokenizer(ckpt, o, &err)) || !(ids = text_prompt(tok, o, &T, &err))) {
            fprintf(stderr, "modelc: error: %s\n", err.msg);
            rt_tok_free(tok);
            return 1;
        }
        if (T == 0) {
            fprintf(stderr, "modelc: error: the prompt is empty after tokenization\n");
            free(ids);
            rt_tok_free(tok);
            return 1;
        }
    }
    int64_t cap = T + o->max_new;
    int32_t *hist = malloc((size_t)(cap ? cap : 1) * sizeof *hist);
    RtSessionOptions so = {.threads = (int)o->threads, .max_step = T, .max_ctx = o->ctx ? o->ctx : T + o->max_new,
                           .last_row = !o->logits_out};
    RtSession *s = NULL;
    float *prefill_logits = NULL;
    RtSampler sampler;
    RtSamplerParams sp = {.temperature = o->temperature, .top_k = o->top_k, .top_p = o->top_p,
                          .rep_penalty = o->rep_penalty,
                          .seed = o->seed_given ? o->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32)};
    rt_sampler_init(&sampler, &sp);
    int rc = 1;
    if (!hist) {
        fprintf(stderr, "modelc: error: out of memory\n");
        goto out;
    }
    memcpy(hist, ids, (size_t)T * sizeof *hist);
    if (so.max_ctx < T + (o->max_new > 0 ? o->max_new - 1 : 0)) {
        fprintf(stderr, "modelc: error: --ctx %lld is too small for %lld prompt tokens and %lld new ones\n",
                (long long)so.max_ctx, (long long)T, o->max_new);
        goto out;
    }
    if (!rt_session_new(p, ckpt, &so, &s, &err)) {
        fprintf(stderr, "modelc: error: %s\n", err.msg);
        goto out;
    }
    if (o->warmup) {   /* first launches load kernels and capture graphs: keep that out of the timings */
        int32_t w = ids[0];
        if (!rt_session_step(s, ids, T, &err) || (T < so.max_ctx && !rt_session_step_greedy(s, ids[0], &w, &err)) ||
            (T + 1 < so.max_ctx && !rt_session_step_greedy(s, w, &w, &err))) {
            fprintf(stderr, "modelc: error: %s\n", err.msg);
            goto out;
        }
        rt_session_reset(s);
    }
    rt_session_profile(s, o->profile);
    double t1 = now();
    const float *logits = rt_session_step(s, ids, T, &err);
    if (!logits) {
        fprintf(stderr, "modelc: error: %s\n", err.msg);
        goto out;
    }
    double t_prefill = now() - t1;
    if (o->logits_out) {
        prefill_logits = malloc((size_t)T * (size_t)p->vocab * sizeof *prefill_logits);
        if (!prefill_logits) {
            fprintf(stderr, "modelc: error: out of memory keeping %lld x %lld logits\n", (long long)T,
                    (long long)p->vocab);
            goto out;
        }
        memcpy(prefill_logits, logits, (size_t)T * (size_t)p->vocab * sizeof *prefill_logits);
    }
    if (o->profile) {
        fprintf(stderr, "prefill ");
        rt_session_print_profile(s, stderr, 40);
        rt_session_profile(s, true);
    }
    double t2 = now();
    RtUtf8Stream us = {0};
    int64_t n = T, generated = 0;
    int32_t next = rt_sample(&sampler, so.last_row ? logits : logits + (T - 1) * p->vocab, p->vocab, hist, n);
    /* greedy without a repetition penalty needs only the argmax (on the GPU: on the device) */
    bool greedy = sp.temperature <= 0 && sp.rep_penalty == 1.0f;
    for (long long i = 0; i < o->max_new; i++) {
        if (tok && !o->ignore_eos && rt_tok_is_eog(tok, next))
            break;
        hist[n++] = next;
        generated++;
        if (tok) {
            emit_text(tok, &us, next);
        } else {
            printf(i ? " %d" : "%d", next);
            fflush(stdout);
        }
        if (i + 1 == o->max_new)
            break;
        if (greedy) {
            if (!rt_session_step_greedy(s, next, &next, &err)) {
                fprintf(stderr, "\nmodelc: error: %s\n", err.msg);
                goto out;
            }
            continue;
        }
        logits = rt_session_step(s, &next, 1, &err);
        if (!logits) {
            fprintf(stderr, "\nmodelc: error: %s\n", err.msg);
            goto out;
        }
        next = rt_sample(&sampler, logits, p->vocab, hist, n);
    }
    if (tok) {
        char out[RT_UTF8_STREAM_MAX(8)];
        fwrite(out, 1, rt_utf8_flush(&us, out, sizeof out), stdout);   /* an unfinished character: U+FFFD */
    }
    printf("\n");
    fflush(stdout);
    double t_decode = now() - t2;
    if (o->profile) {
        fprintf(stderr, "decode ");
        rt_session_print_profile(s, stderr, 40);
    }
    if (o->logits_out) {
        int64_t shape[2] = {T, p->vocab};
        if (!rt_npy_write_f32(o->logits_out, prefill_logits, shape, 2, &err)) {
            fprintf(stderr, "modelc: error: %s\n", err.msg);
            goto out;
        }
    }
    if (!o->quiet) {
        long long steps = generated > 1 ? generated - 1 : 0;
        int threads = so.threads ? so.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
        fprintf(stderr,
                "modelc: compile %.0f ms; prompt %lld tokens %.1f ms (%.1f tok/s); generated %lld tokens, %lld "
                "decode steps %.1f ms (%.1f tok/s); %s\n",
                compile_seconds * 1e3, (long long)T, t_prefill * 1e3, (double)T / t_prefill, (long long)generated,
                steps, t_decode * 1e3, steps ? (double)steps / t_decode : 0.0,
                p->target == RT_TARGET_CUDA ? rt_session_device(s) : threads_text(threads));
    }
    rc = 0;
out:
    rt_session_free(s);
    rt_sampler_free(&sampler);
    free(prefill_logits);
    free(hist);
    if (ids != o->prompt)
        free(ids);
    rt_tok_free(tok);
    return rc;
}
