package gptq4j.examples;

import gptq4j.spark.GptqConf;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import java.util.ArrayList;
import java.util.HashMap;
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
 */
public final class BatchGenerate {

    static final List<String> PER_ROW = List.of("max_new_tokens", "temperature", "top_p", "top_k", "seed");
    static final String USAGE = "usage: BatchGenerate --model DIR --input FILE --output DIR --format jsonl|parquet "
            + "[--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--device D] [--master URL]";

    private BatchGenerate() { }

    public static void main(String[] argv) {
        Map<String, String> a = parse(argv);
        for (String required : List.of("model", "input", "output")) {
            if (!a.containsKey(required)) fail("missing --" + required);
        }
        String format = a.getOrDefault("format", "jsonl").toLowerCase(Locale.ROOT);
        if (!format.equals("jsonl") && !format.equals("parquet")) fail("--format must be jsonl or parquet, got " + format);

        SparkSession.Builder builder = SparkSession.builder().appName("gptq4j BatchGenerate");
        if (a.containsKey("master") && System.getProperty("spark.master") == null) builder.master(a.get("master"));
        builder.config(GptqConf.MODEL.key(), a.get("model"))
                .config(GptqConf.TEMPERATURE.key(), a.getOrDefault("temperature", "0"))
                .config(GptqConf.MAX_NEW_TOKENS.key(), a.getOrDefault("max-new-tokens", "16"));
        if (a.containsKey("top-p")) builder.config(GptqConf.TOP_P.key(), a.get("top-p"));
        if (a.containsKey("top-k")) builder.config(GptqConf.TOP_K.key(), a.get("top-k"));
        if (a.containsKey("seed")) builder.config(GptqConf.SEED.key(), a.get("seed"));
        if (a.containsKey("device")) builder.config(GptqConf.DEVICE.key(), a.get("device"));
        SparkSession spark = builder.getOrCreate();
        try {
            run(spark, a.get("input"), a.get("output"), format);
        } finally {
            spark.stop();
        }
    }

    static void run(SparkSession spark, String input, String output, String format) {
        Dataset<Row> in = read(spark, input);
        List<String> columns = List.of(in.columns());
        if (!columns.contains("prompt")) fail(input + " has no prompt column (columns: " + columns + ")");
        Map<String, Object> perRow = new LinkedHashMap<>();
        for (String c : PER_ROW) if (columns.contains(c)) perRow.put(c, col(c));
        List<Column> out = new ArrayList<>();
        for (String c : columns) out.add(col("`" + c + "`"));
        Dataset<Row> generated = in.withColumn("__gptq4j", generate_struct(col("prompt"), perRow));
        for (String f : List.of("text", "finish_reason", "prompt_tokens", "completion_tokens", "error")) {
            out.add(col("__gptq4j." + f).as(f));
        }
        Dataset<Row> result = generated.select(out.toArray(new Column[0]));
        if (format.equals("parquet")) result.write().mode("overwrite").parquet(output);
        else result.write().mode("overwrite").option("ignoreNullFields", "false").json(output);
    }

    static Dataset<Row> read(SparkSession spark, String input) {
        String lower = input.toLowerCase(Locale.ROOT);
        if (lower.endsWith(".parquet")) return spark.read().parquet(input);
        if (lower.endsWith(".csv")) {
            return spark.read().option("header", "true").option("inferSchema", "true").option("multiLine", "true")
                    .option("escape", "\"").csv(input);
        }
        if (lower.endsWith(".jsonl") || lower.endsWith(".json")) return spark.read().json(input);
        fail("cannot tell the format of " + input + ": use .jsonl, .json, .parquet or .csv");
        return null;
    }

    static Map<String, String> parse(String[] argv) {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String k = argv[i];
            if (!k.startsWith("--") || i + 1 >= argv.length) fail("bad argument '" + k + "'\n" + USAGE);
            a.put(k.substring(2), argv[++i]);
        }
        return a;
    }

    private static void fail(String message) {
        System.err.println("error: " + message);
        System.err.println(USAGE);
        System.exit(2);
    }
}
