package gptq4j.runtime;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Chooses the next token from one row of logits, with the semantics of vLLM and Hugging Face:
 *
 * <ol>
 *   <li>penalties on the raw logits: repetition (tokens of prompt and output; positive logits divided, the
 *       others multiplied), then frequency (per occurrence in the output), then presence (once per token in
 *       the output);</li>
 *   <li>temperature 0 (below {@link #GREEDY_TEMPERATURE}): argmax, ties to the lowest id;</li>
 *   <li>otherwise logits ÷ temperature, then top-k, then top-p over the renormalised top-k distribution
 *       (smallest set whose cumulative probability reaches p; the top token always stays), then min-p
 *       (drop probabilities below min_p × the largest);</li>
 *   <li>one uniform draw that depends only on (request seed, step), inverted through the cumulative
 *       distribution of the kept tokens.</li>
 * </ol>
 *
 * The logits array is never modified. Nothing is sorted: top-k and top-p are found by quickselect (the
 * nucleus by a quickselect that sums the weights of each partition), in expected linear time. Scratch arrays grow to the vocabulary once and are
 * reused, so an instance is not thread-safe: keep one per worker thread.
 */
public final class Sampler {

    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;
    /** Temperatures below this are treated as greedy, as vLLM does (dividing by them overflows float). */
    public static final double GREEDY_TEMPERATURE = 1e-5;
    /** Nucleus ranges this small are finished by sorting. */
    private static final int NUCLEUS_SORT = 32;

    private float[] work = new float[0];      // [vocab] penalised, tempered logits
    private double[] weight = new double[0];  // [vocab] exp(logit - max), filled only for candidates
    private long[] keys = new long[0];        // [vocab] (descending logit, ascending id) sort keys
    private int[] seenStamp = new int[0];     // [vocab] == stamp when the token was seen in this call
    private int[] outCount = new int[0];      // [vocab] occurrences in the output; reset after each call
    private int[] touched = new int[0];       // [vocab] distinct tokens of prompt ∪ output, this call
    private int stamp;

    /** A uniform double in [0, 1) that depends only on the request seed and the step (a SplitMix64 hash). */
    public static double uniform(long seed, int step) {
        long z = mix64(mix64(seed ^ 0x5851F42D4C957F2DL) + GOLDEN_GAMMA * ((long) step + 1));
        return (z >>> 11) * 0x1.0p-53;
    }

    private static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** {@link #sample(float[], int, int, SamplingParams, int[], int[], int, int)} for logits starting at index 0. */
    public int sample(float[] logits, int vocab, SamplingParams p, int[] promptIds, int[] generated,
                      int generatedCount, int step) {
        return sample(logits, 0, vocab, p, promptIds, generated, generatedCount, step);
    }

    /**
     * The next token of one sequence.
     *
     * @param logits          holds this sequence's logits at {@code [offset, offset + vocab)}; not modified
     * @param promptIds       the prompt token ids (for the repetition penalty); may be null
     * @param generated       the tokens generated so far in {@code [0, generatedCount)}; may be null when the count is 0
     * @param step            index of the token being generated (0 for the first); with the seed it fixes the draw
     */
    public int sample(float[] logits, int offset, int vocab, SamplingParams p, int[] promptIds, int[] generated,
                      int generatedCount, int step) {
        return sampleWithUniform(logits, offset, vocab, p, promptIds, generated, generatedCount,
                p.temperature() < GREEDY_TEMPERATURE ? 0 : uniform(p.seed(), step));
    }

    /** The sampling path with the uniform draw given; {@code u} in [0, 1). */
    int sampleWithUniform(float[] logits, int offset, int vocab, SamplingParams p, int[] promptIds,
                          int[] generated, int generatedCount, double u) {
        String bad = p.validate();
        if (bad != null) throw new IllegalArgumentException("sampling parameters: " + bad);
        checkRow(logits, offset, vocab);
        ensure(vocab);
        float[] x = work;
        System.arraycopy(logits, offset, x, 0, vocab);
        applyPenaltiesInPlace(x, vocab, p, promptIds, generated, generatedCount);

        if (p.temperature() < GREEDY_TEMPERATURE) return argmax(x, vocab);

        float max = Float.NEGATIVE_INFINITY;
        double t = p.temperature();
        for (int i = 0; i < vocab; i++) {
            float v = (float) (x[i] / t);
            x[i] = v;
            if (v > max) max = v;
        }
        if (max == Float.NEGATIVE_INFINITY) {
            throw new IllegalArgumentException("every logit is -infinity after penalties; nothing can be sampled");
        }
        boolean topK = p.topK() > 0 && p.topK() < vocab;
        boolean topP = p.topP() < 1;
        if (topK || topP) return sampleSelected(x, vocab, max, p, topK, topP, u);
        return sampleUnsorted(x, vocab, max, p.minP(), u);
    }

    /** No top-k or top-p: one pass for the weights, one for the draw, in id order. */
    private int sampleUnsorted(float[] x, int vocab, float max, double minP, double u) {
        double[] w = weight;
        double total = 0;
        for (int i = 0; i < vocab; i++) {
            double e = Math.exp(x[i] - (double) max);
            if (e < minP) e = 0;  // min-p: the largest weight is exp(0) = 1
            w[i] = e;
            total += e;
        }
        double r = u * total;
        double cum = 0;
        int last = -1;
        for (int i = 0; i < vocab; i++) {
            double e = w[i];
            if (e == 0) continue;
            cum += e;
            last = i;
            if (cum > r) return i;
        }
        return last;  // u * total rounded up to the full sum
    }

    /**
     * Top-k and/or top-p by selection, without sorting: the kept tokens end up in {@code keys[0, n)} in an order
     * fixed by the logits and parameters alone, and the draw walks them in that order.
     */
    private int sampleSelected(float[] x, int vocab, float max, SamplingParams p, boolean topK, boolean topP, double u) {
        long[] k = keys;
        int n = filterSelected(x, vocab, max, p, topK, topP);
        double[] w = weight;
        double total = 0;
        for (int i = 0; i < n; i++) total += w[(int) k[i]];
        double r = u * total;
        double cum = 0;
        int last = (int) k[0];
        for (int i = 0; i < n; i++) {
            int id = (int) k[i];
            double e = w[id];
            if (e == 0) continue;
            cum += e;
            last = id;
            if (cum > r) return id;
        }
        return last;  // u * total rounded up to the full sum
    }

    /** Leaves the kept tokens' keys in {@code keys[0, n)} and their weights in {@code weight}; returns n. */
    private int filterSelected(float[] x, int vocab, float max, SamplingParams p, boolean topK, boolean topP) {
        long[] k = keys;
        double[] w = weight;
        for (int i = 0; i < vocab; i++) k[i] = sortKey(x[i], i);
        int n = vocab;
        if (topK) {
            n = p.topK();
            select(k, 0, vocab, n);
        }
        double z = 0;
        for (int i = 0; i < n; i++) {
            int id = (int) k[i];
            double e = Math.exp(x[id] - (double) max);
            w[id] = e;
            z += e;
        }
        if (topP) n = nucleus(k, w, n, p.topP() * z);
        double minP = p.minP();
        if (minP > 0) {  // the largest weight is exp(0) = 1 and always passes
            int m = 0;
            for (int i = 0; i < n; i++) {
                if (w[(int) k[i]] >= minP) k[m++] = k[i];
            }
            n = m;
        }
        return n;
    }

    /**
     * The nucleus by quickselect: rearranges {@code k[0, n)} so that its smallest prefix in key order (best
     * tokens first) whose weights reach {@code target} comes first, and returns that prefix's length. Expected
     * linear time; only ranges of {@link #NUCLEUS_SORT} keys or fewer are sorted.
     */
    private static int nucleus(long[] k, double[] w, int n, double target) {
        int lo = 0;
        int hi = n;
        double acc = 0;  // weight of k[0, lo), all kept
        while (hi - lo > NUCLEUS_SORT) {
            int mid = (lo + hi) >>> 1;
            int last = hi - 1;
            // median of three to k[last], then Lomuto partition: k[lo, m) < pivot < k(m, hi)
            if (k[mid] < k[lo]) swap(k, mid, lo);
            if (k[last] < k[lo]) swap(k, last, lo);
            if (k[mid] < k[last]) swap(k, mid, last);
            long pivot = k[last];
            int m = lo;
            double better = 0;
            for (int i = lo; i < last; i++) {
                if (k[i] < pivot) {
                    better += w[(int) k[i]];
                    swap(k, i, m++);
                }
            }
            swap(k, m, last);
            if (acc + better >= target) {
                hi = m;
            } else {
                acc += better + w[(int) k[m]];
                if (acc >= target) return m + 1;
                lo = m + 1;
            }
        }
        Arrays.sort(k, lo, hi);
        for (int i = lo; i < hi; i++) {
            acc += w[(int) k[i]];
            if (acc >= target) return i + 1;
        }
        return Math.max(hi, 1);  // rounding kept the sum just short of target: keep everything up to hi
    }

    /** The tokens the filters keep, ascending (for tests); empty for greedy. */
    int[] keptTokens(float[] logits, int vocab, SamplingParams p) {
        checkRow(logits, 0, vocab);
        ensure(vocab);
        float[] x = work;
        System.arraycopy(logits, 0, x, 0, vocab);
        if (p.temperature() < GREEDY_TEMPERATURE) return new int[0];
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            x[i] = (float) (x[i] / p.temperature());
            m = Math.max(m, x[i]);
        }
        float max = m;
        int n;
        int[] out;
        if ((p.topK() > 0 && p.topK() < vocab) || p.topP() < 1) {
            n = filterSelected(x, vocab, max, p, p.topK() > 0 && p.topK() < vocab, p.topP() < 1);
            out = new int[n];
            for (int i = 0; i < n; i++) out[i] = (int) keys[i];
        } else {
            out = IntStream.range(0, vocab).filter(i -> Math.exp(x[i] - (double) max) >= p.minP()).toArray();
        }
        Arrays.sort(out);
        return out;
    }

    /**
     * Applies repetition, frequency and presence penalties in place to {@code logits[offset, offset + vocab)},
     * as {@link #sample} does before choosing.
     */
    public void applyPenalties(float[] logits, int offset, int vocab, SamplingParams p, int[] promptIds,
                               int[] generated, int generatedCount) {
        checkRow(logits, offset, vocab);
        ensure(vocab);
        System.arraycopy(logits, offset, work, 0, vocab);
        applyPenaltiesInPlace(work, vocab, p, promptIds, generated, generatedCount);
        System.arraycopy(work, 0, logits, offset, vocab);
    }

    private void applyPenaltiesInPlace(float[] x, int vocab, SamplingParams p, int[] promptIds, int[] generated,
                                       int generatedCount) {
        double rep = p.repetitionPenalty();
        double pres = p.presencePenalty();
        double freq = p.frequencyPenalty();
        boolean repOn = rep != 1;
        if (!repOn && pres == 0 && freq == 0) return;
        if (generatedCount < 0 || (generatedCount > 0 && (generated == null || generated.length < generatedCount))) {
            throw new IllegalArgumentException("generatedCount " + generatedCount + " exceeds the generated array ("
                    + (generated == null ? "null" : generated.length) + ")");
        }
        if (++stamp == Integer.MAX_VALUE) {
            Arrays.fill(seenStamp, 0);
            stamp = 1;
        }
        int nTouched = 0;
        if (repOn && promptIds != null) {
            for (int t : promptIds) {
                checkId(t, vocab, "prompt");
                if (seenStamp[t] != stamp) {
                    seenStamp[t] = stamp;
                    touched[nTouched++] = t;
                }
            }
        }
        for (int i = 0; i < generatedCount; i++) {
            int t = generated[i];
            checkId(t, vocab, "generated");
            outCount[t]++;
            if (seenStamp[t] != stamp) {
                seenStamp[t] = stamp;
                touched[nTouched++] = t;
            }
        }
        for (int j = 0; j < nTouched; j++) {
            int t = touched[j];
            float v = x[t];
            if (repOn) v = v > 0 ? (float) (v / rep) : (float) (v * rep);
            int c = outCount[t];
            if (c > 0) {
                v = (float) (v - freq * c);
                v = (float) (v - pres);
                outCount[t] = 0;
            }
            x[t] = v;
        }
    }

    /**
     * The log-probability of {@code tokenId} and the {@code topN} most likely tokens (ties to the lowest id),
     * from the log-softmax of the raw logits, before penalties, temperature and filters (as vLLM reports them).
     */
    public TokenLogprob logprob(float[] logits, int offset, int vocab, int tokenId, int topN) {
        checkRow(logits, offset, vocab);
        checkId(tokenId, vocab, "sampled");
        if (topN < 0) throw new IllegalArgumentException("topN must be ≥ 0, got " + topN);
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) max = Math.max(max, logits[offset + i]);
        double sum = 0;
        for (int i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i] - max);
        double lse = max + Math.log(sum);

        int n = Math.min(topN, vocab);
        int[] best = new int[n];   // ids, best first
        int filled = 0;
        for (int i = 0; i < vocab && n > 0; i++) {
            float v = logits[offset + i];
            if (filled == n && !(v > logits[offset + best[n - 1]])) continue;  // ids ascend: ties keep the earlier
            int pos = filled == n ? n - 1 : filled++;
            while (pos > 0 && v > logits[offset + best[pos - 1]]) {
                best[pos] = best[pos - 1];
                pos--;
            }
            best[pos] = i;
        }
        List<TokenLogprob.Top> top = new ArrayList<>(n);
        for (int id : best) top.add(new TokenLogprob.Top(id, logits[offset + id] - lse));
        return new TokenLogprob(tokenId, logits[offset + tokenId] - lse, List.copyOf(top));
    }

    /** Argmax with ties to the lowest id. */
    private static int argmax(float[] x, int vocab) {
        int best = 0;
        float bv = x[0];
        for (int i = 1; i < vocab; i++) {
            if (x[i] > bv) {
                bv = x[i];
                best = i;
            }
        }
        return best;
    }

    /**
     * A key whose ascending order is descending logit, then ascending id: the float's order-preserving bits
     * negated in the high half, the id in the low half.
     */
    private static long sortKey(float v, int id) {
        int bits = Float.floatToIntBits(v + 0.0f);  // -0 → +0
        int ordered = bits ^ ((bits >> 31) & 0x7fffffff);
        return ((long) ~ordered << 32) | id;
    }

    /**
     * Moves the {@code count} smallest keys of {@code a[from, to)} into {@code a[from, from + count)}, in any
     * order (Hoare quickselect, median-of-three pivots; keys are distinct).
     */
    private static void select(long[] a, int from, int to, int count) {
        int lo = from;
        int hi = to - 1;
        int target = from + count - 1;  // the element of rank count must end at this index
        if (count <= 0 || count >= to - from) return;
        int budget = 2 * (32 - Integer.numberOfLeadingZeros(to - from)) + 8;
        while (hi > lo) {
            if (budget-- == 0) {  // degenerate pivots: finish with a sort of what is left
                Arrays.sort(a, lo, hi + 1);
                return;
            }
            int mid = (lo + hi) >>> 1;
            if (a[mid] < a[lo]) swap(a, mid, lo);
            if (a[hi] < a[lo]) swap(a, hi, lo);
            if (a[hi] < a[mid]) swap(a, hi, mid);
            long pivot = a[mid];
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (a[i] < pivot) i++;
                while (a[j] > pivot) j--;
                if (i <= j) {
                    swap(a, i, j);
                    i++;
                    j--;
                }
            }
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else return;
        }
    }

    private static void swap(long[] a, int i, int j) {
        long t = a[i];
        a[i] = a[j];
        a[j] = t;
    }

    private static void checkRow(float[] logits, int offset, int vocab) {
        if (vocab <= 0) throw new IllegalArgumentException("vocab must be > 0, got " + vocab);
        if (offset < 0 || (long) offset + vocab > logits.length) {
            throw new IllegalArgumentException("logits row [" + offset + ", " + ((long) offset + vocab)
                    + ") lies outside the array of length " + logits.length);
        }
        for (int i = offset, end = offset + vocab; i < end; i++) {
            float v = logits[i];
            if (Float.isNaN(v) || v == Float.POSITIVE_INFINITY) {
                throw new IllegalArgumentException("logit of token " + (i - offset) + " is " + v
                        + "; the forward pass produced invalid values");
            }
        }
    }

    private static void checkId(int id, int vocab, String what) {
        if (id < 0 || id >= vocab) {
            throw new IllegalArgumentException(what + " token id " + id + " is outside the vocabulary [0, " + vocab + ")");
        }
    }

    private void ensure(int vocab) {
        if (work.length >= vocab) return;
        work = new float[vocab];
        weight = new double[vocab];
        keys = new long[vocab];
        seenStamp = new int[vocab];
        outCount = new int[vocab];
        touched = new int[vocab];
        stamp = 0;
    }
}
