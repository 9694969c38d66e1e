package gptq4j.examples;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * bin/demo's core ({@code Demo.main} on local[2]) from nothing: synthesizes the default model from the repository's
 * tokenizer alone, runs the batch job, prints the random-weights banner and a sample; the results are what
 * bin/gptq4j generate gives on the model it made.
 */
class DemoTest {

    @TempDir
    Path tmp;

    @Test
    void demoFromAFreshCheckoutMakesTheModelRunsTheJobAndPrintsASample() {
        Path model = tmp.resolve("demo-model"), out = tmp.resolve("demo-output");
        List<String> prompts = new ArrayList<>();
        for (JsonNode n : Cli.readLines(List.of(Cli.data("prompts.jsonl"))).subList(0, 40)) prompts.add(n.get("prompt").asText());
        Path input = Cli.writePrompts(tmp.resolve("prompts.jsonl"), prompts);

        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            Demo.main(new String[]{"--model", model.toString(), "--tokenizer", Cli.data("tokenizer").toString(),
                    "--input", input.toString(), "--output", out.toString(), "--sample", "5", "--max-new-tokens", "6",
                    "--device", "cpu", "--master", "local[2]"});
        } finally {
            System.setOut(stdout);
        }
        String printed = captured.toString(StandardCharsets.UTF_8);
        stdout.print(printed);

        assertTrue(Files.isRegularFile(model.resolve("config.json")), "demo model synthesized");
        assertTrue(Files.isRegularFile(model.resolve("tokenizer.json")), "tokenizer copied from examples/data/tokenizer");
        assertTrue(printed.contains("RANDOM WEIGHTS") && printed.contains("MEANINGLESS"), printed);
        assertTrue(printed.contains("made " + model.toAbsolutePath()), printed);
        assertTrue(printed.contains("sample of 5 of 40 results"), printed);
        assertEquals(5, printed.split("\n    prompt: ", -1).length - 1, "five sampled rows printed");

        List<JsonNode> got = Cli.readLines(Cli.parts(out, ".json"));
        List<JsonNode> want = Cli.generate(model, input, tmp.resolve("cli.jsonl"), "--max-new-tokens", "6");
        assertEquals(prompts.size(), got.size());
        for (JsonNode r : got) {
            int id = r.get("id").asInt();
            assertEquals(want.get(id).get("text").asText(), r.get("text").asText(), "row " + id);
            assertEquals(want.get(id).get("completion_tokens").asInt(), r.get("completion_tokens").asInt(), "row " + id);
            assertEquals(prompts.get(id), r.get("prompt").asText());
        }
        assertTrue(printed.contains("    text:   " + oneLine(got.get(0).get("text").asText())), "row 0 printed in the sample");
    }

    private static String oneLine(String s) {
        String t = s.replace("\n", "\\n");
        return t.length() > 100 ? t.substring(0, 97) + "..." : t;
    }
}
