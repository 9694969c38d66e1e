package gptq4j.spark.datasource;

import gptq4j.spark.GptqConf;
import gptq4j.spark.GptqSettings;
import gptq4j.spark.SamplingOption;
import org.apache.spark.sql.internal.SQLConf;

import java.io.Serializable;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The data source's options, resolved on the driver.
 *
 * @param path          prompt file
 * @param format        jsonl or text
 * @param promptField   JSONL field holding the prompt
 * @param numPartitions partitions wanted (0: the default parallelism)
 * @param settings      engine and sampling settings: reader options over the session's spark.gptq4j.* keys
 */
public record ReadOptions(String path, String format, String promptField, int numPartitions, GptqSettings settings)
        implements Serializable {

    /** Sampling option SQL names accepted as reader options, and the key they set. */
    private static final Map<String, GptqConf.Entry> SAMPLING = Map.of(
            SamplingOption.MAX_NEW_TOKENS.sqlName(), GptqConf.MAX_NEW_TOKENS,
            SamplingOption.TEMPERATURE.sqlName(), GptqConf.TEMPERATURE,
            SamplingOption.TOP_K.sqlName(), GptqConf.TOP_K,
            SamplingOption.TOP_P.sqlName(), GptqConf.TOP_P,
            SamplingOption.MIN_P.sqlName(), GptqConf.MIN_P,
            SamplingOption.REPETITION_PENALTY.sqlName(), GptqConf.REPETITION_PENALTY,
            SamplingOption.PRESENCE_PENALTY.sqlName(), GptqConf.PRESENCE_PENALTY,
            SamplingOption.FREQUENCY_PENALTY.sqlName(), GptqConf.FREQUENCY_PENALTY,
            SamplingOption.SEED.sqlName(), GptqConf.SEED,
            SamplingOption.STOP.sqlName(), GptqConf.STOP);

    static ReadOptions from(Map<String, String> raw) {
        Map<String, String> opts = new HashMap<>();
        raw.forEach((k, v) -> opts.put(k.toLowerCase(Locale.ROOT), v));
        String path = opts.get("path");
        if (path == null || path.isBlank()) {
            throw new IllegalArgumentException("gptq4j data source: no prompt file; use .load(path) or .option(\"path\", file)");
        }
        String format = opts.getOrDefault("format",
                path.endsWith(".jsonl") || path.endsWith(".json") ? "jsonl" : "text").toLowerCase(Locale.ROOT);
        if (!format.equals("jsonl") && !format.equals("text")) {
            throw new IllegalArgumentException("gptq4j data source: format must be jsonl or text, got " + format);
        }
        Map<String, String> keyed = new HashMap<>(opts);
        SAMPLING.forEach((name, entry) -> {
            String v = opts.get(name);
            if (v != null) keyed.put(entry.shortName().toLowerCase(Locale.ROOT), v);
        });
        SQLConf conf = SQLConf.get();
        GptqSettings settings = GptqSettings.from(keyed, k -> conf.getConfString(k, null));
        settings.modelDir();
        int parts = Integer.parseInt(opts.getOrDefault("numpartitions", "0"));
        return new ReadOptions(path, format, opts.getOrDefault("promptfield", "prompt"), parts, settings);
    }
}
