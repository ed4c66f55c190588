/* codegen/cpu/internal.h — what the CPU backend's files share.
 *
 * KB wraps an LLVM builder with the handful of shapes every kernel needs:
 * counted loops (their counters in entry-block allocas, which mem2reg turns
 * into registers), vector loads that widen f16/bf16 to f32, horizontal sums,
 * intrinsics.  LLVM 14 has typed pointers, so loads take element pointers. */
#ifndef MODELC_CPU_INTERNAL_H
#define MODELC_CPU_INTERNAL_H

#include <llvm-c/Core.h>

#include "codegen/cpu/cpu.h"
#include "codegen/program.h"

typedef struct KB {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b, ab;         /* ab: allocas, at the end of the entry block */
    LLVMValueRef fn;
    LLVMBasicBlockRef entry, start;
    LLVMTypeRef voidt, i1, i8, i16, i32, i64, f16, f32, f64, i8p;
    LLVMTypeRef vf, vh, vi16, vi32; /* <vw x float/half/i16/i32> */
    LLVMValueRef bufs, T, pos0, lo, hi;
    int vw;
    const char *cpu, *features;
} KB;

typedef struct Loop {
    LLVMValueRef var, end, step;
    LLVMBasicBlockRef head, body, exit;
} Loop;

/* Program being built alongside the module. */
typedef struct CpuGen {
    Compilation *c;
    KB k;
    ProgTables t;                  /* buffers and launches (codegen/program.h) */
    const char *suffix;            /* of the kernel being built (cpu_kernel_name) */
    const char **keys, **key_fn;   /* kernels built so far: what they compute -> their name */
    int nkeys, capkeys;
} CpuGen;

typedef bool CpuEmitFn(CpuGen *g, Node *n);

/* builder.c */
void kb_init(KB *k, LLVMContextRef ctx, LLVMModuleRef mod, int vw, const char *cpu, const char *features);
void kb_begin(KB *k, const char *name);
void kb_finish(KB *k);
LLVMValueRef kb_i64(KB *k, int64_t v);
LLVMValueRef kb_f32(KB *k, double v);
LLVMValueRef kb_splat(KB *k, LLVMValueRef scalar, unsigned n);   /* <n x type of scalar> */
LLVMValueRef kb_vsplat(KB *k, LLVMValueRef scalar);              /* kb_splat to the vector width */
LLVMValueRef kb_arg(KB *k, int i, LLVMTypeRef elem);   /* bufs[i] as elem* */
LLVMTypeRef kb_elem(KB *k, DType t);                   /* storage type of one element */
LLVMValueRef kb_loadv(KB *k, LLVMValueRef base, LLVMValueRef idx, DType t);  /* <vw x float> */
LLVMValueRef kb_loads(KB *k, LLVMValueRef base, LLVMValueRef idx, DType t);  /* float */
void kb_storev(KB *k, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);  /* f32 */
void kb_stores(KB *k, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
/* Block types: the 32 values of the block at byte offset off of base (i8*),
 * widened to f32, as 32/vw vectors in out[] (exactly ggml's dequantization). */
void kb_loadq(KB *k, LLVMValueRef base, LLVMValueRef off, DType t, LLVMValueRef *out);
LLVMValueRef kb_load_half(KB *k, LLVMValueRef base, LLVMValueRef off);          /* f16 at byte off, as float */
LLVMValueRef kb_load_bytes(KB *k, LLVMValueRef base, LLVMValueRef off, unsigned n);   /* <n x i8> */
/* Block types for integer dot products: the scale d (and Q4_1's m) as float,
 * the 32 quants as <32 x i8> (Q8_0 as stored, Q4_0 as nibble - 8, both signed;
 * Q4_1 as the nibble, 0..15). */
void kb_loadq_i8(KB *k, LLVMValueRef base, LLVMValueRef off, DType t, LLVMValueRef *d, LLVMValueRef *m, LLVMValueRef *q);
/* <8 x i32>: lane j = sum of w[i] * x[i] for i in 4j .. 4j+3 (w, x: <32 x i8>, x signed), as ggml's
 * AVX2 vec_dot kernels form it (vpmaddubsw + vpmaddwd where the CPU has AVX2). */
LLVMValueRef kb_dot4_i8(KB *k, LLVMValueRef w, LLVMValueRef x, bool w_unsigned);
/* One ggml block_q8_1 at byte off of dst from the 32 floats at x[idx] (quantize_row_q8_1 of ggml's x86 code:
 * d = max|x| / 127, q = round-half-even(x * (127 / max|x|)), s = d * sum q; d and s as halves). */
void kb_quantize_q8_1(KB *k, LLVMValueRef x, LLVMValueRef idx, LLVMValueRef dst, LLVMValueRef off);
LLVMValueRef kb_hsum(KB *k, LLVMValueRef v);   /* any width: pairwise halving, lanes i and i + n/2 first */
LLVMValueRef kb_hmax(KB *k, LLVMValueRef v);
LLVMValueRef kb_call(KB *k, const char *intrinsic, LLVMTypeRef overload, LLVMValueRef *args, int n);
LLVMValueRef kb_fma(KB *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
LLVMValueRef kb_alloca(KB *k, LLVMTypeRef t, LLVMValueRef init);
LLVMValueRef kb_alloca_array(KB *k, LLVMTypeRef t, int64_t n);
LLVMValueRef kb_get(KB *k, LLVMValueRef var);
void kb_set(KB *k, LLVMValueRef var, LLVMValueRef v);
LLVMValueRef kb_loop(KB *k, Loop *l, LLVMValueRef start, LLVMValueRef end, LLVMValueRef step);
void kb_loop_end(KB *k, Loop *l);
LLVMValueRef kb_gep(KB *k, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef kb_add(KB *k, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef kb_mul(KB *k, LLVMValueRef a, LLVMValueRef b);

/* kernels.c */
#define OP(id, name, sig, kw, flags, infer, emit) CpuEmitFn emit;
#include "ir/ops.def"
#undef OP

int cpu_launch(CpuGen *g, Node *n, const char *fn_name, int nargs, const int *args, int64_t work_per_tok,
               int64_t work_const, int64_t grain);
const char *cpu_kernel_name(CpuGen *g, Node *n, const char *suffix);

#endif
