// Attention over a paged KV cache (fp16 storage, float32 arithmetic).
// Cache layout per layer: K and V each [blocks*block_size][kv_heads*d] halves; a sequence's block table
// row maps its position p to slot block_table[p / block_size] * block_size + p % block_size.
#include "common.cuh"

#define ATT_WARPS 4
#define ATT_MAX_DL 8   // head dim up to 256, d % 32 == 0

// k_cache[slots[t]] = k[t], v_cache[slots[t]] = v[t]; grid (ceil(kv_dim/256), T).
GPTQ4J_KERNEL void kv_append(const float* __restrict__ k, const float* __restrict__ v, const int* __restrict__ slots,
                             int kv_dim, __half* __restrict__ k_cache, __half* __restrict__ v_cache) {
    const int t = blockIdx.y;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= kv_dim) return;
    const long dst = (long) slots[t] * kv_dim + e;
    k_cache[dst] = __float2half_rn(k[(long) t * kv_dim + e]);
    v_cache[dst] = __float2half_rn(v[(long) t * kv_dim + e]);
}

// One block of ATT_WARPS warps per (query head, token). Warps take interleaved keys, each keeps an online
// softmax (max, sum, weighted V); the warps' states merge in a fixed order. Keys: positions p of the token's
// sequence with max(0, pos - window + 1) <= p <= pos (window 0: no limit). grid (heads, T).
GPTQ4J_KERNEL void __launch_bounds__(ATT_WARPS * 32) attention_paged(
        const float* __restrict__ q, const __half* __restrict__ k_cache, const __half* __restrict__ v_cache,
        const int* __restrict__ positions, const int* __restrict__ token_seq, const int* __restrict__ block_tables,
        int max_blocks, int block_size, int heads, int kv_heads, int d, int window, float scale,
        float* __restrict__ out) {
    __shared__ float sm_m[ATT_WARPS], sm_l[ATT_WARPS];
    __shared__ float sm_o[ATT_WARPS][ATT_MAX_DL * 32];
    const int h = blockIdx.x, t = blockIdx.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int dl = d / 32;
    const int kvh = h / (heads / kv_heads);
    const int kv_dim = kv_heads * d;
    const int pos = positions[t];
    const int start = window > 0 ? max(0, pos - window + 1) : 0;
    const int* table = block_tables + (long) token_seq[t] * max_blocks;

    float qv[ATT_MAX_DL], acc[ATT_MAX_DL];
#pragma unroll
    for (int i = 0; i < ATT_MAX_DL; i++) {
        qv[i] = i < dl ? q[(long) t * heads * d + h * d + i * 32 + lane] * scale : 0.f;
        acc[i] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    for (int p = start + warp; p <= pos; p += ATT_WARPS) {
        const long slot = (long) table[p / block_size] * block_size + p % block_size;
        const __half* kr = k_cache + slot * kv_dim + kvh * d;
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < ATT_MAX_DL; i++) if (i < dl) s = fmaf(qv[i], __half2float(kr[i * 32 + lane]), s);
        s = warp_sum(s);
        const float mn = fmaxf(m, s);
        const float corr = expf(m - mn);      // 0 on the first key (m = -inf)
        const float e = expf(s - mn);
        l = l * corr + e;
        const __half* vr = v_cache + slot * kv_dim + kvh * d;
#pragma unroll
        for (int i = 0; i < ATT_MAX_DL; i++) if (i < dl) acc[i] = fmaf(e, __half2float(vr[i * 32 + lane]), acc[i] * corr);
        m = mn;
    }
    if (lane == 0) { sm_m[warp] = m; sm_l[warp] = l; }
#pragma unroll
    for (int i = 0; i < ATT_MAX_DL; i++) if (i < dl) sm_o[warp][i * 32 + lane] = acc[i];
    __syncthreads();
    if (warp == 0) {
        float mx = -INFINITY;
        for (int w = 0; w < ATT_WARPS; w++) mx = fmaxf(mx, sm_m[w]);
        float ls = 0.f;
        float o[ATT_MAX_DL];
#pragma unroll
        for (int i = 0; i < ATT_MAX_DL; i++) o[i] = 0.f;
        for (int w = 0; w < ATT_WARPS; w++) {
            if (sm_l[w] == 0.f) continue;      // a warp that saw no key
            const float f = expf(sm_m[w] - mx);
            ls = fmaf(sm_l[w], f, ls);
#pragma unroll
            for (int i = 0; i < ATT_MAX_DL; i++) if (i < dl) o[i] = fmaf(sm_o[w][i * 32 + lane], f, o[i]);
        }
        const float inv = 1.f / ls;
#pragma unroll
        for (int i = 0; i < ATT_MAX_DL; i++) if (i < dl) out[(long) t * heads * d + h * d + i * 32 + lane] = o[i] * inv;
    }
}

// Copies one block's K and V in every layer (copy-on-write of a shared prefix); grid (ceil(n/256), layers*2).
GPTQ4J_KERNEL void kv_copy_block(__half* cache, long layer_stride, int from, int to, long block_elems) {
    const long e = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= block_elems) return;
    __half* base = cache + (long) blockIdx.y * layer_stride;
    base[(long) to * block_elems + e] = base[(long) from * block_elems + e];
}
