package gptq4j.backend.cpu;

import gptq4j.loader.HalfMatrix;
import gptq4j.util.Half;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static gptq4j.backend.cpu.KernelTestSupport.gaussian;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * The result for one (token, row) is bit-identical whether the token is computed alone (T=1), in a batch of 7,
 * at another position among other random tokens, and with 1, 2 or 3 threads.
 */
class BatchInvarianceTest {

    static Stream<Arguments> gptqCases() {
        List<Arguments> a = new ArrayList<>();
        for (String kernel : new String[] {"scalar", "vector"})
            for (int bits : new int[] {2, 3, 4, 8})
                for (int gs : new int[] {-1, 32, 128})
                    for (boolean act : new boolean[] {false, true}) a.add(Arguments.of(kernel, bits, gs, act));
        return a.stream();
    }

    interface Op {
        void run(Parallel p, float[] x, int xOff, int T, float[] out, int outOff);
    }

    @ParameterizedTest(name = "{0} {1}bit g{2} act={3}")
    @MethodSource("gptqCases")
    void gptqBatchInvariant(String kernel, int bits, int gs, boolean act) {
        KernelTestSupport.requireVector();
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        boolean vector = kernel.equals("vector");
        if (vector && !Kernels.vectorAvailable()) return; // requireVector() failed already if the module is present
        // 416 inputs: uneven groups (the general code); 1024: equal groups (the branch-free 4-bit code at g128)
        for (int in : new int[] {416, 1024}) {
            RandomGptq r = RandomGptq.create(rnd, in, 160, bits, gs, act, rnd.nextBoolean());
            PackedGptq p = Kernels.pack(r.layer);
            for (boolean subnormal : vector ? new boolean[] {true, false} : new boolean[] {false}) {
                check(kernel + (vector ? " subnormal=" + subnormal : "") + " " + r.layer.name() + " seed=" + seed, rnd, p.in(), p.out(),
                        (par, x, xOff, T, y, yOff) -> (vector ? Kernels.vectorGptq(par, subnormal) : Kernels.scalarGptq(par))
                                .matmul(p, x, xOff, T, y, yOff));
            }
        }
    }

    /** The two 4-bit decode schemes of the vector kernel differ by powers of two only: the same bits out. */
    @ParameterizedTest(name = "g{0}")
    @ValueSource(ints = {128, 256})
    void subnormalDecodeMatchesConversion(int gs) {
        KernelTestSupport.requireVector();
        if (!Kernels.vectorAvailable()) return;
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        RandomGptq r = RandomGptq.create(rnd, 1024, 160, 4, gs, true, rnd.nextBoolean());
        PackedGptq p = Kernels.pack(r.layer);
        try (Parallel par = new Parallel(2)) {
            for (int T : new int[] {1, 5}) {
                float[] x = gaussian(rnd, T * p.in());
                float[] a = new float[T * p.out()], b = new float[T * p.out()];
                Kernels.vectorGptq(par, true).matmul(p, x, 0, T, a, 0);
                Kernels.vectorGptq(par, false).matmul(p, x, 0, T, b, 0);
                assertArrayEquals(b, a, "subnormal vs conversion decode, g" + gs + " T=" + T + " seed=" + seed);
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}x{2}")
    @MethodSource("denseCases")
    void denseBatchInvariant(String kernel, int rows, int cols) {
        KernelTestSupport.requireVector();
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        DenseMatrix m = DenseMatrix.of(randomHalf(rnd, rows, cols));
        boolean vector = kernel.equals("vector");
        if (vector && !Kernels.vectorAvailable()) return;
        check(kernel + " dense " + rows + "x" + cols + " seed=" + seed, rnd, cols, rows, (par, x, xOff, T, y, yOff) ->
                (vector ? Kernels.vectorDense(par) : Kernels.scalarDense(par)).matmul(m, x, xOff, T, y, yOff));
    }

    static Stream<Arguments> denseCases() {
        List<Arguments> a = new ArrayList<>();
        for (String kernel : new String[] {"scalar", "vector"}) {
            a.add(Arguments.of(kernel, 96, 128));
            a.add(Arguments.of(kernel, 33, 1000));
        }
        return a.stream();
    }

    static HalfMatrix randomHalf(Random rnd, int rows, int cols) {
        ByteBuffer b = ByteBuffer.allocate(rows * cols * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) b.putShort(Half.fromFloat((float) (rnd.nextGaussian() * 0.05)));
        return new HalfMatrix("random.dense", rows, cols, b.flip(), "F16");
    }

    private static void check(String what, Random rnd, int in, int out, Op op) {
        int T = 7;
        float[] x = gaussian(rnd, T * in);
        float[] batch = new float[T * out];
        try (Parallel p2 = new Parallel(2)) {
            op.run(p2, x, 0, T, batch, 0);
        }
        try (Parallel p1 = Parallel.serial(); Parallel p3 = new Parallel(3)) {
            for (int t = 0; t < T; t++) {
                float[] want = Arrays.copyOfRange(batch, t * out, (t + 1) * out);
                float[] alone = new float[out];
                op.run(p1, x, t * in, 1, alone, 0);
                assertArrayEquals(want, alone, what + ": token " + t + " alone (1 thread) differs from the batch of 7");
                float[] alone3 = new float[out];
                op.run(p3, x, t * in, 1, alone3, 0);
                assertArrayEquals(want, alone3, what + ": token " + t + " alone (3 threads) differs from the batch of 7");
                // the same token at position 2 of 5 among other random tokens, in an offset buffer
                float[] other = gaussian(rnd, 3 + 5 * in);
                System.arraycopy(x, t * in, other, 3 + 2 * in, in);
                float[] y5 = new float[1 + 5 * out];
                op.run(p3, other, 3, 5, y5, 1);
                assertArrayEquals(want, Arrays.copyOfRange(y5, 1 + 2 * out, 1 + 3 * out),
                        what + ": token " + t + " among other tokens differs from the batch of 7");
            }
        }
    }
}
