package gptq4j.backend.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import gptq4j.backend.Backend;
import gptq4j.backend.cpu.CpuBackend;
import gptq4j.loader.Checkpoint;
import gptq4j.model.MixtralConfig;
import gptq4j.model.MixtralModel;
import gptq4j.model.MixtralWeights;
import gptq4j.model.Step;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole Mixtral forward pass on the GPU against the golden references of the seven tiny GPTQ models:
 * last-position logits, the first token's top-5 log-probabilities (within 2e-2), greedy tokens up to the first
 * step whose reference margin is under 0.1 (prefill, then one-token decode steps through the paged cache),
 * prompt 0's logits at every position, and parity with the CPU backend.
 */
class CudaGoldenTest {
    static final int BLOCK = 16;

    static List<String> models() { return Fixtures.MODELS; }

    /** Logits of the last token after prefilling ids as one sequence (blocks 0..). */
    static float[] prefill(MixtralModel m, int[] ids, boolean allRows) {
        int T = ids.length, V = m.config().vocabSize();
        int[] pos = new int[T], slots = new int[T], seq = new int[T];
        int[] table = table(m);
        for (int t = 0; t < T; t++) {
            pos[t] = t;
            slots[t] = table[t / BLOCK] * BLOCK + t % BLOCK;
        }
        int[] rows = allRows ? java.util.stream.IntStream.range(0, T).toArray() : new int[]{T - 1};
        float[] logits = new float[rows.length * V];
        m.forward(new Step(T, ids, pos, slots, seq, 1, table, m.maxBlocksPerSeq(), rows.length, rows), logits, null);
        return logits;
    }

    static float[] decode(MixtralModel m, int token, int position) {
        int[] table = table(m);
        float[] logits = new float[m.config().vocabSize()];
        m.forward(new Step(1, new int[]{token}, new int[]{position},
                new int[]{table[position / BLOCK] * BLOCK + position % BLOCK}, new int[]{0}, 1, table,
                m.maxBlocksPerSeq(), 1, new int[]{0}), logits, null);
        return logits;
    }

    static int[] table(MixtralModel m) {
        int[] table = new int[m.maxBlocksPerSeq()];
        for (int b = 0; b < table.length; b++) table[b] = Math.min(b, m.cache().blocks() - 1);
        return table;
    }

    static double[] logSoftmax(float[] l, int off, int n) {
        double mx = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) mx = Math.max(mx, l[off + i]);
        double s = 0;
        for (int i = 0; i < n; i++) s += Math.exp(l[off + i] - mx);
        double lse = mx + Math.log(s);
        double[] r = new double[n];
        for (int i = 0; i < n; i++) r[i] = l[off + i] - lse;
        return r;
    }

    static int[] topK(double[] v, int k) {
        Integer[] idx = new Integer[v.length];
        for (int i = 0; i < v.length; i++) idx[i] = i;
        Arrays.sort(idx, (a, b) -> Double.compare(v[b], v[a]));
        int[] r = new int[k];
        for (int i = 0; i < k; i++) r[i] = idx[i];
        return r;
    }

    static int argmax(float[] l) {
        int b = 0;
        for (int i = 1; i < l.length; i++) if (l[i] > l[b]) b = i;
        return b;
    }

    @ParameterizedTest
    @MethodSource("models")
    void matchesGoldenReference(String name) {
        CudaBackend be = CudaTestSupport.backend();
        JsonNode ref = Fixtures.reference(name);
        float[] lastRef = Fixtures.tensor(name, "last_logits");
        float[] p0Ref = Fixtures.tensor(name, "p0.logits");
        List<String> failures = new ArrayList<>();
        double worstLogits = 0, worstLogprob = 0;
        try (Checkpoint ck = Checkpoint.open(Fixtures.model(name))) {
            MixtralConfig c = ck.config();
            int V = c.vocabSize();
            MixtralWeights w = MixtralWeights.load(ck, be);
            try (MixtralModel m = new MixtralModel(c, w, be, 1024, 8, 64, BLOCK)) {
                JsonNode ids = ref.get("input_ids");
                for (int p = 0; p < ids.size(); p++) {
                    int[] prompt = Fixtures.ints(ids.get(p));
                    float[] logits = prefill(m, prompt, false);
                    double err = Fixtures.relErr(logits, 0, lastRef, p * V, V);
                    worstLogits = Math.max(worstLogits, err);
                    if (err > 1e-2) failures.add("prompt " + p + ": last logits rel err " + err);
                    double[] mine = logSoftmax(logits, 0, V), theirs = logSoftmax(lastRef, p * V, V);
                    for (int[] top : new int[][]{topK(theirs, 5), topK(mine, 5)}) {
                        for (int id : top) {
                            double d = Math.abs(mine[id] - theirs[id]);
                            worstLogprob = Math.max(worstLogprob, d);
                            if (d > 2e-2) failures.add("prompt " + p + ": logprob of token " + id + " off by " + d);
                        }
                    }
                    JsonNode g = ref.get("greedy").get(p);
                    int[] want = Fixtures.ints(g.get("new_ids"));
                    JsonNode margin = g.get("top1_top2_margin");
                    int next = argmax(logits);
                    for (int i = 0; i < want.length; i++) {
                        if (margin.get(i).asDouble() < 0.1) break;        // a near-tie: either token is right
                        if (next != want[i]) {
                            failures.add("prompt " + p + ": greedy step " + i + " gave " + next + ", reference " + want[i]);
                            break;
                        }
                        if (i + 1 == want.length || want[i] == c.eosTokenId()) break;
                        next = argmax(decode(m, next, prompt.length + i));
                    }
                }
                int[] p0 = Fixtures.ints(ids.get(0));
                double e0 = Fixtures.relErr(prefill(m, p0, true), 0, p0Ref, 0, p0.length * V);
                worstLogits = Math.max(worstLogits, e0);
                if (e0 > 1e-2) failures.add("prompt 0 all-position logits rel err " + e0);
            }
        }
        CudaTestSupport.report("golden_logits_rel_err", worstLogits);
        CudaTestSupport.report("golden_logprob_abs_err", worstLogprob);
        CudaTestSupport.report("golden_forward_failures", failures.size());
        System.out.println("golden " + name + ": logits rel err " + worstLogits + ", logprob err " + worstLogprob
                + (failures.isEmpty() ? ", ok" : ", FAILED " + failures));
        assertTrue(failures.isEmpty(), name + ": " + failures);
    }

    /** GPU logits against the CPU backend's on every prompt of one model. */
    @ParameterizedTest
    @MethodSource("models")
    void parityWithCpu(String name) {
        CudaBackend be = CudaTestSupport.backend();
        JsonNode ref = Fixtures.reference(name);
        double worst = 0;
        try (Checkpoint ck = Checkpoint.open(Fixtures.model(name)); CpuBackend cpu = new CpuBackend(Runtime.getRuntime().availableProcessors(), CpuBackend.vectorUnavailable() == null)) {
            MixtralConfig c = ck.config();
            MixtralWeights wg = MixtralWeights.load(ck, be), wc = MixtralWeights.load(ck, cpu);
            try (MixtralModel mg = new MixtralModel(c, wg, be, 1024, 8, 64, BLOCK);
                 MixtralModel mc = new MixtralModel(c, wc, cpu, 1024, 8, 64, BLOCK)) {
                JsonNode ids = ref.get("input_ids");
                for (int p = 0; p < ids.size(); p++) {
                    int[] prompt = Fixtures.ints(ids.get(p));
                    float[] g = prefill(mg, prompt, false), cl = prefill(mc, prompt, false);
                    worst = Math.max(worst, Fixtures.relErr(g, 0, cl, 0, c.vocabSize()));
                }
            }
        }
        CudaTestSupport.report("parity_rel_err", worst);
        assertTrue(worst < 2e-2, name + ": GPU vs CPU logits rel err " + worst);
    }

    /** Several sequences in one step give the same bits as each alone (prefill batch and a decode batch). */
    @Test
    void batchedEqualsUnbatched() {
        CudaBackend be = CudaTestSupport.backend();
        String name = "tiny-mixtral-gptq-4bit-128g-actorder";
        JsonNode ids = Fixtures.reference(name).get("input_ids");
        try (Checkpoint ck = Checkpoint.open(Fixtures.model(name))) {
            MixtralConfig c = ck.config();
            int V = c.vocabSize();
            MixtralWeights w = MixtralWeights.load(ck, be);
            try (MixtralModel m = new MixtralModel(c, w, be, 1024, 8, 256, BLOCK)) {
                int S = 4;
                int[][] prompts = new int[S][];
                float[][] alone = new float[S][];
                float[][] decodeAlone = new float[S][];
                for (int s = 0; s < S; s++) {
                    prompts[s] = Fixtures.ints(ids.get(s));
                    alone[s] = prefill(m, prompts[s], false);
                    decodeAlone[s] = decode(m, argmax(alone[s]), prompts[s].length);
                }
                // all four prompts in one step, sequence s in blocks [s*64, s*64+64)
                int mb = m.maxBlocksPerSeq();
                int[] tables = new int[S * mb];
                int T = 0;
                for (int s = 0; s < S; s++) {
                    for (int b = 0; b < mb; b++) tables[s * mb + b] = s * 64 + Math.min(b, 63);
                    T += prompts[s].length;
                }
                int[] tok = new int[T], pos = new int[T], slots = new int[T], seq = new int[T], rows = new int[S];
                int t = 0;
                for (int s = 0; s < S; s++) {
                    for (int i = 0; i < prompts[s].length; i++, t++) {
                        tok[t] = prompts[s][i];
                        pos[t] = i;
                        seq[t] = s;
                        slots[t] = tables[s * mb + i / BLOCK] * BLOCK + i % BLOCK;
                    }
                    rows[s] = t - 1;
                }
                float[] batched = new float[S * V];
                m.forward(new Step(T, tok, pos, slots, seq, S, tables, mb, S, rows), batched, null);
                for (int s = 0; s < S; s++) {
                    assertArrayEquals(alone[s], Arrays.copyOfRange(batched, s * V, (s + 1) * V), "prefill logits of sequence " + s);
                }
                // one decode step for all four
                int[] dTok = new int[S], dPos = new int[S], dSlot = new int[S], dSeq = new int[S], dRows = new int[S];
                for (int s = 0; s < S; s++) {
                    dTok[s] = argmax(alone[s]);
                    dPos[s] = prompts[s].length;
                    dSlot[s] = tables[s * mb + dPos[s] / BLOCK] * BLOCK + dPos[s] % BLOCK;
                    dSeq[s] = s;
                    dRows[s] = s;
                }
                float[] dec = new float[S * V];
                m.forward(new Step(S, dTok, dPos, dSlot, dSeq, S, tables, mb, S, dRows), dec, null);
                for (int s = 0; s < S; s++) {
                    assertArrayEquals(decodeAlone[s], Arrays.copyOfRange(dec, s * V, (s + 1) * V), "decode logits of sequence " + s);
                }
            }
        }
        CudaTestSupport.report("batch_invariant", 1);
    }
}
