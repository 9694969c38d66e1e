package gptq4j.examples;

import gptq4j.spark.GenerateProgress;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import java.util.List;

/**
 * Spark SQL over a table of prompts: registers the input (JSONL, Parquet or CSV) as the view {@code prompts} and runs
 * a query that calls {@code generate} / {@code generate_struct}, then shows the first rows and optionally writes all.
 * <pre>
 *   bin/run-example SqlGenerate --model DIR --input examples/data/prompts.jsonl [--query SQL] [--output DIR]
 *       [--show N] [--max-new-tokens N] [--device D] [--master URL]
 * </pre>
 * The default query is {@link #DEFAULT_QUERY}; for example, per-row options and a struct result:
 * <pre>
 *   SELECT id, lang, r.text, r.finish_reason, r.completion_tokens
 *   FROM (SELECT id, lang, generate_struct(prompt, max_new_tokens =&gt; 24, stop =&gt; array('\n')) AS r
 *         FROM prompts WHERE kind = 'question')
 * </pre>
 */
public final class SqlGenerate {

    static final String DEFAULT_QUERY = "SELECT id, prompt, generate(prompt) AS completion FROM prompts";
    static final String USAGE = "usage: SqlGenerate --model DIR --input FILE [--query SQL] [--output DIR] [--show N] "
            + "[--max-new-tokens N] [--temperature T] [--device D] [--master URL]";
    static final List<String> FLAGS = List.of("model", "input", "query", "output", "show", "max-new-tokens",
            "temperature", "top-p", "top-k", "seed", "device", "master");

    private SqlGenerate() { }

    public static void main(String[] argv) {
        ExampleArgs a = new ExampleArgs(argv, USAGE, FLAGS);
        String input = a.require("input");
        int show = Integer.parseInt(a.get("show", "10"));
        SparkSession spark = a.session("gptq4j SqlGenerate").getOrCreate();
        try {
            List<Row> rows = run(spark, input, a.get("query", DEFAULT_QUERY), a.get("output", null), System.err);
            System.out.println("SqlGenerate: " + rows.size() + " rows" + (a.has("output") ? ", written to " + a.get("output", "") : ""));
            for (Row r : rows.subList(0, Math.min(show, rows.size()))) System.out.println(r.mkString(" | "));
        } finally {
            spark.stop();
        }
    }

    /**
     * Registers {@code input} as the view {@code prompts}, runs {@code query}, writes the result as JSONL to
     * {@code output} when given, and returns its rows (generated once: the result is written, then read back).
     */
    static List<Row> run(SparkSession spark, String input, String query, String output, java.io.PrintStream progress) {
        BatchGenerate.read(spark, input).createOrReplaceTempView("prompts");
        Dataset<Row> result = spark.sql(query);
        try (GenerateProgress p = GenerateProgress.start(spark, -1, progress, 5_000)) {
            if (output == null) return result.collectAsList();
            result.write().mode("overwrite").option("ignoreNullFields", "false").json(output);
        }
        return spark.read().schema(result.schema()).json(output).collectAsList();
    }
}
