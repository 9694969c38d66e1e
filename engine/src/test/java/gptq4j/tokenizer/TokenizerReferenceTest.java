package gptq4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The prompts of fixtures/reference/<model>.json encode to its input_ids with each model directory's tokenizer. */
class TokenizerReferenceTest {

    static Stream<String> models() throws IOException {
        Path models = FixtureDir.file("models");
        try (Stream<Path> dirs = Files.list(models)) {
            List<String> names = dirs.filter(Files::isDirectory).map(d -> d.getFileName().toString()).sorted().toList();
            assertEquals(7, names.size(), "fixture model directories under " + models);
            return names.stream();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("models")
    void promptsEncodeToReferenceInputIds(String model) {
        Tokenizer tokenizer = Tokenizer.load(FixtureDir.file("models/" + model));
        JsonNode ref = FixtureDir.json("reference/" + model + ".json");
        JsonNode prompts = ref.get("prompts");
        JsonNode inputIds = ref.get("input_ids");
        assertEquals(prompts.size(), inputIds.size());
        assertTrue(prompts.size() >= 8, "reference has the long and the empty prompt");
        int longest = 0;
        for (int p = 0; p < prompts.size(); p++) {
            String prompt = prompts.get(p).asText();
            int[] expected = FixtureDir.ints(inputIds.get(p));
            int[] actual = tokenizer.encode(prompt);
            int index = p;
            assertArrayEquals(expected, actual, () -> model + " prompt " + index + ": " + Arrays.toString(actual));
            assertEquals(prompt, tokenizer.decode(actual), () -> model + " prompt " + index + " round trip");
            longest = Math.max(longest, actual.length);
        }
        assertEquals(688, longest, "the long reference prompt");
        assertArrayEquals(new int[] {1}, tokenizer.encode(""));
    }
}
