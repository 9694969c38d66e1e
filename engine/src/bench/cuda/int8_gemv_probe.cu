// A design probe for issue 6 (not part of the engine's module): how fast can a one-token 4-bit GPTQ product stream its
// weights when the arithmetic is (a) the engine's exact fp16 form (gq_mma/gq_mmv: weights dequantised to fp16
// integers q - z, activations split into hi/lo fp16 planes, two mma.m16n8k16 per 16 inputs) or (b) an exact integer
// form (weights as unsigned 4-bit q widened to u8 by two logic ops per 8 values, the scaled activation as three
// signed 8-bit digit planes, three mma.m16n8k32.u8.s8 per 32 inputs, int32 sums, the zero point applied once per
// scale period through the period's exact activation sum), against (c) the same loads with no arithmetic.
//
// Round 9 (H100): loads only 42.8-49.9 us, fp16 form 50.1-58.1 us (2.1-2.5 TB/s), integer form 55.6-55.8 us: the
// integer form is not faster here (96 registers, 5 blocks per SM), and this simple pipeline's fp16 form beats the
// engine's gq_mmv ring on this launch under ncu (64 us). A gq_mmv with this register pipeline was then measured
// (engine/src/main/cuda/NOTES.md, round 9): w1+w3 58.7 against 64.2 us, but q, o, k+v and w2 slower, so not kept.
//
// Round 34 (H200): mode 3, the integer form with the three planes as the columns of one mma.m16n8k32.u8.s8 (lane (g, t)'s
// B fragment is plane g's digits, so one mma per 32 inputs and tile instead of three; rows g+8 stored in the high
// nibbles and taken as 16q by one AND, as gq_mma's 4-bit rows g+8; plane 2 brought to lane t = 0 by one shuffle per
// scale period). 54 registers, 9 blocks per SM. w1+w3 at one token, medians of 30 (loads only / fp16 form / mode 3):
// 30.6-33.9 / 42.5-45.9 / 38.8-43.1 us with 4 super-tiles in flight; 30.0-33.0 / 43.2-45.1 / 35.1-37.3 with 8
// (-DPROBE_DEPTH=8: 3.3-3.5 TB/s of weights); splits of 256, 1,024 inputs no better. 3 bits (probe<3, MODE>, the
// engine's 3-bit layout for the fp16 form; for mode 3 the nibble words' 2-bit parts and third bits in three words):
// 25.7-27.9 / 52.3-58.0 / 36.2-39.8 us, the fp16 form 46.5-47.6 once gm_dequant<3> took the fields in place. Other shapes at depth 8 (-DPROBE_NMAT/OUT/IN), 4-bit: w2 18.7-21.3 / 27.9-30.4 / 22.0-24.4,
// q+k+v 8.1-9.0 / 11.7-11.9 / 10.0-10.9, o 6.7-7.8 / 9.9-11.3 / 8.5-10.2. The engine's gq_mmv under ncu (same machine):
// w1+w3 52.5, w2 ~28, q+k+v 13.9, o 11.5. Errors against float64: fp16 form 2.3-3.0e-7, integer 2.9-4.4e-7 of max |y|.
// So round 9's verdict held for the three-mma variant only: with the planes as columns the integer form is the fastest
// one-token form measured here, 15-20 % under this pipeline's fp16 form at 4 bits and ~22 % at 3 bits (30-35 % before the
// fields were taken in place).
//
// Every variant runs the same memory pipeline (a persistent grid, a warp per (matrix, two 16-output tiles, split)
// task, each lane loading its 16-byte weight words DEPTH super-tiles ahead into registers), so the differences are the
// arithmetic's. Shape: the w1+w3 launch of a Mixtral-8x7B decode step (2 experts x 2 projections of 14336 x 4096),
// 4-bit, groups of 128, splits of 512 inputs. Both arithmetic forms are checked against float64 on the host.
//
// Build and run (the device machine has nvcc): bin/gpu-int8-probe (NVCC_EXTRA passes -DPROBE_* variants), or
//   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I engine/src/main/cuda -o probe int8_gemv_probe.cu && ./probe
#include "module.cu"   // the engine's kernels and helpers (gm_mma, gm_or1024, ...): the fp16 form is theirs
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <random>
#include <algorithm>
#include <type_traits>
#include "probe_common.cuh"

#ifndef PROBE_SPLIT
#define PROBE_SPLIT 512     // inputs per split (-DPROBE_SPLIT=...: a variant)
#endif
#ifndef PROBE_DEPTH
#define PROBE_DEPTH 4       // super-tiles in flight per lane
#endif
#ifndef PROBE_NMAT
#define PROBE_NMAT 4        // the launch's matrices and their shape (default w1+w3 at one token; -D...: another launch)
#endif
#ifndef PROBE_OUT
#define PROBE_OUT 14336
#endif
#ifndef PROBE_IN
#define PROBE_IN 4096
#endif
constexpr int NMAT = PROBE_NMAT, OUT = PROBE_OUT, IN = PROBE_IN, GS = 128, SPLIT = PROBE_SPLIT;   // inputs per split
static_assert(OUT % 32 == 0 && IN % SPLIT == 0 && SPLIT % GS == 0, "tasks of two 16-output tiles and whole splits");
constexpr int ST = IN / 64;                 // super-tiles (64 inputs) per row tile
constexpr int STS = SPLIT / 64;             // super-tiles per split
constexpr int KSPLIT = IN / SPLIT;
constexpr int OTP = OUT / 32;               // tile pairs per matrix
constexpr int NW = 4;                       // warps per block
constexpr int DEPTH = PROBE_DEPTH;          // super-tiles in flight per lane

// weights: [mat][tile][st][lane] uint4 (4 words per lane per super-tile, the layout of each form below)
// scales:  [mat][group][out] (scale, zero) as float2 on the host, formatted per form on the device
__device__ __forceinline__ uint4 ld_stream(const uint4* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

__device__ __forceinline__ void mma_u8s8(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// A task's operands (the probe's inputs, the same for every width and form) and coordinates: matrix m, pair p of
// 16-output tiles, split s; lane of the warp
struct Task {
    const uint32_t* __restrict__ szf;
    const uint4* __restrict__ xq;
    const uint2* __restrict__ xd;
    const int* __restrict__ sx;
    const float* __restrict__ xe;
    float* __restrict__ part;
    int s, p, m, lane;
    // uint32 from szf to the task's first output in the (scale, zero) row of group grp
    __device__ __forceinline__ long srow(int grp) const { return ((long) m * (IN / GS) + grp) * OUT + 32 * p; }
};

// The integer form's super-tile of one tile with the planes as columns (mode 3): nibble word 2j (2j + 1) byte i = row
// g's q | row g+8's q << 4 for input 32j + 4t + i (+ 16), taken as q and 16q by one AND each (rows g+8's sums are 16x);
// bj: lane (g, t)'s B fragments of the two k32 tiles (plane g's digits, g < 3, else 0)
__device__ __forceinline__ void int_super_tile(const uint32_t (&nw)[4], const uint2 (&bj)[2], int (&d)[4]) {
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const uint32_t a[4] = {nw[2 * j] & 0x0F0F0F0Fu, nw[2 * j] & 0xF0F0F0F0u,
                               nw[2 * j + 1] & 0x0F0F0F0Fu, nw[2 * j + 1] & 0xF0F0F0F0u};
        mma_u8s8(d, a, bj[j].x, bj[j].y);
    }
}

// The fp16 form's super-tile st of one 16-output tile (gq_mma's chain): each k16 tile dequantised and multiplied by the
// hi and lo planes into fl; at a scale period's end acc = fmaf(fl, scale, acc) and the chain restarts (4-bit rows g+8
// were taken as 16q and 3-bit ones as 8q: their scale / 16 or / 8). zl, zh: the (scale, zero constant) half2 of rows g
// and g+8.
template <int BITS>
__device__ __forceinline__ void fp16_tile(const uint32_t (&wv)[BITS], const uint4* __restrict__ xq, int st, int t,
                                          uint32_t zl, uint32_t zh, float (&fl)[4], float (&acc)[4]) {
    const __half2 zlo = __high2half2(gm_u2h(zl)), zhi = __high2half2(gm_u2h(zh));
#pragma unroll
    for (int kt = 0; kt < 4; kt++) {
        const uint4 b = xq[(st * 4 + kt) * 4 + t];
        uint32_t a[4];
        gm_dequant<BITS>(wv, kt, zlo, zhi, a);
        gm_mma(fl, a, b.x, b.y);
        gm_mma(fl, a, b.z, b.w);
    }
    if ((st + 1) * 64 % GS == 0) {
        const float sl = __low2float(gm_u2h(zl)), sh = gm_factor_hi<BITS>(__low2float(gm_u2h(zh)));
        acc[0] = fmaf(fl[0], sl, acc[0]); acc[1] = fmaf(fl[1], sl, acc[1]);
        acc[2] = fmaf(fl[2], sh, acc[2]); acc[3] = fmaf(fl[3], sh, acc[3]);
#pragma unroll
        for (int r = 0; r < 4; r++) fl[r] = 0.f;
    }
}

// The integer form's scale-period end with the planes as columns (mode 3): d = the tile's mma accumulators (columns
// 2t, 2t + 1 of rows g, g+8; rows g+8 summed as 16q), plane 2 from lane t = 1; sa the period's digit sums per plane;
// scales then zeros of (matrix m, group grp) at szf; acc[0] (row g) and acc[2] (row g+8) take the period's value.
__device__ __forceinline__ void int_period_end(int (&d)[4], float (&acc)[4], const int* __restrict__ sa,
                                               const uint32_t* __restrict__ szf, long srow, int g) {
    const int p2g = __shfl_down_sync(0xFFFFFFFFu, d[0], 1);
    const int p2h = __shfl_down_sync(0xFFFFFFFFu, d[2], 1);
    const int a0 = sa[0], a1 = sa[1], a2 = sa[2];
    const uint32_t* szr = szf + srow + g;
    const uint32_t* zr = szr + (long) NMAT * (IN / GS) * OUT;
    const int zg = (int) zr[0], zh = (int) zr[8];
    const float sg = __uint_as_float(szr[0]), sh = __uint_as_float(szr[8]);
    const float fg = fmaf((float) (d[0] - zg * a0), 65536.f, (float) (d[1] - zg * a1) * 256.f) + (float) (p2g - zg * a2);
    const float fh = fmaf((float) ((d[2] >> 4) - zh * a0), 65536.f, (float) ((d[3] >> 4) - zh * a1) * 256.f)
                     + (float) ((p2h >> 4) - zh * a2);
    acc[0] = fmaf(fg, sg, acc[0]);
    acc[2] = fmaf(fh, sh, acc[2]);
#pragma unroll
    for (int r = 0; r < 4; r++) d[r] = 0;
}

// A task's split partials: token 0 is column 0 of the C fragment, lanes t = 0, registers 0 (row g) and 2 (row g+8)
__device__ __forceinline__ void store_partials(float* __restrict__ part, const float (&acc)[2][4], float f, int s,
                                               int m, int out0, int g, int t) {
    if (t == 0) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float* o = part + ((long) s * NMAT + m) * OUT + out0 + 16 * h;
            o[g] = acc[h][0] * f;
            o[g + 8] = acc[h][2] * f;
        }
    }
}

// The weights' layouts: 4-bit [mat][tile][st][lane] uint4, one 16-byte load per lane, tile and super-tile; 3-bit
// (round 34) [mat][tile][st][3][lane] u32, three coalesced words per lane, tile and super-tile.
__device__ __forceinline__ uint32_t ld_stream32(const uint32_t* p) {
    uint32_t v;
    asm volatile("ld.global.nc.L1::no_allocate.u32 %0, [%1];\n" : "=r"(v) : "l"(p));
    return v;
}
template <int BITS> struct WLane {
    using P = std::conditional_t<BITS == 4, uint4, uint32_t>;   // the unit of the weights' pointers
    static constexpr int N = BITS == 4 ? 4 : 3;       // words per lane, tile and super-tile
    static constexpr int STRIDE = BITS == 4 ? 32 : 96;   // P per tile and super-tile
    // both tiles' words of one super-tile (3 bits: word by word, the two tiles interleaved)
    __device__ static __forceinline__ void load(const P* pa, const P* pb, uint32_t (&va)[N], uint32_t (&vb)[N]) {
        if constexpr (BITS == 4) {
            const uint4 a = ld_stream(pa), b = ld_stream(pb);
            va[0] = a.x; va[1] = a.y; va[2] = a.z; va[3] = a.w;
            vb[0] = b.x; vb[1] = b.y; vb[2] = b.z; vb[3] = b.w;
        } else {
#pragma unroll
            for (int b = 0; b < 3; b++) { va[b] = ld_stream32(pa + 32 * b); vb[b] = ld_stream32(pb + 32 * b); }
        }
    }
};

// The integer form's "nibble words" (byte i = row g's q | row g+8's q << 4, mode 3's operand) from a lane's words:
// 4-bit, the words as stored; 3-bit, two words of their 2-bit parts (nibble word 2h + 1's shifted up by 2 over 2h's)
// and one of their third bits (word n's at bit 2 of each nibble shifted by +0, +1, -2, -1), reassembled by shifts and
// masks.
template <int BITS>
__device__ __forceinline__ void nibble_words(const uint32_t (&wv)[WLane<BITS>::N], uint32_t (&nw)[4]) {
    if constexpr (BITS == 4) {
#pragma unroll
        for (int n = 0; n < 4; n++) nw[n] = wv[n];
    } else {
        const uint32_t l0 = wv[0], l1 = wv[1], hb = wv[2];
        nw[0] = (l0 & 0x33333333u) | (hb & 0x44444444u);
        nw[1] = ((l0 >> 2) & 0x33333333u) | ((hb >> 1) & 0x44444444u);
        nw[2] = (l1 & 0x33333333u) | ((hb << 2) & 0x44444444u);
        nw[3] = ((l1 >> 2) & 0x33333333u) | ((hb << 1) & 0x44444444u);
    }
}

// One task (returns what the loads-only form folds). MODE 0: loads only; 1: fp16 form; 2 (4-bit only): integer form,
// an mma per plane; 3: integer form, the planes as columns (round 34). The lane's words of its two tiles stream
// through a ring DEPTH super-tiles deep.
// fp16 form, lane (g, t), super-tile word kt (k16 tile): 4 bits, the engine's layout: nibble p of the two 16-bit halves
// of word kt = pair P = 4kt + p (p = 0: row g inputs 16kt+2t(+1); 1: row g+8, same; 2: row g, +8; 3: row g+8, +8),
// rows g+8 taken in place as 16q (the 1/16 folds into their scale); 3 bits, gq_mma's 3-bit layout (pair P < 15 in word
// P / 5 at shift 3 (P % 5), low input in bits 0-2, high in 16-18; P = 15's value bits in bits 15 / 31 of words 0, 1, 2;
// gm_dequant<3>). B: xq[k16][t] uint4 {hi 2t, hi 2t+8, lo, lo}.
// Integer form (4 bits), word 2j (+1) for k32 tile j: byte i low nibble = row g (g+8) input 32j + 4t + i, high nibble =
// input 32j + 16 + 4t + i. B: xd[plane][k32][t] uint2 {inputs 4t..+3, 16+4t..+3} as signed bytes.
template <int BITS, int MODE>
__device__ __forceinline__ uint32_t run_task(const uint32_t* __restrict__ w, const Task& k) {
    static_assert(MODE != 2 || BITS == 4, "an mma per plane: 4-bit weights only");
    using L = WLane<BITS>;
    const int s = k.s, m = k.m, lane = k.lane, g = lane >> 2, t = lane & 3;
    uint32_t x = 0;
    using P = typename L::P;
    const P* w0 = reinterpret_cast<const P*>(w) + (((long) m * (OUT / 16) + 2 * k.p) * ST + s * STS) * L::STRIDE + lane;
    const P* w1 = w0 + (long) ST * L::STRIDE;
    uint32_t ra[DEPTH][L::N], rb[DEPTH][L::N];
#pragma unroll
    for (int i = 0; i < DEPTH; i++) L::load(w0 + i * L::STRIDE, w1 + i * L::STRIDE, ra[i], rb[i]);
    float acc[2][4] = {};
    float fl[2][4] = {};
    int il[2][3][4] = {};
    const int out0 = 32 * k.p;
#pragma unroll
    for (int i = 0; i < STS; i++) {
        uint32_t wv[2][L::N];
#pragma unroll
        for (int b = 0; b < L::N; b++) { wv[0][b] = ra[i % DEPTH][b]; wv[1][b] = rb[i % DEPTH][b]; }
        if (i + DEPTH < STS)
            L::load(w0 + (i + DEPTH) * L::STRIDE, w1 + (i + DEPTH) * L::STRIDE, ra[i % DEPTH], rb[i % DEPTH]);
        const int st = s * STS + i, grp = st * 64 / GS;
        if constexpr (MODE == 0) {
            if constexpr (BITS == 4)
                x ^= wv[0][0] ^ wv[0][1] ^ wv[0][2] ^ wv[0][3] ^ wv[1][0] ^ wv[1][1] ^ wv[1][2] ^ wv[1][3];
            else x ^= wv[0][0] ^ wv[0][1] ^ wv[0][2] ^ wv[1][0] ^ wv[1][1] ^ wv[1][2];
        } else if constexpr (MODE == 1) {
            const uint32_t* szr = k.szf + k.srow(grp);
#pragma unroll
            for (int h = 0; h < 2; h++)
                fp16_tile<BITS>(wv[h], k.xq, st, t, szr[16 * h + g], szr[16 * h + g + 8], fl[h], acc[h]);
        } else if constexpr (MODE == 3) {
            // planes as the mma's columns: one mma per 32 inputs and tile multiplies all three
            const uint2 bj[2] = {k.xd[(st * 2) * 32 + lane], k.xd[(st * 2 + 1) * 32 + lane]};
#pragma unroll
            for (int h = 0; h < 2; h++) {
                uint32_t nw[4];
                nibble_words<BITS>(wv[h], nw);
                int_super_tile(nw, bj, il[h][0]);
                if ((st + 1) * 64 % GS == 0) int_period_end(il[h][0], acc[h], k.sx + grp * 3, k.szf, k.srow(grp) + 16 * h, g);
            }
        } else {
            const uint32_t* szr = k.szf + k.srow(grp);
            uint2 bd[3][2];
#pragma unroll
            for (int pl = 0; pl < 3; pl++)
#pragma unroll
                for (int j = 0; j < 2; j++) bd[pl][j] = k.xd[((long) pl * (IN / 32) + st * 2 + j) * 4 + t];
#pragma unroll
            for (int h = 0; h < 2; h++) {
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    uint32_t a[4];
                    a[0] = wv[h][2 * j] & 0x0F0F0F0Fu;
                    a[1] = wv[h][2 * j + 1] & 0x0F0F0F0Fu;
                    a[2] = (wv[h][2 * j] >> 4) & 0x0F0F0F0Fu;
                    a[3] = (wv[h][2 * j + 1] >> 4) & 0x0F0F0F0Fu;
#pragma unroll
                    for (int pl = 0; pl < 3; pl++) mma_u8s8(il[h][pl], a, bd[pl][j].x, bd[pl][j].y);
                }
                if ((st + 1) * 64 % GS == 0) {
                    const uint32_t zl = szr[16 * h + g], zh = szr[16 * h + g + 8];
                    const int S = k.sx[grp];
                    const float sc[2] = {__uint_as_float(zl), __uint_as_float(zh)};
#pragma unroll
                    for (int r = 0; r < 4; r++) {
                        const int row = r < 2 ? 0 : 1;
                        const long long v = ((long long) il[h][0][r] << 16) + ((long long) il[h][1][r] << 8)
                                            + il[h][2][r];
                        // zero points: stored beside the scales (szf + NMAT*groups*OUT), as ints
                        const int z = (int) k.szf[(long) NMAT * (IN / GS) * OUT + k.srow(grp) + 16 * h + g + 8 * row];
                        acc[h][r] = fmaf(__ll2float_rn(v - (long long) z * S), sc[row], acc[h][r]);
                        il[h][0][r] = il[h][1][r] = il[h][2][r] = 0;
                    }
                }
            }
        }
    }
    if constexpr (MODE != 0) store_partials(k.part, acc, k.xe[s], s, m, out0, g, t);
    return x;
}

// The probe's kernel for a width (4 or 3) and form: a persistent grid of NW-warp blocks, warp w taking tasks w, w +
// warps, ...: (matrix m, pair p of 16-output tiles, split s), split fastest
template <int BITS, int MODE>
__global__ void __launch_bounds__(NW * 32) probe(const uint32_t* __restrict__ w, const uint32_t* __restrict__ szf,
        const uint4* __restrict__ xq, const uint2* __restrict__ xd, const int* __restrict__ sx,
        const float* __restrict__ xe, float* __restrict__ part, unsigned* __restrict__ sink) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int tasks = NMAT * OTP * KSPLIT;
    uint32_t x = 0;
    for (int k = blockIdx.x * NW + warp; k < tasks; k += gridDim.x * NW) {
        const Task task{szf, xq, xd, sx, xe, part, k % KSPLIT, (k / KSPLIT) % OTP, k / (KSPLIT * OTP), lane};
        x ^= run_task<BITS, MODE>(w, task);
    }
    if (x == 0x12345678u) sink[0] = x;
}

int main() {
    const cudaDeviceProp prop = probe_device();
    printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    std::mt19937_64 rng(std::random_device{}());
    const long words = (long) NMAT * OUT * IN / 8;                 // 4-bit
    const int groups = IN / GS;
    // the matrices: q in [0, 16), zero z in [0, 16), scale > 0; activation x gaussian
    std::vector<uint8_t> q((size_t) NMAT * OUT * IN);
    std::vector<int> z((size_t) NMAT * groups * OUT);
    std::vector<float> sc((size_t) NMAT * groups * OUT), x(IN);
    for (auto& v : q) v = rng() & 15;
    for (auto& v : z) v = rng() & 15;
    std::normal_distribution<double> nd(0, 1);
    for (auto& v : sc) v = __half2float(__float2half((float) (0.002 + 0.01 * std::abs(nd(rng)))));   // fp16 scales
    for (auto& v : x) v = (float) (3.0 * nd(rng));
    auto Q = [&](int m, int o, int i) { return (int) q[((size_t) m * OUT + o) * IN + i]; };
    // float64 reference
    std::vector<double> ref((size_t) NMAT * OUT);
    for (int m = 0; m < NMAT; m++)
        for (int o = 0; o < OUT; o++) {
            double s = 0;
            for (int i = 0; i < IN; i++) {
                const int gi = i / GS;
                s += (double) sc[((size_t) m * groups + gi) * OUT + o] * (Q(m, o, i) - z[((size_t) m * groups + gi) * OUT + o]) * x[i];
            }
            ref[(size_t) m * OUT + o] = s;
        }
    // the two weight layouts
    std::vector<uint32_t> wf(words), wi(words), wi3(words);
    for (int m = 0; m < NMAT; m++)
        for (int ot = 0; ot < OUT / 16; ot++)
            for (int st = 0; st < ST; st++)
                for (int lane = 0; lane < 32; lane++) {
                    const int g = lane >> 2, t = lane & 3;
                    uint32_t* pf = &wf[((((size_t) m * (OUT / 16) + ot) * ST + st) * 32 + lane) * 4];
                    uint32_t* pi = &wi[((((size_t) m * (OUT / 16) + ot) * ST + st) * 32 + lane) * 4];
                    for (int kt = 0; kt < 4; kt++) {
                        uint32_t v = 0;
                        for (int pp = 0; pp < 4; pp++) {
                            const int row = ot * 16 + g + ((pp & 1) ? 8 : 0);
                            const int in0 = st * 64 + 16 * kt + 2 * t + ((pp & 2) ? 8 : 0);
                            v |= (uint32_t) Q(m, row, in0) << (4 * pp);
                            v |= (uint32_t) Q(m, row, in0 + 1) << (16 + 4 * pp);
                        }
                        pf[kt] = v;
                    }
                    for (int j = 0; j < 2; j++)
                        for (int r = 0; r < 2; r++) {
                            uint32_t v = 0;
                            const int row = ot * 16 + g + 8 * r;
                            for (int i = 0; i < 4; i++) {
                                const int ilo = st * 64 + 32 * j + 4 * t + i, ihi = ilo + 16;
                                v |= (uint32_t) (Q(m, row, ilo) | (Q(m, row, ihi) << 4)) << (8 * i);
                            }
                            pi[2 * j + r] = v;
                        }
                    uint32_t* p3 = &wi3[((((size_t) m * (OUT / 16) + ot) * ST + st) * 32 + lane) * 4];
                    for (int j = 0; j < 2; j++)
                        for (int hf = 0; hf < 2; hf++) {
                            uint32_t v = 0;
                            for (int i = 0; i < 4; i++) {
                                const int in0 = st * 64 + 32 * j + 16 * hf + 4 * t + i;
                                v |= (uint32_t) (Q(m, ot * 16 + g, in0) | (Q(m, ot * 16 + g + 8, in0) << 4)) << (8 * i);
                            }
                            p3[2 * j + hf] = v;
                        }
                }
    // scales: fp16 form (scale, 1024 + z | 1024 + 16z for rows g+8) as half2; integer form scale as float, then z
    std::vector<uint32_t> szf((size_t) NMAT * groups * OUT), szi((size_t) 2 * NMAT * groups * OUT);
    for (size_t i = 0; i < szf.size(); i++) {
        const int o = (int) (i % OUT);
        const bool hi = (o & 15) >= 8;
        const __half s = __float2half(sc[i]);
        const __half zc = __float2half(hi ? 1024.f + 16.f * z[i] : 1024.f + z[i]);
        __half2 h2 = __halves2half2(s, zc);
        szf[i] = *reinterpret_cast<uint32_t*>(&h2);
        float f = __half2float(s);                                 // the same fp16 scale in both forms
        szi[i] = *reinterpret_cast<uint32_t*>(&f);
        szi[szf.size() + i] = (uint32_t) z[i];
    }
    // activations: per split exponent; fp16 hi/lo planes; integer digit planes and per-group sums
    std::vector<float> xe(KSPLIT), xe2(KSPLIT);
    std::vector<uint32_t> xq((size_t) IN / 16 * 4 * 4);
    std::vector<int8_t> xd((size_t) 3 * IN);
    std::vector<int> X(IN), sx(groups, 0);
    for (int s = 0; s < KSPLIT; s++) {
        float mx = 0;
        for (int i = s * SPLIT; i < (s + 1) * SPLIT; i++) mx = std::max(mx, std::abs(x[i]));
        int e = 0;
        std::frexp(mx, &e);                                        // mx in [2^(e-1), 2^e)
        const int ef = e - 1 - 14, ei = e - 1 - 21;                // fp16 form: max in [2^14, 2^15); integer: [2^21, 2^22)
        xe[s] = std::ldexp(1.f, ef);
        xe2[s] = std::ldexp(1.f, ei);
        for (int i = s * SPLIT; i < (s + 1) * SPLIT; i++) {
            X[i] = (int) std::lrint(std::ldexp((double) x[i], -ei));
        }
    }
    for (int i = 0; i < IN; i++) {
        const int d2 = ((X[i] + 128) & 255) - 128, x1 = (X[i] - d2) >> 8;
        const int d1 = ((x1 + 128) & 255) - 128, d0 = (x1 - d1) >> 8;
        if (d0 < -128 || d0 > 127) { printf("digit out of range\n"); return 1; }
        xd[0 * IN + i] = (int8_t) d0; xd[1 * IN + i] = (int8_t) d1; xd[2 * IN + i] = (int8_t) d2;
        sx[i / GS] += X[i];
    }
    // xd as [plane][k32][t] uint2 {4t..4t+3, 16+4t..}
    std::vector<uint32_t> xdp((size_t) 3 * IN / 32 * 4 * 2);
    for (int pl = 0; pl < 3; pl++)
        for (int j = 0; j < IN / 32; j++)
            for (int t = 0; t < 4; t++)
                for (int hf = 0; hf < 2; hf++) {
                    uint32_t v = 0;
                    for (int i = 0; i < 4; i++) v |= (uint32_t) (uint8_t) xd[(size_t) pl * IN + 32 * j + 16 * hf + 4 * t + i] << (8 * i);
                    xdp[(((size_t) pl * (IN / 32) + j) * 4 + t) * 2 + hf] = v;
                }
    // mode 3: xd3 [k32][lane] uint2, lane (g, t) plane g's digits (0 for g >= 3); sa [group][plane] digit sums
    std::vector<uint32_t> xd3((size_t) IN / 32 * 32 * 2, 0);
    std::vector<int> sa((size_t) groups * 3, 0);
    for (int j = 0; j < IN / 32; j++)
        for (int lane = 0; lane < 12; lane++)
            for (int hf = 0; hf < 2; hf++)
                xd3[((size_t) j * 32 + lane) * 2 + hf] = xdp[(((size_t) (lane >> 2) * (IN / 32) + j) * 4 + (lane & 3)) * 2 + hf];
    for (int pl = 0; pl < 3; pl++)
        for (int i = 0; i < IN; i++) sa[(size_t) (i / GS) * 3 + pl] += xd[(size_t) pl * IN + i];
    for (int kt = 0; kt < IN / 16; kt++)
        for (int t = 0; t < 4; t++) {
            const int s = kt * 16 / SPLIT;
            const float down = 1.f / xe[s];
            auto hl = [&](int i, __half& h, __half& l) {
                const float a = x[i] * down;
                h = __float2half_rn(a);
                l = __float2half_rn(a - __half2float(h));
            };
            __half h0, l0, h1, l1, h8, l8, h9, l9;
            hl(16 * kt + 2 * t, h0, l0); hl(16 * kt + 2 * t + 1, h1, l1);
            hl(16 * kt + 2 * t + 8, h8, l8); hl(16 * kt + 2 * t + 9, h9, l9);
            __half2 a = __halves2half2(h0, h1), b = __halves2half2(h8, h9), c = __halves2half2(l0, l1), d = __halves2half2(l8, l9);
            uint32_t* o = &xq[((size_t) kt * 4 + t) * 4];
            o[0] = *reinterpret_cast<uint32_t*>(&a); o[1] = *reinterpret_cast<uint32_t*>(&b);
            o[2] = *reinterpret_cast<uint32_t*>(&c); o[3] = *reinterpret_cast<uint32_t*>(&d);
        }
    // device buffers
    uint4 *dwf, *dwi, *dxq; uint2* dxd; uint32_t *dszf, *dszi; int* dsx; float *dxe, *dxe2, *dpart; unsigned* dsink;
    CK(cudaMalloc(&dwf, words * 4)); CK(cudaMalloc(&dwi, words * 4));
    CK(cudaMalloc(&dxq, xq.size() * 4)); CK(cudaMalloc(&dxd, xdp.size() * 4));
    CK(cudaMalloc(&dszf, szf.size() * 4)); CK(cudaMalloc(&dszi, szi.size() * 4));
    uint4* dwi3; uint2* dxd3; int* dsa;
    CK(cudaMalloc(&dwi3, words * 4)); CK(cudaMalloc(&dxd3, xd3.size() * 4)); CK(cudaMalloc(&dsa, sa.size() * 4));
    CK(cudaMemcpy(dwi3, wi3.data(), words * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dxd3, xd3.data(), xd3.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dsa, sa.data(), sa.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dsx, groups * 4)); CK(cudaMalloc(&dxe, KSPLIT * 4)); CK(cudaMalloc(&dxe2, KSPLIT * 4));
    CK(cudaMalloc(&dpart, (size_t) KSPLIT * NMAT * OUT * 4)); CK(cudaMalloc(&dsink, 4));
    CK(cudaMemcpy(dwf, wf.data(), words * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dwi, wi.data(), words * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dxq, xq.data(), xq.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dxd, xdp.data(), xdp.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dszf, szf.data(), szf.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dszi, szi.data(), szi.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dsx, sx.data(), groups * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dxe, xe.data(), KSPLIT * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dxe2, xe2.data(), KSPLIT * 4, cudaMemcpyHostToDevice));
    // a copy's bandwidth for scale (bytes read + written)
    {
        void *a, *b; const size_t n = 1ull << 30;
        CK(cudaMalloc(&a, n)); CK(cudaMalloc(&b, n));
        cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
        float best = 1e9;
        for (int r = 0; r < 5; r++) {
            cudaEventRecord(e0); CK(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice)); cudaEventRecord(e1);
            cudaEventSynchronize(e1); float ms; cudaEventElapsedTime(&ms, e0, e1); best = std::min(best, ms);
        }
        printf("device copy: %.0f GB/s (read + write)\n", 2.0 * n / best / 1e6);
        cudaFree(a); cudaFree(b);
    }
    const double wbytes = words * 4.0 + (double) NMAT * groups * OUT * 4;   // weights + (scale, zero) words
    // times a kernel (30 launches, the median and the best) and checks its partials' sums against ref (none: loads only)
    auto run = [&](const char* name, auto kernel, auto wp, const uint32_t* szp, const float* xep, const uint2* xdp_,
                   const int* sxp, const std::vector<double>* refp, double bytes) {
        int perSm = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, NW * 32, 0));
        const int grid = prop.multiProcessorCount * perSm;
        cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
        std::vector<float> ts;
        for (int r = 0; r < 30; r++) {
            CK(cudaMemset(dpart, 0, (size_t) KSPLIT * NMAT * OUT * 4));
            cudaEventRecord(e0);
            kernel<<<grid, NW * 32>>>(wp, szp, dxq, xdp_, sxp, xep, dpart, dsink);
            cudaEventRecord(e1);
            CK(cudaEventSynchronize(e1));
            float ms; cudaEventElapsedTime(&ms, e0, e1); ts.push_back(ms);
        }
        CK(cudaGetLastError());
        std::sort(ts.begin(), ts.end());
        const double med = ts[ts.size() / 2];
        double err = 0, nrm = 0;
        if (refp) {
            std::vector<float> part((size_t) KSPLIT * NMAT * OUT);
            CK(cudaMemcpy(part.data(), dpart, part.size() * 4, cudaMemcpyDeviceToHost));
            for (size_t o = 0; o < (size_t) NMAT * OUT; o++) {
                double y = 0;
                for (int s = 0; s < KSPLIT; s++) y += part[(size_t) s * NMAT * OUT + o];
                err = std::max(err, std::abs(y - (*refp)[o]));
                nrm = std::max(nrm, std::abs((*refp)[o]));
            }
        }
        printf("%-28s %3d blocks/SM: median %.1f us, best %.1f us = %.0f GB/s of weights; max |err| / max |y| = %.2e\n",
               name, perSm, med * 1e3, ts[0] * 1e3, bytes / (med * 1e-3) / 1e9, nrm > 0 ? err / nrm : 0.0);
    };
    printf("shape: %d x (%d x %d), 4-bit, groups of %d, splits of %d inputs, %d super-tiles in flight: %.1f MB of weights and scales\n",
           NMAT, OUT, IN, GS, SPLIT, DEPTH, wbytes / 1e6);
    for (int rep = 0; rep < 2; rep++) {
        run("loads only", probe<4, 0>, (const uint32_t*) dwf, dszf, dxe, dxd, dsx, nullptr, wbytes);
        run("fp16 hi/lo (engine form)", probe<4, 1>, (const uint32_t*) dwf, dszf, dxe, dxd, dsx, &ref, wbytes);
        run("integer u8 x s8, 3 planes", probe<4, 2>, (const uint32_t*) dwi, dszi, dxe2, dxd, dsx, &ref, wbytes);
        run("integer, planes as columns", probe<4, 3>, (const uint32_t*) dwi3, dszi, dxe2, dxd3, dsa, &ref, wbytes);
    }

    // 3 bits (round 34): q3 = q & 7 and z3 = z & 7 on the same scales and activation
    const long words3 = (long) NMAT * OUT * IN * 3 / 32;
    auto Q3 = [&](int m, int o, int i) { return Q(m, o, i) & 7; };
    std::vector<double> ref3((size_t) NMAT * OUT);
    for (int m = 0; m < NMAT; m++)
        for (int o = 0; o < OUT; o++) {
            double sum = 0;
            for (int gi = 0; gi < groups; gi++) {
                const size_t si = ((size_t) m * groups + gi) * OUT + o;
                double gs = 0;
                for (int i = gi * GS; i < (gi + 1) * GS; i++) gs += (double) (Q3(m, o, i) - (z[si] & 7)) * x[i];
                sum += (double) sc[si] * gs;
            }
            ref3[(size_t) m * OUT + o] = sum;
        }
    std::vector<uint32_t> w3f(words3, 0), w3i(words3, 0);
    for (int m = 0; m < NMAT; m++)
        for (int ot = 0; ot < OUT / 16; ot++)
            for (int st = 0; st < ST; st++)
                for (int lane = 0; lane < 32; lane++) {
                    const int g = lane >> 2, t = lane & 3;
                    const size_t base = (((size_t) m * (OUT / 16) + ot) * ST + st) * 96 + lane;
                    uint32_t wf3[3] = {0, 0, 0};
                    for (int P = 0; P < 16; P++) {
                        const int kt = P / 4, pp = P % 4;
                        const int row = ot * 16 + g + ((pp & 1) ? 8 : 0);
                        const int in0 = st * 64 + 16 * kt + 2 * t + ((pp & 2) ? 8 : 0);
                        const uint32_t lo = (uint32_t) Q3(m, row, in0), hi = (uint32_t) Q3(m, row, in0 + 1);
                        if (P < 15) wf3[P / 5] |= lo << (3 * (P % 5)) | hi << (16 + 3 * (P % 5));
                        else for (int b = 0; b < 3; b++) wf3[b] |= ((lo >> b) & 1u) << 15 | ((hi >> b) & 1u) << 31;
                    }
                    uint32_t nw[4];
                    for (int n = 0; n < 4; n++) {
                        uint32_t v = 0;
                        for (int i = 0; i < 4; i++) {
                            const int in0 = st * 64 + 32 * (n >> 1) + 16 * (n & 1) + 4 * t + i;
                            v |= (uint32_t) (Q3(m, ot * 16 + g, in0) | (Q3(m, ot * 16 + g + 8, in0) << 4)) << (8 * i);
                        }
                        nw[n] = v;
                    }
                    const uint32_t wi3w[3] = {
                        (nw[0] & 0x33333333u) | ((nw[1] & 0x33333333u) << 2),
                        (nw[2] & 0x33333333u) | ((nw[3] & 0x33333333u) << 2),
                        (nw[0] & 0x44444444u) | ((nw[1] & 0x44444444u) << 1) | ((nw[2] & 0x44444444u) >> 2) | ((nw[3] & 0x44444444u) >> 1)};
                    for (int b = 0; b < 3; b++) { w3f[base + 32 * b] = wf3[b]; w3i[base + 32 * b] = wi3w[b]; }
                }
    // (scale, zero): fp16 form (scale, 1024 + z3), 1024 + 8 z3 for rows g+8 (gm_dequant<3> takes their fields as 8q,
    // gq_mma_zeros); integer form the float scale, then z3
    std::vector<uint32_t> szf3(szf.size()), szi3(szi.size());
    for (size_t i = 0; i < szf.size(); i++) {
        const __half sh = __float2half(sc[i]);
        const float k = (i % OUT) % 16 >= 8 ? 8.f : 1.f;
        __half2 h2 = __halves2half2(sh, __float2half(1024.f + k * (z[i] & 7)));
        szf3[i] = *reinterpret_cast<uint32_t*>(&h2);
        szi3[i] = szi[i];
        szi3[szf.size() + i] = (uint32_t) (z[i] & 7);
    }
    uint32_t *dw3f, *dw3i, *dszf3, *dszi3;
    CK(cudaMalloc(&dw3f, words3 * 4)); CK(cudaMalloc(&dw3i, words3 * 4));
    CK(cudaMalloc(&dszf3, szf3.size() * 4)); CK(cudaMalloc(&dszi3, szi3.size() * 4));
    CK(cudaMemcpy(dw3f, w3f.data(), words3 * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dw3i, w3i.data(), words3 * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dszf3, szf3.data(), szf3.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dszi3, szi3.data(), szi3.size() * 4, cudaMemcpyHostToDevice));
    const double wbytes3 = words3 * 4.0 + (double) NMAT * groups * OUT * 4;
    printf("3-bit: %.1f MB of weights and scales\n", wbytes3 / 1e6);
    for (int rep = 0; rep < 2; rep++) {
        run("3-bit loads only", probe<3, 0>, (const uint32_t*) dw3f, dszf3, dxe, dxd, dsx, nullptr, wbytes3);
        run("3-bit fp16 hi/lo (engine)", probe<3, 1>, (const uint32_t*) dw3f, dszf3, dxe, dxd, dsx, &ref3, wbytes3);
        run("3-bit integer, planes cols", probe<3, 3>, (const uint32_t*) dw3i, dszi3, dxe2, dxd3, dsa, &ref3, wbytes3);
    }
    return 0;
}
