package gptq4j.backend.cpu;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static gptq4j.backend.cpu.KernelTestSupport.assertClose;
import static gptq4j.backend.cpu.KernelTestSupport.gaussian;
import static gptq4j.backend.cpu.KernelTestSupport.reference;

/**
 * Scalar and vector GPTQ kernels against a float64 product of {@code GptqLinear.weight(o, i)}, for every
 * bits x group size x act order x sym, several shapes and T in {1, 3, 16}; fresh random data each run.
 */
class GptqKernelTest {
    /**
     * Relative error allowed at 128 inputs; float32 accumulation error grows like sqrt(inputs), and folding the
     * zero point (s·(Σq·x − z·Σx)) cancels, so the bound scales with sqrt(in / 128). A packing bug gives O(1).
     */
    static final double BOUND = 1e-5;

    static double bound(int in) {
        return BOUND * Math.sqrt(Math.max(1.0, in / 128.0));
    }
    static Parallel parallel;

    @BeforeAll
    static void start() { parallel = new Parallel(2); }

    @AfterAll
    static void stop() { parallel.close(); }

    static Stream<Arguments> cases() {
        int[][] shapes = {{128, 64}, {416, 96}, {1024, 384}, {4096, 64}};
        List<Arguments> a = new ArrayList<>();
        for (int bits : new int[] {2, 3, 4, 8})
            for (int gs : new int[] {-1, 32, 64, 128, 256})
                for (boolean act : new boolean[] {false, true})
                    for (boolean sym : new boolean[] {false, true})
                        for (int[] s : shapes) a.add(Arguments.of(bits, gs, act, sym, s[0], s[1]));
        return a.stream();
    }

    @ParameterizedTest(name = "{0}bit g{1} act={2} sym={3} {4}x{5}")
    @MethodSource("cases")
    void matchesFloat64Reference(int bits, int gs, boolean act, boolean sym, int in, int out) {
        KernelTestSupport.requireVector();
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        RandomGptq r = RandomGptq.create(rnd, in, out, bits, gs, act, sym);
        float[][] w = r.dequantised();
        List<GptqKernel> kernels = new ArrayList<>();
        kernels.add(Kernels.scalarGptq(parallel));
        if (Kernels.vectorAvailable()) {
            kernels.add(Kernels.vectorGptq(parallel, true));    // 4-bit values decoded as subnormal floats
            kernels.add(Kernels.vectorGptq(parallel, false));   // ... by int-to-float conversion
        }
        PackedGptq p = Kernels.pack(r.layer);
        for (int T : new int[] {1, 3, 16}) {
            int xOff = rnd.nextInt(5), outOff = rnd.nextInt(5);
            float[] x = gaussian(rnd, xOff + T * in);
            double[] ref = reference(w, x, xOff, T);
            for (GptqKernel k : kernels) {
                float[] y = new float[outOff + T * out];
                k.matmul(p, x, xOff, T, y, outOff);
                assertClose(k.name() + " " + r.layer.name() + " T=" + T + " seed=" + seed, ref, y, outOff, T, out, bound(in));
            }
        }
    }

    /**
     * Activations at and above 2^39 (where the subnormal 4-bit scheme's prescaled x would overflow) take the
     * conversion scheme: the results stay finite and match float64, and a normal row batched with such a row gives
     * the same bits as alone.
     */
    @ParameterizedTest(name = "4bit g{0}")
    @MethodSource("largeCases")
    void hugeActivationsFallBackToConversion(int gs) {
        KernelTestSupport.requireVector();
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int in = 512, out = 64;
        RandomGptq r = RandomGptq.create(rnd, in, out, 4, gs, true, false);
        float[][] w = r.dequantised();
        PackedGptq p = Kernels.pack(r.layer);
        GptqKernel k = Kernels.vectorGptq(parallel, true);
        float[] x = gaussian(rnd, 2 * in);
        for (int i = 0; i < in; i++) x[i] *= 0x1p40f;                 // row 0 huge, row 1 normal
        float[] y = new float[2 * out];
        k.matmul(p, x, 0, 2, y, 0);
        assertClose("huge row seed=" + seed, reference(w, x, 0, 1), y, 0, 1, out, bound(in));
        float[] alone = new float[out];
        k.matmul(p, java.util.Arrays.copyOfRange(x, in, 2 * in), 0, 1, alone, 0);
        org.junit.jupiter.api.Assertions.assertArrayEquals(alone, java.util.Arrays.copyOfRange(y, out, 2 * out),
                "normal row differs when batched with a huge one, seed=" + seed);
    }

    /**
     * matmulAll (one parallel section for several products, as the MoE runs its experts) against the float64
     * reference and bit for bit against one matmul per product: mixed bit widths, group sizes, T (0 included) and
     * thread counts.
     */
    @ParameterizedTest(name = "threads={0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {1, 2, 3})
    void matmulAllMatchesOneCallPerProduct(int threads) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int[][] layers = {{4, 128, 2048, 512}, {4, 128, 512, 2048}, {4, 64, 1024, 96}, {3, 128, 416, 160}, {8, -1, 256, 32},
                {4, 32, 128, 64}};   // bits, group size, in, out (multiples of 32)
        int n = layers.length;
        PackedGptq[] w = new PackedGptq[n];
        float[][][] dq = new float[n][][];
        float[][] x = new float[n][], all = new float[n][];
        int[] T = new int[n];
        for (int i = 0; i < n; i++) {
            int[] l = layers[i];
            RandomGptq r = RandomGptq.create(rnd, l[2], l[3], l[0], l[1], rnd.nextBoolean(), rnd.nextBoolean());
            w[i] = Kernels.pack(r.layer);
            dq[i] = r.dequantised();
            T[i] = i == 4 ? 0 : new int[] {1, 1, 2, 5}[rnd.nextInt(4)];
            x[i] = gaussian(rnd, T[i] * l[2]);
            all[i] = new float[T[i] * l[3]];
        }
        List<GptqKernel> kernels = new ArrayList<>();
        try (Parallel p = new Parallel(threads)) {
            kernels.add(Kernels.scalarGptq(p));
            if (Kernels.vectorAvailable()) {
                kernels.add(Kernels.vectorGptq(p, true));
                kernels.add(Kernels.vectorGptq(p, false));
            }
            for (GptqKernel k : kernels) {
                for (float[] a : all) java.util.Arrays.fill(a, Float.NaN);
                k.matmulAll(w, x, T, all);
                for (int i = 0; i < n; i++) {
                    float[] one = new float[T[i] * w[i].out()];
                    k.matmul(w[i], x[i], 0, T[i], one, 0);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(one, all[i],
                            k.name() + " product " + i + " differs from its own matmul, seed=" + seed);
                    assertClose(k.name() + " product " + i + " seed=" + seed, reference(dq[i], x[i], 0, T[i]), all[i], 0, T[i],
                            w[i].out(), bound(w[i].in()));
                }
            }
        }
    }

    static Stream<Arguments> largeCases() { return Stream.of(Arguments.of(32), Arguments.of(64), Arguments.of(128)); }
}
