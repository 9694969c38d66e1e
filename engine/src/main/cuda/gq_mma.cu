// GPTQ products on the tensor cores (mma.sync m16n8k16, fp16 inputs, fp32 accumulation), one kernel for
// every batch size: T = 1 decode and T = 256 prefill run the same per-(token, output) arithmetic, so a token's
// result never depends on the other tokens of the step (batch invariance).
//
// Operands. A = weights, 16 outputs x 16 inputs per mma, dequantised in registers to the exact fp16 integers
// (q - z): the field is masked into the mantissa of 1024.0 (0x6400 | q) and 1024 + z is subtracted, both exact
// (4-bit outputs g+8 take their fields in place as 1024 + 16q minus 1024 + 16z, i.e. 16(q - z), and 3-bit outputs
// g+8 theirs as 1024 + 8q minus 1024 + 8z; the 1/16 or 1/8 goes into the split's scale factor; gq_mma_zeros
// formats the zero constants at load).
// B = activations, 16 inputs x 8 tokens. A float32 activation is not an fp16 value, so each is split into
// hi = fp16(x') and lo = fp16(x' - hi) (x' = x * 2^-e, see below) and two mma run per tile: hi + lo carries 22
// significant bits, the products with the integer weights are exact, and the sums are fp32. The result is as
// accurate as the float32 SIMT kernels (GPTQ linear test: < 1e-5 relative against float64).
// Range: e is chosen per (token, split) from that token's largest |x| in the split's inputs, so x' stays inside
// fp16's range (and lo normal down to 2^-17 of that largest value); the split's sum is scaled back by 2^e.
//
// Arithmetic of one (token, output), fixed by the weight's shape only:
//   scale period u (sp chunks of 32 sorted inputs that share one group, 2sp k16 tiles kt ascending):
//                                               t_u = one mma chain over kt of (A_kt, B_kt hi) then (A_kt, B_kt lo)
//                                               (one chain: as fast as two, and fewer registers)
//   split s (chunks [s*cpb, (s+1)*cpb)):         a_s = fmaf(t_u, scale_u, a_s), u ascending;
//                                               p_s = a_s * 2^e_s (* 1/16 or 1/8 for 4- or 3-bit outputs g+8), exact
//   y = ((p_0 + p_1) + p_2) + ...                 (__fadd_rn, in the kernel or in the fold epilogues)
// sp (1, 2, 4, 8 or 16, dividing cpb) is fixed per weight at load (CudaGptq.scalePeriod): the largest period whose
// aligned runs of chunks lie in one group (4 for 128-input groups), so the scale is applied once per group, not per chunk.
// The split layout of the outputs is the one of the SIMT split-K kernels, so the fold epilogues are shared.
//
// Weight layout (gq_mma_repack): inputs sorted by group and padded to KP = 64*ceil(in/64), outputs padded to
// OP = 16*ceil(out/16). A super-tile is 16 outputs x 64 inputs = 4 k16 tiles; lane l (g = l/4, t = l%4) of
// the warp that owns it needs the 16 fp16 pairs P = 4*kt + p (kt = k16 tile, p = A register):
//   p = 0: output g,   inputs 16kt + 2t, +1      p = 1: output g+8, the same inputs
//   p = 2: output g,   inputs 16kt + 2t+8, +9    p = 3: output g+8, the same inputs
// stored in BITS words per lane, pair P's low input in the low 16 bits of its word and the high input in the
// high 16 bits (both at the same shift):
//   2/4/8 bits: word P / (16/BITS), shift BITS * (P % (16/BITS));   words [otile][st][lane][BITS]
//   3 bits: P < 15: word P/5, shift 3*(P%5); P = 15: bit 15 (low) / 31 (high) of words 0, 1, 2 (value bits 0, 1, 2);
//           words [otile][st][BITS][lane] (12-byte lanes would not coalesce)
#include "common.cuh"

#define GM_NW 4   // warps per block; each owns one 16-output tile
#define GM_PAD 4  // uint4 of padding per token row of a shared-memory window (bank conflicts)

template <int BITS>
__host__ __device__ constexpr long gm_word(long ot, int kst, int st, int lane, int b) {
    return BITS == 3 ? ((ot * kst + st) * 3 + b) * 32 + lane : ((ot * kst + st) * 32 + lane) * BITS + b;
}

// Pair P of a lane's super-tile at 2 bits, masked: the low field in bits [0, 2), the high one in [16, 18). (3, 4 and 8
// bits: gm_dequant takes their fields in place.)
__device__ __forceinline__ uint32_t gm_pair2(const uint32_t (&w)[2], int P) {
    return (w[P >> 3] >> (2 * (P & 7))) & 0x00030003u;
}

template <int BITS>
struct GmStage {                // one super-tile of a lane, in registers
    uint32_t w[BITS];
    uint32_t sz[4];             // (scale, zero constant) half2: chunk 0 output g, chunk 0 g+8, chunk 1 g, chunk 1 g+8
};

// Loads one super-tile of a lane: its BITS weight words at p, and the (scale, zero) of its two chunks c2, c2 + 1
// for its outputs g (szl) and g+8 (szh). The chunks' groups are c >> cgl when the weight's groups are uniform
// (cgl >= 0, CudaGptq.groupShift), else read from cg (a dependent load before the scale loads).
template <int BITS, bool LOADW = true>
__device__ __forceinline__ void gm_load(const uint32_t* __restrict__ p, const int* __restrict__ cg, int c2, int cgl,
                                        const uint32_t* __restrict__ szl, const uint32_t* __restrict__ szh, int outN,
                                        GmStage<BITS>& b) {
    if constexpr (!LOADW) {
        // weights staged through shared memory (gm_copy_w): only the scales here
    } else if constexpr (BITS == 4) {
        const uint4 u = __ldcs(reinterpret_cast<const uint4*>(p));
        b.w[0] = u.x; b.w[1] = u.y; b.w[2] = u.z; b.w[3] = u.w;
    } else if constexpr (BITS == 8) {
        const uint4 u = __ldcs(reinterpret_cast<const uint4*>(p)), v = __ldcs(reinterpret_cast<const uint4*>(p) + 1);
        b.w[0] = u.x; b.w[1] = u.y; b.w[2] = u.z; b.w[3] = u.w; b.w[4] = v.x; b.w[5] = v.y; b.w[6] = v.z; b.w[7] = v.w;
    } else if constexpr (BITS == 2) {
        const uint2 u = __ldcs(reinterpret_cast<const uint2*>(p));
        b.w[0] = u.x; b.w[1] = u.y;
    } else {
        b.w[0] = __ldcs(p); b.w[1] = __ldcs(p + 32); b.w[2] = __ldcs(p + 64);
    }
    const int g0 = (cgl >= 0 ? c2 >> cgl : __ldg(cg + c2)) * outN;
    b.sz[0] = __ldg(szl + g0); b.sz[1] = __ldg(szh + g0);
    if (cgl >= 1) {                                   // uniform groups of >= 2 chunks: both chunks (c2 even) in one
        b.sz[2] = b.sz[0]; b.sz[3] = b.sz[1];
    } else {
        const int g1 = (cgl >= 0 ? (c2 + 1) >> cgl : __ldg(cg + c2 + 1)) * outN;
        b.sz[2] = __ldg(szl + g1); b.sz[3] = __ldg(szh + g1);
    }
}

// BITS = 16: an fp16 matrix [out][in] row-major (the lm_head), read in place: the A fragment of k16 tile kt is the
// words (row g, inputs 16kt + 2t) and (+8) of pa and the same of row g+8 at pb (pa, pb: the lane's words at the
// super-tile, word t of its rows). No scales, no zero points: the weights are the fp16 values themselves.
// The fp16 weights (the lm_head, 262 MB, read once per step) with an L2 evict-first policy, as gq_mmv's weights.
#ifndef GM_DENSE_EVICT_FIRST
#define GM_DENSE_EVICT_FIRST 1
#endif
__device__ __forceinline__ uint32_t gm_ld_ef(const uint32_t* p) {
#if GM_DENSE_EVICT_FIRST && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    uint64_t pol;
    uint32_t v;
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
    asm("ld.global.nc.L2::cache_hint.b32 %0, [%1], %2;\n" : "=r"(v) : "l"(p), "l"(pol));
    return v;
#else
    return __ldg(p);
#endif
}
__device__ __forceinline__ void gm_load_dense(const uint32_t* __restrict__ pa, const uint32_t* __restrict__ pb,
                                              uint32_t (&w)[16]) {
#pragma unroll
    for (int kt = 0; kt < 4; kt++) {
        w[4 * kt] = gm_ld_ef(pa + 8 * kt);
        w[4 * kt + 1] = gm_ld_ef(pb + 8 * kt);
        w[4 * kt + 2] = gm_ld_ef(pa + 8 * kt + 4);
        w[4 * kt + 3] = gm_ld_ef(pb + 8 * kt + 4);
    }
}

__device__ __forceinline__ void gm_mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// (x & mask) | 0x64006400 in one LOP3 (the compiler emits two)
template <uint32_t MASK>
__device__ __forceinline__ uint32_t gm_or1024(uint32_t x) {
    uint32_t r;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(r) : "r"(x), "n"(MASK), "n"(0x64006400u));
    return r;
}

__device__ __forceinline__ uint32_t gm_h2u(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 gm_u2h(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

// A (scale, zero constant) word as gq_mma_zeros formats it: the scale in the low half, the zero constant in the high.
__device__ __forceinline__ float gm_scale(uint32_t sz) { return __low2float(gm_u2h(sz)); }
__device__ __forceinline__ __half2 gm_zero(uint32_t sz) { return __high2half2(gm_u2h(sz)); }

// The end of a scale period for one accumulator fragment: a_s = fmaf(t_u, scale_u, a_s) (rows g: sl, rows g+8:
// sh), and the period's mma chain t_u restarts at 0. Every GPTQ mma kernel applies its periods through this.
__device__ __forceinline__ void gm_period_end(float (&acc)[4], float (&tmp)[4], float sl, float sh) {
    acc[0] = fmaf(tmp[0], sl, acc[0]);
    acc[1] = fmaf(tmp[1], sl, acc[1]);
    acc[2] = fmaf(tmp[2], sh, acc[2]);
    acc[3] = fmaf(tmp[3], sh, acc[3]);
#pragma unroll
    for (int r = 0; r < 4; r++) tmp[r] = 0.f;
}

// The multiple at which outputs g+8 (o % 16 >= 8) are dequantised: their fields are taken in place, 16(q - z) at 4
// bits and 8(q - z) at 3 (gm_dequant); the others as (q - z). gq_mma_zeros scales their zero constants by it and
// gm_factor_hi divides their sums by it.
__host__ __device__ constexpr int gm_hi_mult(int bits) { return bits == 4 ? 16 : bits == 3 ? 8 : 1; }

// The factor p_s = a_s * f of rows g+8 (f = 2^e of the token and split), their sums carrying the 1/16 or 1/8 of
// gm_hi_mult (exact: a power of two).
template <int BITS>
__device__ __forceinline__ float gm_factor_hi(float f) { return f * (1.f / gm_hi_mult(BITS)); }

// The A fragment of k16 tile kt of a lane's super-tile as exact fp16 integers: (q - z) for outputs g, and for
// outputs g+8 as well except at 4 bits, where their fields (shift 4 and 12 of the word) are taken in place as
// 1024 + 16q and the result is 16(q - z), and at 3 bits, where each is moved to bits 3-5 (at most one shift per word
// and position) and taken as 1024 + 8q, the result 8(q - z) (the 1/16 or 1/8 is applied to the split's sum). zl/zh:
// the zero constants of outputs g / g+8 (gq_mma_zeros: 1024 + z, or 1024 + 16z / 1024 + 8z for 4- / 3-bit outputs
// g+8).
template <int BITS>
__device__ __forceinline__ void gm_dequant(const uint32_t (&w)[BITS], int kt, __half2 zl, __half2 zh, uint32_t (&a)[4]) {
    if constexpr (BITS == 16) {
#pragma unroll
        for (int p = 0; p < 4; p++) a[p] = w[4 * kt + p];
    } else if constexpr (BITS == 4) {
        const uint32_t x = w[kt], x8 = x >> 8;
        a[0] = gm_h2u(__hsub2(gm_u2h(gm_or1024<0x000F000Fu>(x)), zl));
        a[1] = gm_h2u(__hsub2(gm_u2h(gm_or1024<0x00F000F0u>(x)), zh));
        a[2] = gm_h2u(__hsub2(gm_u2h(gm_or1024<0x000F000Fu>(x8)), zl));
        a[3] = gm_h2u(__hsub2(gm_u2h(gm_or1024<0x00F000F0u>(x8)), zh));
    } else if constexpr (BITS == 3) {
        // fields (the layout above) at bits 0, 3, 6, 9, 12 of each half: word 0 holds pairs 0-4, word 1 pairs 5-9,
        // word 2 pairs 10-14; pair 15's value bits are bit 15 (31) of words 0, 1, 2. Outputs g (P even) are masked at
        // bits 0-2, outputs g+8 (P odd) at bits 3-5 (8q): shifts 6 and 12 of words 0 and 2, 3 and 9 of word 1 (and
        // << 3 for pair 5), so 15 pairs cost one LOP3 each plus 7 shifts. (H200, round 34: before, every pair at bits
        // 0-2, a shift and two logic ops per pair.)
        uint32_t f[4];
        if (kt == 0) {
            f[0] = gm_or1024<0x00070007u>(w[0]);       f[1] = gm_or1024<0x00380038u>(w[0]);
            f[2] = gm_or1024<0x00070007u>(w[0] >> 6);  f[3] = gm_or1024<0x00380038u>(w[0] >> 6);
        } else if (kt == 1) {
            f[0] = gm_or1024<0x00070007u>(w[0] >> 12); f[1] = gm_or1024<0x00380038u>(w[1] << 3);
            f[2] = gm_or1024<0x00070007u>(w[1] >> 3);  f[3] = gm_or1024<0x00380038u>(w[1] >> 3);
        } else if (kt == 2) {
            f[0] = gm_or1024<0x00070007u>(w[1] >> 9);  f[1] = gm_or1024<0x00380038u>(w[1] >> 9);
            f[2] = gm_or1024<0x00070007u>(w[2]);       f[3] = gm_or1024<0x00380038u>(w[2]);
        } else {
            f[0] = gm_or1024<0x00070007u>(w[2] >> 6);  f[1] = gm_or1024<0x00380038u>(w[2] >> 6);
            f[2] = gm_or1024<0x00070007u>(w[2] >> 12);
            f[3] = ((w[0] >> 12) & 0x00080008u) | ((w[1] >> 11) & 0x00100010u) | gm_or1024<0x00200020u>(w[2] >> 10);
        }
#pragma unroll
        for (int p = 0; p < 4; p++) a[p] = gm_h2u(__hsub2(gm_u2h(f[p]), (p & 1) ? zh : zl));
    } else if constexpr (BITS == 8) {
        // pair P's fields are bytes P & 1 and 2 + (P & 1) of word P >> 1: one byte permute puts each under 0x64 (1024 +
        // q). (H200, round 34: before, a shift for odd P and the mask-and-or.)
#pragma unroll
        for (int p = 0; p < 4; p++) {
            const int P = 4 * kt + p;
            uint32_t f;
            if (P & 1) asm("prmt.b32 %0, %1, %2, 0x4341;\n" : "=r"(f) : "r"(w[P >> 1]), "r"(0x64646464u));
            else asm("prmt.b32 %0, %1, %2, 0x4240;\n" : "=r"(f) : "r"(w[P >> 1]), "r"(0x64646464u));
            a[p] = gm_h2u(__hsub2(gm_u2h(f), (p & 1) ? zh : zl));
        }
    } else {
        static_assert(BITS == 2, "2-bit fields by gm_pair2");
#pragma unroll
        for (int p = 0; p < 4; p++) a[p] = gm_h2u(__hsub2(gm_u2h(gm_pair2(w, 4 * kt + p) | 0x64006400u), (p & 1) ? zh : zl));
    }
}

// Activations in the B-fragment form, once per product (gq_mma_prep), so the GEMM blocks only copy them:
// xq [plane][row][KP/16][4] uint4: k16 tile kt, lane t = {hi(k 2t, 2t+1), hi(2t+8, 2t+9), lo(..), lo(..)} of
// x' = x * 2^-e (inputs in the weight's sorted order, x[perm[j]]), xe [plane][row][ksplit] = 2^e per split
// (e from the token's largest |x| in the split's cpb chunks).
// grid (ceil(KP/32 / 32), Y, planes == 1 ? nexp : nmat), 256 threads: 8 threads per (row r of matrix m's segment,
// chunk c), each converting the 4 inputs of one B-fragment lane (k16 tile h of the chunk, lane t); a block converts
// rows r = blockIdx.y, + Y, ... of its segment (Y: the launcher's expected rows per matrix, so a MoE launch does not
// start a block per worst-case row that exits at once). Matrix m
// = proj * nexp + e writes plane proj (0 when planes == 1: every projection shares one permutation) at grouped
// row offset_e + r, reading x row x_rows ? x_rows[offset_e + r] : offset_e + r with matrix m's permutation.
// With norm_w (a single matrix's launch, Backend.rmsNormLinear) the input is RMSNorm(x row) with rms_norm's bits
// (eps, norm_w: the norm's), and the blocks of matrix 0 also write it to xn [rows][in] (each element once).
// The permutation and norm_w are read before GK_WAIT; segs, x_rows and x after it.
// wg bit 0: the same values in gq_wg.cu's layout (per k16 tile {hi k0-7, hi k8-15, lo k0-7, lo k8-15}; with GW_STMAJOR
// super-tile major, [super-tile][plane * rows_cap + row][16 uint4]), same size;
// wg bit 1: fp16 activations (CudaBackend's fp16Activations): lo = +0, so every product's sum is of the hi plane alone
// (each lo mma adds exact zeros; gq_wg skips them), x' rounded once to fp16 (relative error <= 2^-11).

// The input (before the permutation) of value i of a B-fragment lane: chunk c (32 inputs), half h (k0-7 / k8-15 of
// each 16-input tile), thread t of the quad (inputs 2t, 2t + 1 and the same + 8).
__device__ __forceinline__ int gq_frag_input(int c, int h, int t, int i) {
    return 32 * c + 16 * h + 2 * t + (i & 1) + (i >> 1) * 8;
}

// The conversion of one B-fragment lane's 4 values v of chunk c (its 8 threads: threadIdx.x / 8 within the block's
// blockDim.x / 8 chunks, sub = threadIdx.x % 8 = 4h + t) of a row to the operand form at xq/xe row dst (the layouts
// above). cmax: blockDim.x / 8 floats of shared memory for the block's chunk maxima, not read again by any thread
// before the next barrier after this call. A split (cpb | 32) lies in the block's chunks. blockDim.x is 256 or 512
// (32 or 64 chunks). Contains a __syncthreads (call uniformly).
// The split's maximum: for a power-of-two cpb (every rule's choice) each warp reads the 32 chunk maxima of its
// aligned 32-chunk group, one per lane, and folds each aligned run of cpb lanes with xor shuffles (5 steps at cpb 32,
// where a thread's loop over the split's maxima was 31 dependent shared-memory reads); a maximum does not depend on
// the order, so the bits are the loop's.
__device__ __forceinline__ void gq_prep_store(const float (&v)[4], int c, int kch, int cpb, int ksplit, long dst,
                                              float* cmax, uint4* __restrict__ xq, float* __restrict__ xe, int wg,
                                              long rows_all) {
    const int cl = threadIdx.x >> 3, sub = threadIdx.x & 7, h = sub >> 2, t = sub & 3;
    const int c0 = cl / cpb * cpb;                    // the split's first chunk within the block
    float mx = fmaxf(fmaxf(fabsf(v[0]), fabsf(v[1])), fmaxf(fabsf(v[2]), fabsf(v[3])));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));   // the chunk's largest |x| (its 8 threads)
    if (sub == 0) cmax[cl] = mx;
    __syncthreads();
    if ((cpb & (cpb - 1)) == 0) {                     // the split's largest |x| from the group's lanes
        const int base = cl & ~31;                    // the warp's 32-chunk group within the block
        float m = cmax[base + (threadIdx.x & 31)];
        for (int o = 1; o < cpb; o <<= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        mx = __shfl_sync(0xffffffffu, m, c0 - base);
    } else {                                          // -Dgptq4j.cuda.cpb=6 and the like
        mx = cmax[c0];
        for (int i = 1; i < cpb; i++) mx = fmaxf(mx, cmax[c0 + i]);
    }
    if (c >= kch) return;
    // largest |x'| = mx * 2^-e in [2^14, 2^15); e clamped so 2^±e stays a normal float
    int ex = 0;
    if (mx > 0.f && mx < INFINITY) ex = max(-100, min(100, (int) ((__float_as_uint(mx) >> 23) & 0xFF) - 127 - 14));
    const float down = __int_as_float((127 - ex) << 23);
    if (sub == 0 && cl == c0) xe[dst * ksplit + c / cpb] = __int_as_float((127 + ex) << 23);
    const float a0 = v[0] * down, a1 = v[1] * down, a2 = v[2] * down, a3 = v[3] * down;
    const __half2 h01 = __floats2half2_rn(a0, a1), h23 = __floats2half2_rn(a2, a3);
    const float2 f01 = __half22float2(h01), f23 = __half22float2(h23);
    const bool one = wg & 2;                          // fp16 activations: the hi plane alone, lo = 0
    const __half2 l01 = one ? __float2half2_rn(0.f) : __floats2half2_rn(a0 - f01.x, a1 - f01.y);
    const __half2 l23 = one ? __float2half2_rn(0.f) : __floats2half2_rn(a2 - f23.x, a3 - f23.y);
    if (wg & 1) {                                     // gq_wg.cu's layout: {hi k0-7, hi k8-15, lo k0-7, lo k8-15}
#if GW_STMAJOR
        // super-tile major: [super-tile][row of the buffer's rows_all][16 uint4], so a tile's rows of one super-tile
        // are one contiguous piece
        uint32_t* q = reinterpret_cast<uint32_t*>(xq + ((long) (c >> 1) * rows_all + dst) * 16 + (c & 1) * 8 + h * 4) + t;
#else
        (void) rows_all;
        uint32_t* q = reinterpret_cast<uint32_t*>(xq + dst * (kch * 8) + c * 8 + h * 4) + t;
#endif
        q[0] = gm_h2u(h01); q[4] = gm_h2u(h23); q[8] = gm_h2u(l01); q[12] = gm_h2u(l23);
    } else {
        xq[dst * (kch * 8) + c * 8 + h * 4 + t] = make_uint4(gm_h2u(h01), gm_h2u(h23), gm_h2u(l01), gm_h2u(l23));
    }
}

GPTQ4J_KERNEL void __launch_bounds__(256) gq_mma_prep(const GqMat* __restrict__ mats, int nexp, int planes,
        const int* __restrict__ segs, const float* __restrict__ x, const int* __restrict__ x_rows, int T, int in,
        int rows_cap, int cpb, uint4* __restrict__ xq, float* __restrict__ xe, const __half* __restrict__ norm_w,
        float eps, float* __restrict__ xn, int wg) {
    GK_ENTER_LATE;
    __shared__ float cmax[32];
    __shared__ float red[RMS_THREADS / 32];
    const int m = blockIdx.z, e = m % nexp, proj = m / nexp;
    if (planes == 1 && proj > 0) return;
    const int kch = ((in + 63) >> 6) * 2;
    const int c = blockIdx.x * 32 + (threadIdx.x >> 3), sub = threadIdx.x & 7, h = sub >> 2, t = sub & 3;
    // before the wait: the permutation and the norm's weights are constants
    const int* perm = mats[m].perm;
    int pj[4];                                        // the input of each value (-1: padding)
    __half nw[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int j = gq_frag_input(c, h, t, i);
        pj[i] = c < kch && j < in ? (perm ? perm[j] : j) : -1;
        nw[i] = norm_w && pj[i] >= 0 ? norm_w[pj[i]] : __float2half(0.f);
    }
    GK_WAIT;
    const int offset = segs ? segs[2 * e] : 0;
    const int count = segs ? segs[2 * e + 1] : T;
    const int ksplit = (kch + cpb - 1) / cpb;
    for (int r = blockIdx.y; r < count; r += gridDim.y) {   // uniform over the block
        if (r != (int) blockIdx.y) __syncthreads();   // the previous row's cmax and red are read
        const long row = x_rows ? x_rows[offset + r] : offset + r;
        const long dst = (long) (planes == 1 ? 0 : proj) * rows_cap + offset + r;
        const float* xr = x + row * in;
        // the fused RMSNorm (norm_w != null, uniform): rms_norm's statistics of the row, computed by every block of it
        const float inv = norm_w ? rms_inv(rms_block_sum(rms_sumsq(xr, in), red), in, eps) : 0.f;
        float v[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            v[i] = pj[i] < 0 ? 0.f : norm_w ? rms_apply(xr[pj[i]], inv, nw[i]) : xr[pj[i]];
            if (xn && m == 0 && pj[i] >= 0) xn[row * in + pj[i]] = v[i];   // the normalised row, each input once
        }
        gq_prep_store(v, c, kch, cpb, ksplit, dst, cmax, xq, xe, wg, (long) planes * rows_cap);
    }
}

// gq_mma_prep for launches with many rows per matrix (CudaBackend.prepRows): the same outputs, bit for bit. A block
// converts whole rows: before GK_WAIT it stages the matrix's permutation (16-bit) and norm_w in shared memory, then per
// row it reads the row once with float4 loads (rms_sumsq's order, so the same statistics) and takes the permuted
// values from shared memory, 32 chunks per pass (64 in gq_mma_prep_rows_w). gq_mma_prep instead reads each value
// from L2 on its own (under act order 4 of the 32 bytes of a sector) and recomputes the row's norm statistics in every
// block of the row.
// h3 != null (the MoE's w2 input, x = h1): row values are silu(h1) * h3 at the same row, silu_mul's arithmetic, so
// that launch and its 3 passes over the [rows][inter] planes are not needed.
// H100, decode batch 256 (ncu, per layer): q's preparation (with the norm) 28.4 -> 13.7-16.2 us, w2's with silu_mul
// 61.7 + 40.1 -> 76.7-83.6; k+v, o and w1+w3's within a few us either way. It is latency-bound (0.37 instructions
// issued per cycle and scheduler, long-scoreboard and wait stalls first, at 2 blocks per SM for w2's 86 KB); w2's
// on gq_mma_prep_rows_w's 512 threads (round 16) 61-67 us.
// grid (X, Y, Z as gq_mma_prep), 256 threads (512 for gq_mma_prep_rows_w): block x takes passes x, x + X, ... of its
// rows (X > 1 where there are too few rows for the SMs; each block reads the whole row).
// wg bit 2 (spread; MoE launches, segs != null, no norm_w): grid (X, Y, projections of a plane each: 1 when planes ==
// 1), and block y takes the grouped rows [y * R, y * R + R) of all the matrices' segments together, R = ceil(rows / Y),
// staging each row's matrix permutation after GK_WAIT (segs are moe_route's) when the matrix changes. Without it the
// blocks of a matrix share its rows, so under skewed routing the blocks of a large expert loop over several rows while
// those of the small ones exit at once. Each row is converted as before (the same values, the same bits). Dynamic shared memory
// (CudaBackend.prepRowsSmem): in floats, in 16-bit permutation entries rounded up to 8 (in <= 65536; in % 4 == 0: GPTQ
// packs inputs by 8 or 32), and with norm_w in halves.
#define PR_BATCH 4   // float4 / int4 loads per thread in flight in gq_mma_prep_rows's staging loops (64 registers:
                     // 4 blocks per SM)
#ifndef PR_SPREAD_BATCH
#define PR_SPREAD_BATCH 2   // the same for a permutation staged inside the row loop (spread; at 4 the row loop spilled
                            // 60-68 bytes, at 2 the 256-thread form spills 12 and the 512-thread form none)
#endif

template <int NT>
__device__ __forceinline__ void gq_prep_rows_body(const GqMat* __restrict__ mats, int nexp, int planes,
        const int* __restrict__ segs, const float* __restrict__ x, const int* __restrict__ x_rows, int T, int in,
        int rows_cap, int cpb, uint4* __restrict__ xq, float* __restrict__ xe, const __half* __restrict__ norm_w,
        float eps, float* __restrict__ xn, int wg, const float* __restrict__ h3) {
    constexpr int CP = NT / 8;                        // chunks per pass: 8 threads per chunk
    static_assert(NT == RMS_THREADS || NT == 2 * RMS_THREADS, "NT");
    extern __shared__ __align__(16) float pr_smem[];
    __shared__ float cmax[2][CP];                     // the passes' chunk maxima, alternating (one barrier per pass)
    __shared__ float red[RMS_THREADS / 32];
    const bool spread = wg & 4;
    const int m = spread ? (int) blockIdx.z * nexp : blockIdx.z, proj = m / nexp;
    if (planes == 1 && proj > 0) return;
    const int kch = ((in + 63) >> 6) * 2, npass = (kch + CP - 1) / CP, ksplit = (kch + cpb - 1) / cpb;
    const int tid = threadIdx.x, cl = tid >> 3, h = (tid >> 2) & 1, t = tid & 3;
    float* srow = pr_smem;                                                        // [in]
    unsigned short* sperm = reinterpret_cast<unsigned short*>(pr_smem + ((in + 3) & ~3));   // [in rounded up to 8]
    __half* snw = reinterpret_cast<__half*>(sperm + ((in + 7) & ~7));           // [in] when norm_w
    const int n4 = in >> 2;                           // 4 inputs per thread and step
    // stages a permutation (null: the identity) and, with NORM, norm_w, NB loads of each in flight
    auto stage = [&](const int* __restrict__ perm, auto norm_tag, auto nb_tag) {
        constexpr bool NORM = decltype(norm_tag)::value;
        constexpr int NB = decltype(nb_tag)::value;
        for (int k0 = tid; k0 < n4; k0 += NB * NT) {
            // NB loads of each array (PR_BATCH, or PR_SPREAD_BATCH inside the row loop) in registers first, then the
            // stores: the stores to shared memory could alias perm for the compiler, which then issued each load after
            // the previous store (a latency per step)
            int4 q[NB];
            uint2 w[NB];
#pragma unroll
            for (int u = 0; u < NB; u++) {
                const int k = k0 + u * NT;
                if (k < n4) {
                    q[u] = perm ? __ldg(reinterpret_cast<const int4*>(perm) + k)
                                : make_int4(4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3);
                    if (NORM && norm_w) w[u] = reinterpret_cast<const uint2*>(norm_w)[k];
                }
            }
#pragma unroll
            for (int u = 0; u < NB; u++) {
                const int k = k0 + u * NT;
                if (k < n4) {
                    reinterpret_cast<uint2*>(sperm)[k] = make_uint2((unsigned) q[u].x | (unsigned) q[u].y << 16,
                                                                    (unsigned) q[u].z | (unsigned) q[u].w << 16);
                    if (NORM && norm_w) reinterpret_cast<uint2*>(snw)[k] = w[u];
                }
            }
        }
    };
    // before the wait: the permutation and the norm's weights are constants (spread: the matrix is known after it)
    if (!spread) stage(mats[m].perm, std::true_type(), std::integral_constant<int, PR_BATCH>());
    GK_WAIT;
    // this block's grouped rows g = g0, g0 + step, ... < g1 (step 1 when spread, else Y); the staged permutation
    // serves the rows below `end`
    int g0, g1, end;
    if (spread) {
        int total = 0;
        for (int f = 0; f < nexp; f++) total = max(total, segs[2 * f] + segs[2 * f + 1]);
        const int R = (total + gridDim.y - 1) / gridDim.y;
        g0 = blockIdx.y * R;
        g1 = min(total, g0 + R);
        end = g0;                                     // none staged yet
    } else {
        const int e = m % nexp;
        const int offset = segs ? segs[2 * e] : 0;
        const int count = segs ? segs[2 * e + 1] : T;
        g0 = offset + blockIdx.y;
        g1 = offset + count;
        end = g1;
    }
    const float4* h3v = reinterpret_cast<const float4*>(h3);
    for (int g = g0; g < g1; g += spread ? 1 : gridDim.y) {   // uniform over the block
        __syncthreads();                              // the staged constants; the previous row's reads of srow, sperm
        if (g >= end) {                               // spread: the segment of row g (uniform), its permutation
            int e = 0;
            for (int f = 0; f < nexp; f++) if (g >= segs[2 * f] && g < segs[2 * f] + segs[2 * f + 1]) e = f;
            end = segs[2 * e] + segs[2 * e + 1];
            stage(mats[proj * nexp + e].perm, std::false_type(), std::integral_constant<int, PR_SPREAD_BATCH>());
        }
        const long row = x_rows ? x_rows[g] : g;
        const long dst = (long) (planes == 1 ? 0 : proj) * rows_cap + g;
        float ss = 0.f;                               // rms_sumsq's sum of this thread (norm_w only; in % 4 == 0)
        const float4* xv = reinterpret_cast<const float4*>(x + row * in);
        const float4* hv = h3 ? h3v + row * n4 : nullptr;
        for (int k0 = tid; k0 < n4; k0 += PR_BATCH * NT) {   // loads first, as above
            float4 a[PR_BATCH], b[PR_BATCH];
#pragma unroll
            for (int u = 0; u < PR_BATCH; u++) {
                const int k = k0 + u * NT;
                if (k < n4) {
                    a[u] = xv[k];
                    if (h3) b[u] = hv[k];
                }
            }
#pragma unroll
            for (int u = 0; u < PR_BATCH; u++) {
                const int k = k0 + u * NT;
                if (k < n4) {
                    if (h3) {                         // silu_mul: h1 = silu(h1) * h3
                        a[u] = make_float4(silu_times(a[u].x, b[u].x), silu_times(a[u].y, b[u].y),
                                           silu_times(a[u].z, b[u].z), silu_times(a[u].w, b[u].w));
                    }
                    if (norm_w) ss = rms_sumsq4(a[u], ss);   // rms_sumsq's order: vectors tid, tid + 256, ... ascending
                    reinterpret_cast<float4*>(srow)[k] = a[u];
                }
            }
        }
        float inv = 0.f;
        if (norm_w) {
            inv = rms_inv(rms_block_sum(ss, red), in, eps);   // its barrier also publishes srow
            if (xn && m == 0 && blockIdx.x == 0)     // the normalised row (rms_norm's bits), coalesced
                for (int k = tid; k < in; k += RMS_THREADS) xn[row * in + k] = rms_apply(srow[k], inv, snw[k]);
        } else {
            __syncthreads();
        }
        for (int p = blockIdx.x, u = 0; p < npass; p += gridDim.x, u ^= 1) {   // this block's passes of the row
            const int c = p * CP + cl;
            float v[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int j = gq_frag_input(c, h, t, i);
                const int pj = c < kch && j < in ? sperm[j] : -1;
                v[i] = pj < 0 ? 0.f : norm_w ? rms_apply(srow[pj], inv, snw[pj]) : srow[pj];
            }
            gq_prep_store(v, c, kch, cpb, ksplit, dst, cmax[u], xq, xe, wg, (long) planes * rows_cap);
        }
    }
}

// grid and arguments as gq_mma_prep_rows's; a block of 512 threads converts 64 chunks per pass (half the passes of a
// long row, twice the warps per SM where shared memory holds two blocks). No norm (norm_w null): rms_sumsq's order
// is RMS_THREADS'. Same bits (the split maximum does not depend on the order).
GPTQ4J_KERNEL void __launch_bounds__(512, 2) gq_mma_prep_rows_w(const GqMat* __restrict__ mats, int nexp, int planes,
        const int* __restrict__ segs, const float* __restrict__ x, const int* __restrict__ x_rows, int T, int in,
        int rows_cap, int cpb, uint4* __restrict__ xq, float* __restrict__ xe, const __half* __restrict__ norm_w,
        float eps, float* __restrict__ xn, int wg, const float* __restrict__ h3) {
    GK_ENTER_LATE;
    if (norm_w) __trap();                             // the launcher never passes one (CudaBackend.prepWide)
    gq_prep_rows_body<512>(mats, nexp, planes, segs, x, x_rows, T, in, rows_cap, cpb, xq, xe, nullptr, eps, xn, wg, h3);
}

GPTQ4J_KERNEL void __launch_bounds__(256, 4) gq_mma_prep_rows(const GqMat* __restrict__ mats, int nexp, int planes,
        const int* __restrict__ segs, const float* __restrict__ x, const int* __restrict__ x_rows, int T, int in,
        int rows_cap, int cpb, uint4* __restrict__ xq, float* __restrict__ xe, const __half* __restrict__ norm_w,
        float eps, float* __restrict__ xn, int wg, const float* __restrict__ h3) {
    GK_ENTER_LATE;
    gq_prep_rows_body<256>(mats, nexp, planes, segs, x, x_rows, T, in, rows_cap, cpb, xq, xe, norm_w, eps, xn, wg, h3);
}

// Row stride (uint4) of a window of NT * 8 token rows: WS = 8 / NT super-tiles of 16 uint4, plus GM_PAD. The pad of
// 4 uint4 makes the two rows of each 8-lane phase of a 128-bit load fall on different bank halves.
template <int NT> __host__ __device__ constexpr int gm_stride() { return 16 * (8 / NT) + GM_PAD; }

// Threads per token row of a gm_copy (one uint4 of each row per thread) and rows per pass of the block: every
// thread takes part whatever NT (at NT = 1 a one-token window of 8 super-tiles is one cp.async per thread).
template <int NT> __host__ __device__ constexpr int gm_tpr() { return 16 * (8 / NT); }

// Starts copying a window of wn super-tiles of the tile's token rows into shared memory (one cp.async group;
// gm_copy_wait waits for it): xs[slot * gm_stride<NT>() + 16i + 4kt + t]. Thread threadIdx.x copies uint4
// q = threadIdx.x % gm_tpr of rows threadIdx.x / gm_tpr + k * NT for k < kv (kv: its rows below the tile's nvalid):
// sdst = the shared address of its first row's uint4 in this buffer, src = that uint4 at the window's first
// super-tile, rstep = NT rows. Rows nvalid .. NT*8-1 are not written: the token columns they feed are never stored
// (an mma column depends on its own B column only). Addresses step by additions only.
template <int NT>
__device__ __forceinline__ void gm_copy(unsigned sdst, int wn, int kv, const uint4* __restrict__ src, long rstep) {
    constexpr int TPR = gm_tpr<NT>();
    if ((int) (threadIdx.x % TPR) < 16 * wn) {        // a window's last super-tiles may be past the split
#pragma unroll
        for (int k = 0; k < 8; k++) {
            if (k < kv) asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(sdst), "l"(src));
            sdst += NT * gm_stride<NT>() * 16;
            src += rstep;
        }
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Weights staged through shared memory (the 32/64-token tiles): the window's wn super-tiles of the block's GM_NW * OT
// output tiles, each (tile, super-tile) a contiguous BITS * 8 uint4 of the packed layout, copied as they lie
// (smem [v][i][BITS * 8], v = tile within the block, i = super-tile within the window), in the window's cp.async
// group (call before gm_copy, which commits). ot0b: the block's first tile; tiles past the last are clamped.
template <int BITS, int NT, int OT>
__device__ __forceinline__ void gm_copy_w(unsigned sw, const uint32_t* __restrict__ qw, int ot0b, int otiles, int kst,
                                          int st0, int wn) {
    constexpr int WS = 8 / NT, PER = BITS * 8, TOT = GM_NW * OT * WS * PER, NTH = GM_NW * 32;
#pragma unroll
    for (int k = 0; k < (TOT + NTH - 1) / NTH; k++) {
        const int idx = threadIdx.x + k * NTH;
        const int v = idx / (WS * PER), r = idx % (WS * PER);
        if ((TOT % NTH == 0 || idx < TOT) && r < wn * PER) {
            const uint4* src = reinterpret_cast<const uint4*>(qw + gm_word<BITS>(min(ot0b + v, otiles - 1), kst, st0, 0, 0)) + r;
            asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(sw + 16u * idx), "l"(src));
        }
    }
}

// A lane's BITS words of one staged super-tile (p: the tile's BITS * 8 uint4 in shared memory).
template <int BITS>
__device__ __forceinline__ void gm_lds_w(const uint4* p, int lane, uint32_t (&w)[BITS]) {
    if constexpr (BITS == 4) {
        const uint4 u = p[lane];
        w[0] = u.x; w[1] = u.y; w[2] = u.z; w[3] = u.w;
    } else if constexpr (BITS == 8) {
        const uint4 u = p[2 * lane], v = p[2 * lane + 1];
        w[0] = u.x; w[1] = u.y; w[2] = u.z; w[3] = u.w; w[4] = v.x; w[5] = v.y; w[6] = v.z; w[7] = v.w;
    } else if constexpr (BITS == 2) {
        const uint2 u = reinterpret_cast<const uint2*>(p)[lane];
        w[0] = u.x; w[1] = u.y;
    } else {
        const uint32_t* q = reinterpret_cast<const uint32_t*>(p);
        w[0] = q[lane]; w[1] = q[32 + lane]; w[2] = q[64 + lane];
    }
}

// Super-tile i of a lane's output tile into b: the weights (unless staged: SW) and the scales, or for fp16 weights
// (BITS = 16) the words of rows g / g+8 at wp / wq.
template <int BITS, bool SW>
__device__ __forceinline__ void gm_fetch(const uint32_t* __restrict__ wp, const uint32_t* __restrict__ wq, int i,
                                         const int* __restrict__ cg, int c_lo, int cgl, const uint32_t* __restrict__ szl,
                                         const uint32_t* __restrict__ szh, int outN, GmStage<BITS>& b) {
    if constexpr (BITS == 16) gm_load_dense(wp + 32 * i, wq + 32 * i, b.w);
    else gm_load<BITS, !SW>(wp + 32 * BITS * i, cg, c_lo + 2 * i, cgl, szl, szh, outN, b);
}

template <int N>
__device__ __forceinline__ void gm_copy_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }

// Loop-mode fold in shared memory for the 32-token tiles (gq_mma_body): OT * NT * 4 floats per lane, after the window
// ring (the 64-token tiles keep it in registers: their ring leaves no room for 3 blocks per SM).
template <int NT, int OT> __host__ __device__ constexpr bool gm_ys() { return NT * OT >= 4 && NT < 8; }

#define GM_STAGES 3   // windows of activations in flight (cp.async groups) per block (3 x 20 KB at NT = 8: 3 blocks per SM)

// grid (ceil(OP/16 / (GM_NW*OT)) * tiles, split_mode ? ksplit : 1, nmat) with tiles = ceil(T / (NT*8)), block GM_NW
// warps; warp w of output block b owns outputs [16*OT*(b*GM_NW + w), +16*OT) and the tile's NT*8 tokens, read from
// gq_mma_prep's planes (matrix m: plane m / nexp, or 0 when planes == 1; token columns past the segment's end are
// computed from unwritten rows and not stored). Only OT = 1 is instantiated (see GQM_INSTANCE). Matrices, segments and the split/loop output layouts as gq_pipe_body (gptq_gemm.cu). cpb is even (a
// split is whole super-tiles). Dynamic shared memory: S windows of WS = 8/NT super-tiles in a ring of
// S = min(GM_STAGES, ceil(cpb/2 / WS)), each NT * 8 * gm_stride<NT>() * 16 bytes of activations plus, when NT >= 4,
// GM_NW * OT * WS * BITS * 128 bytes of weights; then GM_NW * OT * NT * 512 bytes of fold when gm_ys<NT, OT>
// (> 48 KB needs the launcher's opt-in).
// cgl: CudaGptq.groupShift (chunk c is in group c >> cgl), or -1 (groups read from the chunk-group table).
// Index arithmetic: every division is by a compile-time power of two (the profile of the first version spent a
// quarter of its instructions on integer division and address arithmetic).
template <int BITS, int NT, int OT, int HL>
__device__ __forceinline__ void gq_mma_body(
        const GqMat* __restrict__ mats, int nexp, int nmat, const int* __restrict__ segs,
        const uint4* __restrict__ xq, const float* __restrict__ xe, int planes, int T, int in, int outN, int cpb,
        int sp, int cgl, int ksplit, int split_mode, int rows_cap, long proj_stride, float* __restrict__ outp) {
    extern __shared__ uint4 gm_smem[];
    constexpr int WS = 8 / NT;                        // super-tiles per window
    constexpr int STRIDE = gm_stride<NT>();           // uint4 per token row of a window
    constexpr int XS_WORDS = NT * 8 * STRIDE;         // uint4 of activations per window buffer
    // 32/64-token tiles: the weights come through the window too (cp.async, no registers held for them in flight)
    constexpr bool DENSE = BITS == 16;                // fp16 weights read in place (gm_load_dense)
    constexpr bool SW = NT >= 4 && !DENSE;
    // super-tiles in flight per lane: weights and scales, or only the scales when the weights are staged (SW)
    constexpr int P = SW ? 4 : OT > 1 ? 1 : BITS >= 8 ? 2 : 4;
    constexpr int PERW = BITS * 8;                    // uint4 per (output tile, super-tile)
    constexpr int BUF = XS_WORDS + (SW ? GM_NW * OT * WS * PERW : 0);   // uint4 per window buffer
    // blockIdx.x = output block * tiles + token tile: an output block's token tiles run side by side, so its
    // weights are read from memory once and from L2 for the other tiles
    const int tiles = (T + NT * 8 - 1) / (NT * 8);
    const int m = blockIdx.z, tile = blockIdx.x % tiles, oblk = blockIdx.x / tiles;
    const int e = m % nexp, proj = m / nexp;
    const int offset = segs ? segs[2 * e] : 0;
    const int count = segs ? segs[2 * e + 1] : T;
    const int r0 = tile * NT * 8;
    if (r0 >= count) return;                          // surplus tile (uniform over the block)
    const GqMat mat = mats[m];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int ot0 = (oblk * GM_NW + warp) * OT;       // this warp's first 16-output tile
    const int otiles = (outN + 15) >> 4;
    const int kst = (in + 63) >> 6, kch = 2 * kst;   // super-tiles and chunks along the padded inputs
    const bool active = ot0 < otiles;
    // output tile u of the warp: ot0 + u, clamped to the last tile (a clamped tile is computed but not stored)
    const uint32_t* szl[OT];
    const uint32_t* szh[OT];
    const uint32_t* wp0[OT];
    const uint32_t* wq0[OT];                          // DENSE: row g+8's words (wp0: row g's)
#pragma unroll
    for (int u = 0; u < OT; u++) {
        const int otu = min(ot0 + u, otiles - 1);
        szl[u] = reinterpret_cast<const uint32_t*>(mat.sz) + min(otu * 16 + g, outN - 1);
        szh[u] = reinterpret_cast<const uint32_t*>(mat.sz) + min(otu * 16 + g + 8, outN - 1);
        if constexpr (DENSE) {                        // in % 64 == 0 (CudaBackend.dense); rows past outN clamped
            wp0[u] = mat.qw + (long) min(otu * 16 + g, outN - 1) * (in >> 1) + t;
            wq0[u] = mat.qw + (long) min(otu * 16 + g + 8, outN - 1) * (in >> 1) + t;
        } else {
            wp0[u] = mat.qw + gm_word<BITS>(otu, kst, 0, lane, 0);
            wq0[u] = wp0[u];
        }
    }
    const int spb = cpb >> 1;                         // super-tiles per split
    // windows of WS super-tiles in a ring of `stages` buffers: windows w+1 .. w+stages-1 are being copied while
    // window w is computed (one window per split when it fits, as at NT = 1)
    const int stages = min(GM_STAGES, (spb + WS - 1) / WS);
    const int nvalid = min(NT * 8, count - r0);
    const long row0 = (long) (planes == 1 ? 0 : proj) * rows_cap + offset + r0;
    const int s_lo = split_mode ? blockIdx.y : 0, s_hi = split_mode ? blockIdx.y + 1 : ksplit;
    const int xoff = g * STRIDE + t;                  // this lane's B fragment within a window (+16 per super-tile)
    const long rowlen = (long) kch * 8;               // uint4 per token row of xq
    // gm_copy: this thread's uint4 of its first row (at super-tile 0), its shared address in buffer 0, its row count
    const uint4* src0 = xq + (row0 + threadIdx.x / gm_tpr<NT>()) * rowlen + threadIdx.x % gm_tpr<NT>();
    const unsigned sdst0 = (unsigned) __cvta_generic_to_shared(gm_smem)
            + 16u * ((threadIdx.x / gm_tpr<NT>()) * STRIDE + threadIdx.x % gm_tpr<NT>());
    const int kv = (nvalid - (int) (threadIdx.x / gm_tpr<NT>()) + NT - 1) / NT;
    float* dst = outp + proj * proj_stride;
    // loop mode: the fold of the splits so far, y[u][j][i], in registers for small tiles, else in shared memory
    // (lane-minor, after the window ring: GM_NW * OT * NT * 512 more bytes) so the large tiles keep their registers
    constexpr bool YS = gm_ys<NT, OT>();
    float y[YS ? 1 : OT][YS ? 1 : NT][4];
    float* ys = reinterpret_cast<float*>(gm_smem + stages * BUF) + warp * (OT * NT * 4 * 32) + lane;
    const unsigned sbase = (unsigned) __cvta_generic_to_shared(gm_smem);   // gm_copy_w

    for (int s = s_lo; s < s_hi; s++) {
        const int st_lo = s * spb, n = min(kst - st_lo, spb);
        const int c_lo = 2 * st_lo;
        const uint32_t* wp[OT];                       // super-tile i of output tile u at wp[u] + 32*BITS*i
        const uint32_t* wq[OT];                       // (DENSE: rows g / g+8 at wp / wq + 32i)
#pragma unroll
        for (int u = 0; u < OT; u++) {
            wp[u] = wp0[u] + (DENSE ? 32 : 32 * BITS) * st_lo;
            wq[u] = wq0[u] + (DENSE ? 32 : 32 * BITS) * st_lo;
        }
        GmStage<BITS> buf[P][OT];
        if (active) {
#pragma unroll
            for (int q = 0; q < P; q++)
#pragma unroll
                for (int u = 0; u < OT; u++)
                    if (q < n) gm_fetch<BITS, SW>(wp[u], wq[u], q, mat.cg, c_lo, cgl, szl[u], szh[u], outN, buf[q][u]);
        }
        const int nw = (n + WS - 1) / WS;             // windows of this split
        __syncthreads();                              // the previous split's windows are no longer read
        for (int w = 0; w < max(1, stages - 1) && w < nw; w++) {
            if constexpr (SW) gm_copy_w<BITS, NT, OT>(sbase + 16u * (w * BUF + XS_WORDS), mat.qw, oblk * GM_NW * OT, otiles,
                                                      kst, st_lo + w * WS, min(WS, n - w * WS));
            gm_copy<NT>(sdst0 + 16u * w * BUF, min(WS, n - w * WS), kv, src0 + (st_lo + w * WS) * 16, NT * rowlen);
        }
        // 2^e(token, split) of this lane's token columns, loaded now, used after the split
        float f[NT][2];
#pragma unroll
        for (int j = 0; j < NT; j++) {
            f[j][0] = __ldg(xe + (row0 + min(j * 8 + 2 * t, nvalid - 1)) * ksplit + s);
            f[j][1] = __ldg(xe + (row0 + min(j * 8 + 2 * t + 1, nvalid - 1)) * ksplit + s);
        }
        // split sums; the scale period's hi and lo mma chains
        float acc[OT][NT][4], tmp[OT][NT][4];
#pragma unroll
        for (int u = 0; u < OT; u++)
#pragma unroll
            for (int j = 0; j < NT; j++)
#pragma unroll
                for (int i = 0; i < 4; i++) { acc[u][j][i] = 0.f; tmp[u][j][i] = 0.f; }
        const uint4* xs = gm_smem;
        int b = stages - 1;                           // ring buffer of the current window
        for (int i0 = 0; i0 < n; i0 += P) {           // P super-tiles per step, the next P loading meanwhile
#pragma unroll
            for (int q = 0; q < P; q++) {
                const int i = i0 + q;                 // super-tile within the split; weights in buf[q]
                if (i < n) {
                    const int wi = i % WS;            // within the window
                    if (wi == 0) {                    // a new window (uniform over the block)
                        const int w = i / WS;
                        const int prev = b;           // window w-1's buffer (at w = 0: the ring's last, unused)
                        b = b + 1 == stages ? 0 : b + 1;
                        // groups issued after window w's: windows w+1 .. min(w+stages-2, nw-1)
                        if (w + stages - 2 < nw && stages == GM_STAGES) gm_copy_wait<GM_STAGES - 2>();
                        else gm_copy_wait<0>();
                        __syncthreads();              // window w landed for all; window w-1's buffer is free
                        const int wf = w + stages - 1;    // the window that takes window w-1's buffer
                        if (stages > 1 && wf < nw) {
                            if constexpr (SW) gm_copy_w<BITS, NT, OT>(sbase + 16u * (prev * BUF + XS_WORDS), mat.qw,
                                    oblk * GM_NW * OT, otiles, kst, st_lo + wf * WS, min(WS, n - wf * WS));
                            gm_copy<NT>(sdst0 + 16u * prev * BUF, min(WS, n - wf * WS), kv,
                                        src0 + (st_lo + wf * WS) * 16, NT * rowlen);
                        }
                        xs = gm_smem + b * BUF + xoff;
                    }
                    if (active) {
                        GmStage<BITS> cur[OT];
#pragma unroll
                        for (int u = 0; u < OT; u++) {
                            cur[u] = buf[q][u];
                            if constexpr (SW) gm_lds_w<BITS>(xs - xoff + XS_WORDS + ((warp * OT + u) * WS + wi) * PERW, lane, cur[u].w);
                            if (i + P < n) gm_fetch<BITS, SW>(wp[u], wq[u], i + P, mat.cg, c_lo, cgl, szl[u], szh[u], outN, buf[q][u]);
                        }
                        const uint4* xw = xs + 16 * wi;
#pragma unroll
                        for (int c = 0; c < 2; c++) {
#pragma unroll
                            for (int h = 0; h < 2; h++) {
                                const int kt = 2 * c + h;
                                uint32_t a[OT][4];
#pragma unroll
                                for (int u = 0; u < OT; u++) {
                                    // (scale, zero constant) as gq_mma_zeros formats them: the constant is the high half
                                    gm_dequant<BITS>(cur[u].w, kt, DENSE ? __half2() : gm_zero(cur[u].sz[2 * c]),
                                                     DENSE ? __half2() : gm_zero(cur[u].sz[2 * c + 1]), a[u]);
                                }
                                // (skipping token groups past the tile's rows here cost 25 % at batch 256)
                                uint4 bv[NT];
#pragma unroll
                                for (int j = 0; j < NT; j++) bv[j] = xw[j * 8 * STRIDE + 4 * kt];
                                // every hi mma of the k16 tile, then every lo one: each chain's next mma is NT * OT
                                // mma later (the mma are issued in program order)
#pragma unroll
                                for (int j = 0; j < NT; j++)
#pragma unroll
                                    for (int u = 0; u < OT; u++) gm_mma(tmp[u][j], a[u], bv[j].x, bv[j].y);
                                if (HL == 2) {        // HL 1 (fp16 activations): the lo plane is 0, its mma left out
#pragma unroll
                                    for (int j = 0; j < NT; j++)
#pragma unroll
                                        for (int u = 0; u < OT; u++) gm_mma(tmp[u][j], a[u], bv[j].z, bv[j].w);
                                }
                            }
                            const int ci = 2 * i + c + 1;     // chunks of the split done
                            if ((ci & (sp - 1)) == 0 || ci == 2 * n) {   // end of a scale period (uniform)
#pragma unroll
                                for (int u = 0; u < OT; u++) {
                                    const float sl = DENSE ? 1.f : gm_scale(cur[u].sz[2 * c]);
                                    const float sh = DENSE ? 1.f : gm_scale(cur[u].sz[2 * c + 1]);
#pragma unroll
                                    for (int j = 0; j < NT; j++) gm_period_end(acc[u][j], tmp[u][j], sl, sh);
                                }
                            }
                        }
                    }
                }
            }
        }
        // p_s = acc * 2^e(token, split) (* 1/16 for 4-bit outputs g+8: their A values were 16(q - z)), exact.
        // split mode: the partial p_s; loop mode: y = p_0, then y = y + p_s in order, in registers, stored after
        // the last split
#pragma unroll
        for (int u = 0; u < OT; u++) {
#pragma unroll
            for (int j = 0; j < NT; j++) {
                acc[u][j][0] *= f[j][0];
                acc[u][j][1] *= f[j][1];
                acc[u][j][2] *= gm_factor_hi<BITS>(f[j][0]);
                acc[u][j][3] *= gm_factor_hi<BITS>(f[j][1]);
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    if constexpr (YS) {
                        float& yv = ys[((u * NT + j) * 4 + i) * 32];
                        yv = s == s_lo ? acc[u][j][i] : __fadd_rn(yv, acc[u][j][i]);
                    } else {
                        y[u][j][i] = s == s_lo ? acc[u][j][i] : __fadd_rn(y[u][j][i], acc[u][j][i]);
                    }
                }
            }
        }
        if (active && (split_mode || s == s_hi - 1)) {
#pragma unroll
            for (int u = 0; u < OT; u++) {
#pragma unroll
                for (int j = 0; j < NT; j++) {
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        const int r = r0 + j * 8 + 2 * t + (i & 1), o = (ot0 + u) * 16 + g + (i >> 1) * 8;
                        if (r < count && o < outN) {
                            const float v = YS ? ys[((u * NT + j) * 4 + i) * 32] : y[YS ? 0 : u][YS ? 0 : j][i];
                            if (split_mode) dst[((long) s * rows_cap + offset + r) * outN + o] = v;
                            else dst[(long) (offset + r) * outN + o] = v;
                        }
                    }
                }
            }
        }
    }
}

// gq_mma_b<BITS>_n<NT>: one 16-output tile per warp. (OT = 2, two tiles per warp so every B fragment feeds twice the
// mma, was measured slower at 32-token tiles: 255 registers, 2 blocks per SM; NOTES.md round 5.)
// gq_mma_b<BITS>_n<NT>_h1 (HL 1) are for fp16 activations (CudaBackend's fp16Activations, as gq_mmv's and gq_wg's _h1
// forms): gq_mma_prep wrote lo = +0, so the lo plane's mma, which adds exact zeros, is left out; the same bits.
#define GQM_KERNEL(BITS, NT, OT, MINB, HL, NAME)                                                                \
    GPTQ4J_KERNEL void __launch_bounds__(GM_NW * 32, MINB) NAME(                                                 \
            const GqMat* mats, int nexp, int nmat, const int* segs, const uint4* xq, const float* xe, int planes, \
            int T, int in, int outN, int cpb, int sp, int cgl, int ksplit, int split_mode, int rows_cap,        \
            long proj_stride, float* out) {                                                                     \
        GK_ENTER;                                                                                               \
        gq_mma_body<BITS, NT, OT, HL>(mats, nexp, nmat, segs, xq, xe, planes, T, in, outN, cpb, sp, cgl, ksplit, \
                                      split_mode, rows_cap, proj_stride, out);                                 \
    }
#ifndef GM_H1_HL
#define GM_H1_HL 1   // 2: the _h1 forms multiply the lo plane as well (a measurement switch: the kernels before them)
#endif
#define GQM_INSTANCE(BITS, NT, OT, MINB) GQM_KERNEL(BITS, NT, OT, MINB, 2, gq_mma_b##BITS##_n##NT)               \
                                         GQM_KERNEL(BITS, NT, OT, MINB, GM_H1_HL, gq_mma_b##BITS##_n##NT##_h1)
#define GQM_ALL(BITS) GQM_INSTANCE(BITS, 1, 1, 5) GQM_INSTANCE(BITS, 2, 1, 4) GQM_INSTANCE(BITS, 4, 1, 3) GQM_INSTANCE(BITS, 8, 1, 3)
GQM_ALL(2)
GQM_ALL(3)
GQM_ALL(4)
GQM_ALL(8)
GQM_ALL(16)   // fp16 weights in place (the lm_head): CudaBackend.dense

// One-time repack at load into the layout above, from the checkpoint's qweight [in*bits/32][out] (bit streams
// along the inputs): sorted input j takes checkpoint input src_row[j] (null: j). Padded inputs (j >= in) and
// outputs (o >= out) get q = 0 (the staged x is 0 there). A thread writes one lane of one super-tile.
template <int BITS>
__device__ __forceinline__ uint32_t gm_q(const uint32_t* raw, const int* src_row, int in, int out, int o, int j) {
    if (o >= out || j >= in) return 0u;
    const int i = src_row ? src_row[j] : j;
    const long sbit = (long) i * BITS;
    const int sword = (int) (sbit >> 5), sshift = (int) (sbit & 31);
    uint64_t v = raw[(long) sword * out + o] >> sshift;
    if (sshift + BITS > 32) v |= (uint64_t) raw[(long) (sword + 1) * out + o] << (32 - sshift);
    return (uint32_t) v & ((1u << BITS) - 1u);
}

template <int BITS>
__device__ __forceinline__ void gq_mma_repack_body(const uint32_t* raw, const int* src_row, int in, int out,
                                                   uint32_t* packed) {
    const int kst = (in + 63) >> 6, otiles = (out + 15) >> 4;
    const long idx = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long) otiles * kst * 32) return;
    const int lane = (int) (idx & 31);
    const int st = (int) ((idx >> 5) % kst);
    const long ot = (idx >> 5) / kst;
    const int g = lane >> 2, t = lane & 3;
    uint32_t w[BITS];
#pragma unroll
    for (int b = 0; b < BITS; b++) w[b] = 0u;
#pragma unroll
    for (int P = 0; P < 16; P++) {
        const int kt = P >> 2, p = P & 3;
        const int o = (int) ot * 16 + g + ((p & 1) ? 8 : 0);
        const int j = st * 64 + kt * 16 + 2 * t + ((p & 2) ? 8 : 0);
        const uint32_t lo = gm_q<BITS>(raw, src_row, in, out, o, j), hi = gm_q<BITS>(raw, src_row, in, out, o, j + 1);
        if (BITS == 3 && P == 15) {
#pragma unroll
            for (int b = 0; b < 3; b++) w[b] |= (((lo >> b) & 1u) << 15) | (((hi >> b) & 1u) << 31);
        } else {
            const int per = BITS == 3 ? 5 : 16 / BITS;
            const int wi = P / per, sh = BITS * (P % per);
            w[wi] |= (lo << sh) | (hi << (16 + sh));
        }
    }
#pragma unroll
    for (int b = 0; b < BITS; b++) packed[gm_word<BITS>(ot, kst, st, lane, b)] = w[b];
}

// Load time, after gptq_unpack_zeros (or the bench's random fill): (scale, zero) -> (scale, zero constant) in
// place for the mma kernels: 1024 + z, or 1024 + 16z / 1024 + 8z for the 4- / 3-bit outputs o with o % 16 >= 8
// (exact in fp16; gm_dequant).
GPTQ4J_KERNEL void gq_mma_zeros(__half2* sz, long n, int out, int bits) {
    GK_ENTER;
    for (long i = (long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long) gridDim.x * blockDim.x) {
        const float2 v = __half22float2(sz[i]);
        const float k = (i % out) % 16 < 8 ? 1.f : (float) gm_hi_mult(bits);
        sz[i] = __halves2half2(__low2half(sz[i]), __float2half_rn(1024.f + k * v.y));
    }
}

#define GQM_REPACK(BITS)                                                                                      \
    GPTQ4J_KERNEL void gq_mma_repack_b##BITS(const uint32_t* raw, const int* src_row, int in, int out,       \
                                            uint32_t* packed) {                                               \
        GK_ENTER;                                                                                             \
        gq_mma_repack_body<BITS>(raw, src_row, in, out, packed);                                              \
    }
GQM_REPACK(2)
GQM_REPACK(3)
GQM_REPACK(4)
GQM_REPACK(8)
