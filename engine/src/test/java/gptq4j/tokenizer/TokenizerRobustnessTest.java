package gptq4j.tokenizer;

import gptq4j.loader.CheckpointException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hostile input, long input and broken files. */
class TokenizerRobustnessTest {
    private static Tokenizer classic;
    private static Tokenizer metaspace;

    @TempDir
    Path dir;

    @BeforeAll
    static void load() {
        classic = Tokenizer.load(FixtureDir.file("models/tiny-mixtral-gptq-8bit-actorder"));
        metaspace = Tokenizer.fromFiles(FixtureDir.file("tokenizer/tokenizer.metaspace.json"), FixtureDir.file("tokenizer/tokenizer_config.json"));
    }

    @Test
    void unpairedSurrogatesBecomeReplacementCharacter() {
        String broken = "\uD800abc\uDC00 x\uD83D";
        String replaced = "\uFFFDabc\uFFFD x\uFFFD";
        assertArrayEquals(classic.encode(replaced), classic.encode(broken));
        assertArrayEquals(metaspace.encode(replaced), metaspace.encode(broken));
        assertEquals(replaced, classic.decode(classic.encode(broken)));
    }

    @Test
    void controlRtlAndEmojiRoundTrip() {
        String[] texts = {
            "\u0000\u0001\u0007\u001b[31mred\u001b[0m\u007f\r\n",
            "\u202Eabc\u202C \u200F\u05E9\u05DC\u05D5\u05DD \u0645\u0631\u062D\u0628\u0627",
            "👩‍👩‍👧‍👦 🏳️‍🌈 1️⃣ \uD83E\uDD16\uFE0F",
            "\uFFFD\uFEFF\u00AD\u2028\u2029",
        };
        for (String t : texts) {
            assertEquals(t, classic.decode(classic.encode(t)), () -> "round trip of " + t.codePoints().boxed().toList());
            assertTrue(metaspace.encode(t).length > 1);
        }
    }

    @Test
    void randomCodePointsRoundTrip() {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        for (int trial = 0; trial < 500; trial++) {
            StringBuilder sb = new StringBuilder();
            int n = rnd.nextInt(40);
            for (int i = 0; i < n; i++) {
                int cp = switch (rnd.nextInt(4)) {
                    case 0 -> rnd.nextInt(0x80);
                    case 1 -> rnd.nextInt(0x800);
                    case 2 -> rnd.nextInt(0x10000);
                    default -> rnd.nextInt(0x110000);
                };
                if (cp >= 0xD800 && cp <= 0xDFFF) {
                    cp = 'x';
                }
                sb.appendCodePoint(cp);
            }
            String text = sb.toString();
            // literal special-token text stays text, so decode gives back exactly the input
            int[] ids = classic.encode(text, true, false);
            assertEquals(text, classic.decode(ids), () -> "seed " + seed + ": " + text.codePoints().boxed().toList());
            StreamDecoder stream = classic.streamDecoder();
            StringBuilder streamed = new StringBuilder();
            for (int i = 1; i < ids.length; i++) {
                streamed.append(stream.push(ids[i]));
            }
            streamed.append(stream.flush());
            assertEquals(text, streamed.toString(), () -> "stream, seed " + seed + ": " + text.codePoints().boxed().toList());
        }
    }

    @Test
    void hundredThousandCharacterPrompt() {
        String[] words = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "naïve", "café", "数学", "🚀",
            "Straße", "return", "x", "=", "42;", "\n", "    ", "def", "über", "Математика"};
        Random rnd = new Random(7);
        StringBuilder sb = new StringBuilder(100_100);
        while (sb.length() < 100_000) {
            sb.append(words[rnd.nextInt(words.length)]).append(rnd.nextInt(5) == 0 ? ". " : " ");
        }
        String text = sb.substring(0, 100_000);
        String same = "a".repeat(100_000);
        for (Tokenizer t : new Tokenizer[] {classic, metaspace}) {
            long start = System.nanoTime();
            t.encode(text); // first call, includes JIT warm-up
            long coldNanos = System.nanoTime() - start;
            start = System.nanoTime();
            int[] ids = t.encode(text);
            long mixedNanos = System.nanoTime() - start;
            start = System.nanoTime();
            int[] repeated = t.encode(same);
            long sameNanos = System.nanoTime() - start;
            System.out.printf("encode of 100,000 chars (%s): mixed text %d tokens in %.1f ms (first call %.1f ms), "
                            + "'a'x100000 %d tokens in %.1f ms%n", t == classic ? "tokenizer.json" : "tokenizer.metaspace.json",
                    ids.length, mixedNanos / 1e6, coldNanos / 1e6, repeated.length, sameNanos / 1e6);
            assertEquals(text, t.decode(ids));
            assertEquals(same, t.decode(repeated));
        }
    }

    @Test
    void missingTokenizerJsonNamesTheFile() {
        CheckpointException e = assertThrows(CheckpointException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
        assertTrue(e.getMessage().contains("not found"), e.getMessage());
    }

    @Test
    void invalidFilesNameFileAndProblem() throws IOException {
        assertProblem("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [", "not valid JSON");
        assertProblem("[1, 2]", "not a JSON object");
        assertProblem("{\"version\": \"1.0\"}", "missing \"model\"");
        assertProblem("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "WordPiece");
        assertProblem("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a q\"]}}", "merges[0] uses \"q\"");
        assertProblem("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a a\"]}}", "makes \"aa\"");
        assertProblem("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                + " \"pre_tokenizer\": {\"type\": \"ByteLevel\"}}", "pre_tokenizer.type \"ByteLevel\" is not supported");
        assertProblem("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                + " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"WordPiece\"}]}}", "decoder.decoders[0].type");
    }

    @Test
    void configNamingAnUnknownTokenIsRefused() throws IOException {
        Path config = dir.resolve("tokenizer_config.json");
        Files.writeString(config, "{\"bos_token\": {\"content\": \"<bos>\"}, \"add_bos_token\": true}");
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> Tokenizer.fromFiles(FixtureDir.file("tokenizer/tokenizer.json"), config));
        assertTrue(e.getMessage().contains(config.toString()) && e.getMessage().contains("<bos>"), e.getMessage());
    }

    @Test
    void outOfRangeIdsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> classic.decode(new int[] {32000}));
        assertThrows(IllegalArgumentException.class, () -> classic.tokenText(-1));
    }

    private void assertProblem(String json, String expected) throws IOException {
        Path f = dir.resolve("tokenizer.json");
        Files.writeString(f, json);
        CheckpointException e = assertThrows(CheckpointException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expected), () -> "expected \"" + expected + "\" in: " + e.getMessage());
    }
}
