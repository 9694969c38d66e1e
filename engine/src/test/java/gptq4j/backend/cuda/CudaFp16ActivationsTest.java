package gptq4j.backend.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import gptq4j.loader.Checkpoint;
import gptq4j.model.MixtralConfig;
import gptq4j.model.MixtralModel;
import gptq4j.model.MixtralWeights;
import gptq4j.quant.gptq.GptqLinear;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * fp16 activations in the GPTQ products (CudaBackend's fp16Activations, -Dgptq4j.cuda.fp16Activations=true): each
 * input enters the tensor cores as one fp16 value x' = fp16(x * 2^-e), so every output lies within the rounding
 * bound 2^-11 * sum |w x| of the float64 product (plus float32 summation slack), the rows of a large product (gq_wg,
 * which skips the lo plane) equal the same rows computed alone (gq_mmv_b*_h1, which skips it too) bit for bit, and the
 * whole model stays within the fixtures' fp16 tolerance of the golden logits (1e-2 relative).
 */
class CudaFp16ActivationsTest {
    private static CudaBackend fp16;

    /** A second backend on the tests' device with fp16 activations (skips without a GPU, as every CUDA test). */
    static synchronized CudaBackend fp16Backend() {
        CudaTestSupport.backend();
        if (fp16 == null) fp16 = new CudaBackend(CudaTestSupport.deviceOrdinal(), true);
        return fp16;
    }

    @AfterAll
    static synchronized void close() {
        if (fp16 != null) fp16.close();
        fp16 = null;
    }

    /**
     * T = 600: 16 blocks of 256 outputs x 8 token tiles, gq_wg on Hopper at 2-4 bits (gq_mma_b8_n8_h1 at 8 bits);
     * T = 3: 16 blocks of 256 outputs and one token tile, gq_wg on Hopper at 2-4 bits by default (CudaBackend.WGMMA_COVER
     * 0; with -Dgptq4j.cuda.wgmmaCover=1 a grid under a quarter of the SMs stays on gq_mma_b*_n1_h1). Each row also
     * equals the row alone (gq_mmv_b*_h1).
     */
    @ParameterizedTest(name = "{0}-bit group {1} actOrder {2} T={3}")
    @CsvSource({"4,128,true,600", "3,128,true,600", "4,-1,false,600", "8,128,true,600", "4,128,true,3", "8,-1,false,3"})
    void linearWithinItsRoundingBoundAndBatchInvariant(int bits, int group, boolean act, int T) {
        CudaBackend be16 = fp16Backend(), be32 = CudaTestSupport.backend();
        assertTrue(be16.fp16Activations() && !be32.fp16Activations());
        Random r = new Random();
        int in = 512, out = 4096;
        GptqLinear w = CudaTestSupport.randomGptq(r, "fp16a.b" + bits + ".g" + group, in, out, bits, group, act, bits != 3);
        double[][] ref = CudaTestSupport.dequant(w);
        Object p16 = be16.prepareLinear(w), p32 = be32.prepareLinear(w);
        float[] x = CudaTestSupport.gaussian(r, T * in, 1.0);
        for (int t = 0; t < T; t++) x[t * in + r.nextInt(in)] *= 30f;     // an outlier per row: the splits' e differ
        long before = be16.wgmmaLaunches();
        float[] y16 = CudaWgmmaTest.linear(be16, p16, x, T, in, out);
        float[] y32 = CudaWgmmaTest.linear(be32, p32, x, T, in, out);
        assertEquals(be16.sm90a() && bits <= 4 && (T == 600 || CudaBackend.WGMMA_COVER == 0) ? 1 : 0,
                be16.wgmmaLaunches() - before,
                "wgmma launches");
        assertTrue(CudaTestSupport.allFinite(y16), "unwritten or non-finite output");
        int[] rows = T > 100 ? new int[]{0, 1, 63, 64, 65, T / 2, T - 2, T - 1, r.nextInt(T)} : new int[]{0, 1, T - 1};
        float[] xs = pick(x, rows, in), s16 = pick(y16, rows, out), s32 = pick(y32, rows, out);
        double[] want = CudaTestSupport.matmul(xs, rows.length, ref);
        double worstRatio = withinRoundingBound(xs, rows, s16, want, ref, in, out);
        double e16 = CudaTestSupport.relErr(s16, want), e32 = CudaTestSupport.relErr(s32, want);
        CudaTestSupport.report("err_gptq_fp16_activations", e16);
        System.out.printf("fp16 activations %d-bit g%d T=%d: rel err %.3g (float32-precise pair %.3g), worst %.2f of the bound%n",
                bits, group, T, e16, e32, worstRatio);
        assertTrue(e16 < 1e-3, "fp16 activations rel err " + e16);
        assertTrue(e32 < 1e-5 && e16 > 4 * e32, "the fp16 mode took effect: " + e16 + " against " + e32);
        for (int row : rows) {
            float[] alone = CudaWgmmaTest.linear(be16, p16, Arrays.copyOfRange(x, row * in, (row + 1) * in), 1, in, out);
            assertArrayEquals(alone, Arrays.copyOfRange(y16, row * out, (row + 1) * out),
                    "row " + row + " of T=" + T + " differs from the row alone");
        }
    }

    /**
     * The fp16 weights' product (the lm_head: gq_mma_b16_n*_h1 with fp16 activations, on Hopper from
     * CudaBackend.WGMMA_DENSE_FROM rows gq_wg_b16_h1 where out % 128 == 0) within the same rounding bound; each
     * checked row equals the row alone.
     */
    @ParameterizedTest(name = "T={0} in {1} out {2}")
    @CsvSource({"3,4096,1000", "19,4096,1000", "300,4096,1000", "300,1024,16384", "96,1024,2048"})
    void denseWithinItsRoundingBoundAndBatchInvariant(int T, int in, int out) {
        CudaBackend be16 = fp16Backend(), be32 = CudaTestSupport.backend();
        Random r = new Random();                      // in % 64 == 0 and many rows: the tensor-core path
        gptq4j.loader.HalfMatrix m = CudaSmallOpsTest.randomHalf(r, "fp16a.dense", out, in, 0.05);
        double[][] ref = CudaTestSupport.toDouble(m);
        float[] x = CudaTestSupport.gaussian(r, T * in, 1.0);
        for (int t = 0; t < T; t++) x[t * in + r.nextInt(in)] *= 30f;
        Object d16 = be16.prepareDense(m);
        long wg16 = be16.wgmmaLaunches(), wg32 = be32.wgmmaLaunches();
        float[] y16 = CudaWgmmaTest.dense(be16, d16, x, T, in, out),
                y32 = CudaWgmmaTest.dense(be32, be32.prepareDense(m), x, T, in, out);
        int wgmma = be16.sm90a() && out % 128 == 0 && T >= CudaBackend.WGMMA_DENSE_FROM ? 1 : 0;
        assertEquals(wgmma, be16.wgmmaLaunches() - wg16, "wgmma launches (fp16 activations)");
        assertEquals(wgmma, be32.wgmmaLaunches() - wg32, "wgmma launches (float32 activations)");
        int[] rows = {0, T / 2, T - 1};
        float[] xs = pick(x, rows, in), s16 = pick(y16, rows, out), s32 = pick(y32, rows, out);
        double[] want = CudaTestSupport.matmul(xs, rows.length, ref);
        double worstRatio = withinRoundingBound(xs, rows, s16, want, ref, in, out);
        double e16 = CudaTestSupport.relErr(s16, want), e32 = CudaTestSupport.relErr(s32, want);
        System.out.printf("fp16 activations, fp16 weights T=%d: rel err %.3g (float32-precise pair %.3g), worst %.2f of the bound%n",
                T, e16, e32, worstRatio);
        assertTrue(e32 < 1e-5 && e16 > 4 * e32, "the fp16 mode took effect: " + e16 + " against " + e32);
        for (int row : rows) {
            float[] alone = CudaWgmmaTest.dense(be16, d16, Arrays.copyOfRange(x, row * in, (row + 1) * in), 1, in, out);
            assertArrayEquals(alone, Arrays.copyOfRange(y16, row * out, (row + 1) * out),
                    "row " + row + " of T=" + T + " differs from the row alone");
        }
    }

    /** The rows' slices of a [T][n] array, packed: rows.length x n. */
    private static float[] pick(float[] a, int[] rows, int n) {
        float[] out = new float[rows.length * n];
        for (int k = 0; k < rows.length; k++) System.arraycopy(a, rows[k] * n, out, k * n, n);
        return out;
    }

    /**
     * The worst |got - want| of the checked rows as a fraction of its fp16-activation bound, asserted <= 1: one rounding
     * of each input to fp16 (2^-11 relative; subnormal x' below 2^-28 of the split's largest |x|: 2^-38 of it
     * absolute) and float32 sums over in products (in * 2^-24 at worst).
     */
    private static double withinRoundingBound(float[] xs, int[] rows, float[] got, double[] want, double[][] ref, int in,
                                              int out) {
        int worst = -1;
        double worstRatio = 0;
        for (int k = 0; k < rows.length; k++) {
            double xmax = 0;
            for (int i = 0; i < in; i++) xmax = Math.max(xmax, Math.abs(xs[k * in + i]));
            for (int o = 0; o < out; o++) {
                double mag = 0, wsum = 0;
                for (int i = 0; i < in; i++) {
                    mag += Math.abs(ref[o][i] * xs[k * in + i]);
                    wsum += Math.abs(ref[o][i]);
                }
                double bound = (Math.scalb(1.0, -11) + in * Math.scalb(1.0, -24)) * mag + Math.scalb(xmax, -38) * wsum;
                double ratio = Math.abs(got[k * out + o] - want[k * out + o]) / Math.max(bound, Double.MIN_NORMAL);
                if (ratio > worstRatio) { worstRatio = ratio; worst = k * out + o; }
            }
        }
        assertTrue(worstRatio <= 1.0, "row " + rows[worst / out] + " output " + worst % out + ": error " + worstRatio
                + " x its fp16 rounding bound");
        return worstRatio;
    }

    static List<String> models() { return Fixtures.MODELS; }

    /** Last-position logits of every prompt within the fixtures' fp16 tolerance; the first greedy token where clear. */
    @ParameterizedTest
    @MethodSource("models")
    void goldenLogitsWithinTheFp16Tolerance(String name) {
        CudaBackend be = fp16Backend();
        JsonNode ref = Fixtures.reference(name);
        float[] lastRef = Fixtures.tensor(name, "last_logits");
        List<String> failures = new ArrayList<>();
        double worst = 0;
        try (Checkpoint ck = Checkpoint.open(Fixtures.model(name))) {
            MixtralConfig c = ck.config();
            int V = c.vocabSize();
            MixtralWeights w = MixtralWeights.load(ck, be);
            try (MixtralModel m = new MixtralModel(c, w, be, 1024, 8, 64, CudaGoldenTest.BLOCK)) {
                JsonNode ids = ref.get("input_ids");
                for (int p = 0; p < ids.size(); p++) {
                    float[] logits = CudaGoldenTest.prefill(m, Fixtures.ints(ids.get(p)), false);
                    double err = Fixtures.relErr(logits, 0, lastRef, p * V, V);
                    worst = Math.max(worst, err);
                    if (err > 1e-2) failures.add("prompt " + p + ": last logits rel err " + err);
                    JsonNode g = ref.get("greedy").get(p);
                    if (g.get("top1_top2_margin").get(0).asDouble() >= 0.1
                            && CudaGoldenTest.argmax(logits) != g.get("new_ids").get(0).asInt()) {
                        failures.add("prompt " + p + ": first greedy token " + CudaGoldenTest.argmax(logits));
                    }
                }
            }
        }
        CudaTestSupport.report("golden_fp16_activations_logits_rel_err", worst);
        System.out.println("golden " + name + " (fp16 activations): logits rel err " + worst);
        assertTrue(failures.isEmpty(), name + ": " + failures);
    }
}
