package gptq4j.runtime;

import gptq4j.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A request's tokens depend only on its prompt, parameters and seed: not on the batch size, the thread
 * count, chunked prefill or preemption under a small KV cache. Greedy and seeded sampling, 64 prompts of
 * 1 to ~600 tokens.
 */
class BatchInvarianceTest {
    static final String MODEL = "tiny-mixtral-gptq-4bit-128g-actorder";
    static final String[] WORDS = ("the quick brown fox jumps over lazy dog river bridge europe wizard judge boxing "
            + "match quietly northern old capitale France est Hauptstadt von Deutschland ist perro come gatto dorme "
            + "data engineer spark executor token batch model weight cache 12 345 6789 , . ! ? café naïve").split(" ");

    static List<GenerationRequest> requests() {
        SplittableRandom r = new SplittableRandom(20261126);
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            int words = i == 0 ? 0 : i == 1 ? 1 : i == 63 ? 420 : r.nextInt(400);
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < words; w++) sb.append(w == 0 ? "" : " ").append(WORDS[r.nextInt(WORDS.length)]);
            SamplingParams p = i % 2 == 0 ? SamplingParams.greedy(6)
                    : new SamplingParams(6, 0.8, 40, 0.9, 0.0, 1.1, 0.2, 0.1, 1000 + i, List.of(), List.of(), 0, true);
            out.add(new GenerationRequest(sb.toString(), p));
        }
        return out;
    }

    static List<GenerationResult> run(int batch, int threads, int budget, long kvBytes, List<GenerationRequest> reqs,
                                      boolean oneAtATime) {
        EngineOptions o = EngineOptions.of(Fixtures.model(MODEL)).withDevice("cpu").withMaxBatchSize(batch)
                .withThreads(threads).withMaxTokensPerStep(budget).withKvCacheBytes(kvBytes);
        try (Engine e = Engine.load(o)) {
            List<GenerationResult> res = new ArrayList<>();
            if (oneAtATime) {
                for (GenerationRequest q : reqs) res.add(e.generate(List.of(q)).get(0));
            } else {
                res.addAll(e.generate(reqs));
            }
            if (kvBytes > 0 && kvBytes < (4L << 20)) {
                assertTrue(e.stats().preemptions.get() > 0, "the small-cache run was meant to preempt: " + e.stats());
            }
            return res;
        }
    }

    @Test
    void batchedEqualsOneAtATime() {
        List<GenerationRequest> reqs = requests();
        List<GenerationResult> alone = run(1, 1, 512, 0, reqs, true);
        int minLen = Integer.MAX_VALUE, maxLen = 0;
        for (GenerationResult r : alone) {
            assertNull(r.error());
            assertEquals(6, r.completionTokens());
            minLen = Math.min(minLen, r.promptTokens());
            maxLen = Math.max(maxLen, r.promptTokens());
        }
        assertEquals(1, minLen);
        assertTrue(maxLen >= 550 && maxLen <= 700, "longest prompt " + maxLen + " tokens");
        compare(alone, run(7, 2, 64, 0, reqs, false), "batch 7, 2 threads, 64-token chunks");
        compare(alone, run(64, 2, 512, 0, reqs, false), "batch 64, 2 threads");
        compare(alone, run(64, 1, 256, 3L << 20, reqs, false), "batch 64, 1 thread, 3 MiB KV cache (preemption)");
    }

    private static void compare(List<GenerationResult> want, List<GenerationResult> got, String how) {
        assertEquals(want.size(), got.size());
        for (int i = 0; i < want.size(); i++) {
            assertArrayEquals(want.get(i).tokenIds(), got.get(i).tokenIds(), how + ": request " + i);
            assertEquals(want.get(i).text(), got.get(i).text(), how + ": request " + i);
        }
    }
}
