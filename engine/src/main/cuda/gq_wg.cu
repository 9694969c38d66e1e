// GPTQ products for large token tiles on Hopper's warpgroup MMA (wgmma.mma_async, sm_90a only), with gq_mma's
// arithmetic to the bit (see gq_mma.cu for the operands and the order of the sums). Measured on the H100 (bin/gpu-
// wgmma-probe, CudaWgmmaTest): the output bits equal gq_mma_b*_n8's and the one-token kernel's, so a token's result
// still does not depend on the batch.
//
// Why it is faster: gq_mma gives each warp one 16-output tile and every warp copies and reads the whole token tile
// from shared memory for its 16 outputs. Here a block owns GW_NWG m64 tiles (256 outputs) x GW_ROWS tokens; per k16
// tile and m64 tile a warpgroup issues one wgmma m64nNk16 for the hi plane and one for the lo plane, reading B (the
// activations) from shared memory directly, so the token tile is copied once per 256 outputs and no warp loads B
// fragments into registers. A = the weights, dequantised in registers by gm_dequant (a warp's register A fragment of
// wgmma is mma.m16n8k16's). N is the least of 8, 16, 32, 48, 64, 80 covering the tile's rows (72 only with GW_N72): a
// column's sums do not depend on N, and an expert's ~64 rows at decode batch 256 fit one tile of 80.
//
// Chain: a scale period's k16 tiles accumulate into tmp in gq_mma's order (kt ascending, hi then lo); the first wgmma
// of a period runs with scale-d = 0 (d = A * B, the same bits as gq_mma's d = A * B + 0: the H100 runs compared every
// output); at a period end acc = fmaf(tmp, scale, acc) (gm_period_end's arithmetic); at a split end
// y = y + acc * 2^e (gq_mma's loop mode). y lives in shared memory (lane-minor), not in registers.
//
// Warp specialisation (GW_WS, GW_TPW 2; H200, round 33): a block of 3 warpgroups for 2-4-bit weights. The third is a
// producer: after setmaxnreg.dec to GW_WS_PREG registers it issues every copy of every stage (activations, weights,
// (scale, zero) rows, 2^e) as soon as the consumers have released the stage, so the ring runs up to GW_STAGES
// super-tiles ahead whatever the consumers' pace. The two consumer warpgroups (setmaxnreg.inc to GW_WS_CREG) issue no
// copies; each warp owns two 16-output tiles (m64 tiles 2 wg and 2 wg + 1), dequantises the second while the first's
// wgmma run (wgmma.wait_group 1) and finishes the first (period and split folds) while the second's run. Each tile's
// chain is the one-tile form's, so the bits are unchanged (the probe and CudaWgmmaTest compare every output).
// Probe (w1+w3, 64 rows per expert): fp16 activations 322-325 against 406-408 us, two planes 425-437 against 498-505;
// decode batch 256 8,698 against 8,026 tok/s (fp16 activations) and 6,607 against 6,337 (float32), batch 64-128
// +9-19 % (BENCHMARKS.md, round 33). Before it (GW_WS 0, GW_TPW 1): 4 warpgroups of one tile at 128 registers, every
// thread issuing part of each stage's copies one lag behind; two tiles per warpgroup without the producer (GW_WS 0,
// GW_TPW 2) were no faster than that. H200, round 37: four consumer warpgroups of one tile each beside the producer
// (GW_TPW 1, GW_WS_PREG 24, GW_WS_CREG 112: 640 threads leave 96 registers per thread at launch, so the consumers get at
// most 112 and spill) 466-478 against 420-432 us, one plane 365 against 321-325 (the same bits). The schedule ptxas
// gives the loop below puts tile 1's loads and dequantisation between G0's first and second wgmma (37 instructions, every
// N); a __syncwarp() that kept G0's 8 wgmma together was slower (one plane 332-337 against 321-326 us).
//
// Activations: gq_mma_prep with wg = 1 writes xw [super-tile][plane][row][kt][4] uint4 = {hi k0-7, hi k8-15, lo k0-7,
// lo k8-15} of k16 tile kt (the same values as its B-fragment layout, reordered): 8 consecutive inputs of a token are
// 16 contiguous bytes (a row of a wgmma "core matrix"), and a tile's rows of one super-tile are one contiguous piece
// (GW_STMAJOR, common.cuh; H100, round 26: batch 256 +2.2 % against the row-major [plane][row][super-tile] layout,
// from whose 256-byte pieces 16 KB apart bin/gpu-smem-fill-probe filled shared memory at 2.9 TB/s, from contiguous
// pieces at 6.7). Shared memory per ring stage (one super-tile of 64 inputs, copied by the producer as soon as it is
// free; without GW_WS by every thread, GW_STAGES-1-GW_LAG super-tiles ahead; mbarrier hand-over): in the B ring,
// [hl 2][token GW_ROWS][chunk 8] uint4, a token's 64 inputs of one plane
// as 128 bytes with chunk j (inputs 8j..8j+7) at j ^ (token % 8) (K-major with the 128-byte swizzle: 8-token groups
// 1,024 bytes apart, a k16 tile 32 bytes further along the row), copied a whole xw row per 16 threads; in the W ring,
// the block's 16 output tiles' packed weights of the super-tile (BITS * 128 bytes each, as they lie in gq_mma's
// layout), the block's (scale, zero) row of the super-tile's group, and at a split's last super-tile its 2^e per token.
// (H100, round 27: against round 26's unswizzled core matrices, copied 64 bytes of 8 rows per warp, w1+w3 at 64 rows per
// expert 492-500 against 532-536 us, its copies alone 366-377 against 500-523; batch 256 +9.5 %. The swizzle lets a warp
// copy 512 contiguous bytes without 16-way bank conflicts on a row's chunks.)
//
// Modes (gq_mma's two layouts): loop mode, a block folds every split of its outputs in shared memory; split mode, a
// block computes one split and writes its partial p_s (the fold launch adds them in gq_mma's order), so products too
// narrow to give every SM a 256-output block in loop mode (q, k+v, o at batch 64-256) still fill the GPU.
// The mode argument: bit 0 split mode, bit 1 the matrices fastest over the grid, bit 2 the token tiles (below).
//
// fp16 weights (gq_wg_b16, BITS 16: the lm_head, gq_mma_b16_n*'s bits; H200, round 32): blocks of 2 warpgroups (128
// outputs), whose W stage is the block's 128 rows x 64 inputs as they lie (row-major fp16, a row's 8 chunks of 16 bytes
// at c ^ (row % 8)), read into A fragments by ldmatrix; no (scale, zero) rows, the period's scale 1 (gq_mma's fmaf by
// 1.f). Decode batch 256 (fp16 activations) 7,727-7,755 against 7,647-7,676 tok/s with the lm_head on gq_mma_b16_n8_h1
// (0.79 ms per step under ncu), float32 activations 6,139-6,156 against 6,095-6,106; its token tiles fastest over the
// grid (mode bit 2, so the 262 MB are read from memory once): 7,823-7,842 against 7,784-7,795 in grid order.
//
// Requirements (CudaBackend.wgmmaFits): out % (64 * gw_mt(BITS)) == 0, scale period sp >= 2 (a super-tile's two
// chunks share their scales), BITS <= 4 (8-bit weights would not leave room for the ring in shared memory) or 16 (from
// CudaBackend.WGMMA_DENSE_FROM rows).
#include "common.cuh"

#define GW_NWG 4      // m64 output tiles per block: 256 outputs
#ifndef GW_TPW
#define GW_TPW 2      // m64 tiles per consumer warpgroup (BITS <= 4): 1, GW_NWG warpgroups; 2, GW_NWG / 2 warpgroups,
#endif                // each warp's two 16-output tiles (GW_TPIPE) in up to 255 registers (GW_WS: GW_WS_CREG)
#ifndef GW_TPIPE
#define GW_TPIPE 1    // GW_TPW 2: 1, a warp dequantises its second tile while the first one's wgmma run and finishes
#endif                // the first while the second's run; 0, both tiles' wgmma in one group
#ifndef GW_STAGES
#define GW_STAGES 5   // ring stages (super-tiles); without GW_WS copies run GW_STAGES - 1 - lag super-tiles ahead
                      // (CudaBackend.WG_STAGES)
#endif
#ifndef GW_MBAR
#define GW_MBAR 1     // 1: the ring's stages hand over through mbarriers (warps drift up to a lag of super-tiles apart);
#endif                // 0: a block barrier per super-tile
#ifndef GW_LAG
#define GW_LAG 2      // without GW_WS: a stage is refilled once every warp is done with the super-tile GW_LAG + 1
#endif                // back: the warps may drift GW_LAG apart, copies run GW_STAGES - 1 - GW_LAG ahead (H100, round
                      // 17: 2 beats 1 and 3;
                      // round 27: also for tiles of <= 32 rows, which round 17 gave a lag of 1: batch 16-64 +0.5-1 %)
#ifndef GW_EARLY
#define GW_EARLY 1    // 1: a warp releases its stage right after its wgmma wait (a split's last super-tile: after reading
#endif                // its 2^e); 0: at the end of the super-tile (a measurement switch)
#ifndef GW_PROBE
#define GW_PROBE 0    // measurement only (bin/gpu-wgmma-probe; wrong outputs): 1 skips the copies, 2 the dequantisation,
#endif                // 4 the wgmma, 8 the activations' copies (bits may be combined)
#ifndef GW_ROWS
#define GW_ROWS 80    // token rows per tile (CudaBackend.WG_ROWS): an expert's ~64 rows at batch 256 in one tile
#endif
#ifndef GW_N72
#define GW_N72 0      // 1: tiles of 65-72 rows run as m64n72 (H100, round 16: slower than m64n80; a measurement switch)
#endif

// Shared memory: the B ring (GW_STAGES stages of GW_ROWS * 16 uint4: the hi plane's rows, then the lo plane's; whole
// 1,024-byte swizzle atoms), the W ring (GW_STAGES stages: the block's packed weights, its (scale, zero) row
// (gw_mt * 16 uint4), GW_ROWS floats of 2^e, rounded up to 128 bytes), the split fold y (GW_ROWS / 2 floats per
// thread and m64 tile), the ring's 2 * GW_STAGES mbarriers.
// fp16 weights (bits 16, the lm_head: gq_wg_b16) run on blocks of 2 warpgroups of one tile each, as their W stages are
// 4x larger.
__host__ __device__ constexpr int gw_tpw(int bits) { return bits == 16 ? 1 : GW_TPW; }   // m64 tiles per warpgroup
__host__ __device__ constexpr int gw_nwg(int bits) { return bits == 16 ? 2 : GW_NWG / GW_TPW; }   // warpgroups
__host__ __device__ constexpr int gw_mt(int bits) { return gw_nwg(bits) * gw_tpw(bits); }   // m64 tiles per block
__host__ __device__ constexpr int gw_bstage_uint4() { return GW_ROWS * 16; }
__host__ __device__ constexpr int gw_wstage_uint4(int bits) {
    return (gw_mt(bits) * 4 * bits * 8 + (bits == 16 ? 0 : gw_mt(bits) * 16) + GW_ROWS / 4 + 7) / 8 * 8;
}
__host__ __device__ constexpr int gw_smem_bytes(int bits) {
    return GW_STAGES * (gw_bstage_uint4() + gw_wstage_uint4(bits)) * 16 + gw_mt(bits) * 128 * (GW_ROWS / 2) * 4
         + 2 * GW_STAGES * 8;
}
static_assert(GW_TPW == 1 || GW_TPW == 2, "one or two m64 tiles per warpgroup");
#ifndef GW_WS
#define GW_WS 1       // 1 (GW_TPW 2): a producer warpgroup issues every copy, the consumer warpgroups none (above);
                      // CudaBackend takes the block size from the kernel's launch bounds (gw_threads)
#endif
#ifndef GW_WS_PREG
#define GW_WS_PREG 40 // registers per producer thread after setmaxnreg, and per consumer thread: 128 x 40 + 256 x 232 fit
#endif                // the SM's 65,536 (the producer spills 8-16 bytes at 40; 56 / 224 spilled nothing but was slower)
#ifndef GW_WS_CREG
#define GW_WS_CREG 232
#endif
static_assert(!GW_WS || GW_MBAR, "the producer hands stages over through the ring's mbarriers");
// threads per block: the consumer warpgroups and, GW_WS, the producer (fp16 weights: none)
__host__ __device__ constexpr int gw_threads(int bits) { return (gw_nwg(bits) + (bits == 16 ? 0 : GW_WS)) * 128; }
// setmaxnreg moves registers within the block's allocation at launch (65,536 / threads, in multiples of 8 per thread;
// ptxas gave these kernels exactly that: 168 at 384 threads, 96 at 640): what the producer gives up must cover what
// the consumers take, or their setmaxnreg.inc waits forever (H200, round 37: 640 threads, producer 40, consumers 112)
__host__ __device__ constexpr int gw_launch_regs() { return 65536 / gw_threads(4) / 8 * 8; }
static_assert(!GW_WS || 128 * (gw_launch_regs() - GW_WS_PREG) >= gw_nwg(4) * 128 * (GW_WS_CREG - gw_launch_regs()),
              "setmaxnreg: the consumers' registers must come from the producer's");
static_assert(GW_ROWS % 8 == 0, "a B plane is whole swizzle atoms of 8 rows");

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define GW_OK 1
#else
#define GW_OK 0
#endif

// K-major with the 128-byte swizzle (layout type 1): a token row's 64 inputs of one plane are 128 bytes, 8-row groups
// 1,024 bytes apart (stride offset); the leading offset is unused
__device__ __forceinline__ uint64_t gw_desc(uint32_t saddr) {
    return (uint64_t) ((saddr & 0x3FFFFu) >> 4) | ((uint64_t) 1 << 16) | ((uint64_t) (1024 >> 4) << 32) | ((uint64_t) 1 << 62);
}

// d (m64nN, f32) = A (registers: this warp's 16 rows x 16 k) * B (shared, 16 k x N tokens) + (acc ? d : 0)
template <int N> __device__ __forceinline__ void gw_mma(float* d, const uint32_t (&a)[4], uint64_t desc, int acc);
template <> __device__ __forceinline__ void gw_mma<72>(float* d, const uint32_t (&a)[4], uint64_t desc, int acc) {
#if GW_OK
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %41, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n72k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35}, {%36,%37,%38,%39}, %40, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc));
#endif
}
template <> __device__ __forceinline__ void gw_mma<80>(float* d, const uint32_t (&a)[4], uint64_t desc, int acc) {
#if GW_OK
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %45, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n80k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39}, {%40,%41,%42,%43}, %44, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc));
#endif
}
template <> __device__ __forceinline__ void gw_mma<64>(float* d, const uint32_t (&a)[4], uint64_t desc, int acc) {
#if GW_OK
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc));
#endif
}
template <> __device__ __forceinline__ void gw_mma<48>(float* d, const uint32_t (&a)[4], uint64_t desc, int acc) {
#if GW_OK
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %29, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n48k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23}, {%24,%25,%26,%27}, %28, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc));
#endif
}
template <> __device__ __forceinline__ void gw_mma<32>(float* d, const uint32_t (&a)[4], uint64_t desc, int acc) {
#if GW_OK
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, {%16,%17,%18,%19}, %20, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc));
#endif
}
template <> __device__ __forceinline__ void gw_mma<16>(float* d, const uint32_t (&a)[4], uint64_t desc, int acc) {
#if GW_OK
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %13, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7}, {%8,%9,%10,%11}, %12, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc));
#endif
}
template <> __device__ __forceinline__ void gw_mma<8>(float* d, const uint32_t (&a)[4], uint64_t desc, int acc) {
#if GW_OK
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %9, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n8k16.f32.f16.f16 {%0,%1,%2,%3}, {%4,%5,%6,%7}, %8, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(acc));
#endif
}

__device__ __forceinline__ void gw_fence() {
#if GW_OK
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void gw_commit() {
#if GW_OK
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// waits until at most W of this warpgroup's wgmma groups are pending; d: the R accumulators the wait makes readable
template <int W, int R>
__device__ __forceinline__ void gw_wait(float* d) {
#if GW_OK
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(W) : "memory");
#endif
#pragma unroll
    for (int i = 0; i < R; i++) asm volatile("" : "+f"(d[i]) :: "memory");   // no read of d moves above the wait
}
template <int R>
__device__ __forceinline__ void gw_commit_wait0(float* d) { gw_commit(); gw_wait<0, R>(d); }

// mbarriers of the ring (GW_MBAR): full[b] completes when every copying thread's copies into stage b have landed
// (cp.async.mbarrier.arrive.noinc, one per copying thread and use: the producer's 128, or without GW_WS every thread),
// empty[b] when every consumer warp has finished reading it (gk_bar_*, common.cuh).

template <int N> struct GwN { static constexpr int value = N; };

// grid (outN / (64 * MT) * (split_mode ? ksplit : 1), ceil(T / tile_rows), nmat), gw_threads(BITS) threads (MT =
// gw_mt(BITS)), gw_smem_bytes(BITS) bytes of dynamic shared memory; mode: bit 0 split mode, bit 1 the blocks' linear
// order takes the matrix fastest, else bit 2 the token tile fastest (else blockIdx.x, y, z as they are); block x =
// output block * splits + split. gq_wg_b*_h1 (HL = 1): fp16 activations (gq_mma_prep wrote lo = 0): the lo plane is
// neither copied nor multiplied, the same bits as gq_mma's products with it. HL is a template parameter: as a runtime value it cost the two-plane kernel 2-6 % (H100, probe).
// (H100, round 18: matrices fastest made w1+w3 -5 % at 64 rows per expert and -9 % under the bench's skew, as the
// resident blocks then read 8 experts' activation tiles instead of 2-3; for w2, 1.5 waves of blocks, it moved the big
// experts' second tiles into the last wave: +5-16 %. CudaBackend sets it for w1+w3 only.)
// Matrix m = proj * nexp + e, its segment's rows [offset_e, offset_e + count_e) of plane (planes == 1 ? 0 : proj) of
// xw; output (gq_mma's layouts) [proj][rows_cap][outN] at (offset_e + r) in loop mode, [proj][ksplit][rows_cap][outN]
// at (s, offset_e + r) in split mode. A block's tile of nvalid <= tile_rows <= GW_ROWS rows (tile_rows a multiple of 8)
// runs as wgmma m64nN with N the least of 8, 16, 32, 48, 64, 80 that covers it (a column's sums do not depend on N;
// m64n72 measured slower than m64n80 on the H100, GW_N72).
template <int BITS, int HL>
__device__ __forceinline__ void gq_wg_body(const GqMat* __restrict__ mats, int nexp, const int* __restrict__ segs,
        const uint4* __restrict__ xw, const float* __restrict__ xe, int planes, int in, int outN, int cpb, int sp,
        int cgl, int ksplit, int mode, int tile_rows, int rows_cap, long proj_stride, float* __restrict__ outp) {
    extern __shared__ __align__(1024) uint4 gw_smem[];
    constexpr bool DENSE = BITS == 16;                // fp16 weights (the lm_head): no (scale, zero) rows, scale 1
    constexpr int NWG = gw_nwg(BITS), TPW = gw_tpw(BITS), MT = gw_mt(BITS);   // warpgroups; m64 tiles per one, block
    constexpr int BST = gw_bstage_uint4(), WST = gw_wstage_uint4(BITS), NTH = NWG * 128, PERW = BITS * 8;
    constexpr int B_LO = GW_ROWS * 8, W_AT = GW_STAGES * BST;   // a B stage's lo plane; the W ring
    constexpr bool WS = GW_WS && !DENSE;              // warpgroup NWG (threads NTH..NTH+127) copies, the others compute
    constexpr int CNT = WS ? 128 : NTH;               // threads issuing the copies
    constexpr int SZ_AT = MT * 4 * PERW, XE_AT = SZ_AT + (DENSE ? 0 : MT * 16);   // a W stage: weights, scales, 2^e
    static_assert(!DENSE || TPW == 1, "fp16 weights: one m64 tile per warpgroup");
    const int split_mode = mode & 1;
    int bx = blockIdx.x, by = blockIdx.y, bz = blockIdx.z;
    if (mode & 2) {   // matrices fastest: the blocks resident together do not all read one expert's activations
        const unsigned lin = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z), lt = lin / gridDim.z;
        bz = (int) (lin % gridDim.z); bx = (int) (lt % gridDim.x); by = (int) (lt / gridDim.x);
    } else if (mode & 4) {   // token tiles fastest: an output block's tiles run side by side, its weights read once from
        const unsigned lin = blockIdx.x + gridDim.x * blockIdx.y;   // memory and from L2 for the other tiles
        by = (int) (lin % gridDim.y); bx = (int) (lin / gridDim.y);
    }
    const int m = bz, e = m % nexp, proj = m / nexp;
    const int offset = segs ? segs[2 * e] : 0;
    const int count = segs ? segs[2 * e + 1] : rows_cap;
    const int r0 = by * tile_rows;
    if (r0 >= count) return;                          // surplus tile (uniform over the block)
    const int nvalid = min(tile_rows, count - r0);
    const GqMat mat = mats[m];
    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int nsb = split_mode ? ksplit : 1, sblk = bx % nsb;
    const int ob0 = bx / nsb * MT * 4;                // the block's first 16-output tile
    const int tw0 = wg * TPW * 4 + warp;              // this warp's first tile in the block; its tile j is tw0 + 4 j
    const int kst = (in + 63) >> 6, spb = cpb >> 1;   // super-tiles; super-tiles per split
    // the block's super-tiles [st_lo, st_lo + nst): every split (loop mode) or split sblk's
    const int st_lo = split_mode ? sblk * spb : 0, nst = split_mode ? min(kst - st_lo, spb) : kst;
    const unsigned sbase = (unsigned) __cvta_generic_to_shared(gw_smem);
#if GW_STMAJOR
    const long rowlen = 16;                           // uint4 per token row of one super-tile of xw
    const long sts = (long) planes * rows_cap * 16;   // uint4 per super-tile of xw (gq_prep_store's rows_all rows)
#else
    const long rowlen = (long) kst * 16;              // uint4 per token row of xw
#endif
    const long row0 = (long) (planes == 1 ? 0 : proj) * rows_cap + offset + r0;
    // y: a thread's GW_ROWS / 2 floats per tile, lane-minor
    float* ys = reinterpret_cast<float*>(gw_smem + W_AT + GW_STAGES * WST) + (tid >> 5) * (TPW * GW_ROWS / 2 * 32) + lane;
    // full[GW_STAGES], then empty[GW_STAGES], after y
    const unsigned bars = sbase + 16u * (W_AT + GW_STAGES * WST) + MT * 128 * (GW_ROWS / 2) * 4;
    if (sbase & 1023u) __trap();   // the swizzle atoms must be 1,024-byte aligned (no static shared memory here)
    if (GW_MBAR) {
        if (tid < GW_STAGES) gk_bar_init(bars + 8u * tid, WS ? 128 : NTH);
        else if (tid < 2 * GW_STAGES) gk_bar_init(bars + 8u * tid, NTH / 32);
        __syncthreads();
    }

    auto run = [&](auto ntag) {
        constexpr int N = decltype(ntag)::value, R = N / 2;   // token columns; accumulator registers per chain
        constexpr int NB = (N * 8 * HL + CNT - 1) / CNT;      // activation copies per thread and stage
        const int ct = WS ? tid - NTH : tid;          // the thread's index among the copying threads
        // The copies a thread issues per stage, fixed for the launch (HL, the activation planes multiplied: 2, hi and
        // lo, or 1, the hi plane alone of fp16 activations):
        // activation copy k takes uint4 xq of token row rr + rpp * k: 16 consecutive threads copy a row's 16 uint4
        // (xq = kt * 4 + hl * 2 + kc, xw's order), so a warp copies 512 contiguous bytes of the super-tile-major xw
        // (HL 1: 8 threads a row's hi uint4, xq = kt * 4 + kc). In shared memory plane hl's row r holds its 64 inputs
        // as 8 chunks of 16 bytes, chunk j = kt * 2 + kc at j ^ (r % 8) (the 128-byte swizzle), so a row's chunks
        // spread over the banks; copy k lands at so0 + sstep * k of the B stage (rpp is a multiple of 8: the same
        // swizzle). Rows past nvalid repeat the last (their columns are not stored). Offsets are uint4 from the
        // tile's first row of xw (32 bits: < 80 rows) and from the weights.
        const int xi = ct & (8 * HL - 1);            // HL 2: 4 kt + 2 (lo plane) + kc; HL 1: 2 kt + kc
        const int xq = HL == 2 ? xi : (xi >> 1) * 4 + (xi & 1);
        const int rr = ct / (8 * HL), rpp = CNT / (8 * HL);   // the thread's first row; rows per pass of CNT copies
        const int so0 = ((xq >> 1) & 1) * B_LO + rr * 8 + ((((xq >> 2) << 1) | (xq & 1)) ^ (rr & 7));
        const int sstep = rpp * 8;                    // uint4 of the stage between a thread's copies
        int xoff[NB];
#pragma unroll
        for (int k = 0; k < NB; k++)
#if GW_STMAJOR
            xoff[k] = min(rr + rpp * k, nvalid - 1) * (int) rowlen + xq;
#else
            xoff[k] = min(rr + rpp * k, nvalid - 1) * (int) rowlen + st_lo * 16 + xq;
#endif
#if GW_STMAJOR
        const uint4* xt = xw + row0 * rowlen + st_lo * sts;   // the next super-tile to copy (advanced by issue())
#else
        const uint4* xt = xw + row0 * rowlen;
#endif
        // the weight copies: copy k takes uint4 q = ct + k * CNT of the stage, tile q / PERW's uint4 q % PERW (tiles
        // kst * PERW uint4 apart). DENSE: the block's NWG * 64 rows of fp16, 8 uint4 (64 inputs) each per super-tile,
        // copied by 8 consecutive threads per row, DW copies per thread (rows 32 apart); in the stage row r holds its 8
        // chunks at c ^ (r % 8) (ldmatrix reads 8 rows' chunk without bank conflicts)
        constexpr int DW = DENSE ? NWG * 64 * 8 / CNT : 1, DROWS = CNT / 8;
        constexpr int WCP = DENSE ? 1 : (MT * 4 * PERW + CNT - 1) / CNT;   // weight copies per thread (BITS <= 4)
        const uint4* wsrc = DENSE
            ? reinterpret_cast<const uint4*>(mat.qw) + (long) (ob0 * 16 + (ct >> 3)) * (in >> 3) + st_lo * 8 + (ct & 7)
            : reinterpret_cast<const uint4*>(mat.qw + gm_word<BITS>(ob0, kst, st_lo, 0, 0));
        int woff[WCP];
#pragma unroll
        for (int k = 0; k < WCP; k++)
            woff[k] = DENSE ? 0 : min((ct + k * CNT) / PERW, MT * 4 - 1) * kst * PERW + (ct + k * CNT) % PERW;
        const int wdst = (ct >> 3) * 8 + ((ct & 7) ^ ((ct >> 3) & 7));   // DENSE: copy k at wdst + k * DROWS * 8
        // the copy cursor: next super-tile to copy (index ix from st_lo), its ring stage ib and use iu (ix / GW_STAGES),
        // its split isp and position ii in it; advanced by issue() whether or not ix < nst
        int ix = 0, ib = 0, iu = 0, isp = st_lo / spb, ii = 0;
        auto issue = [&]() {
            const int st = st_lo + ix;
            if (ix < nst) {
                const unsigned sb = sbase + 16u * (ib * BST), sw = sbase + 16u * (W_AT + ib * WST);
#pragma unroll
                for (int k = 0; k < NB; k++)
                    if (!(GW_PROBE & 9) && ct + k * CNT < N * 8 * HL)
                        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n"
#if GW_STMAJOR
                                     :: "r"(sb + 16u * (so0 + sstep * k)), "l"(xt + xoff[k]));
#else
                                     :: "r"(sb + 16u * (so0 + sstep * k)), "l"(xt + xoff[k] + ix * 16));
#endif
                if (DENSE) {
#pragma unroll
                    for (int k = 0; k < DW; k++)
                        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n"
                                     :: "r"(sw + 16u * (wdst + k * DROWS * 8)), "l"(wsrc + (long) k * DROWS * (in >> 3) + ix * 8));
                } else if (!(GW_PROBE & 1)) {
#pragma unroll
                    for (int k = 0; k < WCP; k++)
                        if (ct + k * CNT < MT * 4 * PERW)
                            asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n"
                                         :: "r"(sw + 16u * (ct + k * CNT)), "l"(wsrc + woff[k] + ix * PERW));
                }
                if (!DENSE && !(GW_PROBE & 1) && ct < MT * 16) {   // the (scale, zero) row of the super-tile's group
                    const int c2 = 2 * st;            // chunks c2, c2 + 1 share one group (sp >= 2)
                    const long grow = (long) (cgl >= 0 ? c2 >> cgl : __ldg(mat.cg + c2)) * outN;
                    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n"
                                 :: "r"(sw + 16u * (SZ_AT + ct)), "l"(reinterpret_cast<const uint4*>(mat.sz + grow + ob0 * 16) + ct));
                }
                if ((ii == spb - 1 || st == kst - 1) && ct < N)   // a split's last: its 2^e per token
                    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n"
                                 :: "r"(sw + 16u * XE_AT + 4u * ct), "l"(xe + (row0 + min(ct, nvalid - 1)) * ksplit + isp));
                if (GW_MBAR) gk_bar_arrive_copies(bars + 8u * ib);
            }
            if (!GW_MBAR) asm volatile("cp.async.commit_group;\n" ::: "memory");
#if GW_STMAJOR
            xt += sts;
#endif
            ix++;
            if (++ib == GW_STAGES) { ib = 0; iu++; }
            if (++ii == spb) { ii = 0; isp++; }
        };

        if constexpr (WS) {
            if (tid >= NTH) {   // the producer: every stage's copies, as soon as the consumers have released it
#if GW_OK
                asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" :: "n"(GW_WS_PREG) : "memory");
#endif
                for (int k = 0; k < nst; k++) {
                    if (iu > 0) gk_bar_wait(bars + 8u * (GW_STAGES + ib), (iu - 1) & 1);
                    issue();
                }
                asm volatile("cp.async.wait_all;\n" ::: "memory");
                return;
            }
#if GW_OK
            asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" :: "n"(GW_WS_CREG) : "memory");
#endif
        }
        float acc[TPW][R], tmp[TPW][R];
#pragma unroll
        for (int j = 0; j < TPW; j++)
#pragma unroll
            for (int i = 0; i < R; i++) { acc[j][i] = 0.f; tmp[j][i] = 0.f; }
        constexpr int AHEAD = GW_MBAR ? GW_STAGES - 1 - GW_LAG : GW_STAGES - 1;   // super-tiles copied ahead
#pragma unroll
        for (int p = 0; p < AHEAD; p++) if (!WS) issue();

        int fresh = 1;                                // the next wgmma starts a period's chain (scale-d = 0)
        // tile j's A fragments from W stage bs: dequantised (its (scale, zero) pair into sl, sh) or, DENSE, by ldmatrix
        auto load_a = [&](int j, int bs, uint32_t& sl, uint32_t& sh, uint32_t (&a)[4][4]) {
            const int tw = tw0 + 4 * j;
            if constexpr (DENSE) {
                // ldmatrix x4 per k16 tile: lanes 0-7 / 8-15 / 16-23 / 24-31 address rows 0-7 / 8-15 / 0-7 / 8-15 of the
                // warp's 16, chunk 2kt / 2kt / 2kt+1 / 2kt+1, so a[kt] = {row g k 2t, row g+8 k 2t, row g k 2t+8,
                // row g+8 k 2t+8}: gq_mma's A fragment of the fp16 weights (gm_load_dense)
                const int rr = (lane & 7) + ((lane >> 3) & 1) * 8, row = tw * 16 + rr;
                const unsigned wa = sbase + 16u * (W_AT + bs * WST + row * 8);
#pragma unroll
                for (int kt = 0; kt < 4; kt++)
                    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                                 : "=r"(a[kt][0]), "=r"(a[kt][1]), "=r"(a[kt][2]), "=r"(a[kt][3])
                                 : "r"(wa + 16u * ((2 * kt + (lane >> 4)) ^ (rr & 7))));
            } else {
                const uint4* sg = gw_smem + W_AT + bs * WST;
                uint32_t w[BITS];
                gm_lds_w<BITS>(sg + tw * PERW, lane, w);
                const uint32_t* szs = reinterpret_cast<const uint32_t*>(sg + SZ_AT) + tw * 16 + g;
                sl = szs[0]; sh = szs[8];
#pragma unroll
                for (int kt = 0; kt < 4; kt++) {
                    if (GW_PROBE & 2) { for (int q = 0; q < 4; q++) a[kt][q] = w[(kt + q) % BITS] ^ sl; }
                    else gm_dequant<BITS>(w, kt, gm_zero(sl), gm_zero(sh), a[kt]);
                }
            }
        };
        // tile j's wgmma on B stage bs (the stage's descriptor, then its k16 tiles' by adding their uint4 offsets to
        // the 14-bit start field: shared addresses < 256 KB, so the field cannot carry into the leading offset)
        auto mma = [&](float* d, const uint32_t (&a)[4][4], int bs) {
            const uint64_t db = gw_desc(sbase + 16u * (bs * BST));
#pragma unroll
            for (int kt = 0; kt < 4 && !(GW_PROBE & 4); kt++) {
                gw_mma<N>(d, a[kt], db + (uint64_t) (kt * 2), kt == 0 ? 1 - fresh : 1);   // 32 bytes per k16 tile
                if (HL == 2) gw_mma<N>(d, a[kt], db + (uint64_t) (B_LO + kt * 2), 1);
            }
        };
        auto period_end = [&](float* ac, const float* tm, uint32_t sl, uint32_t sh) {   // acc = fmaf(tmp, scale, acc)
            const float fl = DENSE ? 1.f : gm_scale(sl), fh = DENSE ? 1.f : gm_scale(sh);
#pragma unroll
            for (int j = 0; j < R / 4; j++) {
                ac[4 * j] = fmaf(tm[4 * j], fl, ac[4 * j]);
                ac[4 * j + 1] = fmaf(tm[4 * j + 1], fl, ac[4 * j + 1]);
                ac[4 * j + 2] = fmaf(tm[4 * j + 2], fh, ac[4 * j + 2]);
                ac[4 * j + 3] = fmaf(tm[4 * j + 3], fh, ac[4 * j + 3]);
            }
        };
        // a split's end for tile jt (its 2^e from W stage bs, split sx): p_s = acc * 2^e (* 1/16 for 4-bit rows g+8);
        // y = y + p_s (loop mode) or p_s stored (split mode)
        auto split_end = [&](int jt, float* ac, int bs, int sx) {
            const float* f = reinterpret_cast<const float*>(gw_smem + W_AT + bs * WST + XE_AT);
            float* dsts = outp + proj * proj_stride + ((long) sx * rows_cap + offset + r0) * outN + (ob0 + tw0 + 4 * jt) * 16 + g;
#pragma unroll
            for (int j = 0; j < R / 4; j++) {
                const float f0 = f[8 * j + 2 * t], f1 = f[8 * j + 2 * t + 1];
                const float fs[4] = {f0, f1, gm_factor_hi<BITS>(f0), gm_factor_hi<BITS>(f1)};
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const float pv = ac[4 * j + q] * fs[q];
                    const int r = 8 * j + 2 * t + (q & 1);
                    if (split_mode) {                 // the split's partial (uniform branch)
                        if (r < nvalid) dsts[(long) r * outN + (q >> 1) * 8] = pv;
                    } else {
                        float& yv = ys[(jt * (GW_ROWS / 2) + 4 * j + q) * 32];
                        yv = sx == 0 ? pv : __fadd_rn(yv, pv);
                    }
                    ac[4 * j + q] = 0.f;
                }
            }
        };
        auto release = [&](int bs) {                  // this warp is done with stage bs (its wgmma waited)
            __syncwarp();
            if (lane == 0) gk_bar_arrive(bars + 8u * (GW_STAGES + bs));
        };
        int b = 0, u = 0, s = st_lo / spb, i = 0;     // super-tile p's stage, use of it, split, position in the split
        for (int p = 0; p < nst; p++) {
            const int st = st_lo + p;
            if (GW_MBAR) {
                gk_bar_wait(bars + 8u * b, u & 1);    // stage p landed (every copying thread's copies)
                // cp.async's writes, then wgmma's reads; before this thread's next copies, which the fence would
                // otherwise wait for as well (H100, round 18: -3 % on skewed routing)
                asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
                // refill the stage of super-tile p - 1 - GW_LAG (copy cursor ix = p + AHEAD) once every warp has
                // finished reading it
                if (!WS && ix < nst) {
                    if (iu > 0) gk_bar_wait(bars + 8u * (GW_STAGES + ib), (iu - 1) & 1);
                    issue();
                }
            } else {
                asm volatile("cp.async.wait_group %0;\n" :: "n"(GW_STAGES - 2) : "memory");
                asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");   // cp.async's writes, then wgmma's reads
                __syncthreads();                      // stage p landed for all; stage p - 1 is no longer read
                issue();
            }
            const bool last = i == spb - 1 || st == kst - 1;
            const int ci = 2 * (i + 1);               // chunks of the split done
            const int ends = (ci & (sp - 1)) == 0 || last;   // the end of a scale period: acc = fmaf(tmp, scale, acc)
            if constexpr (TPW == 2 && GW_TPIPE && GW_MBAR) {
                // tile 0's wgmma (group G0), then tile 1 dequantised while G0 runs and its wgmma (G1); tile 0 finished
                // while G1 runs
                uint32_t sl0, sh0, sl1, sh1, a0[4][4], a1[4][4];
                load_a(0, b, sl0, sh0, a0);
                gw_fence();
                mma(tmp[0], a0, b);
                gw_commit();
                load_a(1, b, sl1, sh1, a1);
                gw_fence();
                mma(tmp[1], a1, b);
                gw_commit();
                gw_wait<1, R>(tmp[0]);
                if (ends) period_end(acc[0], tmp[0], sl0, sh0);
                if (last) split_end(0, acc[0], b, s);
                gw_wait<0, R>(tmp[1]);
                if (GW_EARLY && !last) release(b);    // only a split's last reads the stage again
                if (ends) period_end(acc[1], tmp[1], sl1, sh1);
                if (last) split_end(1, acc[1], b, s);
                if (!GW_EARLY || last) release(b);
            } else {
                uint32_t sl[TPW], sh[TPW], a[TPW][4][4];
#pragma unroll
                for (int j = 0; j < TPW; j++) load_a(j, b, sl[j], sh[j], a[j]);
                gw_fence();
#pragma unroll
                for (int j = 0; j < TPW; j++) mma(tmp[j], a[j], b);
                gw_commit_wait0<TPW * R>(&tmp[0][0]);
                if (GW_MBAR && GW_EARLY && !last) release(b);   // only a split's last reads the stage again
                if (ends) {
#pragma unroll
                    for (int j = 0; j < TPW; j++) period_end(acc[j], tmp[j], sl[j], sh[j]);
                }
                if (last) {
#pragma unroll
                    for (int j = 0; j < TPW; j++) split_end(j, acc[j], b, s);
                }
                if (GW_MBAR && (!GW_EARLY || last)) release(b);
            }
            fresh = ends;
            if (++b == GW_STAGES) { b = 0; u++; }
            if (++i == spb) { i = 0; s++; }
        }
        if (split_mode) return;
        float* dst = outp + proj * proj_stride;
#pragma unroll
        for (int jt = 0; jt < TPW; jt++)
#pragma unroll
            for (int j = 0; j < R / 4; j++)
#pragma unroll
                for (int q = 0; q < 4; q++) {
                    const int r = 8 * j + 2 * t + (q & 1), o = (ob0 + tw0 + 4 * jt) * 16 + g + (q >> 1) * 8;
                    if (r < nvalid) dst[(long) (offset + r0 + r) * outN + o] = ys[(jt * (GW_ROWS / 2) + 4 * j + q) * 32];
                }
    };
#if GW_ROWS == 80
    if (nvalid > (GW_N72 ? 72 : 64)) run(GwN<80>()); else
#endif
    if ((GW_N72 || GW_ROWS != 80) && nvalid > 64) run(GwN<72>());
    else if (nvalid > 48) run(GwN<64>());
    else if (nvalid > 32) run(GwN<48>());
    else if (nvalid > 16) run(GwN<32>());
    else if (nvalid > 8) run(GwN<16>());
    else run(GwN<8>());
}

#define GQW_INSTANCE(BITS, HL, NAME)                                                                            \
    GPTQ4J_KERNEL void __launch_bounds__(gw_threads(BITS), 1) NAME(                                           \
            const GqMat* mats, int nexp, const int* segs, const uint4* xw, const float* xe, int planes, int in,  \
            int outN, int cpb, int sp, int cgl, int ksplit, int mode, int tile_rows, int rows_cap,              \
            long proj_stride, float* out) {                                                                     \
        GK_ENTER;                                                                                               \
        if (GW_OK) gq_wg_body<BITS, HL>(mats, nexp, segs, xw, xe, planes, in, outN, cpb, sp, cgl, ksplit, mode,   \
                                        tile_rows, rows_cap, proj_stride, out);                                 \
    }
GQW_INSTANCE(2, 2, gq_wg_b2)
GQW_INSTANCE(3, 2, gq_wg_b3)
GQW_INSTANCE(4, 2, gq_wg_b4)
GQW_INSTANCE(2, 1, gq_wg_b2_h1)
GQW_INSTANCE(3, 1, gq_wg_b3_h1)
GQW_INSTANCE(4, 1, gq_wg_b4_h1)
GQW_INSTANCE(16, 2, gq_wg_b16)
GQW_INSTANCE(16, 1, gq_wg_b16_h1)
