package gptq4j.backend.cpu;

/** Plain-Java dense product: per (token, row) a left-to-right float sum over the columns. */
public final class ScalarDenseKernel implements DenseKernel {
    private final Parallel parallel;

    public ScalarDenseKernel(Parallel parallel) { this.parallel = parallel; }

    @Override public String name() { return "cpu-scalar"; }

    @Override
    public void matmul(DenseMatrix m, float[] x, int xOff, int T, float[] out, int outOff) {
        m.checkArgs(x, xOff, T, out, outOff);
        final int C = m.cols, R = m.rows;
        final float[] a = m.data;
        parallel.parallelFor(R, rowGrain(m), (from, to) -> {
            for (int r = from; r < to; r++) {
                int ro = r * C;
                for (int t = 0; t < T; t++) {
                    int xo = xOff + t * C;
                    float s = 0f;
                    for (int c = 0; c < C; c++) s += a[ro + c] * x[xo + c];
                    out[outOff + t * R + r] = s;
                }
            }
        });
    }

    static int rowGrain(DenseMatrix m) {
        return Math.max(1, Math.min(m.rows, (1 << 14) / Math.max(1, m.cols)));
    }
}
