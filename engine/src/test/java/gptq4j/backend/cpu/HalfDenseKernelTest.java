package gptq4j.backend.cpu;

import gptq4j.loader.HalfMatrix;
import gptq4j.util.Half;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static gptq4j.backend.cpu.KernelTestSupport.assertClose;
import static gptq4j.backend.cpu.KernelTestSupport.gaussian;
import static gptq4j.backend.cpu.KernelTestSupport.reference;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * fp16-kept dense kernels ({@link HalfDense}) against a float64 product of the fp16 values, fresh random data each
 * run, including subnormal and negative halves and rows whose width leaves a scalar tail; plus batch invariance and
 * the exactness of the in-kernel fp16 conversion.
 */
class HalfDenseKernelTest {
    static Parallel parallel;

    @BeforeAll
    static void start() { parallel = new Parallel(2); }

    @AfterAll
    static void stop() { parallel.close(); }

    /** Gaussian halves with a sprinkling of subnormals, signed zeros and large values. */
    static HalfMatrix randomHalf(Random rnd, int rows, int cols) {
        ByteBuffer b = ByteBuffer.allocate(rows * cols * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) {
            int kind = rnd.nextInt(50);
            short h = switch (kind) {
                case 0 -> (short) (rnd.nextInt(0x400) | (rnd.nextBoolean() ? 0x8000 : 0));          // subnormal
                case 1 -> (short) (rnd.nextBoolean() ? 0x8000 : 0);                                    // ±0
                case 2 -> Half.fromFloat((float) (rnd.nextGaussian() * 1000));                        // large
                default -> Half.fromFloat((float) (rnd.nextGaussian() * 0.05));
            };
            b.putShort(h);
        }
        return new HalfMatrix("random.half", rows, cols, b.flip(), "F16");
    }

    @ParameterizedTest(name = "{0}x{1}")
    @CsvSource({"8,128", "64,96", "96,384", "100,1000", "33,4096", "7,5", "130,2048"})
    void matchesFloat64Reference(int rows, int cols) {
        KernelTestSupport.requireVector();
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        HalfMatrix half = randomHalf(rnd, rows, cols);
        HalfDense m = HalfDense.ofF16(half, Kernels.preferredLanes());
        float[][] w = new float[rows][cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) {
            w[r][c] = half.get(r, c);
            assertEquals(Float.floatToRawIntBits(w[r][c]), Float.floatToRawIntBits(m.get(r, c)), "seed=" + seed + " layout (" + r + "," + c + ")");
        }
        List<HalfDenseKernel> kernels = new ArrayList<>();
        kernels.add(Kernels.scalarHalfDense(parallel));
        if (Kernels.vectorAvailable()) kernels.add(Kernels.vectorHalfDense(parallel));
        for (int T : new int[] {1, 3, 4, 9, 16}) {
            int xOff = rnd.nextInt(4), outOff = rnd.nextInt(4);
            float[] x = gaussian(rnd, xOff + T * cols);
            double[] ref = reference(w, x, xOff, T);
            for (HalfDenseKernel k : kernels) {
                float[] y = new float[outOff + T * rows];
                k.matmul(m, x, xOff, T, y, outOff);
                assertClose(k.name() + " half dense " + rows + "x" + cols + " T=" + T + " seed=" + seed, ref, y, outOff, T, rows, 1e-5);
            }
        }
    }

    /** Every finite half converts exactly: a 1-column product with x = 1 returns the half's value bit for bit. */
    @Test
    void conversionIsExactForEveryFiniteHalf() {
        KernelTestSupport.requireVector();
        if (!Kernels.vectorAvailable()) return;
        int L = Kernels.preferredLanes();
        int cols = 4 * L;                                      // one vector step, no tail
        List<Short> finite = new ArrayList<>();
        for (int h = 0; h < 65536; h++) if ((h & 0x7c00) != 0x7c00) finite.add((short) h);
        int rows = (finite.size() + cols - 1) / cols;
        ByteBuffer b = ByteBuffer.allocate(rows * cols * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) b.putShort(i < finite.size() ? finite.get(i) : 0);
        HalfDense m = HalfDense.ofF16(new HalfMatrix("all.halves", rows, cols, b.flip(), "F16"), L);
        HalfDenseKernel k = Kernels.vectorHalfDense(parallel);
        for (int c = 0; c < cols; c++) {                       // x = e_c picks column c of every row
            float[] x = new float[cols];
            x[c] = 1f;
            float[] y = new float[rows];
            k.matmul(m, x, 0, 1, y, 0);
            for (int r = 0; r < rows; r++) {
                int i = r * cols + c;
                if (i >= finite.size()) continue;
                float want = Half.toFloat(finite.get(i)) + 0f;  // the sum starts from +0: -0 becomes +0
                assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(y[r] + 0f),
                        "half 0x" + Integer.toHexString(finite.get(i) & 0xffff));
            }
        }
    }

    /** A token's logits are bit-identical alone, in a batch of 9 (tiles of 4 plus a remainder) and on 1 or 3 threads. */
    @Test
    void batchInvariant() {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int rows = 77, cols = 1000, T = 9;
        HalfDense m = HalfDense.ofF16(randomHalf(rnd, rows, cols), Kernels.preferredLanes());
        float[] x = gaussian(rnd, T * cols);
        for (boolean vector : new boolean[] {false, true}) {
            if (vector && !Kernels.vectorAvailable()) continue;
            float[] batch = new float[T * rows];
            try (Parallel p2 = new Parallel(2)) {
                (vector ? Kernels.vectorHalfDense(p2) : Kernels.scalarHalfDense(p2)).matmul(m, x, 0, T, batch, 0);
            }
            try (Parallel p1 = Parallel.serial(); Parallel p3 = new Parallel(3)) {
                for (int t = 0; t < T; t++) {
                    float[] a = new float[rows], b3 = new float[rows];
                    (vector ? Kernels.vectorHalfDense(p1) : Kernels.scalarHalfDense(p1)).matmul(m, x, t * cols, 1, a, 0);
                    (vector ? Kernels.vectorHalfDense(p3) : Kernels.scalarHalfDense(p3)).matmul(m, x, t * cols, 1, b3, 0);
                    float[] want = Arrays.copyOfRange(batch, t * rows, (t + 1) * rows);
                    assertArrayEquals(want, a, (vector ? "vector" : "scalar") + " seed=" + seed + " token " + t + " alone");
                    assertArrayEquals(want, b3, (vector ? "vector" : "scalar") + " seed=" + seed + " token " + t + " 3 threads");
                }
            }
        }
    }

    @Test
    void nonFiniteOrNonF16StaysFloat32() {
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((short) 0x3c00).putShort((short) 0x7c00).putShort((short) 0).putShort((short) 0);
        assertNull(HalfDense.ofF16(new HalfMatrix("inf", 2, 2, b.flip(), "F16"), Kernels.preferredLanes()));
        ByteBuffer bf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        assertNull(HalfDense.ofF16(new HalfMatrix("bf16", 2, 2, bf, "BF16"), Kernels.preferredLanes()));
    }
}
