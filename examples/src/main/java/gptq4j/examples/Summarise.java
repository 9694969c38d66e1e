package gptq4j.examples;

import gptq4j.spark.GenerateOptions;
import gptq4j.spark.GenerateProgress;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static gptq4j.spark.functions.generate_struct;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.lit;

/**
 * Summarises one text column of a table: each row's prompt is the template with {@code {text}} replaced by the
 * column's value; writes every input column plus {@code summary}, {@code finish_reason} and {@code summary_tokens}.
 * <pre>
 *   bin/run-example Summarise --model DIR --input examples/data/articles.csv --column body --output DIR
 *       [--template "Summarise: {text}\nSummary:"] [--max-new-tokens 48] [--format jsonl|parquet] [--device D]
 * </pre>
 * Greedy; generation stops at the first blank line ({@code stop = "\n\n"}) or after {@code --max-new-tokens}.
 */
public final class Summarise {

    static final String DEFAULT_TEMPLATE = "Summarise: {text}\nSummary:";
    static final String USAGE = "usage: Summarise --model DIR --input FILE --column NAME --output DIR "
            + "[--template T (with {text})] [--max-new-tokens N] [--format jsonl|parquet] [--device D] [--master URL]";
    static final List<String> FLAGS = List.of("model", "input", "column", "output", "template", "format",
            "max-new-tokens", "device", "master");

    private Summarise() { }

    public static void main(String[] argv) {
        ExampleArgs a = new ExampleArgs(argv, USAGE, FLAGS);
        String input = a.require("input"), column = a.require("column"), output = a.require("output");
        String template = a.get("template", DEFAULT_TEMPLATE).replace("\\n", "\n");
        if (!template.contains("{text}")) a.fail("--template must contain {text}");
        String format = a.get("format", "jsonl").toLowerCase(Locale.ROOT);
        if (!format.equals("jsonl") && !format.equals("parquet")) a.fail("--format must be jsonl or parquet, got " + format);
        int maxNew = Integer.parseInt(a.get("max-new-tokens", "48"));
        SparkSession spark = a.session("gptq4j Summarise").getOrCreate();
        try {
            long rows = run(spark, input, column, template, maxNew, output, format, System.err);
            System.out.println("Summarise: " + rows + " rows, column " + column + ", written to " + output + " (" + format + ")");
        } finally {
            spark.stop();
        }
    }

    /** The prompt column: template prefix ++ text ++ template suffix. */
    static Column prompt(Column text, String template) {
        int at = template.indexOf("{text}");
        return concat(lit(template.substring(0, at)), text, lit(template.substring(at + "{text}".length())));
    }

    static long run(SparkSession spark, String input, String column, String template, int maxNewTokens, String output,
                    String format, java.io.PrintStream progress) {
        Dataset<Row> in = BatchGenerate.read(spark, input);
        List<String> columns = List.of(in.columns());
        if (!columns.contains(column)) {
            throw new IllegalArgumentException(input + " has no column " + column + " (columns: " + columns + ")");
        }
        GenerateOptions options = GenerateOptions.greedy(maxNewTokens).stop("\n\n");
        List<Column> out = new ArrayList<>();
        for (String c : columns) out.add(col("`" + c + "`"));
        out.add(col("__s.text").as("summary"));
        out.add(col("__s.finish_reason").as("finish_reason"));
        out.add(col("__s.completion_tokens").as("summary_tokens"));
        Dataset<Row> result = in.withColumn("__s", generate_struct(prompt(col("`" + column + "`"), template), options))
                .select(out.toArray(new Column[0]));
        long total = in.count();
        try (GenerateProgress p = GenerateProgress.start(spark, total, progress, 5_000)) {
            if (format.equals("parquet")) result.write().mode("overwrite").parquet(output);
            else result.write().mode("overwrite").option("ignoreNullFields", "false").json(output);
        }
        return total;
    }
}
