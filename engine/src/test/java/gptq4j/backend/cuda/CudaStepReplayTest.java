package gptq4j.backend.cuda;

import gptq4j.backend.Buf;
import gptq4j.loader.Checkpoint;
import gptq4j.model.MixtralConfig;
import gptq4j.model.MixtralModel;
import gptq4j.model.MixtralWeights;
import gptq4j.model.Step;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Step replay (CudaDriver.STEP_REPLAY, Backend.replayStep): the same prefill and decode steps, with batch sizes that
 * change and come back, give bit for bit the logits of a run without replay, on a second model instance of the same
 * weights. The first step of a signature records, the third replays, and an allocation between two steps (a new
 * generation) makes the next step record again instead of replaying.
 */
class CudaStepReplayTest {
    static final int BLOCK = 16, SEQS = 3, STEPS = 14, ALLOC_AFTER = 8;
    /** Sequences in each decode step: shapes that change and come back. */
    static final int[] BATCH = {3, 3, 3, 3, 2, 2, 2, 3, 3, 3, 3, 2, 3, 3};

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral-gptq-4bit-128g-actorder", "tiny-mixtral-gptq-3bit-actorder",
            "tiny-mixtral-gptq-8bit-128g-actorder"})
    void replayedStepsEqualRecordedOnes(String name) {
        CudaBackend be = CudaTestSupport.backend();
        try (Checkpoint ck = Checkpoint.open(Fixtures.model(name))) {
            MixtralConfig c = ck.config();
            MixtralWeights w = MixtralWeights.load(ck, be);
            long seed = new Random().nextLong();
            List<float[]> plain, replayed;
            long[] perStep = new long[STEPS];
            try {
                be.stepReplay(false);
                long r0 = be.launchStats()[4];
                plain = run(be, c, w, seed, null);
                assertEquals(r0, be.launchStats()[4], "no step is replayed with replay off");
                be.stepReplay(true);
                replayed = run(be, c, w, seed, perStep);
            } finally {
                be.stepReplay(CudaDriver.STEP_REPLAY);
            }
            for (int i = 0; i < plain.size(); i++) {
                assertArrayEquals(plain.get(i), replayed.get(i), name + " seed " + seed + ": step " + i + "'s logits");
            }
            // the first step of a batch size on a model records; so does the first after an allocation (a new
            // generation). The second may replay (its graph may exist already: a freed model's buffers can come back
            // at the same addresses, and a graph is a function of its launches); the third must.
            int[] recorded = {0, 4, ALLOC_AFTER + 1}, replayedAt = {2, 3, 6, ALLOC_AFTER + 2};
            for (int k : recorded) assertEquals(0, perStep[k], name + ": decode step " + k + " (batch " + BATCH[k] + ") replayed");
            for (int k : replayedAt) assertEquals(1, perStep[k], name + ": decode step " + k + " (batch " + BATCH[k] + ") not replayed");
        }
    }

    /**
     * Prefills SEQS random prompts, then STEPS greedy decode steps of BATCH[k] sequences on a new model; an
     * allocation and a free after decode step ALLOC_AFTER. Returns every step's logits; perStep (not null) gets the
     * replays counted in each decode step.
     */
    static List<float[]> run(CudaBackend be, MixtralConfig c, MixtralWeights w, long seed, long[] perStep) {
        Random r = new Random(seed);
        int V = c.vocabSize();
        List<float[]> out = new ArrayList<>();
        try (MixtralModel m = new MixtralModel(c, w, be, 256, 8, 64, BLOCK)) {
            int mb = m.maxBlocksPerSeq();
            int[] tables = new int[SEQS * mb];
            for (int s = 0; s < SEQS; s++) for (int b = 0; b < mb; b++) tables[s * mb + b] = Math.min(s * 16 + b, 63);
            int[] len = new int[SEQS], last = new int[SEQS];
            List<int[]> prompts = new ArrayList<>();
            int T = 0;
            for (int s = 0; s < SEQS; s++) {
                prompts.add(r.ints(5 + r.nextInt(9), 3, V).toArray());
                T += prompts.get(s).length;
            }
            int[] tok = new int[T], pos = new int[T], slot = new int[T], seq = new int[T], rows = new int[SEQS];
            for (int s = 0, t = 0; s < SEQS; s++) {
                for (int i = 0; i < prompts.get(s).length; i++, t++) {
                    tok[t] = prompts.get(s)[i];
                    pos[t] = i;
                    slot[t] = tables[s * mb + i / BLOCK] * BLOCK + i % BLOCK;
                    seq[t] = s;
                }
                len[s] = prompts.get(s).length;
                rows[s] = t - 1;
            }
            float[] logits = new float[SEQS * V];
            m.forward(new Step(T, tok, pos, slot, seq, SEQS, tables, mb, SEQS, rows), logits, null);
            out.add(logits.clone());
            for (int s = 0; s < SEQS; s++) last[s] = CudaMixtralShapeParityTest.argmax(logits, s * V, V);
            for (int k = 0; k < STEPS; k++) {
                int B = BATCH[k];
                int[] dt = new int[B], dp = new int[B], ds = new int[B], dq = new int[B], dr = new int[B];
                int[] dtab = java.util.Arrays.copyOf(tables, B * mb);   // the first B sequences' block tables
                for (int s = 0; s < B; s++) {
                    dt[s] = last[s];
                    dp[s] = len[s]++;
                    ds[s] = tables[s * mb + dp[s] / BLOCK] * BLOCK + dp[s] % BLOCK;
                    dq[s] = s;
                    dr[s] = s;
                }
                float[] lg = new float[B * V];
                long before = be.launchStats()[4];
                m.forward(new Step(B, dt, dp, ds, dq, B, dtab, mb, B, dr), lg, null);
                if (perStep != null) perStep[k] = be.launchStats()[4] - before;
                out.add(lg);
                for (int s = 0; s < B; s++) last[s] = CudaMixtralShapeParityTest.argmax(lg, s * V, V);
                if (k == ALLOC_AFTER) {                   // a new generation: the next step records again
                    Buf b = be.allocFloats(1024);
                    be.free(b);
                }
            }
        }
        return out;
    }
}
