// A rate probe for issue 6 (not part of the engine's module; round 34, H200): Hopper's warpgroup MMA with A in registers
// and B in shared memory, m64n80, as gq_wg issues it: fp16 x fp16 -> fp32 (k16) against u8 x s8 -> s32 (k32), the
// integer form's large-batch instruction (int8_gemv_probe.cu: weights as u8, the activation as three s8 digit planes,
// exact int32 sums). Random operands; prints the rate of each.
// H200 (call 4): f16 968-969 TFLOP/s, u8 x s8 1,939-1,941 TOP/s. So at large batches the integer form's three digit
// planes take 1.5 times the tensor time of one fp16 plane, against 2 for the hi/lo planes of float32 activations.
// Build and run: bin/gpu-int8-probe (sm_90 only), or
//   nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -o peak wgmma_int8_peak.cu && ./peak
#include <cstdio>
#include <cstdint>
#include "probe_common.cuh"

__device__ __forceinline__ uint64_t pk_desc(uint32_t saddr) {
    return (uint64_t) ((saddr & 0x3FFFFu) >> 4) | ((uint64_t) 1 << 16) | ((uint64_t) (1024 >> 4) << 32) | ((uint64_t) 1 << 62);
}
__device__ __forceinline__ void mma_i8(int* d, const uint32_t (&a)[4], uint64_t ds) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n80k32.s32.u8.s8 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39}, {%40,%41,%42,%43}, %44, 1;\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(ds));
}
__device__ __forceinline__ void mma_f16(float* d, const uint32_t (&a)[4], uint64_t ds) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n80k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39}, {%40,%41,%42,%43}, %44, 1, 1, 1, 0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(ds));
}
// I8: u8 x s8 k32 steps, else f16 k16 steps; each wgmma reads a 32-byte k slice of B (80 token rows of 128 bytes, the
// 128-byte swizzle, as gq_wg's B stages); A from registers (as gq_wg's dequantised weights), 4 wgmma per commit group,
// one group in flight while the next is issued
template <bool I8>
__global__ void __launch_bounds__(256, 1) peak(int iters, unsigned seed, float* out) {
    extern __shared__ __align__(1024) uint32_t sm[];
    const int tid = threadIdx.x;
    for (int i = tid; i < 80 * 32; i += blockDim.x) {   // B: small positive s8, or fp16 in [1, 2)
        unsigned h = (i + 1) * 2654435761u ^ seed;
        h ^= h >> 13;
        h *= 0x5bd1e995u;
        sm[i] = I8 ? (h & 0x3F3F3F3Fu) : ((h & 0x03FF03FFu) | 0x3C003C00u);
    }
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    const uint32_t sb = (uint32_t) __cvta_generic_to_shared(sm);
    const uint64_t d0 = pk_desc(sb);
    unsigned x = tid * 747796405u + seed;
    uint32_t a[4];
    for (int q = 0; q < 4; q++) {                         // A: 4-bit codes as u8, or fp16 in [1, 2)
        x = x * 1664525u + 1013904223u;
        a[q] = I8 ? (x & 0x0F0F0F0Fu) : ((x & 0x03FF03FFu) | 0x3C003C00u);
    }
    float df[40]; int di[40];
    for (int i = 0; i < 40; i++) { df[i] = 0.f; di[i] = 0; }
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
    for (int it = 0; it < iters; it++) {
#pragma unroll
        for (int kt = 0; kt < 4; kt++) { if (I8) mma_i8(di, a, d0 + kt * 2); else mma_f16(df, a, d0 + kt * 2); }
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    float s = 0;
    for (int i = 0; i < 40; i++) s += I8 ? (float) di[i] : df[i];
    out[blockIdx.x * blockDim.x + tid] = s;
}
int main() {
    const cudaDeviceProp p = probe_device();
    const int blocks = p.multiProcessorCount * 2, threads = 256, iters = 20000;   // 4 warpgroups per SM
    float* out;
    CK(cudaMalloc(&out, (size_t) blocks * threads * 4));
    CK(cudaFuncSetAttribute(peak<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, 16384));
    CK(cudaFuncSetAttribute(peak<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, 16384));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    printf("device: %s, %d SMs\n", p.name, p.multiProcessorCount);
    for (int rep = 0; rep < 3; rep++)
        for (int i8 = 0; i8 < 2; i8++) {
            CK(cudaEventRecord(e0));
            if (i8) peak<true><<<blocks, threads, 16384>>>(iters, rep, out);
            else peak<false><<<blocks, threads, 16384>>>(iters, rep, out);
            CK(cudaEventRecord(e1));
            CK(cudaEventSynchronize(e1));
            CK(cudaGetLastError());
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            const double ops = 2.0 * 64 * 80 * (i8 ? 32 : 16) * 4.0 * iters * (threads / 128) * blocks;
            printf("%-17s m64n80k%d, A in registers, %d warpgroups x %d blocks: %.3f ms, %.0f T%s/s\n",
                   i8 ? "u8 x s8 -> s32" : "f16 x f16 -> f32", i8 ? 32 : 16, threads / 128, blocks, ms, ops / ms / 1e9,
                   i8 ? "OP" : "FLOP");
        }
    return 0;
}
