package gptq4j.backend.cuda;

import jcuda.driver.CUdeviceptr;

/** An fp16 matrix [rows][cols] in device memory (embeddings, lm_head, router, norm weights). */
record CudaDense(String name, int rows, int cols, CUdeviceptr data) {
    static CudaDense of(Object o) {
        if (o instanceof CudaDense d) return d;
        throw new IllegalArgumentException("expected a matrix prepared by the CUDA backend, got "
                + (o == null ? "null" : o.getClass().getName()));
    }
}
