// GPTQ matrix products: y[r][o] = sum_i x[r][i] * W[o][i] with W dequantised from packed integers.
//
// Device layout (built once at load by gptq_repack / gptq_unpack_zeros from the AutoGPTQ v1 tensors):
//   qweight  uint32 [in/32*BITS][out]: input rows sorted by group (act order undone), each column one
//            little-endian bit stream; a chunk of 32 inputs occupies BITS words of a column.
//   perm     int [in]: sorted input j reads activation column perm[j] (null when g_idx is already sorted).
//   chunk_group int [in/32]: the group of each chunk of 32 sorted inputs (groups are whole chunks).
//   sz       half2 [groups][out]: (scale, zero) with zero the effective zero point (stored + 1).
//
// One kernel serves every batch size: a block owns 32 outputs x TT rows, its 8 warps take interleaved
// chunks of 32 inputs (split-K), and the 8 partial sums are added in a fixed order. Per output and row the
// arithmetic is the same for every TT, so T=1 (GEMV) and T=1000 (tiled GEMM) give bit-identical rows.
#include "common.cuh"

#define GQ_WARPS 8          // split-K slices (warps per block)
#define GQ_CHUNK 32         // inputs per chunk

template <int BITS>
__device__ __forceinline__ uint32_t gq_extract(const uint32_t (&w)[BITS], int k) {
    const int bit = k * BITS;
    const int word = bit >> 5;
    const int shift = bit & 31;
    uint32_t v = w[word] >> shift;
    if (shift + BITS > 32) v |= w[word + 1] << (32 - shift);
    return v & ((1u << BITS) - 1u);
}

// x: [*][in] activations; x_rows: optional map from tile row to x row; seg: optional {offset, count} of the
// rows this launch owns (an expert's segment of a grouped batch); rows r in [0,count) read x row
// x_rows ? x_rows[offset+r] : offset+r and write y row offset+r.
template <int BITS, int TT>
__device__ __forceinline__ void gptq_linear_body(
        const float* __restrict__ x, const int* __restrict__ x_rows, const int* __restrict__ seg, int T,
        const uint32_t* __restrict__ qw, const __half2* __restrict__ sz, const int* __restrict__ perm,
        const int* __restrict__ chunk_group, int in, int out, float* __restrict__ y) {
    __shared__ float xs[TT * GQ_WARPS * GQ_CHUNK];   // x tile [TT][256]; reused as partials [8][TT][32]
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 32 + tx;
    const int o = blockIdx.x * 32 + tx;
    const int offset = seg ? seg[0] : 0;
    const int count = seg ? seg[1] : T;
    const int r0 = blockIdx.y * TT;
    if (r0 >= count) return;                           // surplus tile of a worst-case grid

    float acc[TT];
#pragma unroll
    for (int t = 0; t < TT; t++) acc[t] = 0.f;

    const int chunks = in / GQ_CHUNK;
    for (int c0 = 0; c0 < chunks; c0 += GQ_WARPS) {
        __syncthreads();
        for (int idx = tid; idx < TT * GQ_WARPS * GQ_CHUNK; idx += GQ_WARPS * 32) {
            const int t = idx / (GQ_WARPS * GQ_CHUNK), k = idx % (GQ_WARPS * GQ_CHUNK);
            const int j = c0 * GQ_CHUNK + k, r = r0 + t;
            float v = 0.f;
            if (r < count && j < in) {
                const long row = x_rows ? x_rows[offset + r] : offset + r;
                v = x[row * in + (perm ? perm[j] : j)];
            }
            xs[idx] = v;
        }
        __syncthreads();
        const int c = c0 + ty;
        if (c < chunks && o < out) {
            const float2 s_z = __half22float2(sz[(long) chunk_group[c] * out + o]);
            uint32_t w[BITS];
#pragma unroll
            for (int b = 0; b < BITS; b++) w[b] = qw[((long) c * BITS + b) * out + o];
            float cs[TT];
#pragma unroll
            for (int t = 0; t < TT; t++) cs[t] = 0.f;
#pragma unroll
            for (int k = 0; k < GQ_CHUNK; k++) {
                const float wq = (float) gq_extract<BITS>(w, k) - s_z.y;
#pragma unroll
                for (int t = 0; t < TT; t++) cs[t] = fmaf(xs[t * GQ_WARPS * GQ_CHUNK + ty * GQ_CHUNK + k], wq, cs[t]);
            }
#pragma unroll
            for (int t = 0; t < TT; t++) acc[t] = fmaf(cs[t], s_z.x, acc[t]);
        }
    }
    __syncthreads();
    float* part = xs;                                  // [8][TT][32]
#pragma unroll
    for (int t = 0; t < TT; t++) part[(ty * TT + t) * 32 + tx] = acc[t];
    __syncthreads();
    for (int idx = tid; idx < TT * 32; idx += GQ_WARPS * 32) {
        const int t = idx / 32, lane = idx % 32;
        const int oo = blockIdx.x * 32 + lane, r = r0 + t;
        float s = part[t * 32 + lane];
#pragma unroll
        for (int wv = 1; wv < GQ_WARPS; wv++) s += part[(wv * TT + t) * 32 + lane];
        if (r < count && oo < out) y[(long) (offset + r) * out + oo] = s;
    }
}

#define GQ_INSTANCE(BITS, TT)                                                                              \
    GPTQ4J_KERNEL void __launch_bounds__(256) gptq_linear_b##BITS##_t##TT(                                \
            const float* x, const int* x_rows, const int* seg, int T, const uint32_t* qw, const __half2* sz, \
            const int* perm, const int* chunk_group, int in, int out, float* y) {                          \
        gptq_linear_body<BITS, TT>(x, x_rows, seg, T, qw, sz, perm, chunk_group, in, out, y);              \
    }
#define GQ_ALL_TT(BITS) GQ_INSTANCE(BITS, 1) GQ_INSTANCE(BITS, 2) GQ_INSTANCE(BITS, 4) GQ_INSTANCE(BITS, 8) \
    GQ_INSTANCE(BITS, 16)
GQ_ALL_TT(2)
GQ_ALL_TT(3)
GQ_ALL_TT(4)
GQ_ALL_TT(8)

// One-time repack at load: sorted input j takes the checkpoint's input src_row[j]; a thread writes the BITS
// words of one (chunk, output). raw: the checkpoint qweight [in*BITS/32][out].
GPTQ4J_KERNEL void gptq_repack(const uint32_t* raw, const int* src_row, int in, int out, int bits,
                               uint32_t* packed) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    const int c = blockIdx.y;
    if (o >= out) return;
    uint32_t w[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const uint32_t mask = (1u << bits) - 1u;
    for (int k = 0; k < GQ_CHUNK; k++) {
        const int i = src_row ? src_row[c * GQ_CHUNK + k] : c * GQ_CHUNK + k;
        const long sbit = (long) i * bits;
        const int sword = (int) (sbit >> 5), sshift = (int) (sbit & 31);
        uint64_t v = raw[(long) sword * out + o] >> sshift;
        if (sshift + bits > 32) v |= (uint64_t) raw[(long) (sword + 1) * out + o] << (32 - sshift);
        const uint32_t q = (uint32_t) v & mask;
        const int dbit = k * bits, dword = dbit >> 5, dshift = dbit & 31;
        w[dword] |= q << dshift;
        if (dshift + bits > 32) w[dword + 1] |= q >> (32 - dshift);
    }
    for (int b = 0; b < bits; b++) packed[((long) c * bits + b) * out + o] = w[b];
}

// (scale, zero) per group and output: qzeros [groups][out*bits/32] as bit streams along the output dim,
// holding zero-1 (v1 storage); scales fp16 [groups][out].
GPTQ4J_KERNEL void gptq_unpack_zeros(const uint32_t* qzeros, const __half* scales, int groups, int out, int bits,
                                     __half2* sz) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    const int g = blockIdx.y;
    if (o >= out || g >= groups) return;
    const long words = (long) out * bits / 32;
    const long bit = (long) o * bits;
    const long word = bit >> 5;
    const int shift = (int) (bit & 31);
    uint64_t v = qzeros[g * words + word] >> shift;
    if (shift + bits > 32) v |= (uint64_t) qzeros[g * words + word + 1] << (32 - shift);
    const int z = (int) (v & ((1u << bits) - 1u)) + 1;
    sz[(long) g * out + o] = __halves2half2(scales[(long) g * out + o], __int2half_rn(z));
}
