/* cli/modelc.c — the modelc command.
 *
 *   modelc check SPEC [--weights PATH | --config FILE] [--set NAME=VALUE]...
 *   modelc emit  SPEC --emit ir|llvm|asm|obj [-o DIR] [build options]
 *   modelc run   SPEC --weights PATH --tokens 1,2,3 [--max-new N] [--logits-out F.npy] [build options]
 *
 * Exit status: 0 success; 1 bad input or a failed run, with a message that
 * says what and where; 2 bad command-line usage.  Nothing is written to an
 * output path unless the whole step succeeded (temporary name, then rename). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cpu/cpu.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

#define MODELC_VERSION "0.1.0"
#define MAX_SET 64
#define MAX_TOKENS 1000000

static const char usage_text[] =
    "usage: modelc <command> SPEC.mdl [options]\n"
    "\n"
    "commands:\n"
    "  check   parse and verify a spec; diagnostics on stderr\n"
    "  emit    write the IR, LLVM IR, assembly or an object file of the kernels\n"
    "  run     compile for this CPU (JIT) and run a checkpoint\n"
    "\n"
    "binding a spec's parameters:\n"
    "  --weights PATH        a .safetensors file or a Hugging Face checkpoint directory\n"
    "                        (its config.json binds the spec's config() parameters)\n"
    "  --config FILE         a config.json to bind parameters from (default: the checkpoint's)\n"
    "  --set NAME=VALUE      override a spec parameter (repeatable)\n"
    "  --weight-dtype T      f32|f16|bf16: weight dtype to compile for when no checkpoint is given\n"
    "\n"
    "compiler options:\n"
    "  --target cpu          the only target in this build (CUDA comes later)\n"
    "  --print-after=PASS    print the IR after PASS (lower, infer, fold, fuse, plan)\n"
    "  --print-after-all     print the IR after every pass\n"
    "  --time-passes         print each pass's time on stderr\n"
    "  -O0 .. -O3            LLVM optimization level (default -O3)\n"
    "\n"
    "emit:\n"
    "  --emit ir|llvm|asm|obj  what to write (default ir)\n"
    "  -o DIR                write DIR/<model>.{ir,ll,s,o} instead of standard output\n"
    "\n"
    "run:\n"
    "  --tokens 1,2,3        prompt token ids\n"
    "  --max-new N           greedy tokens to generate (default 16); printed on one stdout line\n"
    "  --logits-out F.npy    write float32 logits [T, vocab] for every prompt position\n"
    "  --threads N           CPU threads (default: all online CPUs)\n"
    "  --ctx N               KV cache positions (default: prompt + max-new)\n"
    "  --quiet               no timing line on stderr\n"
    "  --profile             time every kernel; print the costliest on stderr\n"
    "\n"
    "  modelc --version      version and host CPU\n"
    "exit status: 0 ok, 1 bad input or failed run, 2 bad usage\n";

typedef struct Opts {
    const char *cmd, *spec, *weights, *config, *emit, *outdir, *tokens, *prompt, *logits_out, *print_after;
    bool print_after_all, time_passes, quiet, profile;
    int nset;
    const char *set_names[MAX_SET], *set_values[MAX_SET];
    DType weight_dt;
    long long max_new, threads, ctx;
    int opt;
} Opts;

static _Noreturn void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("modelc: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see 'modelc --help')\n", stderr);
    exit(2);
}

static long long parse_count(const char *flag, const char *v, long long lo, long long hi)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < lo || n > hi)
        usage_error("%s needs an integer from %lld to %lld, got '%s'", flag, lo, hi, v);
    return n;
}

/* --flag VALUE or --flag=VALUE */
static const char *value_of(int argc, char **argv, int *i, const char *flag)
{
    size_t n = strlen(flag);
    if (!strncmp(argv[*i], flag, n) && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (strcmp(argv[*i], flag))
        return NULL;
    if (*i + 1 >= argc)
        usage_error("%s needs a value", flag);
    return argv[++*i];
}

static void parse_args(int argc, char **argv, Opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_new = 16;
    o->opt = 3;
    if (argc < 2)
        usage_error("no command given");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_text, stdout);
        exit(0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("modelc %s\nhost: %s\n", MODELC_VERSION, cpu_host_description());
        exit(0);
    }
    o->cmd = argv[1];
    if (strcmp(o->cmd, "check") && strcmp(o->cmd, "emit") && strcmp(o->cmd, "run"))
        usage_error("unknown command '%s' (commands: check, emit, run)", o->cmd);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            exit(0);
        } else if ((v = value_of(argc, argv, &i, "--weights"))) {
            o->weights = v;
        } else if ((v = value_of(argc, argv, &i, "--config"))) {
            o->config = v;
        } else if ((v = value_of(argc, argv, &i, "--set"))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                usage_error("--set needs NAME=VALUE, got '%s'", v);
            if (o->nset == MAX_SET)
                usage_error("too many --set options (at most %d)", MAX_SET);
            o->set_names[o->nset] = strndup(v, (size_t)(eq - v));
            o->set_values[o->nset++] = eq + 1;
        } else if ((v = value_of(argc, argv, &i, "--weight-dtype"))) {
            o->weight_dt = !strcmp(v, "f32") ? DT_F32 : !strcmp(v, "f16") ? DT_F16 : !strcmp(v, "bf16") ? DT_BF16 : DT_NONE;
            if (!o->weight_dt)
                usage_error("--weight-dtype takes f32, f16 or bf16, got '%s'", v);
        } else if ((v = value_of(argc, argv, &i, "--target"))) {
            if (strcmp(v, "cpu"))
                usage_error("--target %s: this build has the cpu target only (CUDA is not built yet)", v);
        } else if ((v = value_of(argc, argv, &i, "--print-after"))) {
            if (!pass_exists(v))
                usage_error("--print-after: no pass named '%s' (passes: lower, infer, fold, fuse, plan)", v);
            o->print_after = v;
        } else if (!strcmp(a, "--print-after-all")) {
            o->print_after_all = true;
        } else if (!strcmp(a, "--time-passes")) {
            o->time_passes = true;
        } else if (!strcmp(a, "--profile")) {
            o->profile = true;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = true;
        } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            o->opt = a[2] - '0';
        } else if ((v = value_of(argc, argv, &i, "--emit"))) {
            if (strcmp(v, "ir") && strcmp(v, "llvm") && strcmp(v, "asm") && strcmp(v, "obj"))
                usage_error("--emit takes ir, llvm, asm or obj, got '%s'", v);
            o->emit = v;
        } else if ((v = value_of(argc, argv, &i, "-o"))) {
            o->outdir = v;
        } else if ((v = value_of(argc, argv, &i, "--tokens"))) {
            o->tokens = v;
        } else if ((v = value_of(argc, argv, &i, "--prompt"))) {
            o->prompt = v;
        } else if ((v = value_of(argc, argv, &i, "--max-new"))) {
            o->max_new = parse_count("--max-new", v, 0, MAX_TOKENS);
        } else if ((v = value_of(argc, argv, &i, "--logits-out"))) {
            o->logits_out = v;
        } else if ((v = value_of(argc, argv, &i, "--threads"))) {
            o->threads = parse_count("--threads", v, 1, 1024);
        } else if ((v = value_of(argc, argv, &i, "--ctx"))) {
            o->ctx = parse_count("--ctx", v, 1, 1 << 24);
        } else if (a[0] == '-' && a[1]) {
            usage_error("unknown option '%s'", a);
        } else if (!o->spec) {
            o->spec = a;
        } else {
            usage_error("unexpected argument '%s' (one spec per run)", a);
        }
    }
    if (!o->spec)
        usage_error("%s needs a spec file", o->cmd);
    bool run = !strcmp(o->cmd, "run"), emit = !strcmp(o->cmd, "emit");
    if (run && !o->weights)
        usage_error("run needs --weights PATH");
    if (run && o->prompt)
        usage_error("--prompt needs a tokenizer, which this build does not have yet; pass --tokens");
    if (run && !o->tokens)
        usage_error("run needs --tokens 1,2,3");
    if (!run && (o->tokens || o->logits_out || o->prompt))
        usage_error("--tokens, --prompt and --logits-out go with 'run'");
    if (!emit && (o->emit || o->outdir))
        usage_error("--emit and -o go with 'emit'");
    if (emit && !o->emit)
        o->emit = "ir";
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- compiling ------------------------------------------------------------ */

typedef struct Build {
    Arena *arena;
    Diags diags;
    RtCheckpoint *ckpt;
    RtConfig *config;
    Compilation comp;
    CompileEnv env;
    CpuModule *cpu;
} Build;

static void build_free(Build *b)
{
    cpu_module_free(b->cpu);
    rt_config_free(b->config);
    rt_ckpt_close(b->ckpt);
    arena_free(b->arena);
}

static int fail_diags(Build *b)
{
    diag_print(&b->diags, stderr);
    build_free(b);
    return 1;
}

/* Everything up to the planned graph: weights, config, parse, check, passes. */
static bool compile_spec(const Opts *o, Build *b, FILE *dump)
{
    b->arena = arena_new();
    diag_init(&b->diags, b->arena);
    RtErr err = {{0}};
    if (o->weights && !rt_ckpt_open(o->weights, &b->ckpt, &err)) {
        diag_error_nopos(&b->diags, "%s", err.msg);
        return false;
    }
    const char *cfg = o->config ? o->config : b->ckpt ? rt_ckpt_config_path(b->ckpt) : NULL;
    if (cfg && !rt_config_load(cfg, &b->config, &err)) {
        diag_error_nopos(&b->diags, "%s", err.msg);
        return false;
    }
    Module *m = fe_parse_file(o->spec, b->arena, &b->diags);
    if (!m || !fe_check(m, &b->diags))
        return false;
    b->env = (CompileEnv){.config = b->config, .ckpt = b->ckpt, .ckpt_path = o->weights, .config_path = cfg,
                          .nset = o->nset, .set_names = o->set_names, .set_values = o->set_values,
                          .default_weight_dt = o->weight_dt};
    b->comp = (Compilation){.arena = b->arena, .diags = &b->diags, .module = m, .env = &b->env};
    PassOptions po = {.print_after = o->print_after, .print_after_all = o->print_after_all,
                      .time_passes = o->time_passes, .dump = dump};
    return pass_run_pipeline(&b->comp, &po);
}

static bool compile_cpu(const Opts *o, Build *b)
{
    CpuOptions co = {.opt_level = o->opt};
    double t0 = now();
    bool ok = cpu_codegen(&b->comp, &co, &b->cpu);
    if (ok && o->time_passes)
        fprintf(stderr, "modelc: codegen %8.3f ms (%d launches)\n", (now() - t0) * 1e3, cpu_program(b->cpu)->nlaunch);
    return ok;
}

/* ---- check / emit ------------------------------------------------------- */

static int cmd_check(const Opts *o)
{
    Build b = {0};
    if (!compile_spec(o, &b, stdout))
        return fail_diags(&b);
    build_free(&b);
    return 0;
}

/* Write through a temporary file in the same directory, renamed at the end. */
typedef struct OutFile {
    char *path, *tmp;
    FILE *f;
} OutFile;

static bool out_open(OutFile *of, const char *dir, const char *name, const char *ext, Diags *d)
{
    if (asprintf(&of->path, "%s/%s.%s", dir, name, ext) < 0 ||
        asprintf(&of->tmp, "%s/.%s.%s.tmp.%d", dir, name, ext, (int)getpid()) < 0) {
        diag_error_nopos(d, "out of memory");
        return false;
    }
    of->f = fopen(of->tmp, "wb");
    if (!of->f) {
        diag_error_nopos(d, "cannot write %s: %s", of->tmp, strerror(errno));
        return false;
    }
    return true;
}

static bool out_close(OutFile *of, bool ok, Diags *d)
{
    if (of->f && fclose(of->f) && ok) {
        diag_error_nopos(d, "writing %s failed: %s", of->path, strerror(errno));
        ok = false;
    }
    if (of->tmp && ok && rename(of->tmp, of->path)) {
        diag_error_nopos(d, "cannot rename %s to %s: %s", of->tmp, of->path, strerror(errno));
        ok = false;
    }
    if (of->tmp && !ok)
        unlink(of->tmp);
    free(of->path);
    free(of->tmp);
    return ok;
}

static int cmd_emit(const Opts *o)
{
    Build b = {0};
    if (o->outdir) {
        struct stat st;
        if (stat(o->outdir, &st) && mkdir(o->outdir, 0777)) {
            fprintf(stderr, "modelc: error: cannot create directory %s: %s\n", o->outdir, strerror(errno));
            return 1;
        }
    }
    if (!o->outdir && !strcmp(o->emit, "obj"))
        usage_error("--emit obj writes binary: give -o DIR");
    if (!compile_spec(o, &b, o->outdir ? stderr : stdout))
        return fail_diags(&b);
    const char *name = b.comp.graph->name;
    OutFile of = {0};
    FILE *f = stdout;
    if (o->outdir) {
        static const char *const ext[][2] = {{"ir", "ir"}, {"llvm", "ll"}, {"asm", "s"}, {"obj", "o"}};
        const char *e = "ir";
        for (int i = 0; i < 4; i++)
            if (!strcmp(o->emit, ext[i][0]))
                e = ext[i][1];
        if (!out_open(&of, o->outdir, name, e, &b.diags)) {
            out_close(&of, false, &b.diags);
            return fail_diags(&b);
        }
        f = of.f;
    }
    bool ok = true;
    if (!strcmp(o->emit, "ir")) {
        ir_print(b.comp.graph, f);
    } else {
        ok = compile_cpu(o, &b);
        if (ok) {
            CpuEmitKind k = !strcmp(o->emit, "llvm") ? CPU_EMIT_LLVM : !strcmp(o->emit, "asm") ? CPU_EMIT_ASM : CPU_EMIT_OBJ;
            ok = cpu_emit(b.cpu, k, f, &b.diags);
        }
    }
    if (o->outdir && !out_close(&of, ok, &b.diags))
        ok = false;
    if (!ok)
        return fail_diags(&b);
    if (o->outdir)
        fprintf(stderr, "modelc: wrote %s/%s.%s\n", o->outdir, name,
                !strcmp(o->emit, "llvm") ? "ll" : !strcmp(o->emit, "asm") ? "s" : !strcmp(o->emit, "obj") ? "o" : "ir");
    build_free(&b);
    return 0;
}

/* ---- run ------------------------------------------------------------------ */

static int32_t *parse_tokens(const char *s, int64_t *n)
{
    int64_t cap = 16, k = 0;
    int32_t *t = malloc((size_t)cap * sizeof *t);
    for (const char *p = s; t;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',') || k >= MAX_TOKENS) {
            free(t);
            usage_error("--tokens takes comma-separated token ids (0 to 2^31-1), got '%s'", s);
        }
        if (k == cap) {
            int32_t *nt = realloc(t, (size_t)(cap *= 2) * sizeof *t);
            if (!nt) {
                free(t);
                return NULL;
            }
            t = nt;
        }
        t[k++] = (int32_t)v;
        if (!*end)
            break;
        p = end + 1;
    }
    *n = k;
    return t;
}

static int32_t argmax_row(const float *row, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return (int32_t)best;
}

static int cmd_run(const Opts *o)
{
    int64_t T;
    int32_t *prompt = parse_tokens(o->tokens, &T);
    if (!prompt) {
        fprintf(stderr, "modelc: error: out of memory\n");
        return 1;
    }
    Build b = {0};
    double t0 = now();
    if (!compile_spec(o, &b, stderr) || !compile_cpu(o, &b) || !cpu_jit(b.cpu, &b.diags)) {
        free(prompt);
        return fail_diags(&b);
    }
    double t_compile = now() - t0;
    const RtProgram *p = cpu_program(b.cpu);
    RtSessionOptions so = {.threads = (int)o->threads, .max_step = T, .max_ctx = o->ctx ? o->ctx : T + o->max_new};
    RtSession *s = NULL;
    RtErr err = {{0}};
    float *prefill_logits = NULL;
    int rc = 1;
    if (so.max_ctx < T + (o->max_new > 0 ? o->max_new - 1 : 0)) {
        fprintf(stderr, "modelc: error: --ctx %lld is too small for %lld prompt tokens and %lld new ones\n",
                (long long)so.max_ctx, (long long)T, o->max_new);
        goto out;
    }
    if (!rt_session_new(p, b.ckpt, &so, &s, &err)) {
        fprintf(stderr, "modelc: error: %s\n", err.msg);
        goto out;
    }
    rt_session_profile(s, o->profile);
    double t1 = now();
    const float *logits = rt_session_step(s, prompt, T, &err);
    if (!logits) {
        fprintf(stderr, "modelc: error: %s\n", err.msg);
        goto out;
    }
    double t_prefill = now() - t1;
    if (o->logits_out) {
        prefill_logits = malloc((size_t)T * (size_t)p->vocab * sizeof *prefill_logits);
        if (!prefill_logits) {
            fprintf(stderr, "modelc: error: out of memory keeping %lld x %lld logits\n", (long long)T, (long long)p->vocab);
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
        fprintf(stderr, "modelc: compile %.0f ms; prefill %lld tokens %.1f ms (%.1f tok/s); decode %lld tokens %.1f ms (%.1f tok/s); %d threads\n",
                t_compile * 1e3, (long long)T, t_prefill * 1e3, (double)T / t_prefill, steps, t_decode * 1e3,
                steps ? (double)steps / t_decode : 0.0, so.threads ? so.threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    }
    rc = 0;
out:
    rt_session_free(s);
    free(prefill_logits);
    free(prompt);
    build_free(&b);
    return rc;
}

int main(int argc, char **argv)
{
    Opts o;
    parse_args(argc, argv, &o);
    int rc;
    if (!strcmp(o.cmd, "check"))
        rc = cmd_check(&o);
    else if (!strcmp(o.cmd, "emit"))
        rc = cmd_emit(&o);
    else
        rc = cmd_run(&o);
    for (int i = 0; i < o.nset; i++)
        free((char *)o.set_names[i]);
    return rc;
}
