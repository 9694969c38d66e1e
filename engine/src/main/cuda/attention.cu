// Attention over a paged KV cache (float32 or fp16 storage, float32 arithmetic).
// Cache layout per layer: K and V each [blocks*block_size][kv_heads*d] elements; a sequence's block table
// row maps its position p to slot block_table[p / block_size] * block_size + p % block_size.
#include "common.cuh"

#define ATT_WARPS 4
#define ATT_MAX_DL 8   // head dim up to 256, d % 32 == 0

// The cache stores float32 (default, same numbers as the CPU engine) or fp16 (half the memory).
__device__ __forceinline__ float kv_load(const float* p) { return *p; }
__device__ __forceinline__ float kv_load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ void kv_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void kv_store(__half* p, float v) { *p = __float2half_rn(v); }

// k_cache[slots[t]] = k[t], v_cache[slots[t]] = v[t]; grid (ceil(kv_dim/256), T).
template <typename KV>
__device__ __forceinline__ void kv_append_body(const float* __restrict__ k, const float* __restrict__ v,
                                               const int* __restrict__ slots, int kv_dim, KV* __restrict__ k_cache,
                                               KV* __restrict__ v_cache) {
    const int t = blockIdx.y;
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= kv_dim) return;
    const long dst = (long) slots[t] * kv_dim + e;
    kv_store(k_cache + dst, k[(long) t * kv_dim + e]);
    kv_store(v_cache + dst, v[(long) t * kv_dim + e]);
}

// One block of ATT_WARPS warps per (query head, token). Warps take interleaved keys, each keeps an online
// softmax (max, sum, weighted V); the warps' states merge in a fixed order. Keys: positions p of the token's
// sequence with max(0, pos - window + 1) <= p <= pos (window 0: no limit). grid (heads, T).
template <typename KV>
__device__ __forceinline__ void attention_paged_body(
        const float* __restrict__ q, const KV* __restrict__ k_cache, const KV* __restrict__ v_cache,
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
        const KV* kr = k_cache + slot * kv_dim + kvh * d;
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < ATT_MAX_DL; i++) if (i < dl) s = fmaf(qv[i], kv_load(kr + i * 32 + lane), s);
        s = warp_sum(s);
        const float mn = fmaxf(m, s);
        const float corr = expf(m - mn);      // 0 on the first key (m = -inf)
        const float e = expf(s - mn);
        l = l * corr + e;
        const KV* vr = v_cache + slot * kv_dim + kvh * d;
#pragma unroll
        for (int i = 0; i < ATT_MAX_DL; i++) if (i < dl) acc[i] = fmaf(e, kv_load(vr + i * 32 + lane), acc[i] * corr);
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

#define ATT_INSTANCE(SUFFIX, KV)                                                                              \
    GPTQ4J_KERNEL void kv_append_##SUFFIX(const float* k, const float* v, const int* slots, int kv_dim,          \
                                          KV* k_cache, KV* v_cache) {                                            \
        kv_append_body<KV>(k, v, slots, kv_dim, k_cache, v_cache);                                              \
    }                                                                                                            \
    GPTQ4J_KERNEL void __launch_bounds__(ATT_WARPS * 32) attention_paged_##SUFFIX(                               \
            const float* q, const KV* k_cache, const KV* v_cache, const int* positions, const int* token_seq,    \
            const int* block_tables, int max_blocks, int block_size, int heads, int kv_heads, int d, int window, \
            float scale, float* out) {                                                                           \
        attention_paged_body<KV>(q, k_cache, v_cache, positions, token_seq, block_tables, max_blocks,            \
                                 block_size, heads, kv_heads, d, window, scale, out);                            \
    }
ATT_INSTANCE(f32, float)
ATT_INSTANCE(f16, __half)

// Copies one block's K and V in every layer (copy-on-write of a shared prefix), as 32-bit words;
// grid (ceil(words/256), layers*2).
GPTQ4J_KERNEL void kv_copy_block(uint32_t* cache, long plane_words, int from, int to, long block_words) {
    const long e = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= block_words) return;
    uint32_t* base = cache + (long) blockIdx.y * plane_words;
    base[(long) to * block_words + e] = base[(long) from * block_words + e];
}
