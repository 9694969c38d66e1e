// Design probe (bin/gpu-smem-fill-probe): how fast can the SMs fill shared memory from L2-resident and from
// DRAM-resident data, by per-thread 16-byte cp.async (gq_wg's and gq_mmv's copies), by one thread's bulk copies
// (cp.async.bulk, the 1-D form of the tensor memory accelerator, completing on an mbarrier), and by plain 16-byte
// loads and shared-memory stores? gq_wg's large-batch products are bound by copying their activation tile (hot in L2)
// into shared memory at ~2.8 TB/s (round 18); this says whether that is the copy mechanism's ceiling or the L2's.
//
// Each block (one per SM by default, 512 threads) runs a ring of NS stages of SB bytes: stage k is filled from the
// source at a block-dependent offset while the stages before it are consumed (every thread reads one word of it, so
// nothing is optimised away), with NS - 1 stages in flight. Sources: a small buffer (2 MB, L2-resident after the
// first pass) or a large one (2 GB: every byte from DRAM once per launch). Then gq_wg's stage (mixed_kernel): 20 KB of
// activations and 8 KB of weights per super-tile, with the activations as contiguous pieces or as gq_wg's row-major
// xw read them before round 26 (80 rows of 256 bytes, 16 KB apart), in variants of the threads' mapping, padding and
// timing that separate the causes.
//
// H100 (round 26): 7.8 TB/s into shared memory from L2 by cp.async (8.4 by bulk copies of 4 KB or more; 2.4 by bulk
// copies of 512 bytes), 3.2 TB/s from DRAM; gq_wg's stage mix 6.7 TB/s with contiguous activation pieces against 2.9
// with the row-major pieces, whatever the mapping (16 threads per row 2.8), the padding (rows 256 bytes longer 2.8),
// the blocks' timing (staggered 3.0; contiguous pieces read by a tile's blocks in step 6.2) or the block length.
// gq_wg's own copies (wgmma probe, -DGW_PROBE=6) ran at ~2.8 TB/s with the row-major layout.
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include "probe_common.cuh"

constexpr int NT = 512;

// MODE 0: every thread copies SB / NT bytes of the stage as 16-byte cp.async.cg (one commit group per stage);
// MODE 1: thread 0 copies the stage as PIECES cp.async.bulk copies onto the stage's mbarrier;
// MODE 2: every thread loads its 16-byte words (ld.global.nc) and stores them to shared memory, one stage's loads in
//         flight at a time (a baseline: no copy runs ahead)
template <int MODE, int NS, int SB, int PIECES>
__global__ void __launch_bounds__(NT) fill_kernel(const uint4* __restrict__ src, size_t src_stages, int iters,
                                                  unsigned* sink) {
    extern __shared__ __align__(128) uint4 smem[];
    __shared__ __align__(8) uint64_t bars[NS];
    constexpr int SU = SB / 16;                  // uint4 per stage
    constexpr int PER = SU / NT;                 // uint4 per thread and stage
    const int tid = threadIdx.x;
    const unsigned sbase = (unsigned) __cvta_generic_to_shared(smem);
    const unsigned bbase = (unsigned) __cvta_generic_to_shared(bars);
    if (MODE == 1 && tid == 0) {
        for (int s = 0; s < NS; s++)
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" :: "r"(bbase + 8u * s));
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();
    auto stage_src = [&](int k) -> const uint4* {
        return src + ((size_t) blockIdx.x * 97 + (size_t) k) % src_stages * SU;
    };
    uint4 regs[MODE == 2 ? PER : 1];
    auto issue = [&](int k) {
        if (k >= iters) return;
        const int s = k % NS;
        const uint4* g = stage_src(k);
        if (MODE == 0) {
#pragma unroll
            for (int i = 0; i < PER; i++)
                asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n"
                             :: "r"(sbase + 16u * (s * SU + tid + i * NT)), "l"(g + tid + i * NT));
            asm volatile("cp.async.commit_group;\n" ::: "memory");
        } else if (MODE == 1) {
            if (tid == 0) {
                const unsigned bar = bbase + 8u * s;
                asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" :: "r"(bar), "r"(SB) : "memory");
#pragma unroll
                for (int p = 0; p < PIECES; p++)
                    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
                                 :: "r"(sbase + 16u * s * SU + (unsigned) (p * (SB / PIECES))),
                                    "l"(reinterpret_cast<const char*>(g) + p * (SB / PIECES)), "r"(SB / PIECES), "r"(bar)
                                 : "memory");
            }
        }
    };
    unsigned acc = 0;
    if (MODE == 2) {
        for (int k = 0; k < iters; k++) {
            const uint4* g = stage_src(k);
#pragma unroll
            for (int i = 0; i < PER; i++) regs[i] = __ldg(g + tid + i * NT);
            const int s = k % NS;
#pragma unroll
            for (int i = 0; i < PER; i++) smem[s * SU + tid + i * NT] = regs[i];
            __syncthreads();
            acc ^= reinterpret_cast<const unsigned*>(smem + s * SU)[(tid * 37) % (SU * 4)];
        }
    } else {
        for (int k = 0; k < NS - 1; k++) issue(k);
        for (int k = 0; k < iters; k++) {
            const int s = k % NS;
            if (MODE == 0) {
                asm volatile("cp.async.wait_group %0;\n" :: "n"(NS - 2) : "memory");
                __syncthreads();              // stage k landed for every thread; stage k - 1 is free
            } else {
                const unsigned bar = bbase + 8u * s;
                const unsigned phase = (unsigned) (k / NS) & 1u;
                asm volatile("{\n .reg .pred p;\n W: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n @!p bra W;\n}\n"
                             :: "r"(bar), "r"(phase) : "memory");
                __syncthreads();              // every thread past stage k - 1's reads
            }
            issue(k + NS - 1);                // refills stage k - 1's slot
            acc ^= reinterpret_cast<const unsigned*>(smem + s * SU)[(tid * 37) % (SU * 4)];
        }
        if (MODE == 0) asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    }
    if (acc == 0x9e3779b9u) sink[blockIdx.x * NT + tid] = acc;   // practically never
}

// gq_wg's stage at decode batch 256, as pure copies: per super-tile an activation tile of SA bytes (L2-resident: the
// small source) and 16 weight pieces of 512 bytes, one per 16-output tile, 32 KB apart (from DRAM: the large source;
// block b streams tile group b, b + grid, ... over 64 super-tiles each), all by per-thread 16-byte cp.async. The
// activations are copied AA super-tiles ahead (a ring of AA + 1 stages), the weights AW ahead (AW + 1 stages); one
// commit group per super-tile holds the activations of k + AA and the weights of k + AW. gq_wg's ring is AA = AW = 2.
// ROWS: 0, the stage's activations as one contiguous piece of the source; 1, as gq_wg reads xw: 80 token rows of 256
// bytes (the super-tile's 64 inputs, hi and lo), a row's whole 16 KB of 4,096 inputs apart, 8 consecutive threads
// copying the same uint4 of 8 rows (act_tiles then counts 80-row tiles of 1.25 MB; the super-tile advances along them).
template <int AA, int AW, int SA, int ROWS = 0>
__global__ void __launch_bounds__(NT) mixed_kernel(const uint4* __restrict__ act, int act_tiles,
                                                   const uint4* __restrict__ wts, int groups, int iters, unsigned* sink) {
    extern __shared__ __align__(128) uint4 smem[];
    constexpr int AU = SA / 16, WU = 512, KST = 64;   // uint4 per activation stage and weight stage; super-tiles per row
    uint4* ar = smem;                          // (AA + 1) * AU
    uint4* wr = smem + (AA + 1) * AU;          // (AW + 1) * WU
    const int tid = threadIdx.x;
    const unsigned as = (unsigned) __cvta_generic_to_shared(ar), ws = (unsigned) __cvta_generic_to_shared(wr);
    auto copy_act = [&](int k) {
        if (k < 0 || k >= iters) return;
        const unsigned d = as + 16u * ((k % (AA + 1)) * AU);
        if (ROWS && ROWS != 5) {               // tile (block, k / 64)'s rows, super-tile k % 64 of each (4: block-staggered)
            constexpr int RL = KST * 16 + (ROWS == 3 ? 16 : 0);   // uint4 per row (3: padded by 256 bytes)
            const int col = ROWS == 4 ? (k + blockIdx.x * 7) % KST : k % KST;
            const uint4* g = act + (size_t) ((blockIdx.x + k / KST) % act_tiles) * (80 * RL) + col * 16;
#pragma unroll
            for (int i = 0; i < (AU + NT - 1) / NT; i++) {
                const int c = tid + i * NT;
                // 1, 3: gq_wg's mapping (8 consecutive threads: one uint4 of 8 rows); 2: 16 consecutive threads: a row
                const int row = ROWS == 2 ? c >> 4 : (c >> 7) * 8 + (c & 7), q = ROWS == 2 ? c & 15 : (c >> 3) & 15;
                // gq_wg's place of (row, q) in the stage: [hl][kt][8-row group][kc][row in group]
                const int so = ((q >> 1) & 1) * 640 + (q >> 2) * 160 + (row >> 3) * 16 + (q & 1) * 8 + (row & 7);
                if (c < AU)
                    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(d + 16u * so), "l"(g + (size_t) row * RL + q));
            }
        } else {                               // contiguous pieces (5: the blocks of one tile read the same piece at once)
            const unsigned piece = ROWS == 5 ? (blockIdx.x % 8) * KST + k % KST : blockIdx.x * 7 + k;
            const uint4* g = act + (size_t) (piece % act_tiles) * AU;
#pragma unroll
            for (int i = 0; i < (AU + NT - 1) / NT; i++)
                if (tid + i * NT < AU)
                    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(d + 16u * (tid + i * NT)), "l"(g + tid + i * NT));
        }
    };
    auto copy_w = [&](int k) {
        if (k < 0 || k >= iters) return;
        const size_t grp = ((size_t) blockIdx.x + (size_t) gridDim.x * (k / KST)) % groups, st = k % KST;
        const uint4* g = wts + (grp * 16 + tid / 32) * (KST * 32) + st * 32 + (tid & 31);
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(ws + 16u * ((k % (AW + 1)) * WU + tid)), "l"(g));
    };
    for (int j = 0; j < AW; j++) copy_w(j);   // groups -AA .. -1: the weights of 0 .. AW - 1, the activations of 0 .. AA - 1
    for (int j = 0; j < AA; j++) {
        copy_act(j);
        asm volatile("cp.async.commit_group;\n" ::: "memory");
    }
    unsigned acc = 0;
    for (int k = 0; k < iters; k++) {
        asm volatile("cp.async.wait_group %0;\n" :: "n"(AA - 1) : "memory");   // the group of k - AA (or earlier): complete
        __syncthreads();                       // k's stages landed for every thread; k - 1's stages are free
        copy_act(k + AA);
        copy_w(k + AW);
        asm volatile("cp.async.commit_group;\n" ::: "memory");
        acc ^= reinterpret_cast<const unsigned*>(ar + (k % (AA + 1)) * AU)[(tid * 37) % (AU * 4)];
        acc ^= reinterpret_cast<const unsigned*>(wr + (k % (AW + 1)) * WU)[tid * 4];
    }
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    if (acc == 0x9e3779b9u) sink[blockIdx.x * NT + tid] = acc;
}

// The best of reps timed calls of launch() (after two untimed ones), in milliseconds.
template <class F>
static float best_ms(F launch, int reps) {
    for (int r = 0; r < 2; r++) launch();
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    float best = 1e30f;
    for (int r = 0; r < reps; r++) {
        CK(cudaEventRecord(e0));
        launch();
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float ms = 0.f;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        best = ms < best ? ms : best;
    }
    CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
    return best;
}

// blocks of `iters` super-tiles, `per_sm` of them per SM in turn (shared memory padded to one resident block per SM)
template <int AA, int AW, int SA, int ROWS = 0>
static void run_mixed(const char* name, const uint4* act, size_t act_bytes, const uint4* wts, size_t w_bytes, int sms,
                      unsigned* sink, int iters = 256, int per_sm = 1) {
    auto k = mixed_kernel<AA, AW, SA, ROWS>;
    const int smem = per_sm > 1 ? 200 * 1024 : (AA + 1) * SA + (AW + 1) * 8192;
    CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    const int grid = sms * per_sm;
    const int act_tiles = (int) (act_bytes / (ROWS && ROWS != 5 ? (size_t) 80 * (64 * 256 + (ROWS == 3 ? 256 : 0)) : (size_t) SA)), groups = (int) (w_bytes / (16 * 64 * 512));
    const float best = best_ms([&] { k<<<grid, NT, smem>>>(act, act_tiles, wts, groups, iters, sink); }, 10);
    const double sec = best * 1e-3, ab = (double) grid * iters * SA, wb = (double) grid * iters * 8192;
    std::printf("%-44s AA=%d AW=%d SA=%5d %3d x %d: %7.1f us, %6.0f GB/s into shared memory (activations %5.0f, weights %5.0f)\n",
                name, AA, AW, SA, iters, per_sm, best * 1e3, (ab + wb) / sec / 1e9, ab / sec / 1e9, wb / sec / 1e9);
}

template <int MODE, int NS, int SB, int PIECES>
static void run(const char* name, const uint4* src, size_t src_bytes, int blocks_per_sm, int sms, unsigned* sink) {
    auto k = fill_kernel<MODE, NS, SB, PIECES>;
    const int smem = NS * SB;
    CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, NT, smem));
    if (occ < blocks_per_sm) { std::printf("%-44s NS=%d SB=%5d: %d blocks/SM do not fit (%d)\n", name, NS, SB, blocks_per_sm, occ); return; }
    const int grid = blocks_per_sm * sms;
    const size_t src_stages = src_bytes / SB;
    // bytes per launch: ~2.2 GB for the L2 source, every source byte once for the DRAM source
    const bool dram = src_bytes > (size_t) 256 << 20;
    const int iters = dram ? (int) (src_stages / grid) : (int) ((size_t) 16 << 20) / SB / blocks_per_sm;
    const float best = best_ms([&] { k<<<grid, NT, smem>>>(src, src_stages, iters, sink); }, 10);
    const double bytes = (double) grid * iters * SB;
    std::printf("%-44s NS=%d SB=%5d blocks/SM=%d: %8.1f us, %6.0f GB/s into shared memory (%s)\n", name, NS, SB,
                blocks_per_sm, best * 1e3, bytes / (best * 1e-3) / 1e9, dram ? "DRAM source" : "L2 source");
}

int main() {
    const cudaDeviceProp prop = probe_device();
    const int sms = prop.multiProcessorCount;
    std::printf("%s, %d SMs, L2 %d MB\n", prop.name, sms, prop.l2CacheSize >> 20);
    const size_t small = (size_t) 2 << 20, large = (size_t) 2 << 30;
    uint4 *s, *l;
    unsigned* sink;
    CK(cudaMalloc(&s, small)); CK(cudaMalloc(&l, large)); CK(cudaMalloc(&sink, (size_t) 8 * sms * NT * 4));
    CK(cudaMemset(s, 1, small)); CK(cudaMemset(l, 2, large));
    for (int pass = 0; pass < 2; pass++) {
        const uint4* src = pass == 0 ? s : l;
        const size_t bytes = pass == 0 ? small : large;
        run<0, 4, 32768, 1>("cp.async 16 B per thread", src, bytes, 1, sms, sink);
        run<0, 6, 32768, 1>("cp.async 16 B per thread", src, bytes, 1, sms, sink);
        run<0, 4, 16384, 1>("cp.async 16 B per thread", src, bytes, 2, sms, sink);
        run<1, 4, 32768, 1>("cp.async.bulk, one 32 KB copy per stage", src, bytes, 1, sms, sink);
        run<1, 6, 32768, 1>("cp.async.bulk, one 32 KB copy per stage", src, bytes, 1, sms, sink);
        run<1, 4, 32768, 8>("cp.async.bulk, 8 x 4 KB per stage", src, bytes, 1, sms, sink);
        run<1, 4, 32768, 64>("cp.async.bulk, 64 x 512 B per stage", src, bytes, 1, sms, sink);
        run<1, 4, 16384, 1>("cp.async.bulk, one 16 KB copy per stage", src, bytes, 2, sms, sink);
        run<2, 4, 32768, 1>("ld.global.nc + st.shared 16 B per thread", src, bytes, 1, sms, sink);
    }
    // gq_wg's stage mix (80 rows of activations, 20 KB, and 8 KB of weights per super-tile)
    {
        const size_t mid = (size_t) 10 << 20;   // 8 experts' 80-row tiles of 4,096 inputs (hi and lo): 10 MB
        for (int rep = 0; rep < 2; rep++) {
            run_mixed<2, 2, 20480>("mix, contiguous 20 KB pieces of 10 MB", l, mid, l + ((size_t) 1 << 26), large / 2, sms, sink);
            run_mixed<2, 2, 20480, 1>("mix, gq_wg's rows of 10 MB", l, mid, l + ((size_t) 1 << 26), large / 2, sms, sink);
            run_mixed<2, 2, 20480, 2>("mix, gq_wg's rows, 16 threads per row", l, mid, l + ((size_t) 1 << 26), large / 2, sms, sink);
            run_mixed<2, 2, 20480, 3>("mix, gq_wg's rows padded by 256 B", l, mid, l + ((size_t) 1 << 26), large / 2, sms, sink);
            run_mixed<2, 2, 20480, 4>("mix, gq_wg's rows, blocks staggered in k", l, mid, l + ((size_t) 1 << 26), large / 2, sms, sink);
            run_mixed<2, 2, 20480, 5>("mix, contiguous, a tile's blocks in step", l, mid, l + ((size_t) 1 << 26), large / 2, sms, sink);
            run_mixed<2, 2, 20480, 1>("mix, gq_wg's rows, blocks of 64", l, mid, l + ((size_t) 1 << 26), large / 2, sms, sink, 64, 4);
        }
    }
    for (int rep = 0; rep < 1; rep++) {
        run_mixed<2, 2, 20480>("gq_wg mix, its ring's depth", s, small, l, large, sms, sink);
        run_mixed<3, 3, 20480>("gq_wg mix, one deeper", s, small, l, large, sms, sink);
        run_mixed<2, 4, 20480>("gq_wg mix, weights 4 ahead", s, small, l, large, sms, sink);
        run_mixed<2, 6, 20480>("gq_wg mix, weights 6 ahead", s, small, l, large, sms, sink);
        run_mixed<2, 10, 20480>("gq_wg mix, weights 10 ahead", s, small, l, large, sms, sink);
        run_mixed<1, 6, 20480>("gq_wg mix, activations 1 ahead, weights 6", s, small, l, large, sms, sink);
        run_mixed<2, 2, 10240>("fp16 activations (10 KB), its ring's depth", s, small, l, large, sms, sink);
        run_mixed<2, 6, 10240>("fp16 activations (10 KB), weights 6 ahead", s, small, l, large, sms, sink);
    }
    {   // the device-to-device copy for scale (bytes read plus bytes written)
        uint4* c;
        CK(cudaMalloc(&c, (size_t) 1 << 30));
        const float best = best_ms([&] { CK(cudaMemcpy(c, l, (size_t) 1 << 30, cudaMemcpyDeviceToDevice)); }, 5);
        std::printf("cudaMemcpy D2D of 1 GiB: %.1f us, %.0f GB/s read + written\n", best * 1e3,
                    2.0 * ((size_t) 1 << 30) / (best * 1e-3) / 1e9);
        CK(cudaFree(c));
    }
    CK(cudaFree(s)); CK(cudaFree(l)); CK(cudaFree(sink));
    return 0;
}
