/* runtime/cuda.c — running a CUDA program: libcuda.so.1 through dlopen, a
 * context on device 0, the module from the program's cubin, device buffers
 * from the memory plan, weights uploaded once, the KV cache on the device,
 * and the decode step captured as a CUDA graph and replayed per token.
 *
 * Kernels take a pointer to an RtGpuStep in device memory and their buffers.
 * The step lives in pinned host memory too and is copied to the device at the
 * start of each step (inside the graph for decode), so one captured graph
 * serves every position.  Every driver call is checked; a fault inside a
 * kernel leaves the context unusable, which the message says. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/internal.h"

/* ---- the driver API, as much of it as we use --------------------------- */

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    CU_STREAM_NON_BLOCKING = 1,
    CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    CU_EVENT_DEFAULT = 0,
    CU_EVENT_DISABLE_TIMING = 2,
    CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6,
};

/* cuLaunchKernelEx's configuration (cuda.h, CUDA 12+), for programmatic
 * dependent launch on sm_90 */
typedef struct CUlaunchAttribute {
    int id;
    char pad[4];
    union {
        char bytes[64];
        int programmatic_stream_serialization;
    } value;
} CUlaunchAttribute;
typedef struct CUlaunchConfig {
    unsigned grid[3], block[3], smem;
    CUstream stream;
    CUlaunchAttribute *attrs;
    unsigned nattrs;
} CUlaunchConfig;

#define CU_FUNCS(X)                                                                                          \
    X(cuInit, (unsigned))                                                                                    \
    X(cuDriverGetVersion, (int *))                                                                           \
    X(cuDeviceGetCount, (int *))                                                                             \
    X(cuDeviceGet, (CUdevice *, int))                                                                        \
    X(cuDeviceGetName, (char *, int, CUdevice))                                                              \
    X(cuDeviceGetAttribute, (int *, int, CUdevice))                                                          \
    X(cuDeviceTotalMem_v2, (size_t *, CUdevice))                                                             \
    X(cuDevicePrimaryCtxRetain, (CUcontext *, CUdevice))                                                     \
    X(cuDevicePrimaryCtxRelease_v2, (CUdevice))                                                              \
    X(cuCtxSetCurrent, (CUcontext))                                                                          \
    X(cuMemGetInfo_v2, (size_t *, size_t *))                                                                 \
    X(cuModuleLoadData, (CUmodule *, const void *))                                                          \
    X(cuModuleUnload, (CUmodule))                                                                            \
    X(cuModuleGetFunction, (CUfunction *, CUmodule, const char *))                                           \
    X(cuModuleGetGlobal_v2, (CUdeviceptr *, size_t *, CUmodule, const char *))                               \
    X(cuFuncSetAttribute, (CUfunction, int, int))                                                            \
    X(cuMemAlloc_v2, (CUdeviceptr *, size_t))                                                                \
    X(cuMemFree_v2, (CUdeviceptr))                                                                           \
    X(cuMemAllocHost_v2, (void **, size_t))                                                                  \
    X(cuMemFreeHost, (void *))                                                                               \
    X(cuMemcpyHtoD_v2, (CUdeviceptr, const void *, size_t))                                                  \
    X(cuMemcpyHtoDAsync_v2, (CUdeviceptr, const void *, size_t, CUstream))                                   \
    X(cuMemcpyDtoHAsync_v2, (void *, CUdeviceptr, size_t, CUstream))                                         \
    X(cuMemcpyDtoH_v2, (void *, CUdeviceptr, size_t))                                                        \
    X(cuMemsetD8Async, (CUdeviceptr, unsigned char, size_t, CUstream))                                       \
    X(cuStreamCreate, (CUstream *, unsigned))                                                                \
    X(cuStreamDestroy_v2, (CUstream))                                                                        \
    X(cuStreamSynchronize, (CUstream))                                                                       \
    X(cuStreamBeginCapture_v2, (CUstream, int))                                                              \
    X(cuStreamEndCapture, (CUstream, CUgraph *))                                                             \
    X(cuGraphInstantiateWithFlags, (CUgraphExec *, CUgraph, unsigned long long))                             \
    X(cuGraphLaunch, (CUgraphExec, CUstream))                                                                \
    X(cuGraphExecDestroy, (CUgraphExec))                                                                     \
    X(cuGraphDestroy, (CUgraph))                                                                             \
    X(cuEventCreate, (CUevent *, unsigned))                                                                  \
    X(cuEventDestroy_v2, (CUevent))                                                                          \
    X(cuEventRecord, (CUevent, CUstream))                                                                    \
    X(cuEventSynchronize, (CUevent))                                                                         \
    X(cuEventElapsedTime, (float *, CUevent, CUevent))                                                       \
    X(cuLaunchKernel, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,     \
                       CUstream, void **, void **))                                                          \
    X(cuGetErrorName, (CUresult, const char **))                                                             \
    X(cuGetErrorString, (CUresult, const char **))

static struct {
    void *lib;
    bool tried;
    char why[512];
    CUresult (*cuLaunchKernelEx)(const CUlaunchConfig *, CUfunction, void **, void **);   /* NULL: driver < 12 */
#define DECL(name, args) CUresult (*name) args;
    CU_FUNCS(DECL)
#undef DECL
} cu;

static bool cu_load(RtErr *err)
{
    if (cu.tried)
        return cu.lib ? true : rt_fail(err, "%s", cu.why);
    cu.tried = true;
    cu.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!cu.lib) {
        const char *e = dlerror();
        snprintf(cu.why, sizeof cu.why, "--target cuda: no CUDA driver on this machine (libcuda.so.1: %s)",
                 e ? e : "not found");
        return rt_fail(err, "%s", cu.why);
    }
#define LOAD(name, args)                                                                                     \
    if (!(*(void **)&cu.name = dlsym(cu.lib, #name))) {                                                      \
        snprintf(cu.why, sizeof cu.why, "--target cuda: the CUDA driver lacks %s (too old?)", #name);       \
        dlclose(cu.lib);                                                                                     \
        cu.lib = NULL;                                                                                       \
        return rt_fail(err, "%s", cu.why);                                                                   \
    }
    CU_FUNCS(LOAD)
#undef LOAD
    *(void **)&cu.cuLaunchKernelEx = dlsym(cu.lib, "cuLaunchKernelEx");
    void *v2 = dlsym(cu.lib, "cuEventElapsedTime_v2");   /* CUDA 12.8+: the current entry point */
    if (v2)
        *(void **)&cu.cuEventElapsedTime = v2;
    CUresult r = cu.cuInit(0);
    if (r != CUDA_SUCCESS) {
        const char *name = "?";
        cu.cuGetErrorName(r, &name);
        snprintf(cu.why, sizeof cu.why, "--target cuda: the CUDA driver did not start (cuInit: %s): no usable GPU", name);
        cu.lib = NULL;
        return rt_fail(err, "%s", cu.why);
    }
    return true;
}

static bool cu_check(CUresult r, const char *call, RtErr *err)
{
    if (r == CUDA_SUCCESS)
        return true;
    const char *name = "?", *text = "?";
    cu.cuGetErrorName(r, &name);
    cu.cuGetErrorString(r, &text);
    if (r == 700 || r == 701 || r == 702 || r == 714 || r == 715 || r == 716 || r == 719)
        return rt_fail(err, "CUDA: a kernel faulted (%s: %s, seen at %s); the GPU context is no longer usable", name,
                       text, call);
    return rt_fail(err, "CUDA: %s failed: %s (%s)", call, name, text);
}

#define CK(call) cu_check(cu.call, #call, err)

bool rt_gpu_info(RtGpuInfo *info, RtErr *err)
{
    memset(info, 0, sizeof *info);
    if (!cu_load(err))
        return false;
    int n = 0, major = 0, minor = 0;
    CUdevice dev;
    if (!CK(cuDeviceGetCount(&n)))
        return false;
    if (n < 1)
        return rt_fail(err, "--target cuda: the CUDA driver sees no GPU");
    size_t total = 0;
    if (!CK(cuDeviceGet(&dev, 0)) || !CK(cuDeviceGetName(info->name, sizeof info->name, dev)) ||
        !CK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)) ||
        !CK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)) ||
        !CK(cuDeviceGetAttribute(&info->sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev)) ||
        !CK(cuDeviceTotalMem_v2(&total, dev)) || !CK(cuDriverGetVersion(&info->driver)))
        return false;
    info->sm = major * 10 + minor;
    info->total_mem = (int64_t)total;
    info->free_mem = -1;
    return true;
}

/* ---- a session ------------------------------------------------------------ */

typedef struct GpuLaunch {
    CUfunction fn;
    void *params[1 + RT_MAX_ARGS];
} GpuLaunch;

struct RtGpuSession {
    const RtProgram *p;
    CUdevice dev;
    CUcontext ctx;
    bool ctx_held;
    CUmodule mod;
    CUstream stream;
    CUdeviceptr *dbuf;        /* per RtBuf */
    CUdeviceptr *owned;       /* allocations to free */
    int nowned;
    GpuLaunch *gl;            /* per launch */
    CUfunction argmax, take; /* modelc_argmax, modelc_take_token */
    CUdeviceptr dstep;        /* two RtGpuStep: [0] all launches, [1] tail launches */
    CUdeviceptr dstep_tail;
    CUdeviceptr dbest;        /* argmax result, u64 */
    RtGpuStep *hstep;         /* pinned: two steps, then the greedy steps' two of each parity */
    unsigned long long *hbest;/* pinned: a greedy step's argmax, per parity */
    float *hlogits;           /* pinned: max_step * vocab (or vocab when last_row) */
    int64_t max_step, vocab;
    bool last_row;
    bool pdl;                 /* sm_90+: kernels start while the one before finishes (pdl_wait in each) */
    CUgraph graph[3];         /* decode step: [0] logits back, [1 + parity] argmax back */
    CUgraphExec exec[3];
    /* greedy decoding one step ahead: each greedy step is followed, before the host waits for it, by
       the next one on its argmax (taken on the device), in the other parity's step and result slots */
    CUevent done[2];          /* per parity: that step's argmax is back */
    bool ahead;               /* a step for (ahead_tok, ahead_pos) is enqueued, parity last_q */
    bool no_ahead;            /* MODELC_NO_AHEAD: wait for each step before the next (timing runs) */
    int last_q;               /* the parity of the greedy step enqueued last */
    int32_t ahead_tok;
    int64_t ahead_pos;
    int32_t ntok;             /* token ids the embedding takes */
    double *prof;
    CUevent *ev;
    bool *ran;                /* per launch: it ran in this step (profiling) */
    int64_t prof_steps;
    /* MODELC_TIMELINE: the kernels' log (prelude.cu: modelc_tl, modelc_tl_n), and the last decode step's
       records, reported when the session ends */
    CUdeviceptr tl, tl_n;
    RtTlRecord *tl_rec;
    int64_t tl_count, tl_T;
    char device[400];
};

static bool dev_alloc(RtGpuSession *g, size_t bytes, const char *what, CUdeviceptr *out, RtErr *err)
{
    *out = 0;
    if (!bytes)
        bytes = 16;
    CUresult r = cu.cuMemAlloc_v2(out, bytes);
    if (r == CUDA_ERROR_OUT_OF_MEMORY) {
        size_t fr = 0, total = 0;
        cu.cuMemGetInfo_v2(&fr, &total);
        return rt_fail(err, "out of GPU memory: %s needs %.1f MiB, %.1f MiB of %.1f MiB are free", what,
                       (double)bytes / 1048576.0, (double)fr / 1048576.0, (double)total / 1048576.0);
    }
    if (!cu_check(r, "cuMemAlloc", err))
        return false;
    g->owned[g->nowned++] = *out;
    return true;
}

void rt_gpu_session_free(RtGpuSession *g);

static bool upload_weight(RtGpuSession *g, int i, const RtCheckpoint *ckpt, RtErr *err)
{
    const RtBuf *b = &g->p->bufs[i];
    for (int j = 0; j < i; j++)   /* tied weights: one copy */
        if (g->p->bufs[j].kind == RB_WEIGHT && !strcmp(g->p->bufs[j].name, b->name)) {
            g->dbuf[i] = g->dbuf[j];
            return true;
        }
    const RtTensor *t = rt_ckpt_find(ckpt, b->name);
    /* rt_session_new checked name, dtype and shape already */
    char what[300];
    snprintf(what, sizeof what, "weight '%s'", b->name);
    return dev_alloc(g, t->nbytes, what, &g->dbuf[i], err) && CK(cuMemcpyHtoD_v2(g->dbuf[i], t->data, t->nbytes));
}

bool rt_gpu_session_new(const RtProgram *p, const RtCheckpoint *ckpt, const RtSessionOptions *o, RtGpuSession **out,
                        RtErr *err)
{
    *out = NULL;
    if (!cu_load(err))
        return false;
    RtGpuSession *g = calloc(1, sizeof *g);
    if (!g)
        return rt_fail(err, "out of memory");
    g->p = p;
    g->max_step = o->max_step;
    g->vocab = p->vocab;
    g->last_row = o->last_row;
    g->dbuf = calloc((size_t)p->nbufs, sizeof *g->dbuf);
    g->owned = calloc((size_t)p->nbufs + 8, sizeof *g->owned);
    g->gl = calloc((size_t)p->nlaunch, sizeof *g->gl);
    if (!g->dbuf || !g->owned || !g->gl) {
        rt_gpu_session_free(g);
        return rt_fail(err, "out of memory");
    }
    int major = 0, minor = 0, sms = 0;
    char name[256] = "?";
    bool ok = CK(cuDeviceGet(&g->dev, 0)) && CK(cuDevicePrimaryCtxRetain(&g->ctx, g->dev));
    g->ctx_held = ok;
    ok = ok && CK(cuCtxSetCurrent(g->ctx)) && CK(cuDeviceGetName(name, sizeof name, g->dev)) &&
         CK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, g->dev)) &&
         CK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, g->dev)) &&
         CK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, g->dev));
    if (ok && major * 10 + minor < p->sm)
        ok = rt_fail(err, "the program was compiled for sm_%d, but %s is sm_%d%d", p->sm, name, major, minor);
    g->pdl = p->sm >= 90 && major >= 9 && cu.cuLaunchKernelEx && !getenv("MODELC_NO_PDL");
    snprintf(g->device, sizeof g->device, "cuda: %s (sm_%d%d, %d SMs), kernels for sm_%d%s", name, major, minor, sms,
             p->sm, g->pdl ? ", programmatic dependent launch" : "");
    ok = ok && CK(cuStreamCreate(&g->stream, CU_STREAM_NON_BLOCKING));
    if (ok) {
        CUresult r = cu.cuModuleLoadData(&g->mod, p->cubin);
        if (r != CUDA_SUCCESS) {
            const char *n = "?";
            cu.cuGetErrorName(r, &n);
            ok = rt_fail(err, "CUDA: the driver refused the compiled kernels (cuModuleLoadData: %s); compiled for sm_%d, "
                              "the GPU is sm_%d%d", n, p->sm, major, minor);
        }
    }
    /* activation slots: one allocation, 256-byte aligned */
    int64_t *slot_off = ok ? rt_slot_offsets(p, o->max_step, 256, err) : NULL;
    ok = ok && slot_off;
    CUdeviceptr slots = 0;
    char what[200];
    snprintf(what, sizeof what, "activations for %lld tokens", (long long)o->max_step);
    ok = ok && dev_alloc(g, (size_t)slot_off[p->nslots], what, &slots, err);
    for (int i = 0; ok && i < p->nbufs; i++) {
        const RtBuf *b = &p->bufs[i];
        switch (b->kind) {
        case RB_SLOT: g->dbuf[i] = slots + (CUdeviceptr)slot_off[b->slot]; break;
        case RB_WEIGHT: ok = upload_weight(g, i, ckpt, err); break;
        case RB_INPUT:
            snprintf(what, sizeof what, "token ids");
            ok = dev_alloc(g, (size_t)o->max_step * 4, what, &g->dbuf[i], err);
            break;
        case RB_KV:
        case RB_SCRATCH: {
            int64_t bytes;
            if (!(ok = rt_ctx_bytes(b, o->max_ctx, &bytes, err)))
                break;
            snprintf(what, sizeof what, "%s for %lld positions", b->name, (long long)o->max_ctx);
            ok = dev_alloc(g, (size_t)bytes, what, &g->dbuf[i], err);
            /* split-KV decoding's counters start at zero (each attention leaves them so) */
            ok = ok && (b->kind != RB_SCRATCH || CK(cuMemsetD8Async(g->dbuf[i], 0, (size_t)bytes, g->stream)));
            break;
        }
        }
    }
    free(slot_off);
    ok = ok && dev_alloc(g, 2 * sizeof(RtGpuStep), "step", &g->dstep, err) &&
         dev_alloc(g, 8, "argmax", &g->dbest, err);
    g->dstep_tail = g->dstep + sizeof(RtGpuStep);
    int64_t rows = o->last_row ? 1 : o->max_step;
    ok = ok && CK(cuMemAllocHost_v2((void **)&g->hstep, 6 * sizeof(RtGpuStep) + 64)) &&
         CK(cuMemAllocHost_v2((void **)&g->hlogits, (size_t)(rows * p->vocab) * sizeof(float) + 64));
    if (ok)
        g->hbest = (unsigned long long *)(g->hstep + 6);
    for (int q = 0; ok && q < 2; q++)
        ok = CK(cuEventCreate(&g->done[q], CU_EVENT_DISABLE_TIMING));
    g->no_ahead = getenv("MODELC_NO_AHEAD") != NULL;
    const char *tl = getenv("MODELC_TIMELINE");
    if (ok && tl && *tl && strcmp(tl, "0")) {
        size_t bytes = 0;
        if (cu.cuModuleGetGlobal_v2(&g->tl, &bytes, g->mod, "modelc_tl") != CUDA_SUCCESS ||
            bytes < RT_TL_CAP * sizeof(RtTlRecord) ||
            cu.cuModuleGetGlobal_v2(&g->tl_n, &bytes, g->mod, "modelc_tl_n") != CUDA_SUCCESS) {
            fprintf(stderr, "modelc: warning: MODELC_TIMELINE: these kernels were compiled without it; no timeline\n");
            g->tl = 0;
        } else if (!(g->tl_rec = malloc(RT_TL_CAP * sizeof *g->tl_rec))) {
            ok = rt_fail(err, "out of memory");
        }
        g->no_ahead = g->no_ahead || g->tl_rec;   /* one step at a time, so that each step's log is its own */
    }
    g->ntok = (int32_t)(p->n_token_ids ? p->n_token_ids : p->vocab);
    /* kernels and their parameter tables */
    for (int l = 0; ok && l < p->nlaunch; l++) {
        const RtLaunch *L = &p->launch[l];
        CUresult r = cu.cuModuleGetFunction(&g->gl[l].fn, g->mod, L->kernel);
        if (r != CUDA_SUCCESS) {
            ok = rt_fail(err, "CUDA: kernel %s is not in the compiled module", L->kernel);
            break;
        }
        if (L->smem > 48 * 1024)
            ok = CK(cuFuncSetAttribute(g->gl[l].fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, L->smem));
        g->gl[l].params[0] = L->tail ? &g->dstep_tail : &g->dstep;
        for (int a = 0; a < L->nargs; a++)
            g->gl[l].params[1 + a] = &g->dbuf[L->args[a]];
    }
    if (ok && (cu.cuModuleGetFunction(&g->argmax, g->mod, "modelc_argmax") != CUDA_SUCCESS ||
               cu.cuModuleGetFunction(&g->take, g->mod, "modelc_take_token") != CUDA_SUCCESS))
        ok = rt_fail(err, "CUDA: kernel modelc_argmax or modelc_take_token is not in the compiled module");
    if (!ok) {
        rt_gpu_session_free(g);
        return false;
    }
    *out = g;
    return true;
}

static void drop_graphs(RtGpuSession *g)
{
    cu.cuStreamSynchronize(g->stream);
    g->ahead = false;
    for (int i = 0; i < 3; i++) {
        if (g->exec[i])
            cu.cuGraphExecDestroy(g->exec[i]);
        if (g->graph[i])
            cu.cuGraphDestroy(g->graph[i]);
        g->exec[i] = NULL;
        g->graph[i] = NULL;
    }
}

void rt_gpu_session_free(RtGpuSession *g)
{
    if (!g)
        return;
    if (g->tl_rec && g->tl_count)
        rt_tl_report(stderr, g->p, g->tl_T, g->last_row ? 1 : g->tl_T, g->tl_rec, g->tl_count);
    free(g->tl_rec);
    if (g->ctx_held) {
        cu.cuCtxSetCurrent(g->ctx);
        if (g->stream)
            drop_graphs(g);
        if (g->ev)
            for (int l = 0; l < 2 * g->p->nlaunch; l++)
                if (g->ev[l])
                    cu.cuEventDestroy_v2(g->ev[l]);
        for (int i = 0; i < g->nowned; i++)
            cu.cuMemFree_v2(g->owned[i]);
        for (int q = 0; q < 2; q++)
            if (g->done[q])
                cu.cuEventDestroy_v2(g->done[q]);
        if (g->hstep)
            cu.cuMemFreeHost(g->hstep);
        if (g->hlogits)
            cu.cuMemFreeHost(g->hlogits);
        if (g->mod)
            cu.cuModuleUnload(g->mod);
        if (g->stream)
            cu.cuStreamDestroy_v2(g->stream);
        cu.cuDevicePrimaryCtxRelease_v2(g->dev);
    }
    free(g->ev);
    free(g->ran);
    free(g->prof);
    free(g->dbuf);
    free(g->owned);
    free(g->gl);
    free(g);
}

const char *rt_gpu_device(const RtGpuSession *g)
{
    return g->device;
}

static unsigned grid_dim(const RtLaunch *L, int d, int64_t T)
{
    int64_t x = L->grid[d];
    if (L->grid_tok[d] > 0)
        x *= (T + L->grid_tok[d] - 1) / L->grid_tok[d];
    return (unsigned)x;
}

/* Enqueue one step's kernels (T rows; tail launches on T_tail rows). */
static bool enqueue(RtGpuSession *g, int64_t T, int64_t T_tail, RtErr *err)
{
    const RtProgram *p = g->p;
    int kernels = 0;
    for (int l = 0; l < p->nlaunch; l++) {
        const RtLaunch *L = &p->launch[l];
        int64_t t = L->tail ? T_tail : T;
        if (t < L->min_T || (L->max_T && t > L->max_T))
            continue;
        unsigned gx = grid_dim(L, 0, t), gy = grid_dim(L, 1, t), gz = grid_dim(L, 2, t);
        if (!gx || !gy || !gz)
            continue;
        if (g->prof && !CK(cuEventRecord(g->ev[2 * l], g->stream)))
            return false;
        CUresult r;
        if (g->pdl && !g->prof && kernels) {   /* after a kernel: may start as it finishes */
            CUlaunchAttribute a = {.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION};
            a.value.programmatic_stream_serialization = 1;
            CUlaunchConfig c = {{gx, gy, gz}, {(unsigned)L->block, 1, 1}, (unsigned)L->smem, g->stream, &a, 1};
            r = cu.cuLaunchKernelEx(&c, g->gl[l].fn, g->gl[l].params, NULL);
        } else {
            r = cu.cuLaunchKernel(g->gl[l].fn, gx, gy, gz, (unsigned)L->block, 1, 1, (unsigned)L->smem, g->stream,
                                  g->gl[l].params, NULL);
        }
        kernels++;
        if (r != CUDA_SUCCESS) {
            char call[300];
            snprintf(call, sizeof call, "launching %s (%s)", L->kernel, L->what ? L->what : "");
            return cu_check(r, call, err);
        }
        if (g->prof && !CK(cuEventRecord(g->ev[2 * l + 1], g->stream)))
            return false;
        if (g->prof)
            g->ran[l] = true;
    }
    return true;
}

/* The two RtGpuStep of a step of T tokens at pos, in hs[0..1]. */
static void set_step(RtGpuSession *g, RtGpuStep *hs, int64_t T, int64_t pos)
{
    bool last = g->last_row;
    hs[0] = (RtGpuStep){.T = (int32_t)T, .pos0 = (int32_t)pos, .row0 = 0};
    hs[1] = (RtGpuStep){.T = last ? 1 : (int32_t)T, .pos0 = (int32_t)pos, .row0 = last ? (int32_t)(T - 1) : 0};
}

/* The greedy step of parity q: its step slots and its argmax's slot. */
static RtGpuStep *greedy_step(RtGpuSession *g, int q)
{
    return g->hstep + 2 + 2 * q;
}

static bool enqueue_argmax(RtGpuSession *g, int q, RtErr *err)
{
    CUdeviceptr logits = g->dbuf[g->p->logits_buf];
    int vocab = (int)g->vocab;
    void *params[] = {&g->dstep_tail, &logits, &g->dbest, &vocab};
    return CK(cuMemsetD8Async(g->dbest, 0, 8, g->stream)) &&
           CK(cuLaunchKernel(g->argmax, 128, 1, 1, 256, 1, 1, 0, g->stream, params, NULL)) &&
           CK(cuMemcpyDtoHAsync_v2(&g->hbest[q], g->dbest, 8, g->stream));
}

/* The logits rows a step returns, copied back into pinned memory. */
static bool enqueue_logits_back(RtGpuSession *g, int64_t T, RtErr *err)
{
    int64_t row = g->last_row ? T - 1 : 0, rows = g->last_row ? 1 : T;
    CUdeviceptr src = g->dbuf[g->p->logits_buf] + (CUdeviceptr)(row * g->vocab * 4);
    return CK(cuMemcpyDtoHAsync_v2(g->hlogits, src, (size_t)(rows * g->vocab) * 4, g->stream));
}

/* Profiling times each launch between two events; decode steps then run
 * without the graph (events recorded by a graph's nodes cannot be timed:
 * CUDA_ERROR_INVALID_VALUE on the H100's driver), so small decode kernels
 * show the host's launch time too. */
static bool profile_collect(RtGpuSession *g, RtErr *err)
{
    if (!g->prof)
        return true;
    if (!CK(cuStreamSynchronize(g->stream)))
        return false;
    const bool *ran = g->ran;
    static bool warned;
    for (int l = 0; l < g->p->nlaunch; l++) {
        float ms = 0;
        if (ran && ran[l]) {
            CUresult r = cu.cuEventElapsedTime(&ms, g->ev[2 * l], g->ev[2 * l + 1]);
            if (r == CUDA_SUCCESS) {
                g->prof[l] += ms * 1e-3;
            } else if (!warned) {
                const char *name = "?";
                cu.cuGetErrorName(r, &name);
                fprintf(stderr, "modelc: warning: --profile cannot time %s: cuEventElapsedTime: %s\n",
                        g->p->launch[l].kernel, name);
                warned = true;
            }
        }
        g->ran[l] = false;
    }
    g->prof_steps++;
    return true;
}

/* MODELC_TIMELINE: the log emptied before a step, and read after it (decode
 * steps only: the last one is reported). */
static bool tl_start(RtGpuSession *g, RtErr *err)
{
    return !g->tl_rec || CK(cuMemsetD8Async(g->tl_n, 0, 4, g->stream));
}

static bool tl_collect(RtGpuSession *g, int64_t T, RtErr *err)
{
    if (!g->tl_rec || T != 1)
        return true;
    unsigned n = 0;
    if (!CK(cuMemcpyDtoH_v2(&n, g->tl_n, 4)))
        return false;
    g->tl_count = n < RT_TL_CAP ? n : RT_TL_CAP;
    g->tl_T = T;
    return CK(cuMemcpyDtoH_v2(g->tl_rec, g->tl, (size_t)g->tl_count * sizeof *g->tl_rec));
}

/* A decode step (T = 1): the step copy, the kernels, and the copy of the
 * result back: `which` 0 the logits, 1 + q the argmax, with parity q's step
 * and result slots. */
static bool enqueue_decode(RtGpuSession *g, int which, RtErr *err)
{
    const RtGpuStep *hs = which ? greedy_step(g, which - 1) : g->hstep;
    return CK(cuMemcpyHtoDAsync_v2(g->dstep, hs, 2 * sizeof(RtGpuStep), g->stream)) && enqueue(g, 1, 1, err) &&
           (which ? enqueue_argmax(g, which - 1, err) : enqueue_logits_back(g, 1, err));
}

/* Decode steps replay enqueue_decode(which) captured as a graph. */
static bool decode_graph(RtGpuSession *g, int which, RtErr *err)
{
    if (g->exec[which])
        return true;
    if (!CK(cuStreamBeginCapture_v2(g->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)))
        return false;
    bool ok = enqueue_decode(g, which, err);
    CUgraph graph = NULL;
    CUresult r = cu.cuStreamEndCapture(g->stream, &graph);
    if (!ok) {
        if (graph)
            cu.cuGraphDestroy(graph);
        return false;
    }
    g->graph[which] = graph;
    return cu_check(r, "cuStreamEndCapture", err) && CK(cuGraphInstantiateWithFlags(&g->exec[which], graph, 0));
}

const float *rt_gpu_step(RtGpuSession *g, const int32_t *tokens, int64_t T, int64_t pos, RtErr *err)
{
    if (!CK(cuCtxSetCurrent(g->ctx)))
        return NULL;
    g->ahead = false;   /* a greedy step enqueued ahead runs first and is overwritten */
    set_step(g, g->hstep, T, pos);
    CUdeviceptr dtok = g->dbuf[g->p->tokens_buf];
    if (!CK(cuMemcpyHtoDAsync_v2(dtok, tokens, (size_t)T * 4, g->stream)) || !tl_start(g, err))
        return NULL;
    if (T == 1 && !g->prof) {
        if (!decode_graph(g, 0, err) || !CK(cuGraphLaunch(g->exec[0], g->stream)))
            return NULL;
    } else if (!CK(cuMemcpyHtoDAsync_v2(g->dstep, g->hstep, 2 * sizeof(RtGpuStep), g->stream)) ||
               !enqueue(g, T, g->last_row ? 1 : T, err) || !enqueue_logits_back(g, T, err)) {
        return NULL;
    }
    if (!CK(cuStreamSynchronize(g->stream)) || !profile_collect(g, err) || !tl_collect(g, T, err))
        return NULL;
    return g->hlogits;
}

/* Enqueue the greedy step of parity q at pos: its token from the host
 * (token) or from the argmax of the step before it, on the device (NULL). */
static bool launch_greedy(RtGpuSession *g, int q, int64_t pos, const int32_t *token, RtErr *err)
{
    CUdeviceptr dtok = g->dbuf[g->p->tokens_buf];
    set_step(g, greedy_step(g, q), 1, pos);
    void *params[] = {&g->dbest, &dtok, &g->ntok};
    if (!tl_start(g, err))
        return false;
    if (token ? !CK(cuMemcpyHtoDAsync_v2(dtok, token, 4, g->stream))
              : !CK(cuLaunchKernel(g->take, 1, 1, 1, 32, 1, 1, 0, g->stream, params, NULL)))
        return false;
    if (g->prof ? !enqueue_decode(g, 1 + q, err)
                : !decode_graph(g, 1 + q, err) || !CK(cuGraphLaunch(g->exec[1 + q], g->stream)))
        return false;
    g->last_q = q;
    return CK(cuEventRecord(g->done[q], g->stream));
}

/* A greedy step: the step for (token, pos) -- enqueued by the call before
 * when that call returned `token` for pos -- then, where `room` says the
 * cache has a position more, the next step on this one's argmax, before
 * waiting for this one: the device goes from step to step without waiting
 * for the host.  A step enqueued ahead and not asked for runs anyway; the
 * step after it overwrites its cache row. */
bool rt_gpu_step_greedy(RtGpuSession *g, int32_t token, int64_t pos, bool room, int32_t *next, RtErr *err)
{
    if (!CK(cuCtxSetCurrent(g->ctx)))
        return false;
    int q;
    if (g->ahead && g->ahead_pos == pos && g->ahead_tok == token) {
        q = g->last_q;
    } else {
        /* a step ahead not taken may still read its slots: let it finish */
        if (g->ahead && !CK(cuStreamSynchronize(g->stream)))
            return false;
        q = g->last_q ^ 1;
        if (!launch_greedy(g, q, pos, &token, err))
            return false;
    }
    g->ahead = false;
    bool ahead = room && !g->prof && !g->no_ahead;
    if (ahead && !launch_greedy(g, q ^ 1, pos + 1, NULL, err))
        return false;
    if (!CK(cuEventSynchronize(g->done[q])) || !profile_collect(g, err) || !tl_collect(g, 1, err))
        return false;
    unsigned long long best = g->hbest[q];
    if (!best)
        return rt_fail(err, "CUDA: every logit was NaN");
    *next = (int32_t)(0xffffffffu - (unsigned)(best & 0xffffffffu));
    if (ahead) {
        g->ahead = true;
        g->ahead_pos = pos + 1;
        g->ahead_tok = *next;
    }
    return true;
}

bool rt_gpu_profile(RtGpuSession *g, bool on, RtErr *err)
{
    free(g->prof);
    g->prof = NULL;
    g->prof_steps = 0;
    if (!on)
        return true;
    if (!g->ev) {
        g->ev = calloc((size_t)(2 * g->p->nlaunch), sizeof *g->ev);
        g->ran = calloc((size_t)g->p->nlaunch, sizeof *g->ran);
        if (!g->ev || !g->ran)
            return rt_fail(err, "out of memory");
        for (int l = 0; l < 2 * g->p->nlaunch; l++)
            if (!CK(cuEventCreate(&g->ev[l], CU_EVENT_DEFAULT)))
                return false;
    }
    g->prof = calloc((size_t)g->p->nlaunch, sizeof *g->prof);
    return g->prof ? true : rt_fail(err, "out of memory");
}

const double *rt_gpu_profile_times(const RtGpuSession *g, int64_t *steps)
{
    *steps = g->prof_steps;
    return g->prof;
}
