package gptq4j.backend.cuda;

import gptq4j.backend.AttentionBatch;
import gptq4j.backend.Buf;
import gptq4j.backend.KvCache;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static gptq4j.backend.cuda.CudaSmallOpsTest.upload;
import static gptq4j.backend.cuda.CudaSmallOpsTest.uploadInts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused paths against the operations they replace, bit for bit in every output: the RMSNorm inside the product's
 * input pass (Backend.rmsNormLinear: gq_mma_prep normalises its own input), inside the router's product
 * (rmsNormDense: dense_fp16_rows_norm) and, at one token, with the routing as well (rmsNormRouteMoeAdd:
 * router_route_one), and the attention block's q, k, v folded inside the RoPE pass (rmsNormQkvAttention:
 * rope_kv_append_fold).
 */
class CudaFusedNormTest {

    @ParameterizedTest(name = "{0}-bit in {1} out {2}")
    @CsvSource({"4,1024,256", "3,1024,256", "8,512,256", "4,4096,512"})
    void rmsNormLinearEqualsNormThenLinear(int bits, int in, int out) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        Object w = be.prepareLinear(CudaTestSupport.randomGptq(r, "fn.b" + bits + "." + in, in, out, bits, 128, true, false));
        Object np = be.prepareDense(CudaSmallOpsTest.randomHalf(r, "fn.norm", 1, in, 1.0));
        compare(be, r, in, out, new int[]{1, 5, 70}, bits + "-bit rmsNormLinear", 0,
                (x, T, xn, y) -> be.rmsNormLinear(x, np, 1e-5f, T, in, xn, w, y),
                (x, T, xn, y) -> {
                    be.rmsNorm(x, np, 1e-5f, T, in, xn);
                    be.linear(w, xn, T, y);
                });
    }

    @ParameterizedTest(name = "rows {0} cols {1}")
    @CsvSource({"8,4096", "5,1000", "3,96"})
    void rmsNormDenseEqualsNormThenDense(int rows, int cols) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        Object m = be.prepareDense(CudaSmallOpsTest.randomHalf(r, "fn.router", rows, cols, 0.05));
        Object np = be.prepareDense(CudaSmallOpsTest.randomHalf(r, "fn.ffnnorm", 1, cols, 1.0));
        compare(be, r, cols, rows, new int[]{1, 5, 19}, "rmsNormDense", 1,
                (x, T, xn, y) -> be.rmsNormDense(x, np, 1e-5f, T, cols, xn, m, y),
                (x, T, xn, y) -> {
                    be.rmsNorm(x, np, 1e-5f, T, cols, xn);
                    be.dense(m, xn, T, y);
                });
    }

    /**
     * rmsNormRouteMoeAdd against rmsNormDense then moeAdd, with the residual stream as the input (as the model calls
     * it): at one token the router's launch also routes (router_route_one: one launch fewer), at 3 tokens the parts
     * run. The normalised row, the router's logits and the residual stream after the MoE block, bit for bit.
     */
    @ParameterizedTest(name = "experts {0} top {1} hidden {2}")
    @CsvSource({"8,2,4096", "8,2,256", "4,1,128", "6,3,512"})
    void rmsNormRouteMoeAddEqualsItsParts(int experts, int topK, int hidden) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int inter = 256;
        Object[] p1 = new Object[experts], p3 = new Object[experts], p2 = new Object[experts];
        for (int e = 0; e < experts; e++) {
            p1[e] = be.prepareLinear(CudaTestSupport.randomGptq(r, "rr" + e + ".w1", hidden, inter, 4, 128, true, true));
            p3[e] = be.prepareLinear(CudaTestSupport.randomGptq(r, "rr" + e + ".w3", hidden, inter, 4, 128, true, true));
            p2[e] = be.prepareLinear(CudaTestSupport.randomGptq(r, "rr" + e + ".w2", inter, hidden, 4, 128, true, true));
        }
        Object router = be.prepareDense(CudaSmallOpsTest.randomHalf(r, "rr.router", experts, hidden, 0.05));
        Object np = be.prepareDense(CudaSmallOpsTest.randomHalf(r, "rr.ffnnorm", 1, hidden, 1.0));
        for (int T : new int[]{1, 3, 1}) {
            float[] x = CudaTestSupport.gaussian(r, T * hidden, 3.0);
            Buf xF = upload(be, x), xP = upload(be, x);
            Buf xnF = be.allocFloats((long) T * hidden), xnP = be.allocFloats((long) T * hidden);
            Buf lF = be.allocFloats((long) T * experts), lP = be.allocFloats((long) T * experts);
            Buf tF = be.allocFloats((long) T * hidden), tP = be.allocFloats((long) T * hidden);
            long before = be.launchStats()[3];
            be.rmsNormRouteMoeAdd(xF, np, 1e-5f, T, hidden, xnF, router, lF, p1, p3, p2, topK, inter, tF, xF);
            long fused = be.launchStats()[3] - before;
            before = be.launchStats()[3];
            be.rmsNormDense(xP, np, 1e-5f, T, hidden, xnP, router, lP);
            be.moeAdd(p1, p3, p2, xnP, lP, T, topK, hidden, inter, tP, xP);
            long parts = be.launchStats()[3] - before;
            String what = "experts " + experts + " top " + topK + " hidden " + hidden + " T=" + T;
            assertEquals(parts - (T == 1 ? 1 : 0), fused, what + ": kernels launched");
            float[] after = CudaSmallOpsTest.run(be, xF, T * hidden);
            assertTrue(CudaTestSupport.allFinite(after), what + ": non-finite output");
            assertTrue(!java.util.Arrays.equals(x, after), what + ": the residual stream was not updated");
            assertArrayEquals(CudaSmallOpsTest.run(be, xnP, T * hidden), CudaSmallOpsTest.run(be, xnF, T * hidden),
                    what + ": normalised input");
            assertArrayEquals(CudaSmallOpsTest.run(be, lP, T * experts), CudaSmallOpsTest.run(be, lF, T * experts),
                    what + ": router logits");
            assertArrayEquals(CudaSmallOpsTest.run(be, xP, T * hidden), after, what + ": residual stream after the MoE block");
            for (Buf bb : new Buf[]{xF, xP, xnF, xnP, lF, lP, tF, tP}) be.free(bb);
        }
    }

    /** A normalising product: xn = norm(x [T][in]), y = product(xn). */
    private interface NormProduct { void run(Buf x, int T, Buf xn, Buf y); }

    /**
     * fused against parts on fresh inputs at each T: the normalised rows and the product bit for bit, x untouched;
     * launches > 0: the number of kernels the fused form must take.
     */
    private static void compare(CudaBackend be, Random r, int in, int out, int[] tokens, String what, int launches,
                                NormProduct fused, NormProduct parts) {
        for (int T : tokens) {
            float[] x = CudaTestSupport.gaussian(r, T * in, 3.0);
            Buf xb = upload(be, x);
            Buf xnF = be.allocFloats((long) T * in), xnP = be.allocFloats((long) T * in);
            Buf yF = be.allocFloats((long) T * out), yP = be.allocFloats((long) T * out);
            long before = be.launchStats()[3];
            fused.run(xb, T, xnF, yF);
            long taken = be.launchStats()[3] - before;
            parts.run(xb, T, xnP, yP);
            if (launches > 0) assertEquals(launches, taken, what + ": kernels launched at T=" + T);
            float[] a = CudaSmallOpsTest.run(be, yF, T * out);
            assertTrue(CudaTestSupport.allFinite(a), what + ": non-finite output, T=" + T);
            assertArrayEquals(CudaSmallOpsTest.run(be, xnP, T * in), CudaSmallOpsTest.run(be, xnF, T * in),
                    what + " T=" + T + ": normalised input");
            assertArrayEquals(CudaSmallOpsTest.run(be, yP, T * out), a, what + " T=" + T + ": differs from its parts");
            assertArrayEquals(x, CudaSmallOpsTest.run(be, xb, T * in), what + ": x must be left as it was");
            for (Buf bb : new Buf[]{xb, xnF, xnP, yF, yP}) be.free(bb);
        }
    }

    /**
     * rmsNormQkvAttention against rmsNormLinear, linear2 and ropeAttention over two caches: a prefill of 5 tokens,
     * then decode steps of one token (where q, k and v are one product, folded inside the RoPE pass: four launches
     * fewer). Every output is compared each step: xn, the rotated q and k, v, the attention output (which reads all
     * cached keys and values).
     */
    @ParameterizedTest(name = "{0}-bit, fp16 cache {1}")
    @CsvSource({"4,false", "3,true", "8,false"})
    void rmsNormQkvAttentionEqualsItsParts(int bits, boolean fp16) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        // q 1,024 -> 256 and k, v 1,024 -> 128: the same cpb (2) under the split rule, as Mixtral's 32
        int dim = 1024, heads = 4, kvHeads = 2, d = 64, qDim = heads * d, kvDim = kvHeads * d, bs = 16, maxBlocks = 2;
        double theta = 1e6;
        Object wq = be.prepareLinear(CudaTestSupport.randomGptq(r, "fa.q" + bits, dim, qDim, bits, 128, true, false));
        Object wk = be.prepareLinear(CudaTestSupport.randomGptq(r, "fa.k" + bits, dim, kvDim, bits, 128, true, false));
        Object wv = be.prepareLinear(CudaTestSupport.randomGptq(r, "fa.v" + bits, dim, kvDim, bits, 128, true, false));
        Object np = be.prepareDense(CudaSmallOpsTest.randomHalf(r, "fa.norm", 1, dim, 1.0));
        assertEquals(CudaGptq.of(wq).cpb(), CudaGptq.of(wk).cpb(), "q and k split alike (the one-launch path)");
        try (KvCache fused = be.allocKvCache(1, 4, bs, kvHeads, d, fp16);
             KvCache plain = be.allocKvCache(1, 4, bs, kvHeads, d, fp16)) {
            int[] table = {3, 1};
            Buf tables = be.allocInts(table.length);
            be.write(tables, table, table.length);
            int len = 0;
            for (int step = 0; step < 4; step++) {
                int T = step == 0 ? 5 : 1;
                int[] pos = new int[T], seq = new int[T], slots = new int[T];
                for (int t = 0; t < T; t++) {
                    pos[t] = len++;
                    slots[t] = table[pos[t] / bs] * bs + pos[t] % bs;
                }
                AttentionBatch meta = new AttentionBatch(T, uploadInts(be, slots), uploadInts(be, pos), uploadInts(be, seq),
                        tables, maxBlocks, 0, heads);
                float[] x = CudaTestSupport.gaussian(r, T * dim, 3.0);
                Buf[] f = bufs(be, T, dim, qDim, kvDim), p = bufs(be, T, dim, qDim, kvDim);
                Buf xb = upload(be, x);
                long before = be.launchStats()[3];
                be.rmsNormQkvAttention(xb, np, 1e-5f, dim, f[0], wq, wk, wv, f[1], f[2], f[3], fused, 0, meta, kvHeads, d,
                        theta, f[4]);
                long fusedLaunches = be.launchStats()[3] - before;
                before = be.launchStats()[3];
                be.rmsNormLinear(xb, np, 1e-5f, T, dim, p[0], wq, p[1]);
                be.linear2(wk, wv, p[0], T, p[2], p[3]);
                be.ropeAttention(plain, 0, p[1], p[2], p[3], meta, kvHeads, d, theta, p[4]);
                long plainLaunches = be.launchStats()[3] - before;
                // decode: q, k and v folded in the RoPE pass (two launches fewer), and q's runs, k and v in one prep
                // and one product (two more)
                if (T == 1) assertEquals(plainLaunches - 4, fusedLaunches, "decode: q, k and v in one product, folded in the RoPE pass");
                int[] sizes = {T * dim, T * qDim, T * kvDim, T * kvDim, T * qDim};
                String[] names = {"xn", "q", "k", "v", "attention output"};
                for (int i = 0; i < 5; i++) {
                    float[] a = CudaSmallOpsTest.run(be, f[i], sizes[i]);
                    assertTrue(CudaTestSupport.allFinite(a), "step " + step + ": non-finite " + names[i]);
                    assertArrayEquals(CudaSmallOpsTest.run(be, p[i], sizes[i]), a, bits + "-bit step " + step + ": " + names[i]);
                }
                for (Buf b : f) be.free(b);
                for (Buf b : p) be.free(b);
                for (Buf b : new Buf[]{xb, meta.slots(), meta.positions(), meta.tokenSeq()}) be.free(b);
            }
            be.free(tables);
        }
    }

    /** xn, q, k, v, out of one attention block over T tokens. */
    private static Buf[] bufs(CudaBackend be, int T, int dim, int qDim, int kvDim) {
        return new Buf[]{be.allocFloats((long) T * dim), be.allocFloats((long) T * qDim), be.allocFloats((long) T * kvDim),
                be.allocFloats((long) T * kvDim), be.allocFloats((long) T * qDim)};
    }
}
