package gptq4j.examples;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptq4j.cli.Main;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The repository, the golden fixture model, {@code bin/gptq4j generate} in-process, and JSON-lines files. */
final class Cli {

    static final ObjectMapper JSON = new ObjectMapper();
    static final String FIXTURE_MODEL = "tiny-mixtral-gptq-4bit-128g-actorder";

    private Cli() { }

    static Path repo() {
        String r = System.getProperty("gptq4j.repo");
        if (r == null) throw new AssertionError("system property gptq4j.repo is not set (surefire sets it)");
        return Path.of(r).toAbsolutePath().normalize();
    }

    static Path data(String name) {
        return repo().resolve("examples/data").resolve(name);
    }

    /** The golden fixture model; the test fails (never skips) when ../shared/fixtures is missing. */
    static Path fixtureModel() {
        String root = System.getProperty("gptq4j.fixtures");
        if (root == null) throw new AssertionError("system property gptq4j.fixtures is not set (surefire sets it)");
        Path m = Path.of(root, "models", FIXTURE_MODEL).toAbsolutePath().normalize();
        if (!Files.isRegularFile(m.resolve("config.json"))) {
            throw new AssertionError("golden fixture model missing: " + m + " (../shared/fixtures must sit beside the repository)");
        }
        return m;
    }

    /** Runs {@code bin/gptq4j generate --model M --input IN --output OUT --device cpu EXTRA...}; returns the output rows. */
    static List<JsonNode> generate(Path model, Path input, Path output, String... extra) {
        List<String> a = new ArrayList<>(List.of("generate", "--model", model.toString(), "--input", input.toString(),
                "--output", output.toString(), "--device", "cpu"));
        a.addAll(List.of(extra));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int rc = Main.run(a.toArray(new String[0]), new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(0, rc, "bin/gptq4j generate failed: " + err.toString(StandardCharsets.UTF_8));
        return readLines(List.of(output));
    }

    /** JSONL rows {"id": i, "prompt": p} for {@code prompts}, written to {@code file}. */
    static Path writePrompts(Path file, List<String> prompts) {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            lines.add(JSON.createObjectNode().put("id", i).put("prompt", prompts.get(i)).toString());
        }
        try {
            Files.write(file, lines, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return file;
    }

    static List<JsonNode> readLines(List<Path> files) {
        List<JsonNode> out = new ArrayList<>();
        try {
            for (Path f : files) {
                for (String l : Files.readAllLines(f, StandardCharsets.UTF_8)) if (!l.isBlank()) out.add(JSON.readTree(l));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** The part files of a Spark output directory, in name (= partition) order. */
    static List<Path> parts(Path dir, String suffix) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith("part-") && p.toString().endsWith(suffix)).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
