package gptq4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code gptq4j generate} with JSONL in and out, batch-size and token-budget flags, against the references. */
class CliGoldenTest {
    @TempDir
    Path tmp;

    static List<String> models() { return Fixtures.MODELS; }

    @ParameterizedTest
    @MethodSource("models")
    void generateCommandMatchesReference(String name) throws Exception {
        ObjectMapper json = new ObjectMapper();
        JsonNode ref = Fixtures.reference(name);
        Path in = tmp.resolve("in.jsonl"), out = tmp.resolve("out.jsonl");
        List<String> lines = new ArrayList<>();
        for (JsonNode p : ref.get("prompts")) lines.add(json.createObjectNode().put("prompt", p.asText()).toString());
        Files.write(in, lines, StandardCharsets.UTF_8);
        ByteArrayOutputStream so = new ByteArrayOutputStream(), se = new ByteArrayOutputStream();
        int rc = Main.run(new String[]{"generate", "--model", Fixtures.model(name).toString(), "--device", "cpu",
                        "--input", in.toString(), "--output", out.toString(), "--max-new-tokens", "24", "--temperature", "0",
                        "--logprobs", "5", "--batch-size", "3", "--max-tokens-per-step", "96", "--threads", "2"},
                new PrintStream(so, true, StandardCharsets.UTF_8), new PrintStream(se, true, StandardCharsets.UTF_8));
        assertEquals(0, rc, se.toString(StandardCharsets.UTF_8));
        List<String> got = Files.readAllLines(out, StandardCharsets.UTF_8);
        assertEquals(lines.size(), got.size());
        float[] last = Fixtures.tensor(name, "last_logits");
        int vocab = 32000;
        for (int i = 0; i < got.size(); i++) {
            JsonNode r = json.readTree(got.get(i));
            assertEquals(ref.get("input_ids").get(i), r.get("prompt_token_ids"), "prompt ids of row " + i);
            assertTrue(r.get("error").isNull());
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int v = 0; v < vocab; v++) max = Math.max(max, last[i * vocab + v]);
            for (int v = 0; v < vocab; v++) sum += Math.exp(last[i * vocab + v] - max);
            double lse = max + Math.log(sum);
            JsonNode top = r.get("logprobs").get(0).get("top");
            assertEquals(5, top.size());
            for (JsonNode t : top) {
                assertEquals(last[i * vocab + t.get("token_id").asInt()] - lse, t.get("logprob").asDouble(), 2e-3);
            }
            JsonNode g = ref.get("greedy").get(i);
            for (int s = 0; s < g.get("new_ids").size(); s++) {
                assertEquals(g.get("new_ids").get(s).asInt(), r.get("token_ids").get(s).asInt(), "row " + i + " step " + s);
                if (g.get("top1_top2_margin").get(s).asDouble() < 0.02) break;
            }
        }
    }
}
