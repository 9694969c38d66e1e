package gptq4j.backend.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import gptq4j.runtime.Engine;
import gptq4j.runtime.EngineOptions;
import gptq4j.runtime.GenerationRequest;
import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;
import gptq4j.runtime.TokenLogprob;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The acceptance check of the CUDA backend through the whole engine (tokenizer, scheduler, sampler) with
 * {@code --device cuda}: for each golden model, prompt ids equal the reference input_ids, the first token's
 * top-5 logprobs are within 2e-2 of the reference log-softmax of last_logits, and greedy tokens equal the
 * reference up to the first step whose reference margin is under 0.1.
 */
class CudaEngineGoldenTest {

    static List<String> models() { return Fixtures.MODELS; }

    @ParameterizedTest
    @MethodSource("models")
    void engineOnCudaMatchesTransformers(String name) {
        CudaTestSupport.backend();   // skips with the reason when no GPU is usable
        JsonNode ref = Fixtures.reference(name);
        float[] lastLogits = Fixtures.tensor(name, "last_logits");
        List<String> failures = new ArrayList<>();
        double worst = 0;
        try (Engine e = Engine.load(EngineOptions.of(Fixtures.model(name)).withDevice("cuda"))) {
            int vocab = e.config().vocabSize();
            if (!e.device().startsWith("cuda")) failures.add("engine runs on " + e.device());
            JsonNode prompts = ref.get("prompts");
            List<GenerationRequest> reqs = new ArrayList<>();
            for (JsonNode p : prompts) {
                reqs.add(new GenerationRequest(p.asText(), new SamplingParams(24, 0, 0, 1, 0, 1, 0, 0, 0, List.of(), List.of(), 5, false)));
            }
            List<GenerationResult> out = e.generate(reqs);
            for (int i = 0; i < prompts.size(); i++) {
                GenerationResult r = out.get(i);
                if (r.error() != null) {
                    failures.add("prompt " + i + ": " + r.error());
                    continue;
                }
                int[] ids = Fixtures.ints(ref.get("input_ids").get(i));
                if (!Arrays.equals(ids, r.promptTokenIds())) failures.add("prompt " + i + ": prompt ids differ");
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int v = 0; v < vocab; v++) max = Math.max(max, lastLogits[i * vocab + v]);
                for (int v = 0; v < vocab; v++) sum += Math.exp(lastLogits[i * vocab + v] - max);
                double lse = max + Math.log(sum);
                List<TokenLogprob.Top> top = r.logprobs().get(0).top();
                if (top.size() != 5) failures.add("prompt " + i + ": " + top.size() + " top logprobs");
                for (TokenLogprob.Top t : top) {
                    double d = Math.abs(lastLogits[i * vocab + t.tokenId()] - lse - t.logprob());
                    worst = Math.max(worst, d);
                    if (d > 2e-2) failures.add("prompt " + i + ": logprob of " + t.tokenId() + " off by " + d);
                }
                JsonNode g = ref.get("greedy").get(i);
                int[] want = Fixtures.ints(g.get("new_ids"));
                JsonNode margin = g.get("top1_top2_margin");
                for (int s = 0; s < want.length; s++) {
                    if (margin.get(s).asDouble() < 0.1) break;
                    if (s >= r.tokenIds().length || r.tokenIds()[s] != want[s]) {
                        failures.add("prompt " + i + ": greedy step " + s + " differs");
                        break;
                    }
                }
            }
        }
        CudaTestSupport.report("golden_model_ok", failures.isEmpty() ? 1 : 0);
        CudaTestSupport.report("golden_engine_logprob_abs_err", worst);
        System.out.println("engine golden " + name + " on cuda: top-5 logprob err " + worst
                + (failures.isEmpty() ? ", ok" : ", FAILED " + failures));
        assertTrue(failures.isEmpty(), name + ": " + failures);
    }
}
