package gptq4j.runtime;

import gptq4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Rows the engine rejects fail alone; the others in the batch complete. */
class PromptLimitsTest {
    static final String MODEL = "tiny-mixtral-gptq-4bit-32g-actorder";

    @TempDir
    Path tmp;

    /** 100,000 characters of numbers and words: every digit is a token, so far beyond the 32,768-token window. */
    static String hugePrompt() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; sb.length() < 100_000; i++) sb.append("order ").append(1_000_003L * i % 9_999_991).append(", ");
        return sb.substring(0, 100_000);
    }

    /** 100,000 characters of English: about 23,000 tokens, inside the window. */
    static String hugeEnglish() {
        StringBuilder sb = new StringBuilder();
        while (sb.length() < 100_000) sb.append("the quick brown fox jumps over the lazy dog ");
        return sb.substring(0, 100_000);
    }

    /** The fixture with a shorter context window (links to its safetensors, edited config.json). */
    private Path withWindow(int window) throws IOException {
        Path src = Fixtures.model(MODEL), dst = tmp.resolve("window" + window);
        Files.createDirectories(dst);
        try (var files = Files.list(src)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (!f.getFileName().toString().equals("config.json")) Files.createSymbolicLink(dst.resolve(f.getFileName()), f);
            }
        }
        String cfg = Files.readString(src.resolve("config.json"))
                .replace("\"max_position_embeddings\": 32768", "\"max_position_embeddings\": " + window);
        assertTrue(cfg.contains("\"max_position_embeddings\": " + window));
        Files.writeString(dst.resolve("config.json"), cfg);
        return dst;
    }

    private static List<GenerationRequest> batch(String huge) {
        List<GenerationRequest> reqs = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            reqs.add(new GenerationRequest(i == 4 ? huge : "Prompt number " + i, SamplingParams.greedy(5)));
        }
        reqs.add(new GenerationRequest(null, SamplingParams.greedy(5)));
        reqs.add(new GenerationRequest("", SamplingParams.greedy(5)));
        reqs.add(new GenerationRequest("bad params", SamplingParams.greedy(5).withMaxNewTokens(-3)));
        return reqs;
    }

    @Test
    void hugePromptIsAnErrorRowAndOthersComplete() {
        try (Engine e = Engine.load(EngineOptions.of(Fixtures.model(MODEL)).withDevice("cpu"))) {
            List<GenerationResult> out = e.generate(batch(hugePrompt()));
            assertEquals(12, out.size());
            for (int i = 0; i < 9; i++) {
                GenerationResult r = out.get(i);
                if (i == 4) {
                    assertEquals(FinishReason.ERROR, r.finishReason());
                    assertTrue(r.error().contains("context window"), r.error());
                } else {
                    assertNull(r.error(), "row " + i);
                    assertEquals(5, r.completionTokens());
                }
            }
            assertNull(out.get(9), "null prompt gives a null result");
            assertEquals(1, out.get(10).promptTokens(), "empty prompt is BOS alone");
            assertEquals(5, out.get(10).completionTokens());
            assertEquals(FinishReason.ERROR, out.get(11).finishReason());
            assertTrue(out.get(11).error().contains("max_new_tokens"), out.get(11).error());
        }
    }

    @Test
    void promptLargerThanTheKvCacheIsAnErrorRow() {
        try (Engine e = Engine.load(EngineOptions.of(Fixtures.model(MODEL)).withDevice("cpu").withKvCacheBytes(4L << 20))) {
            List<GenerationResult> out = e.generate(batch(hugeEnglish()));
            GenerationResult r = out.get(4);
            assertTrue(r.promptTokens() < 32768, "fits the window: " + r.promptTokens());
            assertEquals(FinishReason.ERROR, r.finishReason());
            assertTrue(r.error().contains("KV-cache"), r.error());
            for (int i = 0; i < 9; i++) if (i != 4) assertNull(out.get(i).error(), "row " + i);
        }
    }

    @Test
    void truncateLeftKeepsTheEndOfTheHugePrompt() throws IOException {
        Path model = withWindow(1024);
        try (Engine e = Engine.load(EngineOptions.of(model).withDevice("cpu").withPromptPolicy("truncate_left"))) {
            List<GenerationResult> out = e.generate(batch(hugePrompt()));
            GenerationResult r = out.get(4);
            assertNull(r.error());
            assertEquals(1023, r.promptTokens());
            assertEquals(1, r.promptTokenIds()[0], "BOS kept");
            assertEquals(1, r.completionTokens(), "max_new_tokens clipped to the window");
            assertEquals(FinishReason.LENGTH, r.finishReason());
            int[] full = e.tokenizer().encode(hugePrompt(), true, false);
            for (int i = 1; i < 1023; i++) assertEquals(full[full.length - 1023 + i], r.promptTokenIds()[i]);
            for (int i = 0; i < 9; i++) if (i != 4) assertNotNull(out.get(i).text());
        }
    }

    @Test
    void sharedPrefixUsesFewerBlocks() {
        StringBuilder prefix = new StringBuilder();
        for (int i = 0; prefix.length() < 2400; i++) prefix.append("system prompt sentence ").append(i).append(". ");
        List<GenerationRequest> reqs = new ArrayList<>();
        for (int i = 0; i < 256; i++) reqs.add(new GenerationRequest(prefix + "Row " + i + " asks a question", SamplingParams.greedy(2)));
        int batch = 16;
        try (Engine e = Engine.load(EngineOptions.of(Fixtures.model(MODEL)).withDevice("cpu").withMaxBatchSize(batch)
                .withMaxTokensPerStep(2048))) {
            int prefixTokens = e.tokenizer().encode(prefix.toString(), true, false).length;
            assertTrue(prefixTokens >= 500, "prefix is " + prefixTokens + " tokens");
            List<GenerationResult> out = e.generate(reqs);
            int promptLen = out.get(0).promptTokens();
            int blocksPerSeq = (promptLen + 2 + 15) / 16;
            long unshared = (long) batch * blocksPerSeq;     // what 16 running sequences hold without sharing
            long peak = e.stats().peakKvBlocks.get();
            long cached = e.stats().cachedPromptTokens.get();
            // the first sequence computes the prefix; every later one reuses its full blocks
            assertTrue(cached >= 255L * (prefixTokens / 16 * 16 - 16), "cached prompt tokens " + cached);
            assertTrue(peak < unshared / 2, "peak blocks " + peak + " vs " + unshared + " unshared");
            // reproducible: the same results with prefix caching off
            try (Engine plain = Engine.load(EngineOptions.of(Fixtures.model(MODEL)).withDevice("cpu").withMaxBatchSize(batch)
                    .withMaxTokensPerStep(2048).withPrefixCaching(false))) {
                List<GenerationResult> some = plain.generate(reqs.subList(200, 216));
                for (int i = 0; i < 16; i++) {
                    assertEquals(List.of(toList(out.get(200 + i).tokenIds())), List.of(toList(some.get(i).tokenIds())));
                }
                assertEquals(0, plain.stats().cachedPromptTokens.get());
                assertTrue(plain.stats().peakKvBlocks.get() >= unshared - batch, "unshared peak " + plain.stats().peakKvBlocks.get());
            }
        }
    }

    private static List<Integer> toList(int[] a) {
        List<Integer> l = new ArrayList<>();
        for (int x : a) l.add(x);
        return l;
    }
}
