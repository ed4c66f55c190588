/* codegen/cpu/codegen.c — driving the CPU backend: the host target, the
 * program tables (buffers and launches), optimization, JIT and emission. */
#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cpu/internal.h"

struct CpuModule {
    Compilation *c;
    LLVMOrcThreadSafeContextRef tsc;
    LLVMModuleRef mod;
    LLVMTargetMachineRef tm;
    LLVMOrcLLJITRef jit;
    RtProgram prog;
    const char **comment;          /* per launch */
    char *cpu, *features, *triple;
};

static CpuEmitFn *const emit_table[OP_COUNT] = {
#define OP(id, name, sig, kw, flags, infer, emit) [OP_##id] = emit,
#include "ir/ops.def"
#undef OP
};

/* ---- host --------------------------------------------------------------- */

static void init_llvm(void)
{
    static bool done;
    if (done)
        return;
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMInitializeNativeAsmParser();
    done = true;
}

static int host_vector_width(const char *features)
{
    if (strstr(features, "+avx512f"))
        return 16;
    if (strstr(features, "+avx"))
        return 8;
    return 4;
}

const char *cpu_host_description(void)
{
    static char buf[4096];
    init_llvm();
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    const char *want[] = {"+avx512f", "+avx512bw", "+avx512vl", "+avx512fp16", "+avx2", "+fma", "+f16c", "+avx"};
    size_t k = (size_t)snprintf(buf, sizeof buf, "cpu=%s vector=%d features=", cpu, host_vector_width(feat));
    bool first = true;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const char *p = strstr(feat, want[i]);
        if (p && (p[strlen(want[i])] == ',' || !p[strlen(want[i])])) {
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", first ? "" : ",", want[i] + 1);
            first = false;
        }
    }
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    return buf;
}

static LLVMTargetMachineRef host_machine(CpuModule *m, int opt, Diags *d)
{
    char *err = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(m->triple, &target, &err)) {
        diag_error_nopos(d, "LLVM has no target for %s: %s", m->triple, err);
        LLVMDisposeMessage(err);
        return NULL;
    }
    LLVMCodeGenOptLevel lvl = opt >= 3 ? LLVMCodeGenLevelAggressive : opt == 2 ? LLVMCodeGenLevelDefault
                              : opt == 1 ? LLVMCodeGenLevelLess : LLVMCodeGenLevelNone;
    return LLVMCreateTargetMachine(target, m->triple, m->cpu, m->features, lvl, LLVMRelocPIC, LLVMCodeModelDefault);
}

/* ---- program tables -------------------------------------------------------- */

const char *cpu_kernel_name(CpuGen *g, Node *n, const char *suffix)
{
    g->suffix = suffix;
    return pt_kernel_name(g->c->arena, n, suffix);
}

/* What a kernel computes, independent of which node asked: op, operand and
 * result types and shapes, attributes.  Layers of one model share kernels. */
static const char *kernel_key(CpuGen *g, const Node *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "%d%s|", n->op, g->suffix);
    for (int i = 0; i <= n->nsrc; i++) {
        const Node *x = i < n->nsrc ? n->src[i] : n;
        fprintf(f, "%d:", x->dt);
        for (int d = 0; d < x->rank; d++)
            fprintf(f, "%lld,", (long long)x->shape[d]);
        fputc('|', f);
    }
    const unsigned char *a = (const unsigned char *)&n->a;
    for (size_t i = 0; i < sizeof n->a; i++)
        fprintf(f, "%02x", a[i]);
    fclose(f);
    char *key = arena_strdup(g->c->arena, buf);
    free(buf);
    return key;
}

/* If an identical kernel exists, drop the one just built and use that one. */
static const char *dedup_kernel(CpuGen *g, const Node *n, const char *fn_name)
{
    const char *key = kernel_key(g, n);
    if (!key)
        return fn_name;
    for (int i = 0; i < g->nkeys; i++)
        if (!strcmp(g->keys[i], key)) {
            LLVMDeleteFunction(LLVMGetNamedFunction(g->k.mod, fn_name));
            return g->key_fn[i];
        }
    if (g->nkeys == g->capkeys) {
        size_t used = (size_t)g->nkeys, cap = (size_t)(g->capkeys = g->capkeys ? 2 * g->capkeys : 64);
        g->keys = arena_grow(g->c->arena, g->keys, used, cap, sizeof *g->keys);
        g->key_fn = arena_grow(g->c->arena, g->key_fn, used, cap, sizeof *g->key_fn);
    }
    g->keys[g->nkeys] = key;
    g->key_fn[g->nkeys++] = fn_name;
    return fn_name;
}

int cpu_launch(CpuGen *g, Node *n, const char *fn_name, int nargs, const int *args, int64_t work_per_tok,
               int64_t work_const, int64_t grain)
{
    fn_name = dedup_kernel(g, n, fn_name);
    IR_ASSERT(nargs <= RT_MAX_ARGS);
    RtLaunch *l = pt_new_launch(&g->t, n, fn_name);
    l->nargs = nargs;
    memcpy(l->args, args, (size_t)nargs * sizeof *args);
    l->work_per_tok = work_per_tok;
    l->work_const = work_const;
    l->grain = grain;
    return g->t.nlaunch - 1;
}

bool cpu_codegen(Compilation *c, const CpuOptions *o, CpuModule **out)
{
    init_llvm();
    Diags *d = c->diags;
    if (!pt_bound(c))
        return false;
    CpuModule *m = calloc(1, sizeof *m);
    if (!m) {
        diag_error_nopos(d, "out of memory");
        return false;
    }
    m->c = c;
    m->triple = LLVMGetDefaultTargetTriple();
    m->cpu = LLVMGetHostCPUName();
    m->features = LLVMGetHostCPUFeatures();
    m->tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(m->tsc);
    m->mod = LLVMModuleCreateWithNameInContext(c->graph->name, ctx);
    LLVMSetTarget(m->mod, m->triple);
    int opt = o ? o->opt_level : 3;
    m->tm = host_machine(m, opt, d);
    if (!m->tm) {
        cpu_module_free(m);
        return false;
    }
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(m->tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(m->mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);

    CpuGen g = {.c = c};
    pt_init(&g.t, c);
    int vw = o && o->vector_width ? o->vector_width : host_vector_width(m->features);
    kb_init(&g.k, ctx, m->mod, vw, m->cpu, m->features);
    RtProgram *p = &m->prog;
    if (!pt_assign_buffers(&g.t, p)) {
        LLVMDisposeBuilder(g.k.b);
        LLVMDisposeBuilder(g.k.ab);
        cpu_module_free(m);
        return false;
    }
    for (int i = 0; i < c->graph->n; i++) {
        Node *n = c->graph->nodes[i];
        if (!emit_table[n->op](&g, n)) {
            LLVMDisposeBuilder(g.k.b);
            LLVMDisposeBuilder(g.k.ab);
            cpu_module_free(m);
            return false;
        }
    }
    LLVMDisposeBuilder(g.k.b);
    LLVMDisposeBuilder(g.k.ab);

    char *msg = NULL;
    if (LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &msg)) {
        fprintf(stderr, "%s\n", msg);
        IR_BUG("generated LLVM module does not verify");
    }
    LLVMDisposeMessage(msg);
    if (opt > 0) {
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
        LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
        char pipeline[32];
        snprintf(pipeline, sizeof pipeline, "default<O%d>", opt);
        LLVMErrorRef e = LLVMRunPasses(m->mod, pipeline, m->tm, po);
        LLVMDisposePassBuilderOptions(po);
        if (e) {
            char *em = LLVMGetErrorMessage(e);
            diag_error_nopos(d, "LLVM optimization failed: %s", em);
            LLVMDisposeErrorMessage(em);
            cpu_module_free(m);
            return false;
        }
    }
    pt_finish(&g.t, p);
    p->dequantize = o && o->dequantize;
    m->comment = g.t.comment;
    *out = m;
    return true;
}

const RtProgram *cpu_program(const CpuModule *m)
{
    return &m->prog;
}

/* ---- JIT ------------------------------------------------------------------ */

static bool llvm_err(Diags *d, LLVMErrorRef e, const char *what)
{
    if (!e)
        return true;
    char *msg = LLVMGetErrorMessage(e);
    diag_error_nopos(d, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

/* The C library functions generated code may call, bound by address so the
 * JIT needs no dynamic symbol lookup for them. */
static bool add_libm(CpuModule *m, LLVMOrcJITDylibRef jd, Diags *d)
{
    static const struct { const char *name; void *addr; } syms[] = {
        {"expf", (void *)expf}, {"exp", (void *)exp}, {"cos", (void *)cos}, {"sin", (void *)sin},
        {"cosf", (void *)cosf}, {"sinf", (void *)sinf}, {"sqrtf", (void *)sqrtf}, {"memcpy", (void *)memcpy},
        {"memset", (void *)memset}, {"memmove", (void *)memmove},
    };
    enum { N = sizeof syms / sizeof *syms };
    LLVMJITCSymbolMapPair pairs[N];
    for (int i = 0; i < N; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(m->jit, syms[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr;
        pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
        pairs[i].Sym.Flags.TargetFlags = 0;
    }
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, N);
    return llvm_err(d, LLVMOrcJITDylibDefine(jd, mu), "JIT: defining libm symbols");
}

bool cpu_jit(CpuModule *m, Diags *d)
{
    LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(m->tm);
    m->tm = NULL;   /* owned by the builder now */
    LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, jtmb);
    if (!llvm_err(d, LLVMOrcCreateLLJIT(&m->jit, jb), "JIT: creating LLJIT"))
        return false;
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(m->jit);
    if (!add_libm(m, jd, d))
        return false;
    LLVMOrcDefinitionGeneratorRef gen;
    if (!llvm_err(d, LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(m->jit), NULL, NULL),
                  "JIT: process symbols"))
        return false;
    LLVMOrcJITDylibAddGenerator(jd, gen);
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m->mod, m->tsc);
    m->mod = NULL;
    if (!llvm_err(d, LLVMOrcLLJITAddLLVMIRModule(m->jit, jd, tsm), "JIT: adding module"))
        return false;
    for (int i = 0; i < m->prog.nlaunch; i++) {
        LLVMOrcExecutorAddress addr = 0;
        if (!llvm_err(d, LLVMOrcLLJITLookup(m->jit, &addr, m->prog.launch[i].kernel), "JIT: looking up a kernel"))
            return false;
        m->prog.launch[i].fn = (RtKernelFn)(uintptr_t)addr;
    }
    return true;
}

/* ---- emission ----------------------------------------------------------- */

/* Find the kernel a line of text begins, if any: "define ... @kN_...(" in
 * LLVM IR, "kN_...:" in assembly. */
static int kernel_at(const CpuModule *m, const char *line, size_t len, bool asm_text)
{
    for (int i = 0; i < m->prog.nlaunch; i++) {
        const char *name = m->prog.launch[i].kernel;
        size_t nl = strlen(name);
        if (asm_text) {
            if (len == nl + 1 && !strncmp(line, name, nl) && line[nl] == ':')
                return i;
        } else if (len > 7 && !strncmp(line, "define ", 7)) {
            const char *at = memchr(line, '@', len);
            if (at && (size_t)(line + len - at) > nl + 1 && !strncmp(at + 1, name, nl) && at[1 + nl] == '(')
                return i;
        }
    }
    return -1;
}

static void write_commented(const CpuModule *m, const char *text, size_t len, bool asm_text, FILE *f)
{
    const char *cmt = asm_text ? "#" : ";";
    fprintf(f, "%s modelc: model %s, host %s\n", cmt, m->prog.model, cpu_host_description());
    for (const char *p = text, *end = text + len; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
        int k = kernel_at(m, p, l, asm_text);
        if (k >= 0) {
            int uses = 0;
            for (int i = 0; i < m->prog.nlaunch; i++)
                uses += !strcmp(m->prog.launch[i].kernel, m->prog.launch[k].kernel);
            fprintf(f, "%s IR node: %s\n", cmt, m->comment[k]);
            if (uses > 1)
                fprintf(f, "%s (and %d more launches of this kernel in other layers)\n", cmt, uses - 1);
        }
        fwrite(p, 1, l, f);
        fputc('\n', f);
        p += l + 1;
    }
}

bool cpu_emit(CpuModule *m, CpuEmitKind kind, FILE *f, Diags *d)
{
    if (!m->mod || !m->tm) {
        diag_error_nopos(d, "internal: the module was handed to the JIT and can no longer be emitted");
        return false;
    }
    if (kind == CPU_EMIT_LLVM) {
        char *s = LLVMPrintModuleToString(m->mod);
        write_commented(m, s, strlen(s), false, f);
        LLVMDisposeMessage(s);
        return true;
    }
    LLVMMemoryBufferRef buf;
    char *err = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(m->tm, m->mod, kind == CPU_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile,
                                            &err, &buf)) {
        diag_error_nopos(d, "LLVM code generation failed: %s", err);
        LLVMDisposeMessage(err);
        return false;
    }
    const char *data = LLVMGetBufferStart(buf);
    size_t len = LLVMGetBufferSize(buf);
    if (kind == CPU_EMIT_ASM)
        write_commented(m, data, len, true, f);
    else
        fwrite(data, 1, len, f);
    LLVMDisposeMemoryBuffer(buf);
    return true;
}

void cpu_module_free(CpuModule *m)
{
    if (!m)
        return;
    if (m->jit)
        LLVMOrcDisposeLLJIT(m->jit);
    if (m->mod)
        LLVMDisposeModule(m->mod);
    if (m->tm)
        LLVMDisposeTargetMachine(m->tm);
    if (m->tsc)
        LLVMOrcDisposeThreadSafeContext(m->tsc);
    LLVMDisposeMessage(m->cpu);
    LLVMDisposeMessage(m->features);
    LLVMDisposeMessage(m->triple);
    free(m);
}

/* ---- embedding for modelc build ------------------------------------------ */

static LLVMValueRef const_string(LLVMModuleRef mod, LLVMContextRef ctx, const char *name, const char *s)
{
    size_t n = strlen(s);
    LLVMValueRef init = LLVMConstStringInContext(ctx, s, (unsigned)n, 0);
    LLVMValueRef g = LLVMAddGlobal(mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    LLVMTypeRef i8p = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0);
    return LLVMConstBitCast(g, i8p);
}

void cpu_add_entry(CpuModule *m, const char *symbol, const char *plan_json, const char *info, bool with_main)
{
    LLVMContextRef ctx = LLVMGetModuleContext(m->mod);
    LLVMTypeRef i8p = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0), i64 = LLVMInt64TypeInContext(ctx);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx);
    LLVMTypeRef params[] = {LLVMPointerType(i8p, 0), i64, i64, i64, i64};
    LLVMTypeRef fnp = LLVMPointerType(LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 5, 0), 0);
    int n = m->prog.nlaunch;
    LLVMValueRef *fns = calloc((size_t)n + 1, sizeof *fns);
    IR_ASSERT(fns);
    for (int i = 0; i < n; i++) {
        fns[i] = LLVMGetNamedFunction(m->mod, m->prog.launch[i].kernel);
        IR_ASSERT(fns[i]);
    }
    LLVMValueRef table_init = LLVMConstArray(fnp, fns, (unsigned)n);
    free(fns);
    LLVMValueRef table = LLVMAddGlobal(m->mod, LLVMTypeOf(table_init), "modelc.kernels");
    LLVMSetInitializer(table, table_init);
    LLVMSetGlobalConstant(table, 1);
    LLVMSetLinkage(table, LLVMPrivateLinkage);
    /* struct RtEmbedded { const char *plan; int64_t plan_len; const RtKernelFn *kernels; int64_t nkernels;
                          const char *info; const void *cubin; int64_t cubin_len; }: no cubin here */
    LLVMTypeRef fields[] = {i8p, i64, LLVMPointerType(fnp, 0), i64, i8p, i8p, i64};
    LLVMTypeRef st = LLVMStructTypeInContext(ctx, fields, 7, 0);
    LLVMValueRef vals[] = {
        const_string(m->mod, ctx, "modelc.plan", plan_json),
        LLVMConstInt(i64, strlen(plan_json), 0),
        LLVMConstBitCast(table, LLVMPointerType(fnp, 0)),
        LLVMConstInt(i64, (unsigned long long)n, 0),
        const_string(m->mod, ctx, "modelc.info", info),
        LLVMConstNull(i8p),
        LLVMConstInt(i64, 0, 0),
    };
    LLVMValueRef desc = LLVMAddGlobal(m->mod, st, symbol);
    LLVMSetInitializer(desc, LLVMConstNamedStruct(st, vals, 7));
    LLVMSetGlobalConstant(desc, 1);
    if (!with_main)
        return;
    LLVMTypeRef i8pp = LLVMPointerType(i8p, 0);
    LLVMTypeRef exe_params[] = {i32, i8pp, LLVMPointerType(st, 0)};
    LLVMTypeRef exe_t = LLVMFunctionType(i32, exe_params, 3, 0);
    LLVMValueRef exe = LLVMAddFunction(m->mod, "rt_exe_main", exe_t);
    LLVMTypeRef main_params[] = {i32, i8pp};
    LLVMValueRef main_fn = LLVMAddFunction(m->mod, "main", LLVMFunctionType(i32, main_params, 2, 0));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, main_fn, "entry"));
    LLVMValueRef args[] = {LLVMGetParam(main_fn, 0), LLVMGetParam(main_fn, 1), desc};
    LLVMBuildRet(b, LLVMBuildCall2(b, exe_t, exe, args, 3, ""));
    LLVMDisposeBuilder(b);
}

char *cpu_module_text(CpuModule *m)
{
    char *s = LLVMPrintModuleToString(m->mod);
    char *copy = strdup(s);
    LLVMDisposeMessage(s);
    return copy;
}
