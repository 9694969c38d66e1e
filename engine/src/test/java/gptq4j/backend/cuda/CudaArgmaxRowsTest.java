package gptq4j.backend.cuda;

import gptq4j.backend.ArgmaxRows;
import gptq4j.backend.Buf;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * argmax_rows (CudaBackend.argmaxRows) gives the sampler's greedy choice on every kind of row (ArgmaxRows), at
 * widths that take its float4 path (dim % 4 == 0) and its scalar path, up to a batch of 256 vocabulary rows.
 */
class CudaArgmaxRowsTest {

    @Test
    void matchesTheSamplersGreedyChoice() {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int[][] shapes = {{1, 32000}, {256, 32000}, {9, 1}, {9, 3}, {17, 4 * (1 + r.nextInt(3000))},
                          {17, 4 * r.nextInt(3000) + 1 + r.nextInt(3)}, {40, 32000 + 1 + r.nextInt(3)}};
        for (int[] sh : shapes) {
            int R = sh[0], dim = sh[1];
            float[] x = ArgmaxRows.draw(r, R, dim);
            Buf xb = be.allocFloats((long) R * dim), ob = be.allocInts(R);
            try {
                be.write(xb, x, R * dim);
                be.argmaxRows(xb, R, dim, ob);
                int[] got = new int[R];
                be.readInts(ob, 0, got, R);
                assertArrayEquals(ArgmaxRows.expected(x, R, dim), got, R + " rows of " + dim);
            } finally {
                be.free(xb);
                be.free(ob);
            }
        }
    }
}
