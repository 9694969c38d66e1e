package gptq4j.backend.cuda;

import gptq4j.backend.Buf;
import gptq4j.quant.gptq.GptqLinear;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GPTQ GEMV/GEMM on the GPU against the float64 scalar definition, every bits × group × act order × sym. */
class CudaGptqLinearTest {

    static Stream<Arguments> formats() {
        List<Arguments> a = new ArrayList<>();
        for (int bits : new int[]{2, 3, 4, 8}) {
            for (int group : new int[]{-1, 32, 128}) {
                for (boolean act : new boolean[]{false, true}) {
                    for (boolean sym : new boolean[]{true, false}) a.add(Arguments.of(bits, group, act, sym));
                }
            }
        }
        return a.stream();
    }

    @ParameterizedTest(name = "{0}-bit group {1} actOrder {2} sym {3}")
    @MethodSource("formats")
    void matchesScalarDefinitionForEveryBatchShape(int bits, int group, boolean act, boolean sym) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int in = 384, out = 96;
        GptqLinear w = CudaTestSupport.randomGptq(r, "test.b" + bits + ".g" + group, in, out, bits, group, act, sym);
        double[][] ref = CudaTestSupport.dequant(w);
        Object prepared = be.prepareLinear(w);
        float[] single = null;
        for (int T : new int[]{1, 3, 8, 37}) {
            float[] x = CudaTestSupport.gaussian(r, T * in, 1.0);
            Buf xb = be.allocFloats((long) T * in), yb = be.allocFloats((long) T * out);
            be.write(xb, x, x.length);
            float[] poison = new float[T * out];
            Arrays.fill(poison, Float.NaN);
            be.write(yb, poison, poison.length);
            be.linear(prepared, xb, T, yb);
            float[] y = new float[T * out];
            be.read(yb, 0, y, y.length);
            double err = CudaTestSupport.relErr(y, CudaTestSupport.matmul(x, T, ref));
            CudaTestSupport.report("err_gptq_linear", err);
            assertTrue(CudaTestSupport.allFinite(y), "unwritten or non-finite output, T=" + T);
            assertTrue(err < 1e-5, bits + "-bit g" + group + " act " + act + " sym " + sym + " T=" + T + ": rel err " + err);
            // batch invariance: row 0 of a T-row product equals the 1-row product of the same input
            if (T == 1) {
                single = y;
                be.free(xb);
                be.free(yb);
                continue;
            }
            float[] row0 = Arrays.copyOf(x, in);
            Buf x1 = be.allocFloats(in), y1 = be.allocFloats(out);
            be.write(x1, row0, in);
            be.linear(prepared, x1, 1, y1);
            float[] alone = new float[out];
            be.read(y1, 0, alone, out);
            assertArrayEquals(alone, Arrays.copyOf(y, out), "row 0 differs between T=1 and T=" + T);
            be.free(x1);
            be.free(y1);
            be.free(xb);
            be.free(yb);
        }
        assertTrue(single != null);
    }

    /** linear2 (two products of one input in one launch set) has the bits of two linear calls, at every batch shape. */
    @ParameterizedTest(name = "{0}-bit shared permutation {1}")
    @org.junit.jupiter.params.provider.CsvSource({"4,false", "4,true", "8,false", "3,false"})
    void linear2EqualsTwoLinears(int bits, boolean samePerm) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int in = 1024, out = 256;
        GptqLinear wa = CudaTestSupport.randomGptq(r, "pair.a.b" + bits, in, out, bits, 128, !samePerm, false);
        GptqLinear wb = CudaTestSupport.randomGptq(r, "pair.b.b" + bits, in, out, bits, 128, !samePerm, false);
        Object pa = be.prepareLinear(wa), pb = be.prepareLinear(wb);
        for (int T : new int[]{1, 6, 70}) {
            float[] x = CudaTestSupport.gaussian(r, T * in, 1.0);
            Buf xb = be.allocFloats((long) T * in);
            Buf[] o = new Buf[4];
            for (int i = 0; i < 4; i++) o[i] = be.allocFloats((long) T * out);
            be.write(xb, x, x.length);
            be.linear2(pa, pb, xb, T, o[0], o[1]);
            be.linear(pa, xb, T, o[2]);
            be.linear(pb, xb, T, o[3]);
            float[][] y = new float[4][T * out];
            for (int i = 0; i < 4; i++) be.read(o[i], 0, y[i], T * out);
            assertTrue(CudaTestSupport.allFinite(y[0]) && CudaTestSupport.allFinite(y[1]), "non-finite output, T=" + T);
            assertArrayEquals(y[2], y[0], "first product, T=" + T);
            assertArrayEquals(y[3], y[1], "second product, T=" + T);
            double err = CudaTestSupport.relErr(y[1], CudaTestSupport.matmul(x, T, CudaTestSupport.dequant(wb)));
            assertTrue(err < 1e-5, "second product, T=" + T + ": rel err " + err);
            be.free(xb);
            for (Buf b : o) be.free(b);
        }
    }

    /** linearAdd (the residual add in the fold) has the bits of linear followed by add, at every batch shape. */
    @ParameterizedTest(name = "{0}-bit")
    @org.junit.jupiter.params.provider.ValueSource(ints = {3, 4, 8})
    void linearAddEqualsLinearThenAdd(int bits) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int in = 512, out = 256;
        Object prepared = be.prepareLinear(CudaTestSupport.randomGptq(r, "add.b" + bits, in, out, bits, 128, true, false));
        for (int T : new int[]{1, 5, 70}) {
            float[] x = CudaTestSupport.gaussian(r, T * in, 1.0), res = CudaTestSupport.gaussian(r, T * out, 3.0);
            Buf xb = be.allocFloats((long) T * in), tmp = be.allocFloats((long) T * out);
            Buf fused = be.allocFloats((long) T * out), plain = be.allocFloats((long) T * out);
            be.write(xb, x, x.length);
            be.write(fused, res, res.length);
            be.write(plain, res, res.length);
            be.linearAdd(prepared, xb, T, out, tmp, fused);
            be.linear(prepared, xb, T, tmp);
            be.add(plain, tmp, (long) T * out);
            float[] a = new float[T * out], b = new float[T * out];
            be.read(fused, 0, a, a.length);
            be.read(plain, 0, b, b.length);
            assertTrue(CudaTestSupport.allFinite(a), "non-finite output, T=" + T);
            assertArrayEquals(b, a, bits + "-bit T=" + T + ": linearAdd differs from linear + add");
            for (Buf bb : new Buf[]{xb, tmp, fused, plain}) be.free(bb);
        }
    }

    @ParameterizedTest(name = "{0}-bit {1}x{2}")
    @MethodSource("largeShapes")
    void largeShapes(int bits, int in, int out, int T) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        GptqLinear w = CudaTestSupport.randomGptq(r, "large", in, out, bits, 128, true, true);
        Object prepared = be.prepareLinear(w);
        float[] x = CudaTestSupport.gaussian(r, T * in, 1.0);
        Buf xb = be.allocFloats((long) T * in), yb = be.allocFloats((long) T * out);
        be.write(xb, x, x.length);
        be.linear(prepared, xb, T, yb);
        float[] y = new float[T * out];
        be.read(yb, 0, y, y.length);
        // reference on a sample of outputs (the full product in double is slow in a test)
        int[] cols = r.ints(64, 0, out).toArray();
        double num = 0, den = 0;
        for (int t = 0; t < T; t++) {
            for (int o : cols) {
                double s = 0;
                for (int i = 0; i < in; i++) s += x[t * in + i] * (double) w.weight(o, i);
                num += (y[t * out + o] - s) * (y[t * out + o] - s);
                den += s * s;
            }
        }
        double err = Math.sqrt(num / den);
        CudaTestSupport.report("err_gptq_linear", err);
        assertTrue(err < 1e-5, bits + "-bit " + in + "x" + out + " T=" + T + ": rel err " + err);
        be.free(xb);
        be.free(yb);
    }

    static Stream<Arguments> largeShapes() {
        return Stream.of(Arguments.of(4, 4096, 1024, 1), Arguments.of(4, 4096, 512, 70),
                Arguments.of(3, 4096, 512, 5), Arguments.of(8, 1024, 4096, 2), Arguments.of(2, 2048, 256, 17));
    }

    /**
     * Shapes the tensor-core layout pads (inputs to a multiple of 64, outputs to 16): the padded inputs and outputs
     * must contribute nothing and be written nowhere, for every batch shape, and row 0 must not depend on T.
     */
    @ParameterizedTest(name = "{0}-bit {1}x{2} group {3}")
    @MethodSource("paddedShapes")
    void paddedShapes(int bits, int in, int out, int group) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        GptqLinear w = CudaTestSupport.randomGptq(r, "padded.b" + bits, in, out, bits, group, true, false);
        double[][] ref = CudaTestSupport.dequant(w);
        Object prepared = be.prepareLinear(w);
        float[] first = null;
        for (int T : new int[]{1, 9, 40, 70}) {   // 40, 70: gq_mma_prep_rows (CudaBackend.PREP_ROWS_FROM)
            float[] x = CudaTestSupport.gaussian(r, T * in, 1.0);
            System.arraycopy(first == null ? x : first, 0, x, 0, in);     // the same row 0 every time
            if (first == null) first = Arrays.copyOf(x, in);
            Buf xb = be.allocFloats((long) T * in), yb = be.allocFloats((long) T * out + 64);
            be.write(xb, x, x.length);
            float[] poison = new float[T * out + 64];
            Arrays.fill(poison, Float.NaN);
            be.write(yb, poison, poison.length);
            be.linear(prepared, xb, T, yb);
            float[] y = new float[T * out + 64];
            be.read(yb, 0, y, y.length);
            float[] yv = Arrays.copyOf(y, T * out);
            double err = CudaTestSupport.relErr(yv, CudaTestSupport.matmul(x, T, ref));
            CudaTestSupport.report("err_gptq_linear", err);
            assertTrue(CudaTestSupport.allFinite(yv), "unwritten or non-finite output, T=" + T);
            assertTrue(err < 1e-5, bits + "-bit " + in + "x" + out + " T=" + T + ": rel err " + err);
            for (int i = T * out; i < y.length; i++) assertTrue(Float.isNaN(y[i]), "wrote past the output at " + i);
            if (T == 1) {
                single0 = Arrays.copyOf(y, out);
            } else {
                assertArrayEquals(single0, Arrays.copyOf(y, out), "row 0 differs between T=1 and T=" + T);
            }
            be.free(xb);
            be.free(yb);
        }
    }

    private float[] single0;

    static Stream<Arguments> paddedShapes() {
        return Stream.of(Arguments.of(4, 96, 40, 32), Arguments.of(4, 160, 24, -1), Arguments.of(8, 224, 36, 32),
                Arguments.of(3, 96, 32, 32), Arguments.of(2, 288, 48, 96));
    }
}
