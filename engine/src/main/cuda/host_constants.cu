// Values the host restates (CudaBackend's copies of this module's macros and of its kernels' dynamic shared memory
// sizes), exported as device globals gptq4j_k_<name> (one int each) so that CudaModuleConstantsTest can read them back
// from the loaded module (cuModuleGetGlobal) and compare: a macro changed here and not in CudaBackend (or a fatbin built
// with other values, -Dgptq4j.cuda.module, without the matching -Dgptq4j.cuda.* properties) fails the test instead of
// launching with the wrong shared memory. Included last by module.cu; no kernel reads them.
#define GK_EXPORT(name, value) extern "C" __device__ const int gptq4j_k_##name = (value);

// gq_wg.cu (CudaBackend.WG_TILES, WG_ROWS, WG_STAGES, wgmmaTiles, wgmmaSharedBytes)
GK_EXPORT(gw_tiles, GW_NWG)
GK_EXPORT(gw_rows, GW_ROWS)
GK_EXPORT(gw_stages, GW_STAGES)
GK_EXPORT(gw_tiles_b16, gw_mt(16))
GK_EXPORT(gw_smem_b2, gw_smem_bytes(2))
GK_EXPORT(gw_smem_b3, gw_smem_bytes(3))
GK_EXPORT(gw_smem_b4, gw_smem_bytes(4))
GK_EXPORT(gw_smem_b16, gw_smem_bytes(16))
// gq_mmv.cu (MMV_WARPS, MMV_SLOTS, MMV_TILES, MMV_TILES_8, mmvSharedBytes): a block's rings of gv_depth slots per warp
template <int BITS, int OT> constexpr int gk_gv_smem() { return GV_NW * gv_depth<BITS>() * gv_slot<BITS, OT>() * 16; }
GK_EXPORT(gv_warps, GV_NW)
GK_EXPORT(gv_slots, GV_D)
GK_EXPORT(gv_tiles, GV_OT)
GK_EXPORT(gv_tiles_b8, GV_OT_8)
GK_EXPORT(gv_smem_b2, (gk_gv_smem<2, GV_OT>()))
GK_EXPORT(gv_smem_b3, (gk_gv_smem<3, GV_OT>()))
GK_EXPORT(gv_smem_b4, (gk_gv_smem<4, GV_OT>()))
GK_EXPORT(gv_smem_b8, (gk_gv_smem<8, GV_OT_8>()))
GK_EXPORT(gv_smem_b4_t1, (gk_gv_smem<4, 1>()))
// gq_mma.cu (MMA_WARPS, MMA_PAD, MMA_STAGES)
GK_EXPORT(gm_warps, GM_NW)
GK_EXPORT(gm_pad, GM_PAD)
GK_EXPORT(gm_stages, GM_STAGES)
// moe.cu's router_route_one (ROUTE_ROWS, ROUTE_COLS)
GK_EXPORT(rr_rows, RR_ROWS)
GK_EXPORT(rr_cols, 8 * RR_V * RMS_THREADS)
// attention.cu's pipelined lean form at head dim 128 (attPipeBytes)
GK_EXPORT(att_pipe_f32, (att_pipe_bytes<4, 16, float>()))
GK_EXPORT(att_pipe_f16, (att_pipe_bytes<4, 16, __half>()))
#undef GK_EXPORT
