/* tests/cli/test_allocfail.c — allocation-failure injection.
 *
 * This binary is linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * --wrap=free (tests/module.mk), so every allocation that modelc's own code
 * makes comes through the wrappers below (jansson's too, through
 * json_set_alloc_funcs).  For each reader -- the spec parser and checks,
 * safetensors, GGUF, config.json, tokenizer.json -- a run is repeated with
 * the N-th allocation failing, for N = 1, 2, ... until a run makes it through,
 * and each failed run must end in a clean error (jansson's allocations are
 * counted for leaks but not failed: see json_malloc):
 *   - the loaders (in process): false/NULL with an "out of memory" message,
 *     and every block they (and jansson for them) allocated freed again;
 *   - the frontend and passes (in a child process: the compiler's arena
 *     exits 1 on OOM): never a signal, and "out of memory" on stderr, from
 *     the arena or as a diagnostic.
 * Inputs: the seed files of the fuzz corpora and models/llama.mdl. */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "runtime/tokenizer.h"

/* ---- the wrappers ------------------------------------------------------------ */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

enum { LIVE_CAP = 1 << 18 };
static void *live[LIVE_CAP];     /* open addressing; (void *)1 marks a freed slot */
static long nlive, fail_at, count;
static bool overflow;

static size_t slot(void *p)
{
    return ((uintptr_t)p >> 4) * 2654435761u % LIVE_CAP;
}

static void track(void *p)
{
    if (!p)
        return;
    if (nlive >= LIVE_CAP / 2) {
        overflow = true;
        return;
    }
    size_t i = slot(p);
    while (live[i] && live[i] != (void *)1)
        i = (i + 1) % LIVE_CAP;
    live[i] = p;
    nlive++;
}

static void untrack(void *p)
{
    if (!p)
        return;
    for (size_t i = slot(p), k = 0; live[i] && k < LIVE_CAP; i = (i + 1) % LIVE_CAP, k++)
        if (live[i] == p) {
            live[i] = (void *)1;
            nlive--;
            return;
        }
    /* not ours: allocated before tracking began, or by libc itself (strdup, getline) */
}

static const char *cur_path;   /* the file being loaded */

/* true: this allocation fails.  ALLOCFAIL_TRAP=FILE:N stops a debugger at
 * the N-th allocation's failure while FILE loads. */
static bool fails(void)
{
    if (fail_at <= 0 || ++count != fail_at)
        return false;
    const char *trap = getenv("ALLOCFAIL_TRAP");
    if (trap && cur_path) {
        size_t k = strlen(cur_path);
        if (!strncmp(trap, cur_path, k) && trap[k] == ':' && atol(trap + k + 1) == fail_at)
            raise(SIGTRAP);
    }
    return true;
}

void *__wrap_malloc(size_t n)
{
    if (fails())
        return NULL;
    void *p = __real_malloc(n);
    track(p);
    return p;
}

void *__wrap_calloc(size_t n, size_t m)
{
    if (fails())
        return NULL;
    void *p = __real_calloc(n, m);
    track(p);
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (fails())
        return NULL;
    void *q = __real_realloc(p, n);
    if (q || !n) {
        untrack(p);
        track(q);
    }
    return q;
}

void __wrap_free(void *p)
{
    untrack(p);
    __real_free(p);
}

/* jansson's own allocations are tracked but never failed: under failure
 * jansson 2.14 can free a block twice (parse_value, seen here under ASan). */
static void *json_malloc(size_t n)
{
    void *p = __real_malloc(n);
    track(p);
    return p;
}

static void reset(long n)
{
    memset(live, 0, sizeof live);
    nlive = 0;
    overflow = false;
    count = 0;
    fail_at = n;
}

/* ---- the loaders, in process --------------------------------------------------- */

typedef bool LoadFn(const char *path, RtErr *err);   /* loads and frees; false: failed with err set */

static bool load_st(const char *path, RtErr *err)
{
    RtSafetensors *st = NULL;
    if (!rt_st_open(path, &st, err))
        return false;
    rt_st_close(st);
    return true;
}

static bool load_ckpt(const char *path, RtErr *err)
{
    RtCheckpoint *c = NULL;
    if (!rt_ckpt_open(path, &c, err))
        return false;
    rt_ckpt_close(c);
    return true;
}

static bool load_gguf_tokenizer(const char *path, RtErr *err)
{
    RtCheckpoint *c = NULL;
    if (!rt_ckpt_open(path, &c, err))
        return false;
    RtTokenizer *t = rt_tok_from_gguf(rt_ckpt_gguf(c), path, err);
    rt_tok_free(t);
    rt_ckpt_close(c);
    return t != NULL;
}

static bool load_config(const char *path, RtErr *err)
{
    RtConfig *c = NULL;
    if (!rt_config_load(path, &c, err))
        return false;
    rt_config_free(c);
    return true;
}

static bool load_tokenizer(const char *path, RtErr *err)
{
    RtTokenizer *t = rt_tok_from_hf(path, err);
    rt_tok_free(t);
    return t != NULL;
}


/* Every allocation of one load fails in turn; returns how many there were. */
static long inject(LoadFn *load, const char *path)
{
    cur_path = path;
    RtErr err = {.msg = ""};
    reset(0);
    if (!load(path, &err))
        fail_msg("%s: does not load even with memory: %s", path, err.msg);
    for (long n = 1;; n++) {
        reset(n);
        memset(&err, 0, sizeof err);
        bool ok = load(path, &err);
        long made = count;
        fail_at = 0;
        if (overflow)
            fail_msg("%s: more than %d live blocks: cannot track", path, LIVE_CAP / 2);
        if (nlive)
            fail_msg("%s: allocation %ld failing leaves %ld blocks allocated (%s)", path, n, nlive,
                     ok ? "it loaded" : err.msg);
        if (ok) {
            if (made < n)
                return n - 1;   /* the run made fewer than n allocations: all of them were tried */
            fail_msg("%s: allocation %ld failed, yet the load succeeded", path, n);
        }
        if (!strstr(err.msg, "out of memory"))
            fail_msg("%s: allocation %ld failing gives \"%s\", not an out-of-memory error", path, n, err.msg);
    }
}

static void check_dir(LoadFn *load, const char *dir, const char *suffix)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s", dir);
    FILE *ls = popen(cmd, "r");
    assert_non_null(ls);
    char name[256];
    int files = 0;
    long allocs = 0;
    while (fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = 0;
        size_t n = strlen(name), s = strlen(suffix);
        if (n < s || strcmp(name + n - s, suffix) || !strncmp(name, "near_", 5))
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        RtErr err = {.msg = ""};
        reset(0);
        if (!load(path, &err))
            continue;   /* a seed that is meant to be refused */
        long k = inject(load, path);
        if (getenv("ALLOCFAIL_VERBOSE"))
            print_message("  %s: %ld allocations\n", path, k);
        allocs += k;
        files++;
    }
    pclose(ls);
    assert_true(files > 0);
    print_message("%s: %d files, %ld allocations failed one at a time, each a clean error\n", dir, files, allocs);
}

/* One reader over one seed directory; every seed it loads is injected ("near_" seeds are meant to fail). */
typedef struct Reader {
    LoadFn *load;
    const char *dir, *suffix;
} Reader;

static const Reader readers[] = {
    {load_st, "tests/fuzz/corpus/safetensors", ".safetensors"},
    {load_ckpt, "tests/fuzz/corpus/gguf", ".gguf"},
    {load_gguf_tokenizer, "tests/fuzz/corpus/gguf", ".gguf"},
    {load_config, "tests/fuzz/corpus/config", ".json"},
    {load_tokenizer, "tests/fuzz/corpus/tokenizer", ".json"},
};

static void test_reader(void **state)
{
    const Reader *r = *state;
    check_dir(r->load, r->dir, r->suffix);
}

/* ---- the frontend and passes, in a child per failing allocation --------------------- */

static RtConfig *llama_config;   /* loaded before any failure is armed */

static int compile_child(const char *spec)
{
    Arena *a = arena_new();
    Diags d;
    diag_init(&d, a);
    Module *m = fe_parse_file(spec, a, &d);
    bool ok = m && fe_check(m, &d);
    if (ok) {
        CompileEnv env = {.config = llama_config, .config_path = "small_llama.json"};
        Compilation comp = {.arena = a, .diags = &d, .module = m, .env = &env};
        PassOptions po = {0};
        ok = pass_run_pipeline(&comp, &po);
    }
    if (!ok)
        diag_print(&d, stderr);
    arena_free(a);
    return ok ? 0 : 2;
}

static void test_frontend(void **state)
{
    (void)state;
    const char *specs[] = {"models/llama.mdl", "models/mlp.mdl"};
    RtErr err = {.msg = ""};
    reset(0);
    if (!rt_config_load("tests/fuzz/corpus/config/small_llama.json", &llama_config, &err))
        fail_msg("%s", err.msg);
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        long n;
        for (n = 1;; n++) {
            fflush(NULL);
            int fd[2];
            assert_int_equal(pipe(fd), 0);
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                dup2(fd[1], 2);
                close(fd[0]);
                reset(n);
                int rc = compile_child(specs[s]);
                _exit(count < n ? 10 + rc : rc);   /* 10+: the run made fewer than n allocations */
            }
            close(fd[1]);
            char out[4096] = {0};
            size_t got = 0;
            ssize_t r;
            while (got < sizeof out - 1 && (r = read(fd[0], out + got, sizeof out - 1 - got)) > 0)
                got += (size_t)r;
            close(fd[0]);
            int st;
            assert_int_equal(waitpid(pid, &st, 0), pid);
            if (!WIFEXITED(st))
                fail_msg("%s: allocation %ld failing killed the compiler (signal %d)", specs[s], n, WTERMSIG(st));
            int rc = WEXITSTATUS(st);
            if (rc >= 10) {
                assert_int_equal(rc, 10);   /* a full run, with its spec compiled */
                break;
            }
            if ((rc != 1 && rc != 2) || !strstr(out, "out of memory"))   /* the arena's exit, or a diagnostic */
                fail_msg("%s: allocation %ld failing: exit %d, stderr \"%s\"", specs[s], n, rc, out);
        }
        print_message("%s: %ld allocations failed one at a time, each an \"out of memory\" error\n", specs[s], n - 1);
    }
    rt_config_free(llama_config);
}

int main(void)
{
    json_set_alloc_funcs(json_malloc, __wrap_free);
    const struct CMUnitTest tests[] = {
        {"safetensors", test_reader, NULL, NULL, (void *)&readers[0]},
        {"gguf", test_reader, NULL, NULL, (void *)&readers[1]},
        {"gguf_tokenizers", test_reader, NULL, NULL, (void *)&readers[2]},
        {"config", test_reader, NULL, NULL, (void *)&readers[3]},
        {"tokenizer", test_reader, NULL, NULL, (void *)&readers[4]},
        cmocka_unit_test(test_frontend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
