package gptq4j.backend.cpu;

/** The argument check every CPU matrix product makes: T ≥ 0 and both arrays long enough from their offsets. */
final class MatmulArgs {
    private MatmulArgs() { }

    /**
     * @param name  the matrix, for the message
     * @param in    floats per token in x
     * @param out   floats per token in the result
     */
    static void check(String name, int in, int out, float[] x, int xOff, int T, float[] outArr, int outOff) {
        if (T < 0) throw new IllegalArgumentException(name + ": token count T=" + T + " is negative");
        if (xOff < 0 || (long) xOff + (long) T * in > x.length) {
            throw new IllegalArgumentException(name + ": x needs " + T + "x" + in + " floats from offset " + xOff
                    + " but has length " + x.length);
        }
        if (outOff < 0 || (long) outOff + (long) T * out > outArr.length) {
            throw new IllegalArgumentException(name + ": out needs " + T + "x" + out + " floats from offset " + outOff
                    + " but has length " + outArr.length);
        }
    }
}
