package gptq4j.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SamplerTest {

    private static final int VOCAB = 20;
    private static final int DRAWS = 20_000;

    private static SamplingParams params(double temperature, int topK, double topP, double minP) {
        return new SamplingParams(16, temperature, topK, topP, minP, 1, 0, 0, 0, List.of(), List.of(), 0, false);
    }

    private static SamplingParams penalties(double rep, double presence, double frequency) {
        return new SamplingParams(16, 1, 0, 1, 0, rep, presence, frequency, 0, List.of(), List.of(), 0, false);
    }

    /** Fixed logits so the chi-square tests are deterministic; spread wide enough that filters bite. */
    private static float[] testLogits(long seed, int vocab, double scale) {
        Random r = new Random(seed);
        float[] l = new float[vocab];
        for (int i = 0; i < vocab; i++) l[i] = (float) (r.nextGaussian() * scale);
        return l;
    }

    /** Token ids by decreasing logit, ties to the lower id. */
    private static Integer[] order(double[] z) {
        Integer[] ids = IntStream.range(0, z.length).boxed().toArray(Integer[]::new);
        Arrays.sort(ids, Comparator.<Integer>comparingDouble(i -> -z[i]).thenComparingInt(i -> i));
        return ids;
    }

    /**
     * The filtered, renormalised distribution computed independently in float64: temperature, top-k, top-p over
     * the renormalised top-k distribution, min-p relative to the largest probability.
     */
    static double[] reference(float[] logits, double temperature, int topK, double topP, double minP) {
        int n = logits.length;
        double[] z = new double[n];
        for (int i = 0; i < n; i++) z[i] = logits[i] / temperature;
        Integer[] ids = order(z);
        boolean[] keep = new boolean[n];
        int kept = topK > 0 ? Math.min(topK, n) : n;
        for (int r = 0; r < kept; r++) keep[ids[r]] = true;
        double[] prob = softmax(z, keep);
        if (topP < 1) {
            double cum = 0;
            boolean done = false;
            for (int r = 0; r < n; r++) {
                int id = ids[r];
                if (!keep[id]) continue;
                if (done) {
                    keep[id] = false;
                } else {
                    cum += prob[id];
                    if (cum >= topP) done = true;
                }
            }
            prob = softmax(z, keep);
        }
        if (minP > 0) {
            double max = Arrays.stream(prob).max().orElseThrow();
            for (int i = 0; i < n; i++) if (prob[i] < minP * max) keep[i] = false;
            prob = softmax(z, keep);
        }
        return prob;
    }

    private static double[] softmax(double[] z, boolean[] keep) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < z.length; i++) if (keep[i]) max = Math.max(max, z[i]);
        double[] p = new double[z.length];
        double s = 0;
        for (int i = 0; i < z.length; i++) {
            if (keep[i]) {
                p[i] = Math.exp(z[i] - max);
                s += p[i];
            }
        }
        for (int i = 0; i < z.length; i++) p[i] /= s;
        return p;
    }

    @ParameterizedTest(name = "T={0} topK={1} topP={2} minP={3}")
    @CsvSource({
            "1.0, 0, 1.0, 0.0",    // plain softmax
            "0.7, 0, 1.0, 0.0",    // temperature alone
            "1.6, 0, 1.0, 0.0",
            "1.0, 6, 1.0, 0.0",    // top-k
            "1.0, 0, 0.8, 0.0",    // top-p
            "1.0, 0, 1.0, 0.08",   // min-p
            "1.3, 9, 0.9, 0.05",   // all together
    })
    void drawsMatchFilteredSoftmax(double temperature, int topK, double topP, double minP) {
        float[] logits = testLogits(20240611L, VOCAB, 1.5);
        SamplingParams p = params(temperature, topK, topP, minP);
        double[] expected = reference(logits, temperature, topK, topP, minP);
        long[] counts = new long[VOCAB];
        Sampler s = new Sampler();
        for (int seed = 0; seed < DRAWS; seed++) {
            counts[s.sample(logits, VOCAB, p.withSeed(seed), null, null, 0, 3)]++;
        }
        assertFit(counts, expected);
    }

    @Test
    void drawsAlongOneSeedsStepsMatchSoftmax() {
        float[] logits = testLogits(7L, VOCAB, 1.5);
        SamplingParams p = params(0.9, 0, 0.95, 0).withSeed(123456789L);
        double[] expected = reference(logits, 0.9, 0, 0.95, 0);
        long[] counts = new long[VOCAB];
        Sampler s = new Sampler();
        for (int step = 0; step < DRAWS; step++) counts[s.sample(logits, VOCAB, p, null, null, 0, step)]++;
        assertFit(counts, expected);
    }

    private static void assertFit(long[] counts, double[] expected) {
        int filtered = 0;
        for (int i = 0; i < VOCAB; i++) {
            if (expected[i] == 0) {
                filtered++;
                assertEquals(0, counts[i], "token " + i + " is filtered out but was drawn");
            }
        }
        ChiSquare.Result r = ChiSquare.test(counts, expected, DRAWS);
        assertTrue(r.df() >= 2, "too few bins for a meaningful test: " + r.df());
        double critical = r.critical(0.999);
        assertTrue(r.statistic() < critical, "chi-square " + r.statistic() + " ≥ " + critical + " (df " + r.df()
                + ", filtered " + filtered + ") counts " + Arrays.toString(counts) + " expected " + Arrays.toString(expected));
    }

    @Test
    void referenceFiltersActuallyFilter() {
        // guards the chi-square cases above against silently testing an unfiltered distribution
        float[] logits = testLogits(20240611L, VOCAB, 1.5);
        assertEquals(14, zeros(reference(logits, 1.0, 6, 1.0, 0.0)));
        assertTrue(zeros(reference(logits, 1.0, 0, 0.8, 0.0)) >= 5);
        assertTrue(zeros(reference(logits, 1.0, 0, 1.0, 0.08)) >= 5);
        assertTrue(zeros(reference(logits, 1.3, 9, 0.9, 0.05)) >= 11);
    }

    private static int zeros(double[] p) {
        int z = 0;
        for (double v : p) if (v == 0) z++;
        return z;
    }

    @Test
    void chiSquareQuantilesMatchTables() {
        assertEquals(10.827566170662733, ChiSquare.quantile(1, 0.999), 1e-6);
        assertEquals(13.815510557964274, ChiSquare.quantile(2, 0.999), 1e-6);
        assertEquals(20.515005652432873, ChiSquare.quantile(5, 0.999), 1e-6);
        assertEquals(29.58829844507442, ChiSquare.quantile(10, 0.999), 1e-6);
        assertEquals(43.82019596451753, ChiSquare.quantile(19, 0.999), 1e-6);
    }

    /**
     * Large vocabulary: the kept set equals the reference's exactly. Top-p 0.97 over a flat distribution keeps
     * thousands of tokens, so the nucleus quickselect runs many partition rounds.
     */
    @ParameterizedTest(name = "T={0} topK={1} topP={2} minP={3}")
    @CsvSource({"1.0, 50, 1.0, 0.0", "1.0, 0, 0.97, 0.0", "0.5, 0, 0.5, 0.0", "1.0, 2000, 0.9, 0.0", "1.0, 0, 0.97, 0.2",
            "1.0, 40, 1.0, 0.3", "0.8, 0, 1.0, 0.01", "1.0, 31999, 0.999, 0.0", "1.0, 0, 0.0001, 0.0"})
    void largeVocabularyKeepsExactlyTheReferenceSet(double temperature, int topK, double topP, double minP) {
        int vocab = 32_000;
        float[] logits = testLogits(99L, vocab, 1.0);
        double[] ref = reference(logits, temperature, topK, topP, minP);
        int[] expected = IntStream.range(0, vocab).filter(i -> ref[i] > 0).toArray();
        SamplingParams p = params(temperature, topK, topP, minP);
        int[] kept = new Sampler().keptTokens(logits, vocab, p);
        assertArrayEquals(expected, kept);
        Sampler s = new Sampler();
        for (int seed = 0; seed < 200; seed++) {
            int t = s.sample(logits, vocab, p.withSeed(seed), null, null, 0, 0);
            assertTrue(ref[t] > 0, "drew filtered-out token " + t);
        }
    }

    @Test
    void unfilteredDrawWalksIdOrder() {
        float[] logits = {0f, (float) Math.log(3), Float.NEGATIVE_INFINITY, (float) Math.log(4)};  // 1:3:0:4 / 8
        Sampler s = new Sampler();
        SamplingParams p = params(1, 0, 1, 0);
        assertEquals(0, s.sampleWithUniform(logits, 0, 4, p, null, null, 0, 0.0));
        assertEquals(0, s.sampleWithUniform(logits, 0, 4, p, null, null, 0, 0.12));
        assertEquals(1, s.sampleWithUniform(logits, 0, 4, p, null, null, 0, 0.13));
        assertEquals(1, s.sampleWithUniform(logits, 0, 4, p, null, null, 0, 0.49));
        assertEquals(3, s.sampleWithUniform(logits, 0, 4, p, null, null, 0, 0.51));
        assertEquals(3, s.sampleWithUniform(logits, 0, 4, p, null, null, 0, Math.nextDown(1.0)));
    }

    @Test
    void uNearOneFallsBackToLastKeptToken() {
        float[] logits = testLogits(5L, 1000, 3.0);
        Sampler s = new Sampler();
        double u = Math.nextDown(1.0);
        // selection path: a token of the top 7
        double[] ref = reference(logits, 1, 7, 1, 0);
        assertTrue(ref[s.sampleWithUniform(logits, 0, 1000, params(1, 7, 1, 0), null, null, 0, u)] > 0);
        // id-order path: the highest id with a non-zero weight, even when the tail underflows to zero
        float[] tail = new float[8];
        Arrays.fill(tail, -1e4f);
        tail[0] = 0;
        tail[2] = 0;
        assertEquals(2, s.sampleWithUniform(tail, 0, 8, params(1, 0, 1, 0), null, null, 0, u));
        int t = s.sampleWithUniform(tail, 0, 8, params(1, 3, 1, 0), null, null, 0, u);
        assertTrue(t == 0 || t == 2, "drew " + t + ", whose weight underflows to 0");
    }

    @Test
    void topPAlwaysKeepsTopToken() {
        float[] logits = {1f, 5f, 2f, 4.9f};
        Sampler s = new Sampler();
        for (int seed = 0; seed < 200; seed++) {
            assertEquals(1, s.sample(logits, 4, params(1, 0, 0.01, 0).withSeed(seed), null, null, 0, 0));
        }
        // min-p of 1 keeps only the maximum
        for (int seed = 0; seed < 200; seed++) {
            assertEquals(1, s.sample(logits, 4, params(1, 0, 1, 1.0).withSeed(seed), null, null, 0, 0));
        }
    }

    @Test
    void greedyTiesGoToLowestId() {
        Sampler s = new Sampler();
        float[] logits = {1f, 5f, 3f, 5f, 5f};
        assertEquals(1, s.sample(logits, 5, SamplingParams.greedy(4), null, null, 0, 0));
        float[] allEqual = new float[32000];
        assertEquals(0, s.sample(allEqual, 32000, SamplingParams.greedy(4), null, null, 0, 9));
        // top-k ties also go to the lower id: only id 1 survives top-k 1
        for (int seed = 0; seed < 50; seed++) {
            assertEquals(1, s.sample(logits, 5, params(1, 1, 1, 0).withSeed(seed), null, null, 0, seed));
        }
    }

    @Test
    void greedyAppliesPenaltiesBeforeArgmax() {
        Sampler s = new Sampler();
        float[] logits = {4.0f, 3.9f, 1f};
        SamplingParams presence = new SamplingParams(4, 0, 0, 1, 0, 1, 0.5, 0, 0, List.of(), List.of(), 0, false);
        assertEquals(0, s.sample(logits, 3, presence, null, new int[0], 0, 0));
        assertEquals(1, s.sample(logits, 3, presence, null, new int[] {0}, 1, 1));
        SamplingParams rep = new SamplingParams(4, 0, 0, 1, 0, 1.1, 0, 0, 0, List.of(), List.of(), 0, false);
        assertEquals(1, s.sample(logits, 3, rep, new int[] {0, 2}, null, 0, 0));  // 4.0/1.1 < 3.9
        assertArrayEquals(new float[] {4.0f, 3.9f, 1f}, logits, "the caller's logits must not change");
    }

    @Test
    void repetitionPenaltyMatchesHuggingFace() {
        float[] l = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f};
        new Sampler().applyPenalties(l, 0, 6, penalties(2.0, 0, 0), new int[] {0, 1, 1, 5}, new int[] {2, 2}, 2);
        // seen once or many times, each token is penalised once; 0 stays 0
        assertArrayEquals(new float[] {1.0f, -2.0f, 0.25f, 3.0f, -2.0f, 0.0f}, l);
    }

    @Test
    void frequencyPenaltyCountsOccurrencesInOutputOnly() {
        float[] l = {2.0f, -1.0f, 0.5f, 3.0f};
        new Sampler().applyPenalties(l, 0, 4, penalties(1, 0, 0.5), new int[] {3, 3}, new int[] {1, 2, 2, 2, 9}, 4);
        assertArrayEquals(new float[] {2.0f, -1.5f, -1.0f, 3.0f}, l);  // the 5th element is beyond the count
    }

    @Test
    void presencePenaltyOncePerGeneratedToken() {
        float[] l = {2.0f, -1.0f, 0.5f, 3.0f};
        new Sampler().applyPenalties(l, 0, 4, penalties(1, 0.75, 0), new int[] {3}, new int[] {1, 2, 2, 2}, 4);
        assertArrayEquals(new float[] {2.0f, -1.75f, -0.25f, 3.0f}, l);
    }

    @Test
    void allPenaltiesTogetherInVllmOrder() {
        float[] row = {9f, 9f, 2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f, 9f};
        // repetition first (prompt ∪ output), then frequency, then presence
        new Sampler().applyPenalties(row, 2, 6, penalties(2.0, 0.25, 0.5), new int[] {0, 1, 1}, new int[] {1, 2, 2, 2}, 4);
        assertArrayEquals(new float[] {9f, 9f, 1.0f, -2.75f, -1.5f, 3.0f, -2.0f, 0.0f, 9f}, row);
    }

    @Test
    void penaltiesResetBetweenCalls() {
        Sampler s = new Sampler();
        float[] a = {1f, 1f, 1f};
        s.applyPenalties(a, 0, 3, penalties(1, 0, 1), null, new int[] {0, 0, 1}, 3);
        assertArrayEquals(new float[] {-1f, 0f, 1f}, a);
        float[] b = {1f, 1f, 1f};
        s.applyPenalties(b, 0, 3, penalties(1, 0, 1), null, new int[] {2}, 1);
        assertArrayEquals(new float[] {1f, 1f, 0f}, b, "counts of the previous call leaked");
    }

    @Test
    void sameSeedAndStepGiveSameTokenWhateverElseRan() {
        float[] logits = testLogits(3L, 32000, 2.0);
        SamplingParams p = params(1.1, 0, 0.9, 0).withSeed(42);
        Sampler fresh = new Sampler();
        int[] alone = new int[50];
        for (int step = 0; step < 50; step++) alone[step] = fresh.sample(logits, 32000, p, null, null, 0, step);
        // interleave other requests through the same instance (shared scratch) and replay backwards
        Sampler busy = new Sampler();
        float[] other = testLogits(4L, 32000, 2.0);
        for (int step = 49; step >= 0; step--) {
            busy.sample(other, 32000, params(0.5, 40, 1, 0.1).withSeed(step * 31L), null, new int[] {5, 6}, 2, step);
            assertEquals(alone[step], busy.sample(logits, 32000, p, null, null, 0, step), "step " + step);
        }
        assertEquals(Sampler.uniform(42, 7), Sampler.uniform(42, 7));
    }

    @Test
    void differentSeedsGiveDifferentStreams() {
        float[] logits = new float[VOCAB];  // uniform: every draw is informative
        Sampler s = new Sampler();
        int[] a = new int[100];
        int[] b = new int[100];
        int same = 0;
        for (int step = 0; step < 100; step++) {
            a[step] = s.sample(logits, VOCAB, params(1, 0, 1, 0).withSeed(1), null, null, 0, step);
            b[step] = s.sample(logits, VOCAB, params(1, 0, 1, 0).withSeed(2), null, null, 0, step);
            if (a[step] == b[step]) same++;
        }
        assertTrue(same < 20, "seeds 1 and 2 agree on " + same + " of 100 steps");
        assertNotEquals(Sampler.uniform(0, 0), Sampler.uniform(1, 0));
        assertNotEquals(Sampler.uniform(0, 0), Sampler.uniform(0, 1));
        // the stream of one seed over steps is not constant
        assertTrue(Arrays.stream(a).distinct().count() > 10);
    }

    @Test
    void uniformStaysInUnitInterval() {
        for (long seed = -5; seed < 5; seed++) {
            for (int step = 0; step < 1000; step++) {
                double u = Sampler.uniform(seed, step);
                assertTrue(u >= 0 && u < 1, "u = " + u);
            }
        }
    }

    @Test
    void logprobsComeFromRawLogSoftmax() {
        float[] row = {7f, 1f, 3f, 0.5f, 3f, -1f, 7f};
        int offset = 1;
        int vocab = 5;  // logits 1, 3, 0.5, 3, -1
        double lse = Math.log(Math.exp(1) + Math.exp(3) + Math.exp(0.5) + Math.exp(3) + Math.exp(-1));
        TokenLogprob lp = new Sampler().logprob(row, offset, vocab, 2, 3);
        assertEquals(2, lp.tokenId());
        assertEquals(0.5 - lse, lp.logprob(), 1e-6);
        assertEquals(List.of(1, 3, 0), lp.top().stream().map(TokenLogprob.Top::tokenId).toList());  // tie: lower id first
        assertEquals(3 - lse, lp.top().get(0).logprob(), 1e-6);
        assertEquals(1 - lse, lp.top().get(2).logprob(), 1e-6);
        assertTrue(new Sampler().logprob(row, offset, vocab, 0, 0).top().isEmpty());
        assertEquals(5, new Sampler().logprob(row, offset, vocab, 0, 20).top().size());
    }

    @Test
    void logprobTopNMatchesFullSortOnLargeVocabulary() {
        float[] logits = testLogits(11L, 32000, 3.0);
        logits[100] = logits[200] = 50f;  // a tie at the top
        TokenLogprob lp = new Sampler().logprob(logits, 0, 32000, 5, 20);
        double[] z = new double[32000];
        for (int i = 0; i < z.length; i++) z[i] = logits[i];
        Integer[] ids = order(z);
        for (int r = 0; r < 20; r++) assertEquals(ids[r], lp.top().get(r).tokenId(), "rank " + r);
        assertEquals(100, lp.top().get(0).tokenId());
    }

    @Test
    void rejectsBadInput() {
        Sampler s = new Sampler();
        float[] logits = {1f, 2f, Float.NaN};
        assertThrows(IllegalArgumentException.class, () -> s.sample(logits, 3, SamplingParams.defaults(), null, null, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> s.sample(new float[4], 5, SamplingParams.defaults(), null, null, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> s.sample(new float[4], 4, params(1, 0, 0, 0), null, null, 0, 0));
        assertThrows(IllegalArgumentException.class,
                () -> s.sample(new float[4], 4, penalties(1.2, 0, 0), new int[] {4}, null, 0, 0));
        float[] dead = {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY};
        assertThrows(IllegalArgumentException.class, () -> s.sample(dead, 2, SamplingParams.defaults(), null, null, 0, 0));
    }
}
