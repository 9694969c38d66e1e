// RMSNorm: out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w, statistics in float32, one block of 256 threads per row.
// When dim % 4 == 0 thread i owns the float4 vectors i, i+256, ... (the first NORM_REG of them held in registers
// between the two passes, so at dim 4096 x is read once); otherwise single elements. Each thread's sum of
// squares runs in ascending order, then a warp butterfly and a fixed sum over the 8 warps: the order depends on
// dim alone, never on the other rows. x and out may be the same buffer (each thread rewrites only what it read).
#include "common.cuh"

#define NORM_THREADS 256
#define NORM_REG 4

__device__ __forceinline__ float norm_block_sum(float v, float* red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float s = lane < (NORM_THREADS >> 5) ? red[lane] : 0.f;
    return warp_sum(s);
}

GPTQ4J_KERNEL void __launch_bounds__(NORM_THREADS) rms_norm(const float* x, const __half* __restrict__ w, float eps,
                                                             int dim, float* out) {
    GK_ENTER;
    __shared__ float red[32];
    const int t = blockIdx.x, tid = threadIdx.x;
    const float* xr = x + (long) t * dim;
    float* orow = out + (long) t * dim;
    float ss = 0.f;
    if ((dim & 3) == 0) {
        const int nv = dim >> 2;
        const float4* xv = reinterpret_cast<const float4*>(xr);
        float4 keep[NORM_REG];
#pragma unroll
        for (int u = 0; u < NORM_REG; u++) {
            const int v = tid + u * NORM_THREADS;
            keep[u] = v < nv ? xv[v] : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int u = 0; u < NORM_REG; u++) {
            const float4 a = keep[u];
            ss = fmaf(a.x, a.x, ss); ss = fmaf(a.y, a.y, ss); ss = fmaf(a.z, a.z, ss); ss = fmaf(a.w, a.w, ss);
        }
        for (int v = tid + NORM_REG * NORM_THREADS; v < nv; v += NORM_THREADS) {
            const float4 a = xv[v];
            ss = fmaf(a.x, a.x, ss); ss = fmaf(a.y, a.y, ss); ss = fmaf(a.z, a.z, ss); ss = fmaf(a.w, a.w, ss);
        }
        const float inv = rsqrtf(norm_block_sum(ss, red) / (float) dim + eps);
        const uint2* wv = reinterpret_cast<const uint2*>(w);
        float4* ov = reinterpret_cast<float4*>(orow);
#pragma unroll
        for (int u = 0; u < NORM_REG; u++) {
            const int v = tid + u * NORM_THREADS;
            if (v < nv) {
                const uint2 hw = wv[v];
                const float2 w01 = __half22float2(*reinterpret_cast<const __half2*>(&hw.x));
                const float2 w23 = __half22float2(*reinterpret_cast<const __half2*>(&hw.y));
                const float4 a = keep[u];
                ov[v] = make_float4(a.x * inv * w01.x, a.y * inv * w01.y, a.z * inv * w23.x, a.w * inv * w23.y);
            }
        }
        for (int v = tid + NORM_REG * NORM_THREADS; v < nv; v += NORM_THREADS) {
            const uint2 hw = wv[v];
            const float2 w01 = __half22float2(*reinterpret_cast<const __half2*>(&hw.x));
            const float2 w23 = __half22float2(*reinterpret_cast<const __half2*>(&hw.y));
            const float4 a = xv[v];
            ov[v] = make_float4(a.x * inv * w01.x, a.y * inv * w01.y, a.z * inv * w23.x, a.w * inv * w23.y);
        }
    } else {
        for (int c = tid; c < dim; c += NORM_THREADS) ss = fmaf(xr[c], xr[c], ss);
        const float inv = rsqrtf(norm_block_sum(ss, red) / (float) dim + eps);
        for (int c = tid; c < dim; c += NORM_THREADS) orow[c] = xr[c] * inv * __half2float(w[c]);
    }
}
