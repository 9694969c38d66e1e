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
 * @param cpb         chunks of 32 inputs per split of the split-K kernels (fixed per weight: batch invariance)
 * @param ksplit      splits: ceil(in/32 / cpb)
 * @param desc        device GqMat {qweight, scaleZero, perm, chunkGroup} for the split-K kernels
 * @param mma         qweight is in the tensor-core layout of gq_mma.cu (else the bit-stream layout of gptq_gemm.cu)
 * @param permHost    host copy of perm (null when none): projections of one input with equal permutations share
 *                    one converted copy of the activations (gq_mma_prep)
 */
record CudaGptq(String name, int in, int out, int bits, int groups, CUdeviceptr qweight, CUdeviceptr scaleZero,
                CUdeviceptr perm, CUdeviceptr chunkGroup, int cpb, int ksplit, CUdeviceptr desc, boolean mma,
                int[] permHost) {
    /** Device bytes a product reads once: packed weights, scales/zeros, chunk groups, permutation. */
    long deviceBytes() {
        return packedBytes(in, out, bits, mma) + (long) groups * out * 4 + (long) chunks(in, mma) * 4 + (perm == null ? 0 : 4L * in);
    }

    /** Bytes of the packed weights: the mma layout pads the inputs to 64 and the outputs to 16 (gq_mma.cu). */
    static long packedBytes(int in, int out, int bits, boolean mma) {
        return mma ? (long) pad(in, 64) / 32 * bits * pad(out, 16) * 4 : (long) in / 32 * bits * out * 4;
    }

    /** Chunks of 32 sorted inputs the kernels walk (the mma layout's padded inputs included). */
    static int chunks(int in, boolean mma) { return (mma ? pad(in, 64) : in) / 32; }

    static int pad(int n, int m) { return (n + m - 1) / m * m; }

    /**
     * Chunks per split for the mma kernels: even (whole super-tiles of 64 inputs), the largest of 16, 8, 4, 2 that
     * still gives at least 1,024 warps (16-output tiles × splits) at batch 1, else 2. A property of the shape only.
     * -Dgptq4j.cuda.cpb overrides it within [2, 32] (the prep kernel finds a split's range inside one 32-chunk block).
     */
    static int mmaChunksPerSplit(int in, int out) {
        int chunks = chunks(in, true);
        if (CPB > 0) return Math.min(Math.min(32, Math.max(2, CPB & ~1)), chunks);   // gq_mma_prep: a split within 32 chunks
        return largestFilling(chunks, (out + 15) / 16, 1024, 16, 8, 4, 2);
    }

    /**
     * Chunks per split for a weight of this shape: the largest of 16, 8, 4 that still gives at least 192 blocks
     * of 256 outputs at batch 1 (so small matrices fill the GPU), else 4.
     */
    static int chunksPerSplit(int in, int out) {
        int chunks = in / 32;
        if (CPB > 0) return Math.min(CPB, chunks);
        return largestFilling(chunks, (out + 255) / 256, 192, 16, 8, 4);
    }

    /**
     * The first of the candidate chunks-per-split (largest first) whose splits give at least minBlocks work items
     * (output columns × splits), at most chunks; else the last candidate, at most chunks.
     */
    private static int largestFilling(int chunks, int columns, long minBlocks, int... candidates) {
        for (int cpb : candidates) {
            if ((long) columns * ((chunks + cpb - 1) / cpb) >= minBlocks) return Math.min(cpb, chunks);
        }
        return Math.min(candidates[candidates.length - 1], chunks);
    }

    /** -Dgptq4j.cuda.cpb=N fixes the chunks per split for every weight (experiments; 0: the rule above). */
    static final int CPB = Integer.getInteger("gptq4j.cuda.cpb", 0);

    static CudaGptq of(Object o) {
        if (o instanceof CudaGptq g) return g;
        throw new IllegalArgumentException("expected a GPTQ layer prepared by the CUDA backend, got "
                + (o == null ? "null" : o.getClass().getName()));
    }
}
