// Small element-wise operations.
#include "common.cuh"

GPTQ4J_KERNEL void add_inplace(float* __restrict__ x, const float* __restrict__ y, long n) {
    GK_ENTER;
    const long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

// out[r][:] = x[rows[r]][:]; grid (ceil(dim/256), R).
GPTQ4J_KERNEL void gather_rows(const float* __restrict__ x, const int* __restrict__ rows, int dim,
                               float* __restrict__ out) {
    GK_ENTER;
    const int r = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < dim) out[(long) r * dim + c] = x[(long) rows[r] * dim + c];
}

// Greedy selection on the device (CudaBackend.argmaxRows): out[r] = the index of the largest x[r][i], ties to the
// lowest index (as Sampler's argmax: a strict > in index order, so -0 equals +0), or -1 when the row holds NaN or
// +infinity (values the sampler refuses). Grid R, one block of AR_THREADS per row. Each thread scans its indices in
// ascending order (float4 pieces when dim % 4 == 0) starting from its first element, so a thread's pair is its
// largest value at its lowest index; the block then combines pairs by (larger value, else lower index), which
// yields the lowest index of the row's largest value whatever the combining order.
#define AR_THREADS 512
__device__ __forceinline__ void ar_take(float& bv, int& bi, float v, int i) {
    if (v > bv || (v == bv && i < bi)) { bv = v; bi = i; }
}
// The warp's lanes combine their pairs by ar_take in an xor butterfly: every lane ends with the warp's pair.
__device__ __forceinline__ void ar_warp_take(float& bv, int& bi) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        ar_take(bv, bi, ov, oi);
    }
}
GPTQ4J_KERNEL void __launch_bounds__(AR_THREADS) argmax_rows(const float* __restrict__ x, int dim, int* __restrict__ out) {
    GK_ENTER;
    __shared__ float s_v[AR_THREADS / 32];
    __shared__ int s_i[AR_THREADS / 32];
    const float* row = x + (long) blockIdx.x * dim;
    const int tid = threadIdx.x;
    float bv = -INFINITY;
    int bi = 0x7fffffff;                  // no element yet: loses every comparison with an element
    bool bad = false;
    if ((dim & 3) == 0) {
        const float4* r4 = reinterpret_cast<const float4*>(row);
#pragma unroll 4
        for (int j = tid; j < (dim >> 2); j += AR_THREADS) {
            const float4 q = __ldcs(r4 + j);
            const float v[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
            for (int c = 0; c < 4; c++) {
                bad |= v[c] != v[c] || v[c] == INFINITY;
                ar_take(bv, bi, v[c], 4 * j + c);
            }
        }
    } else {
#pragma unroll 4
        for (int i = tid; i < dim; i += AR_THREADS) {
            const float v = __ldcs(row + i);
            bad |= v != v || v == INFINITY;
            ar_take(bv, bi, v, i);
        }
    }
    ar_warp_take(bv, bi);
    if ((tid & 31) == 0) { s_v[tid >> 5] = bv; s_i[tid >> 5] = bi; }
    bad = __syncthreads_or(bad);
    if (tid < 32) {
        bv = tid < AR_THREADS / 32 ? s_v[tid] : -INFINITY;
        bi = tid < AR_THREADS / 32 ? s_i[tid] : 0x7fffffff;
        ar_warp_take(bv, bi);
        if (tid == 0) out[blockIdx.x] = bad ? -1 : bi;
    }
}
