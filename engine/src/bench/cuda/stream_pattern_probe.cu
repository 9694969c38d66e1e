// Design probe (bin/gpu-stream-probe): the DRAM read rate of gq_mmv's weight stream at batch 1, without its arithmetic,
// against other orders of the same bytes. It answers whether the one-token products (w1+w3 ~1.7 TB/s under ncu) are
// held back by the order in which ~3,000 warps read the weights, or by their own instructions.
//
// The bytes are those of a Mixtral w1+w3 launch at batch 1: 4 matrices (two experts' w1 and w3) of 14,336 x 4,096
// 4-bit weights in gq_mma's layout (16-output tile, then 64-input super-tile, 512 bytes each), ~117 MB. A warp's task
// is a pair of tiles over a split of 16 super-tiles (gq_mmv's tasks at 32 chunks per split), and it copies each slot
// (the pair's two 512-byte pieces of one super-tile) into a ring of D shared-memory slots with cp.async, D - 1 ahead,
// as gq_mmv does, then reads its words back (an xor, so nothing is optimised away). The modes differ in where a slot's
// 1 KB lies:
//   0 tile-major: gq_mma's layout; a slot reads 512 bytes from each of two tiles 32 KB apart, and the warps running at
//     once read pieces 8 KB (the next split) or 64 KB (the next pair) apart
//   1 slot-major: slot i of every task of a matrix adjacent ([matrix][i][task][1 KB]), so warps at the same i read
//     neighbouring kilobytes
//   2 task-contiguous: each task's 16 KB in one run ([matrix][task][i][1 KB])
//   3 grid-stride: the whole buffer as one stream, warp w reading kilobyte w, w + warps, ... (a plain read kernel)
// With SC, each slot also copies the task's 128-byte (scale, zero) row piece and 256 bytes of activations (lanes 0-23),
// as gq_mmv's slots do. ALU adds a chain of dependent integer operations per slot (the dequantisation's share of issue).
// PF sets the weight copies' L2 prefetch size (.L2::128B / .L2::256B), and the last section varies the context's L2
// fetch granularity limit: neither changed the rate on the H100 (round 26: 2.48-2.50 TB/s in mode 0 with any of them).
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include "probe_common.cuh"

constexpr int OUTN = 14336, IN = 4096, MATS = 4, KST = IN / 64, TILES = OUTN / 16, PAIRS = TILES / 2;
constexpr int SPB = 16, KSPLIT = KST / SPB, TASKS_PER_MAT = PAIRS * KSPLIT, TASKS = MATS * TASKS_PER_MAT;
constexpr size_t MAT_U4 = (size_t) TILES * KST * 32;   // uint4 of one matrix's weights
constexpr int NW = 4;                                  // warps per block

// PF: the L2 prefetch size of the copy (PTX .level::prefetch_size): 0 none, 2 .L2::128B, 3 .L2::256B
template <int PF = 0>
__device__ __forceinline__ void cp16(unsigned dst, const void* src, bool on, uint64_t pol) {
#define CP16_ASM(PFQ) asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %2, 0;\n" \
        " @p cp.async.cg.shared.global.L2::cache_hint" PFQ " [%0], [%1], 16, %3;\n}\n" \
        :: "r"(dst), "l"(src), "r"((int) on), "l"(pol))
    if (PF == 3) CP16_ASM(".L2::256B");
    else if (PF == 2) CP16_ASM(".L2::128B");
    else CP16_ASM("");
#undef CP16_ASM
}

// the uint4 where lane's copy q (0: first 512 bytes of the slot, 1: second) of slot i of task r of matrix a starts
template <int MODE>
__device__ __forceinline__ size_t src_index(int a, int r, int i, int q) {
    if (MODE == 0) {
        const int pair = r / KSPLIT, s = r % KSPLIT;
        return (size_t) a * MAT_U4 + ((size_t) (2 * pair + q) * KST + s * SPB + i) * 32;
    } else if (MODE == 1) {
        return (size_t) a * MAT_U4 + ((size_t) i * TASKS_PER_MAT + r) * 64 + 32 * q;
    } else {
        return (size_t) a * MAT_U4 + ((size_t) r * SPB + i) * 64 + 32 * q;
    }
}

template <int MODE, int D, bool SC, int ALU, int PF = 0>
__global__ void __launch_bounds__(NW * 32) stream_kernel(const uint4* __restrict__ w, const uint4* __restrict__ sz,
                                                         const uint4* __restrict__ x, unsigned* sink) {
    extern __shared__ uint4 smem[];
    constexpr int SLOT = 64 + 24;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int gw = blockIdx.x * NW + warp, nwarps = gridDim.x * NW;
    uint64_t pol;
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
    const unsigned ring = (unsigned) __cvta_generic_to_shared(smem + warp * D * SLOT);
    // the warp's slots in order: (task k, slot i) for k = gw, gw + nwarps, ...; in mode 3 slot j of the warp is the
    // buffer's kilobyte gw + j * nwarps
    const int nslots = MODE == 3 ? (int) ((TASKS * SPB - gw + nwarps - 1) / nwarps)
                                 : ((TASKS - gw + nwarps - 1) / nwarps) * SPB;
    auto issue = [&](int j) {
        if (j < nslots) {
            const unsigned dst = ring + 16u * SLOT * (j % D);
            size_t i0, i1;
            int a = 0, r = 0;
            if (MODE == 3) {
                i0 = ((size_t) gw + (size_t) j * nwarps) * 64 + lane;
                i1 = i0 + 32;
            } else {
                const int k = gw + (j / SPB) * nwarps, i = j % SPB;
                a = k / TASKS_PER_MAT; r = k % TASKS_PER_MAT;
                i0 = src_index<MODE>(a, r, i, 0) + lane;
                i1 = src_index<MODE>(a, r, i, 1) + lane;
            }
            cp16<PF>(dst + 16u * lane, w + i0, true, pol);
            cp16<PF>(dst + 16u * (32 + lane), w + i1, true, pol);
            if (SC) {   // lanes 0-7: the (scale, zero) piece of the task's pair (a row per 2 super-tiles); 8-23: x
                const int pair = MODE == 3 ? 0 : r / KSPLIT;
                const int srow = MODE == 3 ? 0 : (((r % KSPLIT) * SPB + (j % SPB)) >> 1);
                const uint4* src = lane < 8 ? sz + (size_t) (a * (KST / 2) + srow) * (OUTN / 4) + pair * 8 + lane
                                            : x + (j % SPB) * 16 + (lane & 15);
                cp16(dst + 16u * (64 + lane), src, lane < 24, lane < 8 ? pol : 0ull);
            }
        }
        asm volatile("cp.async.commit_group;\n" ::: "memory");
    };
    for (int j = 0; j < D - 1; j++) issue(j);
    unsigned acc = 0;
    const uint4* s = smem + warp * D * SLOT;
    for (int j = 0; j < nslots; j++) {
        asm volatile("cp.async.wait_group %0;\n" :: "n"(D - 2) : "memory");
        __syncwarp();
        issue(j + D - 1);
        const uint4* sl = s + SLOT * (j % D);
        const uint4 u = sl[lane], v = sl[32 + lane];
        unsigned h = u.x ^ u.y ^ u.z ^ u.w ^ v.x ^ v.y ^ v.z ^ v.w;
        if (SC) h ^= sl[64 + (lane % 24)].x;
#pragma unroll
        for (int t = 0; t < ALU; t++) h = (h * 2654435761u) ^ (h >> 7);
        acc += h;
    }
    asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    if (acc == 0x12345678u) sink[gw] = acc;   // practically never: keeps the reads
}

template <int MODE, int D, bool SC, int ALU, int PF = 0>
static void run(const char* name, const uint4* w, const uint4* sz, const uint4* x, unsigned* sink, int blocks_per_sm,
                int sms) {
    auto k = stream_kernel<MODE, D, SC, ALU, PF>;
    const int smem = NW * D * (64 + 24) * 16;
    CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    int occ = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, k, NW * 32, smem));
    const int bps = blocks_per_sm < occ ? blocks_per_sm : occ, grid = bps * sms;
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    for (int r = 0; r < 3; r++) k<<<grid, NW * 32, smem>>>(w, sz, x, sink);
    CK(cudaDeviceSynchronize());
    const int reps = 20;
    float best = 1e30f, sum = 0.f;
    for (int r = 0; r < reps; r++) {
        CK(cudaEventRecord(e0));
        k<<<grid, NW * 32, smem>>>(w, sz, x, sink);
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float ms = 0.f;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        best = ms < best ? ms : best;
        sum += ms;
    }
    const double bytes = (double) MATS * MAT_U4 * 16;   // the weights (the scale and activation pieces not counted)
    std::printf("%-34s D=%d blocks/SM=%d: best %7.1f us (%6.0f GB/s of weights), mean %7.1f us\n", name, D, bps,
                best * 1e3, bytes / (best * 1e-3) / 1e9, sum / reps * 1e3);
    CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
}

int main() {
    const cudaDeviceProp prop = probe_device();
    const int sms = prop.multiProcessorCount;
    std::printf("%s, %d SMs; %d tasks of %d slots, %.1f MB of weights\n", prop.name, sms, TASKS, SPB,
                MATS * MAT_U4 * 16 / 1e6);
    const size_t wbytes = MATS * MAT_U4 * 16, szbytes = (size_t) MATS * (KST / 2) * (OUTN / 4) * 16;
    uint4 *w, *sz, *x, *c;
    unsigned* sink;
    CK(cudaMalloc(&w, wbytes)); CK(cudaMalloc(&sz, szbytes)); CK(cudaMalloc(&x, 64 * 16 * 16));
    CK(cudaMalloc(&c, wbytes)); CK(cudaMalloc(&sink, 1 << 20));
    CK(cudaMemset(w, 1, wbytes)); CK(cudaMemset(sz, 2, szbytes)); CK(cudaMemset(x, 3, 64 * 16 * 16));
    // the device-to-device copy, as the bench measures its floor (bytes read plus bytes written)
    {
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
        CK(cudaMemcpy(c, w, wbytes, cudaMemcpyDeviceToDevice));
        float best = 1e30f;
        for (int r = 0; r < 10; r++) {
            CK(cudaEventRecord(e0));
            CK(cudaMemcpy(c, w, wbytes, cudaMemcpyDeviceToDevice));
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            best = ms < best ? ms : best;
        }
        std::printf("%-34s best %7.1f us (%6.0f GB/s read + written)\n", "cudaMemcpy D2D of the weights", best * 1e3,
                    2.0 * wbytes / (best * 1e-3) / 1e9);
    }
    for (int bps : {6, 4}) {
        run<0, 4, true, 0>("0 tile-major (gq_mmv), scales+x", w, sz, x, sink, bps, sms);
        run<0, 4, false, 0>("0 tile-major, weights only", w, sz, x, sink, bps, sms);
        run<1, 4, true, 0>("1 slot-major, scales+x", w, sz, x, sink, bps, sms);
        run<2, 4, true, 0>("2 task-contiguous, scales+x", w, sz, x, sink, bps, sms);
        run<3, 4, false, 0>("3 grid-stride, weights only", w, sz, x, sink, bps, sms);
    }
    run<0, 8, true, 0>("0 tile-major, scales+x", w, sz, x, sink, 4, sms);
    run<1, 8, true, 0>("1 slot-major, scales+x", w, sz, x, sink, 4, sms);
    run<0, 4, true, 40>("0 tile-major, scales+x, ALU 40", w, sz, x, sink, 6, sms);
    run<1, 4, true, 40>("1 slot-major, scales+x, ALU 40", w, sz, x, sink, 6, sms);
    run<2, 4, true, 40>("2 task-contiguous, scales+x, ALU 40", w, sz, x, sink, 6, sms);
    run<0, 4, true, 80>("0 tile-major, scales+x, ALU 80", w, sz, x, sink, 6, sms);
    run<1, 4, true, 80>("1 slot-major, scales+x, ALU 80", w, sz, x, sink, 6, sms);
    // the L2 prefetch size of the weight copies (round 26), at gq_mmv's 5 blocks per SM, then the context's L2 fetch
    // granularity limit (cudaLimitMaxL2FetchGranularity) with no prefetch size
    for (int rep = 0; rep < 2; rep++) {
        run<0, 4, true, 0, 0>("0 tile-major, scales+x, no prefetch", w, sz, x, sink, 5, sms);
        run<0, 4, true, 0, 2>("0 tile-major, scales+x, L2::128B", w, sz, x, sink, 5, sms);
        run<0, 4, true, 0, 3>("0 tile-major, scales+x, L2::256B", w, sz, x, sink, 5, sms);
        run<0, 4, true, 80, 0>("0 tile-major, ALU 80, no prefetch", w, sz, x, sink, 5, sms);
        run<0, 4, true, 80, 3>("0 tile-major, ALU 80, L2::256B", w, sz, x, sink, 5, sms);
        run<3, 4, false, 0, 0>("3 grid-stride, no prefetch", w, sz, x, sink, 5, sms);
        run<3, 4, false, 0, 3>("3 grid-stride, L2::256B", w, sz, x, sink, 5, sms);
    }
    size_t gran0 = 0;
    CK(cudaDeviceGetLimit(&gran0, cudaLimitMaxL2FetchGranularity));
    for (size_t g : {(size_t) 32, (size_t) 64, (size_t) 128}) {
        CK(cudaDeviceSetLimit(cudaLimitMaxL2FetchGranularity, g));
        size_t got = 0;
        CK(cudaDeviceGetLimit(&got, cudaLimitMaxL2FetchGranularity));
        std::printf("L2 fetch granularity limit %zu (asked %zu; default %zu):\n", got, g, gran0);
        run<0, 4, true, 0, 0>("0 tile-major, scales+x, no prefetch", w, sz, x, sink, 5, sms);
    }
    CK(cudaDeviceSetLimit(cudaLimitMaxL2FetchGranularity, gran0));
    CK(cudaFree(w)); CK(cudaFree(sz)); CK(cudaFree(x)); CK(cudaFree(c)); CK(cudaFree(sink));
    return 0;
}
