package gptq4j.spark;

import org.apache.spark.sql.Column;

import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Options of one {@code generate} call. Each value is a constant, or a {@link Column} evaluated per row (set with
 * {@link #set(String, Object)}). Unset options take the {@code spark.gptq4j.sampling.*} defaults.
 * <pre>
 *   generate(col("prompt"), GenerateOptions.greedy(32).stop("###"))
 *   generate(col("prompt"), new GenerateOptions().temperature(0.7).set("seed", col("id")))
 * </pre>
 */
public final class GenerateOptions implements Serializable {

    private final Map<String, Object> values = new LinkedHashMap<>();

    /** Greedy decoding of at most {@code maxNewTokens} tokens. */
    public static GenerateOptions greedy(int maxNewTokens) {
        return new GenerateOptions().temperature(0).maxNewTokens(maxNewTokens);
    }

    public GenerateOptions maxNewTokens(int n) { return set(SamplingOption.MAX_NEW_TOKENS.sqlName(), n); }
    public GenerateOptions temperature(double t) { return set(SamplingOption.TEMPERATURE.sqlName(), t); }
    public GenerateOptions topK(int k) { return set(SamplingOption.TOP_K.sqlName(), k); }
    public GenerateOptions topP(double p) { return set(SamplingOption.TOP_P.sqlName(), p); }
    public GenerateOptions minP(double p) { return set(SamplingOption.MIN_P.sqlName(), p); }
    public GenerateOptions repetitionPenalty(double p) { return set(SamplingOption.REPETITION_PENALTY.sqlName(), p); }
    public GenerateOptions presencePenalty(double p) { return set(SamplingOption.PRESENCE_PENALTY.sqlName(), p); }
    public GenerateOptions frequencyPenalty(double p) { return set(SamplingOption.FREQUENCY_PENALTY.sqlName(), p); }
    public GenerateOptions seed(long s) { return set(SamplingOption.SEED.sqlName(), s); }
    public GenerateOptions stop(String... stop) { return set(SamplingOption.STOP.sqlName(), stop.clone()); }
    public GenerateOptions ignoreEos(boolean b) { return set(SamplingOption.IGNORE_EOS.sqlName(), b); }

    /**
     * Sets option {@code name} (any of {@link SamplingOption}) to a constant (number, boolean, string, String[] or
     * List of strings for stop) or a {@link Column} evaluated per row.
     */
    public GenerateOptions set(String name, Object value) {
        SamplingOption o = SamplingOption.byName(name);
        if (o == null) throw new IllegalArgumentException("unknown generate option '" + name + "'; known: " + SamplingOption.names());
        if (value instanceof List<?> l) value = l.stream().map(String::valueOf).toArray(String[]::new);
        values.put(o.sqlName(), value);
        return this;
    }

    /** The options set so far, by SQL name, in the order set. */
    public Map<String, Object> asMap() { return Collections.unmodifiableMap(values); }
}
