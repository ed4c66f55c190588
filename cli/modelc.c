/* cli/modelc.c — the modelc command.
 *
 *   modelc check SPEC [--weights PATH | --config FILE] [--set NAME=VALUE]...
 *   modelc emit  SPEC --emit ir|llvm|asm|obj|cuda|ptx|sass [-o DIR] [build options]
 *   modelc run   SPEC --weights PATH --tokens 1,2,3 [--max-new N] [--logits-out F.npy] [build options]
 *
 * Exit status: 0 success; 1 bad input or a failed run, with a message that
 * says what and where; 2 bad command-line usage.  Nothing is written to an
 * output path unless the whole step succeeded (temporary name, then rename). */
#include <errno.h>
#include <libgen.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cpu/cpu.h"
#include "codegen/cuda/cuda.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

#define MODELC_VERSION "0.1.0"

static const char usage_text[] =
    "usage: modelc <command> SPEC.mdl [options]\n"
    "\n"
    "commands:\n"
    "  check   parse and verify a spec; diagnostics on stderr\n"
    "  emit    write the IR, LLVM IR, assembly or an object file of the kernels\n"
    "  run     compile for this CPU (JIT) or the GPU (--target cuda) and run a checkpoint\n"
    "  build   compile to a standalone executable (--lib: a shared library with the C API)\n"
    "  tokenize --weights PATH (--prompt TEXT | --chat TEXT): print the model's token ids\n"
    "\n"
    "binding a spec's parameters:\n"
    "  --weights PATH        a .safetensors file or a Hugging Face checkpoint directory\n"
    "                        (its config.json binds the spec's config() parameters)\n"
    "  --config FILE         a config.json to bind parameters from (default: the checkpoint's)\n"
    "  --set NAME=VALUE      override a spec parameter (repeatable)\n"
    "  --weight-dtype T      f32|f16|bf16: weight dtype to compile for when no checkpoint is given\n"
    "\n"
    "compiler options:\n"
    "  --target T            cpu (default), cuda (the GPU's architecture), or cuda:sm_80, cuda:sm_90 ...\n"
    "  --print-after=PASS    print the IR after PASS (lower, infer, fold, fuse, epilogue,\n"
    "                        quantize, plan, select)\n"
    "  --print-after-all     print the IR after every pass\n"
    "  --time-passes         print each pass's time on stderr\n"
    "  -O0 .. -O3            LLVM optimization level (default -O3)\n"
    "  --activations q8|f32  CPU, linears of Q8_0/Q4_0/Q4_1 weights: 8-bit activations and integer\n"
    "                        dot products as llama.cpp (q8, default), or f32 (exact, slower)\n"
    "\n"
    "emit:\n"
    "  --emit ir|llvm|asm|obj|cuda|ptx|sass  what to write (default ir; cuda, ptx and sass imply --target\n"
    "                        cuda; sass is cuobjdump's disassembly of the cubin: the CUDA toolkit's)\n"
    "  -o DIR                write DIR/<model>.{ir,ll,s,o,cu,ptx} instead of standard output\n"
    "\n"
    "build:\n"
    "  -o OUT                the executable to write (with --lib: libNAME.so, plus NAME.h beside it)\n"
    "  --lib                 a shared library with the C API of modelc.h instead of an executable\n"
    "  (the weights' dtypes and config are fixed at build time: give --weights or --config)\n"
    "\n"
    "run (and the executables modelc build writes):\n";
static const char usage_tail[] =
    "\n"
    "  modelc --version      version and host CPU\n"
    "exit status: 0 ok, 1 bad input or failed run, 2 bad usage\n";

static void print_usage(void)
{
    fputs(usage_text, stdout);
    fputs(rt_run_usage, stdout);
    fputs(usage_tail, stdout);
}

typedef struct Opts {
    const char *cmd, *spec, *config, *emit, *outdir, *print_after;
    bool print_after_all, time_passes, lib, f32_act;
    int nset;
    const char *set_names[CLI_MAX_SET], *set_values[CLI_MAX_SET];
    DType weight_dt;
    int opt;
    int target, sm;        /* RT_TARGET_*; CUDA: sm_XX named by --target (0: detect) */
    RtRunOptions run;      /* --weights and the run options (runtime/run.c) */
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
    rt_run_options_init(&o->run);
    o->opt = 3;
    if (argc < 2)
        usage_error("no command given");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage();
        exit(0);
    }
    if (!strcmp(argv[1], "--version")) {
        printf("modelc %s\nhost: %s\n", MODELC_VERSION, cpu_host_description());
        exit(0);
    }
    o->cmd = argv[1];
    if (strcmp(o->cmd, "check") && strcmp(o->cmd, "emit") && strcmp(o->cmd, "run") && strcmp(o->cmd, "build") &&
        strcmp(o->cmd, "tokenize"))
        usage_error("unknown command '%s' (commands: check, emit, run, build, tokenize)", o->cmd);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        RtErr err;
        int r = rt_run_option(argc, argv, &i, &o->run, &err);
        if (r < 0)
            usage_error("%s", err.msg);
        if (r > 0)
            continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage();
            exit(0);
        } else if ((v = value_of(argc, argv, &i, "--config"))) {
            o->config = v;
        } else if ((v = value_of(argc, argv, &i, "--set"))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                usage_error("--set needs NAME=VALUE, got '%s'", v);
            if (o->nset == CLI_MAX_SET)
                usage_error("too many --set options (at most %d)", CLI_MAX_SET);
            o->set_names[o->nset] = strndup(v, (size_t)(eq - v));
            o->set_values[o->nset++] = eq + 1;
        } else if ((v = value_of(argc, argv, &i, "--weight-dtype"))) {
            o->weight_dt = !strcmp(v, "f32") ? DT_F32 : !strcmp(v, "f16") ? DT_F16 : !strcmp(v, "bf16") ? DT_BF16 : DT_NONE;
            if (!o->weight_dt)
                usage_error("--weight-dtype takes f32, f16 or bf16, got '%s'", v);
        } else if ((v = value_of(argc, argv, &i, "--target"))) {
            if (!strcmp(v, "cpu"))
                o->target = RT_TARGET_CPU;
            else if (cuda_parse_target(v, &o->sm))
                o->target = RT_TARGET_CUDA;
            else
                usage_error("--target takes cpu, cuda or cuda:sm_XX (XX >= 80), got '%s'", v);
        } else if ((v = value_of(argc, argv, &i, "--print-after"))) {
            if (!pass_exists(v))
                usage_error("--print-after: no pass named '%s' (passes: lower, infer, fold, fuse, epilogue, quantize, plan, select)", v);
            o->print_after = v;
        } else if ((v = value_of(argc, argv, &i, "--activations"))) {
            if (strcmp(v, "q8") && strcmp(v, "f32"))
                usage_error("--activations takes q8 or f32, got '%s'", v);
            o->f32_act = !strcmp(v, "f32");
        } else if (!strcmp(a, "--print-after-all")) {
            o->print_after_all = true;
        } else if (!strcmp(a, "--lib")) {
            o->lib = true;
        } else if (!strcmp(a, "--time-passes")) {
            o->time_passes = true;
        } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            o->opt = a[2] - '0';
        } else if ((v = value_of(argc, argv, &i, "--emit"))) {
            if (strcmp(v, "ir") && strcmp(v, "llvm") && strcmp(v, "asm") && strcmp(v, "obj") && strcmp(v, "cuda") &&
                strcmp(v, "ptx") && strcmp(v, "sass"))
                usage_error("--emit takes ir, llvm, asm, obj, cuda, ptx or sass, got '%s'", v);
            o->emit = v;
        } else if ((v = value_of(argc, argv, &i, "-o"))) {
            o->outdir = v;
        } else if (a[0] == '-' && a[1]) {
            usage_error("unknown option '%s'", a);
        } else if (!o->spec) {
            o->spec = a;
        } else {
            usage_error("unexpected argument '%s' (one spec per run)", a);
        }
    }
    if (!strcmp(o->cmd, "tokenize")) {
        if (o->spec || !o->run.weights || !o->run.text)
            usage_error("tokenize takes --weights PATH and --prompt TEXT or --chat TEXT (no spec)");
        return;
    }
    if (!o->spec)
        usage_error("%s needs a spec file", o->cmd);
    bool run = !strcmp(o->cmd, "run"), emit = !strcmp(o->cmd, "emit"), build = !strcmp(o->cmd, "build");
    const RtRunOptions *r = &o->run;
    if (run && !r->weights)
        usage_error("run needs --weights PATH");
    if (run && !r->prompt == !r->text)
        usage_error("run needs one of --tokens 1,2,3, --prompt TEXT or --chat TEXT");
    if (build && (r->prompt || r->logits_out || r->text))
        usage_error("build takes the run options when the built program runs, not now");
    if (!run && !build && (r->prompt || r->logits_out || r->text || r->max_new != 16 || r->threads || r->ctx ||
                           r->quiet || r->profile))
        usage_error("--tokens, --prompt, --chat, --max-new, --logits-out, --threads, --ctx, --quiet and --profile go with 'run'");
    if (!emit && o->emit)
        usage_error("--emit goes with 'emit'");
    if (!emit && !build && o->outdir)
        usage_error("-o goes with 'emit' and 'build'");
    if (!build && o->lib)
        usage_error("--lib goes with 'build'");
    if (build && !o->outdir)
        usage_error("build needs -o OUT");
    if (build && o->lib) {
        const char *base = strrchr(o->outdir, '/') ? strrchr(o->outdir, '/') + 1 : o->outdir;
        size_t n = strlen(base);
        if (n < 7 || strncmp(base, "lib", 3) || strcmp(base + n - 3, ".so"))
            usage_error("--lib needs -o libNAME.so, got '%s'", o->outdir);
    }
    if (emit && !o->emit)
        o->emit = "ir";
    bool gpu_emit = emit && (!strcmp(o->emit, "cuda") || !strcmp(o->emit, "ptx") || !strcmp(o->emit, "sass"));
    if (gpu_emit)
        o->target = RT_TARGET_CUDA;
    if (o->target == RT_TARGET_CUDA && emit && (!strcmp(o->emit, "llvm") || !strcmp(o->emit, "asm") || !strcmp(o->emit, "obj")))
        usage_error("--emit %s is CPU code: use --emit cuda, ptx or sass with --target cuda", o->emit);
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
    CudaModule *cuda;
    RtGpuInfo gpu;         /* --target cuda: the device (name empty when none was asked) */
    int sm;                /* --target cuda: the architecture compiled for */
} Build;

static void build_free(Build *b)
{
    cpu_module_free(b->cpu);
    cuda_module_free(b->cuda);
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
    RtErr err = {.msg = ""};
    int sm = o->sm;
    if (o->target == RT_TARGET_CUDA && !sm) {
        /* the GPU's own architecture; without one, run fails and the others assume sm_90 */
        if (rt_gpu_info(&b->gpu, &err)) {
            sm = b->gpu.sm;
        } else if (!strcmp(o->cmd, "run")) {
            diag_error_nopos(&b->diags, "%s", err.msg);
            return false;
        } else {
            fprintf(stderr, "modelc: note: %s; compiling for sm_90 (name one with --target cuda:sm_XX)\n", err.msg);
            sm = 90;
        }
        if (sm < 80) {
            diag_error_nopos(&b->diags, "--target cuda: %s is sm_%d; modelc's CUDA kernels need sm_80 or newer",
                             b->gpu.name, sm);
            return false;
        }
    }
    b->sm = sm;
    /* the CUDA kernels read f32/f16/bf16 weights: GGUF blocks are widened when loaded */
    bool dequantize = o->run.dequantize || o->target == RT_TARGET_CUDA;
    if (o->run.weights && !rt_ckpt_open_opts(o->run.weights, dequantize, &b->ckpt, &err)) {
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
    const RtConfig *gguf_cfg = !b->config && b->ckpt ? rt_ckpt_config(b->ckpt) : NULL;   /* GGUF metadata */
    b->env = (CompileEnv){.config = gguf_cfg ? gguf_cfg : b->config, .ckpt = b->ckpt, .ckpt_path = o->run.weights,
                          .config_path = gguf_cfg ? o->run.weights : cfg,
                          .nset = o->nset, .set_names = o->set_names, .set_values = o->set_values,
                          .default_weight_dt = o->weight_dt, .target = o->target, .sm = sm, .sms = b->gpu.sms,
                          .f32_activations = o->f32_act};
    b->comp = (Compilation){.arena = b->arena, .diags = &b->diags, .module = m, .env = &b->env};
    PassOptions po = {.print_after = o->print_after, .print_after_all = o->print_after_all,
                      .time_passes = o->time_passes, .dump = dump};
    bool ok = pass_run_pipeline(&b->comp, &po);
    if (!ok && b->env.config_path && b->comp.config_values)   /* a bad config value shows up in the spec's terms */
        diag_note(&b->diags, (SrcLoc){0}, "the spec's parameters from %s: %s", b->env.config_path,
                  b->comp.config_values);
    return ok;
}

static bool compile_cpu(const Opts *o, Build *b)
{
    CpuOptions co = {.opt_level = o->opt, .dequantize = o->run.dequantize};
    double t0 = now();
    bool ok = cpu_codegen(&b->comp, &co, &b->cpu);
    if (ok && o->time_passes)
        fprintf(stderr, "modelc: codegen %8.3f ms (%d launches)\n", (now() - t0) * 1e3, cpu_program(b->cpu)->nlaunch);
    return ok;
}

static bool compile_cuda(const Opts *o, Build *b, bool nvrtc)
{
    const char *tl = getenv("MODELC_TIMELINE");
    CudaOptions co = {.sm = b->sm, .dequantize = true, .timeline = tl && *tl && strcmp(tl, "0")};
    double t0 = now();
    if (!cuda_codegen(&b->comp, &co, &b->cuda))
        return false;
    double t1 = now();
    if (nvrtc && !cuda_compile(b->cuda, &b->diags))
        return false;
    if (o->time_passes)
        fprintf(stderr, "modelc: codegen %8.3f ms (%d launches); NVRTC %8.3f ms%s\n", (t1 - t0) * 1e3,
                cuda_program(b->cuda)->nlaunch, (now() - t1) * 1e3,
                !nvrtc ? " (not run)" : cuda_cache_hit(b->cuda) ? " (cached)" : "");
    return true;
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

/* cuobjdump from $PATH or $CUDA_HOME/bin (default /usr/local/cuda/bin); false when there is none. */
static bool find_cuobjdump(char *path, size_t size)
{
    const char *env = getenv("PATH");
    char dirs[8192];
    const char *cuda = getenv("CUDA_HOME") ? getenv("CUDA_HOME") : "/usr/local/cuda";
    snprintf(dirs, sizeof dirs, "%s:%s/bin", env ? env : "", cuda);
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, size, "%s/cuobjdump", d);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

/* The cubin disassembled by cuobjdump -sass, into f. */
static bool emit_sass(Build *b, FILE *f)
{
    char tool[4096], tmp[] = "/tmp/modelc-sass-XXXXXX";
    if (!find_cuobjdump(tool, sizeof tool)) {
        diag_error_nopos(&b->diags, "--emit sass needs cuobjdump from the CUDA toolkit (none in PATH or "
                                    "$CUDA_HOME/bin); --emit ptx needs nothing more than NVRTC");
        return false;
    }
    const RtProgram *p = cuda_program(b->cuda);
    int fd = mkstemp(tmp);
    bool ok = fd >= 0 && write(fd, p->cubin, (size_t)p->cubin_len) == (ssize_t)p->cubin_len;
    if (fd >= 0)
        close(fd);
    if (!ok) {
        diag_error_nopos(&b->diags, "cannot write the cubin to %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return false;
    }
    int pfd[2];
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (pipe(pfd) == 0) {
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        posix_spawn_file_actions_addclose(&fa, pfd[0]);
        char *argv[] = {tool, "-sass", tmp, NULL};
        extern char **environ;
        if (posix_spawn(&pid, tool, &fa, NULL, argv, environ))
            pid = -1;
        close(pfd[1]);
        char buf[65536];
        ssize_t n;
        while ((n = read(pfd[0], buf, sizeof buf)) > 0)
            fwrite(buf, 1, (size_t)n, f);
        close(pfd[0]);
    }
    posix_spawn_file_actions_destroy(&fa);
    int st = 0;
    ok = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    unlink(tmp);
    if (!ok)
        diag_error_nopos(&b->diags, "%s -sass failed (%s)", tool,
                         pid <= 0 ? "cannot start it" : WIFEXITED(st) ? "nonzero exit" : "killed");
    return ok;
}

static int cmd_emit(const Opts *o)
{
    Build b = {0};
    if (!o->outdir && !strcmp(o->emit, "obj"))
        usage_error("--emit obj writes binary: give -o DIR");
    if (!compile_spec(o, &b, o->outdir ? stderr : stdout))
        return fail_diags(&b);
    struct stat st;
    if (o->outdir && stat(o->outdir, &st) && mkdir(o->outdir, 0777)) {
        diag_error_nopos(&b.diags, "cannot create directory %s: %s", o->outdir, strerror(errno));
        return fail_diags(&b);
    }
    const char *name = b.comp.graph->name;
    OutFile of = {0};
    FILE *f = stdout;
    if (o->outdir) {
        static const char *const ext[][2] = {{"ir", "ir"}, {"llvm", "ll"}, {"asm", "s"}, {"obj", "o"},
                                             {"cuda", "cu"}, {"ptx", "ptx"}, {"sass", "sass"}};
        const char *e = "ir";
        for (int i = 0; i < 7; i++)
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
    } else if (!strcmp(o->emit, "sass")) {
        ok = compile_cuda(o, &b, true) && emit_sass(&b, f);
    } else if (!strcmp(o->emit, "cuda") || !strcmp(o->emit, "ptx")) {
        ok = compile_cuda(o, &b, false);
        if (ok && !strcmp(o->emit, "cuda")) {
            fputs(cuda_source(b.cuda), f);
        } else if (ok) {
            char *ptx = cuda_ptx(b.cuda, &b.diags);
            ok = ptx != NULL;
            if (ok)
                fputs(ptx, f);
            free(ptx);
        }
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
                !strcmp(o->emit, "llvm") ? "ll" : !strcmp(o->emit, "asm") ? "s" : !strcmp(o->emit, "obj") ? "o"
                : !strcmp(o->emit, "cuda") ? "cu" : !strcmp(o->emit, "ptx") ? "ptx" : !strcmp(o->emit, "sass") ? "sass"
                : "ir");
    build_free(&b);
    return 0;
}

/* ---- run ------------------------------------------------------------------ */

static int cmd_run(const Opts *o)
{
    Build b = {0};
    double t0 = now();
    if (o->target == RT_TARGET_CUDA) {
        if (!compile_spec(o, &b, stderr) || !compile_cuda(o, &b, true))
            return fail_diags(&b);
        int rc = rt_run(cuda_program(b.cuda), b.ckpt, &o->run, now() - t0);
        build_free(&b);
        return rc;
    }
    if (!compile_spec(o, &b, stderr) || !compile_cpu(o, &b) || !cpu_jit(b.cpu, &b.diags))
        return fail_diags(&b);
    int rc = rt_run(cpu_program(b.cpu), b.ckpt, &o->run, now() - t0);
    build_free(&b);
    return rc;
}

/* ---- build ----------------------------------------------------------------- */

extern const unsigned char modelc_rt_archive[], modelc_rt_archive_end[];
/* A modelc built with SAN=1 carries an instrumented runtime: link it so. */
#ifdef MODELC_SAN
#define SAN_LINK "-fsanitize=address,undefined",
#else
#define SAN_LINK
#endif
extern const unsigned char modelc_jansson_archive[], modelc_jansson_archive_end[];

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static bool write_file(const char *path, const void *data, size_t n, Diags *d)
{
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(data, 1, n, f) == n;
    if (f && fclose(f))
        ok = false;
    if (!ok)
        diag_error_nopos(d, "cannot write %s: %s", path, strerror(errno));
    return ok;
}

/* Run a command (argv[0] looked up in PATH); true if it exited 0. */
static bool spawn(char *const argv[], Diags *d)
{
    pid_t pid;
    extern char **environ;
    int e = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (e) {
        diag_error_nopos(d, "cannot run %s: %s (modelc build links with a C compiler driver; set CC)", argv[0],
                         strerror(e));
        return false;
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        char cmd[1024];
        size_t k = 0;
        for (int i = 0; argv[i] && k < sizeof cmd - 1; i++)
            k += (size_t)snprintf(cmd + k, sizeof cmd - k, "%s%s", i ? " " : "", argv[i]);
        diag_error_nopos(d, "linking failed: %s", cmd);
        return false;
    }
    return true;
}

/* The build options that shape the output, canonical (no paths). */
static char *build_options(const Opts *o, const RtProgram *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    if (p->target == RT_TARGET_CUDA)
        fprintf(f, "--target cuda:sm_%d", p->sm);
    else
        fprintf(f, "--target cpu -O%d%s%s", o->opt, o->lib ? " --lib" : "", o->f32_act ? " --activations f32" : "");
    for (int i = 0; i < o->nset; i++)
        fprintf(f, " --set %s=%s", o->set_names[i], o->set_values[i]);
    if (o->weight_dt)
        fprintf(f, " --weight-dtype %s", ir_dtype_name(o->weight_dt));
    int counts[RT_DTYPE_COUNT] = {0};
    for (int i = 0; i < p->nbufs; i++)
        if (p->bufs[i].kind == RB_WEIGHT)
            counts[p->bufs[i].dtype]++;
    fprintf(f, "; weights");
    for (int t = 0; t < RT_DTYPE_COUNT; t++)
        if (counts[t])
            fprintf(f, " %d %s", counts[t], rt_dtype_name((RtDType)t));
    fclose(f);
    return buf;
}

static char *model_name_of(const char *out)
{
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    char *name = strndup(base + 3, strlen(base) - 6);   /* libNAME.so */
    for (char *c = name; c && *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            *c = '_';
    return name;
}

static bool write_header(const char *out, const char *name, const char *info, const RtProgram *p, Diags *d)
{
    char *dir = strdup(out), *path = NULL, *tmp = NULL, *text = NULL;
    bool ok = false;
    if (dir && asprintf(&path, "%s/%s.h", dirname(dir), name) >= 0 && asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) >= 0 &&
        asprintf(&text,
                 "/* %s.h — written by modelc build; see modelc.h for the API and its threading rules.\n"
                 " * %s */\n#ifndef MODELC_MODEL_%s_H\n#define MODELC_MODEL_%s_H\n\n#include <modelc.h>\n\n"
                 "#define %s_VOCAB %lld\n\n/* pass to modelc_open */\nextern const ModelcModelDesc %s_model;\n\n#endif\n",
                 name, info, name, name, name, (long long)p->vocab, name) >= 0) {
        ok = write_file(tmp, text, strlen(text), d);
        if (ok && rename(tmp, path)) {
            diag_error_nopos(d, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
            ok = false;
        }
        if (!ok)
            unlink(tmp);
    }
    free(dir);
    free(path);
    free(tmp);
    free(text);
    return ok;
}

/* A CUDA build's parts, written to dir: the plan (NUL-terminated), the cubin
 * and the --version text as files, and an assembly file that includes them
 * (.incbin) in an RtEmbedded named `sym`; for an executable, a main() that
 * hands it to rt_exe_main_cuda. */
static bool write_cuda_entry(const char *dir, const char *plan, const RtProgram *p, const char *info, const char *sym,
                             bool with_main, Diags *d)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/plan.bin", dir);
    bool ok = write_file(path, plan, strlen(plan) + 1, d);
    snprintf(path, sizeof path, "%s/kernels.cubin", dir);
    ok = ok && write_file(path, p->cubin, (size_t)p->cubin_len, d);
    snprintf(path, sizeof path, "%s/info.bin", dir);
    ok = ok && write_file(path, info, strlen(info) + 1, d);
    char *text = NULL;
    if (ok && asprintf(&text,
                       "    .file \"entry.S\"\n"   /* not the driver's temporary name: builds stay reproducible */
                       "    .section .rodata\n"
                       "    .balign 64\n"
                       "modelc_plan: .incbin \"%s/plan.bin\"\nmodelc_plan_end:\n"
                       "    .balign 64\n"
                       "modelc_cubin: .incbin \"%s/kernels.cubin\"\nmodelc_cubin_end:\n"
                       "modelc_info: .incbin \"%s/info.bin\"\n"
                       "    .section .data.rel.ro\n"   /* pointers: relocated when a PIE or library loads */
                       "    .balign 8\n"
                       "    .global %s\n"
                       "    .type %s, @object\n"
                       "    .size %s, %zu\n"   /* RtEmbedded: plan, plan_len, kernels, nkernels, info, cubin, cubin_len */
                       "%s: .quad modelc_plan, modelc_plan_end - modelc_plan - 1, 0, 0, modelc_info, modelc_cubin, "
                       "modelc_cubin_end - modelc_cubin\n"
                       "    .section .note.GNU-stack,\"\",@progbits\n",
                       dir, dir, dir, sym, sym, sym, sizeof(RtEmbedded), sym) < 0) {
        diag_error_nopos(d, "out of memory");
        return false;
    }
    snprintf(path, sizeof path, "%s/entry.S", dir);
    ok = ok && write_file(path, text, strlen(text), d);
    free(text);
    static const char main_c[] =
        "/* written by modelc build --target cuda */\n"
        "extern const char modelc_embedded[];\n"
        "int rt_exe_main_cuda(int argc, char **argv, const void *embedded);\n"
        "int main(int argc, char **argv)\n"
        "{\n"
        "    return rt_exe_main_cuda(argc, argv, modelc_embedded);\n"
        "}\n";
    snprintf(path, sizeof path, "%s/main.c", dir);
    return ok && (!with_main || write_file(path, main_c, sizeof main_c - 1, d));
}

/* the files write_cuda_entry leaves in the build's temporary directory */
static const char *const cuda_parts[] = {"plan.bin", "kernels.cubin", "info.bin", "entry.S", "main.c"};

static int cmd_build(const Opts *o)
{
    Build b = {0};
    bool cuda = o->target == RT_TARGET_CUDA;
    if (!compile_spec(o, &b, stderr) || !(cuda ? compile_cuda(o, &b, true) : compile_cpu(o, &b)))
        return fail_diags(&b);
    const RtProgram *p = cuda ? cuda_program(b.cuda) : cpu_program(b.cpu);
    char *plan = rt_program_to_json(p), *opts = build_options(o, p);
    char *ir = cuda ? strdup(cuda_source(b.cuda)) : cpu_module_text(b.cpu);
    char *name = o->lib ? model_name_of(o->outdir) : strdup("modelc");
    char dir[] = "/tmp/modelc-build-XXXXXX";
    char *obj = NULL, *rtlib = NULL, *jlib = NULL, *tmp_out = NULL, *info = NULL, *sym = NULL;
    bool made_dir = mkdtemp(dir) != NULL, ok = false;
    if (!plan || !opts || !ir || !name || !made_dir) {
        diag_error_nopos(&b.diags, made_dir ? "out of memory" : "cannot create a temporary directory");
        goto out;
    }
    /* content hash: the spec, the options, the kernels' IR, the plan */
    const Source *src = b.comp.module->src;
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, src->text, src->len);
    h = fnv1a(h, opts, strlen(opts));
    h = fnv1a(h, ir, strlen(ir));
    h = fnv1a(h, plan, strlen(plan));
    const char *spec_base = strrchr(o->spec, '/') ? strrchr(o->spec, '/') + 1 : o->spec;
    if (asprintf(&info, "modelc %s; spec %s (fnv1a-64 %016llx); options %s; %s %s; content %016llx", MODELC_VERSION,
                 spec_base, (unsigned long long)fnv1a(0xcbf29ce484222325ull, src->text, src->len), opts,
                 cuda ? "nvrtc" : "host", cuda ? cuda_nvrtc_description() : cpu_host_description(),
                 (unsigned long long)h) < 0 ||
        asprintf(&sym, "%s_model", name) < 0 || asprintf(&obj, "%s/model.o", dir) < 0 ||
        asprintf(&rtlib, "%s/libmodelc_rt.a", dir) < 0 || asprintf(&jlib, "%s/libjansson.a", dir) < 0 || asprintf(&tmp_out, "%s.tmp.%d", o->outdir, (int)getpid()) < 0) {
        diag_error_nopos(&b.diags, "out of memory");
        goto out;
    }
    if (cuda) {
        if (!write_cuda_entry(dir, plan, p, info, o->lib ? sym : "modelc_embedded", !o->lib, &b.diags))
            goto out;
    } else {
        cpu_add_entry(b.cpu, o->lib ? sym : "modelc_model", plan, info, !o->lib);
        FILE *f = fopen(obj, "wb");
        if (!f) {
            diag_error_nopos(&b.diags, "cannot write %s: %s", obj, strerror(errno));
            goto out;
        }
        bool emitted = cpu_emit(b.cpu, CPU_EMIT_OBJ, f, &b.diags);
        if (fclose(f) || !emitted)
            goto out;
    }
    if (!write_file(rtlib, modelc_rt_archive, (size_t)(modelc_rt_archive_end - modelc_rt_archive), &b.diags) ||
        !write_file(jlib, modelc_jansson_archive, (size_t)(modelc_jansson_archive_end - modelc_jansson_archive), &b.diags))
        goto out;
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    char main_c[4200], entry_s[4200];
    snprintf(main_c, sizeof main_c, "%s/main.c", dir);
    snprintf(entry_s, sizeof entry_s, "%s/entry.S", dir);
    if (cuda && o->lib) {   /* the driver is opened at run time (dlopen): -ldl, no CUDA library linked */
        char *argv[] = {(char *)cc, "-shared", "-o", tmp_out, entry_s, "-Wl,--whole-archive", rtlib, "-Wl,--no-whole-archive",
                        "-l:libjansson.so.4", "-ldl", "-lpthread", "-lm", SAN_LINK NULL};
        ok = spawn(argv, &b.diags);
    } else if (cuda) {
        char *argv[] = {(char *)cc, "-o", tmp_out, main_c, entry_s, rtlib, jlib, "-ldl", "-lpthread", "-lm", SAN_LINK NULL};
        ok = spawn(argv, &b.diags);
    } else if (o->lib) {
        char *argv[] = {(char *)cc, "-shared", "-o", tmp_out, obj, "-Wl,--whole-archive", rtlib, "-Wl,--no-whole-archive",
                        "-l:libjansson.so.4", "-lpthread", "-lm", SAN_LINK NULL};
        ok = spawn(argv, &b.diags);
    } else {
        char *argv[] = {(char *)cc, "-o", tmp_out, obj, rtlib, jlib, "-lpthread", "-lm", SAN_LINK NULL};
        ok = spawn(argv, &b.diags);
    }
    if (ok && o->lib)
        ok = write_header(o->outdir, name, info, p, &b.diags);
    if (ok && rename(tmp_out, o->outdir)) {
        diag_error_nopos(&b.diags, "cannot rename %s to %s: %s", tmp_out, o->outdir, strerror(errno));
        ok = false;
    }
    if (ok)
        fprintf(stderr, "modelc: wrote %s (%d kernel launches; %s)\n", o->outdir, p->nlaunch, info);
out:
    if (tmp_out)
        unlink(tmp_out);
    if (obj)
        unlink(obj);
    if (made_dir)
        for (size_t i = 0; i < sizeof cuda_parts / sizeof *cuda_parts; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", dir, cuda_parts[i]);
            unlink(path);
        }
    if (rtlib)
        unlink(rtlib);
    if (jlib)
        unlink(jlib);
    if (made_dir)
        rmdir(dir);
    free(plan);
    free(opts);
    free(ir);
    free(name);
    free(obj);
    free(rtlib);
    free(jlib);
    free(tmp_out);
    free(info);
    free(sym);
    if (!ok)
        return fail_diags(&b);
    build_free(&b);
    return 0;
}

/* ---- tokenize ------------------------------------------------------------- */

static int cmd_tokenize(const Opts *o)
{
    RtErr err = {.msg = ""};
    RtCheckpoint *ck = NULL;
    int32_t *ids = NULL;
    int64_t n = 0;
    int rc = 1;
    if (!rt_ckpt_open(o->run.weights, &ck, &err) || !(ids = rt_run_tokenize(ck, &o->run, &n, &err))) {
        fprintf(stderr, "modelc: error: %s\n", err.msg);
    } else {
        for (int64_t i = 0; i < n; i++)
            printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        rc = 0;
    }
    free(ids);
    rt_ckpt_close(ck);
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
    else if (!strcmp(o.cmd, "build"))
        rc = cmd_build(&o);
    else if (!strcmp(o.cmd, "tokenize"))
        rc = cmd_tokenize(&o);
    else
        rc = cmd_run(&o);
    for (int i = 0; i < o.nset; i++)
        free((char *)o.set_names[i]);
    rt_run_options_free(&o.run);
    return rc;
}
