/* codegen/cpu/builder.c — the KB helpers (see internal.h). */
#include <string.h>

#include "codegen/cpu/internal.h"

void kb_init(KB *k, LLVMContextRef ctx, LLVMModuleRef mod, int vw, const char *cpu, const char *features)
{
    memset(k, 0, sizeof *k);
    k->ctx = ctx;
    k->mod = mod;
    k->vw = vw;
    k->cpu = cpu;
    k->features = features;
    k->b = LLVMCreateBuilderInContext(ctx);
    k->ab = LLVMCreateBuilderInContext(ctx);
    k->voidt = LLVMVoidTypeInContext(ctx);
    k->i1 = LLVMInt1TypeInContext(ctx);
    k->i8 = LLVMInt8TypeInContext(ctx);
    k->i16 = LLVMInt16TypeInContext(ctx);
    k->i32 = LLVMInt32TypeInContext(ctx);
    k->i64 = LLVMInt64TypeInContext(ctx);
    k->f16 = LLVMHalfTypeInContext(ctx);
    k->f32 = LLVMFloatTypeInContext(ctx);
    k->f64 = LLVMDoubleTypeInContext(ctx);
    k->i8p = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0);
    k->vf = LLVMVectorType(k->f32, (unsigned)vw);
    k->vh = LLVMVectorType(k->f16, (unsigned)vw);
    k->vi16 = LLVMVectorType(k->i16, (unsigned)vw);
    k->vi32 = LLVMVectorType(k->i32, (unsigned)vw);
}

static void add_attr(KB *k, const char *key, const char *val)
{
    LLVMAttributeRef a = LLVMCreateStringAttribute(k->ctx, key, (unsigned)strlen(key), val, (unsigned)strlen(val));
    LLVMAddAttributeAtIndex(k->fn, LLVMAttributeFunctionIndex, a);
}

/* void name(i8** bufs, i64 T, i64 pos0, i64 lo, i64 hi) */
void kb_begin(KB *k, const char *name)
{
    LLVMTypeRef params[] = {LLVMPointerType(k->i8p, 0), k->i64, k->i64, k->i64, k->i64};
    LLVMTypeRef ft = LLVMFunctionType(k->voidt, params, 5, 0);
    k->fn = LLVMAddFunction(k->mod, name, ft);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(k->fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(k->ctx, nounwind, 0));
    add_attr(k, "target-cpu", k->cpu);
    add_attr(k, "target-features", k->features);
    k->bufs = LLVMGetParam(k->fn, 0);
    k->T = LLVMGetParam(k->fn, 1);
    k->pos0 = LLVMGetParam(k->fn, 2);
    k->lo = LLVMGetParam(k->fn, 3);
    k->hi = LLVMGetParam(k->fn, 4);
    k->entry = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "entry");
    k->start = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "start");
    LLVMPositionBuilderAtEnd(k->ab, k->entry);
    LLVMPositionBuilderAtEnd(k->b, k->start);
}

void kb_finish(KB *k)
{
    LLVMBuildRetVoid(k->b);
    LLVMBuildBr(k->ab, k->start);
}

LLVMValueRef kb_i64(KB *k, int64_t v) { return LLVMConstInt(k->i64, (unsigned long long)v, 1); }
LLVMValueRef kb_f32(KB *k, double v) { return LLVMConstReal(k->f32, v); }
LLVMValueRef kb_add(KB *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(k->b, a, b, ""); }
LLVMValueRef kb_mul(KB *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(k->b, a, b, ""); }

LLVMValueRef kb_splat(KB *k, LLVMValueRef s, unsigned n)
{
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(s), n);
    LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetUndef(vt), s, LLVMConstInt(k->i32, 0, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(k->i32, n));
    return LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(vt), zeros, "");
}

LLVMValueRef kb_vsplat(KB *k, LLVMValueRef s) { return kb_splat(k, s, (unsigned)k->vw); }

LLVMTypeRef kb_elem(KB *k, DType t)
{
    switch (t) {
    case DT_F32: return k->f32;
    case DT_F16: return k->f16;
    case DT_BF16: return k->i16;
    case DT_I32: return k->i32;
    case DT_Q8_0:
    case DT_Q4_0:
    case DT_Q4_1:
    case DT_Q8_1: return k->i8;   /* blocks: addressed in bytes */
    default: IR_BUG("no element type for %s", ir_dtype_name(t));
    }
}

LLVMValueRef kb_arg(KB *k, int i, LLVMTypeRef elem)
{
    LLVMValueRef slot = LLVMBuildGEP2(k->b, k->i8p, k->bufs, (LLVMValueRef[]){kb_i64(k, i)}, 1, "");
    LLVMValueRef p = LLVMBuildLoad2(k->b, k->i8p, slot, "");
    return LLVMBuildBitCast(k->b, p, LLVMPointerType(elem, 0), "");
}

LLVMValueRef kb_gep(KB *k, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMTypeRef elem = LLVMGetElementType(LLVMTypeOf(base));
    return LLVMBuildInBoundsGEP2(k->b, elem, base, &idx, 1, "");
}

static LLVMValueRef widen(KB *k, LLVMValueRef raw, DType t, bool vec)
{
    switch (t) {
    case DT_F32: return raw;
    case DT_F16: return LLVMBuildFPExt(k->b, raw, vec ? k->vf : k->f32, "");
    case DT_BF16: {
        LLVMTypeRef it = vec ? k->vi32 : k->i32;
        LLVMValueRef w = LLVMBuildZExt(k->b, raw, it, "");
        LLVMValueRef sh = vec ? kb_vsplat(k, LLVMConstInt(k->i32, 16, 0)) : LLVMConstInt(k->i32, 16, 0);
        return LLVMBuildBitCast(k->b, LLVMBuildShl(k->b, w, sh, ""), vec ? k->vf : k->f32, "");
    }
    default: IR_BUG("cannot widen %s", ir_dtype_name(t));
    }
}

LLVMValueRef kb_loadv(KB *k, LLVMValueRef base, LLVMValueRef idx, DType t)
{
    LLVMTypeRef vt = t == DT_F32 ? k->vf : t == DT_F16 ? k->vh : k->vi16;
    LLVMValueRef p = LLVMBuildBitCast(k->b, kb_gep(k, base, idx), LLVMPointerType(vt, 0), "");
    LLVMValueRef v = LLVMBuildLoad2(k->b, vt, p, "");
    LLVMSetAlignment(v, t == DT_F32 ? 4 : 2);
    return widen(k, v, t, true);
}

LLVMValueRef kb_loads(KB *k, LLVMValueRef base, LLVMValueRef idx, DType t)
{
    LLVMValueRef v = LLVMBuildLoad2(k->b, kb_elem(k, t), kb_gep(k, base, idx), "");
    LLVMSetAlignment(v, t == DT_F32 || t == DT_I32 ? 4 : 2);
    return t == DT_I32 ? v : widen(k, v, t, false);
}

void kb_storev(KB *k, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v)
{
    LLVMValueRef p = LLVMBuildBitCast(k->b, kb_gep(k, base, idx), LLVMPointerType(k->vf, 0), "");
    LLVMSetAlignment(LLVMBuildStore(k->b, v, p), 4);
}

void kb_stores(KB *k, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v)
{
    LLVMSetAlignment(LLVMBuildStore(k->b, v, kb_gep(k, base, idx)), 4);
}

/* Pairwise tree: fixed order, so results do not depend on the thread split. */
static LLVMValueRef reduce(KB *k, LLVMValueRef v, bool max)
{
    for (int n = (int)LLVMGetVectorSize(LLVMTypeOf(v)); n > 1; n /= 2) {
        LLVMValueRef lo_idx[64], hi_idx[64];
        for (int i = 0; i < n / 2; i++) {
            lo_idx[i] = LLVMConstInt(k->i32, (unsigned)i, 0);
            hi_idx[i] = LLVMConstInt(k->i32, (unsigned)(i + n / 2), 0);
        }
        LLVMValueRef lo = LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(lo_idx, (unsigned)n / 2), "");
        LLVMValueRef hi = LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(hi_idx, (unsigned)n / 2), "");
        if (max)
            v = LLVMBuildSelect(k->b, LLVMBuildFCmp(k->b, LLVMRealOGE, lo, hi, ""), lo, hi, "");
        else
            v = LLVMBuildFAdd(k->b, lo, hi, "");
    }
    return LLVMBuildExtractElement(k->b, v, LLVMConstInt(k->i32, 0, 0), "");
}

LLVMValueRef kb_hsum(KB *k, LLVMValueRef v) { return reduce(k, v, false); }
LLVMValueRef kb_hmax(KB *k, LLVMValueRef v) { return reduce(k, v, true); }

LLVMValueRef kb_call(KB *k, const char *name, LLVMTypeRef overload, LLVMValueRef *args, int n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    IR_ASSERT(id != 0);
    size_t no = overload ? 1 : 0;
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(k->mod, id, &overload, no);
    LLVMTypeRef ft = LLVMIntrinsicGetType(k->ctx, id, &overload, no);
    return LLVMBuildCall2(k->b, ft, f, args, (unsigned)n, "");
}

LLVMValueRef kb_fma(KB *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    return kb_call(k, "llvm.fma", LLVMTypeOf(a), (LLVMValueRef[]){a, b, c}, 3);
}

LLVMValueRef kb_alloca(KB *k, LLVMTypeRef t, LLVMValueRef init)
{
    LLVMValueRef v = LLVMBuildAlloca(k->ab, t, "");
    if (init)
        LLVMBuildStore(k->b, init, v);
    return v;
}

LLVMValueRef kb_alloca_array(KB *k, LLVMTypeRef t, int64_t n)
{
    LLVMValueRef a = LLVMBuildAlloca(k->ab, LLVMArrayType(t, (unsigned)n), "");
    return LLVMBuildBitCast(k->ab, a, LLVMPointerType(t, 0), "");
}

LLVMValueRef kb_get(KB *k, LLVMValueRef var)
{
    return LLVMBuildLoad2(k->b, LLVMGetAllocatedType(var), var, "");
}

void kb_set(KB *k, LLVMValueRef var, LLVMValueRef v)
{
    LLVMBuildStore(k->b, v, var);
}

/* for (i = start; i < end; i += step) — returns i inside the body. */
LLVMValueRef kb_loop(KB *k, Loop *l, LLVMValueRef start, LLVMValueRef end, LLVMValueRef step)
{
    l->var = kb_alloca(k, k->i64, start);
    l->end = end;
    l->step = step;
    l->head = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "loop");
    l->body = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "exit");
    LLVMBuildBr(k->b, l->head);
    LLVMPositionBuilderAtEnd(k->b, l->head);
    LLVMValueRef i = kb_get(k, l->var);
    LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, i, end, ""), l->body, l->exit);
    LLVMPositionBuilderAtEnd(k->b, l->body);
    return kb_get(k, l->var);
}

void kb_loop_end(KB *k, Loop *l)
{
    kb_set(k, l->var, LLVMBuildAdd(k->b, kb_get(k, l->var), l->step, ""));
    LLVMBuildBr(k->b, l->head);
    LLVMPositionBuilderAtEnd(k->b, l->exit);
}

LLVMValueRef kb_load_half(KB *k, LLVMValueRef base, LLVMValueRef off)
{
    LLVMValueRef p = LLVMBuildBitCast(k->b, kb_gep(k, base, off), LLVMPointerType(k->f16, 0), "");
    LLVMValueRef h = LLVMBuildLoad2(k->b, k->f16, p, "");
    LLVMSetAlignment(h, 1);
    return LLVMBuildFPExt(k->b, h, k->f32, "");
}

LLVMValueRef kb_load_bytes(KB *k, LLVMValueRef base, LLVMValueRef off, unsigned n)
{
    LLVMTypeRef vt = LLVMVectorType(k->i8, n);
    LLVMValueRef p = LLVMBuildBitCast(k->b, kb_gep(k, base, off), LLVMPointerType(vt, 0), "");
    LLVMValueRef v = LLVMBuildLoad2(k->b, vt, p, "");
    LLVMSetAlignment(v, 1);
    return v;
}

/* lanes [from, from + vw) of a byte vector, as <vw x float> (signed or not) */
static LLVMValueRef byte_lanes(KB *k, LLVMValueRef v, int from, bool is_signed)
{
    LLVMValueRef idx[32];
    for (int i = 0; i < k->vw; i++)
        idx[i] = LLVMConstInt(k->i32, (unsigned)(from + i), 0);
    LLVMValueRef sub = LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(idx, (unsigned)k->vw), "");
    LLVMValueRef w = is_signed ? LLVMBuildSExt(k->b, sub, k->vi32, "") : LLVMBuildZExt(k->b, sub, k->vi32, "");
    return is_signed ? LLVMBuildSIToFP(k->b, w, k->vf, "") : LLVMBuildUIToFP(k->b, w, k->vf, "");
}

static LLVMValueRef splat_i8(KB *k, int v, unsigned n)
{
    return kb_splat(k, LLVMConstInt(k->i8, (unsigned long long)v, 1), n);
}

/* The 16 bytes at base + off as 32 nibbles, low nibbles first: <32 x i8> in 0..15. */
static LLVMValueRef nibbles(KB *k, LLVMValueRef base, LLVMValueRef off)
{
    LLVMValueRef qs = kb_load_bytes(k, base, off, 16);
    LLVMValueRef lo = LLVMBuildAnd(k->b, qs, splat_i8(k, 15, 16), "");
    LLVMValueRef hi = LLVMBuildLShr(k->b, qs, splat_i8(k, 4, 16), "");
    LLVMValueRef cat_idx[32];
    for (int i = 0; i < 32; i++)
        cat_idx[i] = LLVMConstInt(k->i32, (unsigned)i, 0);
    return LLVMBuildShuffleVector(k->b, lo, hi, LLVMConstVector(cat_idx, 32), "");
}

/* ggml: Q8_0 {f16 d; i8 q[32]}: d*q.  Q4_0 {f16 d; u8 qs[16]}: d*((nibble)-8),
 * low nibbles first.  Q4_1 {f16 d, m; u8 qs[16]}: d*nibble + m. */
void kb_loadq(KB *k, LLVMValueRef base, LLVMValueRef off, DType t, LLVMValueRef *out)
{
    IR_ASSERT(32 % k->vw == 0);
    int nv = 32 / k->vw;
    LLVMValueRef d = kb_vsplat(k, kb_load_half(k, base, off));
    if (t == DT_Q8_0) {
        LLVMValueRef q = kb_load_bytes(k, base, kb_add(k, off, kb_i64(k, 2)), 32);
        for (int v = 0; v < nv; v++)
            out[v] = LLVMBuildFMul(k->b, byte_lanes(k, q, v * k->vw, true), d, "");
        return;
    }
    LLVMValueRef q = nibbles(k, base, kb_add(k, off, kb_i64(k, t == DT_Q4_1 ? 4 : 2)));
    LLVMValueRef m = t == DT_Q4_1 ? kb_vsplat(k, kb_load_half(k, base, kb_add(k, off, kb_i64(k, 2)))) : NULL;
    LLVMValueRef eight = kb_vsplat(k, kb_f32(k, 8.0));
    for (int v = 0; v < nv; v++) {
        LLVMValueRef x = byte_lanes(k, q, v * k->vw, false);
        out[v] = t == DT_Q4_1 ? LLVMBuildFAdd(k->b, LLVMBuildFMul(k->b, x, d, ""), m, "")
                              : LLVMBuildFMul(k->b, LLVMBuildFSub(k->b, x, eight, ""), d, "");
    }
}

void kb_loadq_i8(KB *k, LLVMValueRef base, LLVMValueRef off, DType t, LLVMValueRef *d, LLVMValueRef *m, LLVMValueRef *q)
{
    *d = kb_load_half(k, base, off);
    *m = NULL;
    if (t == DT_Q8_0) {
        *q = kb_load_bytes(k, base, kb_add(k, off, kb_i64(k, 2)), 32);
    } else if (t == DT_Q4_0) {
        *q = LLVMBuildSub(k->b, nibbles(k, base, kb_add(k, off, kb_i64(k, 2))), splat_i8(k, 8, 32), "");
    } else {
        IR_ASSERT(t == DT_Q4_1);
        *m = kb_load_half(k, base, kb_add(k, off, kb_i64(k, 2)));
        *q = nibbles(k, base, kb_add(k, off, kb_i64(k, 4)));
    }
}

static bool has_avx2(KB *k)
{
    return k->features && strstr(k->features, "+avx2") != NULL;
}

/* Lanes 2i and 2i + 1 of an integer vector added, as the wider lanes of type to (half as many). */
static LLVMValueRef add_pairs(KB *k, LLVMValueRef v, LLVMTypeRef to)
{
    unsigned n = LLVMGetVectorSize(LLVMTypeOf(v));
    LLVMValueRef ev[32], od[32];
    for (unsigned i = 0; i < n / 2; i++) {
        ev[i] = LLVMConstInt(k->i32, 2 * i, 0);
        od[i] = LLVMConstInt(k->i32, 2 * i + 1, 0);
    }
    LLVMValueRef a = LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(ev, n / 2), "");
    LLVMValueRef b = LLVMBuildShuffleVector(k->b, v, LLVMGetUndef(LLVMTypeOf(v)), LLVMConstVector(od, n / 2), "");
    return LLVMBuildAdd(k->b, LLVMBuildSExt(k->b, a, to, ""), LLVMBuildSExt(k->b, b, to, ""), "");
}

LLVMValueRef kb_dot4_i8(KB *k, LLVMValueRef w, LLVMValueRef x, bool w_unsigned)
{
    if (has_avx2(k)) {
        /* vpmaddubsw (u8 x s8, pairs summed to i16: no saturation here, |w| <= 128 and |x| <= 127 give
         * at most 32512) then vpmaddwd by ones; signed weights as |w| and x with w's sign (vpsignb) */
        LLVMValueRef a = w, b = x;
        if (!w_unsigned) {
            a = kb_call(k, "llvm.x86.avx2.psign.b", NULL, (LLVMValueRef[]){w, w}, 2);
            b = kb_call(k, "llvm.x86.avx2.psign.b", NULL, (LLVMValueRef[]){x, w}, 2);
        }
        LLVMValueRef p16 = kb_call(k, "llvm.x86.avx2.pmadd.ub.sw", NULL, (LLVMValueRef[]){a, b}, 2);
        LLVMValueRef ones = kb_splat(k, LLVMConstInt(k->i16, 1, 0), 16);
        return kb_call(k, "llvm.x86.avx2.pmadd.wd", NULL, (LLVMValueRef[]){p16, ones}, 2);
    }
    LLVMTypeRef v32i16 = LLVMVectorType(k->i16, 32);
    LLVMValueRef a = w_unsigned ? LLVMBuildZExt(k->b, w, v32i16, "") : LLVMBuildSExt(k->b, w, v32i16, "");
    LLVMValueRef p = LLVMBuildMul(k->b, a, LLVMBuildSExt(k->b, x, v32i16, ""), "");
    return add_pairs(k, add_pairs(k, p, LLVMVectorType(k->i32, 16)), LLVMVectorType(k->i32, 8));
}

/* v (any first-class type) at byte off of base, unaligned */
static void store_bytes(KB *k, LLVMValueRef base, LLVMValueRef off, LLVMValueRef v)
{
    LLVMValueRef p = LLVMBuildBitCast(k->b, kb_gep(k, base, off), LLVMPointerType(LLVMTypeOf(v), 0), "");
    LLVMSetAlignment(LLVMBuildStore(k->b, v, p), 1);
}

void kb_quantize_q8_1(KB *k, LLVMValueRef x, LLVMValueRef idx, LLVMValueRef dst, LLVMValueRef off)
{
    LLVMTypeRef v32f = LLVMVectorType(k->f32, 32), v32i = LLVMVectorType(k->i32, 32);
    LLVMValueRef p = LLVMBuildBitCast(k->b, kb_gep(k, x, idx), LLVMPointerType(v32f, 0), "");
    LLVMValueRef v = LLVMBuildLoad2(k->b, v32f, p, "");
    LLVMSetAlignment(v, 4);
    LLVMValueRef amax = reduce(k, kb_call(k, "llvm.fabs", v32f, &v, 1), true);
    LLVMValueRef d = LLVMBuildFDiv(k->b, amax, kb_f32(k, 127.0), "");
    LLVMValueRef nz = LLVMBuildFCmp(k->b, LLVMRealONE, amax, kb_f32(k, 0.0), "");
    LLVMValueRef id = LLVMBuildSelect(k->b, nz, LLVMBuildFDiv(k->b, kb_f32(k, 127.0), amax, ""), kb_f32(k, 0.0), "");
    LLVMValueRef r = LLVMBuildFMul(k->b, v, kb_splat(k, id, 32), "");
    r = kb_call(k, "llvm.roundeven", v32f, &r, 1);
    /* saturating, so NaN gives 0, never poison; then clamped to -127..127, where finite inputs
     * land anyway (a max|x| so small that 127 / max|x| is inf would give INT_MAX) */
    LLVMTypeRef ov[2] = {v32i, v32f};
    unsigned iid = LLVMLookupIntrinsicID("llvm.fptosi.sat", 15);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(k->mod, iid, ov, 2);
    LLVMValueRef qi = LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->ctx, iid, ov, 2), f, &r, 1, "");
    qi = kb_call(k, "llvm.smin", v32i, (LLVMValueRef[]){qi, kb_splat(k, LLVMConstInt(k->i32, 127, 1), 32)}, 2);
    qi = kb_call(k, "llvm.smax", v32i, (LLVMValueRef[]){qi, kb_splat(k, LLVMConstInt(k->i32, (unsigned long long)-127, 1), 32)}, 2);
    LLVMValueRef sum = kb_call(k, "llvm.vector.reduce.add", v32i, &qi, 1);
    LLVMValueRef s = LLVMBuildFMul(k->b, d, LLVMBuildSIToFP(k->b, sum, k->f32, ""), "");
    store_bytes(k, dst, off, LLVMBuildFPTrunc(k->b, d, k->f16, ""));
    store_bytes(k, dst, kb_add(k, off, kb_i64(k, 2)), LLVMBuildFPTrunc(k->b, s, k->f16, ""));
    store_bytes(k, dst, kb_add(k, off, kb_i64(k, 4)), LLVMBuildTrunc(k->b, qi, LLVMVectorType(k->i8, 32), ""));
}
