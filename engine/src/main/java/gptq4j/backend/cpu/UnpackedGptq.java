package gptq4j.backend.cpu;

import gptq4j.quant.gptq.GptqLinear;

/**
 * Scalar reference form of a GPTQ layer: every quantised value unpacked to a byte (at most 8 bits), with
 * float scales and zero points per (row, group) and g_idx kept as is. Slow and twice the 4-bit size, but
 * obviously right; the vector backend uses the packed kernels instead.
 */
final class UnpackedGptq {
    final int in;
    final int out;
    final int groups;
    final byte[] q;        // [out][in] unsigned values
    final float[] scale;   // [out][groups]
    final float[] zero;    // [out][groups]
    final int[] gIdx;      // [in]

    UnpackedGptq(GptqLinear w) {
        in = w.in();
        out = w.out();
        groups = w.groups();
        gIdx = w.gIdx().clone();
        q = new byte[Math.multiplyExact(in, out)];
        scale = new float[out * groups];
        zero = new float[out * groups];
        for (int i = 0; i < in; i++) {
            for (int o = 0; o < out; o++) q[o * in + i] = (byte) w.q(i, o);
        }
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                scale[o * groups + g] = w.scale(g, o);
                zero[o * groups + g] = w.zero(g, o);
            }
        }
    }

    /** out[t][o] = Σ_i W[o][i] x[t][i], accumulated in input order. */
    void matmul(float[] x, int xOff, int T, float[] y, int yOff, int o) {
        int base = o * in;
        int sb = o * groups;
        for (int t = 0; t < T; t++) {
            int xo = xOff + t * in;
            float acc = 0;
            for (int i = 0; i < in; i++) {
                int g = gIdx[i];
                float wv = scale[sb + g] * ((q[base + i] & 0xff) - zero[sb + g]);
                acc += wv * x[xo + i];
            }
            y[yOff + t * out + o] = acc;
        }
    }
}
