// A check and timing probe for issue 6 (not part of the engine's module): the engine's large-batch MoE product on
// Hopper's warpgroup MMA (gq_wg_b4 and, on fp16 activations, gq_wg_b4_h1; gq_wg.cu, sm_90a) against its mma.sync kernel (gq_mma_b4_n8 / _n4) on Mixtral's
// w1+w3 launch at decode batch 256: 8 experts x 2 projections of 14336 x 4096, 4-bit, groups of 128, 64 rows per
// expert (pass 0), the rows of 256 tokens routed to 2 random experts each (pass 1) or the bench's skew (pass 2). For
// each kernel: its time, and how many output bits differ from gq_mma_b4_n8's (batch invariance needs 0: one-token products stay on mma.sync); gq_mma_b4_n8 itself is
// spot-checked against float64.
//
// Round 12 (H100) found here, before gq_wg.cu existed: wgmma with A from registers (the dequantised weights) and B
// from shared memory gives gq_mma's bits exactly, also when a period's chain starts with scale-d = 0; the descriptor's
// leading offset steps K and its stride offset steps N (swapped, every output differed). Variants measured then
// (µs for the w1+w3 launch; gq_mma_b4_n8 1,205-1,215): a barrier per super-tile, 4 warpgroups per block 825; one per
// scale period 801; 2 warpgroups per block 1,022-1,112; one warpgroup 1,877; two or four independent chains per
// warpgroup (m64n32 / m64n16, the same bits) 845 / 994; double-buffered period chains (ptxas serialised the wgmma)
// 973. Without the dequantisation 768, without the copies 564, without the wgmma 626: the copies and their waits,
// not the tensor cores, set the pace.
//
// Round 14 (H100, after d3d6bab): PEAK=1 first times the wgmma pattern alone (wg_peak: m64n80k16 / m64n64k16 with A in
// registers, 8 or 32 per wait, 4 warpgroups per block): 972-975 TFLOP/s, so the instruction shape is not a limit.
// gq_wg_b4 on pass 0 took 658 us (182.6 useful TFLOP/s); with parts removed (-DGW_PROBE, wrong outputs): without the
// copies 412, without the dequantisation 645, without the wgmma 541, wgmma alone (no copies, no dequantisation) 403,
// the dequantisation alone 239, the copies alone 540. The copies alone take 2.2x the ideal wgmma time (247 us at
// 975 TFLOP/s with the hi/lo planes), and thread 0 issuing them as bulk copies (cp.async.bulk, one contiguous piece
// per 8-row group) was no faster (532), so the bytes through L2 set that floor, not the copy instructions.
//
// Round 17 (H100; pass 2 added: the bench's skewed routing, 135/128/100/84/40/15/8/2 rows): the stall was the ring's
// refill, not the copies. A stage is refilled once every warp is done with the super-tile GW_LAG + 1 back; with lag 1
// the fastest warpgroups waited for the slowest. Lag 2 (copies 2 ahead instead of 3): 689-695 -> 588 us (pass 0),
// 717-776 -> 667-722 (random), 786-790 -> 746-748 (skewed); releasing a stage right after the warp's wgmma wait
// (GW_EARLY) as well: 566-581 / 632-679 / 740-747. Not kept: L2 prefetch of the weights 4, 8 or 16 super-tiles ahead
// (701-714 / 766-826 / 852-866: more requests in flight are slower), evict-first weights and evict-last activations
// (within 1 %), 64-row tiles with 6 stages (lag 2: 659-661 / 784-786 / 822; lag 3: 574-576 / 725-739 / 761), a ring of
// as many stages as fit a tile's N (653-655 / 675-742 / 761), and a 2-CTA cluster sharing the activation tile (each CTA
// copies one plane and forwards it into the peer's stage with cp.async.bulk shared::cluster; empty barriers count both
// CTAs' warps): 0 bits differing but 786-791 / 852-932 / 1,146-1,151 us, and 708 / 856-874 / 1,022 even without the
// forward, against 566 / 587 / 676 for copying one plane without a cluster: the pair's lock-step costs more than the
// halved activation reads save (BENCHMARKS.md, round 17). Passes 3 and 4 (the skew's experts in ascending and mixed
// order) and w2's shape (-DPROBE_W2): w2 skewed 424-426 us in descending order, 452-470 ascending, 461-481 mixed (1.5
// waves of 192 blocks: the order decides the last wave); w1+w3 746-758 in every order. Starting the experts with the
// most rows first (moe_route writing an order, gq_wg mapping blockIdx.z through it) made w2 421-427 in every order,
// but its extra pointer raised gq_wg's spills (32 -> 60 bytes; w1+w3 +1 %) and end to end it was within the noise
// (batch 256 +0.5 %, 128 +1.3 %, 64 0 in 3 alternating pairs), so it was not kept.
//
// Round 18 (H100): gq_wg now also runs with its blocks taking the matrix fastest (mode bit 1, printed as "interleaved"):
// 567 -> 539 us at 64 rows per expert, 744-755 -> 680 under the skew, with the proxy fence moved before the refill's
// copies. PEAK=1 adds random operands (925-930 TFLOP/s; 830-853 at gq_wg's grid of 896 blocks x 64 super-tiles) and that
// grid with constant ones (890-905). The copies alone (-DGW_PROBE=6) take 511-536 us of the kernel's 536-568: the kernel
// is bound by what it copies, two thirds of which is the activations' hi + lo pair (BENCHMARKS.md, round 18).
//
// Round 27 (H100): with round 26's super-tile-major layout the copies alone still took 522 / 500 us (plain /
// interleaved); B stages in the 128-byte swizzled layout, copied a whole xw row per 16 threads: 377 / 366, the kernel
// 492-500 against 532-536 (w2 236-241 against 258-266), 0 bits differing. The weights' copies alone (-DGW_PROBE=14)
// take ~300 us; as cp.async.bulk pieces of 512 bytes from one thread 673 (the kernel 888): not kept.
//
// Round 32 (H200): each pass also times gq_wg_b4_h1 on fp16 activations (gq_mma_prep's wg bit 1) against gq_mma_b4_n8
// on the same operands: 402-407 us (pass 0), 538-550 under the skew, against gq_wg_b4's 493-498 / 638-656. Upper bounds,
// wrong outputs: without the activations' copies (-DGW_PROBE=8) h1 388-391 / 517-523, b4 459-464 / 594-610; without
// the proxy fence (timing only) h1 398-401 / 531-540. Super-tile p + 1 dequantised while p's wgmma run (two A register
// sets, the loop unrolled by 2; 0 bits differing) spilled at 128 registers (72-104 bytes of local memory) and was
// slower: h1 434-439 (copies as far ahead) and 503-508 (one super-tile less ahead), b4 520-527 / 582-597 (pass 0).
//
// Round 33 (H200): the launch takes gw_threads(4) threads and gw_mt(4) m64 tiles per block. The warp-specialised form
// (a producer warpgroup issuing every copy, two consumer warpgroups of two tiles; GW_WS) runs pass 0 in 325 / 322 us
// (h1) and 437 / 425 (b4) against round 32's 408 / 406 and 505 / 498, 0 bits differing; two tiles per warpgroup
// without the producer (-DGW_WS=0) 417 / 410 and 508 / 491. Build a variant with NVCC_EXTRA (e.g. "-DGW_WS=0
// -DGW_TPW=1" for round 32's form).
//
// Build and run on the GPU machine: bin/gpu-wgmma-probe (nvcc -arch=sm_90a; NVCC_EXTRA="-DGW_LAG=1" for variants).
#include "module.cu"
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <string>
#include <random>
#include "probe_common.cuh"

#ifndef PROBE_ROWS
#define PROBE_ROWS 64     // rows per expert in pass 0 (-DPROBE_ROWS=16: decode batch 64's average)
#endif
#ifdef PROBE_W2   // w2's launch instead (-DPROBE_W2): 8 matrices of 4096 x 14336
constexpr int NEXP = 8, NPROJ = 1, NMAT = NEXP * NPROJ, OUT = 4096, IN = 14336, ROWS = PROBE_ROWS;
#else
constexpr int NEXP = 8, NPROJ = 2, NMAT = NEXP * NPROJ, OUT = 14336, IN = 4096, ROWS = PROBE_ROWS;
#endif
constexpr int KST = IN / 64, KCH = IN / 32, CPB = 16, SPB = CPB / 2, KSPLIT = KCH / CPB, SP = 4, CGL = 2;

template <typename K>
static void check_time(const char* name, K launch, float* out, const std::vector<uint32_t>& ref, int reps, double flop) {
    CK(cudaMemset(out, 0xFF, ref.size() * 4));
    launch();
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    std::vector<uint32_t> got(ref.size());
    CK(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
    long diff = 0; size_t first = (size_t) -1;
    for (size_t i = 0; i < got.size(); i++) if (got[i] != ref[i]) { diff++; if (first == (size_t) -1) first = i; }
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
    CK(cudaEventRecord(a));
    for (int r = 0; r < reps; r++) launch();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms; CK(cudaEventElapsedTime(&ms, a, b));
    const double us = 1000.0 * ms / reps;
    printf("%-24s %8.1f us  %6.1f TFLOP/s useful  output bits differing from gq_mma_b4_n8: %ld of %zu", name, us,
           flop / us * 1e-6, diff, got.size());
    if (first != (size_t) -1) {
        float gv, rv; memcpy(&gv, &got[first], 4); memcpy(&rv, &ref[first], 4);
        printf(" (first at %zu: %g against %g)", first, gv, rv);
    }
    printf("\n");
}

// The ceiling of gq_wg's wgmma pattern alone: 4 warpgroups per block, one block per SM, each warpgroup issuing
// PER x 8 wgmma m64nNk16 (A from registers, B from shared memory, one accumulator chain) between waits, nothing else.
template <int N, int PER>
__global__ void __launch_bounds__(GW_NWG * 128, 1) wg_peak(float* sink, int iters, int rnd) {
    extern __shared__ __align__(128) uint4 sm[];
    // rnd: operands as the kernel sees them (B random normal-ish fp16, A random integers -15..15), else constants
    auto h = [](uint32_t x) { x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; return x ^ (x >> 16); };
    auto bh = [&](uint32_t x) {
        const uint32_t r = h(x);
        return (uint32_t) __half_as_ushort(__float2half(((int) (r & 0xFFFF) - 32768) / 16384.f))
             | ((uint32_t) __half_as_ushort(__float2half(((int) (r >> 16) - 32768) / 16384.f)) << 16);
    };
    auto ah = [&](uint32_t x) {
        const uint32_t r = h(x);
        return (uint32_t) __half_as_ushort(__int2half_rn((int) (r & 31) - 15))
             | ((uint32_t) __half_as_ushort(__int2half_rn((int) ((r >> 8) & 31) - 15)) << 16);
    };
    for (int i = threadIdx.x; i < 3072; i += blockDim.x)
        sm[i] = rnd ? make_uint4(bh(4 * i + 1), bh(4 * i + 2), bh(4 * i + 3), bh(4 * i + 4))
                    : make_uint4(0x3C003C00u, 0, 0x3C003C00u, 0);
    __syncthreads();
    const uint64_t d = gw_desc((unsigned) __cvta_generic_to_shared(sm));
    float tmp[N / 2];
    for (int i = 0; i < N / 2; i++) tmp[i] = 0.f;
    uint32_t a[4][4];
    for (int kt = 0; kt < 4; kt++) for (int i = 0; i < 4; i++)
        a[kt][i] = rnd ? ah(blockIdx.x * 4096 + threadIdx.x * 16 + kt * 4 + i) : 0x3C003C00u ^ (threadIdx.x * 7 + kt + i);
    for (int it = 0; it < iters; it++) {
        gw_fence();
#pragma unroll
        for (int j = 0; j < PER; j++)
#pragma unroll
            for (int kt = 0; kt < 4; kt++) {
                gw_mma<N>(tmp, a[kt], d + (uint64_t) (kt * GW_ROWS * 2), 1);
                gw_mma<N>(tmp, a[kt], d + (uint64_t) (GW_ROWS * 8 + kt * GW_ROWS * 2), 1);
            }
        gw_commit_wait0<N / 2>(tmp);
    }
    float s = 0.f;
    for (int i = 0; i < N / 2; i++) s += tmp[i];
    if (s == 1234.5f) sink[threadIdx.x] = s;
}

template <int N, int PER>
static void peak(int sms, int iters = 4000 / PER, int rnd = 0) {
    float* sink; CK(cudaMalloc(&sink, 4096));
    const int smem = 3072 * 16;
    CK(cudaFuncSetAttribute(wg_peak<N, PER>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    wg_peak<N, PER><<<sms, GW_NWG * 128, smem>>>(sink, 10, rnd);
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    cudaEvent_t a, b; CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
    CK(cudaEventRecord(a));
    wg_peak<N, PER><<<sms, GW_NWG * 128, smem>>>(sink, iters, rnd);
    CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b));
    float ms; CK(cudaEventElapsedTime(&ms, a, b));
    const double flop = 2.0 * 64 * N * 16 * 8.0 * PER * iters * GW_NWG * sms;
    printf("wgmma m64n%dk16 (A in registers), %d per wait, %d warpgroups x %d blocks of %d waits, %s operands: %.1f TFLOP/s, %.1f us\n",
           N, 8 * PER, GW_NWG, sms, iters, rnd ? "random" : "constant", flop / (ms * 1e-3) * 1e-12, ms * 1e3);
    CK(cudaFree(sink));
}

int main() {
    const cudaDeviceProp prop = probe_device();
    printf("device %s, %d SMs, gq_wg: %d stages, %d-row tiles, %d threads of %d m64 tiles per warpgroup%s\n", prop.name,
           prop.multiProcessorCount, GW_STAGES, GW_ROWS, gw_threads(4), gw_tpw(4), GW_WS ? " and a producer warpgroup" : "");
    if (getenv("PEAK")) {
        peak<64, 1>(prop.multiProcessorCount); peak<80, 1>(prop.multiProcessorCount);
        peak<64, 4>(prop.multiProcessorCount); peak<80, 4>(prop.multiProcessorCount);
        peak<32, 1>(prop.multiProcessorCount); peak<32, 4>(prop.multiProcessorCount);
        // gq_wg's w1+w3 grid at 64 rows per expert (16 matrices x 56 blocks of 64 super-tiles): the block turnover
        peak<80, 1>(16 * 56, 64); peak<64, 1>(16 * 56, 64);
        // the same with random operands (the rate depends on the data: 925-930 against 969-978 TFLOP/s, round 18)
        peak<80, 1>(prop.multiProcessorCount, 4000, 1); peak<64, 1>(prop.multiProcessorCount, 4000, 1);
        peak<64, 1>(16 * 56, 64, 1); peak<80, 1>(16 * 56, 64, 1);
    }
    std::mt19937_64 rng(std::random_device{}());
    // expert segments: ROWS rows each (the bench's average at batch 256), uneven (random routing) in the second pass,
    // the bench's skew in the third, the same rows with the experts in ascending and in mixed order in the fourth and
    // fifth (gq_wg's blocks start in expert order: the order decides how well the last wave is filled)
    const int passes = getenv("PASSES") ? atoi(getenv("PASSES")) : 5;   // PASSES=n: the first n passes only
    for (int pass = 0; pass < passes; pass++) {
        int hs[2 * NEXP], T = 0;
        int cnt[NEXP];                                // pass 1: 256 tokens, each routed to 2 distinct random experts
        // pass 2: the bench's skewed routing at batch 256 (round 16: about half the experts get two tiles' rows)
        static const int SKEW[NEXP] = {135, 128, 100, 84, 40, 15, 8, 2};
        static const int MIX[NEXP] = {40, 2, 128, 15, 135, 8, 100, 84};
        for (int e = 0; e < NEXP; e++)
            cnt[e] = pass == 0 ? ROWS : pass == 2 ? SKEW[e] : pass == 3 ? SKEW[NEXP - 1 - e] : pass == 4 ? MIX[e] : 0;
        for (int tok = 0; pass == 1 && tok < 256; tok++) {
            const int a = (int) (rng() % NEXP), b = (a + 1 + (int) (rng() % (NEXP - 1))) % NEXP;
            cnt[a]++; cnt[b]++;
        }
        for (int e = 0; e < NEXP; e++) { hs[2 * e] = T; hs[2 * e + 1] = cnt[e]; T += cnt[e]; }
        printf("pass %d: %d rows (", pass, T);
        for (int e = 0; e < NEXP; e++) printf("%s%d", e ? " " : "", hs[2 * e + 1]);
        printf(")\n");
        // weights in gq_mma's 4-bit layout (every bit pattern is a valid set of fields), (scale, zero) pairs formatted
        // as gq_mma_zeros does, x random normal with a large outlier per row
        const size_t wwords = (size_t) OUT / 16 * KST * 32 * 4, groups = IN / 128;
        std::vector<GqMat> hm(NMAT);
        std::uniform_real_distribution<float> us(0.002f, 0.02f);
        std::uniform_int_distribution<int> uz(0, 15);
        int* cg; CK(cudaMalloc(&cg, KCH * 4));
        { std::vector<int> h(KCH); for (int c = 0; c < KCH; c++) h[c] = c >> CGL; CK(cudaMemcpy(cg, h.data(), KCH * 4, cudaMemcpyHostToDevice)); }
        for (int m = 0; m < NMAT; m++) {
            std::vector<uint32_t> w(wwords);
            for (auto& v : w) v = (uint32_t) rng();
            std::vector<__half2> sz(groups * OUT);
            for (size_t i = 0; i < sz.size(); i++) {
                const int o = (int) (i % OUT);
                sz[i] = __halves2half2(__float2half(us(rng)), __float2half((o % 16 >= 8 ? 16.f : 1.f) * uz(rng) + 1024.f));
            }
            uint32_t* dw; __half2* dsz;
            CK(cudaMalloc(&dw, wwords * 4)); CK(cudaMalloc(&dsz, sz.size() * 4));
            CK(cudaMemcpy(dw, w.data(), wwords * 4, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(dsz, sz.data(), sz.size() * 4, cudaMemcpyHostToDevice));
            hm[m] = GqMat{dw, dsz, nullptr, cg};
        }
        GqMat* mats; CK(cudaMalloc(&mats, NMAT * sizeof(GqMat)));
        CK(cudaMemcpy(mats, hm.data(), NMAT * sizeof(GqMat), cudaMemcpyHostToDevice));
        int* segs; CK(cudaMalloc(&segs, sizeof hs)); CK(cudaMemcpy(segs, hs, sizeof hs, cudaMemcpyHostToDevice));
        std::vector<float> hx((size_t) T * IN);
        std::normal_distribution<float> nd(0.f, 1.f);
        for (auto& v : hx) v = nd(rng);
        for (int r = 0; r < T; r++) hx[(size_t) r * IN + rng() % IN] *= 40.f;
        float* x; CK(cudaMalloc(&x, hx.size() * 4)); CK(cudaMemcpy(x, hx.data(), hx.size() * 4, cudaMemcpyHostToDevice));
        uint4 *xq, *xw; float* xe;
        CK(cudaMalloc(&xq, (size_t) T * KCH * 8 * 16)); CK(cudaMalloc(&xw, (size_t) T * KCH * 8 * 16));
        CK(cudaMalloc(&xe, (size_t) T * KSPLIT * 4));
        for (int wg = 0; wg < 2; wg++) {
            gq_mma_prep<<<dim3((KCH + 31) / 32, T, NMAT), 256>>>(mats, NEXP, 1, segs, x, nullptr, T, IN, T, CPB,
                                                                  wg ? xw : xq, xe, nullptr, 0.f, nullptr, wg);
            CK(cudaGetLastError());
        }
        CK(cudaDeviceSynchronize());
        float* out; CK(cudaMalloc(&out, (size_t) NPROJ * T * OUT * 4));
        const long pstride = (long) T * OUT;
        const int reps = 20;
        const double flop = 2.0 * NPROJ * OUT * (double) IN * T;
        std::vector<uint32_t> ref((size_t) NPROJ * T * OUT);
        auto engine = [&](int nt) {
            auto k = nt == 8 ? gq_mma_b4_n8 : gq_mma_b4_n4;
            const int ws = 8 / nt, window = nt * 8 * (ws * 256 + 16 * GM_PAD) + GM_NW * ws * 4 * 128;
            const int smem = std::min(GM_STAGES, (CPB / 2 + ws - 1) / ws) * window + (nt == 4 ? GM_NW * nt * 4 * 32 * 4 : 0);
            CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
            dim3 grid((OUT / 16 + GM_NW - 1) / GM_NW * ((T + 8 * nt - 1) / (8 * nt)), 1, NMAT);
            return [=] { k<<<grid, GM_NW * 32, smem>>>(mats, NEXP, NMAT, segs, xq, xe, 1, T, IN, OUT, CPB, SP, CGL,
                                                       KSPLIT, 0, T, pstride, out); };
        };
        {   // the reference bits: gq_mma_b4_n8
            auto l = engine(8);
            l(); CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
            CK(cudaMemcpy(ref.data(), out, ref.size() * 4, cudaMemcpyDeviceToHost));
        }
        // a float64 spot check of the reference (64 outputs of expert 0), so a wrong reference cannot pass silently
        {
            std::vector<uint32_t> w0(wwords); std::vector<__half2> sz0(groups * OUT);
            CK(cudaMemcpy(w0.data(), hm[0].qw, wwords * 4, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(sz0.data(), hm[0].sz, sz0.size() * 4, cudaMemcpyDeviceToHost));
            double worst = 0;
            for (int k = 0; k < 64; k++) {
                const int o = (int) (rng() % OUT), r = (int) (rng() % hs[1]);
                double sum = 0;
                for (int j = 0; j < IN; j++) {
                    const int st = j / 64, kt = (j % 64) / 16, kk = j % 16, g = o % 8, hi = (o % 16) >= 8;
                    const int tt = (kk % 8) / 2, p = (hi ? 1 : 0) + (kk >= 8 ? 2 : 0), P = 4 * kt + p;
                    const uint32_t word = w0[gm_word<4>(o / 16, KST, st, g * 4 + tt, P >> 2)];
                    const int q = (word >> (4 * (P & 3) + ((kk & 1) ? 16 : 0))) & 15;
                    const float2 v = __half22float2(sz0[(size_t) (j / 128) * OUT + o]);
                    const double z = hi ? (v.y - 1024.0) / 16.0 : v.y - 1024.0;
                    sum += (double) v.x * (q - z) * hx[(size_t) r * IN + j];
                }
                float got; memcpy(&got, &ref[(size_t) r * OUT + o], 4);
                worst = std::max(worst, std::fabs(got - sum) / (std::fabs(sum) + 1e-3));
            }
            printf("gq_mma_b4_n8 against float64 (64 random outputs of expert 0): worst relative error %.2e\n", worst);
        }
        check_time("gq_mma_b4_n8", engine(8), out, ref, reps, flop);
        check_time("gq_mma_b4_n4", engine(4), out, ref, reps, flop);
        // gq_wg_b4 or gq_wg_b4_h1 on xw: its registers, then timed and checked with the blocks in grid order and with
        // the matrices fastest
        auto time_wg = [&](decltype(&gq_wg_b4) kernel, const char* name) {
            const int smem = gw_smem_bytes(4);
            CK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
            cudaFuncAttributes fa; CK(cudaFuncGetAttributes(&fa, kernel));
            printf("%s: %d registers, %d bytes of local memory, %d bytes of shared memory\n", name, fa.numRegs,
                   (int) fa.localSizeBytes, smem);
            dim3 grid(OUT / (64 * gw_mt(4)), (T + GW_ROWS - 1) / GW_ROWS, NMAT);
            for (int mode = 0; mode <= 2; mode += 2)
                check_time(mode ? (std::string(name) + " (interleaved)").c_str() : name, [=] { kernel<<<grid, gw_threads(4), smem>>>(
                           mats, NEXP, segs, xw, xe, 1, IN, OUT, CPB, SP, CGL, KSPLIT, mode, GW_ROWS, T, pstride, out); },
                           out, ref, reps, flop);
        };
        time_wg(gq_wg_b4, "gq_wg_b4");
        // fp16 activations (gq_mma_prep's wg bit 1: lo = 0): gq_wg_b4_h1 against gq_mma_b4_n8 on the same operands
        for (int wg = 0; wg < 2; wg++) {
            gq_mma_prep<<<dim3((KCH + 31) / 32, T, NMAT), 256>>>(mats, NEXP, 1, segs, x, nullptr, T, IN, T, CPB,
                                                                  wg ? xw : xq, xe, nullptr, 0.f, nullptr, wg | 2);
            CK(cudaGetLastError());
        }
        engine(8)(); CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(ref.data(), out, ref.size() * 4, cudaMemcpyDeviceToHost));
        time_wg(gq_wg_b4_h1, "gq_wg_b4_h1");
        for (auto& h : hm) { CK(cudaFree((void*) h.qw)); CK(cudaFree((void*) h.sz)); }
        CK(cudaFree(mats)); CK(cudaFree(segs)); CK(cudaFree(x)); CK(cudaFree(xq)); CK(cudaFree(xw)); CK(cudaFree(xe));
        CK(cudaFree(out)); CK(cudaFree(cg));
    }
    return 0;
}
