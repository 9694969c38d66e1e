package gptq4j.examples;

import gptq4j.spark.GenerateProgress;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static gptq4j.spark.functions.generate_struct;
import static org.apache.spark.sql.functions.col;

/**
 * The main batch job: completes every prompt of a JSONL, Parquet or CSV file and writes every input column plus
 * text, finish_reason, prompt_tokens, completion_tokens and error, as JSONL or Parquet.
 * <pre>
 *   bin/run-example BatchGenerate --model DIR --input FILE --output DIR --format jsonl|parquet
 *       [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--device D] [--master URL]
 * </pre>
 * Defaults match {@code bin/gptq4j generate}: greedy (temperature 0), 16 new tokens. Per-row columns
 * max_new_tokens, temperature, top_p, top_k and seed override the flags where present and not null.
 * A progress line (rows, generated tokens, tokens/s, ETA) goes to stderr every few seconds, a summary to stdout.
 */
public final class BatchGenerate {

    static final List<String> PER_ROW = List.of("max_new_tokens", "temperature", "top_p", "top_k", "seed");
    static final String USAGE = "usage: BatchGenerate --model DIR --input FILE --output DIR --format jsonl|parquet "
            + "[--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--device D] [--master URL]";

    private BatchGenerate() { }

    static final List<String> FLAGS = List.of("model", "input", "output", "format", "max-new-tokens", "temperature",
            "top-p", "top-k", "seed", "device", "master");

    public static void main(String[] argv) {
        ExampleArgs a = new ExampleArgs(argv, USAGE, FLAGS);
        String input = a.require("input"), output = a.require("output");
        String format = a.get("format", "jsonl").toLowerCase(Locale.ROOT);
        if (!format.equals("jsonl") && !format.equals("parquet")) a.fail("--format must be jsonl or parquet, got " + format);
        SparkSession spark = a.session("gptq4j BatchGenerate").getOrCreate();
        try {
            Summary s = run(spark, input, output, format, System.err);
            System.out.println("BatchGenerate: " + s);
        } finally {
            spark.stop();
        }
    }

    static final String OPEN_COST = "spark.sql.files.openCostInBytes";

    /** What one run did, as the progress listener saw it. */
    record Summary(long rows, long generatedTokens, double seconds, String output, String format) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "wrote %d rows to %s (%s): %d generated tokens in %.1f s, %.1f tokens/s",
                    rows, output, format, generatedTokens, seconds, seconds > 0 ? generatedTokens / seconds : 0);
        }
    }

    /**
     * Generates for every row of {@code input} and writes the result; prints progress lines (rows, tokens/s, ETA)
     * to {@code progress} (null: none) every few seconds.
     */
    static Summary run(SparkSession spark, String input, String output, String format, java.io.PrintStream progress) {
        // Rows are costly and files of prompts small: let a small file split over all cores (Spark's default open
        // cost of 4 MiB keeps a file under that in one task) unless the job set it.
        if (!spark.conf().contains(OPEN_COST)) spark.conf().set(OPEN_COST, "1024");
        Dataset<Row> in = read(spark, input);
        List<String> columns = List.of(in.columns());
        if (!columns.contains("prompt")) {
            throw new IllegalArgumentException(input + " has no prompt column (columns: " + columns + ")");
        }
        Map<String, Object> perRow = new LinkedHashMap<>();
        for (String c : PER_ROW) if (columns.contains(c)) perRow.put(c, col(c));
        List<Column> out = new ArrayList<>();
        for (String c : columns) out.add(col("`" + c + "`"));
        Dataset<Row> generated = in.withColumn("__gptq4j", generate_struct(col("prompt"), perRow));
        for (String f : List.of("text", "finish_reason", "prompt_tokens", "completion_tokens", "error")) {
            out.add(col("__gptq4j." + f).as(f));
        }
        Dataset<Row> result = generated.select(out.toArray(new Column[0]));
        long total = in.count();
        try (GenerateProgress p = GenerateProgress.start(spark, total, progress, 5_000)) {
            if (format.equals("parquet")) result.write().mode("overwrite").parquet(output);
            else result.write().mode("overwrite").option("ignoreNullFields", "false").json(output);
            p.close();
            return new Summary(p.rows(), p.generatedTokens(), p.elapsedSeconds(), output, format);
        }
    }

    static Dataset<Row> read(SparkSession spark, String input) {
        String lower = input.toLowerCase(Locale.ROOT);
        if (lower.endsWith(".parquet")) return spark.read().parquet(input);
        if (lower.endsWith(".csv")) {
            return spark.read().option("header", "true").option("inferSchema", "true").option("multiLine", "true")
                    .option("escape", "\"").csv(input);
        }
        if (lower.endsWith(".jsonl") || lower.endsWith(".json")) return spark.read().json(input);
        throw new IllegalArgumentException("cannot tell the format of " + input + ": use .jsonl, .json, .parquet or .csv");
    }
}
