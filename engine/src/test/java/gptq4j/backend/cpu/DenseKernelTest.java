package gptq4j.backend.cpu;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static gptq4j.backend.cpu.KernelTestSupport.assertClose;
import static gptq4j.backend.cpu.KernelTestSupport.gaussian;
import static gptq4j.backend.cpu.KernelTestSupport.reference;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Dense fp16-at-load kernels against a float64 product of the HalfMatrix values. */
class DenseKernelTest {
    static Parallel parallel;

    @BeforeAll
    static void start() { parallel = new Parallel(2); }

    @AfterAll
    static void stop() { parallel.close(); }

    @ParameterizedTest(name = "{0}x{1}")
    @CsvSource({"8,128", "64,96", "96,384", "100,1000", "33,4096", "7,5"})
    void matchesFloat64Reference(int rows, int cols) {
        KernelTestSupport.requireVector();
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        var half = BatchInvarianceTest.randomHalf(rnd, rows, cols);
        DenseMatrix m = DenseMatrix.of(half);
        float[][] w = new float[rows][cols];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) w[r][c] = half.get(r, c);
        List<DenseKernel> kernels = new ArrayList<>();
        kernels.add(Kernels.scalarDense(parallel));
        if (Kernels.vectorAvailable()) kernels.add(Kernels.vectorDense(parallel));
        for (int T : new int[] {1, 3, 16}) {
            int xOff = rnd.nextInt(4), outOff = rnd.nextInt(4);
            float[] x = gaussian(rnd, xOff + T * cols);
            double[] ref = reference(w, x, xOff, T);
            for (DenseKernel k : kernels) {
                float[] y = new float[outOff + T * rows];
                k.matmul(m, x, xOff, T, y, outOff);
                assertClose(k.name() + " dense " + rows + "x" + cols + " T=" + T + " seed=" + seed, ref, y, outOff, T, rows, 1e-5);
            }
        }
    }

    @Test
    void rowCopiesEmbedding() {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        var half = BatchInvarianceTest.randomHalf(rnd, 10, 48);
        DenseMatrix m = DenseMatrix.of(half);
        float[] dst = new float[50];
        int r = rnd.nextInt(10);
        m.row(r, dst, 2);
        for (int c = 0; c < 48; c++) assertEquals(half.get(r, c), dst[2 + c], "seed=" + seed + " row " + r + " col " + c);
    }
}
