package gptq4j.backend.cpu;

/**
 * out[outOff + t*m.rows() + r] = sum_c M[r][c] * x[xOff + t*m.cols() + c] for t in [0, T), with the same
 * batch-invariance rule as {@link GptqKernel}: the result for (t, r) does not depend on T, the other tokens
 * or the thread count.
 */
public interface DenseKernel {

    String name();

    void matmul(DenseMatrix m, float[] x, int xOff, int T, float[] out, int outOff);
}
