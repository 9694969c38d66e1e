package gptq4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;

/** The golden fixtures directory; tests that need it fail (never skip) when it is missing. */
final class FixtureDir {
    static final String PROPERTY = "gptq4j.fixtures";
    private static final ObjectMapper JSON = new ObjectMapper();

    private FixtureDir() {
    }

    static Path root() {
        String p = System.getProperty(PROPERTY);
        if (p == null || p.isBlank()) {
            fail("system property " + PROPERTY + " is not set; run through Maven (surefire sets it to ../shared/fixtures)");
        }
        Path dir = Path.of(p);
        if (!Files.isDirectory(dir)) {
            fail("golden fixtures directory " + dir.toAbsolutePath() + " (system property " + PROPERTY + ") does not exist");
        }
        return dir;
    }

    static Path file(String relative) {
        Path f = root().resolve(relative);
        if (!Files.exists(f)) {
            fail("fixture " + f.toAbsolutePath() + " does not exist");
        }
        return f;
    }

    static JsonNode json(String relative) {
        try {
            return JSON.readTree(file(relative).toFile());
        } catch (IOException e) {
            throw new AssertionError("cannot read fixture " + relative + ": " + e.getMessage(), e);
        }
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }
}
