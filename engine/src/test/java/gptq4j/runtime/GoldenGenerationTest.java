package gptq4j.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The foundation's acceptance check through the whole engine (tokenizer, scheduler, sampler) on the CPU:
 * prompt ids equal the reference, the first token's top-5 logprobs are within 2e-3 of the reference
 * log-softmax, and greedy tokens equal the reference up to the first step whose margin is under 0.02.
 */
class GoldenGenerationTest {

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        for (String m : Fixtures.MODELS) {
            a.add(Arguments.of(m, "cpu"));
            a.add(Arguments.of(m, "cpu-scalar"));
        }
        return a.stream();
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("cases")
    void matchesTransformers(String name, String device) {
        JsonNode ref = Fixtures.reference(name);
        float[] lastLogits = Fixtures.tensor(name, "last_logits");
        int vocab = 32000;
        try (Engine e = Engine.load(EngineOptions.of(Fixtures.model(name)).withDevice(device).withThreads(2))) {
            List<GenerationRequest> reqs = new ArrayList<>();
            JsonNode prompts = ref.get("prompts");
            for (JsonNode p : prompts) {
                SamplingParams g = SamplingParams.greedy(24);
                reqs.add(new GenerationRequest(p.asText(), new SamplingParams(24, 0, 0, 1, 0, 1, 0, 0, 0, List.of(), List.of(), 5, false)));
            }
            List<GenerationResult> out = e.generate(reqs);
            for (int i = 0; i < prompts.size(); i++) {
                GenerationResult r = out.get(i);
                assertArrayEquals(Fixtures.ints(ref.get("input_ids").get(i)), r.promptTokenIds(), name + " prompt " + i + " ids");
                // first token: top-5 logprobs against the reference log-softmax of last_logits
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int v = 0; v < vocab; v++) max = Math.max(max, lastLogits[i * vocab + v]);
                for (int v = 0; v < vocab; v++) sum += Math.exp(lastLogits[i * vocab + v] - max);
                double lse = max + Math.log(sum);
                TokenLogprob first = r.logprobs().get(0);
                assertEquals(5, first.top().size());
                for (TokenLogprob.Top t : first.top()) {
                    double want = lastLogits[i * vocab + t.tokenId()] - lse;
                    assertEquals(want, t.logprob(), 2e-3, name + " prompt " + i + " top token " + t.tokenId());
                }
                // greedy tokens up to the first tiny-margin step
                JsonNode g = ref.get("greedy").get(i);
                int[] want = Fixtures.ints(g.get("new_ids"));
                JsonNode margin = g.get("top1_top2_margin");
                int checked = 0;
                for (int s = 0; s < want.length; s++) {
                    assertTrue(s < r.tokenIds().length, name + " prompt " + i + ": only " + r.tokenIds().length + " tokens");
                    assertEquals(want[s], r.tokenIds()[s], name + " prompt " + i + " step " + s);
                    checked++;
                    if (margin.get(s).asDouble() < 0.02) break;
                }
                assertTrue(checked > 0);
            }
        }
    }
}
