package gptq4j.backend.cpu;

/**
 * out[outOff + t*m.rows() + r] = sum_c M[r][c] * x[xOff + t*m.cols() + c] for an fp16 {@link HalfDense} matrix,
 * batch-invariant like {@link DenseKernel}.
 */
public interface HalfDenseKernel {

    String name();

    void matmul(HalfDense m, float[] x, int xOff, int T, float[] out, int outOff);
}
