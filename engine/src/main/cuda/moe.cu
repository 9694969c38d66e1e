// Sparse mixture of experts: routing, grouping of rows per expert, SiLU gating and the weighted combine.
// The expert products themselves run through the gptq_linear kernels with a per-expert segment.
#include "common.cuh"

// Per token: softmax over the router logits (float32), the top k (ties to the lower expert id), their weights
// renormalised to sum 1. top_idx/top_w [T][k] in rank order. One thread per token.
GPTQ4J_KERNEL void moe_topk_softmax(const float* __restrict__ logits, int T, int experts, int k,
                                    int* __restrict__ top_idx, float* __restrict__ top_w) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    const float* l = logits + (long) t * experts;
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
        top_idx[t * k + j] = best;
        top_w[t * k + j] = p;
        total += p;
    }
    for (int j = 0; j < k; j++) top_w[t * k + j] /= total;
}

// Groups the T*k (token, rank) pairs by expert, pairs ascending within an expert (a stable partition). Writes
// seg[e] = {offset, count}, rows[offset+n] = token of the n-th pair of expert e, and where[t*k+j] = grouped row of
// pair (t, j). One block of up to 1,024 threads (experts <= 64), a pair per thread per pass: warp ballots give
// each pair its rank among the pairs of its expert in the warp, per-warp counts in shared memory the rank in
// the block, and a running base per expert carries it across passes. (The first version, a thread per expert
// scanning every pair twice, took 85 us per layer at batch 256.)
GPTQ4J_KERNEL void __launch_bounds__(1024) moe_group(const int* __restrict__ top_idx, int T, int experts, int k,
                                                     int* __restrict__ seg, int* __restrict__ rows,
                                                     int* __restrict__ where) {
    __shared__ int wcnt[32][64];                      // pairs of expert f in warp w, this pass
    __shared__ int base[64];                          // grouped row of expert f's next pair
    const int n = T * k, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;
    const unsigned below = (1u << lane) - 1u;
    if (tid < experts) base[tid] = 0;
    __syncthreads();
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
    __syncthreads();
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
        if (tid < experts) {
            int c = 0;
            for (int w = 0; w < nw; w++) c += wcnt[w][tid];
            base[tid] += c;
        }
        __syncthreads();
    }
}

// h1[i] = silu(h1[i]) * h3[i] for i in [0, n).
GPTQ4J_KERNEL void silu_mul(float* __restrict__ h1, const float* __restrict__ h3, long n) {
    const long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float g = h1[i];
    h1[i] = g / (1.f + expf(-g)) * h3[i];
}

// out[t][c] = sum_j top_w[t][j] * y[where[t*k+j]][c], j in rank order; grid (ceil(dim/256), T).
GPTQ4J_KERNEL void moe_combine(const float* __restrict__ y, const int* __restrict__ where,
                               const float* __restrict__ top_w, int k, int dim, float* __restrict__ out) {
    const int t = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    float s = 0.f;
    for (int j = 0; j < k; j++) s = fmaf(top_w[t * k + j], y[(long) where[t * k + j] * dim + c], s);
    out[(long) t * dim + c] = s;
}

// Epilogues of the split-K expert products (see gptq_gemm.cu): part1/part3 [ksplit][rows_cap][inter] each,
// part3 at part1 + ksplit*plane. h[i] = silu(fold p1) * fold p3 for i in [0, n) (n = rows * inter).
GPTQ4J_KERNEL void moe_silu_reduce(const float* __restrict__ part, int ksplit, long plane, long n, float* __restrict__ h) {
    const long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float* p3 = part + (long) ksplit * plane;
    float g = part[i], u = p3[i];
    for (int k = 1; k < ksplit; k++) {
        g = __fadd_rn(g, part[(long) k * plane + i]);
        u = __fadd_rn(u, p3[(long) k * plane + i]);
    }
    h[i] = g / (1.f + expf(-g)) * u;
}

// out[t][c] = sum_j top_w[t][j] * (fold_s part[s][where[t*k+j]][c]), j in rank order (as moe_combine);
// grid (ceil(dim/256), T).
GPTQ4J_KERNEL void moe_combine_reduce(const float* __restrict__ part, int ksplit, long plane,
                                      const int* __restrict__ where, const float* __restrict__ top_w, int k, int dim,
                                      float* __restrict__ out) {
    const int t = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    float s = 0.f;
    for (int j = 0; j < k; j++) {
        const long i = (long) where[t * k + j] * dim + c;
        float yv = part[i];
        for (int q = 1; q < ksplit; q++) yv = __fadd_rn(yv, part[(long) q * plane + i]);
        s = fmaf(top_w[t * k + j], yv, s);
    }
    out[(long) t * dim + c] = s;
}
