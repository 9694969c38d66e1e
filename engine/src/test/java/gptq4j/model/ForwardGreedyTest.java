package gptq4j.model;

import gptq4j.backend.Backend;
import gptq4j.backend.cpu.CpuBackend;
import gptq4j.loader.Checkpoint;
import gptq4j.runtime.Sampler;
import gptq4j.runtime.SamplingParams;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * MixtralModel.forwardGreedy against forward: on the same steps (a prefill of sequences of different lengths, then
 * decode steps), its tokens are the sampler's greedy choices from forward's logits, and readLogits returns those
 * logits bit for bit. Each step runs in the order forward, forwardGreedy, forwardGreedy, forward (the same keys and
 * values rewritten), so a backend that replays recorded steps replays each kind at least once.
 */
public class ForwardGreedyTest {

    static List<String> models() { return Fixtures.MODELS; }

    @ParameterizedTest
    @MethodSource("models")
    void greedyTokensAreTheSamplersChoiceOnTheCpu(String name) {
        try (Checkpoint ck = Checkpoint.open(Fixtures.model(name)); CpuBackend be = new CpuBackend(2, true)) {
            check(ck, be, new Random());
        }
    }

    /** The comparison on backend be (the CUDA test runs it too). */
    public static void check(Checkpoint ck, Backend be, Random r) {
        MixtralConfig c = ck.config();
        MixtralWeights w = MixtralWeights.load(ck, be);
        int S = 3, bs = 16, V = c.vocabSize();
        try (MixtralModel m = new MixtralModel(c, w, be, 128, 4, 64, bs)) {
            int mb = m.maxBlocksPerSeq();
            int[] len = {5 + r.nextInt(20), 1 + r.nextInt(8), 20 + r.nextInt(30)};
            int[] tables = new int[S * mb];
            for (int s = 0; s < S; s++) for (int b = 0; b < 4; b++) tables[s * mb + b] = s * 4 + b;
            int T = Arrays.stream(len).sum();
            int[] tok = new int[T], pos = new int[T], slot = new int[T], seq = new int[T], rows = new int[S];
            for (int s = 0, t = 0; s < S; s++) {
                for (int p = 0; p < len[s]; p++, t++) {
                    tok[t] = 3 + r.nextInt(V - 3);
                    pos[t] = p;
                    slot[t] = tables[s * mb + p / bs] * bs + p % bs;
                    seq[t] = s;
                }
                rows[s] = t - 1;
            }
            compare(m, new Step(T, tok, pos, slot, seq, S, tables, mb, S, rows), "prefill");
            for (int step = 0; step < 3; step++) {
                int[] dt = new int[S], dp = new int[S], ds = new int[S], dq = new int[S], dr = new int[S];
                for (int s = 0; s < S; s++) {
                    int p = len[s] + step;
                    dt[s] = 3 + r.nextInt(V - 3);
                    dp[s] = p;
                    ds[s] = tables[s * mb + p / bs] * bs + p % bs;
                    dq[s] = s;
                    dr[s] = s;
                }
                compare(m, new Step(S, dt, dp, ds, dq, S, tables, mb, S, dr), "decode step " + step);
            }
            Step tooMany = new Step(5, new int[5], new int[5], new int[5], new int[5], 1, new int[mb], mb, 5,
                    new int[] {0, 1, 2, 3, 4});
            assertThrows(IllegalArgumentException.class, () -> m.forwardGreedy(tooMany, new int[5]));
        }
    }

    private static void compare(MixtralModel m, Step step, String what) {
        int R = step.R(), V = m.config().vocabSize();
        float[] logits = new float[R * V], again = new float[R * V], row = new float[V + 7];
        m.forward(step, logits, null);
        int[] want = new int[R];
        Sampler sampler = new Sampler();
        for (int i = 0; i < R; i++) want[i] = sampler.sample(logits, i * V, V, SamplingParams.greedy(1), null, null, 0, 0);
        for (int k = 0; k < 2; k++) {
            int[] got = new int[R];
            m.forwardGreedy(step, got);
            assertArrayEquals(want, got, what + ": greedy tokens, run " + k);
            for (int i = 0; i < R; i++) {
                m.readLogits(i, row, 7);
                assertArrayEquals(Arrays.copyOfRange(logits, i * V, (i + 1) * V), Arrays.copyOfRange(row, 7, V + 7),
                        what + ": logit row " + i + " after forwardGreedy");
            }
        }
        m.forward(step, again, null);
        assertArrayEquals(logits, again, what + ": forward after forwardGreedy");
    }
}
