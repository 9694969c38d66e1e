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
 * @param scalePeriod chunks per scale period of the mma kernels (see {@link #scalePeriod}; fixed per weight)
 * @param groupShift  chunk c is in group c >> groupShift (uniform groups), or -1 (see {@link #groupShift})
 * @param ksplit      splits: ceil(in/32 / cpb)
 * @param desc        device GqMat {qweight, scaleZero, perm, chunkGroup} for the split-K kernels
 * @param mma         qweight is in the tensor-core layout of gq_mma.cu (else the bit-stream layout of gptq_gemm.cu)
 * @param permHost    host copy of perm (null when none): projections of one input with equal permutations share
 *                    one converted copy of the activations (gq_mma_prep)
 */
record CudaGptq(String name, int in, int out, int bits, int groups, CUdeviceptr qweight, CUdeviceptr scaleZero,
                CUdeviceptr perm, CUdeviceptr chunkGroup, int cpb, int scalePeriod, int groupShift, int ksplit, CUdeviceptr desc, boolean mma,
                int[] permHost) {
    /**
     * Copies this matrix's GqMat entry {qweight, scaleZero, perm, chunkGroup} (gptq_gemm.cu) into a device table
     * under construction, as entry {@code m} of {@code table}.
     */
    void putMat(CUdeviceptr[] table, int m) {
        putMat(table, m, qweight, scaleZero);
    }

    /** The entry of a run of this matrix's outputs: its packed weights and scales at the run, its perm and groups. */
    void putMat(CUdeviceptr[] table, int m, CUdeviceptr runWeights, CUdeviceptr runScales) {
        table[4 * m] = runWeights;
        table[4 * m + 1] = runScales;
        table[4 * m + 2] = perm;
        table[4 * m + 3] = chunkGroup;
    }

    /**
     * Whether b's split-K partials come from the same per-task arithmetic as this matrix's, so both can share one
     * launch: tensor-core layout, inputs, bits, chunks per split, scale period and group shift alike.
     */
    boolean splitsLike(CudaGptq b) {
        return mma && b.mma && in == b.in && bits == b.bits && cpb == b.cpb && scalePeriod == b.scalePeriod
                && groupShift == b.groupShift;
    }

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
     * Chunks per split for the mma kernels: even (whole super-tiles of 64 inputs), a property of the weight's shape and
     * bits only (the split is the unit of the activations' exponent, so every batch size must use the same).
     * <ul>
     * <li>4-bit weights: the largest of 32, 16, 8, 4, 2 that still gives at least {@link #MMA_SPLIT_WARPS_4} (256)
     * warps (16-output tiles × splits) at batch 1, else 2. Every Mixtral weight gets 32 (1,024 inputs per split), q
     * (4,096 × 4,096) and k, v (4,096 → 1,024) alike, so their one-token products share one launch
     * (CudaBackend.rmsNormQkvAttention). Against 16 (H100, round 20): half the split partials and split ends, so per
     * layer at decode batch 256 q and o 58.7 against 67.1 us, w1+w3 725 against 752, w2 446 against 458, the q/k/v and
     * o folds 21.8 and 12.5 against 28.6 and 18.0; end to end batch 8 and 32 +6 to +11 %, 128 and 256 +1 to +5 %,
     * batch 1 even; batch 64 -2 % until q and o went back to the wgmma kernel (CudaBackend.WGMMA_COVER).</li>
     * <li>Other bits and the fp16 lm_head: the largest of 16, 8, 4, 2 giving at least {@link #MMA_SPLIT_WARPS} (512)
     * warps, else 2 (the rule of rounds 10-19; 16 for Mixtral). With 32, batch 1 was 14 % slower at 3 bits and 4 %
     * at 8 bits: their one-token kernel's longer tasks.</li>
     * </ul>
     * -Dgptq4j.cuda.cpb overrides both within [2, 32] (the prep kernel finds a split's range inside one 32-chunk block).
     */
    static int mmaChunksPerSplit(int in, int out, int bits) {
        int chunks = chunks(in, true);
        if (CPB > 0) return Math.min(Math.min(32, Math.max(2, CPB & ~1)), chunks);   // gq_mma_prep: a split within 32 chunks
        int tiles = (out + 15) / 16;
        if (bits == 4 && MAX_CPB_4 >= 32) return largestFilling(chunks, tiles, MMA_SPLIT_WARPS_4, 32, 16, 8, 4, 2);
        return largestFilling(chunks, tiles, MMA_SPLIT_WARPS, 16, 8, 4, 2);
    }

    /** -Dgptq4j.cuda.splitWarps=N: the warps mmaChunksPerSplit fills for 3/8-bit and fp16 weights (default 512). */
    static final int MMA_SPLIT_WARPS = Integer.getInteger("gptq4j.cuda.splitWarps", 512);
    /** -Dgptq4j.cuda.splitWarps4=N: the same for 4-bit weights (default 256). */
    static final int MMA_SPLIT_WARPS_4 = Integer.getInteger("gptq4j.cuda.splitWarps4", 256);
    /** -Dgptq4j.cuda.maxCpb4=16 gives 4-bit weights the other rule (round 19's choice; a comparison switch). */
    static final int MAX_CPB_4 = Integer.getInteger("gptq4j.cuda.maxCpb4", 32);

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

    /**
     * Chunks per scale period of the mma kernels: the largest power of two, at most cpb and
     * -Dgptq4j.cuda.scalePeriod (16), whose aligned runs of chunks each lie in one group. The kernel applies a
     * group's scale once per period (4 chunks for 128-input groups) instead of once per chunk of 32 inputs.
     */
    static int scalePeriod(int[] chunkGroup, int cpb) {
        for (int sp = Integer.highestOneBit(Math.max(1, Math.min(cpb, SCALE_PERIOD_MAX))); sp > 1; sp >>= 1) {
            if (cpb % sp != 0) continue;
            boolean uniform = true;
            for (int c = 0; c < chunkGroup.length && uniform; c++) uniform = chunkGroup[c] == chunkGroup[c & -sp];
            if (uniform) return sp;
        }
        return 1;
    }

    /**
     * The shift L with chunkGroup[c] == c >> L for every chunk (uniform groups of 2^L chunks; 30 for one group), or
     * -1: the mma kernels then compute a chunk's group instead of loading it before its scales.
     */
    static int groupShift(int[] chunkGroup) {
        for (int l = 0; l <= 30; l = l == 20 ? 30 : l + 1) {
            boolean ok = true;
            for (int c = 0; c < chunkGroup.length && ok; c++) ok = chunkGroup[c] == c >> l;
            if (ok) return l;
        }
        return -1;
    }

    /** -Dgptq4j.cuda.scalePeriod=N caps the scale period (1: the scale applied per chunk, as before). */
    static final int SCALE_PERIOD_MAX = Integer.getInteger("gptq4j.cuda.scalePeriod", 16);

    /** -Dgptq4j.cuda.cpb=N fixes the chunks per split for every weight (experiments; 0: the rule above). */
    static final int CPB = Integer.getInteger("gptq4j.cuda.cpb", 0);

    static CudaGptq of(Object o) {
        if (o instanceof CudaGptq g) return g;
        throw new IllegalArgumentException("expected a GPTQ layer prepared by the CUDA backend, got "
                + (o == null ? "null" : o.getClass().getName()));
    }
}
