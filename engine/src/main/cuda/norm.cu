// RMSNorm: out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * w, statistics in float32, one block of RMS_THREADS (256)
// threads per row, with common.cuh's rms_sumsq / rms_block_sum / rms_inv / rms_apply: the order of the sum depends on
// dim alone, never on the other rows, and gq_mma_prep, which can normalise its own input, gets the same bits. x and
// out may be the same buffer (each thread rewrites only the elements it read).
#include "common.cuh"

GPTQ4J_KERNEL void __launch_bounds__(RMS_THREADS) rms_norm(const float* x, const __half* __restrict__ w, float eps,
                                                            int dim, float* out) {
    GK_ENTER;
    __shared__ float red[RMS_THREADS / 32];
    const float* xr = x + (long) blockIdx.x * dim;
    float* orow = out + (long) blockIdx.x * dim;
    const float inv = rms_inv(rms_block_sum(rms_sumsq(xr, dim), red), dim, eps);
    if ((dim & 3) == 0) {
        const float4* xv = reinterpret_cast<const float4*>(xr);
        const uint2* wv = reinterpret_cast<const uint2*>(w);
        float4* ov = reinterpret_cast<float4*>(orow);
        for (int v = threadIdx.x; v < (dim >> 2); v += RMS_THREADS) {
            const float4 a = xv[v];
            const uint2 hw = wv[v];
            const __half2 w01 = *reinterpret_cast<const __half2*>(&hw.x), w23 = *reinterpret_cast<const __half2*>(&hw.y);
            ov[v] = make_float4(rms_apply(a.x, inv, __low2half(w01)), rms_apply(a.y, inv, __high2half(w01)),
                                rms_apply(a.z, inv, __low2half(w23)), rms_apply(a.w, inv, __high2half(w23)));
        }
    } else {
        for (int c = threadIdx.x; c < dim; c += RMS_THREADS) orow[c] = rms_apply(xr[c], inv, w[c]);
    }
}
