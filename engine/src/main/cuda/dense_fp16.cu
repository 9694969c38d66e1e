// fp16 weights: y[r][n] = sum_c x[r][c] * M[n][c] (lm_head, router) and the embedding gather.
// A warp owns one output n for DT rows; lanes stride over c and the 32 partial sums meet in a fixed
// butterfly, so a row's result is independent of how many rows share the launch.
#include "common.cuh"

#define DENSE_DT 8

GPTQ4J_KERNEL void __launch_bounds__(256) dense_fp16(const float* __restrict__ x, const __half* __restrict__ m,
                                                      int T, int rows, int cols, float* __restrict__ y) {
    const int lane = threadIdx.x & 31;
    const int n = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int r0 = blockIdx.y * DENSE_DT;
    if (n >= rows) return;
    const __half* mr = m + (long) n * cols;
    float acc[DENSE_DT];
#pragma unroll
    for (int t = 0; t < DENSE_DT; t++) acc[t] = 0.f;
    for (int c = lane; c < cols; c += 32) {
        const float w = __half2float(mr[c]);
#pragma unroll
        for (int t = 0; t < DENSE_DT; t++) {
            if (r0 + t < T) acc[t] = fmaf(x[(long) (r0 + t) * cols + c], w, acc[t]);
        }
    }
#pragma unroll
    for (int t = 0; t < DENSE_DT; t++) {
        const float s = warp_sum(acc[t]);
        if (lane == 0 && r0 + t < T) y[(long) (r0 + t) * rows + n] = s;
    }
}

// out[t][:] = table[tokens[t]][:] as float; grid (ceil(dim/256), T).
GPTQ4J_KERNEL void embed_fp16(const __half* __restrict__ table, const int* __restrict__ tokens, int dim,
                              float* __restrict__ out) {
    const int t = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    out[(long) t * dim + c] = __half2float(table[(long) tokens[t] * dim + c]);
}
