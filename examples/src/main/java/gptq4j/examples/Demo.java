package gptq4j.examples;

import gptq4j.cli.Main;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static org.apache.spark.sql.functions.col;

/**
 * The quickstart ({@code bin/demo}): makes the default model if it is absent — a tiny Mixtral-shaped GPTQ checkpoint
 * with RANDOM weights and the real Mixtral tokenizer, synthesized by the project ({@code bin/gptq4j synthesize}), so
 * nothing is downloaded — runs {@link BatchGenerate} over the sample prompts on it and prints a sample of the results.
 * The text is meaningless: the weights are random. Point {@code --model} at a real checkpoint for real text.
 * <pre>
 *   bin/run-example Demo [--model DIR] [--tokenizer DIR] [--input FILE] [--output DIR] [--sample N]
 *       [--max-new-tokens N] [--device D] [--master URL]
 * </pre>
 * Defaults (relative to the repository root, where bin/demo runs it): model examples/target/demo-model, tokenizer
 * examples/data/tokenizer, input examples/data/prompts.jsonl, output examples/target/demo-output.
 */
public final class Demo {

    static final String USAGE = "usage: Demo [--model DIR] [--tokenizer DIR] [--input FILE] [--output DIR] [--sample N] "
            + "[--max-new-tokens N] [--device D] [--master URL]";
    static final List<String> FLAGS = List.of("model", "tokenizer", "input", "output", "sample", "max-new-tokens",
            "device", "master");

    private Demo() { }

    public static void main(String[] argv) {
        List<String> args = new ArrayList<>(List.of(argv));
        if (!args.contains("--model")) args.addAll(List.of("--model", "examples/target/demo-model"));
        ExampleArgs a = new ExampleArgs(args.toArray(new String[0]), USAGE, FLAGS);
        Path model = Path.of(a.require("model")).toAbsolutePath();
        boolean made = ensureModel(model, Path.of(a.get("tokenizer", "examples/data/tokenizer")));
        String input = a.get("input", "examples/data/prompts.jsonl");
        String output = a.get("output", "examples/target/demo-output");
        int sample = Integer.parseInt(a.get("sample", "10"));
        SparkSession spark = a.session("gptq4j Demo").getOrCreate();
        try {
            run(spark, model, made, input, output, sample);
        } finally {
            spark.stop();
        }
    }

    /** Synthesizes the demo model into {@code model} unless it has a config.json; true when it made one. */
    static boolean ensureModel(Path model, Path tokenizer) {
        if (Files.isRegularFile(model.resolve("config.json"))) return false;
        if (!Files.isRegularFile(tokenizer.resolve("tokenizer.json"))) {
            throw new IllegalArgumentException("no tokenizer.json in " + tokenizer.toAbsolutePath()
                    + ": run from the repository root or pass --tokenizer DIR (examples/data/tokenizer)");
        }
        int rc = Main.run(new String[]{"synthesize", "--out", model.toString(), "--shape", "tiny", "--bits", "4",
                "--group-size", "128", "--act-order", "--tokenizer", tokenizer.toString()}, System.out, System.err);
        if (rc != 0) throw new IllegalStateException("synthesizing the demo model into " + model + " failed (exit " + rc + ")");
        return true;
    }

    static final String BANNER = """
            ============================================================================================
             gptq4j demo model: a tiny Mixtral-shaped GPTQ checkpoint (4-bit, group 128, act order) with
             RANDOM WEIGHTS and the real Mixtral tokenizer. Its text is MEANINGLESS by design; it shows the
             pipeline (Spark -> Arrow batches -> one shared engine -> results), not the model's quality.
             Use --model DIR with a Mixtral-8x7B-v0.1-GPTQ checkpoint for real text.
            ============================================================================================""";

    /** Runs BatchGenerate over {@code input} and prints the banner, the summary and a sample of the results. */
    static List<Row> run(SparkSession spark, Path model, boolean made, String input, String output, int sample) {
        System.out.println(BANNER);
        System.out.println((made ? "made " : "using ") + model);
        BatchGenerate.Summary s = BatchGenerate.run(spark, input, output, "jsonl", System.err);
        System.out.println("BatchGenerate " + s);
        List<Row> rows = spark.read().json(output).orderBy(col("id")).collectAsList();
        List<Row> picked = sample(rows, sample);
        System.out.println("sample of " + picked.size() + " of " + rows.size() + " results (random weights: meaningless text):");
        for (Row r : picked) {
            System.out.printf(Locale.ROOT, "%n  [%s] %s%n    prompt: %s%n    text:   %s%n    (%s, %d prompt tokens, %d generated)%n",
                    r.getAs("id"), field(r, "lang"), oneLine(r.getAs("prompt")), oneLine(r.getAs("text")),
                    r.<String>getAs("finish_reason"), r.<Long>getAs("prompt_tokens"), r.<Long>getAs("completion_tokens"));
        }
        System.out.println();
        System.out.println("all results: " + Path.of(output).toAbsolutePath() + " (JSON lines)");
        return rows;
    }

    /** Up to {@code n} rows, round-robin over the languages when the input has a lang column. */
    static List<Row> sample(List<Row> rows, int n) {
        Map<String, List<Row>> byLang = new LinkedHashMap<>();
        for (Row r : rows) byLang.computeIfAbsent(field(r, "lang"), k -> new ArrayList<>()).add(r);
        List<Row> out = new ArrayList<>();
        for (int i = 0; out.size() < n; i++) {
            boolean any = false;
            for (List<Row> l : byLang.values()) {
                if (i < l.size() && out.size() < n) {
                    out.add(l.get(i));
                    any = true;
                }
            }
            if (!any) break;
        }
        return out;
    }

    private static String field(Row r, String name) {
        return List.of(r.schema().fieldNames()).contains(name) ? String.valueOf(r.<Object>getAs(name)) : "-";
    }

    private static String oneLine(String s) {
        if (s == null) return "null";
        String t = s.replace("\n", "\\n");
        return t.length() > 100 ? t.substring(0, 97) + "..." : t;
    }
}
