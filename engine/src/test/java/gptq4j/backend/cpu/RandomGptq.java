package gptq4j.backend.cpu;

import gptq4j.quant.gptq.GptqConfig;
import gptq4j.quant.gptq.GptqLinear;
import gptq4j.util.Half;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Builds a random GPTQ layer in the AutoGPTQ v1 checkpoint format (packing written here, independently of
 * {@link GptqLinear}'s reader): qweight int32 [in*bits/32][out] as one little-endian bit stream per column
 * (3-bit values straddle words), qzeros int32 [groups][out*bits/32] holding zero-1 as a bit stream per row,
 * fp16 scales [groups][out], g_idx from a random permutation with act order.
 */
final class RandomGptq {
    final GptqLinear layer;
    final int[][] q;        // [in][out] the quantised values packed
    final int[][] zero;     // [groups][out] effective zero (stored + 1)
    final short[][] scale;  // [groups][out] fp16 bits
    final int[] gIdx;

    private RandomGptq(GptqLinear layer, int[][] q, int[][] zero, short[][] scale, int[] gIdx) {
        this.layer = layer;
        this.q = q;
        this.zero = zero;
        this.scale = scale;
        this.gIdx = gIdx;
    }

    /** in and out must be multiples of 32 (whole int32 words for every bit width). */
    static RandomGptq create(Random rnd, int in, int out, int bits, int groupSize, boolean actOrder, boolean sym) {
        if (in % 32 != 0 || out % 32 != 0) throw new IllegalArgumentException("in/out must be multiples of 32");
        int gs = groupSize == -1 ? in : groupSize;
        int groups = (in + gs - 1) / gs;
        int[] gIdx = new int[in];
        if (actOrder) {
            int[] perm = new int[in];
            for (int i = 0; i < in; i++) perm[i] = i;
            for (int i = in - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1);
                int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
            }
            for (int j = 0; j < in; j++) gIdx[perm[j]] = j / gs;
        } else {
            for (int i = 0; i < in; i++) gIdx[i] = i / gs;
        }
        int max = (1 << bits) - 1;
        int[][] q = new int[in][out];
        for (int i = 0; i < in; i++) for (int o = 0; o < out; o++) q[i][o] = rnd.nextInt(max + 1);
        int[][] stored = new int[groups][out];
        int[][] zero = new int[groups][out];
        short[][] scale = new short[groups][out];
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                stored[g][o] = sym ? (1 << (bits - 1)) - 1 : rnd.nextInt(max + 1);
                zero[g][o] = stored[g][o] + 1;
                scale[g][o] = Half.fromFloat((float) (0.002 + 0.05 * rnd.nextDouble()));
            }
        }
        int qRows = in * bits / 32;
        int[][] qw = new int[qRows][out];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) put(qw, o, (long) i * bits, bits, q[i][o], true);
        }
        int zWords = out * bits / 32;
        int[][] qz = new int[groups][zWords];
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) put(qz, g, (long) o * bits, bits, stored[g][o], false);
        }
        ByteBuffer qweight = ints(qw);
        ByteBuffer qzeros = ints(qz);
        ByteBuffer scales = ByteBuffer.allocate(groups * out * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (int g = 0; g < groups; g++) for (int o = 0; o < out; o++) scales.putShort(scale[g][o]);
        scales.flip();
        GptqConfig cfg = new GptqConfig(bits, groupSize, actOrder, sym);
        String name = "random." + bits + "bit.g" + groupSize + (actOrder ? ".act" : "") + (sym ? ".sym" : ".asym")
                + "." + in + "x" + out;
        GptqLinear layer = new GptqLinear(name, in, out, groups, cfg, qweight, qzeros, scales, gIdx);
        return new RandomGptq(layer, q, zero, scale, gIdx);
    }

    /**
     * Writes a bits-wide value at bit position {@code bit} of a bit stream; along columns (stream runs down
     * rows of column {@code line}) or along a row ({@code line} is the row).
     */
    private static void put(int[][] m, int line, long bit, int bits, int v, boolean alongColumn) {
        int word = (int) (bit >>> 5), shift = (int) (bit & 31);
        if (alongColumn) {
            m[word][line] |= v << shift;
            if (shift + bits > 32) m[word + 1][line] |= v >>> (32 - shift);
        } else {
            m[line][word] |= v << shift;
            if (shift + bits > 32) m[line][word + 1] |= v >>> (32 - shift);
        }
    }

    private static ByteBuffer ints(int[][] m) {
        int rows = m.length, cols = rows == 0 ? 0 : m[0].length;
        ByteBuffer b = ByteBuffer.allocate(rows * cols * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int[] row : m) for (int v : row) b.putInt(v);
        return b.flip();
    }

    /** W as floats [out][in], straight from {@link GptqLinear#weight}. */
    float[][] dequantised() {
        float[][] w = new float[layer.out()][layer.in()];
        for (int o = 0; o < layer.out(); o++) for (int i = 0; i < layer.in(); i++) w[o][i] = layer.weight(o, i);
        return w;
    }
}
