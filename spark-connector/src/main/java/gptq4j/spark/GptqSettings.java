package gptq4j.spark;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptq4j.runtime.EngineOptions;
import gptq4j.runtime.SamplingParams;
import org.apache.spark.sql.internal.SQLConf;

import java.io.Serializable;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * The {@link GptqConf} values one query runs with, read once on the driver and shipped with the plan.
 *
 * @param model             checkpoint directory, "" when unset
 * @param device            device when the task has no GPU
 * @param deviceFallback    device to load on when the requested one fails, or "none"
 * @param engine            engine options other than model and device
 * @param sampling          default sampling parameters
 * @param failOnError       onError=fail
 * @param rowsPerBatch      rows per Arrow batch
 * @param batchesInFlight   batches submitted ahead
 * @param markerDir         engine-load marker directory, "" for none
 */
public record GptqSettings(String model, String device, String deviceFallback, EngineParams engine,
                           Sampling sampling, boolean failOnError, int rowsPerBatch, int batchesInFlight,
                           String markerDir) implements Serializable {

    /** The engine knobs (EngineOptions minus model and device); serialisable. */
    public record EngineParams(int maxBatchSize, int maxTokensPerStep, long kvCacheBytes, int threads,
                               String promptPolicy, boolean parseSpecialTokens) implements Serializable { }

    /** Default sampling parameters (SamplingParams is not serialisable). */
    public record Sampling(int maxNewTokens, double temperature, int topK, double topP, double minP,
                           double repetitionPenalty, double presencePenalty, double frequencyPenalty, long seed,
                           List<String> stop) implements Serializable {
        public Sampling {
            stop = List.copyOf(stop);
        }

        public SamplingParams toParams() {
            return new SamplingParams(maxNewTokens, temperature, topK, topP, minP, repetitionPenalty,
                    presencePenalty, frequencyPenalty, seed, stop, List.of(), 0, false);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** From the session (driver) or the propagated task-local SQL conf (executor). */
    public static GptqSettings fromSqlConf(SQLConf conf) {
        return from(k -> conf.getConfString(k, null));
    }

    /**
     * From a lookup of full keys; a null answer means unset. Unparseable values fail naming the key.
     */
    public static GptqSettings from(Function<String, String> lookup) {
        Reader r = new Reader(lookup);
        String policy = r.str(GptqConf.PROMPT_POLICY);
        if (!policy.equals("error") && !policy.equals("truncate_left")) {
            throw new IllegalArgumentException(GptqConf.PROMPT_POLICY.key() + " must be error or truncate_left, got " + policy);
        }
        String onError = r.str(GptqConf.ON_ERROR).toLowerCase(Locale.ROOT);
        if (!onError.equals("row") && !onError.equals("fail")) {
            throw new IllegalArgumentException(GptqConf.ON_ERROR.key() + " must be row or fail, got " + onError);
        }
        EngineParams engine = new EngineParams(r.i(GptqConf.MAX_BATCH_SIZE), r.i(GptqConf.MAX_TOKENS_PER_STEP),
                r.l(GptqConf.KV_CACHE_BYTES), r.i(GptqConf.THREADS), policy, r.b(GptqConf.PARSE_SPECIAL_TOKENS));
        Sampling sampling = new Sampling(r.i(GptqConf.MAX_NEW_TOKENS), r.d(GptqConf.TEMPERATURE),
                r.i(GptqConf.TOP_K), r.d(GptqConf.TOP_P), r.d(GptqConf.MIN_P), r.d(GptqConf.REPETITION_PENALTY),
                r.d(GptqConf.PRESENCE_PENALTY), r.d(GptqConf.FREQUENCY_PENALTY), r.l(GptqConf.SEED),
                r.stop(GptqConf.STOP));
        String invalid = sampling.toParams().validate();
        if (invalid != null) throw new IllegalArgumentException("default sampling parameters (spark.gptq4j.sampling.*): " + invalid);
        int rows = r.i(GptqConf.ROWS_PER_BATCH), ahead = r.i(GptqConf.BATCHES_IN_FLIGHT);
        if (rows < 1) throw new IllegalArgumentException(GptqConf.ROWS_PER_BATCH.key() + " must be ≥ 1, got " + rows);
        if (ahead < 1) throw new IllegalArgumentException(GptqConf.BATCHES_IN_FLIGHT.key() + " must be ≥ 1, got " + ahead);
        return new GptqSettings(r.str(GptqConf.MODEL), r.str(GptqConf.DEVICE), r.str(GptqConf.DEVICE_FALLBACK),
                engine, sampling, onError.equals("fail"), rows, ahead, r.str(GptqConf.MARKER_DIR));
    }

    /** Reader options (keys without the prefix) over the session's settings. */
    public static GptqSettings from(Map<String, String> options, Function<String, String> session) {
        Map<String, String> lower = new java.util.HashMap<>();
        options.forEach((k, v) -> lower.put(k.toLowerCase(Locale.ROOT), v));
        return from(k -> {
            String shortName = k.substring(GptqConf.PREFIX.length()).toLowerCase(Locale.ROOT);
            String v = lower.get(shortName);
            if (v == null) v = lower.get(k.toLowerCase(Locale.ROOT));
            return v != null ? v : session.apply(k);
        });
    }

    /** The default sampling parameters. */
    public SamplingParams defaults() { return sampling.toParams(); }

    /** The model directory, or an error saying how to set it. */
    public Path modelDir() {
        if (model == null || model.isBlank()) {
            throw new IllegalArgumentException("no model: set " + GptqConf.MODEL.key()
                    + " (or the data source option 'model') to a GPTQ checkpoint directory");
        }
        return Path.of(model);
    }

    /** Engine options for loading on {@code dev}. */
    public EngineOptions engineOptions(String dev) {
        return new EngineOptions(modelDir().toAbsolutePath().normalize(), dev, engine.maxBatchSize(),
                engine.maxTokensPerStep(), engine.kvCacheBytes(), 0, engine.threads(), engine.promptPolicy(),
                engine.parseSpecialTokens());
    }

    private record Reader(Function<String, String> lookup) {
        String str(GptqConf.Entry e) {
            String v = lookup.apply(e.key());
            return v == null ? e.defaultValue() : v.trim();
        }

        int i(GptqConf.Entry e) {
            try { return Integer.parseInt(str(e)); }
            catch (NumberFormatException x) { throw bad(e, "an integer"); }
        }

        long l(GptqConf.Entry e) {
            try { return Long.parseLong(str(e)); }
            catch (NumberFormatException x) { throw bad(e, "an integer"); }
        }

        double d(GptqConf.Entry e) {
            try { return Double.parseDouble(str(e)); }
            catch (NumberFormatException x) { throw bad(e, "a number"); }
        }

        boolean b(GptqConf.Entry e) {
            String v = str(e).toLowerCase(Locale.ROOT);
            if (v.equals("true")) return true;
            if (v.equals("false")) return false;
            throw bad(e, "true or false");
        }

        List<String> stop(GptqConf.Entry e) {
            String v = str(e);
            if (v.isEmpty()) return List.of();
            try { return JSON.readValue(v, new TypeReference<List<String>>() { }); }
            catch (Exception x) { throw bad(e, "a JSON array of strings"); }
        }

        IllegalArgumentException bad(GptqConf.Entry e, String what) {
            return new IllegalArgumentException(e.key() + " must be " + what + ", got '" + str(e) + "'");
        }
    }
}
