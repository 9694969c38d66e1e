package gptq4j.backend.cuda;

import gptq4j.backend.Buf;
import gptq4j.loader.HalfMatrix;
import gptq4j.util.Half;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** fp16 dense products, embedding, RMSNorm, RoPE, gather and add against float64 references. */
class CudaSmallOpsTest {

    static HalfMatrix randomHalf(Random r, String name, int rows, int cols, double scale) {
        ByteBuffer b = ByteBuffer.allocateDirect(2 * rows * cols).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) b.putShort(i * 2, Half.fromFloat((float) (r.nextGaussian() * scale)));
        return new HalfMatrix(name, rows, cols, b, "F16");
    }

    static float[] run(CudaBackend be, Buf b, int n) {
        float[] out = new float[n];
        be.read(b, 0, out, n);
        return out;
    }

    static Buf upload(CudaBackend be, float[] a) {
        Buf b = be.allocFloats(a.length);
        be.write(b, a, a.length);
        return b;
    }

    static Buf uploadInts(CudaBackend be, int[] a) {
        Buf b = be.allocInts(a.length);
        be.write(b, a, a.length);
        return b;
    }

    @ParameterizedTest(name = "T={0}")
    @ValueSource(ints = {1, 5, 8, 19})
    void denseMatchesReference(int T) {
        denseCase(T, 1000, 160);
    }

    /** Few rows (the router's 8 x 4096): the block-per-row kernel, vector and scalar column paths. */
    @ParameterizedTest(name = "T={0} rows={1} cols={2}")
    @org.junit.jupiter.params.provider.CsvSource({"1,8,4096", "19,8,4096", "3,5,100", "9,300,2056"})
    void denseFewRowsMatchesReference(int T, int rows, int cols) {
        denseCase(T, rows, cols);
    }

    /**
     * Many rows: cols % 64 == 0 takes the tensor-core path (fp16 weights in place: 32- and 64-token tiles, split and
     * loop mode), else four outputs per warp at T > 8 (dense_fp16_o4); each bitwise equal to the row alone.
     */
    @ParameterizedTest(name = "T={0} rows={1} cols={2}")
    @org.junit.jupiter.params.provider.CsvSource({"19,1000,4096", "70,600,512", "3,520,256", "300,1030,2048",
            "40,2050,1032", "9,513,8"})
    void denseWideMatchesReference(int T, int rows, int cols) {
        denseCase(T, rows, cols);
    }

    private void denseCase(int T, int rows, int cols) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        HalfMatrix m = randomHalf(r, "dense", rows, cols, 0.05);
        Object d = be.prepareDense(m);
        float[] x = CudaTestSupport.gaussian(r, T * cols, 1.0);
        Buf xb = upload(be, x), yb = be.allocFloats((long) T * rows);
        be.dense(d, xb, T, yb);
        float[] y = run(be, yb, T * rows);
        double[] ref = new double[T * rows];
        for (int t = 0; t < T; t++) {
            for (int n = 0; n < rows; n++) {
                double s = 0;
                for (int c = 0; c < cols; c++) s += x[t * cols + c] * (double) m.get(n, c);
                ref[t * rows + n] = s;
            }
        }
        double err = CudaTestSupport.relErr(y, ref);
        CudaTestSupport.report("err_dense", err);
        assertTrue(err < 1e-5, "dense T=" + T + " rows=" + rows + " cols=" + cols + " rel err " + err);
        // batch invariance
        Buf x1 = upload(be, Arrays.copyOfRange(x, (T - 1) * cols, T * cols)), y1 = be.allocFloats(rows);
        be.dense(d, x1, 1, y1);
        assertArrayEquals(run(be, y1, rows), Arrays.copyOfRange(y, (T - 1) * rows, T * rows), "last row alone differs");
        for (Buf b : new Buf[]{xb, yb, x1, y1}) be.free(b);
    }

    @Test
    void embedGathersHalfRows() {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int vocab = 300, dim = 96, T = 7;
        HalfMatrix m = randomHalf(r, "embed", vocab, dim, 1.0);
        Object table = be.prepareDense(m);
        int[] tokens = r.ints(T, 0, vocab).toArray();
        Buf tb = be.allocInts(T), ob = be.allocFloats((long) T * dim);
        be.write(tb, tokens, T);
        be.embed(table, tb, T, ob);
        float[] out = run(be, ob, T * dim);
        for (int t = 0; t < T; t++) {
            for (int c = 0; c < dim; c++) assertEquals(m.get(tokens[t], c), out[t * dim + c], "token " + t + " col " + c);
        }
        be.free(tb);
        be.free(ob);
    }

    @ParameterizedTest(name = "dim={0}")
    @ValueSource(ints = {128, 4096, 100})
    void rmsNormMatchesReference(int dim) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int T = 6;
        HalfMatrix w = randomHalf(r, "norm", 1, dim, 1.0);
        Object wp = be.prepareDense(w);
        float[] x = CudaTestSupport.gaussian(r, T * dim, 3.0);
        Buf xb = upload(be, x), ob = be.allocFloats((long) T * dim);
        be.rmsNorm(xb, wp, 1e-5f, T, dim, ob);
        double[] ref = new double[T * dim];
        for (int t = 0; t < T; t++) {
            double ss = 0;
            for (int c = 0; c < dim; c++) ss += (double) x[t * dim + c] * x[t * dim + c];
            double inv = 1 / Math.sqrt(ss / dim + 1e-5);
            for (int c = 0; c < dim; c++) ref[t * dim + c] = x[t * dim + c] * inv * w.get(0, c);
        }
        double err = CudaTestSupport.relErr(run(be, ob, T * dim), ref);
        CudaTestSupport.report("err_rmsnorm", err);
        assertTrue(err < 1e-5, "rmsnorm rel err " + err);
        be.rmsNorm(xb, wp, 1e-5f, T, dim, xb);   // in place
        double err2 = CudaTestSupport.relErr(run(be, xb, T * dim), ref);
        assertTrue(err2 < 1e-5, "in-place rmsnorm rel err " + err2);
        be.free(xb);
        be.free(ob);
    }

    @ParameterizedTest(name = "headDim={0}")
    @ValueSource(ints = {32, 128})
    void ropeRotatesHalves(int d) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int T = 9, heads = 4, kvHeads = 2;
        double theta = 1e6;
        float[] q = CudaTestSupport.gaussian(r, T * heads * d, 1.0), k = CudaTestSupport.gaussian(r, T * kvHeads * d, 1.0);
        int[] pos = new int[T];
        for (int t = 0; t < T; t++) pos[t] = t == T - 1 ? 30000 : r.nextInt(700);
        Buf qb = upload(be, q), kb = upload(be, k), pb = be.allocInts(T);
        be.write(pb, pos, T);
        be.rope(qb, kb, pb, T, heads, kvHeads, d, theta);
        double[] rq = rope(q, pos, heads, d, theta), rk = rope(k, pos, kvHeads, d, theta);
        double eq = CudaTestSupport.relErr(run(be, qb, q.length), rq), ek = CudaTestSupport.relErr(run(be, kb, k.length), rk);
        CudaTestSupport.report("err_rope", Math.max(eq, ek));
        assertTrue(eq < 1e-5 && ek < 1e-5, "rope rel err q " + eq + " k " + ek);
        be.free(qb);
        be.free(kb);
        be.free(pb);
    }

    static double[] rope(float[] x, int[] pos, int heads, int d, double theta) {
        double[] out = new double[x.length];
        int half = d / 2;
        for (int t = 0; t < pos.length; t++) {
            for (int h = 0; h < heads; h++) {
                int base = (t * heads + h) * d;
                for (int i = 0; i < half; i++) {
                    double ang = pos[t] * Math.pow(theta, -2.0 * i / d);
                    double c = Math.cos(ang), s = Math.sin(ang), a = x[base + i], b = x[base + i + half];
                    out[base + i] = a * c - b * s;
                    out[base + i + half] = b * c + a * s;
                }
            }
        }
        return out;
    }

    @Test
    void gatherAndAdd() {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int rows = 11, dim = 300;
        float[] x = CudaTestSupport.gaussian(r, rows * dim, 1.0), y = CudaTestSupport.gaussian(r, rows * dim, 1.0);
        Buf xb = upload(be, x), yb = upload(be, y);
        be.add(xb, yb, (long) rows * dim);
        float[] sum = run(be, xb, rows * dim);
        for (int i = 0; i < sum.length; i++) assertEquals(x[i] + y[i], sum[i], "add at " + i);
        int[] pick = {10, 0, 3, 3};
        Buf ib = be.allocInts(pick.length), ob = be.allocFloats((long) pick.length * dim);
        be.write(ib, pick, pick.length);
        be.gatherRows(xb, ib, pick.length, dim, ob);
        float[] g = run(be, ob, pick.length * dim);
        for (int rr = 0; rr < pick.length; rr++) {
            assertArrayEquals(Arrays.copyOfRange(sum, pick[rr] * dim, pick[rr] * dim + dim),
                    Arrays.copyOfRange(g, rr * dim, rr * dim + dim), "gathered row " + rr);
        }
        for (Buf b : new Buf[]{xb, yb, ib, ob}) be.free(b);
    }
}
