/* codegen/cuda/nvrtc.c — NVRTC through dlopen, and the compile cache.
 *
 * The cache holds one cubin per (source, options, NVRTC version), named by a
 * 128-bit hash of the three, under $XDG_CACHE_HOME/modelc/cuda (or
 * ~/.cache/modelc/cuda).  Entries are written to a temporary name and renamed,
 * so a crash leaves no half file; an entry that is not an ELF file is ignored. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/cuda/internal.h"

typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

#define NVRTC_FUNCS(X)                                                                                        \
    X(nvrtcResult, nvrtcVersion, (int *, int *))                                                              \
    X(nvrtcResult, nvrtcCreateProgram,                                                                        \
      (nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *))           \
    X(nvrtcResult, nvrtcCompileProgram, (nvrtcProgram, int, const char *const *))                             \
    X(nvrtcResult, nvrtcGetProgramLogSize, (nvrtcProgram, size_t *))                                          \
    X(nvrtcResult, nvrtcGetProgramLog, (nvrtcProgram, char *))                                                \
    X(nvrtcResult, nvrtcGetCUBINSize, (nvrtcProgram, size_t *))                                               \
    X(nvrtcResult, nvrtcGetCUBIN, (nvrtcProgram, char *))                                                     \
    X(nvrtcResult, nvrtcGetPTXSize, (nvrtcProgram, size_t *))                                                 \
    X(nvrtcResult, nvrtcGetPTX, (nvrtcProgram, char *))                                                       \
    X(nvrtcResult, nvrtcDestroyProgram, (nvrtcProgram *))                                                     \
    X(const char *, nvrtcGetErrorString, (nvrtcResult))

static struct {
    void *lib;
    bool tried;
    int major, minor;
    char why[512];
#define DECL(ret, name, args) ret(*name) args;
    NVRTC_FUNCS(DECL)
#undef DECL
} nv;

static bool nvrtc_load(void)
{
    if (nv.tried)
        return nv.lib != NULL;
    nv.tried = true;
    const char *home = getenv("CUDA_HOME");
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/lib64/libnvrtc.so", home && *home ? home : "/usr/local/cuda");
    snprintf(p2, sizeof p2, "%s/lib/libnvrtc.so", home && *home ? home : "/usr/local/cuda");
    const char *names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", p1, p2};
    for (size_t i = 0; i < sizeof names / sizeof *names && !nv.lib; i++)
        nv.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!nv.lib) {
        snprintf(nv.why, sizeof nv.why, "NVRTC (libnvrtc.so) was not found: install the CUDA toolkit or set CUDA_HOME");
        return false;
    }
#define LOAD(ret, name, args)                                                                                 \
    if (!(*(void **)&nv.name = dlsym(nv.lib, #name))) {                                                       \
        snprintf(nv.why, sizeof nv.why, "NVRTC lacks %s", #name);                                            \
        nv.lib = NULL;                                                                                        \
        return false;                                                                                         \
    }
    NVRTC_FUNCS(LOAD)
#undef LOAD
    nv.nvrtcVersion(&nv.major, &nv.minor);
    return true;
}

const char *cuda_nvrtc_description(void)
{
    static char buf[600];
    if (!nvrtc_load())
        return nv.why;
    snprintf(buf, sizeof buf, "NVRTC %d.%d", nv.major, nv.minor);
    return buf;
}

/* ---- cache ------------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static char *cache_path(const char *dir, const char *src, const char *opts)
{
    char ver[32];
    snprintf(ver, sizeof ver, "%d.%d", nv.major, nv.minor);
    uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
    const char *parts[] = {src, "\n--\n", opts, "\n--\n", ver};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        a = fnv(a, parts[i], strlen(parts[i]));
        b = fnv(b ^ (uint64_t)i, parts[i], strlen(parts[i]));
    }
    char *path = NULL;
    if (asprintf(&path, "%s/%016llx%016llx.cubin", dir, (unsigned long long)a, (unsigned long long)b) < 0)
        return NULL;
    return path;
}

static char *default_cache_dir(void)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char *dir = NULL;
    if (x && *x) {
        if (asprintf(&dir, "%s/modelc/cuda", x) < 0)
            return NULL;
    } else if (home && *home) {
        if (asprintf(&dir, "%s/.cache/modelc/cuda", home) < 0)
            return NULL;
    }
    return dir;
}

static bool mkdirs(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        return false;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0777);
            *s = '/';
        }
    bool ok = !mkdir(p, 0777) || errno == EEXIST;
    free(p);
    return ok;
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n > 4 && n < (1L << 30) && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) &&
            fread(buf, 1, (size_t)n, f) == (size_t)n && !memcmp(buf, "\x7f" "ELF", 4)) {
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
        return;
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(data, 1, len, f) == len;
    if (f && fclose(f))
        ok = false;
    if (!ok || rename(tmp, path))
        unlink(tmp);
    free(tmp);
}

/* ---- compiling -------------------------------------------------------------- */

/* Keep the failing source where the user can read it. */
static const char *keep_source(const char *src, const char *model)
{
    static char path[512];
    snprintf(path, sizeof path, "/tmp/modelc-%s-%d.cu", model, (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return "(could not be written)";
    fputs(src, f);
    fclose(f);
    return path;
}

/* sm_90 compiles for sm_90a, the H100's and H200's own instructions (wgmma):
 * the cubin runs on sm_90 devices alone, which is what the target names. */
static const char *arch_suffix(int sm)
{
    return sm == 90 ? "a" : "";
}

static bool nvrtc_run(const char *src, const char *model, int sm, bool ptx, char **out, size_t *len, Diags *d)
{
    if (!nvrtc_load()) {
        diag_error_nopos(d, "--target cuda: %s", nv.why);
        return false;
    }
    char arch[64];
    snprintf(arch, sizeof arch, "--gpu-architecture=%s_%d%s", ptx ? "compute" : "sm", sm, arch_suffix(sm));
    const char *opts[] = {arch, "-std=c++17", "-lineinfo", "--restrict"};
    int nopts = sizeof opts / sizeof *opts;
    nvrtcProgram prog = NULL;
    nvrtcResult r = nv.nvrtcCreateProgram(&prog, src, "modelc.cu", 0, NULL, NULL);
    if (r) {
        diag_error_nopos(d, "NVRTC: creating the program failed: %s", nv.nvrtcGetErrorString(r));
        return false;
    }
    /* -lineinfo records the working directory in the cubin: compile from / so
     * that the same source gives the same cubin wherever modelc runs (builds
     * are byte-identical, and the cache's entries do not depend on it). */
    int here = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool moved = here >= 0 && chdir("/") == 0;
    r = nv.nvrtcCompileProgram(prog, nopts, opts);
    bool back = !moved || fchdir(here) == 0;
    if (here >= 0)
        close(here);
    if (!back) {
        diag_error_nopos(d, "NVRTC: could not return to the working directory: %s", strerror(errno));
        nv.nvrtcDestroyProgram(&prog);
        return false;
    }
    if (r) {
        size_t n = 0;
        nv.nvrtcGetProgramLogSize(prog, &n);
        char *log = malloc(n + 1);
        if (log) {
            log[0] = 0;
            nv.nvrtcGetProgramLog(prog, log);
            log[n] = 0;
        }
        diag_error_nopos(d, "NVRTC could not compile the generated kernels for sm_%d (%s); the source is kept at %s:\n%s",
                         sm, nv.nvrtcGetErrorString(r), keep_source(src, model), log ? log : "(no log)");
        free(log);
        nv.nvrtcDestroyProgram(&prog);
        return false;
    }
    size_t n = 0;
    r = ptx ? nv.nvrtcGetPTXSize(prog, &n) : nv.nvrtcGetCUBINSize(prog, &n);
    char *buf = r ? NULL : malloc(n + 1);
    if (buf) {
        r = ptx ? nv.nvrtcGetPTX(prog, buf) : nv.nvrtcGetCUBIN(prog, buf);
        buf[n] = 0;
    }
    nv.nvrtcDestroyProgram(&prog);
    if (!buf || r) {
        free(buf);
        diag_error_nopos(d, "NVRTC: reading the compiled code failed");
        return false;
    }
    *out = buf;
    *len = n;
    return true;
}

bool cuda_nvrtc_cubin(const char *src, const char *model, int sm, const char *cache_dir, void **cubin, size_t *len,
                      bool *hit, Diags *d)
{
    *hit = false;
    if (!nvrtc_load()) {
        diag_error_nopos(d, "--target cuda: %s", nv.why);
        return false;
    }
    char opts[64];
    snprintf(opts, sizeof opts, "sm_%d%s -std=c++17 -lineinfo --restrict, in /", sm, arch_suffix(sm));   /* see nvrtc_run */
    char *dir = cache_dir ? (*cache_dir ? strdup(cache_dir) : NULL) : default_cache_dir();
    char *path = dir ? cache_path(dir, src, opts) : NULL;
    if (path && (*cubin = read_file(path, len))) {
        *hit = true;
        free(path);
        free(dir);
        return true;
    }
    char *out = NULL;
    bool ok = nvrtc_run(src, model, sm, false, &out, len, d);
    if (ok && path && mkdirs(dir))
        write_file(path, out, *len);
    *cubin = out;
    free(path);
    free(dir);
    return ok;
}

char *cuda_nvrtc_ptx(const char *src, const char *model, int sm, Diags *d)
{
    char *out = NULL;
    size_t len;
    return nvrtc_run(src, model, sm, true, &out, &len, d) ? out : NULL;
}
