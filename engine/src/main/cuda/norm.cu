// RMSNorm: out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w, statistics in float32, one block per row.
// The block's partial sums meet in a fixed tree, so the result does not depend on the other rows.
#include "common.cuh"

GPTQ4J_KERNEL void __launch_bounds__(256) rms_norm(const float* __restrict__ x, const __half* __restrict__ w,
                                                    float eps, int dim, float* __restrict__ out) {
    __shared__ float red[32];
    const int t = blockIdx.x;
    const float* xr = x + (long) t * dim;
    float ss = 0.f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) ss = fmaf(xr[c], xr[c], ss);
    ss = warp_sum(ss);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) red[warp] = ss;
    __syncthreads();
    if (warp == 0) {
        float v = lane < warps ? red[lane] : 0.f;
        v = warp_sum(v);
        if (lane == 0) red[0] = v;
    }
    __syncthreads();
    const float inv = rsqrtf(red[0] / (float) dim + eps);
    float* orow = out + (long) t * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) orow[c] = xr[c] * inv * __half2float(w[c]);
}
