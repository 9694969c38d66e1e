package gptq4j.loader;

import gptq4j.util.Half;

import java.nio.ByteBuffer;

/**
 * An fp16 (or bf16/fp32, converted on read) matrix [rows][cols] backed by a memory-mapped tensor.
 * Used for the unquantised weights: embeddings, lm_head, the router, norm weights ([1][dim]).
 */
public final class HalfMatrix {
    private final String name;
    private final int rows;
    private final int cols;
    private final ByteBuffer data; // rows*cols elements, little-endian
    private final String dtype;

    public HalfMatrix(String name, int rows, int cols, ByteBuffer data, String dtype) {
        this.name = name;
        this.rows = rows;
        this.cols = cols;
        this.data = data;
        this.dtype = dtype;
    }

    public String name() { return name; }

    public int rows() { return rows; }

    public int cols() { return cols; }

    public String dtype() { return dtype; }

    /** The raw little-endian bytes (fp16, bf16 or fp32 as {@link #dtype()} says). */
    public ByteBuffer data() { return data.duplicate().order(data.order()); }

    /** Element (r, c) as float. */
    public float get(int r, int c) {
        long i = (long) r * cols + c;
        return switch (dtype) {
            case "F16" -> Half.toFloat(data.getShort((int) (i * 2)));
            case "BF16" -> Float.intBitsToFloat((data.getShort((int) (i * 2)) & 0xffff) << 16);
            case "F32" -> data.getFloat((int) (i * 4));
            default -> throw new IllegalStateException(name + ": unsupported dtype " + dtype);
        };
    }

    /** Row r converted to floats into dst[off..off+cols). */
    public void row(int r, float[] dst, int off) {
        for (int c = 0; c < cols; c++) dst[off + c] = get(r, c);
    }

    /** The whole matrix as floats (rows*cols must fit an array). */
    public float[] toFloats() {
        float[] out = new float[Math.multiplyExact(rows, cols)];
        for (int r = 0; r < rows; r++) row(r, out, r * cols);
        return out;
    }
}
