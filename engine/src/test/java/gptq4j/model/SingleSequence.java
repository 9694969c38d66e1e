package gptq4j.model;

import gptq4j.backend.Backend;

/** Test helper: runs one sequence through a model, prompt in one step, with a trivial block table. */
public final class SingleSequence {
    private SingleSequence() { }

    /** Logits [n][vocab] for every prompt position (all rows requested). */
    public static float[] prefill(MixtralModel m, int[] ids, Probe probe) {
        int T = ids.length, bs = m.cache().blockSize();
        int[] pos = new int[T], slots = new int[T], seq = new int[T], rows = new int[T];
        int[] table = new int[m.maxBlocksPerSeq()];
        for (int b = 0; b < table.length && b < m.cache().blocks(); b++) table[b] = b;
        for (int t = 0; t < T; t++) {
            pos[t] = t;
            slots[t] = table[t / bs] * bs + t % bs;
            rows[t] = t;
        }
        float[] logits = new float[T * m.config().vocabSize()];
        m.forward(new Step(T, ids, pos, slots, seq, 1, table, m.maxBlocksPerSeq(), T, rows), logits, probe);
        return logits;
    }

    public static Backend backend(MixtralModel m) { return m.backend(); }
}
