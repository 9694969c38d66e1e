// A design probe for issue 6 (not part of the engine's module): what a step boundary costs on the GPU at hand, as a
// kernel launch against a barrier inside one persistent kernel. The one-token decode step is a chain of ~15 dependent
// launches per layer (engine/src/main/cuda/NOTES.md); a persistent layer kernel would replace each boundary by a grid
// barrier. This measures both on a grid shaped like gq_mmv's (every SM filled: SMs x resident blocks of 128 threads
// with 24 KB of dynamic shared memory) and on one block per SM, and checks what the driver accepts.
//
// A step: every block reads one word that another block wrote in the step before (through L2: ld.cg), adds 1 and
// writes its own word, so step s + 1 depends on all of step s through memory, as the engine's kernels do. After N
// steps every word must equal N (checked).
// (1) N launches of a one-step kernel captured in a CUDA graph: plain, and with the programmatic-dependent-launch
//     attribute (griddepcontrol.wait then launch_dependents first, as the engine's GK_ENTER).
// (2) N steps in one kernel with a grid barrier between steps: a ticket barrier (one atomic per block on a counter
//     that only grows, then a spin on ld.acquire until the step's last arrival) and cooperative_groups grid.sync();
//     both launched cooperatively, so the driver guarantees that every block is resident.
// (3) Whether a cooperative launch may also carry the PDL attribute, whether it can be captured in a graph, and that a
//     cooperative grid larger than what fits at once is refused.
//
// Build and run (the device machine has nvcc): bin/gpu-barrier-probe, or
//   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -o probe grid_barrier_probe.cu && ./probe
#include <cooperative_groups.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "probe_common.cuh"

namespace cg = cooperative_groups;

constexpr int THREADS = 128;            // gq_mmv's block (4 warps)
constexpr int SMEM = 24 * 1024;         // about gq_mmv's ring per block at 4 bits
constexpr int STEPS = 2000;

// One step of block b: w_next[b] = w_prev[(b * 7 + 1) % nb] + 1 (read through L2, never a stale L1 line)
__device__ __forceinline__ void step_body(const unsigned* prev, unsigned* next, unsigned nb) {
    if (threadIdx.x == 0) {
        const unsigned src = (blockIdx.x * 7u + 1u) % nb;
        next[blockIdx.x] = __ldcg(prev + src) + 1u;
    }
}

__device__ __forceinline__ void pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// One step per launch; PDL: the kernel waits for the one before it on entry (launched with the PDL attribute)
template <bool PDL>
__global__ void __launch_bounds__(THREADS) one_step(const unsigned* prev, unsigned* next, unsigned nb) {
    extern __shared__ unsigned char smem[];
    (void) smem;
    if (PDL) pdl_enter();
    step_body(prev, next, nb);
}

// The ticket barrier: arrivals count up forever (no reset), a block leaves once the count reaches the end of its
// generation. Thread 0 arrives for the block after the block's writes (fence), the others wait at __syncthreads.
__device__ __forceinline__ void ticket_barrier(unsigned* count, unsigned nb) {
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        const unsigned t = atomicAdd(count, 1u);
        const unsigned target = (t / nb + 1u) * nb;
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(count) : "memory");
        } while ((int) (v - target) < 0);
    }
    __syncthreads();
}

__global__ void __launch_bounds__(THREADS) steps_ticket(unsigned* a, unsigned* b, unsigned nb, unsigned* count, int n) {
    extern __shared__ unsigned char smem[];
    (void) smem;
    for (int s = 0; s < n; s++) {
        step_body((s & 1) ? b : a, (s & 1) ? a : b, nb);
        ticket_barrier(count, nb);
    }
}

__global__ void __launch_bounds__(THREADS) steps_cg(unsigned* a, unsigned* b, unsigned nb, int n) {
    extern __shared__ unsigned char smem[];
    (void) smem;
    cg::grid_group grid = cg::this_grid();
    for (int s = 0; s < n; s++) {
        step_body((s & 1) ? b : a, (s & 1) ? a : b, nb);
        grid.sync();
    }
}

static float elapsed_ms(cudaEvent_t e0, cudaEvent_t e1) {
    float ms = 0.f;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    return ms;
}

static float median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// every word equals STEPS after STEPS steps from zero (the result lands in a when STEPS is even)
static bool check(const unsigned* d, unsigned nb) {
    std::vector<unsigned> h(nb);
    CK(cudaMemcpy(h.data(), d, nb * 4, cudaMemcpyDeviceToHost));
    for (unsigned i = 0; i < nb; i++) if (h[i] != (unsigned) STEPS) return false;
    return true;
}

static cudaError_t launch_ex(const void* fn, unsigned grid, cudaStream_t st, bool coop, bool pdl, void** args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid);
    cfg.blockDim = dim3(THREADS);
    cfg.dynamicSmemBytes = SMEM;
    cfg.stream = st;
    cudaLaunchAttribute at[2];
    int na = 0;
    if (coop) { at[na].id = cudaLaunchAttributeCooperative; at[na].val.cooperative = 1; na++; }
    if (pdl) { at[na].id = cudaLaunchAttributeProgrammaticStreamSerialization; at[na].val.programmaticStreamSerializationAllowed = 1; na++; }
    cfg.attrs = at;
    cfg.numAttrs = na;
    return cudaLaunchKernelExC(&cfg, fn, args);
}

int main() {
    const cudaDeviceProp prop = probe_device();
    int coopOk = 0;
    CK(cudaDeviceGetAttribute(&coopOk, cudaDevAttrCooperativeLaunch, 0));
    printf("device: %s, %d SMs, cooperative launch %s\n", prop.name, prop.multiProcessorCount, coopOk ? "yes" : "no");
    for (const void* fn : {(const void*) one_step<false>, (const void*) one_step<true>, (const void*) steps_ticket,
                           (const void*) steps_cg}) {
        CK(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM));
    }
    int perSm = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, steps_ticket, THREADS, SMEM));
    int perSmCg = 0;
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSmCg, steps_cg, THREADS, SMEM));
    perSm = std::min(perSm, perSmCg);
    const unsigned full = (unsigned) (prop.multiProcessorCount * perSm);
    printf("resident blocks of %d threads with %d KB of shared memory: %d per SM, %u in all\n", THREADS, SMEM / 1024,
           perSm, full);
    unsigned *a, *b, *count;                    // room for the oversized grid of (3), should the driver take it
    CK(cudaMalloc(&a, (full + prop.multiProcessorCount) * 4));
    CK(cudaMalloc(&b, (full + prop.multiProcessorCount) * 4));
    CK(cudaMalloc(&count, 4));
    cudaStream_t st;
    CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));

    for (unsigned nb : {full, (unsigned) prop.multiProcessorCount}) {
        printf("\n== grid of %u blocks, %d dependent steps\n", nb, STEPS);
        // (1) launches in a graph, plain and with PDL
        for (int pdl = 0; pdl < 2; pdl++) {
            CK(cudaMemset(a, 0, nb * 4));
            CK(cudaMemset(b, 0, nb * 4));
            cudaGraph_t g;
            cudaGraphExec_t ge;
            CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
            for (int s = 0; s < STEPS; s++) {
                unsigned* prev = (s & 1) ? b : a;
                unsigned* next = (s & 1) ? a : b;
                void* args[] = {&prev, &next, &nb};
                CK(launch_ex(pdl ? (const void*) one_step<true> : (const void*) one_step<false>, nb, st, false, pdl, args));
            }
            CK(cudaStreamEndCapture(st, &g));
            CK(cudaGraphInstantiate(&ge, g, 0));
            std::vector<float> t;
            for (int r = 0; r < 6; r++) {
                CK(cudaMemsetAsync(a, 0, nb * 4, st));
                CK(cudaMemsetAsync(b, 0, nb * 4, st));
                CK(cudaEventRecord(e0, st));
                CK(cudaGraphLaunch(ge, st));
                CK(cudaEventRecord(e1, st));
                CK(cudaStreamSynchronize(st));
                if (r > 0) t.push_back(elapsed_ms(e0, e1));
            }
            printf("launches in a graph%s: %.2f us per step (%s)\n", pdl ? ", PDL" : "", 1e3f * median(t) / STEPS,
                   check(a, nb) ? "chain correct" : "CHAIN WRONG");
            CK(cudaGraphExecDestroy(ge));
            CK(cudaGraphDestroy(g));
        }
        // (2) one cooperative kernel, a barrier between steps
        for (int kind = 0; kind < 2; kind++) {
            std::vector<float> t;
            bool ok = true;
            for (int r = 0; r < 6; r++) {
                CK(cudaMemsetAsync(a, 0, nb * 4, st));
                CK(cudaMemsetAsync(b, 0, nb * 4, st));
                CK(cudaMemsetAsync(count, 0, 4, st));
                int n = STEPS;
                void* argsT[] = {&a, &b, &nb, &count, &n};
                void* argsC[] = {&a, &b, &nb, &n};
                CK(cudaEventRecord(e0, st));
                CK(launch_ex(kind == 0 ? (const void*) steps_ticket : (const void*) steps_cg, nb, st, true, false,
                             kind == 0 ? argsT : argsC));
                CK(cudaEventRecord(e1, st));
                CK(cudaStreamSynchronize(st));
                if (r > 0) t.push_back(elapsed_ms(e0, e1));
                ok &= check(a, nb);
            }
            printf("one cooperative kernel, %s: %.2f us per step (%s)\n",
                   kind == 0 ? "ticket barrier" : "cooperative_groups grid.sync()", 1e3f * median(t) / STEPS,
                   ok ? "chain correct" : "CHAIN WRONG");
        }
    }

    // (3) what the driver accepts
    printf("\n== launch attributes\n");
    {
        unsigned nb = full;
        int n = 10;
        CK(cudaMemset(count, 0, 4));
        void* args[] = {&a, &b, &nb, &count, &n};
        cudaError_t e = launch_ex((const void*) steps_ticket, nb, st, true, true, args);
        cudaError_t e2 = e == cudaSuccess ? cudaStreamSynchronize(st) : e;
        printf("cooperative + PDL attributes on one launch: %s\n", cudaGetErrorString(e2));
        cudaGetLastError();
        // captured into a graph, after a plain kernel (the PDL edge would come from it)
        cudaGraph_t g;
        cudaGraphExec_t ge;
        CK(cudaMemset(count, 0, 4));
        CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
        unsigned* prev = a;
        unsigned* next = b;
        void* args1[] = {&prev, &next, &nb};
        cudaError_t c1 = launch_ex((const void*) one_step<false>, nb, st, false, false, args1);
        cudaError_t c2 = launch_ex((const void*) steps_ticket, nb, st, true, true, args);
        cudaError_t c3 = cudaStreamEndCapture(st, &g);
        cudaError_t c4 = c3 == cudaSuccess ? cudaGraphInstantiate(&ge, g, 0) : c3;
        cudaError_t c5 = c4 == cudaSuccess ? cudaGraphLaunch(ge, st) : c4;
        cudaError_t c6 = c5 == cudaSuccess ? cudaStreamSynchronize(st) : c5;
        printf("captured in a graph after a plain kernel, cooperative + PDL: capture %s / %s, end %s, instantiate %s, "
               "run %s\n", cudaGetErrorString(c1), cudaGetErrorString(c2), cudaGetErrorString(c3),
               cudaGetErrorString(c4), cudaGetErrorString(c6));
        cudaGetLastError();
        unsigned big = full + (unsigned) prop.multiProcessorCount;
        void* args3[] = {&a, &b, &big, &count, &n};
        cudaError_t e3 = launch_ex((const void*) steps_ticket, big, st, true, false, args3);
        printf("cooperative grid of %u blocks (more than fit at once): %s\n", big, cudaGetErrorString(e3));
        cudaGetLastError();
    }
    return 0;
}
