/* codegen/cuda/cuda.h — the CUDA backend: graph IR -> CUDA C (one
 * translation unit, a kernel per distinct op instance, each instantiated
 * from a template with the tile sizes pass "select" chose and commented with
 * the IR node it came from) -> NVRTC -> cubin for one sm_XX, cached on disk.
 *
 * NVRTC (libnvrtc.so) is opened with dlopen, so modelc starts on machines
 * without the CUDA toolkit and says what is missing when asked for CUDA. */
#ifndef MODELC_CUDA_H
#define MODELC_CUDA_H

#include <stdbool.h>
#include <stdio.h>

#include "passes/passes.h"
#include "runtime/runtime.h"

typedef struct CudaModule CudaModule;

typedef struct CudaOptions {
    int sm;                 /* 80, 86, 89, 90 ... */
    bool dequantize;        /* recorded in the program */
    const char *cache_dir;  /* NULL: $XDG_CACHE_HOME/modelc or ~/.cache/modelc; "" : no cache */
    bool timeline;          /* each block of each kernel logs when it started, passed pdl_wait and
                               ended (prelude.cu: TlScope; the runtime's MODELC_TIMELINE report) */
} CudaOptions;

/* The CUDA C source and the program tables (no compilation yet). */
bool cuda_codegen(Compilation *c, const CudaOptions *o, CudaModule **out);
const char *cuda_source(const CudaModule *m);
/* Compile with NVRTC (or take the cached cubin); fills the program's cubin.
 * A failure prints NVRTC's log and the path of the source it kept. */
bool cuda_compile(CudaModule *m, Diags *d);
bool cuda_cache_hit(const CudaModule *m);
/* PTX of the source, through NVRTC (malloc'd). */
char *cuda_ptx(CudaModule *m, Diags *d);
const RtProgram *cuda_program(const CudaModule *m);
void cuda_module_free(CudaModule *m);
/* "NVRTC 13.0" or why it is not there. */
const char *cuda_nvrtc_description(void);
/* Parse "cuda", "cuda:sm_90", "cuda:sm_80": sm stays 0 for plain "cuda". */
bool cuda_parse_target(const char *s, int *sm);

#endif
