// Shared helpers for the gptq4j CUDA kernels. Every kernel is extern "C" so the Java side finds it
// by name (cuModuleGetFunction). Activations are float32 row-major [rows][dim]; weights are fp16 or
// packed GPTQ integers. Reductions run in a fixed order so a token's result never depends on the
// other tokens of the step (batch invariance).
#pragma once
#include <cuda_fp16.h>
#include <stdint.h>

#define GPTQ4J_KERNEL extern "C" __global__

// The first statement of every kernel (CudaModuleStampTest checks it). Programmatic dependent launch (sm_90,
// CudaLaunchEx): a kernel launched with the PDL attribute may be scheduled while the kernel before it in the stream
// is still running. It waits here until that kernel has completed and its writes are visible, then lets the next
// kernel be scheduled. By induction every earlier kernel has completed too, so a kernel sees exactly what it saw
// without PDL. Launched without the attribute, both instructions return at once; before sm_90 they do not exist.
//
// A kernel may instead start with GK_ENTER_LATE (a marker) and reach GK_WAIT later, after a prologue that reads only
// constants (weights) and outputs of kernels before its predecessor: those have completed by then, because the
// predecessor lets this kernel start only once its own predecessor completed. Such a prologue writes nothing but
// the block's shared memory.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define GK_WAIT do { asm volatile("griddepcontrol.wait;\n" ::: "memory"); \
                     asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); } while (0)
#else
#define GK_WAIT do { } while (0)
#endif
#define GK_ENTER GK_WAIT
#define GK_ENTER_LATE do { } while (0)

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
