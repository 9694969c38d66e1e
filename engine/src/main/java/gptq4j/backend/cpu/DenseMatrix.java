package gptq4j.backend.cpu;

import gptq4j.loader.HalfMatrix;

/**
 * An unquantised matrix [rows][cols] as float32, converted once at load (lm_head, the router, embeddings).
 * Twice the bytes of fp16; the kernels read it row by row.
 */
public final class DenseMatrix {
    final String name;
    final int rows;
    final int cols;
    final float[] data; // [rows][cols]

    public DenseMatrix(String name, int rows, int cols, float[] data) {
        if ((long) rows * cols != data.length) {
            throw new IllegalArgumentException(name + ": " + rows + "x" + cols + " needs " + (long) rows * cols
                    + " floats, got " + data.length);
        }
        this.name = name;
        this.rows = rows;
        this.cols = cols;
        this.data = data;
    }

    /** Converts an fp16/bf16/fp32 matrix once; it must hold fewer than 2^31 elements. */
    public static DenseMatrix of(HalfMatrix m) {
        if ((long) m.rows() * m.cols() > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(m.name() + ": " + m.rows() + "x" + m.cols()
                    + " has more than 2^31 elements; split it by rows");
        }
        return new DenseMatrix(m.name(), m.rows(), m.cols(), m.toFloats());
    }

    public String name() { return name; }

    public int rows() { return rows; }

    public int cols() { return cols; }

    /** Element (r, c). */
    public float get(int r, int c) { return data[r * cols + c]; }

    /** Copies row r into dst[off..off+cols) (embedding lookup). */
    public void row(int r, float[] dst, int off) { System.arraycopy(data, r * cols, dst, off, cols); }

    void checkArgs(float[] x, int xOff, int T, float[] out, int outOff) {
        MatmulArgs.check(name, cols, rows, x, xOff, T, out, outOff);
    }
}
