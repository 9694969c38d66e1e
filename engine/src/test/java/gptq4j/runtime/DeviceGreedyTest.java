package gptq4j.runtime;

import gptq4j.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Greedy requests without penalties or logprobs take the backend's greedy selection (MixtralModel.forwardGreedy,
 * no logits read back); the same requests asking for one logprob take the sampler. Both give the same tokens and
 * texts, whole batches and batches that mix the two kinds (which go through the sampler) alike.
 */
class DeviceGreedyTest {
    static final String MODEL = "tiny-mixtral-gptq-4bit-128g-actorder";

    static SamplingParams greedy(int n, int logprobs) {
        return new SamplingParams(n, 0, 0, 1, 0, 1, 0, 0, 0, List.of(), List.of(), logprobs, true);
    }

    @Test
    void sameTokensAsTheSampler() {
        SplittableRandom r = new SplittableRandom();
        String[] words = BatchInvarianceTest.WORDS;
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            StringBuilder sb = new StringBuilder();
            for (int w = 0, n = 1 + r.nextInt(60); w < n; w++) sb.append(w == 0 ? "" : " ").append(words[r.nextInt(words.length)]);
            prompts.add(sb.toString());
        }
        EngineOptions o = EngineOptions.of(Fixtures.model(MODEL)).withDevice("cpu").withThreads(2).withMaxBatchSize(8);
        try (Engine e = Engine.load(o)) {
            List<GenerationRequest> dev = new ArrayList<>(), host = new ArrayList<>(), mixed = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                int n = 4 + r.nextInt(12);
                dev.add(new GenerationRequest(prompts.get(i), greedy(n, 0)));
                host.add(new GenerationRequest(prompts.get(i), greedy(n, 1)));
                mixed.add(new GenerationRequest(prompts.get(i), greedy(n, i % 3 == 0 ? 1 : 0)));
            }
            long before = e.stats().deviceGreedySteps.get();
            List<GenerationResult> a = e.generate(dev);
            long devSteps = e.stats().deviceGreedySteps.get() - before;
            assertTrue(devSteps > 0, "no step chose on the backend: " + e.stats());
            before = e.stats().deviceGreedySteps.get();
            List<GenerationResult> b = e.generate(host);
            assertEquals(before, e.stats().deviceGreedySteps.get(), "a request with logprobs chose on the backend");
            List<GenerationResult> c = e.generate(mixed);
            for (int i = 0; i < prompts.size(); i++) {
                assertArrayEquals(b.get(i).tokenIds(), a.get(i).tokenIds(), "prompt " + i + ": backend vs sampler");
                assertArrayEquals(b.get(i).tokenIds(), c.get(i).tokenIds(), "prompt " + i + ": mixed batch");
                assertEquals(b.get(i).text(), a.get(i).text(), "prompt " + i + " text");
                assertEquals(b.get(i).finishReason(), a.get(i).finishReason(), "prompt " + i + " finish");
            }
        }
    }
}
