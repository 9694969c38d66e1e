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

// rope_rotate_half followed by kv_append in one launch (the same arithmetic): grid (T, heads + kv_heads), block d/2
// threads; blocks of KV heads also store the rotated pair of k and the same pair of v at the token's slot.
template <typename KV>
__device__ __forceinline__ void rope_kv_append_body(float* __restrict__ q, float* __restrict__ k,
                                                    const float* __restrict__ v, const int* __restrict__ positions,
                                                    const int* __restrict__ slots, int heads, int kv_heads, int d,
                                                    double log_theta, KV* __restrict__ k_cache, KV* __restrict__ v_cache) {
    const int t = blockIdx.x, h = blockIdx.y, i = threadIdx.x, half = d / 2;
    if (i >= half) return;
    const int kv_dim = kv_heads * d;
    float* x = h < heads ? q + (long) t * heads * d + h * d : k + (long) t * kv_dim + (h - heads) * d;
    rope_pair(x, i, d, positions[t], log_theta);
    if (h >= heads) {
        const long e = (long) (h - heads) * d + i, dst = (long) slots[t] * kv_dim + e, src = (long) t * kv_dim + e;
        kv_store(k_cache + dst, x[i]);
        kv_store(k_cache + dst + half, x[i + half]);
        kv_store(v_cache + dst, v[src]);
        kv_store(v_cache + dst + half, v[src + half]);
    }
}

// rope_kv_append over split-K products (Backend.rmsNormQkvAttention): thread i of block (t, h) folds elements i and
// i + d/2 from the partial sums (gk_fold, gq_reduce's bits), stores them to q, k or v, then does what
// rope_kv_append_body does with them: blocks h < heads rotate q's head h; the next kv_heads blocks rotate k's head
// h - heads and append it; the last kv_heads blocks append v's head h - heads - kv_heads (a block of its own, so no
// thread folds more than two elements). pq: q's partials as runs of q_run outputs (a multiple of d), run j's
// [ksplit_q][T * q_run] at pq + j * pstride_q (q_run = heads * d: one run, q's own split-mode layout; q_run = kv_dim:
// q's runs of the q+k+v launch); pkv: k's [ksplit_kv][T * kv_dim], then v's at pkv + pstride_kv.
// grid (T, heads + 2 * kv_heads), block d/2 threads.
template <typename KV>
__device__ __forceinline__ void rope_kv_fold_body(const float* __restrict__ pq, int ksplit_q, int q_run, long pstride_q,
                                                  const float* __restrict__ pkv,
                                                  int ksplit_kv, long pstride_kv, float* q, float* k, float* v,
                                                  const int* __restrict__ positions, const int* __restrict__ slots,
                                                  int heads, int kv_heads, int d, double log_theta,
                                                  KV* __restrict__ k_cache, KV* __restrict__ v_cache) {
    const int t = blockIdx.x, h = blockIdx.y, i = threadIdx.x, half = d / 2, T = gridDim.x;
    if (i >= half) return;
    const long kv_dim = (long) kv_heads * d;
    if (h < heads) {
        const int col = h * d, j = col / q_run;      // the head's first output and its run
        const float* pr = pq + j * pstride_q;
        const long plane = (long) T * q_run, e = (long) t * q_run + (col - j * q_run) + i;
        float* x = q + (long) t * heads * d + col;
        x[i] = gk_fold(pr, ksplit_q, plane, e);
        x[i + half] = gk_fold(pr, ksplit_q, plane, e + half);
        rope_pair(x, i, d, positions[t], log_theta);
        return;
    }
    const bool isk = h < heads + kv_heads;
    const long c = (long) (h - heads - (isk ? 0 : kv_heads)) * d + i, src = t * kv_dim + c, dst = (long) slots[t] * kv_dim + c;
    const long plane = T * kv_dim;
    if (isk) {
        float* x = k + t * kv_dim + (c - i);
        x[i] = gk_fold(pkv, ksplit_kv, plane, src);
        x[i + half] = gk_fold(pkv, ksplit_kv, plane, src + half);
        rope_pair(x, i, d, positions[t], log_theta);
        kv_store(k_cache + dst, x[i]);
        kv_store(k_cache + dst + half, x[i + half]);
    } else {
        const float a = gk_fold(pkv + pstride_kv, ksplit_kv, plane, src), b = gk_fold(pkv + pstride_kv, ksplit_kv, plane, src + half);
        v[src] = a;
        v[src + half] = b;
        kv_store(v_cache + dst, a);
        kv_store(v_cache + dst + half, b);
    }
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
        GK_ENTER;                                                                                                \
        kv_append_body<KV>(k, v, slots, kv_dim, k_cache, v_cache);                                              \
    }                                                                                                            \
    GPTQ4J_KERNEL void rope_kv_append_##SUFFIX(float* q, float* k, const float* v, const int* positions,         \
            const int* slots, int heads, int kv_heads, int d, double log_theta, KV* k_cache, KV* v_cache) {      \
        GK_ENTER;                                                                                                \
        rope_kv_append_body<KV>(q, k, v, positions, slots, heads, kv_heads, d, log_theta, k_cache, v_cache);    \
    }                                                                                                            \
    GPTQ4J_KERNEL void rope_kv_append_fold_##SUFFIX(const float* pq, int ksplit_q, int q_run, long pstride_q,    \
            const float* pkv, int ksplit_kv, long pstride_kv, float* q, float* k, float* v, const int* positions,  \
            const int* slots, int heads, int kv_heads, int d, double log_theta, KV* k_cache, KV* v_cache) {      \
        GK_ENTER;                                                                                                \
        rope_kv_fold_body<KV>(pq, ksplit_q, q_run, pstride_q, pkv, ksplit_kv, pstride_kv, q, k, v, positions,   \
                              slots, heads, kv_heads, d, log_theta, k_cache, v_cache);                           \
    }                                                                                                            \
    GPTQ4J_KERNEL void __launch_bounds__(ATT_WARPS * 32) attention_paged_##SUFFIX(                               \
            const float* q, const KV* k_cache, const KV* v_cache, const int* positions, const int* token_seq,    \
            const int* block_tables, int max_blocks, int block_size, int heads, int kv_heads, int d, int window, \
            float scale, float* out) {                                                                           \
        GK_ENTER;                                                                                                \
        attention_paged_body<KV>(q, k_cache, v_cache, positions, token_seq, block_tables, max_blocks,            \
                                 block_size, heads, kv_heads, d, window, scale, out);                            \
    }
ATT_INSTANCE(f32, float)
ATT_INSTANCE(f16, __half)

// Decode/prefill attention with the K/V rows of a GQA group loaded once for up to hb <= ATT_HB query heads.
// One block of W warps per (KV head, sub-group of <= hb query heads, token); lane l owns the DL contiguous
// dimensions [l*DL, l*DL+DL) (16-byte loads at DL=4 in float32). Warp w takes the keys start+w, start+w+W, ...,
// ATT_KB of them per step (their loads in flight together); per head it keeps an online softmax (max, sum,
// weighted V) updated once per step in a fixed order; the W warp states merge in warp order. Everything depends
// on the token's own position and the head dim, never on the other tokens (batch invariance). A head's arithmetic
// does not depend on the other heads of its block, so hb (CudaBackend.ATT_HEADS) changes only how the work is spread.
// grid (kv_heads * ceil(group/hb), T), block W*32.
#define ATT_HB 4
#define ATT_KB 4
#ifndef ATT_EARLY
#define ATT_EARLY 1      // 0: wait for the kernel before on entry (before round 16; same bits)
#endif
#ifndef ATT_PREFETCH
#define ATT_PREFETCH 1   // 0: a step reads its keys' block-table entries itself (before round 16; same bits)
#endif

template <int DL, typename KV>
__device__ __forceinline__ void att_load(const KV* p, float (&v)[DL]) {
    if constexpr (sizeof(KV) == 4) {
        if constexpr (DL % 4 == 0) {
#pragma unroll
            for (int i = 0; i < DL; i += 4) {
                const float4 a = *reinterpret_cast<const float4*>(p + i);
                v[i] = a.x; v[i + 1] = a.y; v[i + 2] = a.z; v[i + 3] = a.w;
            }
        } else if constexpr (DL == 2) {
            const float2 a = *reinterpret_cast<const float2*>(p);
            v[0] = a.x; v[1] = a.y;
        } else {
            v[0] = kv_load(p);
        }
    } else {
        if constexpr (DL % 2 == 0) {
#pragma unroll
            for (int i = 0; i < DL; i += 2) {
                const float2 a = __half22float2(*reinterpret_cast<const __half2*>(p + i));
                v[i] = a.x; v[i + 1] = a.y;
            }
        } else {
            v[0] = kv_load(p);
        }
    }
}

// DL floats to shared memory (16-byte stores where DL allows), att_load's counterpart for LEAN's sm_o rows.
template <int DL>
__device__ __forceinline__ void att_store(float* p, const float (&v)[DL]) {
    if constexpr (DL % 4 == 0) {
#pragma unroll
        for (int i = 0; i < DL; i += 4) *reinterpret_cast<float4*>(p + i) = make_float4(v[i], v[i + 1], v[i + 2], v[i + 3]);
    } else if constexpr (DL == 2) {
        *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]);
    } else {
        p[0] = v[0];
    }
}

// The arithmetic every attention_gqa form shares, so their bits agree: a lane's partial dot product of its DL query
// and key elements (fmaf in element order, before the lanes' sum), and a step's update of a lane's weighted V sums
// (ah * corr, then fmaf of each key's weight and value in key order).
template <int DL>
__device__ __forceinline__ float att_dot(const float (&qh)[DL], const float (&kr)[DL]) {
    float a = 0.f;
#pragma unroll
    for (int i = 0; i < DL; i++) a = fmaf(qh[i], kr[i], a);
    return a;
}

template <int DL>
__device__ __forceinline__ void att_weigh_v(float (&ah)[DL], float corr, const float (&e)[ATT_KB],
                                            const float (&vr)[ATT_KB][DL]) {
#pragma unroll
    for (int i = 0; i < DL; i++) {
        float a = ah[i] * corr;
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) a = fmaf(e[b], vr[b][i], a);
        ah[i] = a;
    }
}

// PIPE (with LEAN): each lane's K/V elements of a warp's next step are copied to shared memory (cp.async, one stage
// of ATT_KB keys per lane: att_pipe_bytes in all) while the warp computes the present step, and the first step's copies
// are issued before the query rows are staged, so a block waits for about one load latency instead of one per step.
// A lane reads back only the bytes it copied, so the stage needs no barrier, and the values, hence the bits, are the
// register loads'. Its merge computes each warp's factor once per head instead of once per output element (the same
// expf of the same operands, the same fmaf chains).
template <int DL, int W, typename KV>
__host__ __device__ constexpr int att_pipe_bytes() { return W * ATT_KB * 2 * 32 * DL * (int) sizeof(KV); }

// One reduce-scatter round over lanes l and l ^ o of the first N of v: a lane keeps the half its bit o selects and adds
// its partner's values of that half (own + partner, as a butterfly's `s += shfl_xor(s, o)`).
template <int N>
__device__ __forceinline__ void att_rs_round(float (&v)[8], int o, bool hi) {
#pragma unroll
    for (int i = 0; i < N / 2; i++) {
        const float send = hi ? v[i] : v[i + N / 2], keep = hi ? v[i + N / 2] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, send, o);
    }
}

// The lean form's step of ATT_KB = 4 keys for ATT_HB = 4 heads (PIPE), with the arithmetic of LEAN's per-head loop.
// The dot products of keys 2g and 2g + 1 (group g; j = 4 * (b - 2g) + h) are summed over the lanes by a reduce-scatter
// with the butterfly's pairs (xor 16, 8, 4 halving the values, then xor 2 and 1 in full: the same additions of the
// same partial sums, so the same totals; lanes 4j..4j + 3 end with total j) instead of 8 butterflies, and each lane
// takes the expf of its own totals and of its head's correction (3 instead of 20 per lane), which the others read by
// shuffles. Heads h >= nh (zero query rows in LEAN's sm_q) are left out of the state updates, as in LEAN.
// The values are read from the lane's stage (PIPE) as needed: K first, then V after the scores, after which
// issue_next() copies the next step's keys over them (so kr and vr are not live together: no spills at 64 registers).
// A lane keeps the running maximum of its own head only (m_own; lanes 4h, h < 4, publish it for the merge): the
// step's maximum is taken over the owners of the head's 4 totals (xor 16) instead of the chain over m and each total.
// fmaxf's result is the same value in any order (NaN aside, which it skips either way) except for the sign of a zero
// maximum, and every maximum is only ever subtracted inside expf (corrections, weights, the merge's factors), where
// +0 and -0 give the same result: so the same bits.
template <int DL, int W, typename KV, typename F>
__device__ __forceinline__ void att_step_rs(const unsigned char* st, unsigned vm, const float* sq, float* so, int lane,
                                            int p0, int pos, int nh, float& m_own, float (&l)[ATT_HB],
                                            F issue_next) {
    constexpr int CB = DL * (int) sizeof(KV);
    auto fetch = [&](int plane, float (&r)[ATT_KB][DL]) {   // the step's keys (0: K, 1: V); zeros past pos
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            if (vm >> b & 1u) {
                att_load<DL, KV>(reinterpret_cast<const KV*>(st + (2 * b + plane) * 32 * CB), r[b]);
            } else {
#pragma unroll
                for (int i = 0; i < DL; i++) r[b][i] = 0.f;
            }
        }
    };
    float kr[ATT_KB][DL];
    fetch(0, kr);
    static_assert(ATT_KB == 4 && ATT_HB == 4, "two groups of 8 dot products per step");
    constexpr int D = DL * 32;
    const int jo = lane >> 2;                         // the lane's own totals: key 2g + (jo >> 2) of group g, head jo & 3
    float t[2];
#pragma unroll
    for (int g = 0; g < 2; g++) {
        float v[8];
#pragma unroll
        for (int h = 0; h < ATT_HB; h++) {
            float qh[DL];
            att_load<DL, float>(sq + h * D + lane * DL, qh);
#pragma unroll
            for (int bb = 0; bb < 2; bb++) v[4 * bb + h] = att_dot<DL>(qh, kr[2 * g + bb]);
        }
        att_rs_round<8>(v, 16, lane & 16);
        att_rs_round<4>(v, 8, lane & 8);
        att_rs_round<2>(v, 4, lane & 4);
        v[0] += __shfl_xor_sync(0xffffffffu, v[0], 2);
        v[0] += __shfl_xor_sync(0xffffffffu, v[0], 1);
        t[g] = v[0];
    }
    float vr[ATT_KB][DL];
    fetch(1, vr);
    issue_next();
    bool valid[2];
    float mx = -INFINITY;
#pragma unroll
    for (int g = 0; g < 2; g++) {
        valid[g] = p0 + (2 * g + (jo >> 2)) * W <= pos;
        if (valid[g]) mx = fmaxf(mx, t[g]);
    }
    const float mo = fmaxf(m_own, fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 16)));
    float eo[2];
#pragma unroll
    for (int g = 0; g < 2; g++) eo[g] = valid[g] ? expf(t[g] - mo) : 0.f;
    const float co = expf(m_own - mo);                // lanes 4h..4h + 3: head h's correction (0 on the first step)
    m_own = mo;
#pragma unroll
    for (int h = 0; h < ATT_HB; h++) {
        const float corr = __shfl_sync(0xffffffffu, co, 4 * h);
        float e[ATT_KB];
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) e[b] = __shfl_sync(0xffffffffu, eo[b >> 1], 4 * (4 * (b & 1) + h));
        if (h < nh) {
            float ls = l[h] * corr;
#pragma unroll
            for (int b = 0; b < ATT_KB; b++) ls += e[b];
            l[h] = ls;
            float ah[DL];
            att_load<DL, float>(so + h * D + lane * DL, ah);
            att_weigh_v<DL>(ah, corr, e, vr);
            att_store(so + h * D + lane * DL, ah);
        }
    }
}

template <int DL, int W, typename KV, bool LEAN, bool PIPE = false>
__device__ __forceinline__ void attention_gqa_body(
        const float* __restrict__ q, const KV* __restrict__ k_cache, const KV* __restrict__ v_cache,
        const int* __restrict__ positions, const int* __restrict__ token_seq, const int* __restrict__ block_tables,
        int max_blocks, int block_size, int heads, int kv_heads, int d, int hb, int window, float scale,
        float* __restrict__ out) {
    constexpr int D = DL * 32;
    __shared__ float sm_m[W][ATT_HB], sm_l[W][ATT_HB];
    __shared__ float sm_o[W][ATT_HB][D];
    __shared__ float sm_q[LEAN ? ATT_HB : 1][LEAN ? D : 1];   // LEAN: the block's scaled query rows
    __shared__ float sm_f[PIPE ? W : 1][ATT_HB];              // PIPE: the merge's factor per warp and head
    static_assert(!PIPE || LEAN, "PIPE is a form of LEAN");
    constexpr int CB = DL * (int) sizeof(KV);                 // PIPE: bytes per lane, key and plane
    static_assert(!PIPE || CB == 16 || CB == 8, "cp.async copies 16 or 8 bytes");
    extern __shared__ __align__(16) unsigned char att_stage[];
    const int group = heads / kv_heads;
    const int subs = (group + hb - 1) / hb;
    const int kvh = blockIdx.x / subs, sub = blockIdx.x % subs;
    const int h0 = kvh * group + sub * hb;
    const int nh = min(hb, group - sub * hb);
    const int t = blockIdx.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int kv_dim = kv_heads * D;
    // positions, token_seq and block_tables are the step's inputs written by the host (MixtralModel) before any of its
    // kernels, so they and the first step's slots are read before the PDL wait (ATT_EARLY, GK_ENTER_LATE); q and the
    // cache, written by the kernels before this one, after it
    const int pos = positions[t];
    const int start = window > 0 ? max(0, pos - window + 1) : 0;
    const int* table = block_tables + (long) token_seq[t] * max_blocks;
    // the cache slots of a step's keys (-1: past pos); the next step's are read from the block table while this
    // step's K/V rows load, so a step waits for one load latency instead of two. A block size that is a power of two
    // (the engine's 16) takes a shift and a mask instead of an integer division and remainder per key.
    int sl[ATT_KB];
    const int bs_shift = (block_size & (block_size - 1)) == 0 ? __ffs(block_size) - 1 : -1;
    auto slots = [&](int p0, int (&so)[ATT_KB]) {
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            const int p = p0 + b * W;
            so[b] = p > pos ? -1
                  : bs_shift >= 0 ? (table[p >> bs_shift] << bs_shift) + (p & (block_size - 1))
                                  : table[p / block_size] * block_size + p % block_size;
        }
    };
    slots(start + warp, sl);
    GK_WAIT;
    // PIPE: a lane's stage, key b and plane c (0: K, 1: V) at lane_stage + (2 * b + c) * 32 * CB
    const unsigned lane_stage = PIPE ? (unsigned) __cvta_generic_to_shared(att_stage) + (unsigned) ((warp * ATT_KB * 2 * 32 + lane) * CB) : 0u;
    unsigned vm = 0;                                          // PIPE: the staged step's keys with a slot (bit b)
    auto issue = [&](const int (&so)[ATT_KB]) {
        vm = 0;
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            if (so[b] >= 0) {
                const long base = (long) so[b] * kv_dim + kvh * D + lane * DL;
                const unsigned dk = lane_stage + (unsigned) (2 * b * 32 * CB), dv = dk + 32u * CB;
                if constexpr (CB == 16) {
                    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(dk), "l"(k_cache + base) : "memory");
                    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(dv), "l"(v_cache + base) : "memory");
                } else {
                    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" :: "r"(dk), "l"(k_cache + base) : "memory");
                    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" :: "r"(dv), "l"(v_cache + base) : "memory");
                }
                vm |= 1u << b;
            }
        }
        asm volatile("cp.async.commit_group;\n" ::: "memory");
    };
    if constexpr (PIPE) {
        if (start + warp <= pos) {                            // the warp's first step, then the slots of its second
            issue(sl);
            slots(start + warp + W * ATT_KB, sl);
        }
    }

    // LEAN keeps the scaled query rows (one copy per block) and each warp's weighted V sums (sm_o, where the merge
    // reads them) in shared memory instead of registers: the same values and the same fmaf chains, so the same bits,
    // at ~64 registers, so two 512-thread blocks share an SM and one block's dependent loads overlap the other's.
    float qv[LEAN ? 1 : ATT_HB][DL], acc[LEAN ? 1 : ATT_HB][DL], m[ATT_HB], l[ATT_HB];
    float m_own = -INFINITY;                                  // PIPE: the running maximum of head (lane >> 2) & 3
    if constexpr (LEAN) {
        for (int idx = threadIdx.x; idx < ATT_HB * D; idx += W * 32) {
            const int h = idx / D, c = idx % D;
            sm_q[h][c] = h < nh ? q[(long) t * heads * D + (h0 + h) * D + c] * scale : 0.f;
        }
#pragma unroll
        for (int h = 0; h < ATT_HB; h++) {
#pragma unroll
            for (int i = 0; i < DL; i++) sm_o[warp][h][lane * DL + i] = 0.f;
            m[h] = -INFINITY;
            l[h] = 0.f;
        }
        __syncthreads();
    } else {
#pragma unroll
        for (int h = 0; h < ATT_HB; h++) {
            if (h < nh) {
                att_load<DL, float>(q + (long) t * heads * D + (h0 + h) * D + lane * DL, qv[h]);
            } else {
#pragma unroll
                for (int i = 0; i < DL; i++) qv[h][i] = 0.f;
            }
#pragma unroll
            for (int i = 0; i < DL; i++) { qv[h][i] *= scale; acc[h][i] = 0.f; }
            m[h] = -INFINITY;
            l[h] = 0.f;
        }
    }
    for (int p0 = start + warp; p0 <= pos; p0 += W * ATT_KB) {
        if constexpr (PIPE) {
            asm volatile("cp.async.wait_all;\n" ::: "memory");
            att_step_rs<DL, W, KV>(att_stage + (warp * ATT_KB * 2 * 32 + lane) * CB, vm, &sm_q[0][0], &sm_o[warp][0][0],
                                   lane, p0, pos, nh, m_own, l, [&] {
                if (p0 + W * ATT_KB <= pos) {                 // the next step's copies into the stage just read
                    issue(sl);
                    slots(p0 + 2 * W * ATT_KB, sl);
                }
            });
            continue;
        }
        float kr[ATT_KB][DL], vr[ATT_KB][DL];
        if (!ATT_PREFETCH) slots(p0, sl);
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            if (sl[b] >= 0) {
                const long base = (long) sl[b] * kv_dim + kvh * D + lane * DL;
                att_load<DL, KV>(k_cache + base, kr[b]);
                att_load<DL, KV>(v_cache + base, vr[b]);
            } else {
#pragma unroll
                for (int i = 0; i < DL; i++) { kr[b][i] = 0.f; vr[b][i] = 0.f; }
            }
        }
        if (ATT_PREFETCH) slots(p0 + W * ATT_KB, sl);
#pragma unroll
        for (int h = 0; h < ATT_HB; h++) {
            if (h < nh) {
                float qh[DL];
                if constexpr (LEAN) att_load<DL, float>(&sm_q[h][lane * DL], qh);
                else {
#pragma unroll
                    for (int i = 0; i < DL; i++) qh[i] = qv[h][i];
                }
                float s[ATT_KB];
#pragma unroll
                for (int b = 0; b < ATT_KB; b++) s[b] = att_dot<DL>(qh, kr[b]);
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
                    for (int b = 0; b < ATT_KB; b++) s[b] += __shfl_xor_sync(0xffffffffu, s[b], o);
                }
                float mn = m[h];
#pragma unroll
                for (int b = 0; b < ATT_KB; b++) if (p0 + b * W <= pos) mn = fmaxf(mn, s[b]);
                const float corr = expf(m[h] - mn);          // 0 on the first step (m = -inf)
                float e[ATT_KB];
                float ls = l[h] * corr;
#pragma unroll
                for (int b = 0; b < ATT_KB; b++) {
                    e[b] = p0 + b * W <= pos ? expf(s[b] - mn) : 0.f;
                    ls += e[b];
                }
                l[h] = ls;
                m[h] = mn;
                float ah[DL];
                if constexpr (LEAN) att_load<DL, float>(&sm_o[warp][h][lane * DL], ah);
                else {
#pragma unroll
                    for (int i = 0; i < DL; i++) ah[i] = acc[h][i];
                }
                att_weigh_v<DL>(ah, corr, e, vr);
                if constexpr (LEAN) att_store(&sm_o[warp][h][lane * DL], ah);
                else {
#pragma unroll
                    for (int i = 0; i < DL; i++) acc[h][i] = ah[i];
                }
            }
        }
    }
#pragma unroll
    for (int h = 0; h < ATT_HB; h++) {
        if (h < nh) {
            if (lane == 0) {
                if constexpr (!PIPE) sm_m[warp][h] = m[h];
                sm_l[warp][h] = l[h];
            }
            if constexpr (!LEAN) {
#pragma unroll
                for (int i = 0; i < DL; i++) sm_o[warp][h][lane * DL + i] = acc[h][i];
            }
        }
    }
    if constexpr (PIPE) {                                     // lanes 0, 4, 8, 12: heads 0-3's maxima
        if (lane < 4 * ATT_HB && (lane & 3) == 0 && (lane >> 2) < nh) sm_m[warp][lane >> 2] = m_own;
    }
    __syncthreads();
    if constexpr (PIPE) {
        if (threadIdx.x < W * ATT_HB) {
            const int w = threadIdx.x / ATT_HB, h = threadIdx.x % ATT_HB;
            float mx = -INFINITY;
            for (int u = 0; u < W; u++) mx = fmaxf(mx, sm_m[u][h]);
            sm_f[w][h] = expf(sm_m[w][h] - mx);
        }
        __syncthreads();
    }
    for (int idx = threadIdx.x; idx < nh * D; idx += W * 32) {
        const int h = idx / D, c = idx % D;
        float mx = -INFINITY;
        if constexpr (!PIPE) for (int w = 0; w < W; w++) mx = fmaxf(mx, sm_m[w][h]);
        float ls = 0.f, o = 0.f;
        for (int w = 0; w < W; w++) {
            if (sm_l[w][h] == 0.f) continue;             // a warp that saw no key
            const float f = PIPE ? sm_f[w][h] : expf(sm_m[w][h] - mx);
            ls = fmaf(sm_l[w][h], f, ls);
            o = fmaf(sm_o[w][h][c], f, o);
        }
        out[(long) t * heads * D + (h0 + h) * D + c] = o / ls;
    }
}

#define ATT_GQA(SUFFIX, KV, DL, W) ATT_GQA_K(attention_gqa_##SUFFIX##_dl##DL, KV, DL, W, false, 1)
// attention_gqa_lean_*: LEAN at two blocks per SM (CudaBackend.attLean picks it for grids of several waves)
#define ATT_GQA_K(NAME, KV, DL, W, LEAN, MINB) ATT_GQA_KP(NAME, KV, DL, W, LEAN, MINB, false)
#define ATT_GQA_KP(NAME, KV, DL, W, LEAN, MINB, PIPE)                                                           \
    GPTQ4J_KERNEL void __launch_bounds__(W * 32, MINB) NAME(                                                     \
            const float* q, const KV* k_cache, const KV* v_cache, const int* positions, const int* token_seq,    \
            const int* block_tables, int max_blocks, int block_size, int heads, int kv_heads, int d, int hb,     \
            int window, float scale, float* out) {                                                               \
        GK_ENTER_LATE;                                                                                           \
        if (!ATT_EARLY) GK_WAIT;                                                                                 \
        attention_gqa_body<DL, W, KV, LEAN, PIPE>(q, k_cache, v_cache, positions, token_seq, block_tables, max_blocks, \
                                      block_size, heads, kv_heads, d, hb, window, scale, out);                   \
    }
#define ATT_GQA_ALL(SUFFIX, KV) ATT_GQA(SUFFIX, KV, 1, 16) ATT_GQA(SUFFIX, KV, 2, 16) ATT_GQA(SUFFIX, KV, 4, 16) \
    ATT_GQA(SUFFIX, KV, 8, 8)
ATT_GQA_ALL(f32, float)
ATT_GQA_ALL(f16, __half)
ATT_GQA_K(attention_gqa_lean_f32_dl4, float, 4, 16, true, 2)
ATT_GQA_K(attention_gqa_lean_f16_dl4, __half, 4, 16, true, 2)
// attention_gqa_pipe_*: PIPE, launched with att_pipe_bytes<4, 16, KV>() of dynamic shared memory (CudaBackend.ATT_PIPE)
ATT_GQA_KP(attention_gqa_pipe_f32_dl4, float, 4, 16, true, 2, true)
ATT_GQA_KP(attention_gqa_pipe_f16_dl4, __half, 4, 16, true, 2, true)

// Copies one block's K and V in every layer (copy-on-write of a shared prefix), as 32-bit words;
// grid (ceil(words/256), layers*2).
GPTQ4J_KERNEL void kv_copy_block(uint32_t* cache, long plane_words, int from, int to, long block_words) {
    GK_ENTER;
    const long e = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= block_words) return;
    uint32_t* base = cache + (long) blockIdx.y * plane_words;
    base[(long) to * block_words + e] = base[(long) from * block_words + e];
}
