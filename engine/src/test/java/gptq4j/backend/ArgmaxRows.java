package gptq4j.backend;

import gptq4j.runtime.Sampler;
import gptq4j.runtime.SamplingParams;

import java.util.Random;

/**
 * Rows for {@link Backend#argmaxRows} tests, drawn fresh each run, and their expected results from the sampler's
 * own greedy choice (the semantics the backends promise): Gaussian rows, rows whose maximum repeats (ties to the
 * lowest index, index 0 among them at times), rows whose maximum is a mix of -0 and +0, rows of -infinity, and
 * rows holding NaN or +infinity (-1, as the sampler refuses them).
 */
public final class ArgmaxRows {
    private ArgmaxRows() { }

    /** R rows of width dim, row-major. */
    public static float[] draw(Random r, int R, int dim) {
        float[] x = new float[R * dim];
        for (int row = 0; row < R; row++) {
            int b = row * dim;
            for (int i = 0; i < dim; i++) x[b + i] = (float) (3 * r.nextGaussian());
            switch (row % 8) {
                case 1 -> {                                          // the maximum at several indices
                    float m = 20 + r.nextInt(4);
                    int k = 2 + r.nextInt(4);
                    for (int j = 0; j < k; j++) x[b + r.nextInt(dim)] = m;
                    if (r.nextBoolean()) x[b] = m;
                }
                case 2 -> {                                          // -0 and +0 are the largest, in any order
                    for (int i = 0; i < dim; i++) x[b + i] = -Math.abs(x[b + i]) - 1;
                    for (int j = 0; j < 3; j++) x[b + r.nextInt(dim)] = r.nextBoolean() ? -0.0f : 0.0f;
                }
                case 3 -> {                                          // -infinity everywhere, or all but a few
                    for (int i = 0; i < dim; i++) x[b + i] = Float.NEGATIVE_INFINITY;
                    if (r.nextBoolean()) x[b + r.nextInt(dim)] = -1e30f;
                }
                case 4 -> x[b + r.nextInt(dim)] = Float.NaN;
                case 5 -> x[b + r.nextInt(dim)] = Float.POSITIVE_INFINITY;
                case 6 -> x[b + dim - 1] = 1e30f;                    // the last index
                default -> { }
            }
        }
        return x;
    }

    /** The sampler's greedy choice of each row, or -1 where it refuses the row. */
    public static int[] expected(float[] x, int R, int dim) {
        Sampler s = new Sampler();
        int[] want = new int[R];
        for (int row = 0; row < R; row++) {
            try {
                want[row] = s.sample(x, row * dim, dim, SamplingParams.greedy(1), null, null, 0, 0);
            } catch (IllegalArgumentException e) {
                want[row] = -1;
            }
        }
        return want;
    }
}
