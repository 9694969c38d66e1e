package gptq4j.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The per-weight rules of the mma kernels, checked on the host (no GPU needed). */
class CudaGptqRulesTest {

    /** Chunk groups of a weight whose sorted inputs form groups of the given sizes (multiples of 32). */
    private static int[] chunkGroups(int... groupSizes) {
        int chunks = 0;
        for (int s : groupSizes) chunks += s / 32;
        int[] cg = new int[chunks];
        int c = 0;
        for (int g = 0; g < groupSizes.length; g++) for (int k = 0; k < groupSizes[g] / 32; k++) cg[c++] = g;
        return cg;
    }

    /**
     * Mixtral's attention projections get one split length, so their one-token products can share a launch
     * (CudaBackend.rmsNormQkvAttention): q and o 4,096 × 4,096, k and v 4,096 → 1,024. At 4 bits every weight gets 32
     * chunks (1,024 inputs) per split; at 3 and 8 bits, and for the fp16 lm_head, 16.
     */
    @Test
    void mixtralAttentionProjectionsShareTheirSplits() {
        org.junit.jupiter.api.Assumptions.assumeTrue(CudaGptq.CPB == 0 && CudaGptq.MMA_SPLIT_WARPS == 512
                && CudaGptq.MMA_SPLIT_WARPS_4 == 256 && CudaGptq.MAX_CPB_4 == 32, "default rule");
        for (int bits : new int[]{3, 4, 8}) {
            int want = bits == 4 ? 32 : 16;
            int q = CudaGptq.mmaChunksPerSplit(4096, 4096, bits), kv = CudaGptq.mmaChunksPerSplit(4096, 1024, bits);
            assertEquals(want, q, bits + "-bit q");
            assertEquals(q, kv, bits + "-bit k, v");
            assertEquals(want, CudaGptq.mmaChunksPerSplit(4096, 14336, bits), bits + "-bit w1, w3");
            assertEquals(want, CudaGptq.mmaChunksPerSplit(14336, 4096, bits), bits + "-bit w2");
        }
        assertEquals(16, CudaGptq.mmaChunksPerSplit(4096, 32000, 16));   // the lm_head (fp16)
        // small matrices keep enough warps at one token: 1,024 -> 256 has 16 tiles, so 16 splits of 2 chunks
        assertEquals(2, CudaGptq.mmaChunksPerSplit(1024, 256, 4));
        assertEquals(4, CudaGptq.mmaChunksPerSplit(1024, 512, 4));
        assertEquals(2, CudaGptq.mmaChunksPerSplit(1024, 512, 8));
    }

    /** gq_wg's token tiles: 80 rows for expert segments; a plain product's rows in the fewest even tiles of <= 80. */
    @Test
    void wgmmaTileRows() {
        assertEquals(80, CudaBackend.wgmmaTileRows(true, 256));
        assertEquals(80, CudaBackend.wgmmaTileRows(true, 64));
        assertEquals(64, CudaBackend.wgmmaTileRows(false, 256));   // 4 x 64, not 3 x 80 + 16
        assertEquals(64, CudaBackend.wgmmaTileRows(false, 64));
        assertEquals(80, CudaBackend.wgmmaTileRows(false, 80));
        assertEquals(48, CudaBackend.wgmmaTileRows(false, 81));    // 2 x 48 (41 + 40 rows)
        assertEquals(72, CudaBackend.wgmmaTileRows(false, 130));
        assertEquals(56, CudaBackend.wgmmaTileRows(false, 161));
        assertEquals(80, CudaBackend.wgmmaTileRows(false, 32768));
        for (int rows = 1; rows <= 2000; rows++) {
            int tr = CudaBackend.wgmmaTileRows(false, rows), tiles = (rows + tr - 1) / tr;
            assertTrue(tr % 8 == 0 && tr <= 80 && tiles == (rows + 79) / 80, "rows " + rows + ": tiles of " + tr);
        }
    }

    /** Query heads per attention block: the most of 4, 2, 1 that still gives every SM a block. */
    @Test
    void attentionHeadsPerBlock() {
        org.junit.jupiter.api.Assumptions.assumeTrue(CudaBackend.ATT_HEADS == 0, "default rule");
        assertEquals(1, CudaBackend.attHeads(8, 4, 1, 132));     // Mixtral, one token: 32 blocks of one head
        assertEquals(1, CudaBackend.attHeads(8, 4, 8, 132));     // 8 tokens: 2 heads would give 128 blocks
        assertEquals(2, CudaBackend.attHeads(8, 4, 16, 132));    // 4 heads: 128 blocks; 2 heads: 256
        assertEquals(4, CudaBackend.attHeads(8, 4, 17, 132));    // 136 blocks of four
        assertEquals(4, CudaBackend.attHeads(8, 4, 2048, 132));  // prefill
        assertEquals(2, CudaBackend.attHeads(2, 2, 88, 132));    // a group of two: 176 blocks
    }

    /** The lean attention form (head dim 128 only) for grids of more blocks than SMs: batch 1's 32 blocks keep the other. */
    @Test
    void attentionLeanRule() {
        org.junit.jupiter.api.Assumptions.assumeTrue("auto".equals(CudaBackend.ATT_LEAN), "default rule");
        assertFalse(CudaBackend.attLean(4, 32, 132, null));       // Mixtral, one token
        assertFalse(CudaBackend.attLean(4, 132, 132, null));
        assertTrue(CudaBackend.attLean(4, 133, 132, null));
        assertTrue(CudaBackend.attLean(4, 2048, 132, null));      // batch 256: 8 blocks of four heads per token
        assertFalse(CudaBackend.attLean(2, 2048, 132, null));     // head dim 64: no lean instance
        assertFalse(CudaBackend.attLean(8, 2048, 132, null));
        assertTrue(CudaBackend.attLean(4, 32, 132, true));        // the tests' forcing, where the form exists
        assertFalse(CudaBackend.attLean(4, 2048, 132, false));
        assertFalse(CudaBackend.attLean(2, 2048, 132, true));
    }

    /** The host's gq_mmv launch constants are the kernel's compile-time defaults (gq_mmv.cu). */
    @Test
    void mmvLaunchConstantsMatchTheKernel() throws java.io.IOException {
        java.nio.file.Path file = java.nio.file.Path.of(System.getProperty("gptq4j.cuda.sources", "src/main/cuda"), "gq_mmv.cu");
        org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.isRegularFile(file),
                "CUDA sources not present at " + file.toAbsolutePath() + " (e.g. in the GPU bundle)");
        String src = java.nio.file.Files.readString(file);
        assertEquals(CudaBackend.MMV_WARPS, define(src, "GV_NW"));
        assertEquals(CudaBackend.MMV_SLOTS, define(src, "GV_D"));
        assertEquals(CudaBackend.MMV_TILES, define(src, "GV_OT"));
        assertEquals(CudaBackend.MMV_TILES_8, define(src, "GV_OT_8"));
        assertEquals(4, CudaBackend.mmvTiles(4));
        assertEquals(2, CudaBackend.mmvTiles(8));
        // slots: four tiles' weights (8-bit: two) + 8 uint4 of (scale, zero) per tile + 16 of B fragments; 8-bit rings
        // are half as deep
        assertEquals(CudaBackend.MMV_WARPS * CudaBackend.MMV_SLOTS * 176 * 16, CudaBackend.mmvSharedBytes(4));
        assertEquals(CudaBackend.MMV_WARPS * CudaBackend.MMV_SLOTS / 2 * 160 * 16, CudaBackend.mmvSharedBytes(8));
        assertEquals(CudaBackend.MMV_WARPS * CudaBackend.MMV_SLOTS * 144 * 16, CudaBackend.mmvSharedBytes(3));
        // gq_mmv_b4_t1: one tile's weights (32 uint4) + 8 of (scale, zero) + 16 of B fragments
        assertEquals(CudaBackend.MMV_WARPS * CudaBackend.MMV_SLOTS * 56 * 16, CudaBackend.mmvSharedBytes(4, 1));
        assertTrue(src.contains("GQV_KERNEL(gq_mmv_b4_t1, 4, 1, 2)"), "the one-tile 4-bit instance");
        assertTrue(src.contains("GQV_KERNEL(gq_mmv_b4_t1_h1, 4, 1, 1)"), "its one-plane form (fp16 activations)");
        for (int bits : new int[]{2, 3, 4, 8}) {
            // 5,120 bytes of static shared memory (ptxas, sm_90a, nvcc 13.0): the task list's tables and the bulk
            // copies' mbarriers
            assertTrue(CudaBackend.mmvSharedBytes(bits) + 5120 <= 163 * 1024, bits + "-bit: a block must fit an A100's SM");
        }
    }

    private static int define(String src, String name) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("#define " + name + " (\\d+)").matcher(src);
        assertTrue(m.find(), name + " not defined in the kernel source");
        return Integer.parseInt(m.group(1));
    }

    @Test
    void scalePeriodFollowsTheGroupSize() {
        int[] g128 = chunkGroups(128, 128, 128, 128, 128, 128, 128, 128);
        assertEquals(4, CudaGptq.scalePeriod(g128, 16));
        assertEquals(4, CudaGptq.scalePeriod(g128, 4));
        assertEquals(2, CudaGptq.scalePeriod(g128, 2), "a period never crosses a split");
        assertEquals(1, CudaGptq.scalePeriod(chunkGroups(32, 32, 32, 32), 4));
        assertEquals(2, CudaGptq.scalePeriod(chunkGroups(64, 64, 64, 64), 16));
        assertEquals(16, CudaGptq.scalePeriod(chunkGroups(4096), 16), "one group: the whole split");
        assertEquals(8, CudaGptq.scalePeriod(chunkGroups(4096), 8));
    }

    @Test
    void scalePeriodNeverSpansTwoGroups() {
        // groups of unequal sizes (multiples of 32): every aligned period must lie in one group
        Random r = new Random();
        for (int trial = 0; trial < 500; trial++) {
            int n = 1 + r.nextInt(12);
            int[] sizes = new int[n];
            for (int i = 0; i < n; i++) sizes[i] = 32 * (1 + r.nextInt(8));
            int[] cg = chunkGroups(sizes);
            int cpb = 2 << r.nextInt(4);
            int sp = CudaGptq.scalePeriod(cg, cpb);
            assertTrue(sp >= 1 && Integer.bitCount(sp) == 1 && cpb % sp == 0, "sp " + sp + " cpb " + cpb);
            for (int c = 0; c < cg.length; c++) assertEquals(cg[c / sp * sp], cg[c], "chunk " + c + " sp " + sp);
            // and it is the largest such period
            int twice = 2 * sp;
            if (twice <= Math.min(cpb, 16) && cpb % twice == 0) {
                boolean uniform = true;
                for (int c = 0; c < cg.length; c++) uniform &= cg[c / twice * twice] == cg[c];
                assertTrue(!uniform, "a period of " + twice + " would also fit");
            }
        }
    }

    @Test
    void groupShiftRecognisesUniformGroups() {
        assertEquals(2, CudaGptq.groupShift(chunkGroups(128, 128, 128)));
        assertEquals(0, CudaGptq.groupShift(chunkGroups(32, 32, 32)));
        int one = CudaGptq.groupShift(chunkGroups(14336));           // one group: any shift past the chunk count
        assertTrue(one >= 0 && (448 - 1) >> one == 0, "one group: shift " + one);
        assertEquals(-1, CudaGptq.groupShift(chunkGroups(128, 64, 128)), "unequal groups: the table");
        assertEquals(-1, CudaGptq.groupShift(chunkGroups(96, 96)), "groups of 3 chunks: no shift");
        // the mma layout's padding chunks repeat the last group: 3 chunks of one group and a padding chunk
        assertEquals(-1, CudaGptq.groupShift(new int[]{0, 1, 2, 2}));
        Random r = new Random();
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + r.nextInt(10), size = 32 << r.nextInt(4);
            int[] sizes = new int[n];
            java.util.Arrays.fill(sizes, size);
            int[] cg = chunkGroups(sizes);
            int l = CudaGptq.groupShift(cg);
            assertTrue(l >= 0, "uniform groups of " + size);
            for (int c = 0; c < cg.length; c++) assertEquals(cg[c], c >> l);
        }
    }
}
