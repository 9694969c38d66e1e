package gptq4j.examples;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code bin/run-example SqlGenerate} (its main, local[2]): SQL calls of generate give what bin/gptq4j generate gives. */
class SqlGenerateTest {

    @TempDir
    Path tmp;

    private List<JsonNode> sql(Path input, String query, Path output, String maxNew) {
        List<String> a = new ArrayList<>(List.of("--model", Cli.fixtureModel().toString(), "--input", input.toString(),
                "--output", output.toString(), "--device", "cpu", "--master", "local[2]", "--max-new-tokens", maxNew));
        if (query != null) a.addAll(List.of("--query", query));
        SqlGenerate.main(a.toArray(new String[0]));
        return Cli.readLines(Cli.parts(output, ".json"));
    }

    @Test
    void defaultQueryMatchesCli() {
        List<JsonNode> all = Cli.readLines(List.of(Cli.data("prompts.jsonl")));
        List<String> prompts = new ArrayList<>();
        for (JsonNode n : all.subList(0, 30)) prompts.add(n.get("prompt").asText());
        Path in = Cli.writePrompts(tmp.resolve("p.jsonl"), prompts);
        List<JsonNode> want = Cli.generate(Cli.fixtureModel(), in, tmp.resolve("cli.jsonl"), "--max-new-tokens", "5");
        List<JsonNode> got = sql(in, null, tmp.resolve("out"), "5");
        assertEquals(prompts.size(), got.size());
        boolean[] seen = new boolean[prompts.size()];
        for (JsonNode r : got) {
            int id = r.get("id").asInt();
            assertFalse(seen[id], "duplicate id " + id);
            seen[id] = true;
            assertEquals(prompts.get(id), r.get("prompt").asText());
            assertEquals(want.get(id).get("text").asText(), r.get("completion").asText(), "row " + id);
        }
    }

    @Test
    void namedArgumentsStructAndWhere() {
        String query = "SELECT id, lang, r.text AS text, r.finish_reason AS finish_reason, r.completion_tokens AS n "
                + "FROM (SELECT id, lang, generate_struct(prompt, max_new_tokens => 6, stop => array('.')) AS r "
                + "FROM prompts WHERE kind = 'question')";
        List<JsonNode> got = sql(Cli.data("prompts.jsonl"), query, tmp.resolve("out"), "16");
        List<JsonNode> all = Cli.readLines(List.of(Cli.data("prompts.jsonl")));
        List<String> questions = new ArrayList<>();
        List<Long> ids = new ArrayList<>();
        for (JsonNode n : all) {
            if (n.get("kind").asText().equals("question")) {
                questions.add(n.get("prompt").asText());
                ids.add(n.get("id").asLong());
            }
        }
        assertTrue(questions.size() > 50, "questions: " + questions.size());
        List<JsonNode> want = Cli.generate(Cli.fixtureModel(), Cli.writePrompts(tmp.resolve("q.jsonl"), questions),
                tmp.resolve("cli.jsonl"), "--max-new-tokens", "6", "--stop", ".");
        assertEquals(questions.size(), got.size());
        for (JsonNode r : got) {
            int i = ids.indexOf(r.get("id").asLong());
            assertTrue(i >= 0, "row " + r + " is not a question");
            assertEquals(want.get(i).get("text").asText(), r.get("text").asText(), "id " + r.get("id"));
            assertEquals(want.get(i).get("finish_reason").asText(), r.get("finish_reason").asText(), "id " + r.get("id"));
            assertEquals(want.get(i).get("completion_tokens").asLong(), r.get("n").asLong(), "id " + r.get("id"));
            assertTrue(r.get("n").asLong() <= 6);
        }
    }
}
