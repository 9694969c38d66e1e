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
        GK_ENTER;                                                                                          \
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
    GK_ENTER;
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
    GK_ENTER;
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

// =====================================================================================================
// Split-K GPTQ products (the fast path; gptq_linear_* above stays as the reference kernel).
//
// The arithmetic of one (row, output) is fixed by the weight's shape alone, never by the batch:
//   chunk c (32 sorted inputs):  cs_c = sum_{k=0..31} x[perm[32c+k]] * (q - z)      (fmaf, k ascending)
//   split s (chunks [s*cpb, s*cpb+cpb)):  p_s = sum_c cs_c * scale_c               (fmaf, c ascending)
//   y = ((p_0 + p_1) + p_2) + ... + p_{ksplit-1}                                    (__fadd_rn)
// cpb (chunks per split) is chosen once per weight at load. Small batches give every split its own block
// and write p_s to a partial buffer that a reduce kernel folds (or that the MoE epilogues fold); large
// batches loop over the splits inside the block. Both produce the same bits, for every tile height.
//
// Dequantisation without shifts or int->float conversions: a field of a packed word is masked in place
// (or after one shared shift by 12, or a funnel shift when it straddles words) and OR-ed into the mantissa
// of 2^23, so the float is 2^23 + q*2^e exactly; subtracting 2^23 + z*2^e leaves (q - z)*2^e exactly. The
// activation is staged pre-multiplied by 2^-e, so each product x*2^-e * (q-z)*2^e equals x*(q-z) bit for bit.
// =====================================================================================================

struct GqMat {                 // one prepared matrix (device pointers; perm may be null)
    const uint32_t* qw;
    const __half2* sz;
    const int* perm;
    const int* cg;
};

// Power of two carried by field k (0..31) of a BITS-bit chunk as gq_field extracts it.
__host__ __device__ constexpr int gq_exp(int k, int bits) {
    return ((k * bits) & 31) + bits > 32 ? 0 : (((k * bits) & 31) + bits <= 20 ? ((k * bits) & 31) : ((k * bits) & 31) - 12);
}

template <int BITS>
__device__ __forceinline__ uint32_t gq_field(const uint32_t (&w)[BITS], int k) {
    constexpr uint32_t MASK = (1u << BITS) - 1u;
    const int bit = k * BITS, wi = bit >> 5, sh = bit & 31;
    if (sh + BITS > 32) return __funnelshift_r(w[wi], w[(wi + 1) % BITS], sh) & MASK;
    if (sh + BITS <= 20) return w[wi] & (MASK << sh);
    return (w[wi] >> 12) & (MASK << (sh - 12));
}

template <int OPT> struct GqVec;
template <> struct GqVec<4> { typedef uint4 T; };
template <> struct GqVec<2> { typedef uint2 T; };
template <> struct GqVec<1> { typedef uint32_t T; };

template <int OPT>
__device__ __forceinline__ void gq_load(const uint32_t* p, uint32_t (&v)[OPT]) {
    if constexpr (OPT == 4) { const uint4 u = __ldcs(reinterpret_cast<const uint4*>(p)); v[0] = u.x; v[1] = u.y; v[2] = u.z; v[3] = u.w; }
    else if constexpr (OPT == 2) { const uint2 u = __ldcs(reinterpret_cast<const uint2*>(p)); v[0] = u.x; v[1] = u.y; }
    else { v[0] = __ldcs(p); }
}

// gq_pipe (below): grid (ceil(out / (blockDim.x*OPT)), split_mode ? ksplit : 1, tiles*nmat); block blockDim.x
// threads, each OPT adjacent outputs x TT rows. Matrix m = z % nmat is expert e = m % nexp of projection
// p = m / nexp; segs (optional) gives expert e's rows {offset, count}; x_rows (optional) maps them to x rows.
// split_mode 1: out[p*proj_stride + (s*rows_cap + row)*outN + o] = p_s; 0: out[p*proj_stride + row*outN + o] = y.
// dynamic shared memory: TT * cpb * 32 floats.
// ---- gq_pipe: software-pipelined split-K (the round-1 gq_split arithmetic, bit for bit) ----
// A thread keeps two register batches of U chunks: the next batch's weight and scale/zero loads are issued before
// the current batch is dequantised, and the block's first batch is issued before x is staged, so the staging
// latency overlaps the first weight loads. The inner loop runs k outside the outputs, so each staged x value
// is read from shared memory once for the thread's OPT outputs (float4 reads at TT <= 2).
template <int BITS, int OPT, int U>
struct GqBatch {
    uint32_t w[U][BITS][OPT];
    uint32_t sz[U][OPT];
};

template <int BITS, int OPT, int U>
__device__ __forceinline__ void gq_load_batch(const GqMat& mat, int c, int c_hi, int outN, int o0,
                                              GqBatch<BITS, OPT, U>& b) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        if (c + u < c_hi) {
#pragma unroll
            for (int q = 0; q < BITS; q++) gq_load<OPT>(mat.qw + ((long) (c + u) * BITS + q) * outN + o0, b.w[u][q]);
            gq_load<OPT>(reinterpret_cast<const uint32_t*>(mat.sz + (long) mat.cg[c + u] * outN + o0), b.sz[u]);
        }
    }
}

template <int BITS, int TT, int OPT, int U>
__device__ __forceinline__ void gq_pipe_body(
        const GqMat* __restrict__ mats, int nexp, int nmat, const int* __restrict__ segs,
        const float* __restrict__ x, const int* __restrict__ x_rows, int T, int in, int outN, int cpb, int ksplit,
        int split_mode, int rows_cap, long proj_stride, float* __restrict__ outp) {
    extern __shared__ float xs[];
    const int m = blockIdx.z % nmat, tile = blockIdx.z / nmat;
    const int e = m % nexp, proj = m / nexp;
    const int offset = segs ? segs[2 * e] : 0;
    const int count = segs ? segs[2 * e + 1] : T;
    const int r0 = tile * TT;
    if (r0 >= count) return;                          // surplus tile (uniform over the block)
    const GqMat mat = mats[m];
    const int o0 = (blockIdx.x * blockDim.x + threadIdx.x) * OPT;
    const bool active = o0 < outN;
    const int chunks = in >> 5;
    const int stride = cpb * 32;
    const int s_lo = split_mode ? blockIdx.y : 0, s_hi = split_mode ? blockIdx.y + 1 : ksplit;
    float* dst = outp + proj * proj_stride;

    GqBatch<BITS, OPT, U> cur, nxt;
    if (active) gq_load_batch<BITS, OPT, U>(mat, s_lo * cpb, min(chunks, s_lo * cpb + cpb), outN, o0, cur);
    float y[TT][OPT];
    for (int s = s_lo; s < s_hi; s++) {
        const int c_lo = s * cpb, c_hi = min(chunks, c_lo + cpb), nk = (c_hi - c_lo) * 32;
        __syncthreads();
        for (int idx = threadIdx.x; idx < TT * nk; idx += blockDim.x) {
            const int t = idx / nk, kk = idx - t * nk, r = r0 + t;
            float v = 0.f;
            if (r < count) {
                const long row = x_rows ? x_rows[offset + r] : offset + r;
                const int j = c_lo * 32 + kk;
                v = x[row * in + (mat.perm ? mat.perm[j] : j)] * __int_as_float((127 - gq_exp(kk & 31, BITS)) << 23);
            }
            xs[t * stride + kk] = v;
        }
        __syncthreads();
        float acc[TT][OPT];
#pragma unroll
        for (int t = 0; t < TT; t++)
#pragma unroll
            for (int j = 0; j < OPT; j++) acc[t][j] = 0.f;
        if (active) {
            for (int c = c_lo; c < c_hi; c += U) {
                const bool more = c + U < c_hi;
                const int nc = more ? c + U : c_hi;
                const int nhi = more ? c_hi : min(chunks, c_hi + cpb);
                if (more || s + 1 < s_hi) gq_load_batch<BITS, OPT, U>(mat, nc, nhi, outN, o0, nxt);
#pragma unroll
                for (int u = 0; u < U; u++) {
                    if (c + u < c_hi) {
                        const float* xc = xs + (c + u - c_lo) * 32;
                        float sc[OPT], zf[OPT];
                        float cs[TT][OPT];
#pragma unroll
                        for (int j = 0; j < OPT; j++) {
                            const float2 s_z = __half22float2(*reinterpret_cast<const __half2*>(&cur.sz[u][j]));
                            sc[j] = s_z.x;
                            zf[j] = s_z.y;
#pragma unroll
                            for (int t = 0; t < TT; t++) cs[t][j] = 0.f;
                        }
#pragma unroll
                        for (int k4 = 0; k4 < 32; k4 += 4) {
                            float xv[TT][4];
#pragma unroll
                            for (int t = 0; t < TT; t++) {
                                if constexpr (TT <= 2) {
                                    const float4 a = *reinterpret_cast<const float4*>(xc + t * stride + k4);
                                    xv[t][0] = a.x; xv[t][1] = a.y; xv[t][2] = a.z; xv[t][3] = a.w;
                                } else {
#pragma unroll
                                    for (int i = 0; i < 4; i++) xv[t][i] = xc[t * stride + k4 + i];
                                }
                            }
#pragma unroll
                            for (int i = 0; i < 4; i++) {
                                const int k = k4 + i;
#pragma unroll
                                for (int j = 0; j < OPT; j++) {
                                    uint32_t w[BITS];
#pragma unroll
                                    for (int q = 0; q < BITS; q++) w[q] = cur.w[u][q][j];
                                    const float dq = __int_as_float(gq_field<BITS>(w, k) | 0x4B000000u) - fmaf(zf[j], (float) (1u << gq_exp(k, BITS)), 8388608.f);
#pragma unroll
                                    for (int t = 0; t < TT; t++) cs[t][j] = fmaf(xv[t][i], dq, cs[t][j]);
                                }
                            }
                        }
#pragma unroll
                        for (int t = 0; t < TT; t++)
#pragma unroll
                            for (int j = 0; j < OPT; j++) acc[t][j] = fmaf(cs[t][j], sc[j], acc[t][j]);
                    }
                }
                cur = nxt;
            }
        }
#pragma unroll
        for (int t = 0; t < TT; t++)
#pragma unroll
            for (int j = 0; j < OPT; j++) y[t][j] = s == s_lo ? acc[t][j] : __fadd_rn(y[t][j], acc[t][j]);
        if (split_mode && active) {
#pragma unroll
            for (int t = 0; t < TT; t++) {
                if (r0 + t < count) {
                    float* d = dst + ((long) s * rows_cap + offset + r0 + t) * outN + o0;
#pragma unroll
                    for (int j = 0; j < OPT; j++) d[j] = acc[t][j];
                }
            }
        }
    }
    if (!split_mode && active) {
#pragma unroll
        for (int t = 0; t < TT; t++) {
            if (r0 + t < count) {
                float* d = dst + (long) (offset + r0 + t) * outN + o0;
#pragma unroll
                for (int j = 0; j < OPT; j++) d[j] = y[t][j];
            }
        }
    }
}

#define GQP_INSTANCE(BITS, TT, OPT, U)                                                                         \
    GPTQ4J_KERNEL void __launch_bounds__(256) gq_pipe##U##_b##BITS##_t##TT(                                   \
            const GqMat* mats, int nexp, int nmat, const int* segs, const float* x, const int* x_rows, int T,    \
            int in, int outN, int cpb, int ksplit, int split_mode, int rows_cap, long proj_stride, float* out) { \
        GK_ENTER;                                                                                                \
        gq_pipe_body<BITS, TT, OPT, U>(mats, nexp, nmat, segs, x, x_rows, T, in, outN, cpb, ksplit, split_mode, \
                                       rows_cap, proj_stride, out);                                            \
    }
#define GQP_ALL(BITS) GQP_INSTANCE(BITS, 1, 4, 1) GQP_INSTANCE(BITS, 2, 4, 2) \
    GQP_INSTANCE(BITS, 4, 2, 2) GQP_INSTANCE(BITS, 8, 2, 2) GQP_INSTANCE(BITS, 16, 1, 2)
GQP_ALL(2)
GQP_ALL(3)
GQP_ALL(4)
GQP_ALL(8)

// y[i] = fold over the ksplit partials part[s*plane + i], i in [0, n).
// grid (ceil(n/256), 1 or 2): blockIdx.y = 1 folds a second product's partials (at part + pstride) into y2
GPTQ4J_KERNEL void gq_reduce(const float* __restrict__ part, int ksplit, long plane, long n, float* y, const float* res,
                             long pstride, float* y2) {
    GK_ENTER;
    const long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    if (blockIdx.y) { part += pstride; y = y2; }
    const float s = gk_fold(part, ksplit, plane, i);
    y[i] = res ? res[i] + s : s;   // res: a residual stream the product is added to (y may be res), as add_inplace
}

// ---- synthetic weights, generated on the device (the bench: no 24 GB file) ----

__device__ __forceinline__ uint32_t gq_hash(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return (uint32_t) x;
}

// n random 32-bit words.
GPTQ4J_KERNEL void fill_random_u32(uint32_t* p, long n, unsigned long long seed) {
    GK_ENTER;
    for (long i = (long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x)
        p[i] = gq_hash(seed * 0x9E3779B97F4A7C15ull + (uint64_t) i);
}

// n fp16 values uniform in [lo, hi).
GPTQ4J_KERNEL void fill_random_f16(__half* p, long n, unsigned long long seed, float lo, float hi) {
    GK_ENTER;
    for (long i = (long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x)
        p[i] = __float2half_rn(lo + (hi - lo) * (gq_hash(seed * 0x9E3779B97F4A7C15ull + (uint64_t) i) >> 8) * (1.f / 16777216.f));
}

// n (scale, zero) pairs: scale in [0.002, 0.006), effective zero (the checkpoint's stored zero + 1) 2^(bits-1) with sym
// (as every published Mixtral GPTQ branch), else uniform in [1, 2^bits].
GPTQ4J_KERNEL void fill_random_sz(__half2* p, long n, unsigned long long seed, int bits, int sym) {
    GK_ENTER;
    for (long i = (long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        const uint32_t h = gq_hash(seed * 0x9E3779B97F4A7C15ull + (uint64_t) i);
        const float sc = 0.002f + 0.004f * ((h >> 8) & 0xFFFF) * (1.f / 65536.f);
        const int z = sym ? 1 << (bits - 1) : (int) (h & ((1u << bits) - 1u)) + 1;
        p[i] = __halves2half2(__float2half_rn(sc), __int2half_rn(z));
    }
}

// bench --zeros centered: codes symmetric about the zero point 2^(bits-1). Every field of the tensor-core layout
// (gq_mma.cu's layout) that holds 0 becomes 2^(bits-1), so the codes 1 .. 2^bits - 1 are equally likely, the zero point twice as
// likely, and their mean is the zero point, as a trained checkpoint's codes centre on theirs (uniform codes over
// 0 .. 2^bits - 1 average half a step below it). 3-bit words come in triples 32 apart (gm_word<3>): five fields per
// 16-bit half in each word, and a sixteenth from bit 15 of the three (bit 2, the zero point's, in the third word).
GPTQ4J_KERNEL void centre_codes(uint32_t* p, long n, int bits) {
    GK_ENTER;
    const uint32_t z = 1u << (bits - 1), mask = (1u << bits) - 1u;
    const long stride = (long) gridDim.x * blockDim.x;
    if (bits != 3) {
        for (long i = (long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
            const uint32_t w = p[i];
            uint32_t r = 0;
            for (int s = 0; s < 32; s += bits) {
                const uint32_t f = (w >> s) & mask;
                r |= (f ? f : z) << s;
            }
            p[i] = r;
        }
        return;
    }
    for (long t = (long) blockIdx.x * blockDim.x + threadIdx.x; t < n / 3; t += stride) {
        const long base = (t >> 5) * 96 + (t & 31);
        uint32_t w[3] = {p[base], p[base + 32], p[base + 64]};
        for (int h = 0; h < 32; h += 16) {
            for (int b = 0; b < 3; b++)
                for (int s = h; s < h + 15; s += 3)
                    if (((w[b] >> s) & 7u) == 0) w[b] |= z << s;
            if ((((w[0] | w[1] | w[2]) >> (h + 15)) & 1u) == 0) w[2] |= 1u << (h + 15);
        }
        p[base] = w[0]; p[base + 32] = w[1]; p[base + 64] = w[2];
    }
}
