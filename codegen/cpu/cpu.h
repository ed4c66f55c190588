/* codegen/cpu/cpu.h — the CPU backend: graph IR -> LLVM IR (through the LLVM C
 * API) -> native code for the host, JIT-compiled for `modelc run`, or written
 * as LLVM IR, assembly or an object file for `modelc emit`.
 *
 * cpu_codegen turns a planned graph (after pass "plan") into one LLVM module
 * with one function per kernel (each named after and commented with the IR
 * node it came from) and the RtProgram that says how to launch them.  The
 * kernels are specialized to the graph's concrete shapes and weight dtypes and
 * vectorized explicitly for the host's vector width (AVX-512: 16 floats,
 * AVX2: 8), with the host's CPU name and feature string (LLVM 14 calls newer
 * CPUs "generic": without the features it would emit SSE2 code). */
#ifndef MODELC_CPU_H
#define MODELC_CPU_H

#include <stdbool.h>
#include <stdio.h>

#include "passes/passes.h"
#include "runtime/runtime.h"

typedef struct CpuModule CpuModule;

typedef struct CpuOptions {
    int opt_level;       /* 0..3 (cpu_codegen with no options: 3) */
    int vector_width;    /* floats per vector; 0: from the host's features */
    bool dequantize;     /* recorded in the program: the weights were opened dequantized */
} CpuOptions;

bool cpu_codegen(Compilation *c, const CpuOptions *o, CpuModule **out);
const RtProgram *cpu_program(const CpuModule *m);
/* JIT the module (LLJIT) and fill every launch's fn.  The module is consumed. */
bool cpu_jit(CpuModule *m, Diags *d);
typedef enum { CPU_EMIT_LLVM, CPU_EMIT_ASM, CPU_EMIT_OBJ } CpuEmitKind;
/* Write the module to f (LLVM IR and assembly carry a comment per kernel
 * naming its IR node). */
bool cpu_emit(CpuModule *m, CpuEmitKind kind, FILE *f, Diags *d);
void cpu_module_free(CpuModule *m);
/* For `modelc build`: add the embedded plan (JSON), the table of kernel
 * entry points in launch order and the build info as a constant RtEmbedded
 * named `symbol`; with_main also adds main() calling rt_exe_main. */
void cpu_add_entry(CpuModule *m, const char *symbol, const char *plan_json, const char *info, bool with_main);
/* The module as LLVM IR text (for hashing what a build contains). */
char *cpu_module_text(CpuModule *m);   /* free() it */
/* "cpu=znver3 features=+avx2,+fma,... vector=8" for --version / emit headers */
const char *cpu_host_description(void);

#endif
