package gptq4j.backend.cpu;

/**
 * Matrix product with a GPTQ layer repacked by {@link PackedGptq}: for t in [0, T) and o in [0, w.out()),
 * <pre>out[outOff + t*w.out() + o] = sum_i W[o][i] * x[xOff + t*w.in() + i]</pre>
 * Each packed weight word is decoded once per call and used for all T tokens. The result for one (t, o)
 * is bit-identical whatever T, the other tokens and the thread count (batch invariance).
 */
public interface GptqKernel {

    /** Short name for logs: {@code cpu-scalar} or {@code cpu-vector}. */
    String name();

    /** The lane count {@link PackedGptq#pack} must use for layers given to this kernel. */
    int lanes();

    void matmul(PackedGptq w, float[] x, int xOff, int T, float[] out, int outOff);

    /**
     * {@code matmul(w[i], x[i], 0, T[i], out[i], 0)} for every i, with the same results; a kernel may run them as one
     * parallel section (the threads meet once, not once per product). The outputs must not alias any input.
     */
    default void matmulAll(PackedGptq[] w, float[][] x, int[] T, float[][] out) {
        checkAll(w, x, T, out);
        for (int i = 0; i < w.length; i++) matmul(w[i], x[i], 0, T[i], out[i], 0);
    }

    /** The argument check of {@link #matmulAll}: one input, token count and output per layer. */
    static void checkAll(PackedGptq[] w, float[][] x, int[] T, float[][] out) {
        if (w.length != x.length || w.length != T.length || w.length != out.length) {
            throw new IllegalArgumentException("matmulAll: " + w.length + " layers, " + x.length + " inputs, " + T.length
                    + " token counts, " + out.length + " outputs; expected the same number of each");
        }
    }
}
