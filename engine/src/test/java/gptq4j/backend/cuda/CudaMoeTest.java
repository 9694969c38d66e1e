package gptq4j.backend.cuda;

import gptq4j.backend.Buf;
import gptq4j.quant.gptq.GptqLinear;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The MoE block (routing, grouping, expert GEMMs, SiLU gating, weighted combine) against a float64 reference. */
class CudaMoeTest {

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of(4, 128, true, true, 1),
                Arguments.of(4, 128, true, true, 6),
                Arguments.of(4, 32, true, true, 45),
                Arguments.of(3, 128, true, false, 9),
                Arguments.of(8, -1, false, true, 20),
                Arguments.of(2, 32, true, false, 3),
                Arguments.of(4, 128, true, true, 600));   // 1,200 pairs: moe_route's second pass
    }

    @ParameterizedTest(name = "{0}-bit g{1} act {2} sym {3} T={4}")
    @MethodSource("cases")
    void matchesReference(int bits, int group, boolean act, boolean sym, int T) {
        check(bits, group, act, sym, T, 8);
    }

    /**
     * 40 experts at a few tokens: 3 tokens give 6 (token, expert) pairs, so moe_route runs on one warp, fewer threads
     * than experts (its per-expert counters are zeroed and carried in loops over the experts), and w2's ranking of the
     * experts by rows (CudaBackend.WGMMA_FULLEST_FIRST) covers all 40; 17 tokens give 34 pairs (two warps).
     */
    @ParameterizedTest(name = "T={0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {3, 17})
    void moreExpertsThanRoutingThreads(int T) {
        check(4, 128, true, true, T, 40);
    }

    /**
     * 48 experts with an intermediate size of 1,024: a token alone runs w1+w3 as 3,072 four-tile tasks (96 matrices x
     * 16 tile groups x 2 splits), more than an H100's or H200's 2,112 resident gq_mmv warps (132 SMs x 4 blocks x 4),
     * so on gq_mmv_b4, and w2 as 1,536 (48 x 2 x 16 splits), fewer, so on gq_mmv_b4_t1 with one tile per task
     * (CudaBackend.MMV_ONE_TILE); its output must equal its row of the 17-token batch bit for bit (gq_mma, another
     * kernel with the same arithmetic).
     */
    @org.junit.jupiter.api.Test
    void oneTokenKernelsOfBothTaskSizes() {
        CudaBackend be = CudaTestSupport.backend();
        long multi = be.mmvLaunches(), one = be.mmvOneTileLaunches();
        check(4, 128, true, true, 17, 48, 1024);
        assertTrue(be.mmvLaunches() > multi, "the token alone ran no product on gq_mmv_b4");
        assertTrue(be.mmvOneTileLaunches() > one, "the token alone ran no product on gq_mmv_b4_t1");
    }

    private static void check(int bits, int group, boolean act, boolean sym, int T, int E) {
        check(bits, group, act, sym, T, E, 256);
    }

    private static void check(int bits, int group, boolean act, boolean sym, int T, int E, int inter) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int K = 2, hidden = 128;
        GptqLinear[] w1 = new GptqLinear[E], w3 = new GptqLinear[E], w2 = new GptqLinear[E];
        Object[] p1 = new Object[E], p3 = new Object[E], p2 = new Object[E];
        double[][][] d1 = new double[E][][], d3 = new double[E][][], d2 = new double[E][][];
        for (int e = 0; e < E; e++) {
            w1[e] = CudaTestSupport.randomGptq(r, "e" + e + ".w1", hidden, inter, bits, group, act, sym);
            w3[e] = CudaTestSupport.randomGptq(r, "e" + e + ".w3", hidden, inter, bits, group, act, sym);
            w2[e] = CudaTestSupport.randomGptq(r, "e" + e + ".w2", inter, hidden, bits, group, act, sym);
            p1[e] = be.prepareLinear(w1[e]);
            p3[e] = be.prepareLinear(w3[e]);
            p2[e] = be.prepareLinear(w2[e]);
            d1[e] = CudaTestSupport.dequant(w1[e]);
            d3[e] = CudaTestSupport.dequant(w3[e]);
            d2[e] = CudaTestSupport.dequant(w2[e]);
        }
        float[] x = CudaTestSupport.gaussian(r, T * hidden, 1.0);
        float[] logits = CudaTestSupport.gaussian(r, T * E, 1.5);
        float[] out = runMoe(be, p1, p3, p2, x, logits, T, K, hidden, inter);
        double[] ref = new double[T * hidden];
        for (int t = 0; t < T; t++) {
            double mx = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < E; e++) mx = Math.max(mx, logits[t * E + e]);
            double[] p = new double[E];
            for (int e = 0; e < E; e++) p[e] = Math.exp(logits[t * E + e] - mx);
            boolean[] taken = new boolean[E];
            int[] chosen = new int[K];
            double total = 0;
            for (int j = 0; j < K; j++) {
                int best = -1;
                for (int e = 0; e < E; e++) if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
                taken[best] = true;
                chosen[j] = best;
                total += p[best];
            }
            float[] xt = Arrays.copyOfRange(x, t * hidden, (t + 1) * hidden);
            for (int j = 0; j < K; j++) {
                int e = chosen[j];
                double[] h1 = CudaTestSupport.matmul(xt, 1, d1[e]), h3 = CudaTestSupport.matmul(xt, 1, d3[e]);
                double[] ad = new double[inter];
                for (int i = 0; i < inter; i++) ad[i] = h1[i] / (1 + Math.exp(-h1[i])) * h3[i];
                for (int c = 0; c < hidden; c++) {
                    double s = 0;
                    for (int i = 0; i < inter; i++) s += ad[i] * d2[e][c][i];
                    ref[t * hidden + c] += p[e] / total * s;
                }
            }
        }
        double err = CudaTestSupport.relErr(out, ref);
        CudaTestSupport.report("err_moe", err);
        assertTrue(CudaTestSupport.allFinite(out), "non-finite MoE output");
        assertTrue(err < 1e-4, "MoE rel err " + err);
        if (T > 1) {
            int t = T / 2;
            float[] alone = runMoe(be, p1, p3, p2, Arrays.copyOfRange(x, t * hidden, (t + 1) * hidden),
                    Arrays.copyOfRange(logits, t * E, (t + 1) * E), 1, K, hidden, inter);
            assertArrayEquals(alone, Arrays.copyOfRange(out, t * hidden, (t + 1) * hidden), "token " + t + " alone differs");
        }
    }

    /** moeAdd (the residual add in the combine) has the bits of moe followed by add. */
    @ParameterizedTest(name = "T={0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 7, 300})
    void moeAddEqualsMoeThenAdd(int T) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int E = 8, K = 2, hidden = 128, inter = 256;
        Object[] p1 = new Object[E], p3 = new Object[E], p2 = new Object[E];
        for (int e = 0; e < E; e++) {
            p1[e] = be.prepareLinear(CudaTestSupport.randomGptq(r, "a" + e + ".w1", hidden, inter, 4, 128, true, true));
            p3[e] = be.prepareLinear(CudaTestSupport.randomGptq(r, "a" + e + ".w3", hidden, inter, 4, 128, true, true));
            p2[e] = be.prepareLinear(CudaTestSupport.randomGptq(r, "a" + e + ".w2", inter, hidden, 4, 128, true, true));
        }
        float[] x = CudaTestSupport.gaussian(r, T * hidden, 1.0), logits = CudaTestSupport.gaussian(r, T * E, 1.5);
        float[] res = CudaTestSupport.gaussian(r, T * hidden, 3.0);
        float[] plain = runMoe(be, p1, p3, p2, x, logits, T, K, hidden, inter);
        for (int i = 0; i < plain.length; i++) plain[i] = res[i] + plain[i];      // add_inplace's arithmetic
        Buf xb = be.allocFloats(x.length), lb = be.allocFloats(logits.length), rb = be.allocFloats(res.length);
        Buf tmp = be.allocFloats(res.length);
        be.write(xb, x, x.length);
        be.write(lb, logits, logits.length);
        be.write(rb, res, res.length);
        be.moeAdd(p1, p3, p2, xb, lb, T, K, hidden, inter, tmp, rb);
        float[] fused = new float[res.length];
        be.read(rb, 0, fused, fused.length);
        assertArrayEquals(plain, fused, "T=" + T + ": moeAdd differs from moe + add");
        for (Buf b : new Buf[]{xb, lb, rb, tmp}) be.free(b);
    }

    static float[] runMoe(CudaBackend be, Object[] p1, Object[] p3, Object[] p2, float[] x, float[] logits,
                                  int T, int K, int hidden, int inter) {
        Buf xb = be.allocFloats(x.length), lb = be.allocFloats(logits.length), ob = be.allocFloats((long) T * hidden);
        be.write(xb, x, x.length);
        be.write(lb, logits, logits.length);
        float[] poison = new float[T * hidden];
        Arrays.fill(poison, Float.NaN);
        be.write(ob, poison, poison.length);
        be.moe(p1, p3, p2, xb, lb, T, K, hidden, inter, ob);
        float[] out = new float[T * hidden];
        be.read(ob, 0, out, out.length);
        be.free(xb);
        be.free(lb);
        be.free(ob);
        return out;
    }
}
