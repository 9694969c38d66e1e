package gptq4j.examples;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code bin/run-example Summarise} (its main, local[2]) over examples/data/articles.csv: each summary is what
 * bin/gptq4j generate gives for "Summarise: BODY\nSummary:" with stop "\n\n", and every input column is kept.
 */
class SummariseTest {

    @TempDir
    Path tmp;

    @Test
    void summariesMatchCliOnTheTemplatedPrompt() throws IOException {
        List<String[]> articles = readCsv(Cli.data("articles.csv"));
        List<String> prompts = new ArrayList<>();
        for (String[] a : articles) prompts.add("Summarise: " + a[3] + "\nSummary:");
        List<JsonNode> want = Cli.generate(Cli.fixtureModel(), Cli.writePrompts(tmp.resolve("p.jsonl"), prompts),
                tmp.resolve("cli.jsonl"), "--max-new-tokens", "12", "--stop", "\n\n");

        Path out = tmp.resolve("out");
        Summarise.main(new String[]{"--model", Cli.fixtureModel().toString(), "--input", Cli.data("articles.csv").toString(),
                "--column", "body", "--output", out.toString(), "--max-new-tokens", "12", "--device", "cpu",
                "--master", "local[2]"});
        List<JsonNode> got = Cli.readLines(Cli.parts(out, ".json"));
        assertEquals(articles.size(), got.size());
        boolean[] seen = new boolean[articles.size()];
        for (JsonNode r : got) {
            int id = r.get("id").asInt();
            assertEquals(false, seen[id], "duplicate id " + id);
            seen[id] = true;
            assertEquals(articles.get(id)[1], r.get("lang").asText());
            assertEquals(articles.get(id)[2], r.get("title").asText());
            assertEquals(articles.get(id)[3], r.get("body").asText());
            assertEquals(want.get(id).get("text").asText(), r.get("summary").asText(), "summary of article " + id);
            assertEquals(want.get(id).get("finish_reason").asText(), r.get("finish_reason").asText());
            assertEquals(want.get(id).get("completion_tokens").asLong(), r.get("summary_tokens").asLong());
        }
    }

    /** A small RFC 4180 reader (quoted fields with "" escapes), independent of Spark's. */
    static List<String[]> readCsv(Path f) throws IOException {
        List<String[]> rows = new ArrayList<>();
        try (Reader r = Files.newBufferedReader(f, StandardCharsets.UTF_8)) {
            List<String> row = new ArrayList<>();
            StringBuilder field = new StringBuilder();
            boolean quoted = false;
            for (int c; (c = r.read()) != -1; ) {
                if (quoted) {
                    if (c == '"') {
                        r.mark(1);
                        int d = r.read();
                        if (d == '"') field.append('"');
                        else {
                            quoted = false;
                            if (d != -1) r.reset();
                        }
                    } else field.append((char) c);
                } else if (c == '"') quoted = true;
                else if (c == ',') {
                    row.add(field.toString());
                    field.setLength(0);
                } else if (c == '\n') {
                    row.add(field.toString());
                    field.setLength(0);
                    rows.add(row.toArray(new String[0]));
                    row = new ArrayList<>();
                } else field.append((char) c);
            }
        }
        return rows.subList(1, rows.size());
    }
}
