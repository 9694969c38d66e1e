package gptq4j.backend.cuda;

import gptq4j.quant.gptq.GptqLinear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Hopper warpgroup-MMA products (gq_wg.cu): shapes large enough to reach them, checked against float64 and, bit for
 * bit, against the one-token kernel (gq_mmv, mma.sync), so batch invariance holds across the two tensor-core forms.
 * On a GPU other than compute capability 9.0 the same shapes run on gq_mma and the checks still apply.
 */
class CudaWgmmaTest {

    static Stream<Arguments> formats() {
        List<Arguments> a = new ArrayList<>();
        for (int bits : new int[]{2, 3, 4}) {
            for (int group : new int[]{-1, 128}) {
                for (boolean act : new boolean[]{false, true}) a.add(Arguments.of(bits, group, act, bits != 3));
            }
        }
        a.add(Arguments.of(4, 32, true, false));      // scale period 1: stays on gq_mma
        a.add(Arguments.of(8, 128, false, true));     // 8 bits: stays on gq_mma
        return a.stream();
    }

    @ParameterizedTest(name = "{0}-bit group {1} actOrder {2} sym {3}")
    @MethodSource("formats")
    void linearMatchesFloat64AndOneTokenBits(int bits, int group, boolean act, boolean sym) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int in = 512, out = 4096;                     // 16 blocks of 256 outputs x 9-10 token tiles: >= 132 SMs
        GptqLinear w = CudaTestSupport.randomGptq(r, "wg.b" + bits + ".g" + group, in, out, bits, group, act, sym);
        double[][] ref = CudaTestSupport.dequant(w);
        Object prepared = be.prepareLinear(w);
        boolean expectWg = be.sm90a() && bits <= 4 && group != 32;
        // last token tiles of 24, 9 and 1 rows: wgmma m64n32, m64n16 and m64n8
        for (int T : new int[]{600, 521, 577}) {
            float[] x = inputs(r, T, in);
            long before = be.wgmmaLaunches();
            float[] y = linear(be, prepared, x, T, in, out);
            assertEquals(expectWg ? 1 : 0, be.wgmmaLaunches() - before, "wgmma launches for T=" + T);
            int[] rows = {0, 1, 63, 64, 65, T / 2, T - 2, T - 1, r.nextInt(T)};
            checkRows(be, prepared, ref, x, y, T, in, out, rows, "err_gptq_wgmma", bits + "-bit g" + group);
        }
    }

    /**
     * Split mode (gq_mma's partials, then the fold launch): a product too narrow for 256-output blocks in loop mode,
     * as q, k+v and o at decode batch 64-256. Tiles of 4 x 64 (T = 256), 2 x 72 (130, last tile 58 rows) and
     * 3 x 56 (161, last 49); at T = 75 (4-bit: one tile, 8 output blocks x 4 splits = 32 blocks, under a quarter of
     * an H100's 132 SMs) the grid is too small and the product stays on gq_mma (same checks).
     */
    @ParameterizedTest(name = "{0}-bit group {1} T={2}")
    @CsvSource({"4,128,256", "3,128,130", "2,-1,161", "4,128,75"})
    void splitModeMatchesFloat64AndOneTokenBits(int bits, int group, int T) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int in = 4096, out = 2048;                    // 4-bit: 4 splits of 32 chunks, else 8 of 16; 8 output blocks
        GptqLinear w = CudaTestSupport.randomGptq(r, "wgs.b" + bits + ".g" + group, in, out, bits, group, true, bits != 3);
        double[][] ref = CudaTestSupport.dequant(w);
        Object prepared = be.prepareLinear(w);
        float[] x = inputs(r, T, in);
        long before = be.wgmmaLaunches();
        float[] y = linear(be, prepared, x, T, in, out);
        // T <= 80: one token tile, 32 split-mode blocks, under a quarter of 132 SMs: gq_wg only without the cover rule
        assertEquals(be.sm90a() && (T > 80 || CudaBackend.WGMMA_COVER == 0) ? 1 : 0, be.wgmmaLaunches() - before,
                "wgmma launches for T=" + T);
        int[] rows = {0, 1, 55, 56, 63, 64, 71, 72, T / 2, T - 2, T - 1, r.nextInt(T)};
        checkRows(be, prepared, ref, x, y, T, in, out, rows, "err_gptq_wgmma_split", bits + "-bit");
    }

    /**
     * The fp16 lm_head's product on gq_wg_b16 (2 warpgroups, the weights' fragments by ldmatrix): in loop mode (out
     * 16,384: gq_mma's loop-mode grid has 1,024 blocks from 193 rows) and in split mode (out 2,048, 4 splits of 8
     * chunks), each sampled row within 1e-5 of float64 and equal bit for bit to the row alone (gq_mma_b16_n1); below
     * CudaBackend.WGMMA_DENSE_FROM rows the product stays on gq_mma (the same checks).
     */
    @ParameterizedTest(name = "out {0} T={1}")
    @CsvSource({"16384,256", "16384,521", "2048,64", "2048,130", "2048,40"})
    void denseMatchesFloat64AndOneTokenBits(int out, int T) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int in = 1024;
        gptq4j.loader.HalfMatrix m = CudaSmallOpsTest.randomHalf(r, "wg.dense" + out, out, in, 0.05);
        double[][] ref = CudaTestSupport.toDouble(m);
        Object prepared = be.prepareDense(m);
        float[] x = inputs(r, T, in);
        long before = be.wgmmaLaunches();
        float[] y = dense(be, prepared, x, T, in, out);
        assertEquals(be.sm90a() && T >= CudaBackend.WGMMA_DENSE_FROM ? 1 : 0, be.wgmmaLaunches() - before,
                "wgmma launches for T=" + T);
        int[] rows = java.util.stream.IntStream.of(0, 1, 63, 64, T / 2, T - 2, T - 1, r.nextInt(T)).filter(v -> v < T).toArray();
        checkRows(ref, x, y, T, in, out, rows, "err_dense_wgmma", "fp16 weights out " + out,
                xr -> dense(be, prepared, xr, 1, in, out));
    }

    /** T rows of gaussian inputs with an outlier per row (so the splits' exponents differ). */
    private static float[] inputs(Random r, int T, int in) {
        float[] x = CudaTestSupport.gaussian(r, T * in, 1.0);
        for (int i = 0; i < T; i++) x[i * in + r.nextInt(in)] *= 30f;
        return x;
    }

    /**
     * y = the product of x's T rows: every output written and finite, the sampled rows within 1e-5 of float64 (reported
     * as metric), and each sampled row equal bit for bit to the same row computed alone (the one-token kernel, gq_mmv).
     */
    private static void checkRows(CudaBackend be, Object prepared, double[][] ref, float[] x, float[] y, int T, int in,
                                  int out, int[] rows, String metric, String label) {
        checkRows(ref, x, y, T, in, out, rows, metric, label, xr -> linear(be, prepared, xr, 1, in, out));
    }

    /** checkRows with the one-row product given (alone: a row's inputs to its outputs). */
    private static void checkRows(double[][] ref, float[] x, float[] y, int T, int in, int out, int[] rows, String metric,
                                  String label, java.util.function.UnaryOperator<float[]> alone) {
        assertTrue(CudaTestSupport.allFinite(y), "unwritten or non-finite output, T=" + T);
        float[] xs = new float[rows.length * in], ys = new float[rows.length * out];
        for (int k = 0; k < rows.length; k++) {
            System.arraycopy(x, rows[k] * in, xs, k * in, in);
            System.arraycopy(y, rows[k] * out, ys, k * out, out);
        }
        double err = CudaTestSupport.relErr(ys, CudaTestSupport.matmul(xs, rows.length, ref));
        CudaTestSupport.report(metric, err);
        assertTrue(err < 1e-5, label + " T=" + T + ": rel err " + err);
        for (int row : rows) {
            assertArrayEquals(alone.apply(Arrays.copyOfRange(x, row * in, (row + 1) * in)),
                    Arrays.copyOfRange(y, row * out, (row + 1) * out),
                    label + ": row " + row + " of T=" + T + " differs from the row alone");
        }
    }

    /**
     * A MoE block whose expert products reach the wgmma kernel: every sampled token equals itself alone, bit for bit,
     * with each expert's w1 and w3 sharing their act-order permutation (as in the published checkpoints: one converted
     * activation plane, the blocks taking the matrix fastest) or not.
     * hot > 0 biases the router towards the first hot experts, so their segments take several token tiles (4 hot: ~128
     * rows each, 2 tiles; 1 hot: all 256 tokens in expert 0, 4 tiles) and the tokens sampled lie in each tile. An
     * intermediate size of 8,448 puts w2's preparation on gq_mma_prep_rows_w (CudaBackend.PREP_WIDE_FROM).
     */
    @ParameterizedTest(name = "hot experts {0}, intermediate {1}, w1 and w3 sharing g_idx {2}, {3} tokens")
    @CsvSource({"0, 2304, true, 256", "4, 2304, false, 256", "1, 2304, true, 256", "4, 8448, true, 256",
            "0, 2304, true, 4", "0, 2304, false, 3"})   // small batches: one expected row per expert (WGMMA_FROM)
    void moeTokensEqualThemselvesAlone(int hot, int inter, boolean shared, int T) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int E = 8, K = 2, hidden = 4352;            // w1+w3: 9 x 16 blocks at 2,304, w2: 17 x 8 (>= 132 SMs)
        Object[] p1 = new Object[E], p3 = new Object[E], p2 = new Object[E];
        for (int e = 0; e < E; e++) {
            GptqLinear w1 = CudaTestSupport.randomGptq(r, "wg" + e + ".w1", hidden, inter, 4, 128, true, false);
            GptqLinear w3 = CudaTestSupport.randomGptq(r, "wg" + e + ".w3", hidden, inter, 4, 128, true, false);
            p1[e] = be.prepareLinear(w1);
            p3[e] = be.prepareLinear(shared ? CudaTestSupport.withGIdx(w3, w1.gIdx()) : w3);
            p2[e] = be.prepareLinear(CudaTestSupport.randomGptq(r, "wg" + e + ".w2", inter, hidden, 4, 128, true, false));
        }
        float[] x = CudaTestSupport.gaussian(r, T * hidden, 1.0);
        float[] logits = CudaTestSupport.gaussian(r, T * E, 1.5);
        for (int t = 0; t < T; t++) for (int e = 0; e < hot; e++) logits[t * E + e] += 6f;
        int[] routed = new int[E];                                // rows per expert (top K of each token's logits)
        for (int t = 0; t < T; t++) {
            Integer[] order = new Integer[E];
            for (int e = 0; e < E; e++) order[e] = e;
            final int tt = t;
            Arrays.sort(order, (a, b) -> Float.compare(logits[tt * E + b], logits[tt * E + a]));
            for (int k = 0; k < K; k++) routed[order[k]]++;
        }
        int most = Arrays.stream(routed).max().orElse(0);
        if (hot > 0) assertTrue(most > CudaBackend.WG_ROWS, "the skewed routing gives an expert " + most + " rows");
        long before = be.wgmmaLaunches();
        float[] out = CudaMoeTest.runMoe(be, p1, p3, p2, x, logits, T, K, hidden, inter);
        assertEquals(be.sm90a() ? 2 : 0, be.wgmmaLaunches() - before, "wgmma launches (w1+w3, w2)");
        assertTrue(CudaTestSupport.allFinite(out), "non-finite MoE output");
        int[] sample = hot == 0 ? new int[]{0, 1, T / 2, T - 1, r.nextInt(T)}
                : new int[]{0, 1, T / 4 - 1, T / 4, T / 3, T / 2, T / 2 + 1, 2 * T / 3, 3 * T / 4, T - 2, T - 1, r.nextInt(T), r.nextInt(T)};
        for (int t : sample) {
            float[] alone = CudaMoeTest.runMoe(be, p1, p3, p2, Arrays.copyOfRange(x, t * hidden, (t + 1) * hidden),
                    Arrays.copyOfRange(logits, t * E, (t + 1) * E), 1, K, hidden, inter);
            assertArrayEquals(alone, Arrays.copyOfRange(out, t * hidden, (t + 1) * hidden), "token " + t + " alone differs");
        }
    }

    /** y = the product of x's T rows on be (outputs pre-filled with NaN, so an unwritten one shows). */
    static float[] linear(CudaBackend be, Object prepared, float[] x, int T, int in, int out) {
        return CudaTestSupport.runOnDevice(be, x, T, in, out, (xb, yb) -> be.linear(prepared, xb, T, yb));
    }

    /** The same for an fp16 matrix (CudaBackend.dense). */
    static float[] dense(CudaBackend be, Object prepared, float[] x, int T, int in, int out) {
        return CudaTestSupport.runOnDevice(be, x, T, in, out, (xb, yb) -> be.dense(prepared, xb, T, yb));
    }
}
