// fp16 weights: y[r][n] = sum_c x[r][c] * M[n][c] (lm_head, router) and the embedding gather.
//
// A warp owns one output n for DENSE_DT rows of x; a block holds 8 warps (8 outputs). When cols % 8 == 0
// each lane reads 16-byte vectors of 8 halves, vector v = lane, lane+32, ... (8 in flight per lane), and
// accumulates them in ascending v, 8 fmaf per vector; otherwise lanes stride over single columns. The 32 lane
// sums meet in a fixed butterfly. The order depends on cols alone, so a row's result is independent of how
// many rows share the launch (batch invariance). Grid (ceil(T/DENSE_DT), ceil(rows/8)): the tiles that read
// the same weights are neighbours, so at large T the weights come from L2 after the first tile.
#include "common.cuh"

#define DENSE_DT 8
#define DENSE_UNROLL 8

GPTQ4J_KERNEL void __launch_bounds__(256) dense_fp16(const float* __restrict__ x, const __half* __restrict__ m,
                                                      int T, int rows, int cols, float* __restrict__ y) {
    GK_ENTER;
    const int lane = threadIdx.x & 31;
    const int n = blockIdx.y * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int r0 = blockIdx.x * DENSE_DT;
    if (n >= rows) return;
    const __half* mr = m + (long) n * cols;
    float acc[DENSE_DT];
#pragma unroll
    for (int t = 0; t < DENSE_DT; t++) acc[t] = 0.f;
    if ((cols & 7) == 0) {
        const int nv = cols >> 3;                                   // 8-half vectors per row
        const uint4* mv = reinterpret_cast<const uint4*>(mr);
        for (int v0 = 0; v0 < nv; v0 += 32 * DENSE_UNROLL) {
            uint4 wv[DENSE_UNROLL];
#pragma unroll
            for (int u = 0; u < DENSE_UNROLL; u++) {
                const int v = v0 + u * 32 + lane;
                wv[u] = v < nv ? __ldcs(mv + v) : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int u = 0; u < DENSE_UNROLL; u++) {
                const int v = v0 + u * 32 + lane;
                if (v < nv) {
                    float w[8];
                    half8_float(wv[u], w);
#pragma unroll
                    for (int t = 0; t < DENSE_DT; t++) {
                        if (r0 + t < T) {
                            const float4* xr = reinterpret_cast<const float4*>(x + (long) (r0 + t) * cols) + 2 * v;
                            const float4 a = xr[0], b = xr[1];
                            acc[t] = dot8(a, b, w, acc[t]);
                        }
                    }
                }
            }
        }
    } else {
        for (int c = lane; c < cols; c += 32) {
            const float w = __half2float(mr[c]);
#pragma unroll
            for (int t = 0; t < DENSE_DT; t++) {
                if (r0 + t < T) acc[t] = fmaf(x[(long) (r0 + t) * cols + c], w, acc[t]);
            }
        }
    }
#pragma unroll
    for (int t = 0; t < DENSE_DT; t++) {
        const float s = warp_sum(acc[t]);
        if (lane == 0 && r0 + t < T) y[(long) (r0 + t) * rows + n] = s;
    }
}

// The same per-(row, output) arithmetic as dense_fp16 on its vector path (cols % 8 == 0: lane takes vectors lane,
// lane+32, ... ascending, 8 fmaf each, then the butterfly), with four outputs per warp: at large T dense_fp16 is
// bound by re-reading the x rows once per output (the lm_head at batch 256: 10.9 ms of a 140 ms step under ncu), and
// here every x vector loaded serves four outputs. Same bits as dense_fp16 for every row, so the choice between the
// two (CudaBackend.dense: by T) keeps batch invariance. grid (ceil(T/DENSE_DT), ceil(rows/32)), block 256.
GPTQ4J_KERNEL void __launch_bounds__(256) dense_fp16_o4(const float* __restrict__ x, const __half* __restrict__ m,
                                                         int T, int rows, int cols, float* __restrict__ y) {
    GK_ENTER;
    const int lane = threadIdx.x & 31;
    const int n0 = (blockIdx.y * 8 + (threadIdx.x >> 5)) * 4;
    const int r0 = blockIdx.x * DENSE_DT;
    if (n0 >= rows) return;
    const int nv = cols >> 3;                                       // 8-half vectors per row
    const uint4* mv[4];
#pragma unroll
    for (int k = 0; k < 4; k++) mv[k] = reinterpret_cast<const uint4*>(m + (long) min(n0 + k, rows - 1) * cols);
    float acc[4][DENSE_DT];
#pragma unroll
    for (int k = 0; k < 4; k++)
#pragma unroll
        for (int t = 0; t < DENSE_DT; t++) acc[k][t] = 0.f;
    for (int v0 = 0; v0 < nv; v0 += 32 * 2) {
        uint4 wv[2][4];
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const int v = v0 + u * 32 + lane;
#pragma unroll
            for (int k = 0; k < 4; k++) wv[u][k] = v < nv ? __ldg(mv[k] + v) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < 2; u++) {
            const int v = v0 + u * 32 + lane;
            if (v < nv) {
                float w[4][8];
#pragma unroll
                for (int k = 0; k < 4; k++) half8_float(wv[u][k], w[k]);
#pragma unroll
                for (int t = 0; t < DENSE_DT; t++) {
                    if (r0 + t < T) {
                        const float4* xr = reinterpret_cast<const float4*>(x + (long) (r0 + t) * cols) + 2 * v;
                        const float4 a = xr[0], b = xr[1];
#pragma unroll
                        for (int k = 0; k < 4; k++) {
                            acc[k][t] = dot8(a, b, w[k], acc[k][t]);
                        }
                    }
                }
            }
        }
    }
#pragma unroll
    for (int k = 0; k < 4; k++) {
#pragma unroll
        for (int t = 0; t < DENSE_DT; t++) {
            const float s = warp_sum(acc[k][t]);
            if (lane == 0 && r0 + t < T && n0 + k < rows) y[(long) (r0 + t) * rows + n0 + k] = s;
        }
    }
}

// The same product for matrices of few rows (the router: 8 x 4096), where a warp per row leaves the GPU idle:
// a block of 8 warps per output n, thread i of the block takes the 8-half vectors i, i+256, ... (ascending, 8
// fmaf each), then a warp butterfly and the 8 warp sums added in warp order. Which kernel a matrix uses depends on
// its row count alone (CudaBackend.dense), so the per-row arithmetic never depends on the batch.
// NORM (dense_fp16_rows_norm, Backend.rmsNormDense; cols % 8 == 0): the input is RMSNorm(x row) with rms_norm's bits
// (common.cuh rms_*: each block computes the statistics of its DENSE_DT rows, then normalises every value as it
// reads it), and the blocks of output 0 also write the normalised rows to xn.
// grid (ceil(T/DENSE_DT), rows), block 256.
template <bool NORM>
__device__ __forceinline__ void dense_rows_body(const float* __restrict__ x, const __half* __restrict__ norm_w, float eps,
                                                float* __restrict__ xn, const __half* __restrict__ m, int T, int rows,
                                                int cols, float* __restrict__ y) {
    static_assert(RMS_THREADS == 256, "the norm's statistics take the block's 256 threads");
    __shared__ float red[DENSE_DT][RMS_THREADS / 32];
    const int tid = threadIdx.x;
    const int n = blockIdx.y;
    const int r0 = blockIdx.x * DENSE_DT;
    const __half* mr = m + (long) n * cols;
    float acc[DENSE_DT], inv[DENSE_DT];
#pragma unroll
    for (int t = 0; t < DENSE_DT; t++) {
        acc[t] = 0.f;
        inv[t] = 0.f;
    }
    if constexpr (NORM) {
        // the rows' 1 / rms with rms_sumsq's and rms_block_sum's arithmetic (cols % 8 == 0): each thread's float4
        // vectors tid, tid + 256, ... of every row, the rows' loads of one vector issued together, then every row's
        // warp sums (rms_block_put), one barrier, and every row's block sum (rms_block_take): rms_block_sum's halves
        // (a barrier and a load latency per row before: 8 in a row). red[t] is free until the barrier before the final sums.
        float ss[DENSE_DT];
#pragma unroll
        for (int t = 0; t < DENSE_DT; t++) ss[t] = 0.f;
        for (int v = tid; v < (cols >> 2); v += RMS_THREADS) {
            float4 a[DENSE_DT];
#pragma unroll
            for (int t = 0; t < DENSE_DT; t++) if (r0 + t < T) a[t] = reinterpret_cast<const float4*>(x + (long) (r0 + t) * cols)[v];
#pragma unroll
            for (int t = 0; t < DENSE_DT; t++) if (r0 + t < T) ss[t] = rms_sumsq4(a[t], ss[t]);
        }
#pragma unroll
        for (int t = 0; t < DENSE_DT; t++) rms_block_put(ss[t], red[t]);
        __syncthreads();
#pragma unroll
        for (int t = 0; t < DENSE_DT; t++) {
            const float s = rms_block_take(red[t]);
            if (r0 + t < T) inv[t] = rms_inv(s, cols, eps);
        }
    }
    if (NORM || (cols & 7) == 0) {
        const int nv = cols >> 3;
        const uint4* mv = reinterpret_cast<const uint4*>(mr);
        for (int v0 = 0; v0 < nv; v0 += 256 * 4) {
            uint4 wv[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int v = v0 + u * 256 + tid;
                wv[u] = v < nv ? mv[v] : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int v = v0 + u * 256 + tid;
                if (v < nv) {
                    float w[8];
                    half8_float(wv[u], w);
                    const uint4 gv = NORM ? reinterpret_cast<const uint4*>(norm_w)[v] : make_uint4(0, 0, 0, 0);
#pragma unroll
                    for (int t = 0; t < DENSE_DT; t++) {
                        if (r0 + t < T) {
                            const float4* xr = reinterpret_cast<const float4*>(x + (long) (r0 + t) * cols) + 2 * v;
                            float4 a = xr[0], b = xr[1];
                            if constexpr (NORM) {
                                rms_apply8(a, b, inv[t], gv);
                                if (n == 0) {
                                    float4* o = reinterpret_cast<float4*>(xn + (long) (r0 + t) * cols) + 2 * v;
                                    o[0] = a;
                                    o[1] = b;
                                }
                            }
                            acc[t] = dot8(a, b, w, acc[t]);
                        }
                    }
                }
            }
        }
    } else {
        for (int c = tid; c < cols; c += 256) {
            const float w = __half2float(mr[c]);
#pragma unroll
            for (int t = 0; t < DENSE_DT; t++) {
                if (r0 + t < T) acc[t] = fmaf(x[(long) (r0 + t) * cols + c], w, acc[t]);
            }
        }
    }
    if (NORM) __syncthreads();                        // the statistics' last reads of red are done
    const int nt = min(DENSE_DT, T - r0);
    const float s = block_row_sums<DENSE_DT>(acc, nt, red);
    if (tid < nt) y[(long) (r0 + tid) * rows + n] = s;
}

GPTQ4J_KERNEL void __launch_bounds__(256) dense_fp16_rows(const float* __restrict__ x, const __half* __restrict__ m,
                                                           int T, int rows, int cols, float* __restrict__ y) {
    GK_ENTER;
    dense_rows_body<false>(x, nullptr, 0.f, nullptr, m, T, rows, cols, y);
}

GPTQ4J_KERNEL void __launch_bounds__(256) dense_fp16_rows_norm(const float* __restrict__ x, const __half* __restrict__ norm_w,
                                                                float eps, float* __restrict__ xn,
                                                                const __half* __restrict__ m, int T, int rows, int cols,
                                                                float* __restrict__ y) {
    GK_ENTER;
    dense_rows_body<true>(x, norm_w, eps, xn, m, T, rows, cols, y);
}

// out[t][:] = table[tokens[t]][:] as float; grid (ceil(dim/256), T).
GPTQ4J_KERNEL void embed_fp16(const __half* __restrict__ table, const int* __restrict__ tokens, int dim,
                              float* __restrict__ out) {
    GK_ENTER;
    const int t = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    out[(long) t * dim + c] = __half2float(table[(long) tokens[t] * dim + c]);
}
