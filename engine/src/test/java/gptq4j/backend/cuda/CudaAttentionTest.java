package gptq4j.backend.cuda;

import gptq4j.backend.AttentionBatch;
import gptq4j.backend.Buf;
import gptq4j.backend.KvCache;
import gptq4j.util.Half;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static gptq4j.backend.cuda.CudaSmallOpsTest.upload;
import static gptq4j.backend.cuda.CudaSmallOpsTest.uploadInts;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Paged attention against a float64 reference: sequences of several lengths in scattered blocks, a prefill
 * step then a step of new tokens (decode or a prefill chunk), GQA, sliding windows.
 */
class CudaAttentionTest {

    /** heads, kvHeads, headDim, window, {cached, new} per sequence, fp16 cache; each case for both cache types. */
    static Stream<Arguments> cases() {
        return base().flatMap(a -> Stream.of(false, true).map(h -> {
            Object[] x = Arrays.copyOf(a.get(), 6);
            x[5] = h;
            return Arguments.of(x);
        }));
    }

    static Stream<Arguments> base() {
        return Stream.of(
                Arguments.of(4, 2, 32, 0, new int[][]{{0, 5}, {7, 1}, {40, 1}}),
                Arguments.of(32, 8, 128, 0, new int[][]{{0, 100}, {130, 1}}),
                Arguments.of(32, 8, 128, 37, new int[][]{{50, 20}, {0, 64}, {200, 1}}),
                // Mixtral's heads over longer contexts: many steps of each warp's keys (the pipelined form's stage reused)
                Arguments.of(32, 8, 128, 0, new int[][]{{300, 1}, {70, 2}}),
                Arguments.of(8, 8, 64, 0, new int[][]{{0, 1}, {3, 2}}),
                Arguments.of(4, 1, 256, 5, new int[][]{{9, 3}}),
                Arguments.of(4, 2, 32, 0, new int[][]{{600, 88}}),
                // a long context: 4,201 keys over 263 blocks of the table
                Arguments.of(4, 2, 32, 0, new int[][]{{4200, 1}}));
    }

    @ParameterizedTest(name = "heads {0}/{1} d {2} window {3} fp16 {5}")
    @MethodSource("cases")
    void matchesReference(int heads, int kvHeads, int d, int window, int[][] seqs, boolean fp16) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int S = seqs.length, bs = 16, layers = 2, layer = 1;
        int qDim = heads * d, kvDim = kvHeads * d;
        int maxLen = 0, totalBlocks = 0;
        for (int[] s : seqs) {
            maxLen = Math.max(maxLen, s[0] + s[1]);
            totalBlocks += (s[0] + s[1] + bs - 1) / bs;
        }
        int maxBlocks = (maxLen + bs - 1) / bs;
        int blocks = totalBlocks + 3;
        List<Integer> free = new ArrayList<>();
        for (int b = 0; b < blocks; b++) free.add(b);
        Collections.shuffle(free, r);
        int[] table = new int[S * maxBlocks];
        float[][] q = new float[S][], k = new float[S][], v = new float[S][];
        for (int s = 0; s < S; s++) {
            int len = seqs[s][0] + seqs[s][1];
            for (int b = 0; b < (len + bs - 1) / bs; b++) table[s * maxBlocks + b] = free.remove(free.size() - 1);
            q[s] = CudaTestSupport.gaussian(r, len * qDim, 1.0);
            k[s] = CudaTestSupport.gaussian(r, len * kvDim, 1.0);
            v[s] = CudaTestSupport.gaussian(r, len * kvDim, 1.0);
        }
        try (KvCache cache = be.allocKvCache(layers, blocks, bs, kvHeads, d, fp16)) {
            Buf tables = be.allocInts(table.length);
            be.write(tables, table, table.length);
            double worst = 0;
            for (int phase = 0; phase < 2; phase++) {
                List<int[]> toks = new ArrayList<>();   // {seq, pos}
                for (int s = 0; s < S; s++) {
                    int from = phase == 0 ? 0 : seqs[s][0], to = phase == 0 ? seqs[s][0] : seqs[s][0] + seqs[s][1];
                    for (int p = from; p < to; p++) toks.add(new int[]{s, p});
                }
                int T = toks.size();
                if (T == 0) continue;
                float[] qs = new float[T * qDim], ks = new float[T * kvDim], vs = new float[T * kvDim];
                int[] slots = new int[T], pos = new int[T], seq = new int[T];
                for (int t = 0; t < T; t++) {
                    int s = toks.get(t)[0], p = toks.get(t)[1];
                    System.arraycopy(q[s], p * qDim, qs, t * qDim, qDim);
                    System.arraycopy(k[s], p * kvDim, ks, t * kvDim, kvDim);
                    System.arraycopy(v[s], p * kvDim, vs, t * kvDim, kvDim);
                    slots[t] = table[s * maxBlocks + p / bs] * bs + p % bs;
                    pos[t] = p;
                    seq[t] = s;
                }
                Buf qb = upload(be, qs), kb = upload(be, ks), vb = upload(be, vs), ob = be.allocFloats((long) T * qDim);
                Buf sb = uploadInts(be, slots), pb = uploadInts(be, pos), tb = uploadInts(be, seq);
                float[] poison = new float[T * qDim];
                Arrays.fill(poison, Float.NaN);
                be.write(ob, poison, poison.length);
                AttentionBatch meta = new AttentionBatch(T, sb, pb, tb, tables, maxBlocks, window, heads);
                be.attention(cache, layer, qb, kb, vb, meta, ob);
                float[] out = new float[T * qDim];
                be.read(ob, 0, out, out.length);
                double[] ref = new double[T * qDim];
                for (int t = 0; t < T; t++) reference(q, k, v, toks.get(t)[0], pos[t], heads, kvHeads, d, window, fp16, ref, t * qDim);
                double err = CudaTestSupport.relErr(out, ref);
                worst = Math.max(worst, err);
                assertTrue(CudaTestSupport.allFinite(out), "unwritten output in phase " + phase);
                assertTrue(err < 1e-4, "phase " + phase + " rel err " + err);
                if (d == 128) {
                    // the register form, the lean form (state in shared memory, two blocks per SM) and its pipelined
                    // variant (the next keys copied to shared memory ahead): the same bits, whichever the launch rule
                    // picked above
                    for (String form : new String[]{"register", "lean", "pipe"}) {
                        be.attLeanForce = !form.equals("register");
                        be.attPipeForce = form.equals("pipe");
                        try {
                            be.write(ob, poison, poison.length);
                            be.attention(cache, layer, qb, kb, vb, meta, ob);
                        } finally {
                            be.attLeanForce = null;
                            be.attPipeForce = null;
                        }
                        float[] other = new float[T * qDim];
                        be.read(ob, 0, other, other.length);
                        assertArrayEquals(out, other, "phase " + phase + ": the " + form + " attention form differs");
                    }
                }
                if (phase == 1 && T > 1) {
                    // batch invariance: the last token attended alone gives the same bits
                    int t = T - 1;
                    Buf q1 = upload(be, Arrays.copyOfRange(qs, t * qDim, T * qDim));
                    Buf k1 = upload(be, Arrays.copyOfRange(ks, t * kvDim, T * kvDim));
                    Buf v1 = upload(be, Arrays.copyOfRange(vs, t * kvDim, T * kvDim));
                    Buf o1 = be.allocFloats(qDim);
                    AttentionBatch m1 = new AttentionBatch(1, uploadInts(be, new int[]{slots[t]}),
                            uploadInts(be, new int[]{pos[t]}), uploadInts(be, new int[]{0}),
                            uploadInts(be, Arrays.copyOfRange(table, seq[t] * maxBlocks, (seq[t] + 1) * maxBlocks)),
                            maxBlocks, window, heads);
                    be.attention(cache, layer, q1, k1, v1, m1, o1);
                    float[] alone = new float[qDim];
                    be.read(o1, 0, alone, qDim);
                    assertArrayEquals(alone, Arrays.copyOfRange(out, t * qDim, T * qDim), "token alone differs");
                    // copy-on-write: the sequence's first block copied to a spare block gives the same attention
                    int spare = free.get(0), first = table[seq[t] * maxBlocks];
                    cache.copyBlock(first, spare);
                    int[] row = Arrays.copyOfRange(table, seq[t] * maxBlocks, (seq[t] + 1) * maxBlocks);
                    row[0] = spare;
                    if (pos[t] < bs) {
                        // the token's own slot moves with the block
                        m1 = new AttentionBatch(1, uploadInts(be, new int[]{spare * bs + pos[t]}), m1.positions(), m1.tokenSeq(),
                                uploadInts(be, row), maxBlocks, window, heads);
                    } else {
                        m1 = new AttentionBatch(1, m1.slots(), m1.positions(), m1.tokenSeq(), uploadInts(be, row), maxBlocks,
                                window, heads);
                    }
                    be.attention(cache, layer, q1, k1, v1, m1, o1);
                    float[] copied = new float[qDim];
                    be.read(o1, 0, copied, qDim);
                    assertArrayEquals(alone, copied, "attention through a copied block differs");
                }
            }
            CudaTestSupport.report("err_attention", worst);
        }
    }

    /**
     * ropeAttention (RoPE and the cache append in one launch) equals rope then attention bit for bit: the output,
     * the rotated q and k, and, through a second step that reads them, the cached keys and values.
     */
    @ParameterizedTest(name = "fp16 cache {0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void ropeAttentionEqualsRopeThenAttention(boolean fp16) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int heads = 32, kvHeads = 8, d = 128, bs = 16, blocks = 8, maxBlocks = 4, qDim = heads * d, kvDim = kvHeads * d;
        double theta = 1e6;
        int[] table = {5, 2, 7, 0, 1, 3, 6, 4};                   // two sequences of up to 4 blocks
        try (KvCache fused = be.allocKvCache(1, blocks, bs, kvHeads, d, fp16);
             KvCache plain = be.allocKvCache(1, blocks, bs, kvHeads, d, fp16)) {
            Buf tables = uploadInts(be, table);
            int[] lens = {0, 0};                                  // tokens cached per sequence
            for (int step = 0; step < 3; step++) {                // a prefill of 4 + 3 tokens, then two decode steps
                int T = step == 0 ? 7 : 2;
                int[] pos = new int[T], seq = new int[T], slots = new int[T];
                for (int t = 0; t < T; t++) {
                    seq[t] = step == 0 ? (t < 4 ? 0 : 1) : t;
                    pos[t] = lens[seq[t]]++;
                    slots[t] = table[seq[t] * maxBlocks + pos[t] / bs] * bs + pos[t] % bs;
                }
                float[] q = CudaTestSupport.gaussian(r, T * qDim, 1.0), k = CudaTestSupport.gaussian(r, T * kvDim, 1.0),
                        v = CudaTestSupport.gaussian(r, T * kvDim, 1.0);
                AttentionBatch meta = new AttentionBatch(T, uploadInts(be, slots), uploadInts(be, pos), uploadInts(be, seq),
                        tables, maxBlocks, 0, heads);
                Buf q1 = upload(be, q), k1 = upload(be, k), v1 = upload(be, v), o1 = be.allocFloats((long) T * qDim);
                Buf q2 = upload(be, q), k2 = upload(be, k), v2 = upload(be, v), o2 = be.allocFloats((long) T * qDim);
                be.ropeAttention(fused, 0, q1, k1, v1, meta, kvHeads, d, theta, o1);
                be.rope(q2, k2, meta.positions(), T, heads, kvHeads, d, theta);
                be.attention(plain, 0, q2, k2, v2, meta, o2);
                for (Buf[] pair : new Buf[][]{{o1, o2}, {q1, q2}, {k1, k2}}) {
                    int n = pair[0] == k1 ? T * kvDim : T * qDim;
                    float[] a = new float[n], b = new float[n];
                    be.read(pair[0], 0, a, n);
                    be.read(pair[1], 0, b, n);
                    assertTrue(CudaTestSupport.allFinite(a), "step " + step + ": non-finite values");
                    assertArrayEquals(b, a, "step " + step + ": ropeAttention differs from rope + attention");
                }
            }
        }
    }

    /** Causal (windowed) attention of one query token in float64, K and V rounded to fp16 as the cache stores them. */
    static void reference(float[][] q, float[][] k, float[][] v, int s, int pos, int heads, int kvHeads, int d, int window,
                          boolean fp16, double[] out, int off) {
        int qDim = heads * d, kvDim = kvHeads * d, group = heads / kvHeads;
        int start = window > 0 ? Math.max(0, pos - window + 1) : 0;
        for (int h = 0; h < heads; h++) {
            int kvh = h / group;
            double[] sc = new double[pos - start + 1];
            double mx = Double.NEGATIVE_INFINITY;
            for (int p = start; p <= pos; p++) {
                double dot = 0;
                for (int i = 0; i < d; i++) dot += q[s][pos * qDim + h * d + i] * (double) stored(k[s][p * kvDim + kvh * d + i], fp16);
                sc[p - start] = dot / Math.sqrt(d);
                mx = Math.max(mx, sc[p - start]);
            }
            double sum = 0;
            for (int j = 0; j < sc.length; j++) sum += sc[j] = Math.exp(sc[j] - mx);
            for (int i = 0; i < d; i++) {
                double o = 0;
                for (int p = start; p <= pos; p++) o += sc[p - start] * stored(v[s][p * kvDim + kvh * d + i], fp16);
                out[off + h * d + i] = o / sum;
            }
        }
    }

    private static float stored(float x, boolean fp16) { return fp16 ? Half.toFloat(Half.fromFloat(x)) : x; }
}
