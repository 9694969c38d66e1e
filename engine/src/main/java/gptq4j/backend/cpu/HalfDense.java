package gptq4j.backend.cpu;

import gptq4j.loader.HalfMatrix;
import gptq4j.util.Half;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * An fp16 matrix [rows][cols] kept as fp16 bits for the CPU kernels (embeddings, lm_head): half the bytes of
 * {@link DenseMatrix}, converted to float32 in the kernel (exactly: the conversion is a shift and a multiply by
 * 2^112, see {@link VectorHalfDenseKernel}).
 *
 * <p>Layout, for a lane count L: each row is {@code blocks} blocks of L ints, blocks even ({@code 2*(cols / 4L)});
 * int l of block b holds column {@code b*2L + l} in its low 16 bits and column {@code b*2L + L + l} in its high 16
 * bits, so one int vector yields two float vectors of contiguous columns. The last {@code cols - blocks*2L} columns
 * of each row are in {@link #tail} as raw fp16 bits.
 */
public final class HalfDense {
    final String name;
    final int rows;
    final int cols;
    final int lanes;
    final int blocks;     // per row
    final int tailCols;   // cols - blocks*2L
    final int[] packed;   // [rows][blocks*L]
    final short[] tail;   // [rows][tailCols]

    private HalfDense(String name, int rows, int cols, int lanes) {
        this.name = name;
        this.rows = rows;
        this.cols = cols;
        this.lanes = lanes;
        this.blocks = cols / (4 * lanes) * 2;
        this.tailCols = cols - blocks * 2 * lanes;
        this.packed = new int[Math.multiplyExact(rows, blocks * lanes)];
        this.tail = new short[Math.multiplyExact(rows, tailCols)];
    }

    /**
     * Packs an F16 matrix for kernels of {@code lanes} lanes, or returns null when it cannot be kept as fp16: another
     * dtype, or an infinity / NaN (the kernel's conversion is exact only for finite values).
     */
    public static HalfDense ofF16(HalfMatrix m, int lanes) {
        if (!m.dtype().equals("F16")) return null;
        ByteBuffer b = m.data().order(ByteOrder.LITTLE_ENDIAN);
        long n = (long) m.rows() * m.cols();
        for (long i = 0; i < n; i++) {
            if ((b.getShort((int) (i * 2)) & 0x7c00) == 0x7c00) return null;   // exponent 31: inf or NaN
        }
        HalfDense d = new HalfDense(m.name(), m.rows(), m.cols(), lanes);
        int L = lanes, C = m.cols();
        for (int r = 0; r < d.rows; r++) {
            long rowBase = (long) r * C;
            int po = r * d.blocks * L;
            for (int blk = 0; blk < d.blocks; blk++) {
                for (int l = 0; l < L; l++) {
                    int lo = b.getShort((int) ((rowBase + blk * 2L * L + l) * 2)) & 0xffff;
                    int hi = b.getShort((int) ((rowBase + blk * 2L * L + L + l) * 2)) & 0xffff;
                    d.packed[po + blk * L + l] = lo | hi << 16;
                }
            }
            for (int c = 0; c < d.tailCols; c++) {
                d.tail[r * d.tailCols + c] = b.getShort((int) ((rowBase + d.blocks * 2L * L + c) * 2));
            }
        }
        return d;
    }

    public String name() { return name; }

    public int rows() { return rows; }

    public int cols() { return cols; }

    /** Bytes a full product streams (the fp16 values). */
    public long weightBytes() { return (long) rows * cols * 2; }

    /** The raw fp16 bits of (r, c). */
    short bits(int r, int c) {
        int b = c / (2 * lanes);
        if (b >= blocks) return tail[r * tailCols + c - blocks * 2 * lanes];
        int w = packed[(r * blocks + b) * lanes + (c % lanes)];
        return (short) ((c % (2 * lanes)) < lanes ? w : w >>> 16);
    }

    /** Element (r, c) as float. */
    public float get(int r, int c) { return Half.toFloat(bits(r, c)); }

    /** Row r converted to floats into dst[off..off+cols) (embedding lookup). */
    public void row(int r, float[] dst, int off) {
        for (int c = 0; c < cols; c++) dst[off + c] = get(r, c);
    }

    void checkArgs(float[] x, int xOff, int T, float[] out, int outOff) {
        MatmulArgs.check(name, cols, rows, x, xOff, T, out, outOff);
    }
}
