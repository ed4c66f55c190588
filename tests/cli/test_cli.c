/* tests/cli/test_cli.c — the modelc command, run as a subprocess.
 *
 * Each test runs build/modelc (or $MODELC) with fork/exec, its stdout and
 * stderr going to files in a mkdtemp directory, and checks the exit status
 * (0 ok, 1 bad input or failed run, 2 bad usage), what it printed and what it
 * wrote or did not write:
 *   - usage errors exit 2 and say what was wrong;
 *   - a malformed spec exits 1 with file:line:col: error:;
 *   - check and emit on models/llama.mdl and models/mlp.mdl;
 *   - emit -o DIR writes exactly DIR/mlp.{ll,s,o} and nothing else, and
 *     nothing at all when the spec fails;
 *   - run on a good checkpoint, a truncated one, and with a token id past the
 *     vocabulary: failures exit 1 naming the fault and leave no --logits-out.
 * Checkpoints come from tests/ref/make_checkpoint.py (NumPy).  Run from the
 * repository root (tests/run_tests.py does). */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/test_util.h"

#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[64];          /* mkdtemp; removed at the end */
static char ckpt[128];         /* root/mlp: a good f32 mlp checkpoint */
static const char *modelc;

typedef struct Res {
    int status;                /* exit status, or 128+signal */
    char *out, *err;
} Res;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

static void res_free(Res *r)
{
    free(r->out);
    free(r->err);
}

/* Run modelc with the given arguments (NULL-terminated). */
static Res run_argv(const char *const *args)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = modelc;
    for (int i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char out[160], err[160];
    snprintf(out, sizeof out, "%s/stdout", root);
    snprintf(err, sizeof err, "%s/stderr", root);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fi = open("/dev/null", O_RDONLY);
        if (fo < 0 || fe < 0 || fi < 0)
            _exit(126);
        dup2(fi, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(modelc, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    Res r = {.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)};
    r.out = slurp(out);
    r.err = slurp(err);
    assert_non_null(r.out);
    assert_non_null(r.err);
    if (r.status == 127)
        fail_msg("cannot run %s (build it first, or set MODELC)", modelc);
    return r;
}

#define RUN(...) run_argv((const char *const[]){__VA_ARGS__, NULL})

/* status must be want; on mismatch show what it printed */
static void expect_status(const Res *r, int want)
{
    if (r->status != want)
        fail_msg("exit status %d, wanted %d\n--- stdout\n%s--- stderr\n%s", r->status, want, r->out, r->err);
}

static void expect_in(const char *hay, const char *needle, const char *what)
{
    if (!strstr(hay, needle))
        fail_msg("%s does not contain \"%s\":\n%s", what, needle, hay);
}

/* a usage error: exit 2, nothing on stdout, stderr says why and points at --help */
static void expect_usage(Res r, const char *why)
{
    expect_status(&r, 2);
    assert_string_equal(r.out, "");
    expect_in(r.err, why, "stderr");
    expect_in(r.err, "modelc --help", "stderr");
    res_free(&r);
}

static const char *path_in(const char *dir, const char *name)
{
    static char p[64][256];    /* a ring: a test keeps a few alive at once */
    static int k;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/%s", dir, name);   /* dir may be an older slot */
    k = (k + 1) % 64;
    memcpy(p[k], tmp, sizeof tmp);
    return p[k];
}

/* DIR/name exists and contains needle */
static void expect_file_has(const char *dir, const char *name, const char *needle)
{
    char *text = slurp(path_in(dir, name));
    if (!text)
        fail_msg("%s/%s was not written", dir, name);
    expect_in(text, needle, name);
    free(text);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* a new empty directory under root */
static const char *new_dir(const char *name)
{
    const char *p = path_in(root, name);
    assert_int_equal(mkdir(p, 0755), 0);
    return p;
}

/* the names in dir, sorted, joined by spaces ("" when empty) */
static char *listing(const char *dir)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    assert_true(n >= 0);
    char *s = calloc(1, 4096);
    for (int i = 0; i < n; i++) {
        if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, ".."))
            snprintf(s + strlen(s), 4096 - strlen(s), "%s%s", s[0] ? " " : "", ents[i]->d_name);
        free(ents[i]);
    }
    free(ents);
    return s;
}

static void expect_listing(const char *dir, const char *want)
{
    char *got = listing(dir);
    if (strcmp(got, want)) {
        char msg[4200];
        snprintf(msg, sizeof msg, "%s holds \"%s\", wanted \"%s\"", dir, got, want);
        free(got);
        fail_msg("%s", msg);
    }
    free(got);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* make_checkpoint.py --shape mlp --dtype f32 into dir */
static void make_checkpoint(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/ref/make_checkpoint.py --out %s --shape mlp --dtype f32 >/dev/null", dir);
    if (system(cmd) != 0)
        fail_msg("%s failed", cmd);
    assert_true(exists(path_in(dir, "model.safetensors")));
    assert_true(exists(path_in(dir, "config.json")));
}

/* ---- usage ----------------------------------------------------------------------- */

static void test_usage_errors(void **state)
{
    (void)state;
    expect_usage(run_argv((const char *const[]){NULL}), "no command given");
    expect_usage(RUN("frob", "models/mlp.mdl"), "unknown command 'frob'");
    expect_usage(RUN("check", "models/mlp.mdl", "--frob"), "unknown option '--frob'");
    expect_usage(RUN("check", "-x", "models/mlp.mdl"), "unknown option '-x'");
    expect_usage(RUN("check"), "check needs a spec file");
    expect_usage(RUN("emit", "--emit", "llvm"), "emit needs a spec file");
    expect_usage(RUN("check", "models/mlp.mdl", "models/llama.mdl"), "unexpected argument 'models/llama.mdl'");
    expect_usage(RUN("run", "models/mlp.mdl", "--tokens", "1,2"), "run needs --weights");
    expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt), "run needs one of --tokens 1,2,3, --prompt TEXT or --chat TEXT");
    expect_usage(RUN("check", "models/mlp.mdl", "--weights"), "--weights needs a value");
    expect_usage(RUN("check", "models/mlp.mdl", "--set", "novalue"), "--set needs NAME=VALUE, got 'novalue'");
    expect_usage(RUN("check", "models/mlp.mdl", "--set", "=3"), "--set needs NAME=VALUE, got '=3'");
    expect_usage(RUN("check", "models/mlp.mdl", "--weight-dtype", "f64"), "--weight-dtype takes f32, f16 or bf16");
    expect_usage(RUN("check", "models/mlp.mdl", "--target", "tpu"), "--target takes cpu, cuda or cuda:sm_XX");
    expect_usage(RUN("check", "models/mlp.mdl", "--target", "cuda:sm_70"), "--target takes cpu, cuda or cuda:sm_XX");
    expect_usage(RUN("emit", "models/mlp.mdl", "--target", "cuda:sm_90", "--emit", "llvm"), "--emit llvm is CPU code");
    expect_usage(RUN("check", "models/mlp.mdl", "--tokens", "1"), "--tokens");
    expect_usage(RUN("check", "models/mlp.mdl", "--emit", "llvm"), "--emit goes with 'emit'");
    expect_usage(RUN("check", "models/mlp.mdl", "-o", root), "-o goes with 'emit'");
}

static void test_bad_counts(void **state)
{
    (void)state;
    static const char *const bad_max_new[] = {"-1", "abc", "", "3x", "1000001", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_max_new / sizeof *bad_max_new; i++)
        expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1", "--max-new", bad_max_new[i]),
                     "--max-new needs an integer");
    static const char *const bad_threads[] = {"0", "-2", "x", "1025"};
    for (size_t i = 0; i < sizeof bad_threads / sizeof *bad_threads; i++)
        expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1", "--threads", bad_threads[i]),
                     "--threads needs an integer");
    expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1", "--threads=0"),
                 "--threads needs an integer from 1 to 1024, got '0'");
    expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1", "--ctx", "0"), "--ctx needs an integer");
    expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,x"), "--tokens takes comma-separated");
    expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,-2"), "--tokens takes comma-separated");
    expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", ""), "--tokens takes comma-separated");
    expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,,2"), "--tokens takes comma-separated");
}

/* --prompt needs a tokenizer: this safetensors checkpoint has none (exit 1,
 * naming the checkpoint); --tokens and --prompt together are a usage error. */
static void test_prompt_without_tokenizer(void **state)
{
    (void)state;
    Res r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--prompt", "hello");
    expect_status(&r, 1);
    assert_string_equal(r.out, "");
    expect_in(r.err, "no tokenizer (no GGUF metadata, no tokenizer.json beside it)", "stderr");
    expect_in(r.err, ckpt, "stderr");
    res_free(&r);
    expect_usage(RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1", "--prompt", "hello"),
                 "run needs one of --tokens 1,2,3, --prompt TEXT or --chat TEXT");
    r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--chat", "hi", "--tokenizer", path_in(ckpt, "missing.json"));
    expect_status(&r, 1);
    expect_in(r.err, "missing.json", "stderr");
    res_free(&r);
}

static void test_bad_emit_and_pass(void **state)
{
    (void)state;
    expect_usage(RUN("emit", "models/mlp.mdl", "--emit", "exe"), "--emit takes ir, llvm, asm, obj, cuda, ptx or sass, got 'exe'");
    expect_usage(RUN("emit", "models/mlp.mdl", "--emit=bitcode"), "--emit takes ir, llvm, asm, obj, cuda, ptx or sass, got 'bitcode'");
    expect_usage(RUN("emit", "models/mlp.mdl", "--print-after=nope"), "--print-after: no pass named 'nope'");
    expect_usage(RUN("check", "models/mlp.mdl", "--print-after", "codegen"), "--print-after: no pass named 'codegen'");
    expect_usage(RUN("emit", "models/mlp.mdl", "--emit", "obj"), "--emit obj writes binary: give -o DIR");
}

static void test_help_and_version(void **state)
{
    (void)state;
    static const char *const forms[][2] = {{"--help", NULL}, {"-h", NULL}, {"help", NULL}, {"check", "--help"}};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        Res r = run_argv((const char *const[]){forms[i][0], forms[i][1], NULL});
        expect_status(&r, 0);
        expect_in(r.out, "usage: modelc <command> SPEC.mdl [options]", "--help output");
        expect_in(r.out, "--print-after=PASS", "--help output");
        expect_in(r.out, "exit status: 0 ok, 1 bad input or failed run, 2 bad usage", "--help output");
        assert_string_equal(r.err, "");
        res_free(&r);
    }
    Res r = RUN("--version");
    expect_status(&r, 0);
    assert_true(!strncmp(r.out, "modelc ", 7));
    expect_in(r.out, "host: ", "--version output");
    res_free(&r);
}

/* ---- check / emit ------------------------------------------------------------------ */

static void test_malformed_spec(void **state)
{
    (void)state;
    const char *spec = path_in(root, "bad.mdl");
    write_text(spec, "model bad {\n  input x : f32[seq, 4]\n  y = linear(x, \n  output o = x\n}\n");
    Res r = RUN("check", spec);
    expect_status(&r, 1);
    char want[300];
    snprintf(want, sizeof want, "%s:4:", spec);
    expect_in(r.err, want, "stderr");
    expect_in(r.err, ": error: ", "stderr");
    /* the first line is file:line:col: error: ... */
    assert_true(!strncmp(r.err, spec, strlen(spec)));
    const char *p = r.err + strlen(spec);
    int line = 0, col = 0, used = 0;
    assert_int_equal(sscanf(p, ":%d:%d: error: %n", &line, &col, &used), 2);
    assert_true(used > 0 && line > 0 && col > 0);
    assert_string_equal(r.out, "");
    res_free(&r);

    /* a shape error: the caret line too */
    const char *spec2 = path_in(root, "shape.mdl");
    write_text(spec2, "model s {\n  input x : f32[seq, 8]\n  weight w : [4, 6] = \"w\"\n  output y = linear(x, w)\n}\n");
    r = RUN("check", spec2);
    expect_status(&r, 1);
    snprintf(want, sizeof want,
             "%s:4:14: error: 'linear' inner dims differ: shapes [seq, 8] and [4, 6] do not agree\n"
             "    4 |   output y = linear(x, w)\n"
             "      |              ^\n",
             spec2);
    assert_string_equal(r.err, want);
    res_free(&r);

    /* a spec that is not there */
    r = RUN("check", path_in(root, "nope.mdl"));
    expect_status(&r, 1);
    expect_in(r.err, "nope.mdl", "stderr");
    res_free(&r);
}

static void test_check(void **state)
{
    (void)state;
    Res r = RUN("check", "models/llama.mdl");
    expect_status(&r, 0);
    assert_string_equal(r.out, "");
    assert_string_equal(r.err, "");
    res_free(&r);
    r = RUN("check", "models/mlp.mdl");
    expect_status(&r, 0);
    res_free(&r);
    /* bound by the checkpoint's config.json */
    r = RUN("check", "models/mlp.mdl", "--weights", ckpt);
    expect_status(&r, 0);
    res_free(&r);
    /* an unknown --set name is bad input */
    r = RUN("check", "models/mlp.mdl", "--set", "nope=1");
    expect_status(&r, 1);
    expect_in(r.err, "modelc: error: --set nope: the spec has no parameter 'nope'", "stderr");
    res_free(&r);
    /* a --set that breaks the checkpoint's shapes */
    r = RUN("check", "models/mlp.mdl", "--weights", ckpt, "--set", "dim=16");
    expect_status(&r, 1);
    expect_in(r.err, "error: weight 'embed.weight' is [64, 32] in ", "stderr");
    res_free(&r);
}

static void test_emit_ir(void **state)
{
    (void)state;
    Res r = RUN("emit", "models/mlp.mdl", "--emit", "ir");
    expect_status(&r, 0);
    assert_true(!strncmp(r.out, "graph mlp {\n", 12));
    expect_in(r.out, "  %0 = input \"tokens\" : i32[seq]", "IR");
    expect_in(r.out, "fused(", "IR");
    expect_in(r.out, "# output logits buf=", "IR");
    assert_true(strlen(r.out) > 12 && !strcmp(r.out + strlen(r.out) - 2, "}\n"));
    /* ir is the default */
    Res r2 = RUN("emit", "models/mlp.mdl");
    expect_status(&r2, 0);
    assert_string_equal(r2.out, r.out);
    res_free(&r2);
    res_free(&r);

    /* --print-after goes to stdout before the emitted text */
    r = RUN("emit", "models/mlp.mdl", "--print-after=fold");
    expect_status(&r, 0);
    assert_true(!strncmp(r.out, "; IR after fold\ngraph mlp {\n", 27));
    res_free(&r);
    r = RUN("check", "models/mlp.mdl", "--print-after-all");
    expect_status(&r, 0);
    expect_in(r.out, "; IR after lower\n", "stdout");
    expect_in(r.out, "; IR after plan\n", "stdout");
    res_free(&r);
}

static void test_emit_files(void **state)
{
    (void)state;
    static const char *const kinds[][3] = {{"llvm", "mlp.ll", "IR node:"}, {"asm", "mlp.s", "IR node:"},
                                           {"obj", "mlp.o", NULL}, {"ir", "mlp.ir", "graph mlp {"}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        const char *dir = new_dir(kinds[i][1]);
        Res r = RUN("emit", "models/mlp.mdl", "--emit", kinds[i][0], "-o", dir);
        expect_status(&r, 0);
        assert_string_equal(r.out, "");
        expect_listing(dir, kinds[i][1]);
        char *text = slurp(path_in(dir, kinds[i][1]));
        assert_non_null(text);
        if (kinds[i][2])
            expect_in(text, kinds[i][2], kinds[i][1]);
        else
            assert_true(!memcmp(text, "\177ELF", 4));
        free(text);
        res_free(&r);
    }
    /* the .ll names a kernel's node before it */
    const char *dir = new_dir("ll2");
    Res r = RUN("emit", "models/mlp.mdl", "--emit=llvm", "-o", dir);
    expect_status(&r, 0);
    expect_file_has(dir, "mlp.ll", "; IR node: %4 = embedding(%1, %0) : f32[seq, 32]");
    res_free(&r);
    /* -o makes the directory when it is missing */
    const char *fresh = path_in(root, "fresh");
    r = RUN("emit", "models/mlp.mdl", "--emit", "asm", "-o", fresh);
    expect_status(&r, 0);
    expect_listing(fresh, "mlp.s");
    res_free(&r);
}

static void test_emit_failing_spec_writes_nothing(void **state)
{
    (void)state;
    const char *spec = path_in(root, "broken.mdl");
    write_text(spec, "model broken {\n  input t : i32[seq]\n  weight e : [8, 4] = \"e\"\n  weight w : [3, 5] = \"w\"\n"
                     "  output o = linear(embedding(e, t), w)\n}\n");
    static const char *const kinds[] = {"ir", "llvm", "asm", "obj"};
    for (size_t i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "fail-%s", kinds[i]);
        const char *dir = new_dir(name);
        Res r = RUN("emit", spec, "--emit", kinds[i], "-o", dir);
        expect_status(&r, 1);
        expect_in(r.err, "broken.mdl:5:14: error: 'linear' inner dims differ", "stderr");
        expect_listing(dir, "");
        res_free(&r);
    }
    /* a spec that compiles but that codegen refuses (no config: unbound) */
    const char *dir = new_dir("unbound");
    Res r = RUN("emit", "models/llama.mdl", "--emit", "llvm", "-o", dir);
    expect_status(&r, 1);
    expect_in(r.err, "cannot generate code", "stderr");
    expect_listing(dir, "");
    res_free(&r);
}

/* ---- run --------------------------------------------------------------------------------- */

static void test_run_ok(void **state)
{
    (void)state;
    const char *npy = path_in(root, "logits.npy");
    Res r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,2,3", "--max-new", "4", "--logits-out", npy,
                "--threads", "1");
    expect_status(&r, 0);
    int t[4], used = 0;
    assert_int_equal(sscanf(r.out, "%d %d %d %d%n", &t[0], &t[1], &t[2], &t[3], &used), 4);
    assert_string_equal(r.out + used, "\n");
    for (int i = 0; i < 4; i++)
        assert_true(t[i] >= 0 && t[i] < 64);
    char *data = slurp(npy);
    assert_non_null(data);
    assert_true(!memcmp(data, "\x93NUMPY", 6));
    expect_in(data + 10, "(3, 64)", "npy header");
    free(data);
    res_free(&r);
    /* the same run again gives the same tokens (greedy, deterministic) */
    Res r2 = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,2,3", "--max-new", "4", "--quiet");
    expect_status(&r2, 0);
    char want[64];
    snprintf(want, sizeof want, "%d %d %d %d\n", t[0], t[1], t[2], t[3]);
    assert_string_equal(r2.out, want);
    assert_string_equal(r2.err, "");
    res_free(&r2);
    unlink(npy);
}

static void test_run_truncated_checkpoint(void **state)
{
    (void)state;
    const char *dir = new_dir("trunc");
    make_checkpoint(dir);
    const char *st = path_in(dir, "model.safetensors");
    struct stat sb;
    assert_int_equal(stat(st, &sb), 0);
    assert_int_equal(truncate(st, sb.st_size - 100), 0);
    const char *npy = path_in(root, "trunc.npy");
    Res r = RUN("run", "models/mlp.mdl", "--weights", dir, "--tokens", "1,2", "--logits-out", npy);
    expect_status(&r, 1);
    expect_in(r.err, "model.safetensors", "stderr");
    assert_string_equal(r.out, "");
    assert_false(exists(npy));
    res_free(&r);
    /* cut inside the header too */
    assert_int_equal(truncate(st, 20), 0);
    r = RUN("run", "models/mlp.mdl", "--weights", dir, "--tokens", "1,2", "--logits-out", npy);
    expect_status(&r, 1);
    expect_in(r.err, "model.safetensors", "stderr");
    assert_false(exists(npy));
    res_free(&r);
    /* a path that is not there */
    r = RUN("run", "models/mlp.mdl", "--weights", path_in(root, "missing-ckpt"), "--tokens", "1", "--logits-out", npy);
    expect_status(&r, 1);
    expect_in(r.err, "missing-ckpt", "stderr");
    assert_false(exists(npy));
    res_free(&r);
}

static void test_run_token_out_of_range(void **state)
{
    (void)state;
    const char *npy = path_in(root, "oor.npy");
    Res r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,64", "--logits-out", npy);
    expect_status(&r, 1);
    expect_in(r.err, "error: token id 64 is out of range", "stderr");
    assert_false(exists(npy));
    res_free(&r);
    r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "2147483647");
    expect_status(&r, 1);
    expect_in(r.err, "token id 2147483647 is out of range", "stderr");
    res_free(&r);
    /* 63 is the last good id */
    r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "63", "--max-new", "1", "--quiet");
    expect_status(&r, 0);
    res_free(&r);
}

static void test_run_other_failures(void **state)
{
    (void)state;
    const char *npy = path_in(root, "ctx.npy");
    Res r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,2,3", "--ctx", "2", "--logits-out", npy);
    expect_status(&r, 1);
    expect_in(r.err, "--ctx 2 is too small for 3 prompt tokens", "stderr");
    assert_false(exists(npy));
    res_free(&r);
    /* a --logits-out that cannot be written: exit 1 naming it, no stray temporary */
    const char *bad = path_in(root, "no-such-dir/l.npy");
    r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,2", "--max-new", "1", "--logits-out", bad);
    expect_status(&r, 1);
    expect_in(r.err, bad, "stderr");
    assert_false(exists(path_in(root, "no-such-dir")));
    res_free(&r);
    /* a spec that does not fit the checkpoint */
    r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1", "--set", "hidden=40");
    expect_status(&r, 1);
    expect_in(r.err, "models/mlp.mdl:18:37: error: weight 'layers.0.gate.weight' is [48, 32] in ", "stderr");
    assert_string_equal(r.out, "");
    res_free(&r);
}

/* ---- the CUDA target on a machine without a GPU ------------------------------------------ */

static void test_cuda_without_gpu(void **state)
{
    (void)state;
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (cuda) {   /* a GPU machine: bench/gpu_cuda.sh covers it */
        dlclose(cuda);
        skip();
    }
    if (getenv("MODELC_NO_NVRTC"))
        skip();
    setenv("XDG_CACHE_HOME", path_in(root, "cache"), 1);
    /* compiles (NVRTC), then says there is no driver: exit 1 */
    Res r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,2", "--target", "cuda:sm_90", "--time-passes");
    expect_status(&r, 1);
    expect_in(r.err, "--target cuda: no CUDA driver on this machine", "stderr");
    expect_in(r.err, "NVRTC ", "stderr");
    assert_null(strstr(r.err, "(cached)"));
    assert_string_equal(r.out, "");
    res_free(&r);
    /* the same spec again: the cubin comes from the cache */
    r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,2", "--target", "cuda:sm_90", "--time-passes");
    expect_status(&r, 1);
    expect_in(r.err, "(cached)", "stderr");
    res_free(&r);
    /* plain --target cuda must find the GPU's architecture: no driver, no run */
    r = RUN("run", "models/mlp.mdl", "--weights", ckpt, "--tokens", "1,2", "--target", "cuda");
    expect_status(&r, 1);
    expect_in(r.err, "no CUDA driver", "stderr");
    res_free(&r);
    /* emit needs no GPU: CUDA C with the IR nodes, and PTX for the architecture named */
    const char *dir = path_in(root, "cu");
    r = RUN("emit", "models/mlp.mdl", "--weights", ckpt, "--emit", "cuda", "-o", dir);
    expect_status(&r, 0);
    char *cu = slurp(path_in(dir, "mlp.cu"));
    assert_non_null(cu);
    expect_in(cu, "// IR node: %", "mlp.cu");
    expect_in(cu, "extern \"C\" __global__", "mlp.cu");
    free(cu);
    res_free(&r);
    r = RUN("emit", "models/mlp.mdl", "--weights", ckpt, "--emit", "ptx", "--target", "cuda:sm_80", "-o", dir);
    expect_status(&r, 0);
    expect_file_has(dir, "mlp.ptx", ".target sm_80");
    res_free(&r);
    unsetenv("XDG_CACHE_HOME");
}

/* --emit sass: the cubin through cuobjdump -sass.  No toolkit cuobjdump here,
 * so a stand-in on PATH checks that it is handed an ELF cubin; without any,
 * a clear error and no file. */
static void test_emit_sass(void **state)
{
    (void)state;
    if (getenv("MODELC_NO_NVRTC"))
        skip();
    setenv("XDG_CACHE_HOME", path_in(root, "cache"), 1);
    const char *old_path = getenv("PATH");
    char *saved = old_path ? strdup(old_path) : NULL;
    const char *bin = new_dir("fakebin"), *dir = new_dir("sass");
    setenv("CUDA_HOME", "/nonexistent", 1);
    setenv("PATH", "/nonexistent", 1);
    Res r = RUN("emit", "models/mlp.mdl", "--weights", ckpt, "--emit", "sass", "-o", dir);
    expect_status(&r, 1);
    expect_in(r.err, "--emit sass needs cuobjdump", "stderr");
    assert_false(exists(path_in(dir, "mlp.sass")));
    res_free(&r);
    const char *tool = path_in(bin, "cuobjdump");
    write_text(tool, "#!/bin/sh\n"
                     "[ \"$1\" = -sass ] && [ \"$(head -c 4 \"$2\" | tail -c 3)\" = ELF ] && echo \"sass of an ELF cubin\"\n");
    chmod(tool, 0755);
    char path[512];
    snprintf(path, sizeof path, "%s:/usr/bin:/bin", bin);
    setenv("PATH", path, 1);
    r = RUN("emit", "models/mlp.mdl", "--weights", ckpt, "--emit", "sass", "-o", dir);
    expect_status(&r, 0);
    expect_file_has(dir, "mlp.sass", "sass of an ELF cubin");
    res_free(&r);
    if (saved)
        setenv("PATH", saved, 1);
    free(saved);
    unsetenv("CUDA_HOME");
    unsetenv("XDG_CACHE_HOME");
}

/* ---- set-up ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    modelc = getenv("MODELC");
    if (!modelc || !*modelc)
        modelc = "build/modelc";
    if (access(modelc, X_OK)) {
        fprintf(stderr, "test_cli: %s is not there (run from the repository root after building, or set MODELC)\n",
                modelc);
        return -1;
    }
    strcpy(root, "/tmp/modelc_test_cli_XXXXXX");
    if (!mkdtemp(root))
        return -1;
    snprintf(ckpt, sizeof ckpt, "%s/mlp", root);
    mkdir(ckpt, 0755);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/ref/make_checkpoint.py --out %s --shape mlp --dtype f32 >/dev/null", ckpt);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_cli: %s failed\n", cmd);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return root[0] ? test_rm_rf(root) : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_bad_counts),
        cmocka_unit_test(test_prompt_without_tokenizer),
        cmocka_unit_test(test_bad_emit_and_pass),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_malformed_spec),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_emit_ir),
        cmocka_unit_test(test_emit_files),
        cmocka_unit_test(test_emit_failing_spec_writes_nothing),
        cmocka_unit_test(test_run_ok),
        cmocka_unit_test(test_run_truncated_checkpoint),
        cmocka_unit_test(test_run_token_out_of_range),
        cmocka_unit_test(test_run_other_failures),
        cmocka_unit_test(test_cuda_without_gpu),
        cmocka_unit_test(test_emit_sass),
    };
    return cmocka_run_group_tests_name("cli", tests, group_setup, group_teardown);
}
