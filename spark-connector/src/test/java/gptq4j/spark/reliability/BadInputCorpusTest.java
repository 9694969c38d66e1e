package gptq4j.spark.reliability;

import gptq4j.runtime.Engine;
import gptq4j.runtime.EngineOptions;
import gptq4j.runtime.GenerationRequest;
import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;
import gptq4j.spark.Fixtures;
import gptq4j.tokenizer.Tokenizer;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import static gptq4j.spark.functions.generate_struct;
import static org.apache.spark.sql.functions.col;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * 10,000 rows of bad input through generate_struct on local[2]: nulls, empty and blank prompts, 100,000-character
 * prompts (digits beyond the 32,768-token window; English text beyond a deliberately small KV cache), unpaired
 * surrogates, control characters, right-to-left text, emoji, literal special-token text and per-row parameters out
 * of range. Every row comes back, in input order, as null (null prompt), a result, or finish_reason "error" with a
 * message; a sample of rows of every kind equals Engine.generate on the same prompt and parameters.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BadInputCorpusTest {

    static final int ROWS = 10_000;
    /** 4 MiB of KV cache: 4,096 tokens of the tiny model (2 layers × 2 × 64 floats per token), so a ~23k-token prompt cannot fit. */
    static final long KV_BYTES = 4L << 20;
    static final Set<Integer> HUGE_DIGITS = Set.of(1_000, 6_666);
    static final Set<Integer> HUGE_ENGLISH = Set.of(3_333, 9_999);

    enum Kind { NULL, EMPTY, BLANK, SURROGATE, CONTROL, RTL, EMOJI, SPECIAL_TEXT, NEG_MAX_NEW, TEMP_NAN, TOP_P_2, HUGE_DIGITS, HUGE_ENGLISH, NORMAL }

    record Input(long id, String prompt, int maxNew, double temperature, double topP, long seed, Kind kind) { }

    SparkSession spark;
    List<Input> corpus;

    static final String[] BLANK = {" ", "   ", "\t\n  ", "\u00a0\u2003\u3000", "\r\n\r\n"};
    static final String[] SURROGATE = {"abc\uD800def", "\uDC00", "x\uDBFF", "\uDFFF\uD800 lone pair reversed", "end\uD83D"};
    static final String[] CONTROL = {"\u0000\u0001\u0002 hello", "\u001b[31mred\u001b[0m", "del\u007f\u0085\u2028\u2029",
            "\b\f\u000b tabs\tand\rreturns", "\u200b\u200d\ufeff zero width"};
    static final String[] RTL = {"שלום עולם", "مرحبا بالعالم", "\u202Eevil\u202C text", "abc \u05d0\u05d1\u05d2 123 \u0627\u0644",
            "\u200f\u061c mixed \u200e"};
    static final String[] EMOJI = {"👩‍👩‍👧‍👦 family", "🇫🇷🇯🇵 flags", "👍🏽 thumbs", "😀😃😄😁", "🤖".repeat(50)};
    static final String[] SPECIAL_TEXT = {"<s>", "</s>", "[INST] hi [/INST]", "<s>[INST] What is 2+2? [/INST]</s>", "<unk> and <s> inside"};
    static final String[] NORMAL = {"Hello my name is", "The capital of France is", "Once upon a time", "def f(x):",
            "1, 2, 3, 4,", "Écrire en français: ", "日本語のテキスト", "The quick brown fox"};

    @BeforeAll
    void start() {
        spark = Reliability.session("local[2]", "gptq4j-bad-input")
                .config("spark.gptq4j.kvCacheBytes", Long.toString(KV_BYTES))
                .getOrCreate();
        corpus = corpus();
    }

    @AfterAll
    void stop() {
        if (spark != null) spark.stop();
    }

    static List<Input> corpus() {
        String english = "The committee reviewed the proposal in detail and agreed to publish the findings next spring. ";
        List<Input> out = new ArrayList<>(ROWS);
        for (int i = 0; i < ROWS; i++) {
            int maxNew = 1 + i % 2;
            double temp = (i / 20) % 2 == 0 ? 0.0 : 0.8;
            double topP = 0.9;
            int v = (i / 20) % 5;
            Kind kind;
            String prompt;
            if (HUGE_DIGITS.contains(i)) {
                kind = Kind.HUGE_DIGITS;
                StringBuilder sb = new StringBuilder(100_000);
                for (int k = 0; k < 100_000; k++) sb.append((char) ('0' + (k * 7 + i) % 10));
                prompt = sb.toString();
            } else if (HUGE_ENGLISH.contains(i)) {
                kind = Kind.HUGE_ENGLISH;
                prompt = english.repeat(100_000 / english.length() + 1).substring(0, 100_000);
            } else {
                switch (i % 20) {
                    case 0 -> { kind = Kind.NULL; prompt = null; }
                    case 1 -> { kind = Kind.EMPTY; prompt = ""; }
                    case 2 -> { kind = Kind.BLANK; prompt = BLANK[v]; }
                    case 3 -> { kind = Kind.SURROGATE; prompt = SURROGATE[v]; }
                    case 4 -> { kind = Kind.CONTROL; prompt = CONTROL[v]; }
                    case 5 -> { kind = Kind.RTL; prompt = RTL[v]; }
                    case 6 -> { kind = Kind.EMOJI; prompt = EMOJI[v]; }
                    case 7 -> { kind = Kind.SPECIAL_TEXT; prompt = SPECIAL_TEXT[v]; }
                    case 8 -> { kind = Kind.NEG_MAX_NEW; prompt = NORMAL[v]; maxNew = -1 - v; }
                    case 9 -> { kind = Kind.TEMP_NAN; prompt = NORMAL[v]; temp = Double.NaN; }
                    case 10 -> { kind = Kind.TOP_P_2; prompt = NORMAL[v]; topP = 2.0; }
                    default -> { kind = Kind.NORMAL; prompt = NORMAL[i % NORMAL.length] + " #" + i; }
                }
            }
            out.add(new Input(i, prompt, maxNew, temp, topP, i, kind));
        }
        return out;
    }

    /** The string Spark hands on: Java text as UTF-8 (an unpaired surrogate becomes '?'). */
    static String asSparkSees(String s) {
        return s == null ? null : new String(s.getBytes(StandardCharsets.UTF_8), StandardCharsets.UTF_8);
    }

    Dataset<Row> frame(List<Input> rows) {
        List<Row> data = new ArrayList<>(rows.size());
        for (Input in : rows) data.add(RowFactory.create(in.id(), in.prompt(), in.maxNew(), in.temperature(), in.topP(), in.seed()));
        StructType schema = new StructType().add("id", DataTypes.LongType, false).add("prompt", DataTypes.StringType, true)
                .add("n", DataTypes.IntegerType, false).add("temp", DataTypes.DoubleType, false)
                .add("top_p", DataTypes.DoubleType, false).add("seed", DataTypes.LongType, false);
        return spark.createDataFrame(data, schema);
    }

    static Column perRow() {
        return generate_struct(col("prompt"), Map.of("max_new_tokens", col("n"), "temperature", col("temp"),
                "top_p", col("top_p"), "seed", col("seed")));
    }

    @Test
    @Timeout(value = 170, unit = TimeUnit.SECONDS)
    void everyRowComesBackInOrderWithAResultOrAnError() {
        long t0 = System.nanoTime();
        List<Row> got = frame(corpus).select(col("id"), perRow().as("r")).collectAsList();
        double seconds = (System.nanoTime() - t0) / 1e9;

        assertEquals(ROWS, got.size(), "rows out");
        int errors = 0, nulls = 0, results = 0, tokens = 0;
        for (int i = 0; i < ROWS; i++) {
            Input in = corpus.get(i);
            Row row = got.get(i);
            assertEquals((long) i, row.getLong(0), "row " + i + " out of order");
            Row r = row.getStruct(1);
            if (in.kind() == Kind.NULL) {
                assertNull(r, "row " + i + ": a null prompt gives a null result");
                nulls++;
                continue;
            }
            assertNotNull(r, "row " + i + " (" + in.kind() + ") has no result");
            String reason = r.getAs("finish_reason");
            String error = r.getAs("error");
            boolean shouldFail = switch (in.kind()) {
                case NEG_MAX_NEW, TEMP_NAN, TOP_P_2, HUGE_DIGITS, HUGE_ENGLISH -> true;
                default -> false;
            };
            if (shouldFail) {
                assertEquals("error", reason, "row " + i + " (" + in.kind() + ")");
                assertNotNull(error, "row " + i + ": an error row carries a message");
                String expectedWord = switch (in.kind()) {
                    case NEG_MAX_NEW -> "max_new_tokens";
                    case TEMP_NAN -> "temperature";
                    case TOP_P_2 -> "top_p";
                    case HUGE_DIGITS -> "context window";
                    default -> "KV-cache";
                };
                assertTrue(error.contains(expectedWord), "row " + i + " (" + in.kind() + "): " + error);
                String text = r.getAs("text");
                assertTrue(text == null || text.isEmpty(), "row " + i + ": an error row has no text, got " + text);
                errors++;
            } else {
                assertTrue(Set.of("stop", "length").contains(reason), "row " + i + " (" + in.kind() + "): " + reason + " / " + error);
                assertNull(error, "row " + i);
                assertNotNull(r.getAs("text"), "row " + i);
                int completion = r.<Integer>getAs("completion_tokens");
                assertTrue(completion >= 1 && completion <= in.maxNew(), "row " + i + ": " + completion + " tokens");
                assertTrue(r.<Integer>getAs("prompt_tokens") >= 1, "row " + i + ": the prompt has at least BOS");
                tokens += completion;
                results++;
            }
        }
        Reliability.figure("bad-input", String.format("rows in %d, rows out %d, results %d, error rows %d, null rows %d, "
                + "generated tokens %d, %.1f s (%.0f rows/s) on local[2]", ROWS, got.size(), results, errors, nulls, tokens,
                seconds, ROWS / seconds));

        // A sample of every kind equals the engine run directly (same prompt as Spark hands it on, same parameters).
        List<Integer> sample = new ArrayList<>();
        for (int i = 0; i < ROWS; i += 7) sample.add(i);
        sample.addAll(HUGE_DIGITS);
        sample.addAll(HUGE_ENGLISH);
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i : sample) {
            Input in = corpus.get(i);
            SamplingParams p = new SamplingParams(in.maxNew(), in.temperature(), 0, in.topP(), 0, 1, 0, 0, in.seed(),
                    List.of(), List.of(), 0, false);
            requests.add(new GenerationRequest(asSparkSees(in.prompt()), p));
        }
        List<GenerationResult> direct;
        try (Engine e = Engine.load(EngineOptions.of(Fixtures.model()).withDevice("cpu").withKvCacheBytes(KV_BYTES))) {
            direct = e.generate(requests);
        }
        for (int k = 0; k < sample.size(); k++) {
            int i = sample.get(k);
            GenerationResult want = direct.get(k);
            Row r = got.get(i).getStruct(1);
            if (want == null) {
                assertNull(r, "row " + i);
                continue;
            }
            String what = "row " + i + " (" + corpus.get(i).kind() + ")";
            boolean failed = want.finishReason().wire().equals("error");
            assertEquals(want.text(), r.getAs("text"), what);
            assertEquals(want.finishReason().wire(), r.getAs("finish_reason"), what);
            assertEquals(want.promptTokens(), (int) r.<Integer>getAs("prompt_tokens"), what);
            assertEquals(want.completionTokens(), (int) r.<Integer>getAs("completion_tokens"), what);
            assertEquals(want.error(), r.getAs("error"), what);
        }
    }

    /** JSON string literal; unpaired surrogates as \\u escapes (which JSON allows), so the record is valid JSON. */
    static String jsonString(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') sb.append('\\').append(c);
            else if (c < 0x20 || Character.isSurrogate(c) || c == 0x7f) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
        return sb.append('"').toString();
    }

    @Test
    @Timeout(value = 150, unit = TimeUnit.SECONDS)
    void dataSourceReadsTheCorpusWithBadlyTypedOptionsAndKeepsEveryRecord(@TempDir Path dir) throws Exception {
        // 2,000 corpus records plus the two huge English ones; options as JSON numbers, with some of the wrong type
        List<Input> inputs = new ArrayList<>(corpus.subList(0, 2_000));
        for (int i : HUGE_ENGLISH) inputs.add(corpus.get(i));
        StringBuilder file = new StringBuilder();
        List<String> badOption = new ArrayList<>();
        for (int line = 0; line < inputs.size(); line++) {
            Input in = inputs.get(line);
            StringBuilder rec = new StringBuilder("{\"prompt\": ").append(in.prompt() == null ? "null" : jsonString(in.prompt()));
            String bad = null;
            if (in.kind() == Kind.NORMAL && in.id() % 20 == 11) {
                rec.append(", \"max_new_tokens\": \"ten\"");
                bad = "max_new_tokens";
            } else if (in.kind() == Kind.NORMAL && in.id() % 20 == 12) {
                rec.append(", \"max_new_tokens\": ").append(in.maxNew()).append(", \"seed\": 1e30");
                bad = "seed";
            } else if (in.kind() == Kind.NORMAL && in.id() % 20 == 13) {
                rec.append(", \"max_new_tokens\": 99999999999");
                bad = "max_new_tokens";
            } else {
                rec.append(", \"max_new_tokens\": ").append(in.maxNew());
            }
            if (bad == null || !bad.equals("seed")) rec.append(", \"seed\": ").append(in.seed());
            rec.append(", \"temperature\": ").append(Double.isNaN(in.temperature()) ? "\"NaN\"" : Double.toString(in.temperature()));
            rec.append(", \"top_p\": ").append(in.topP()).append(", \"unknown_field\": [1, {\"x\": null}]}\n");
            file.append(rec);
            badOption.add(bad);
        }
        Path jsonl = dir.resolve("corpus.jsonl");
        Files.writeString(jsonl, file.toString(), StandardCharsets.UTF_8);

        long t0 = System.nanoTime();
        List<Row> got = spark.read().format("gptq4j").option("numPartitions", "3").option("kvCacheBytes", Long.toString(KV_BYTES))
                .load(jsonl.toString()).collectAsList();
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertEquals(inputs.size(), got.size(), "records out");
        int errors = 0;
        for (int line = 0; line < inputs.size(); line++) {
            Input in = inputs.get(line);
            Row r = got.get(line);
            String what = "record " + line + " (id " + in.id() + ", " + in.kind() + (badOption.get(line) == null ? "" : ", bad " + badOption.get(line)) + ")";
            assertEquals((long) line, r.<Long>getAs("id"), what + " out of order");
            assertEquals(asSparkSees(in.prompt()), r.getAs("prompt"), what);
            String reason = r.getAs("finish_reason");
            if (in.kind() == Kind.NULL) {
                assertNull(reason, what + ": a null prompt has a null result");
                continue;
            }
            String word = badOption.get(line) != null ? badOption.get(line) : switch (in.kind()) {
                case NEG_MAX_NEW -> "max_new_tokens";
                case TEMP_NAN -> "temperature";
                case TOP_P_2 -> "top_p";
                case HUGE_DIGITS -> "context window";
                case HUGE_ENGLISH -> "KV-cache";
                default -> null;
            };
            if (word != null) {
                assertEquals("error", reason, what + ": " + r.getAs("error"));
                assertTrue(String.valueOf(r.<String>getAs("error")).contains(word), what + ": " + r.getAs("error"));
                errors++;
            } else {
                assertTrue(Set.of("stop", "length").contains(reason), what + ": " + reason + " / " + r.getAs("error"));
            }
        }
        Reliability.figure("bad-input-datasource", String.format("records in %d, records out %d, error rows %d, %.1f s",
                inputs.size(), got.size(), errors, seconds));
    }

    private static int count(String s, String sub) {
        int n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) n++;
        return n;
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void specialTokenTextIsLiteralByDefaultAndParsedWhenAsked() {
        List<String> prompts = List.of("<s>hello", "hello </s> world", "[INST] hi [/INST]", "<s>[INST] What? [/INST]</s>",
                "<unk>x", "plain text");
        List<Input> rows = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) rows.add(new Input(i, prompts.get(i), 1, 0.0, 1.0, i, Kind.SPECIAL_TEXT));
        Tokenizer tok = Tokenizer.load(Fixtures.model());

        List<Row> literal = frame(rows).select(perRow().as("r")).collectAsList();
        spark.conf().set("spark.gptq4j.parseSpecialTokens", "true");
        List<Row> parsed;
        try {
            parsed = frame(rows).select(perRow().as("r")).collectAsList();
        } finally {
            spark.conf().unset("spark.gptq4j.parseSpecialTokens");
        }
        int differing = 0;
        for (int i = 0; i < prompts.size(); i++) {
            String p = prompts.get(i);
            int a = literal.get(i).getStruct(0).<Integer>getAs("prompt_tokens");
            int b = parsed.get(i).getStruct(0).<Integer>getAs("prompt_tokens");
            int[] lit = tok.encode(p, true, false), par = tok.encode(p, true, true);
            assertEquals(lit.length, a, "literal: " + p);
            assertEquals(par.length, b, "parsed: " + p);
            // literal: the only special id is the BOS the tokenizer puts first; parsed: the text's <s>, </s>, <unk> are ids
            long litSpecials = java.util.Arrays.stream(lit).skip(1).filter(t -> t <= 2).count();
            long parSpecials = java.util.Arrays.stream(par).skip(1).filter(t -> t <= 2).count();
            assertEquals(0, litSpecials, "literal: " + p + " " + java.util.Arrays.toString(lit));
            int inText = count(p, "<s>") + count(p, "</s>") + count(p, "<unk>");
            assertEquals(inText, parSpecials, "parsed: " + p + " " + java.util.Arrays.toString(par));
            if (a != b) differing++;
        }
        assertTrue(differing >= 3, "the option changes the prompt of most special-token prompts: " + differing);
        Reliability.figure("special-tokens", "prompt tokens literal vs parsed: "
                + literal.stream().map(r -> r.getStruct(0).getAs("prompt_tokens").toString()).toList() + " vs "
                + parsed.stream().map(r -> r.getStruct(0).getAs("prompt_tokens").toString()).toList());
    }
}
