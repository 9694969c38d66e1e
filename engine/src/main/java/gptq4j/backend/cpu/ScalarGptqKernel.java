package gptq4j.backend.cpu;

/**
 * Plain-Java reference kernel on the {@link PackedGptq} layout. Per (token, row): for each group, the
 * sum of q*x over the group's packed columns in order and the sum of x, in float64 (a whole-row group is thousands of terms and the
 * zero point cancels most of them: a float32 sum missed the 1e-5 bound now and then), then
 * {@code res += scale * (float) (sum - zero * sum(x))}.
 */
public final class ScalarGptqKernel implements GptqKernel {
    private final Parallel parallel;
    private final int lanes;

    /** @param lanes the layout's lane count; any value works, the vector kernel's makes layouts shareable */
    public ScalarGptqKernel(Parallel parallel, int lanes) {
        this.parallel = parallel;
        this.lanes = lanes;
    }

    @Override public String name() { return "cpu-scalar"; }

    @Override public int lanes() { return lanes; }

    @Override
    public void matmul(PackedGptq w, float[] x, int xOff, int T, float[] out, int outOff) {
        w.checkArgs(x, xOff, T, out, outOff);
        if (T == 0) return;
        int K = w.paddedIn, G = w.groups, L = w.lanes;
        float[] xp = new float[T * K];
        w.permuteX(x, xOff, T, xp);
        double[] xsum = new double[T * G];
        for (int t = 0; t < T; t++) {
            int pc = t * K;
            for (int g = 0; g < G; g++) {
                double s = 0.0;
                for (int e = pc + w.groupSlots[g] * L; pc < e; pc++) s += xp[pc];
                xsum[t * G + g] = s;
            }
        }
        parallel.parallelFor(w.out, rowGrain(w), (from, to) -> {
            double[] acc = new double[T];
            float[] res = new float[T];
            for (int o = from; o < to; o++) row(w, o, xp, xsum, T, acc, res, out, outOff);
        });
    }

    static int rowGrain(PackedGptq w) {
        // about 64 KiB of weights per chunk
        return Math.max(1, Math.min(w.out, (1 << 14) / Math.max(1, w.rowWords)));
    }

    private static void row(PackedGptq w, int o, float[] xp, double[] xsum, int T,
                            double[] acc, float[] res, float[] out, int outOff) {
        final int L = w.lanes, bits = w.bits, spc = w.slotsPerChunk, wpc = w.chunkStride, K = w.paddedIn, G = w.groups;
        final int mask = (1 << bits) - 1;
        final int[] words = w.words;
        final int rowOff = w.rowBase(o);
        java.util.Arrays.fill(res, 0, T, 0f);
        int j = 0; // slot index along the row
        for (int g = 0; g < G; g++) {
            java.util.Arrays.fill(acc, 0, T, 0.0);
            for (int e = j + w.groupSlots[g]; j < e; j++) {
                int c = j / spc, s = j - c * spc;
                int bit = s * bits, k = bit >>> 5, sh = bit & 31;
                int base = rowOff + c * wpc + k * L;
                boolean straddle = sh + bits > 32;
                for (int l = 0; l < L; l++) {
                    int v = words[base + l] >>> sh;
                    if (straddle) v |= words[base + L + l] << (32 - sh);
                    float q = v & mask;
                    int pc = j * L + l;
                    for (int t = 0; t < T; t++) acc[t] += (double) q * xp[t * K + pc];
                }
            }
            float sc = w.scales[o * G + g], z = w.zeros[o * G + g];
            for (int t = 0; t < T; t++) res[t] += sc * (float) (acc[t] - z * xsum[t * G + g]);
        }
        for (int t = 0; t < T; t++) out[outOff + t * w.out + o] = res[t];
    }
}
