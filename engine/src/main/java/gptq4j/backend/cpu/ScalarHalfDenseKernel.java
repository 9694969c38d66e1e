package gptq4j.backend.cpu;

import gptq4j.util.Half;

/** Plain-Java reference for {@link HalfDense}: per (token, row) a left-to-right float sum over the columns. */
public final class ScalarHalfDenseKernel implements HalfDenseKernel {
    private final Parallel parallel;

    public ScalarHalfDenseKernel(Parallel parallel) { this.parallel = parallel; }

    @Override public String name() { return "cpu-scalar"; }

    @Override
    public void matmul(HalfDense m, float[] x, int xOff, int T, float[] out, int outOff) {
        m.checkArgs(x, xOff, T, out, outOff);
        final int C = m.cols, R = m.rows;
        parallel.parallelFor(R, rowGrain(m), (from, to) -> {
            float[] row = new float[C];
            for (int r = from; r < to; r++) {
                for (int c = 0; c < C; c++) row[c] = Half.toFloat(m.bits(r, c));
                for (int t = 0; t < T; t++) {
                    int xo = xOff + t * C;
                    float s = 0f;
                    for (int c = 0; c < C; c++) s += row[c] * x[xo + c];
                    out[outOff + t * R + r] = s;
                }
            }
        });
    }

    static int rowGrain(HalfDense m) {
        return Math.max(1, Math.min(m.rows, (1 << 15) / Math.max(1, m.cols)));
    }
}
