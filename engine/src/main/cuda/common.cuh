// Shared helpers for the gptq4j CUDA kernels. Every kernel is extern "C" so the Java side finds it
// by name (cuModuleGetFunction). Activations are float32 row-major [rows][dim]; weights are fp16 or
// packed GPTQ integers. Reductions run in a fixed order so a token's result never depends on the
// other tokens of the step (batch invariance).
#pragma once
#include <cuda_fp16.h>
#include <stdint.h>

#define GPTQ4J_KERNEL extern "C" __global__

// Sum over the 32 lanes of a warp by an xor butterfly: every lane ends with the same bits, and the
// order of additions is fixed.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// silu(g) * u of element i of split-mode partials of w1 and w3 (MoE): g and u folded over their ksplit splits in
// order (plane floats apart; w3's partials after w1's). moe_silu_reduce and gq_mma_prep's SiLU mode share it.
__device__ __forceinline__ float silu_fold(const float* __restrict__ part, int ksplit, long plane, long i) {
    const float* p3 = part + (long) ksplit * plane;
    float g = part[i], u = p3[i];
    for (int k = 1; k < ksplit; k++) {
        g = __fadd_rn(g, part[(long) k * plane + i]);
        u = __fadd_rn(u, p3[(long) k * plane + i]);
    }
    return g / (1.f + expf(-g)) * u;
}
