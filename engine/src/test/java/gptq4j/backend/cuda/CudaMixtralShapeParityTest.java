package gptq4j.backend.cuda;

import gptq4j.backend.cpu.CpuBackend;
import gptq4j.loader.Checkpoint;
import gptq4j.loader.CheckpointSynthesizer;
import gptq4j.model.MixtralConfig;
import gptq4j.model.MixtralModel;
import gptq4j.model.MixtralWeights;
import gptq4j.model.Shapes;
import gptq4j.model.Step;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPU against CPU logits on a synthetic checkpoint with Mixtral's real widths (hidden 4096, 32 heads of 128,
 * 8 KV heads, 8 experts of 14336, 2 layers, 4-bit group 128 act order): a prefill of 1,000 tokens, and 64
 * decode steps at batch 32 (both backends fed the CPU's greedy tokens). Sizes: -Dgptq4j.parity.prefill,
 * -Dgptq4j.parity.batch, -Dgptq4j.parity.steps.
 */
class CudaMixtralShapeParityTest {
    static final int BLOCK = 16, PROMPT = 16;

    @Test
    void gpuMatchesCpuAtMixtralShape() throws IOException {
        CudaBackend be = CudaTestSupport.backend();
        int prefill = Integer.getInteger("gptq4j.parity.prefill", 1000);
        int batch = Integer.getInteger("gptq4j.parity.batch", 32);
        int steps = Integer.getInteger("gptq4j.parity.steps", 64);
        Path dir = Files.createTempDirectory("gptq4j-mixtral-2layer");
        try {
            long t0 = System.nanoTime();
            CheckpointSynthesizer.write(new CheckpointSynthesizer.Options(Shapes.named("mixtral-2layer"), 4, 128, true,
                    false, false, 0, 11L, null), dir);
            System.out.printf("mixtral-2layer checkpoint written in %.1f s%n", (System.nanoTime() - t0) / 1e9);
            int nproc = Runtime.getRuntime().availableProcessors();
            try (Checkpoint ck = Checkpoint.open(dir);
                 CpuBackend cpu = new CpuBackend(nproc, CpuBackend.vectorUnavailable() == null)) {
                MixtralConfig c = ck.config();
                int V = c.vocabSize();
                MixtralWeights wg = MixtralWeights.load(ck, be), wc = MixtralWeights.load(ck, cpu);
                int perSeq = (PROMPT + steps + BLOCK - 1) / BLOCK + 1;
                int blocks = Math.max(prefill / BLOCK + 2, batch * perSeq);
                int maxTokens = Math.max(prefill, batch * PROMPT);
                try (MixtralModel mg = new MixtralModel(c, wg, be, maxTokens, batch, blocks, BLOCK);
                     MixtralModel mc = new MixtralModel(c, wc, cpu, maxTokens, batch, blocks, BLOCK)) {
                    Random r = new Random();
                    int mb = mg.maxBlocksPerSeq();
                    // 1. one long prefill, logits of every 100th position and the last
                    int[] ids = r.ints(prefill, 3, V).toArray();
                    int[] table = new int[mb];
                    for (int b = 0; b < mb; b++) table[b] = Math.min(b, blocks - 1);
                    int[] pos = new int[prefill], slots = new int[prefill], seq = new int[prefill];
                    for (int t = 0; t < prefill; t++) {
                        pos[t] = t;
                        slots[t] = table[t / BLOCK] * BLOCK + t % BLOCK;
                    }
                    int[] rows = Stream.concat(Stream.iterate(0, i -> i < prefill - 1, i -> i + 100), Stream.of(prefill - 1))
                            .mapToInt(Integer::intValue).toArray();
                    Step step = new Step(prefill, ids, pos, slots, seq, 1, table, mb, rows.length, rows);
                    float[] lg = new float[rows.length * V], lc = new float[rows.length * V];
                    long g0 = System.nanoTime();
                    mg.forward(step, lg, null);
                    long g1 = System.nanoTime();
                    mc.forward(step, lc, null);
                    long g2 = System.nanoTime();
                    double ePrefill = Fixtures.relErr(lg, 0, lc, 0, lg.length);
                    System.out.printf("prefill %d tokens: GPU %.1f ms, CPU %.1f ms, rel err %.3g%n", prefill,
                            (g1 - g0) / 1e6, (g2 - g1) / 1e6, ePrefill);

                    // 2. batch sequences: short prompts prefilled together, then decode steps at batch
                    int[] tables = new int[batch * mb];
                    for (int s = 0; s < batch; s++) {
                        for (int b = 0; b < mb; b++) tables[s * mb + b] = s * perSeq + Math.min(b, perSeq - 1);
                    }
                    int T = batch * PROMPT;
                    int[] tok = r.ints(T, 3, V).toArray(), p2 = new int[T], sl2 = new int[T], sq2 = new int[T];
                    int[] last = new int[batch];
                    for (int s = 0; s < batch; s++) {
                        for (int i = 0; i < PROMPT; i++) {
                            int t = s * PROMPT + i;
                            p2[t] = i;
                            sq2[t] = s;
                            sl2[t] = tables[s * mb + i / BLOCK] * BLOCK + i % BLOCK;
                        }
                        last[s] = s * PROMPT + PROMPT - 1;
                    }
                    float[] bg = new float[batch * V], bc = new float[batch * V];
                    Step pre = new Step(T, tok, p2, sl2, sq2, batch, tables, mb, batch, last);
                    mg.forward(pre, bg, null);
                    mc.forward(pre, bc, null);
                    double eDecode = Fixtures.relErr(bg, 0, bc, 0, bg.length);
                    long gpuNs = 0, cpuNs = 0;
                    double worstRow = 0;
                    String worstAt = "-";
                    int[] seqIdx = new int[batch], rowsB = new int[batch];
                    for (int s = 0; s < batch; s++) {
                        seqIdx[s] = s;
                        rowsB[s] = s;
                    }
                    for (int k = 0; k < steps; k++) {
                        int[] dt = new int[batch], dp = new int[batch], ds = new int[batch];
                        for (int s = 0; s < batch; s++) {
                            dt[s] = argmax(bc, s * V, V);           // teacher forcing with the CPU's choice
                            dp[s] = PROMPT + k;
                            ds[s] = tables[s * mb + dp[s] / BLOCK] * BLOCK + dp[s] % BLOCK;
                        }
                        Step d = new Step(batch, dt, dp, ds, seqIdx, batch, tables, mb, batch, rowsB);
                        long a = System.nanoTime();
                        mg.forward(d, bg, null);
                        long b = System.nanoTime();
                        mc.forward(d, bc, null);
                        cpuNs += System.nanoTime() - b;
                        gpuNs += b - a;
                        eDecode = Math.max(eDecode, Fixtures.relErr(bg, 0, bc, 0, bg.length));
                        for (int s = 0; s < batch; s++) {
                            double es = Fixtures.relErr(bg, s * V, bc, s * V, V);
                            if (es > worstRow) {
                                worstRow = es;
                                worstAt = "step " + k + " sequence " + s;
                            }
                        }
                    }
                    System.out.printf("worst row: rel err %.3g at %s%n", worstRow, worstAt);
                    System.out.printf("%d decode steps at batch %d: GPU %.2f ms/step, CPU %.1f ms/step, max rel err %.3g%n",
                            steps, batch, gpuNs / 1e6 / steps, cpuNs / 1e6 / steps, eDecode);
                    CudaTestSupport.report("mixtral_shape_prefill_rel_err", ePrefill);
                    CudaTestSupport.report("mixtral_shape_decode_rel_err", eDecode);
                    CudaTestSupport.report("parity_rel_err", Math.max(ePrefill, eDecode));
                    assertTrue(ePrefill < 2e-2, "prefill of " + prefill + ": GPU vs CPU rel err " + ePrefill);
                    assertTrue(eDecode < 2e-2, "decode at batch " + batch + ": GPU vs CPU rel err " + eDecode);
                }
            }
        } finally {
            try (Stream<Path> s = Files.walk(dir)) {
                s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    static int argmax(float[] a, int off, int n) {
        int b = 0;
        for (int i = 1; i < n; i++) if (a[off + i] > a[off + b]) b = i;
        return b;
    }
}
