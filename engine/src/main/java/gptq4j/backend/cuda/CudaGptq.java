package gptq4j.backend.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * A GPTQ linear layer repacked for the gptq_linear kernels (see gptq_gemm.cu): input rows sorted by group,
 * each chunk of 32 sorted inputs one group, the activation permutation applied while the kernel loads x.
 *
 * @param qweight     uint32 [in/32*bits][out]
 * @param scaleZero   half2 [groups][out]: scale, effective zero point
 * @param perm        int [in]: sorted input j reads activation column perm[j]; null when g_idx was sorted
 * @param chunkGroup  int [in/32]: group of each chunk
 */
record CudaGptq(String name, int in, int out, int bits, int groups, CUdeviceptr qweight, CUdeviceptr scaleZero,
                CUdeviceptr perm, CUdeviceptr chunkGroup) {
    static CudaGptq of(Object o) {
        if (o instanceof CudaGptq g) return g;
        throw new IllegalArgumentException("expected a GPTQ layer prepared by the CUDA backend, got "
                + (o == null ? "null" : o.getClass().getName()));
    }
}
