package gptq4j.backend.cpu;

import gptq4j.backend.ArgmaxRows;
import gptq4j.backend.Buf;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** CpuBackend.argmaxRows gives the sampler's greedy choice on every kind of row (ArgmaxRows). */
class CpuArgmaxRowsTest {

    @Test
    void matchesTheSamplersGreedyChoice() {
        Random r = new Random();
        try (CpuBackend be = new CpuBackend(1, false)) {
            for (int dim : new int[] {1, 3, 8, 1 + r.nextInt(5000), 32000}) {
                int R = 16 + r.nextInt(9);
                float[] x = ArgmaxRows.draw(r, R, dim);
                Buf xb = be.allocFloats((long) R * dim), ob = be.allocInts(R);
                be.write(xb, x, R * dim);
                be.argmaxRows(xb, R, dim, ob);
                int[] got = new int[R];
                be.readInts(ob, 0, got, R);
                assertArrayEquals(ArgmaxRows.expected(x, R, dim), got, "rows of " + dim);
            }
        }
    }
}
