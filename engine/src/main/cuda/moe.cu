// Sparse mixture of experts: routing, grouping of rows per expert, SiLU gating and the weighted combine.
// The expert products themselves run through the gptq_linear kernels with a per-expert segment.
#include "common.cuh"

// One token: softmax over its router logits l (float32), the top k (ties to the lower expert id), their weights
// renormalised to sum 1, written to idx/w [k] in rank order.
__device__ __forceinline__ void moe_topk_one(const float* __restrict__ l, int experts, int k, int* __restrict__ idx,
                                             float* __restrict__ w) {
    unsigned long long taken = 0ull;   // experts <= 64
    float mx = -INFINITY;
    for (int e = 0; e < experts; e++) mx = fmaxf(mx, l[e]);
    float total = 0.f;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < experts; e++) {
            if (taken & (1ull << e)) continue;
            if (best < 0 || l[e] > l[best]) best = e;
        }
        taken |= 1ull << best;
        const float p = expf(l[best] - mx);
        idx[j] = best;
        w[j] = p;
        total += p;
    }
    for (int j = 0; j < k; j++) w[j] /= total;
}

// moe_topk_one for experts <= 8 with the logits, the candidates and the weights in registers: one round trip for
// the logits instead of a dependent load per comparison. The same operations in the same order, so the same bits.
__device__ __forceinline__ void moe_topk_small(const float* l, int experts, int k, int* __restrict__ idx,
                                               float* __restrict__ w) {
    float lv[8], pv[8];
#pragma unroll
    for (int e = 0; e < 8; e++) lv[e] = e < experts ? l[e] : 0.f;
    float mx = -INFINITY;
#pragma unroll
    for (int e = 0; e < 8; e++) if (e < experts) mx = fmaxf(mx, lv[e]);
    unsigned taken = 0u;
    float total = 0.f;
#pragma unroll
    for (int j = 0; j < 8; j++) {
        if (j < k) {
            int best = -1;
            float bv = 0.f;
#pragma unroll
            for (int e = 0; e < 8; e++) {
                if (e < experts && !(taken & (1u << e)) && (best < 0 || lv[e] > bv)) { best = e; bv = lv[e]; }
            }
            taken |= 1u << best;
            pv[j] = expf(bv - mx);
            idx[j] = best;
            total += pv[j];
        }
    }
#pragma unroll
    for (int j = 0; j < 8; j++) if (j < k) w[j] = pv[j] / total;
}

// A token's top k: moe_topk_small for up to 8 experts (the same bits), else moe_topk_one.
__device__ __forceinline__ void moe_topk(const float* l, int experts, int k, int* __restrict__ idx, float* __restrict__ w) {
    if (experts <= 8) moe_topk_small(l, experts, k, idx, w);
    else moe_topk_one(l, experts, k, idx, w);
}

// The routing of one token (decode at batch 1) by one warp (call from lanes 0-31; experts <= 32, k <= 32): its top k
// (moe_topk on l, global or shared), and the grouping moe_route's passes give: expert f's pairs start after every
// pair of a lower expert, pair j after the pairs j' < j of its own expert.
__device__ __forceinline__ void moe_route_one(const float* l, int experts, int k, int* __restrict__ top_idx,
                                              float* __restrict__ top_w, int* __restrict__ seg, int* __restrict__ rows,
                                              int* __restrict__ where) {
    const int lane = threadIdx.x & 31;
    if (lane == 0) moe_topk(l, experts, k, top_idx, top_w);
    __syncwarp();
    const int e = lane < k ? top_idx[lane] : -1;
    int below = 0, count = 0, lower = 0, same = 0;
    for (int j = 0; j < k; j++) {
        const int ej = __shfl_sync(0xffffffffu, e, j);
        below += ej < lane;                           // lane as an expert id: pairs of lower experts, its own pairs
        count += ej == lane;
        lower += ej < e;                              // lane as a pair: pairs of lower experts, earlier ones of its own
        same += j < lane && ej == e;
    }
    if (lane < experts) { seg[2 * lane] = below; seg[2 * lane + 1] = count; }
    if (lane < k) {
        rows[lower + same] = 0;
        where[lane] = lower + same;
    }
}

// The MoE router and routing of one token in one launch (decode at batch 1; CudaBackend.rmsNormRouteMoeAdd), one
// launch instead of dense_fp16_rows_norm's and moe_route's: xn = RMSNorm(x) and logits = xn . m^T with
// dense_fp16_rows_norm's arithmetic for every router row (rms_apply8 and dot8 over a thread's columns 8v..8v+7 for
// v = tid, tid + 256 in that order, then warp_sum and the 8 warp sums in order: the same bits), then moe_route_one on
// the logits by warp 0.
// The router's and the norm's weights (constants) are read before the PDL wait, all rows at once. One block of
// RMS_THREADS threads; rows <= RR_ROWS, cols % 8 == 0, cols <= 8 * RR_V * RMS_THREADS, k <= rows
// (CudaBackend.rmsNormRouteMoeAdd checks them against ROUTE_ROWS and ROUTE_COLS).
#define RR_ROWS 8
#define RR_V 2
GPTQ4J_KERNEL void __launch_bounds__(RMS_THREADS) router_route_one(const float* __restrict__ x,
        const __half* __restrict__ norm_w, float eps, float* __restrict__ xn, const __half* __restrict__ m, int rows,
        int cols, float* __restrict__ logits, int k, int* __restrict__ top_idx, float* __restrict__ top_w,
        int* __restrict__ seg, int* __restrict__ grouped, int* __restrict__ where) {
    GK_ENTER_LATE;
    __shared__ float red[RMS_THREADS / 32];
    __shared__ float rsum[RR_ROWS][RMS_THREADS / 32];
    __shared__ float slog[RR_ROWS];
    const int tid = threadIdx.x, warp = tid >> 5, nv = cols >> 3;
    const uint4* mv = reinterpret_cast<const uint4*>(m);
    uint4 wv[RR_ROWS][RR_V], gv[RR_V];
#pragma unroll
    for (int u = 0; u < RR_V; u++) {
        const int v = u * RMS_THREADS + tid;
        gv[u] = v < nv ? reinterpret_cast<const uint4*>(norm_w)[v] : make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int n = 0; n < RR_ROWS; n++) wv[n][u] = n < rows && v < nv ? mv[(long) n * nv + v] : make_uint4(0, 0, 0, 0);
    }
    GK_WAIT;
    const float inv = rms_inv(rms_block_sum(rms_sumsq(x, cols), red), cols, eps);
    float acc[RR_ROWS];
#pragma unroll
    for (int n = 0; n < RR_ROWS; n++) acc[n] = 0.f;
#pragma unroll
    for (int u = 0; u < RR_V; u++) {
        const int v = u * RMS_THREADS + tid;
        if (v < nv) {
            const float4* xr = reinterpret_cast<const float4*>(x) + 2 * v;
            float4 a = xr[0], b = xr[1];
            rms_apply8(a, b, inv, gv[u]);
            float4* o = reinterpret_cast<float4*>(xn) + 2 * v;
            o[0] = a;
            o[1] = b;
#pragma unroll
            for (int n = 0; n < RR_ROWS; n++) {
                if (n < rows) {
                    float w[8];
                    half8_float(wv[n][u], w);
                    acc[n] = dot8(a, b, w, acc[n]);
                }
            }
        }
    }
    const float s = block_row_sums<RR_ROWS>(acc, rows, rsum);   // dense_fp16_rows_norm's sums, the same bits
    if (tid < rows) {
        logits[tid] = s;
        slog[tid] = s;
    }
    __syncthreads();
    if (warp == 0) moe_route_one(slog, rows, k, top_idx, top_w, seg, grouped, where);
}

// The routing of a MoE step in one launch: every token's top k (moe_topk_one; top_idx/top_w [T][k]), then the
// T*k (token, rank) pairs grouped by expert, pairs ascending within an expert (a stable partition). Writes
// seg[e] = {offset, count}, rows[offset+n] = token of the n-th pair of expert e, and where[t*k+j] = grouped row of
// pair (t, j). One block of up to 1,024 threads (experts <= 64): a token per thread per pass for the top k, then a
// pair per thread per pass: warp ballots give each pair its rank among the pairs of its expert in the warp,
// per-warp counts in shared memory the rank in the block, and a running base per expert carries it across passes.
// (The first grouping, a thread per expert scanning every pair twice, took 85 us per layer at batch 256; the top
// k and the grouping were two launches until round 6.)
// With seg_by_rows (T > 1 only): the experts ranked by rows, most first (ties: the lower expert first), as the tables
// seg_by_rows[rank] = seg[e] and mats_by_rows[rank] = mats[e] (mats: one GqMat per expert, w2's), so w2's launch
// runs its largest experts' tiles first and ends on the small ones (CudaBackend.WGMMA_FULLEST_FIRST); the rows and
// every output stay where seg puts them.
GPTQ4J_KERNEL void __launch_bounds__(1024) moe_route(const float* __restrict__ logits, int T, int experts, int k,
                                                     int* __restrict__ top_idx, float* __restrict__ top_w,
                                                     int* __restrict__ seg, int* __restrict__ rows,
                                                     int* __restrict__ where, const GqMat* __restrict__ mats,
                                                     GqMat* __restrict__ mats_by_rows, int* __restrict__ seg_by_rows) {
    GK_ENTER;
    if (T == 1 && experts <= 32 && k <= 32) {
        if (threadIdx.x < 32) moe_route_one(logits, experts, k, top_idx, top_w, seg, rows, where);
        return;
    }
    __shared__ int wcnt[32][64];                      // pairs of expert f in warp w, this pass
    __shared__ int base[64];                          // grouped row of expert f's next pair
    const int n = T * k, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
    for (int t = tid; t < T; t += blockDim.x) {
        moe_topk(logits + (long) t * experts, experts, k, top_idx + (long) t * k, top_w + (long) t * k);
    }
    const unsigned below = (1u << lane) - 1u;
    for (int f = tid; f < experts; f += blockDim.x) base[f] = 0;   // any block size: experts may exceed the threads
    __syncthreads();                                  // the top k of every token written (block scope)
    for (int i0 = 0; i0 < n; i0 += blockDim.x) {      // pass 1: the counts
        const int i = i0 + tid;
        const int e = i < n ? top_idx[i] : -1;
        for (int f = 0; f < experts; f++) {
            const unsigned m = __ballot_sync(0xffffffffu, e == f);
            if (lane == 0 && m) atomicAdd(&base[f], __popc(m));
        }
    }
    __syncthreads();
    if (tid == 0) {
        int off = 0;
        for (int f = 0; f < experts; f++) {
            const int c = base[f];
            seg[2 * f] = off;
            seg[2 * f + 1] = c;
            base[f] = off;
            off += c;
        }
    }
    __syncthreads();                                  // seg written (block scope)
    for (int e = tid; seg_by_rows && e < experts; e += blockDim.x) {   // expert e's rank by rows
        const int c = seg[2 * e + 1];
        int rank = 0;
        for (int f = 0; f < experts; f++) {
            const int cf = seg[2 * f + 1];
            rank += cf > c || (cf == c && f < e);
        }
        seg_by_rows[2 * rank] = seg[2 * e];
        seg_by_rows[2 * rank + 1] = c;
        mats_by_rows[rank] = mats[e];
    }
    for (int i0 = 0; i0 < n; i0 += blockDim.x) {      // pass 2: the grouped rows, in pair order
        const int i = i0 + tid;
        const int e = i < n ? top_idx[i] : -1;
        int rank = 0;
        for (int f = 0; f < experts; f++) {
            const unsigned m = __ballot_sync(0xffffffffu, e == f);
            if (e == f) rank = __popc(m & below);
            if (lane == 0) wcnt[warp][f] = __popc(m);
        }
        __syncthreads();
        if (e >= 0) {
            int pos = base[e] + rank;
            for (int w = 0; w < warp; w++) pos += wcnt[w][e];
            rows[pos] = i / k;
            where[i] = pos;
        }
        __syncthreads();
        for (int f = tid; f < experts; f += blockDim.x) {
            int c = 0;
            for (int w = 0; w < nw; w++) c += wcnt[w][f];
            base[f] += c;
        }
        __syncthreads();
    }
}

// h1[i] = silu(h1[i]) * h3[i] for i in [0, n).
GPTQ4J_KERNEL void silu_mul(float* __restrict__ h1, const float* __restrict__ h3, long n) {
    GK_ENTER;
    const long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float g = h1[i];
    h1[i] = silu_times(g, h3[i]);
}

// out[t][c] = sum_j top_w[t][j] * y[where[t*k+j]][c], j in rank order, plus res[t][c] when res is not null;
// grid (ceil(dim/256), T).
GPTQ4J_KERNEL void moe_combine(const float* __restrict__ y, const int* __restrict__ where,
                               const float* __restrict__ top_w, int k, int dim, float* out, const float* res) {
    GK_ENTER;
    const int t = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    float s = 0.f;
    for (int j = 0; j < k; j++) s = fmaf(top_w[t * k + j], y[(long) where[t * k + j] * dim + c], s);
    const long o = (long) t * dim + c;
    out[o] = res ? res[o] + s : s;   // res: the residual stream the block's output is added to (out may be res)
}

// Epilogues of the split-K expert products (see gptq_gemm.cu): part1/part3 [ksplit][rows_cap][inter] each,
// part3 at part1 + ksplit*plane. h[i] = silu(fold p1) * fold p3 for i in [0, n) (n = rows * inter).
GPTQ4J_KERNEL void moe_silu_reduce(const float* __restrict__ part, int ksplit, long plane, long n, float* __restrict__ h) {
    GK_ENTER;
    const long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g, u;
    gk_fold2(part, i, part + (long) ksplit * plane, i, ksplit, plane, g, u);
    h[i] = silu_times(g, u);
}

// out[t][c] = sum_j top_w[t][j] * (fold_s part[s][where[t*k+j]][c]), j in rank order (as moe_combine), plus
// res[t][c] when res is not null; grid (ceil(dim/256), T).
GPTQ4J_KERNEL void moe_combine_reduce(const float* __restrict__ part, int ksplit, long plane,
                                      const int* __restrict__ where, const float* __restrict__ top_w, int k, int dim,
                                      float* out, const float* res) {
    GK_ENTER;
    const int t = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    float s = 0.f;
    if (k == 2) {                                    // the two folds side by side (their loads in flight together)
        float a, b;
        gk_fold2(part, (long) where[2 * t] * dim + c, part, (long) where[2 * t + 1] * dim + c, ksplit, plane, a, b);
        s = fmaf(top_w[2 * t + 1], b, fmaf(top_w[2 * t], a, s));
    } else {
        for (int j = 0; j < k; j++) {
            const long i = (long) where[t * k + j] * dim + c;
            s = fmaf(top_w[t * k + j], gk_fold(part, ksplit, plane, i), s);
        }
    }
    const long o = (long) t * dim + c;
    out[o] = res ? res[o] + s : s;   // as moe_combine
}
