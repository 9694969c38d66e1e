package gptq4j.spark;

import org.apache.spark.sql.Column;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.apache.spark.sql.functions.call_function;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.struct;

/**
 * Column functions for Java and Scala, the same functions SQL knows as {@code generate} and {@code generate_struct}
 * (they need the gptq4j session extension, which the connector jar installs by itself). Every call in a query is
 * evaluated in large batches by one operator per stage, on the executor's shared engine.
 * <pre>
 *   df.withColumn("out", generate(col("prompt")))
 *   df.withColumn("out", generate(col("prompt"), GenerateOptions.greedy(32)))
 *   df.withColumn("r", generate_struct(col("prompt"), Map.of("max_new_tokens", col("n"), "temperature", 0.0)))
 * </pre>
 */
@SuppressWarnings("checkstyle:TypeName")
public final class functions {

    private functions() { }

    /** The generated text (null for a null prompt or a rejected row), with the session's default options. */
    public static Column generate(Column prompt) {
        return call_function("generate", prompt);
    }

    /** The generated text with per-call options (constants or per-row columns). */
    public static Column generate(Column prompt, GenerateOptions options) {
        return generate(prompt, options.asMap());
    }

    /** The generated text; options by name (see {@link SamplingOption}), each a constant or a {@link Column}. */
    public static Column generate(Column prompt, Map<String, ?> options) {
        return call("generate", prompt, options);
    }

    /** The generated text; {@code options} is a struct column whose fields name options (per-row values). */
    public static Column generate(Column prompt, Column options) {
        return call_function("generate", prompt, options);
    }

    /** struct&lt;text, finish_reason, prompt_tokens, completion_tokens, error&gt; with the default options. */
    public static Column generate_struct(Column prompt) {
        return call_function("generate_struct", prompt);
    }

    /** struct&lt;text, finish_reason, prompt_tokens, completion_tokens, error&gt; with per-call options. */
    public static Column generate_struct(Column prompt, GenerateOptions options) {
        return generate_struct(prompt, options.asMap());
    }

    /** struct&lt;text, finish_reason, prompt_tokens, completion_tokens, error&gt;; options by name. */
    public static Column generate_struct(Column prompt, Map<String, ?> options) {
        return call("generate_struct", prompt, options);
    }

    /** struct&lt;text, finish_reason, prompt_tokens, completion_tokens, error&gt;; options as a struct column. */
    public static Column generate_struct(Column prompt, Column options) {
        return call_function("generate_struct", prompt, options);
    }

    private static Column call(String name, Column prompt, Map<String, ?> options) {
        if (options.isEmpty()) return call_function(name, prompt);
        List<Column> fields = new ArrayList<>();
        for (Map.Entry<String, ?> e : options.entrySet()) {
            SamplingOption o = SamplingOption.byName(e.getKey());
            if (o == null) {
                throw new IllegalArgumentException("unknown generate option '" + e.getKey() + "'; known: " + SamplingOption.names());
            }
            Object v = e.getValue();
            if (v instanceof List<?> l) v = l.stream().map(String::valueOf).toArray(String[]::new);
            Column c = v instanceof Column col ? col : lit(v);
            fields.add(c.as(o.sqlName()));
        }
        return call_function(name, prompt, struct(fields.toArray(new Column[0])));
    }
}
