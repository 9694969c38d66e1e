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
// Every variant runs the same memory pipeline (a persistent grid, a warp per (matrix, two 16-output tiles, split)
// task, each lane loading its 16-byte weight words DEPTH super-tiles ahead into registers), so the differences are the
// arithmetic's. Shape: the w1+w3 launch of a Mixtral-8x7B decode step (2 experts x 2 projections of 14336 x 4096),
// 4-bit, groups of 128, splits of 512 inputs. Both arithmetic forms are checked against float64 on the host.
//
// Build and run (the device machine has nvcc): bin/gpu-int8-probe, or
//   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -I engine/src/main/cuda -o probe int8_gemv_probe.cu && ./probe
#include "module.cu"   // the engine's kernels and helpers (gm_mma, gm_or1024, ...): the fp16 form is theirs
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <random>
#include <algorithm>
#include "probe_common.cuh"

constexpr int NMAT = 4, OUT = 14336, IN = 4096, GS = 128, SPLIT = 512;   // inputs per split
constexpr int ST = IN / 64;                 // super-tiles (64 inputs) per row tile
constexpr int STS = SPLIT / 64;             // super-tiles per split
constexpr int KSPLIT = IN / SPLIT;
constexpr int OTP = OUT / 32;               // tile pairs per matrix
constexpr int NW = 4;                       // warps per block
constexpr int DEPTH = 4;                    // super-tiles in flight per lane

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

// MODE 0: loads only; 1: fp16 form; 2: integer form.
// fp16 form, lane (g, t), super-tile word kt (k16 tile): the engine's 4-bit layout: nibble p of the two 16-bit halves
// of word kt = pair P = 4kt + p (p = 0: row g inputs 16kt+2t(+1); 1: row g+8, same; 2: row g, +8; 3: row g+8, +8);
// rows g+8 are taken in place as 16q (the 1/16 folds into their scale). B: xq[k16][t] uint4 {hi 2t, hi 2t+8, lo, lo}.
// Integer form, word 2j (+1) for k32 tile j: byte i low nibble = row g (g+8) input 32j + 4t + i, high nibble = input
// 32j + 16 + 4t + i. B: xd[plane][k32][t] uint2 {inputs 4t..+3, 16+4t..+3} as signed bytes.
template <int MODE>
__global__ void __launch_bounds__(NW * 32) probe(const uint4* __restrict__ w, const uint32_t* __restrict__ szf,
        const uint4* __restrict__ xq, const uint2* __restrict__ xd, const int* __restrict__ sx,
        const float* __restrict__ xe, float* __restrict__ part, unsigned* __restrict__ sink) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int tasks = NMAT * OTP * KSPLIT;
    uint32_t x = 0;
    for (int k = blockIdx.x * NW + warp; k < tasks; k += gridDim.x * NW) {
        const int s = k % KSPLIT, p = (k / KSPLIT) % OTP, m = k / (KSPLIT * OTP);
        const uint4* w0 = w + (((long) m * (OUT / 16) + 2 * p) * ST + s * STS) * 32 + lane;
        const uint4* w1 = w0 + (long) ST * 32;
        uint4 ra[DEPTH], rb[DEPTH];
#pragma unroll
        for (int i = 0; i < DEPTH; i++) { ra[i] = ld_stream(w0 + i * 32); rb[i] = ld_stream(w1 + i * 32); }
        float acc[2][4] = {};
        float fl[2][4] = {};
        int il[2][3][4] = {};
        const int out0 = 32 * p;
#pragma unroll
        for (int i = 0; i < STS; i++) {
            const uint4 ua = ra[i % DEPTH], ub = rb[i % DEPTH];
            if (i + DEPTH < STS) { ra[i % DEPTH] = ld_stream(w0 + (i + DEPTH) * 32); rb[i % DEPTH] = ld_stream(w1 + (i + DEPTH) * 32); }
            const int st = s * STS + i, grp = st * 64 / GS;
            if constexpr (MODE == 0) {
                x ^= ua.x ^ ua.y ^ ua.z ^ ua.w ^ ub.x ^ ub.y ^ ub.z ^ ub.w;
            } else if constexpr (MODE == 1) {
                const uint32_t* szr = szf + ((long) m * (IN / GS) + grp) * OUT + out0;
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const uint32_t zl = szr[16 * h + g], zh = szr[16 * h + g + 8];
                    const __half2 zlo = __high2half2(gm_u2h(zl)), zhi = __high2half2(gm_u2h(zh));
                    const uint4 u = h ? ub : ua;
                    const uint32_t wv[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
                    for (int kt = 0; kt < 4; kt++) {
                        const uint4 b = xq[(st * 4 + kt) * 4 + t];
                        uint32_t a[4];
                        gm_dequant<4>(wv, kt, zlo, zhi, a);
                        gm_mma(fl[h], a, b.x, b.y);
                        gm_mma(fl[h], a, b.z, b.w);
                    }
                    if ((st + 1) * 64 % GS == 0) {          // the period's end: scale, restart the chain
                        const float sl = __low2float(gm_u2h(zl)), sh = __low2float(gm_u2h(zh)) * 0.0625f;
                        acc[h][0] = fmaf(fl[h][0], sl, acc[h][0]); acc[h][1] = fmaf(fl[h][1], sl, acc[h][1]);
                        acc[h][2] = fmaf(fl[h][2], sh, acc[h][2]); acc[h][3] = fmaf(fl[h][3], sh, acc[h][3]);
#pragma unroll
                        for (int r = 0; r < 4; r++) fl[h][r] = 0.f;
                    }
                }
            } else {
                const uint32_t* szr = szf + ((long) m * (IN / GS) + grp) * OUT + out0;
                uint2 bd[3][2];
#pragma unroll
                for (int pl = 0; pl < 3; pl++)
#pragma unroll
                    for (int j = 0; j < 2; j++) bd[pl][j] = xd[((long) pl * (IN / 32) + st * 2 + j) * 4 + t];
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const uint4 u = h ? ub : ua;
                    const uint32_t wv[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
                    for (int j = 0; j < 2; j++) {
                        uint32_t a[4];
                        a[0] = wv[2 * j] & 0x0F0F0F0Fu;
                        a[1] = wv[2 * j + 1] & 0x0F0F0F0Fu;
                        a[2] = (wv[2 * j] >> 4) & 0x0F0F0F0Fu;
                        a[3] = (wv[2 * j + 1] >> 4) & 0x0F0F0F0Fu;
#pragma unroll
                        for (int pl = 0; pl < 3; pl++) mma_u8s8(il[h][pl], a, bd[pl][j].x, bd[pl][j].y);
                    }
                    if ((st + 1) * 64 % GS == 0) {
                        const uint32_t zl = szr[16 * h + g], zh = szr[16 * h + g + 8];
                        const int S = sx[grp];
                        const float sc[2] = {__uint_as_float(zl), __uint_as_float(zh)};
#pragma unroll
                        for (int r = 0; r < 4; r++) {
                            const int row = r < 2 ? 0 : 1;
                            const long long v = ((long long) il[h][0][r] << 16) + ((long long) il[h][1][r] << 8)
                                                + il[h][2][r];
                            // zero points: stored beside the scales (szf + NMAT*groups*OUT), as ints
                            const int z = (int) szf[(long) NMAT * (IN / GS) * OUT + ((long) m * (IN / GS) + grp) * OUT
                                                    + out0 + 16 * h + g + 8 * row];
                            acc[h][r] = fmaf(__ll2float_rn(v - (long long) z * S), sc[row], acc[h][r]);
                            il[h][0][r] = il[h][1][r] = il[h][2][r] = 0;
                        }
                    }
                }
            }
        }
        if constexpr (MODE != 0) {
            const float f = xe[s];
            // token 0 is column 0 of the C fragment: lanes t = 0, registers 0 (row g) and 2 (row g+8)
            if (t == 0) {
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    float* o = part + ((long) s * NMAT + m) * OUT + out0 + 16 * h;
                    o[g] = acc[h][0] * f;
                    o[g + 8] = acc[h][2] * f;
                }
            }
        }
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
    std::vector<uint32_t> wf(words), wi(words);
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
    auto run = [&](const char* name, auto kernel, const uint4* wp, const uint32_t* szp, const float* xep) {
        int perSm = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, NW * 32, 0));
        const int grid = prop.multiProcessorCount * perSm;
        cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
        std::vector<float> ts;
        for (int r = 0; r < 30; r++) {
            CK(cudaMemset(dpart, 0, (size_t) KSPLIT * NMAT * OUT * 4));
            cudaEventRecord(e0);
            kernel<<<grid, NW * 32>>>(wp, szp, dxq, dxd, dsx, xep, dpart, dsink);
            cudaEventRecord(e1);
            CK(cudaEventSynchronize(e1));
            float ms; cudaEventElapsedTime(&ms, e0, e1); ts.push_back(ms);
        }
        CK(cudaGetLastError());
        std::sort(ts.begin(), ts.end());
        const double med = ts[ts.size() / 2];
        double err = 0, nrm = 0;
        if (kernel != probe<0>) {
            std::vector<float> part((size_t) KSPLIT * NMAT * OUT);
            CK(cudaMemcpy(part.data(), dpart, part.size() * 4, cudaMemcpyDeviceToHost));
            for (size_t o = 0; o < (size_t) NMAT * OUT; o++) {
                double y = 0;
                for (int s = 0; s < KSPLIT; s++) y += part[(size_t) s * NMAT * OUT + o];
                err = std::max(err, std::abs(y - ref[o]));
                nrm = std::max(nrm, std::abs(ref[o]));
            }
        }
        printf("%-28s %3d blocks/SM: median %.1f us, best %.1f us = %.0f GB/s of weights; max |err| / max |y| = %.2e\n",
               name, perSm, med * 1e3, ts[0] * 1e3, wbytes / (med * 1e-3) / 1e9, nrm > 0 ? err / nrm : 0.0);
    };
    printf("shape: %d x (%d x %d), 4-bit, groups of %d, splits of %d inputs: %.1f MB of weights and scales\n",
           NMAT, OUT, IN, GS, SPLIT, wbytes / 1e6);
    for (int rep = 0; rep < 2; rep++) {
        run("loads only", probe<0>, dwf, dszf, dxe);
        run("fp16 hi/lo (engine form)", probe<1>, dwf, dszf, dxe);
        run("integer u8 x s8, 3 planes", probe<2>, dwi, dszi, dxe2);
    }
    return 0;
}
