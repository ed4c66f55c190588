/* runtime/run.c — the run loop behind `modelc run` and built executables.
 *
 * Options are parsed here so both front ends accept exactly the same ones.
 * Output contract: the generated token ids on one stdout line, separated by
 * spaces; one timing line on stderr (unless --quiet); --logits-out written
 * last, through a temporary file, only when everything before succeeded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/runtime.h"

const char rt_run_usage[] =
    "  --weights PATH        a .safetensors file or a Hugging Face checkpoint directory\n"
    "  --tokens 1,2,3        prompt token ids\n"
    "  --max-new N           greedy tokens to generate (default 16); printed on one stdout line\n"
    "  --logits-out F.npy    write float32 logits [T, vocab] for every prompt position\n"
    "  --threads N           CPU threads (default: all online CPUs)\n"
    "  --ctx N               KV cache positions (default: prompt + max-new)\n"
    "  --quiet               no timing line on stderr\n"
    "  --profile             time every kernel; print the costliest on stderr\n";

void rt_run_options_init(RtRunOptions *o)
{
    memset(o, 0, sizeof *o);
    o->max_new = 16;
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
        o->prompt_text = true;
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

static int32_t argmax_row(const float *row, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return (int32_t)best;
}

int rt_run(const RtProgram *p, const RtCheckpoint *ckpt, const RtRunOptions *o, double compile_seconds)
{
    int64_t T = o->nprompt;
    RtSessionOptions so = {.threads = (int)o->threads, .max_step = T, .max_ctx = o->ctx ? o->ctx : T + o->max_new};
    RtSession *s = NULL;
    RtErr err = {{0}};
    float *prefill_logits = NULL;
    int rc = 1;
    if (so.max_ctx < T + (o->max_new > 0 ? o->max_new - 1 : 0)) {
        fprintf(stderr, "modelc: error: --ctx %lld is too small for %lld prompt tokens and %lld new ones\n",
                (long long)so.max_ctx, (long long)T, o->max_new);
        return 1;
    }
    if (!rt_session_new(p, ckpt, &so, &s, &err)) {
        fprintf(stderr, "modelc: error: %s\n", err.msg);
        return 1;
    }
    rt_session_profile(s, o->profile);
    double t1 = now();
    const float *logits = rt_session_step(s, o->prompt, T, &err);
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
        rt_session_print_profile(s, stderr, 12);
        rt_session_profile(s, true);
    }
    double t2 = now();
    int32_t next = argmax_row(logits + (T - 1) * p->vocab, p->vocab);
    for (long long i = 0; i < o->max_new; i++) {
        printf(i ? " %d" : "%d", next);
        fflush(stdout);
        if (i + 1 == o->max_new)
            break;
        logits = rt_session_step(s, &next, 1, &err);
        if (!logits) {
            fprintf(stderr, "\nmodelc: error: %s\n", err.msg);
            goto out;
        }
        next = argmax_row(logits, p->vocab);
    }
    printf("\n");
    fflush(stdout);
    double t_decode = now() - t2;
    if (o->profile) {
        fprintf(stderr, "decode ");
        rt_session_print_profile(s, stderr, 12);
    }
    if (o->logits_out) {
        int64_t shape[2] = {T, p->vocab};
        if (!rt_npy_write_f32(o->logits_out, prefill_logits, shape, 2, &err)) {
            fprintf(stderr, "modelc: error: %s\n", err.msg);
            goto out;
        }
    }
    if (!o->quiet) {
        long long steps = o->max_new > 1 ? o->max_new - 1 : 0;
        int threads = so.threads ? so.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
        fprintf(stderr,
                "modelc: compile %.0f ms; prefill %lld tokens %.1f ms (%.1f tok/s); decode %lld tokens %.1f ms "
                "(%.1f tok/s); %d threads\n",
                compile_seconds * 1e3, (long long)T, t_prefill * 1e3, (double)T / t_prefill, steps, t_decode * 1e3,
                steps ? (double)steps / t_decode : 0.0, threads);
    }
    rc = 0;
out:
    rt_session_free(s);
    free(prefill_logits);
    return rc;
}
