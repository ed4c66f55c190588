/* codegen/cuda/internal.h — what the CUDA backend's files share. */
#ifndef MODELC_CUDA_INTERNAL_H
#define MODELC_CUDA_INTERNAL_H

#include "codegen/cuda/cuda.h"
#include "codegen/program.h"

/* One distinct kernel of the translation unit. */
typedef struct CudaKernel {
    const char *name, *text;   /* text with the name filled in */
    const char *generic;       /* text with the placeholder KNAME, to compare */
    const char *comment;       /* the first IR node that uses it */
    int uses;
} CudaKernel;

typedef struct CudaGen {
    Compilation *c;
    ProgTables t;
    int sm;
    CudaKernel *k;
    int nk, capk;
    int last_attention;        /* node id of the last attention (-1: none): per-row ops after it are tails */
    int scratch_buf;           /* split-KV decoding's and split-K GEMMs' counters, then their partial
                                  results, shared by every such launch (-1: none yet); zeroed at
                                  allocation, and each counter is back at 0 when its launch ends */
    int64_t scratch_const;
    bool wgmma;                /* a kernel uses the wgmma helpers (cg_wgmma_helpers) */
    bool timeline;             /* CudaOptions.timeline */
    int64_t counters;          /* counter slots before the partial results: 4 per head of the widest
                                  attention, or one per output tile of a K-split GEMM, whichever is more */
} CudaGen;

/* A kernel's text is written to a memory stream with the placeholder KNAME
 * for its name; cg_kernel dedups it against the kernels so far (layers
 * share kernels) and returns the name it goes by. */
typedef struct KText {
    char *buf;
    size_t len;
    FILE *f;
} KText;

FILE *cg_text(KText *t);
const char *cg_kernel(CudaGen *g, const Node *n, KText *t, const char *suffix);
/* A launch of kernel for node n with the given buffers (block threads). */
RtLaunch *cg_launch(CudaGen *g, const Node *n, const char *kernel, int nargs, const int *args, int block);
int cg_buf(CudaGen *g, const Node *n);
/* The scratch buffer, grown to hold the counters and `floats` partial results. */
int cg_scratch(CudaGen *g, int64_t floats);

/* kernels.c: emit the kernels and launches of one node. */
bool cuda_emit_node(CudaGen *g, Node *n);
void cg_wgmma_helpers(FILE *f);
extern const char cuda_prelude[];

/* nvrtc.c */
bool cuda_nvrtc_cubin(const char *src, const char *model, int sm, const char *cache_dir, void **cubin, size_t *len,
                      bool *hit, Diags *d);
char *cuda_nvrtc_ptx(const char *src, const char *model, int sm, Diags *d);

#endif
