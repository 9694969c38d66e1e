// Persistent single-token GPTQ products on the tensor cores (gq_mmv_b<BITS>): the split mode of gq_mma_b<BITS>_n1
// (gq_mma.cu) for launches whose token segments hold one row each (decode at batch 1), with the same per-token
// arithmetic, so the partials, and the folds after them, have the same bits.
//
// Why a second kernel: at one token a split of gq_mma_b<BITS>_n1 is a 4-warp block that streams 4 KB per warp
// between a prologue and an epilogue of dependent memory latencies, and most blocks of a MoE launch exit at once
// (unchosen experts). Here a grid sized to the GPU walks a list of tasks, a task being (active matrix, group of
// OT 16-output tiles (GV_OT; GV_OT_8 at 8 bits), split). Each warp streams the super-tiles of its tasks, one after
// the other, through a ring of shared-memory slots filled by cp.async (8 bits on sm_90: bulk copies, gv_bulk): the
// copies of the next tasks are in flight while the current one is computed, with no block barrier anywhere in the
// loop. The tiles of a task are independent mma chains, interleaved, so a warp waits less on the chain's latency per
// byte.
//
// Task k of warp w (w = blockIdx.x * GV_NW + warp, k = w, w + warps, ...): matrix a = k / (groups * ksplit) of the
// active list (matrices whose segment has rows, in matrix order; every block builds the same list), tile group and
// split from the rest (split fastest: neighbouring warps read neighbouring runs of one tile's weights).
// A slot holds one super-tile of the task's tiles: OT x BITS * 8 uint4 of weights as they lie (gm_lds_w reads
// them), the (scale, zero) rows of its two chunks' groups for the task's 16 * OT outputs (2 x 4 * OT uint4;
// one when both chunks share a group), and the token's 16 uint4 of B fragments (gq_mma_prep's plane row).
// Requirements (CudaBackend.mmvFits): every segment has at most one row, uniform groups (cgl >= 0),
// outN % (16 * OT) == 0,
// BITS in {2, 3, 4, 8}.
// sz_rows (may be null): matrix m's (scale, zero) rows are sz_rows[m] uint4 apart, else outN / 4. A table entry may so
// be a run of outN outputs of a wider matrix (its qw and sz offset to the run): q's runs beside k and v in one
// launch (CudaBackend.rmsNormQkvAttention).
#include <type_traits>
#include "common.cuh"

#ifndef GV_NW
#define GV_NW 4   // warps per block (CudaBackend.MMV_WARPS)
#endif
#ifndef GV_OT
#define GV_OT 4   // 16-output tiles per task at 2, 3 and 4 bits: independent mma chains per warp
                  // (CudaBackend.MMV_TILES; H200, round 29, batch 1 against 2 tiles: 4-bit 4.05-4.12 against 4.18-4.20
                  // ms, 3-bit 4.24 against 4.43, fp16 activations 3.95 against 4.05-4.07)
#endif
#ifndef GV_OT_8
#define GV_OT_8 2 // at 8 bits (CudaBackend.MMV_TILES_8): 4 tiles spill at 128 registers (5.36 against 5.27 ms)
#endif
#ifndef GV_MINB
#define GV_MINB 5 // blocks per SM the registers must allow for tasks of 1 or 2 tiles (launch bounds: at most 102
                  // registers; round 22: at 6 blocks, i.e. 80 registers, the compiler recomputed lane constants in the
                  // loop and spilled at 4 bits, and the products took 5-9 % longer)
#endif
#ifndef GV_MINB_4
#define GV_MINB_4 4 // for tasks of 4 tiles (119-128 registers at 2-4 bits)
#endif
#ifndef GV_D
#define GV_D 4    // ring slots per warp: GV_D - 1 in flight while one is computed (CudaBackend.MMV_SLOTS)
#endif
#define GV_MAXMAT 128

// uint4 per slot: the weights of OT output tiles, their (scale, zero) rows for two chunks, the token's B fragments
template <int BITS, int OT> __host__ __device__ constexpr int gv_slot() { return OT * BITS * 8 + 8 * OT + 16; }
// ring slots per warp (8-bit: half, as its slots are twice as large)
template <int BITS> __host__ __device__ constexpr int gv_depth() { return BITS == 8 ? GV_D / 2 : GV_D; }

// The L2 policy of the weight and scale copies, per width. Evict-first (createpolicy + cache_hint) keeps their
// stream, read once per step, from evicting the small kernels' inputs: round 8 (H100) found it paid everywhere
// (moe_combine_reduce 7.1 -> 5.6 us under ncu; 8-bit batch 1 7.8-8.0 against 8.6-9.1 ms). Round 24, with the step as
// one graph and PDL (H100, batch 1, alternating): at 4 bits the policy now costs (per launch w1+w3 65.5 -> 61.2 us,
// q+k+v 14.0 -> 13.0, o 13.5 -> 11.7 without it; end to end 4.43-4.48 against 4.61-4.63 ms), while 3 and 8 bits still
// gain from it (3-bit 4.57 against 4.60-4.66 ms, 8-bit 6.27-6.31 against 6.52-6.62). GV_EVICT_FIRST (2, 3, 8 bits) and
// GV_EVICT_FIRST_4 (4 bits) set it.
#ifndef GV_EVICT_FIRST
#define GV_EVICT_FIRST 1
#endif
#ifndef GV_EVICT_FIRST_4
#define GV_EVICT_FIRST_4 0
#endif
template <int BITS> __host__ __device__ constexpr bool gv_evict_first() {
    return BITS == 4 ? GV_EVICT_FIRST_4 != 0 : GV_EVICT_FIRST != 0;
}

// A 16-byte cp.async under a predicate, as one predicated instruction (no branch, no reconvergence), carrying the L2
// cache policy pol (gv_policy) when EF.
template <bool EF>
__device__ __forceinline__ void gv_cp16_if(bool on, unsigned sdst, const void* src, uint64_t pol) {
    if constexpr (EF) {
        asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %2, 0;\n @p cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %3;\n}\n"
                     :: "r"(sdst), "l"(src), "r"((int) on), "l"(pol));
    } else {
        (void) pol;
        asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %2, 0;\n @p cp.async.cg.shared.global [%0], [%1], 16;\n}\n"
                     :: "r"(sdst), "l"(src), "r"((int) on));
    }
}

// The producer of gq_mmv's ring per width on sm_90 and up: 1, bulk copies (cp.async.bulk, one per active lane: each
// tile's weights, the B fragments, the (scale, zero) rows of one or two chunks) completing on the slot's mbarrier;
// 0, 16-byte cp.async copies by every lane (the only form before sm_90). GV_BULK sets it for 2, 3 and 4 bits, GV_BULK_8
// for 8 bits. H200, round 29, batch 1 (ms per step, cp.async -> bulk): 8-bit 5.61 -> 5.29-5.42 (1 KB per tile and
// copy), 4-bit 4.18-4.22 -> 4.60-4.65, 3-bit 4.42 -> 5.05 (512 and 384 bytes); rings of 6 or 8 slots were slower still.
#ifndef GV_BULK
#define GV_BULK 0
#endif
#ifndef GV_BULK_8
#define GV_BULK_8 1
#endif
template <int BITS> __device__ constexpr bool gv_bulk() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    return BITS == 8 ? GV_BULK_8 != 0 : GV_BULK != 0;
#else
    return false;
#endif
}

// A bulk copy of bytes (a multiple of 16, 16-byte aligned ends) from global to shared memory under a predicate,
// completing bytes on the mbarrier bar; with the L2 cache policy pol when EF.
template <bool EF>
__device__ __forceinline__ void gv_bulk_if(bool on, unsigned sdst, const void* src, unsigned bytes, unsigned bar,
                                           uint64_t pol) {
    if constexpr (EF) {
        asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %4, 0;\n"
                     " @p cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %5;\n}\n"
                     :: "r"(sdst), "l"(src), "r"(bytes), "r"(bar), "r"((int) on), "l"(pol) : "memory");
    } else {
        (void) pol;
        asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %4, 0;\n"
                     " @p cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n}\n"
                     :: "r"(sdst), "l"(src), "r"(bytes), "r"(bar), "r"((int) on) : "memory");
    }
}

// The expected bytes of the slot's bulk copies and its one arrival, by lane 0 of the warp (on: lane == 0).
__device__ __forceinline__ void gv_expect_if(bool on, unsigned bar, unsigned bytes) {
    asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %2, 0;\n @p mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n}\n"
                 :: "r"(bar), "r"(bytes), "r"((int) on) : "memory");
}

// An L2 cache policy for gv_cp16_if (createpolicy): evict-first (the weights' and scales' lines go first when L2
// needs room) or evict-normal (the activations). 0, unused, without EF.
template <bool EF>
__device__ __forceinline__ uint64_t gv_policy(bool evict_first) {
    uint64_t pol = 0;
    if constexpr (EF) {
        if (evict_first) asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
        else asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;\n" : "=l"(pol));
    }
    return pol;
}

// A warp's walk over its tasks k = k0, k0 + step, ...: (active matrix a, output tile ot, split s) as mixed-radix
// digits of k (s fastest), advanced by additions (no division per task).
struct GvCursor {
    int k, a, ot, s;
    __device__ __forceinline__ void start(int k0, int otiles, int ksplit) {
        k = k0;
        const int per = otiles * ksplit;
        a = k0 / per;
        const int r = k0 - a * per;
        ot = r / ksplit;
        s = r - ot * ksplit;
    }
    __device__ __forceinline__ void next(int step, int dA, int dOT, int dS, int otiles, int ksplit) {
        k += step;
        s += dS;
        ot += dOT;
        a += dA;
        if (s >= ksplit) { s -= ksplit; ot++; }
        if (ot >= otiles) { ot -= otiles; a++; }
    }
};

template <int BITS, int OT, int HL>
__device__ __forceinline__ void gq_mmv_body(
        const GqMat* __restrict__ mats, int nexp, int nmat, const int* __restrict__ segs,
        const uint4* __restrict__ xq, const float* __restrict__ xe, int planes, int T, int in, int outN, int cpb,
        int sp, int cgl, int ksplit, int rows_cap, long proj_stride, float* __restrict__ outp,
        const int* __restrict__ sz_rows) {
    extern __shared__ uint4 gv_smem[];
    __shared__ const uint4* s_qw[GV_MAXMAT];
    __shared__ const uint4* s_sz[GV_MAXMAT];
    __shared__ long s_xrow[GV_MAXMAT];      // the segment's row in the plane buffer of gq_mma_prep
    __shared__ long s_orow[GV_MAXMAT];      // proj * proj_stride / outN + offset: the output row base
    __shared__ int s_srow[GV_MAXMAT];       // uint4 per (scale, zero) row
    __shared__ int s_nact;
    constexpr int D = gv_depth<BITS>();
    constexpr int SLOT = gv_slot<BITS, OT>();
    constexpr int WU = BITS * 8;            // uint4 of weights per (output tile, super-tile)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    if (warp == 0) {                        // the active matrices, in matrix order (the same list in every block)
        int nact = 0;
        for (int base = 0; base < nmat; base += 32) {
            const int m = base + lane;
            int off = 0, cnt = 0;
            if (m < nmat) {
                const int e = m % nexp;
                off = segs ? segs[2 * e] : 0;
                cnt = segs ? segs[2 * e + 1] : T;
            }
            const unsigned bal = __ballot_sync(0xffffffffu, cnt > 0);
            if (cnt > 0) {
                const int pos = nact + __popc(bal & ((1u << lane) - 1u));
                const int proj = m / nexp;
                s_qw[pos] = reinterpret_cast<const uint4*>(mats[m].qw);
                s_sz[pos] = reinterpret_cast<const uint4*>(mats[m].sz);
                s_xrow[pos] = (long) (planes == 1 ? 0 : proj) * rows_cap + off;
                s_orow[pos] = (long) proj * (proj_stride / outN) + off;
                s_srow[pos] = sz_rows ? sz_rows[m] : outN >> 2;
            }
            nact += __popc(bal);
        }
        if (lane == 0) s_nact = nact;
    }
    __syncthreads();
    constexpr int SW = 4 * OT;              // uint4 of one chunk's (scale, zero) row over the task's outputs
    const int ogroups = outN / (16 * OT), kst = (in + 63) >> 6, spb = cpb >> 1;
    const int per = ogroups * ksplit, total = s_nact * per;
    const int step = gridDim.x * GV_NW, k0 = blockIdx.x * GV_NW + warp;
    const int dA = step / per, dr = step - dA * per, dOT = dr / ksplit, dS = dr - dOT * ksplit;
    const long rowlen = (long) kst * 16;    // uint4 per token row of xq
    const long tstride = (long) kst * WU;   // uint4 from an output tile's weights to the next tile's
    constexpr bool EF = gv_evict_first<BITS>();
    const uint64_t wpol = gv_policy<EF>(true), npol = gv_policy<EF>(false);   // weights and scales; activations
    const uint4* ring = gv_smem + warp * D * SLOT;
    const unsigned ring_s = (unsigned) __cvta_generic_to_shared(ring);
    const unsigned ring_end = ring_s + 16u * (D * SLOT);

    // producer, cp.async (BULK false): lane copies uint4 lane, lane + 32, ... of the slot's OT * WU of weights (NQ
    // copies), then one uint4 of the others: lanes 0-15 the token's B fragments (16), lanes 16 ... 16 + 2 * SW - 1 the
    // (scale, zero) rows of the task's outputs for chunk 0 and chunk 1 (SW each; chunk 1's only when chunks have groups
    // of their own). What a lane needs per slot is kept as per-lane bases, shifts and strides, set once per task.
    // (Round 22's SASS: ~38 instructions per slot around the 3 copies at 5 blocks per SM, ptxas still recomputing some
    // lane constants, against ~50 before.)
    // Bulk (BULK true): per slot lane 0 arrives on the slot's mbarrier expecting its bytes, then one bulk copy per
    // active lane: lanes 0 ... OT - 1 tile u's WU uint4 of weights, lane OT the token's 16 uint4 of B fragments, lanes
    // OT + 1 and OT + 2 the (scale, zero) rows of chunk 0 and chunk 1 (as above).
    // Either way a lane's other source is po + ((pch + oad) >> osh) * omul uint4 (pch: the super-tile's first chunk).
    // (cp.async, 4 output tiles per task: the others are 48 uint4, a second copy per lane takes lanes 0-15's chunk-1
    // rows: others index lane + 32.)
    static_assert(16 + 2 * SW <= 64, "at most two copies of the others per lane: at most 4 output tiles per task");
    constexpr bool BULK = gv_bulk<BITS>();
    constexpr bool O2 = !BULK && 16 + 2 * SW > 32;   // the second copy of the others
    constexpr int NQ = BULK ? 0 : (OT * WU + 31) / 32;
    __shared__ __align__(8) uint64_t gv_bar[GV_NW * GV_D];   // BULK: the slots' mbarriers
    const unsigned bar_s = (unsigned) __cvta_generic_to_shared(gv_bar + warp * D);
    if constexpr (BULK) {
        if (lane < D) gk_bar_init(bar_s + 8u * lane, 1);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        __syncwarp();
    }
    const bool isw = BULK && lane < OT;    // a weight lane (BULK)
    const bool isx = BULK ? lane == OT : lane < 16;
    const int hc = BULK ? lane - OT - 1 : (lane - 16) / SW;   // scale lanes: the chunk (0/1)
    const int part = BULK ? 0 : (lane - 16) % SW;             // and the uint4 of its row
    const bool son = (BULK ? lane > OT && lane <= OT + 2 : !isx && lane < 16 + 2 * SW) && (hc == 0 || cgl == 0);
    const unsigned ooff = 16u * (BULK ? (isw ? lane * WU : isx ? OT * WU + 2 * SW : OT * WU + hc * SW)
                                      : (isx ? OT * WU + 2 * SW + lane : OT * WU + lane - 16));   // its slot offset
    const unsigned cbytes = 16u * (isw ? WU : isx ? 16 : SW);  // BULK: its copy's bytes
    const unsigned txb = 16u * (OT * WU + 16 + SW * (cgl == 0 ? 2 : 1));   // BULK: a slot's bytes
    const int osh = isx || isw ? 1 : cgl;
    const int hc2 = (lane + 16) / SW, part2 = (lane + 16) % SW;  // O2: the second copy's chunk and uint4 (scales only)
    const bool son2 = O2 && lane + 16 < 2 * SW && (hc2 == 0 || cgl == 0);
    const unsigned ooff2 = 16u * (OT * WU + lane + 16);
    int wofs[NQ > 0 ? NQ : 1];             // cp.async: uint4 from the super-tile's tile 0 to copy q's source
#pragma unroll
    for (int q = 0; q < NQ; q++) { const int idx = lane + 32 * q; wofs[q] = (idx / WU) * (int) tstride + idx % WU; }
    GvCursor pc;
    pc.start(k0, ogroups, ksplit);
    int pi = 0, pn = 0, pch = 0, oad = 0, omul = 0, omul2 = 0;   // omul2: O2's row stride
    const uint4* pw = nullptr;             // cp.async: the task's current super-tile of its first tile
    const uint4* po = nullptr;             // this lane's other: row 0 of its source
    const uint4* po2 = nullptr;            // O2: its second
    auto ptask = [&]() {                    // the producer's task pc: its sources
        const int st_lo = pc.s * spb;
        pn = min(kst - st_lo, spb);
        pch = 2 * st_lo;
        if constexpr (!BULK) pw = s_qw[pc.a] + (long) (OT * pc.ot * kst + st_lo) * WU;
        if (isw) { po = s_qw[pc.a] + (long) (OT * pc.ot + lane) * tstride; oad = 0; omul = WU; }
        else if (isx) { po = xq + s_xrow[pc.a] * rowlen + (BULK ? 0 : lane & 15); oad = 0; omul = 16; }
        else { po = s_sz[pc.a] + pc.ot * SW + part; oad = hc; omul = s_srow[pc.a]; }
        if constexpr (O2) { po2 = s_sz[pc.a] + pc.ot * SW + part2; omul2 = s_srow[pc.a]; }
    };
    if (pc.k < total) ptask();
    unsigned pdst = ring_s, pbar = bar_s;
    // one slot's copies: CW the weights and scales (BULK: and the slot's arrival), CX the B fragments (cp.async: and
    // the commit; both: the whole slot; the prologue splits them around GK_WAIT)
    auto issue = [&](auto cw_, auto cx_) {
        constexpr bool CW = decltype(cw_)::value, CX = decltype(cx_)::value;
        if (pc.k < total) {
            if constexpr (BULK) {
                if (CW) gv_expect_if(lane == 0, pbar, txb);
                gv_bulk_if<EF>(isx ? CX : CW && (isw || son), pdst + ooff, po + (long) ((pch + oad) >> osh) * omul,
                               cbytes, pbar, isx ? npol : wpol);
            } else {
#pragma unroll
                for (int q = 0; q < NQ; q++)
                    gv_cp16_if<EF>(CW && ((OT * WU) % 32 == 0 || lane + 32 * q < OT * WU), pdst + 16u * (lane + 32 * q),
                                   pw + wofs[q], wpol);
                gv_cp16_if<EF>(isx ? CX : CW && son, pdst + ooff, po + (long) ((pch + oad) >> osh) * omul,
                               isx ? npol : wpol);
                if constexpr (O2)
                    gv_cp16_if<EF>(CW && son2, pdst + ooff2, po2 + (long) ((pch + hc2) >> cgl) * omul2, wpol);
                pw += WU;
            }
            pch += 2;
            if (++pi == pn) {
                pi = 0;
                pc.next(step, dA, dOT, dS, ogroups, ksplit);
                if (pc.k < total) ptask();
            }
        }
        if constexpr (!BULK) { if (CX) asm volatile("cp.async.commit_group;\n" ::: "memory"); }
        pdst += 16u * SLOT;
        pbar += 8u;
        if (pdst == ring_end) { pdst = ring_s; pbar = bar_s; }
    };
    using T_ = std::true_type;
    using F_ = std::false_type;
    // The prologue: the weights and scales of the first D - 1 slots are copied before GK_WAIT, while the kernel
    // before this one (gq_mma_prep) still runs; they are constants. The B fragments come from that kernel, so they
    // are copied after it. (The task list above read segs, which the kernel before gq_mma_prep wrote: complete
    // here, as every kernel waits for its own predecessor before it lets the next one start.) The first group
    // committed holds the early copies as well, so the consumer's group count is unchanged.
    {
        const GvCursor pc0 = pc;
        const int pi0 = pi, pn0 = pn, pch0 = pch, oad0 = oad, omul0 = omul, omul20 = omul2;
        const uint4* pw0 = pw;
        const uint4* po0 = po;
        const uint4* po20 = po2;
#pragma unroll 1
        for (int d = 0; d < D - 1; d++) issue(T_{}, F_{});
        pc = pc0; pi = pi0; pn = pn0; pch = pch0; oad = oad0; omul = omul0; omul2 = omul20; pw = pw0; po = po0; po2 = po20;
        pdst = ring_s;
        pbar = bar_s;
    }
    GK_WAIT;
#pragma unroll 1
    for (int d = 0; d < D - 1; d++) issue(F_{}, T_{});

    // 2-4 bits: chunk 1's (scale, zero) row in the slot is its own (cgl 0), else chunk 0's, loaded again: loads from
    // an offset instead of a branch on cgl and its 14 register moves (H200, round 30, batch 1, 8 alternating runs:
    // 4-bit median 4.03 against 4.06 ms, 3-bit 4.15 against 4.18). 8 bits keep the branch (not measured there).
    constexpr bool S1OFF = BITS != 8;
    const int s1off = cgl == 0 ? 4 * SW : 0;
    const uint4* sl = ring;                 // the consumer's slot
    unsigned cbar = bar_s, cphase = 0;      // BULK: its mbarrier and the parity of the phase that fills it
    GvCursor cc;
    cc.start(k0, ogroups, ksplit);
#pragma unroll 1
    for (; cc.k < total; cc.next(step, dA, dOT, dS, ogroups, ksplit)) {
        const int st_lo = cc.s * spb, n = min(kst - st_lo, spb);
        const float f = __ldg(xe + s_xrow[cc.a] * ksplit + cc.s);   // 2^e of the token and split
        // the OT output tiles' chains (gq_mma_body's arithmetic for each), interleaved
        float acc[OT][4], tmp[OT][4];
#pragma unroll
        for (int u = 0; u < OT; u++)
#pragma unroll
            for (int r = 0; r < 4; r++) { acc[u][r] = 0.f; tmp[u][r] = 0.f; }
#pragma unroll 1
        for (int i = 0; i < n; i++) {
            if constexpr (BULK) {
                gk_bar_wait(cbar, cphase);   // the slot landed
                cbar += 8u;
                if (cbar == bar_s + 8u * D) { cbar = bar_s; cphase ^= 1u; }
            } else {
                asm volatile("cp.async.wait_group %0;\n" :: "n"(D - 2) : "memory");
            }
            __syncwarp();                    // the slot landed for every lane; the previous slot is free
            issue(T_{}, T_{});
            uint32_t w[OT][BITS];
#pragma unroll
            for (int u = 0; u < OT; u++) gm_lds_w<BITS>(sl + u * WU, lane, w[u]);
            const uint32_t* S = reinterpret_cast<const uint32_t*>(sl + OT * WU);
            const uint32_t* S1 = S + s1off;
            uint32_t sz[OT][4];
#pragma unroll
            for (int u = 0; u < OT; u++) {
                sz[u][0] = S[16 * u + g]; sz[u][1] = S[16 * u + g + 8];
                if (S1OFF) { sz[u][2] = S1[16 * u + g]; sz[u][3] = S1[16 * u + g + 8]; }
                else if (cgl == 0) { sz[u][2] = S[4 * SW + 16 * u + g]; sz[u][3] = S[4 * SW + 16 * u + g + 8]; }
                else { sz[u][2] = sz[u][0]; sz[u][3] = sz[u][1]; }
            }
            const uint4* xw = sl + OT * WU + 2 * SW + t;
#pragma unroll
            for (int c = 0; c < 2; c++) {
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const int kt = 2 * c + hh;
                    uint32_t av[OT][4];
#pragma unroll
                    for (int u = 0; u < OT; u++)
                        gm_dequant<BITS>(w[u], kt, gm_zero(sz[u][2 * c]), gm_zero(sz[u][2 * c + 1]), av[u]);
                    const uint4 bv = xw[4 * kt];
#pragma unroll
                    for (int u = 0; u < OT; u++) gm_mma(tmp[u], av[u], bv.x, bv.y);
                    if (HL == 2) {               // HL 1 (fp16 activations): the lo plane is 0, its mma left out
#pragma unroll
                        for (int u = 0; u < OT; u++) gm_mma(tmp[u], av[u], bv.z, bv.w);
                    }
                }
                const int ci = 2 * i + c + 1;
                if ((ci & (sp - 1)) == 0 || ci == 2 * n) {   // end of a scale period
#pragma unroll
                    for (int u = 0; u < OT; u++) gm_period_end(acc[u], tmp[u], gm_scale(sz[u][2 * c]), gm_scale(sz[u][2 * c + 1]));
                }
            }
            sl += SLOT;
            if (sl == ring + D * SLOT) sl = ring;
        }
        // p_s = acc * 2^e (* 1/16 for 4-bit outputs g+8), as gq_mma_body; token column 0 only (t == 0, i even)
        if (t == 0) {
            float* dst = outp + ((long) cc.s * rows_cap + s_orow[cc.a]) * outN + cc.ot * 16 * OT + g;
#pragma unroll
            for (int u = 0; u < OT; u++) {
                dst[16 * u] = acc[u][0] * f;
                dst[16 * u + 8] = acc[u][2] * gm_factor_hi<BITS>(f);
            }
        }
    }
    if constexpr (!BULK) asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}

// gq_mmv_b<BITS>: GV_OT (8 bits: GV_OT_8) tiles per task. gq_mmv_b4_t1: one tile per task, for 4-bit launches with
// fewer tasks than the GPU has resident warps (CudaBackend.MMV_ONE_TILE: the one-token q+k+v and o products, whose
// 32-chunk splits leave them a task per warp or less): more tasks, so more warps stream the weights. A tile's chain
// is the same whatever its task holds, so the partials are the same bits.
// The _h1 forms (HL 1) are for fp16 activations (CudaBackend's fp16Activations): gq_mma_prep writes lo = +0, so the
// lo plane's mma, which adds exact zeros, is left out (H200, round 29: batch 1 4.05-4.07 against 4.18-4.24 ms).
#define GQV_KERNEL(NAME, BITS, OT, HL)                                                                          \
    GPTQ4J_KERNEL void __launch_bounds__(GV_NW * 32, OT >= 4 ? GV_MINB_4 : GV_MINB) NAME(                   \
            const GqMat* mats, int nexp, int nmat, const int* segs, const uint4* xq, const float* xe, int planes, \
            int T, int in, int outN, int cpb, int sp, int cgl, int ksplit, int rows_cap, long proj_stride,      \
            float* out, const int* sz_rows) {                                                                   \
        GK_ENTER_LATE;                                                                                          \
        gq_mmv_body<BITS, OT, HL>(mats, nexp, nmat, segs, xq, xe, planes, T, in, outN, cpb, sp, cgl, ksplit,    \
                                  rows_cap, proj_stride, out, sz_rows);                                         \
    }
#define GQV_INSTANCE(BITS, OT) GQV_KERNEL(gq_mmv_b##BITS, BITS, OT, 2) GQV_KERNEL(gq_mmv_b##BITS##_h1, BITS, OT, 1)
GQV_INSTANCE(2, GV_OT)
GQV_INSTANCE(3, GV_OT)
GQV_INSTANCE(4, GV_OT)
GQV_INSTANCE(8, GV_OT_8)
GQV_KERNEL(gq_mmv_b4_t1, 4, 1, 2)
GQV_KERNEL(gq_mmv_b4_t1_h1, 4, 1, 1)
