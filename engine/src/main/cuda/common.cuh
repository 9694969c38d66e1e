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
