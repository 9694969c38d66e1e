package gptq4j.backend.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * An fp16 matrix [rows][cols] in device memory (embeddings, lm_head, router, norm weights). mma: the descriptor with
 * which the tensor-core kernels read it in place (bits 16, gq_mma.cu) for products, or null (few rows, or cols not a
 * multiple of 64: the SIMT dense kernels). Which one a matrix uses depends on its shape only (batch invariance).
 */
record CudaDense(String name, int rows, int cols, CUdeviceptr data, CudaGptq mma) {
    static CudaDense of(Object o) {
        if (o instanceof CudaDense d) return d;
        throw new IllegalArgumentException("expected a matrix prepared by the CUDA backend, got "
                + (o == null ? "null" : o.getClass().getName()));
    }
}
