package gptq4j.quant.gptq;

import gptq4j.util.Half;

import java.nio.ByteBuffer;

/**
 * One GPTQ-quantised linear layer exactly as the checkpoint stores it (AutoGPTQ v1 format), backed by
 * memory-mapped tensors. Backends repack it once at load; this class is also the scalar reference for
 * what a weight means:
 *
 * <pre>W[o][i] = scales[g][o] * (q[i][o] - (z[g][o] + 1)),  g = g_idx[i]</pre>
 *
 * where q[i][o] is the {@code bits}-bit value at position i of column o of qweight, read as one
 * little-endian bit stream per column (3-bit values straddle words, 32 values in 3 words), and
 * z[g][o] the stored zero at position o of row g of qzeros, a bit stream along the output dimension.
 */
public final class GptqLinear {
    private final String name;
    private final int in;
    private final int out;
    private final int groups;
    private final GptqConfig config;
    private final ByteBuffer qweight; // int32 [in*bits/32][out]
    private final ByteBuffer qzeros;  // int32 [groups][out*bits/32]
    private final ByteBuffer scales;  // fp16  [groups][out]
    private final int[] gIdx;         // [in] group of each input column
    private final int qzeroWords;     // ints per qzeros row

    public GptqLinear(String name, int in, int out, int groups, GptqConfig config,
                      ByteBuffer qweight, ByteBuffer qzeros, ByteBuffer scales, int[] gIdx) {
        this.name = name;
        this.in = in;
        this.out = out;
        this.groups = groups;
        this.config = config;
        this.qweight = qweight;
        this.qzeros = qzeros;
        this.scales = scales;
        this.gIdx = gIdx;
        this.qzeroWords = (int) ((long) out * config.bits() / 32);
    }

    /** Checkpoint prefix, e.g. {@code model.layers.0.self_attn.q_proj}. */
    public String name() { return name; }

    /** Input features (columns of W). */
    public int in() { return in; }

    /** Output features (rows of W). */
    public int out() { return out; }

    public int groups() { return groups; }

    public int bits() { return config.bits(); }

    public GptqConfig config() { return config; }

    /** Group of input column i. */
    public int group(int i) { return gIdx[i]; }

    /** The g_idx array (not copied; do not modify). */
    public int[] gIdx() { return gIdx; }

    public ByteBuffer qweight() { return qweight.duplicate().order(qweight.order()); }

    public ByteBuffer qzeros() { return qzeros.duplicate().order(qzeros.order()); }

    public ByteBuffer scales() { return scales.duplicate().order(scales.order()); }

    /** The quantised value of input i, output o. */
    public int q(int i, int o) {
        return bitsAt(qweight, out, o, (long) i * config.bits(), config.bits());
    }

    /** The effective zero point of group g, output o: stored value + 1 (v1 storage). */
    public int zero(int g, int o) {
        int b = config.bits();
        long bit = (long) o * b;
        int word = (int) (bit >>> 5);
        int shift = (int) (bit & 31);
        long base = (long) g * qzeroWords;
        long v = Integer.toUnsignedLong(qzeros.getInt((int) ((base + word) * 4))) >>> shift;
        if (shift + b > 32) {
            v |= Integer.toUnsignedLong(qzeros.getInt((int) ((base + word + 1) * 4))) << (32 - shift);
        }
        return (int) (v & ((1L << b) - 1)) + 1;
    }

    /** Scale of group g, output o. */
    public float scale(int g, int o) {
        return Half.toFloat(scales.getShort((int) (((long) g * out + o) * 2)));
    }

    /** The dequantised weight W[o][i] (float32). */
    public float weight(int o, int i) {
        int g = gIdx[i];
        return scale(g, o) * (q(i, o) - zero(g, o));
    }

    /**
     * Value at bit position {@code bit} of column {@code col} of a [rows][cols] int32 matrix read as one
     * little-endian bit stream per column.
     */
    static int bitsAt(ByteBuffer m, int cols, int col, long bit, int bits) {
        int word = (int) (bit >>> 5);
        int shift = (int) (bit & 31);
        long v = Integer.toUnsignedLong(m.getInt((int) (((long) word * cols + col) * 4))) >>> shift;
        if (shift + bits > 32) {
            v |= Integer.toUnsignedLong(m.getInt((int) (((long) (word + 1) * cols + col) * 4))) << (32 - shift);
        }
        return (int) (v & ((1L << bits) - 1));
    }
}
