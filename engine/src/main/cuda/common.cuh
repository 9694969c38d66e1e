// Shared helpers for the gptq4j CUDA kernels. Every kernel is extern "C" so the Java side finds it
// by name (cuModuleGetFunction). Activations are float32 row-major [rows][dim]; weights are fp16 or
// packed GPTQ integers. Reductions run in a fixed order so a token's result never depends on the
// other tokens of the step (batch invariance).
#pragma once
#include <cuda_fp16.h>
#include <stdint.h>

#define GPTQ4J_KERNEL extern "C" __global__

// The layout of gq_mma_prep's activations for gq_wg.cu (wg bit 0): 1, super-tile major ([super-tile][row][16 uint4]),
// so the rows of a gq_wg stage are one contiguous piece (H100, round 26: decode batch 256 +2.2 %, prefill +1.2 %);
// 0, row major ([row][super-tile][16 uint4]), as before (a measurement switch).
#ifndef GW_STMAJOR
#define GW_STMAJOR 1
#endif

// The first statement of every kernel (CudaModuleStampTest checks it). Programmatic dependent launch (sm_90,
// CudaLaunchEx): a kernel launched with the PDL attribute may be scheduled while the kernel before it in the stream
// is still running. It waits here until that kernel has completed and its writes are visible, then lets the next
// kernel be scheduled. By induction every earlier kernel has completed too, so a kernel sees exactly what it saw
// without PDL. Launched without the attribute, both instructions return at once; before sm_90 they do not exist.
//
// A kernel may instead start with GK_ENTER_LATE (a marker) and reach GK_WAIT later, after a prologue that reads only
// constants (weights) and outputs of kernels before its predecessor: those have completed by then, because the
// predecessor lets this kernel start only once its own predecessor completed. Such a prologue writes nothing but
// the block's shared memory.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define GK_WAIT do { asm volatile("griddepcontrol.wait;\n" ::: "memory"); \
                     asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); } while (0)
#else
#define GK_WAIT do { } while (0)
#endif
#define GK_ENTER GK_WAIT
#define GK_ENTER_LATE do { } while (0)

// Sum over the 32 lanes of a warp by an xor butterfly: every lane ends with the same bits, and the
// order of additions is fixed.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Element i of a split-K product from its partial sums [ksplit][plane]: split 0, then splits 1, 2, ... added in order
// (gq_reduce, moe_silu_reduce, moe_combine_reduce, rope_kv_append_fold: every fold of split partials).
__device__ __forceinline__ float gk_fold(const float* __restrict__ part, int ksplit, long plane, long i) {
    float s = part[i];
#pragma unroll 4
    for (int k = 1; k < ksplit; k++) s = __fadd_rn(s, part[(long) k * plane + i]);   // unrolled: loads in flight together
    return s;
}

// Two gk_folds side by side (a = gk_fold(pa, ksplit, plane, ia), b = gk_fold(pb, ksplit, plane, ib), bit for bit):
// both sums' loads in flight together (moe_silu_reduce: w1's and w3's; moe_combine_reduce: the top 2 experts').
// H100, round 10: the SiLU fold 4.5 -> 3.6 us, the combine 6.8 -> 5.2; the RoPE fold was no faster with it.
__device__ __forceinline__ void gk_fold2(const float* __restrict__ pa, long ia, const float* __restrict__ pb, long ib,
                                         int ksplit, long plane, float& a, float& b) {
    a = pa[ia];
    b = pb[ib];
#pragma unroll 4
    for (int k = 1; k < ksplit; k++) {
        a = __fadd_rn(a, pa[(long) k * plane + ia]);
        b = __fadd_rn(b, pb[(long) k * plane + ib]);
    }
}

// RMSNorm statistics of one row for a block of RMS_THREADS threads (rms_norm, and gq_mma_prep when it normalises its
// own input): 1 / sqrt(mean(x^2) + eps). When dim % 4 == 0 thread i sums the squares of the
// float4 vectors i, i + RMS_THREADS, ... in ascending order (fmaf .x .y .z .w), else of the elements i,
// i + RMS_THREADS, ...; then a warp butterfly and a fixed sum over the warps. rms_norm's output element c is
// x[c] * inv * float(w[c]) (rms_apply), so a kernel with the same inv computes the same bits for any element.
#define RMS_THREADS 256

// One float4 vector's squares added to a thread's sum in rms_sumsq's order (.x .y .z .w).
__device__ __forceinline__ float rms_sumsq4(float4 a, float ss) {
    ss = fmaf(a.x, a.x, ss); ss = fmaf(a.y, a.y, ss); ss = fmaf(a.z, a.z, ss);
    return fmaf(a.w, a.w, ss);
}

__device__ __forceinline__ float rms_sumsq(const float* xr, int dim) {
    float ss = 0.f;
    if ((dim & 3) == 0) {
        const float4* xv = reinterpret_cast<const float4*>(xr);
        for (int v = threadIdx.x; v < (dim >> 2); v += RMS_THREADS) ss = rms_sumsq4(xv[v], ss);
    } else {
        for (int c = threadIdx.x; c < dim; c += RMS_THREADS) ss = fmaf(xr[c], xr[c], ss);
    }
    return ss;
}

// The block's sum of the threads' v: lane sums by butterfly, then the RMS_THREADS / 32 warp sums, in order, by the
// same butterfly. red: RMS_THREADS / 32 floats of shared memory, free until the block's next barrier after this.
// In two halves around the barrier, so a kernel summing several rows' values can share one barrier
// (dense_rows_body): rms_block_put stores a warp's sum, rms_block_take (after a __syncthreads) returns the block's.
__device__ __forceinline__ void rms_block_put(float v, float* red) {
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
}
__device__ __forceinline__ float rms_block_take(const float* red) {
    const int lane = threadIdx.x & 31;
    const float s = lane < (RMS_THREADS >> 5) ? red[lane] : 0.f;
    return warp_sum(s);
}
__device__ __forceinline__ float rms_block_sum(float v, float* red) {
    rms_block_put(v, red);
    __syncthreads();
    return rms_block_take(red);
}

__device__ __forceinline__ float rms_inv(float sum, int dim, float eps) { return rsqrtf(sum / (float) dim + eps); }

// The block's sums of NR per-row accumulators (row r: every thread's acc[r]) for a block of RMS_THREADS threads, in
// the dense kernels' order: each warp's butterfly per row (rows r < nr; nr uniform), then row r's RMS_THREADS / 32
// warp sums in order, by thread r. Thread r < nr returns row r's sum, the others 0. red: shared memory, free until
// the barrier inside (dense_rows_body, router_route_one).
template <int NR>
__device__ __forceinline__ float block_row_sums(const float (&acc)[NR], int nr, float (&red)[NR][RMS_THREADS / 32]) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int r = 0; r < NR; r++) {
        if (r < nr) {
            const float s = warp_sum(acc[r]);
            if (lane == 0) red[r][warp] = s;
        }
    }
    __syncthreads();
    float s = 0.f;
    if ((int) threadIdx.x < nr) {
        s = red[threadIdx.x][0];
#pragma unroll
        for (int w = 1; w < RMS_THREADS / 32; w++) s += red[threadIdx.x][w];
    }
    return s;
}

__device__ __forceinline__ float rms_apply(float x, float inv, __half w) { return x * inv * __half2float(w); }

// RMSNorm of 8 consecutive values a (.x .y .z .w), b with the norm's weights g, 8 halves (rms_apply each).
__device__ __forceinline__ void rms_apply8(float4& a, float4& b, float inv, const uint4& g) {
    const __half* h = reinterpret_cast<const __half*>(&g);
    a = make_float4(rms_apply(a.x, inv, h[0]), rms_apply(a.y, inv, h[1]), rms_apply(a.z, inv, h[2]),
                    rms_apply(a.w, inv, h[3]));
    b = make_float4(rms_apply(b.x, inv, h[4]), rms_apply(b.y, inv, h[5]), rms_apply(b.z, inv, h[6]),
                    rms_apply(b.w, inv, h[7]));
}

// The fp16 dense kernels' step: w = the 8 halves of a uint4 as floats, in order (half8_float), and
// s + a . w[0..3] + b . w[4..7] as 8 fmaf in that order (dot8).
__device__ __forceinline__ void half8_float(const uint4& q, float (&w)[8]) {
    const __half2* h = reinterpret_cast<const __half2*>(&q);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float2 f = __half22float2(h[i]);
        w[2 * i] = f.x;
        w[2 * i + 1] = f.y;
    }
}
__device__ __forceinline__ float dot8(float4 a, float4 b, const float (&w)[8], float s) {
    s = fmaf(a.x, w[0], s); s = fmaf(a.y, w[1], s); s = fmaf(a.z, w[2], s); s = fmaf(a.w, w[3], s);
    s = fmaf(b.x, w[4], s); s = fmaf(b.y, w[5], s); s = fmaf(b.z, w[6], s); return fmaf(b.w, w[7], s);
}

// SwiGLU's gate: silu(g) * u = g / (1 + e^-g) * u (silu_mul, moe_silu_reduce, gq_mma_prep_rows: the same bits).
__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.f + expf(-g)) * u; }

// mbarriers in shared memory (addresses from __cvta_generic_to_shared): gq_wg's ring hand-over, gq_mmv's bulk copies.
// gk_bar_wait returns once the phase of the given parity has completed.
__device__ __forceinline__ void gk_bar_init(unsigned bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" :: "r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void gk_bar_wait(unsigned bar, unsigned parity) {
    unsigned ok = 0;
    while (!ok) {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(ok) : "r"(bar), "r"(parity) : "memory");
    }
}
__device__ __forceinline__ void gk_bar_arrive(unsigned bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" :: "r"(bar) : "memory");
}
__device__ __forceinline__ void gk_bar_arrive_copies(unsigned bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" :: "r"(bar) : "memory");
}
