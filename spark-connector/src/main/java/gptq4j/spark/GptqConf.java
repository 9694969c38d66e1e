package gptq4j.spark;

import java.util.List;

/**
 * Every {@code spark.gptq4j.*} configuration key, with its default and a one-line doc. Set them on the
 * SparkConf ({@code --conf}), the session ({@code spark.conf.set}) or, for the data source, as reader options
 * without the prefix (e.g. {@code .option("model", dir)}).
 */
public final class GptqConf {

    /** One key. */
    public record Entry(String key, String defaultValue, String doc) {
        /** The key without {@code spark.gptq4j.}: the data source option name. */
        public String shortName() { return key.substring(PREFIX.length()); }
    }

    public static final String PREFIX = "spark.gptq4j.";

    public static final Entry MODEL = new Entry(PREFIX + "model", "",
            "Checkpoint directory (config.json, *.safetensors, tokenizer.json), readable on every executor.");
    public static final Entry DEVICE = new Entry(PREFIX + "device", "auto",
            "Device when Spark assigned the task no GPU: auto | cpu | cpu-scalar | cuda | cuda:N.");
    public static final Entry DEVICE_FALLBACK = new Entry(PREFIX + "device.fallback", "cpu",
            "Device to load on when the requested one cannot be used (e.g. an assigned GPU without CUDA); none fails the task.");
    public static final Entry MAX_BATCH_SIZE = new Entry(PREFIX + "maxBatchSize", "64",
            "Sequences the engine decodes together at most (continuous batch width).");
    public static final Entry MAX_TOKENS_PER_STEP = new Entry(PREFIX + "maxTokensPerStep", "512",
            "Token budget of one engine step (prefill chunks plus decode tokens).");
    public static final Entry KV_CACHE_BYTES = new Entry(PREFIX + "kvCacheBytes", "0",
            "Bytes for the paged KV cache; 0 sizes it from the model.");
    public static final Entry THREADS = new Entry(PREFIX + "threads", "0",
            "CPU worker threads of the engine, which also sample a step's rows (up to 16); 0 uses the executor's "
                    + "available processors.");
    public static final Entry PROMPT_POLICY = new Entry(PREFIX + "promptPolicy", "error",
            "Prompt longer than the context: error (the row gets finish_reason error) or truncate_left.");
    public static final Entry PARSE_SPECIAL_TOKENS = new Entry(PREFIX + "parseSpecialTokens", "false",
            "Match special-token text such as <s> or [INST] in prompts as special tokens (false keeps it literal).");
    public static final Entry ON_ERROR = new Entry(PREFIX + "onError", "row",
            "A row the engine rejects: row (finish_reason error plus a message, the job goes on) or fail (the task fails naming the row).");
    public static final Entry ROWS_PER_BATCH = new Entry(PREFIX + "rowsPerBatch", "256",
            "Rows per Arrow batch handed to the engine by one task.");
    public static final Entry BATCHES_IN_FLIGHT = new Entry(PREFIX + "batchesInFlight", "2",
            "Batches one task keeps submitted ahead of the rows it emits, so the continuous batch stays full.");
    public static final Entry MARKER_DIR = new Entry(PREFIX + "engine.markerDir", "",
            "If set, every engine load writes a marker file (executor, pid, requested and actual device) here.");

    public static final Entry MAX_NEW_TOKENS = new Entry(PREFIX + "sampling.maxNewTokens", "16",
            "Default max_new_tokens.");
    public static final Entry TEMPERATURE = new Entry(PREFIX + "sampling.temperature", "0.0",
            "Default temperature; 0 is greedy.");
    public static final Entry TOP_K = new Entry(PREFIX + "sampling.topK", "0",
            "Default top_k; 0 disables.");
    public static final Entry TOP_P = new Entry(PREFIX + "sampling.topP", "1.0",
            "Default top_p; 1 disables.");
    public static final Entry MIN_P = new Entry(PREFIX + "sampling.minP", "0.0",
            "Default min_p; 0 disables.");
    public static final Entry REPETITION_PENALTY = new Entry(PREFIX + "sampling.repetitionPenalty", "1.0",
            "Default repetition_penalty; 1 disables.");
    public static final Entry PRESENCE_PENALTY = new Entry(PREFIX + "sampling.presencePenalty", "0.0",
            "Default presence_penalty; 0 disables.");
    public static final Entry FREQUENCY_PENALTY = new Entry(PREFIX + "sampling.frequencyPenalty", "0.0",
            "Default frequency_penalty; 0 disables.");
    public static final Entry SEED = new Entry(PREFIX + "sampling.seed", "0",
            "Default per-row seed; a row's random stream depends only on its seed, so retries reproduce it.");
    public static final Entry STOP = new Entry(PREFIX + "sampling.stop", "[]",
            "Default stop strings as a JSON array, e.g. [\"###\", \"\\n\\n\"].");

    /** All keys, in documentation order. */
    public static final List<Entry> ALL = List.of(MODEL, DEVICE, DEVICE_FALLBACK, MAX_BATCH_SIZE, MAX_TOKENS_PER_STEP,
            KV_CACHE_BYTES, THREADS, PROMPT_POLICY, PARSE_SPECIAL_TOKENS, ON_ERROR, ROWS_PER_BATCH, BATCHES_IN_FLIGHT,
            MARKER_DIR, MAX_NEW_TOKENS, TEMPERATURE, TOP_K, TOP_P, MIN_P, REPETITION_PENALTY, PRESENCE_PENALTY,
            FREQUENCY_PENALTY, SEED, STOP);

    private GptqConf() { }

    /** The keys as a Markdown table, for the README. */
    public static String markdownTable() {
        StringBuilder sb = new StringBuilder("| key | default | meaning |\n|---|---|---|\n");
        for (Entry e : ALL) {
            sb.append("| `").append(e.key()).append("` | `").append(e.defaultValue()).append("` | ")
                    .append(e.doc().replace("|", "\\|")).append(" |\n");
        }
        return sb.toString();
    }
}
