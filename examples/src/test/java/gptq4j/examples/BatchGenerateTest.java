package gptq4j.examples;

import com.fasterxml.jackson.databind.JsonNode;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code bin/run-example BatchGenerate} (its main, on local[2]) over the 301 sample prompts gives, row for row, what
 * {@code bin/gptq4j generate} gives on the same model and prompts (greedy): the same text, finish reason and token
 * counts, every input column kept, no row lost or duplicated, input order kept. JSONL, CSV and Parquet input;
 * JSONL and Parquet output.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BatchGenerateTest {

    static final int MAX_NEW = 8;

    @TempDir
    static Path tmp;
    Path model;
    List<JsonNode> prompts;
    List<JsonNode> cli;

    @BeforeAll
    void expected() {
        model = Cli.fixtureModel();
        prompts = Cli.readLines(List.of(Cli.data("prompts.jsonl")));
        assertTrue(prompts.size() >= 300, "sample prompts: " + prompts.size());
        cli = Cli.generate(model, Cli.data("prompts.jsonl"), tmp.resolve("cli.jsonl"), "--max-new-tokens", Integer.toString(MAX_NEW));
        assertEquals(prompts.size(), cli.size());
    }

    private void batchGenerate(String input, Path output, String format) {
        BatchGenerate.main(new String[]{"--model", model.toString(), "--input", input, "--output", output.toString(),
                "--format", format, "--max-new-tokens", Integer.toString(MAX_NEW), "--device", "cpu", "--master", "local[2]"});
    }

    /** One output row against the input row and the CLI's result for it. */
    private void check(int i, long id, String lang, String kind, String prompt, String text, String finish,
                       long promptTokens, long completionTokens, Object error) {
        JsonNode in = prompts.get(i), want = cli.get(i);
        assertEquals(in.get("id").asLong(), id, "row " + i);
        assertEquals(in.get("lang").asText(), lang, "row " + i);
        assertEquals(in.get("kind").asText(), kind, "row " + i);
        assertEquals(in.get("prompt").asText(), prompt, "row " + i);
        assertEquals(want.get("text").asText(), text, "text of row " + i + " (prompt " + prompt + ")");
        assertEquals(want.get("finish_reason").asText(), finish, "row " + i);
        assertEquals(want.get("prompt_tokens").asLong(), promptTokens, "row " + i);
        assertEquals(want.get("completion_tokens").asLong(), completionTokens, "row " + i);
        assertEquals(null, error, "row " + i);
    }

    /** The rows in input order: ids 0..n-1 each exactly once, and the part files in partition order keep it. */
    private void checkIds(List<Long> ids) {
        Set<Long> seen = new HashSet<>();
        for (long id : ids) assertTrue(seen.add(id), "duplicate id " + id);
        assertEquals(prompts.size(), ids.size(), "rows lost or added");
        for (int i = 0; i < ids.size(); i++) assertEquals(i, ids.get(i), "input order at row " + i);
    }

    private void checkJsonOutput(Path out) {
        List<Path> parts = Cli.parts(out, ".json");
        assertTrue(parts.size() >= 2, "the small input file should split over both cores of local[2]: " + parts);
        List<JsonNode> rows = Cli.readLines(parts);
        List<Long> ids = new ArrayList<>();
        for (JsonNode r : rows) ids.add(r.get("id").asLong());
        checkIds(ids);
        for (int i = 0; i < rows.size(); i++) {
            JsonNode r = rows.get(i);
            assertTrue(r.has("error"), "error column written even when null");
            check(i, r.get("id").asLong(), r.get("lang").asText(), r.get("kind").asText(), r.get("prompt").asText(),
                    r.get("text").asText(), r.get("finish_reason").asText(), r.get("prompt_tokens").asLong(),
                    r.get("completion_tokens").asLong(), r.get("error").isNull() ? null : r.get("error").asText());
        }
    }

    @Test
    void jsonlInJsonlOutMatchesCli() {
        Path out = tmp.resolve("out-jsonl");
        batchGenerate(Cli.data("prompts.jsonl").toString(), out, "jsonl");
        checkJsonOutput(out);
    }

    @Test
    void csvInMatchesCli() {
        Path out = tmp.resolve("out-csv");
        batchGenerate(Cli.data("prompts.csv").toString(), out, "jsonl");
        List<JsonNode> rows = Cli.readLines(Cli.parts(out, ".json"));
        List<Long> ids = new ArrayList<>();
        for (JsonNode r : rows) ids.add(r.get("id").asLong());
        checkIds(ids);
        for (int i = 0; i < rows.size(); i++) {
            JsonNode r = rows.get(i);
            check(i, r.get("id").asLong(), r.get("lang").asText(), r.get("kind").asText(), r.get("prompt").asText(),
                    r.get("text").asText(), r.get("finish_reason").asText(), r.get("prompt_tokens").asLong(),
                    r.get("completion_tokens").asLong(), r.get("error").isNull() ? null : r.get("error").asText());
        }
    }

    @Test
    void parquetInParquetOutMatchesCli() throws Exception {
        Path in = tmp.resolve("prompts.parquet"), out = tmp.resolve("out-parquet");
        SparkSession s = SparkSession.builder().master("local[2]").appName("prepare").getOrCreate();
        try {
            s.read().json(Cli.data("prompts.jsonl").toString()).write().parquet(in.toString());
        } finally {
            s.stop();
        }
        batchGenerate(in.toString(), out, "parquet");
        assertTrue(Files.isRegularFile(out.resolve("_SUCCESS")));
        s = SparkSession.builder().master("local[2]").appName("read back").getOrCreate();
        List<Row> rows;
        try {
            rows = s.read().parquet(out.toString()).orderBy("id").collectAsList();
        } finally {
            s.stop();
        }
        List<Long> ids = new ArrayList<>();
        for (Row r : rows) ids.add(r.<Long>getAs("id"));
        checkIds(ids);
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            check(i, r.<Long>getAs("id"), r.getAs("lang"), r.getAs("kind"), r.getAs("prompt"), r.getAs("text"),
                    r.getAs("finish_reason"), r.<Integer>getAs("prompt_tokens"), r.<Integer>getAs("completion_tokens"),
                    r.getAs("error"));
        }
    }
}
