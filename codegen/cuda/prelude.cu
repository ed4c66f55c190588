// ---- modelc prelude (codegen/cuda/prelude.cu): helpers every kernel uses ----
// No headers: NVRTC's built-ins only.  Half and bfloat16 values are handled
// as raw 16-bit words and converted with PTX instructions.
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

// What every kernel reads of the step (runtime.h: RtGpuStep).
struct RtGpuStep {
    int T, pos0, row0, pad;
};

#define DEV __device__ __forceinline__
#define NEG_INF __int_as_float(0xff800000)

DEV float h2f(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
DEV u16 f2h(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
DEV float b2f(u16 h) { return __uint_as_float((u32)h << 16); }
// two floats to one word of two halves / bfloat16s, lo in the low 16 bits
DEV u32 pack_f16(float lo, float hi) { u32 r; asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r; }
DEV u32 pack_bf16(float lo, float hi) { u32 r; asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r; }

// one word of two halves / bfloat16s back to two floats (lo, hi)
DEV float2 unpack_f16(u32 w) { return make_float2(h2f((u16)(w & 0xffffu)), h2f((u16)(w >> 16))); }
DEV float2 unpack_bf16(u32 w) { return make_float2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u)); }

// one weight value, widened to f32
DEV float ldw_f32(const float *p, size_t i) { return __ldg(p + i); }
DEV float ldw_f16(const u16 *p, size_t i) { return h2f(__ldg(p + i)); }
DEV float ldw_bf16(const u16 *p, size_t i) { return b2f(__ldg(p + i)); }

// eight consecutive weights: ldr8_ loads them as they are (one 16-byte load for
// 16-bit types, two for f32), cvt8_ widens them, ld8_ does both.  The GEMV
// issues a batch of ldr8_ before it converts any, so the loads are in flight
// together.
struct Raw8 {
    uint4 a, b;
};
DEV void ldr8_f16(const u16 *p, size_t i, Raw8 &r) { r.a = __ldg((const uint4 *)(p + i)); }
DEV void ldr8_bf16(const u16 *p, size_t i, Raw8 &r) { r.a = __ldg((const uint4 *)(p + i)); }
DEV void ldr8_f32(const float *p, size_t i, Raw8 &r)
{
    r.a = __ldg((const uint4 *)(p + i));
    r.b = __ldg((const uint4 *)(p + i + 4));
}
DEV void cvt8_f16(const Raw8 &r, float *o)
{
    const u32 w[4] = {r.a.x, r.a.y, r.a.z, r.a.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const float2 f = unpack_f16(w[j]);
        o[2 * j] = f.x;
        o[2 * j + 1] = f.y;
    }
}
DEV void cvt8_bf16(const Raw8 &r, float *o)
{
    const u32 w[4] = {r.a.x, r.a.y, r.a.z, r.a.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        const float2 f = unpack_bf16(w[j]);
        o[2 * j] = f.x;
        o[2 * j + 1] = f.y;
    }
}
DEV void cvt8_f32(const Raw8 &r, float *o)
{
    const u32 w[8] = {r.a.x, r.a.y, r.a.z, r.a.w, r.b.x, r.b.y, r.b.z, r.b.w};
#pragma unroll
    for (int j = 0; j < 8; j++) o[j] = __uint_as_float(w[j]);
}
DEV void ld8_f16(const u16 *p, size_t i, float *o) { Raw8 r; ldr8_f16(p, i, r); cvt8_f16(r, o); }
DEV void ld8_bf16(const u16 *p, size_t i, float *o) { Raw8 r; ldr8_bf16(p, i, r); cvt8_bf16(r, o); }
DEV void ld8_f32(const float *p, size_t i, float *o) { Raw8 r; ldr8_f32(p, i, r); cvt8_f32(r, o); }

DEV float warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
DEV float warp_max(float v)
{
#pragma unroll
    for (int o = 16; o; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
// sum over the block (blockDim.x a multiple of 32); sh: 32 floats of shared memory
DEV float block_sum(float v, float *sh)
{
    v = warp_sum(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0)
        sh[threadIdx.x >> 5] = v;
    __syncthreads();
    float s = 0.f;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++)
        s += sh[w];
    return s;
}
DEV float block_max(float v, float *sh)
{
    v = warp_max(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0)
        sh[threadIdx.x >> 5] = v;
    __syncthreads();
    float s = NEG_INF;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++)
        s = fmaxf(s, sh[w]);
    return s;
}
DEV float silu(float x) { return x / (1.0f + expf(-x)); }

// cp.async: 16 bytes global -> shared (a shared-space address, or a pointer),
// zero-filled past src_bytes (0 or 16)
DEV void cp_async16_s(u32 addr, const void *gmem, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(gmem), "r"(src_bytes));
}
DEV void cp_async16(void *smem, const void *gmem, int src_bytes)
{
    cp_async16_s((u32)__cvta_generic_to_shared(smem), gmem, src_bytes);
}
// four 8x8 b16 matrices from shared memory, one row address per lane (lanes 8i..8i+7: matrix i)
DEV void ldsm_x4(u32 *r, const void *p)
{
    unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* Two n tiles of 8 weight rows x 16 (the B operands of two m16n8k16) from
 * one ldmatrix.x4: p is this lane's row (lane & 7) + (lane >> 4) * 8, at
 * column ((lane >> 3) & 1) * 8. */
DEV void ldsm_x4_b2(u32 *b0, u32 *b1, const void *p)
{
    u32 r[4];
    ldsm_x4(r, p);
    b0[0] = r[0];
    b0[1] = r[1];
    b1[0] = r[2];
    b1[1] = r[3];
}

DEV void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
DEV void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::); }
// until at most N of this thread's cp.async groups are in flight
template <int N> DEV void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Programmatic dependent launch (sm_90): the runtime lets each kernel start
// while the one before it finishes; pdl_wait() returns once that one is done
// and its writes are visible, so a kernel touches no activation before it.
// pdl_launch() lets the next kernel be scheduled.  Both do nothing on older
// GPUs or when the launch did not ask for it.
DEV void pdl_launch()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
DEV void pdl_wait()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
DEV void pdl_begin() { pdl_launch(); pdl_wait(); }

#ifdef MODELC_TIMELINE
// The timeline: thread 0 of each block notes when the block started, when it
// passed pdl_wait and when it ended (runtime.h: RtTlRecord; the runtime reads
// modelc_tl after a step and sets modelc_tl_n back to 0 before one).
enum { TL_CAP = 1 << 18 };
__device__ u64 modelc_tl[TL_CAP][4];
__device__ u32 modelc_tl_n;
DEV u64 tl_now()
{
    u64 t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
struct TlScope {
    u64 t0, tw;
    u32 id;
    DEV explicit TlScope(u32 i) : t0(0), tw(0), id(i)
    {
        if (threadIdx.x == 0)
            t0 = tw = tl_now();
    }
    DEV void waited()
    {
        if (threadIdx.x == 0)
            tw = tl_now();
    }
    DEV ~TlScope()
    {
        if (threadIdx.x != 0)
            return;
        u32 sm, k = atomicAdd(&modelc_tl_n, 1u);
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        if (k < TL_CAP) {
            modelc_tl[k][0] = t0;
            modelc_tl[k][1] = tw;
            modelc_tl[k][2] = tl_now();
            modelc_tl[k][3] = (u64)id << 32 | (sm & 0xffu);
        }
    }
};
#endif
DEV void prefetch_l2(const void *p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// Greedy decoding on the device: the index of the largest logit of the last
// row, as a key (ordered float bits << 32 | ~index) so that atomicMax keeps
// the largest value and, among equals, the smallest index.  NaNs are skipped;
// *best == 0 means every logit was NaN.  *best must be 0 before the launch.
extern "C" __global__ void __launch_bounds__(256) modelc_argmax(const RtGpuStep *st, const float *logits, u64 *best,
                                                                 int vocab)
{
    pdl_begin();
    const float *x = logits + (size_t)(st->row0 + st->T - 1) * vocab;
    u64 b = 0;
    for (int i = blockIdx.x * 256 + threadIdx.x; i < vocab; i += gridDim.x * 256) {
        float v = x[i];
        if (v == v) {
            u32 u = __float_as_uint(v);
            u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
            u64 key = ((u64)u << 32) | (u64)(0xffffffffu - (u32)i);
            b = key > b ? key : b;
        }
    }
#pragma unroll
    for (int o = 16; o; o >>= 1) {
        u64 other = __shfl_xor_sync(0xffffffffu, b, o);
        b = other > b ? other : b;
    }
    if ((threadIdx.x & 31) == 0 && b)
        atomicMax(best, b);
}
// The token modelc_argmax chose, as the next step's input (greedy decoding
// one step ahead): 0 where it chose none or an id the embedding lacks (the
// host sees that result and stops before it uses this step).
extern "C" __global__ void modelc_take_token(const u64 *best, int *tok, int ntok)
{
    if (threadIdx.x == 0) {
        const u64 b = *best;
        const u32 i = 0xffffffffu - (u32)b;
        *tok = b && i < (u32)ntok ? (int)i : 0;
    }
}
// ---- end of prelude ----
