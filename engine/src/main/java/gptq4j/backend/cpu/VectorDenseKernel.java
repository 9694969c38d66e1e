package gptq4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API dense product. Per (token, row): lane-wise FMA over the columns in steps of L, the lanes added
 * left to right, then the remaining columns (cols mod L) added left to right. Tokens go in tiles of 4 sharing
 * each matrix load; the per-token operations are the same for any T. Loaded only through {@link Kernels}.
 */
public final class VectorDenseKernel implements DenseKernel {
    static final VectorSpecies<Float> F = VectorWidth.FLOAT;
    static final int L = F.length();

    private final Parallel parallel;

    public VectorDenseKernel(Parallel parallel) { this.parallel = parallel; }

    @Override public String name() { return "cpu-vector"; }

    @Override
    public void matmul(DenseMatrix m, float[] x, int xOff, int T, float[] out, int outOff) {
        m.checkArgs(x, xOff, T, out, outOff);
        final int C = m.cols, R = m.rows, Cv = C - C % L;
        final float[] a = m.data;
        parallel.parallelFor(R, ScalarDenseKernel.rowGrain(m), (from, to) -> {
            float[] tmp = new float[4 * L];
            for (int r = from; r < to; r++) {
                int ro = r * C;
                int t = 0;
                for (; t + 4 <= T; t += 4) {
                    int x0 = xOff + t * C, x1 = x0 + C, x2 = x1 + C, x3 = x2 + C;
                    FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                    for (int c = 0; c < Cv; c += L) {
                        FloatVector w = FloatVector.fromArray(F, a, ro + c);
                        a0 = w.fma(FloatVector.fromArray(F, x, x0 + c), a0);
                        a1 = w.fma(FloatVector.fromArray(F, x, x1 + c), a1);
                        a2 = w.fma(FloatVector.fromArray(F, x, x2 + c), a2);
                        a3 = w.fma(FloatVector.fromArray(F, x, x3 + c), a3);
                    }
                    a0.intoArray(tmp, 0);
                    a1.intoArray(tmp, L);
                    a2.intoArray(tmp, 2 * L);
                    a3.intoArray(tmp, 3 * L);
                    for (int k = 0; k < 4; k++) {
                        out[outOff + (t + k) * R + r] = finish(tmp, k * L, a, ro, x, xOff + (t + k) * C, Cv, C);
                    }
                }
                for (; t < T; t++) {
                    int x0 = xOff + t * C;
                    FloatVector a0 = FloatVector.zero(F);
                    for (int c = 0; c < Cv; c += L) {
                        a0 = FloatVector.fromArray(F, a, ro + c).fma(FloatVector.fromArray(F, x, x0 + c), a0);
                    }
                    a0.intoArray(tmp, 0);
                    out[outOff + t * R + r] = finish(tmp, 0, a, ro, x, x0, Cv, C);
                }
            }
        });
    }

    /** Lanes tmp[off..off+L) left to right, then the tail columns [cv, c) left to right. */
    private static float finish(float[] tmp, int off, float[] a, int ro, float[] x, int xo, int cv, int c) {
        float s = tmp[off];
        for (int l = 1; l < L; l++) s += tmp[off + l];
        for (int k = cv; k < c; k++) s += a[ro + k] * x[xo + k];
        return s;
    }
}
