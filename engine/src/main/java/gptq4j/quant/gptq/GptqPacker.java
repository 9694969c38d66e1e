package gptq4j.quant.gptq;

import java.nio.ByteBuffer;

/**
 * Packs quantised values into the AutoGPTQ v1 layout that {@link GptqLinear} reads: values along one
 * dimension form a little-endian bit stream of {@code bits}-bit fields, 32 bits per int32 word (3-bit
 * values straddle words).
 */
public final class GptqPacker {
    private GptqPacker() { }

    /**
     * qweight int32 [in*bits/32][out] from q[i][o] (row-major [in][out]), into a little-endian buffer.
     */
    public static void packQweight(int[] q, int in, int out, int bits, ByteBuffer dst) {
        int rows = in * bits / 32;
        int[] words = new int[rows * out];
        for (int i = 0; i < in; i++) {
            long bit = (long) i * bits;
            int w = (int) (bit >>> 5), s = (int) (bit & 31);
            for (int o = 0; o < out; o++) {
                long v = q[i * out + o] & ((1L << bits) - 1);
                words[w * out + o] |= (int) (v << s);
                if (s + bits > 32) words[(w + 1) * out + o] |= (int) (v >>> (32 - s));
            }
        }
        for (int x : words) dst.putInt(x);
    }

    /** qzeros int32 [groups][out*bits/32] from stored zeros z[g][o] (already zero-1). */
    public static void packQzeros(int[] z, int groups, int out, int bits, ByteBuffer dst) {
        int cols = out * bits / 32;
        int[] words = new int[groups * cols];
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                long bit = (long) o * bits;
                int w = (int) (bit >>> 5), s = (int) (bit & 31);
                long v = z[g * out + o] & ((1L << bits) - 1);
                words[g * cols + w] |= (int) (v << s);
                if (s + bits > 32) words[g * cols + w + 1] |= (int) (v >>> (32 - s));
            }
        }
        for (int x : words) dst.putInt(x);
    }
}
