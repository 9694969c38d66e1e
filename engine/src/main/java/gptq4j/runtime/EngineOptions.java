package gptq4j.runtime;

import java.nio.file.Path;

/**
 * How to load and run an engine. CLI flags and {@code spark.gptq4j.*} keys map onto these fields.
 *
 * @param modelDir           checkpoint directory (config.json, safetensors, tokenizer.json)
 * @param device             auto | cpu | cpu-scalar | cuda | cuda:N
 * @param maxBatchSize       sequences decoded together at most
 * @param maxTokensPerStep   token budget of one step (prefill chunks + decode tokens)
 * @param kvCacheBytes       memory for the paged KV cache; 0 = a default sized from the model
 * @param blockSize          tokens per KV block
 * @param threads            CPU worker threads (the CPU backend's, and those that sample a step's rows, at most 16);
 *                           0 = available processors
 * @param promptPolicy       what to do with a prompt longer than the context: "error" or "truncate_left"
 * @param parseSpecialTokens match special-token text such as {@code <s>} in prompts as special tokens
 * @param prefixCaching      share KV blocks of identical prompt prefixes between sequences
 */
public record EngineOptions(Path modelDir, String device, int maxBatchSize, int maxTokensPerStep, long kvCacheBytes,
                            int blockSize, int threads, String promptPolicy, boolean parseSpecialTokens,
                            boolean prefixCaching) {

    public static final int DEFAULT_MAX_BATCH_SIZE = 64;
    public static final int DEFAULT_MAX_TOKENS_PER_STEP = 512;
    public static final int DEFAULT_BLOCK_SIZE = 16;

    public EngineOptions {
        if (device == null || device.isBlank()) device = "auto";
        if (maxBatchSize <= 0) maxBatchSize = DEFAULT_MAX_BATCH_SIZE;
        if (maxTokensPerStep <= 0) maxTokensPerStep = DEFAULT_MAX_TOKENS_PER_STEP;
        if (blockSize <= 0) blockSize = DEFAULT_BLOCK_SIZE;
        if (promptPolicy == null || promptPolicy.isBlank()) promptPolicy = "error";
        if (!promptPolicy.equals("error") && !promptPolicy.equals("truncate_left")) {
            throw new IllegalArgumentException("prompt policy must be error or truncate_left, got " + promptPolicy);
        }
    }

    /** All knobs but prefix caching, which is on. */
    public EngineOptions(Path modelDir, String device, int maxBatchSize, int maxTokensPerStep, long kvCacheBytes,
                         int blockSize, int threads, String promptPolicy, boolean parseSpecialTokens) {
        this(modelDir, device, maxBatchSize, maxTokensPerStep, kvCacheBytes, blockSize, threads, promptPolicy,
                parseSpecialTokens, true);
    }

    public static EngineOptions of(Path modelDir) {
        return new EngineOptions(modelDir, "auto", 0, 0, 0, 0, 0, "error", false, true);
    }

    public EngineOptions withPrefixCaching(boolean on) {
        return new EngineOptions(modelDir, device, maxBatchSize, maxTokensPerStep, kvCacheBytes, blockSize, threads, promptPolicy, parseSpecialTokens, on);
    }

    public EngineOptions withParseSpecialTokens(boolean on) {
        return new EngineOptions(modelDir, device, maxBatchSize, maxTokensPerStep, kvCacheBytes, blockSize, threads, promptPolicy, on, prefixCaching);
    }

    public EngineOptions withDevice(String d) {
        return new EngineOptions(modelDir, d, maxBatchSize, maxTokensPerStep, kvCacheBytes, blockSize, threads, promptPolicy, parseSpecialTokens, prefixCaching);
    }

    public EngineOptions withMaxBatchSize(int n) {
        return new EngineOptions(modelDir, device, n, maxTokensPerStep, kvCacheBytes, blockSize, threads, promptPolicy, parseSpecialTokens, prefixCaching);
    }

    public EngineOptions withMaxTokensPerStep(int n) {
        return new EngineOptions(modelDir, device, maxBatchSize, n, kvCacheBytes, blockSize, threads, promptPolicy, parseSpecialTokens, prefixCaching);
    }

    public EngineOptions withThreads(int n) {
        return new EngineOptions(modelDir, device, maxBatchSize, maxTokensPerStep, kvCacheBytes, blockSize, n, promptPolicy, parseSpecialTokens, prefixCaching);
    }

    public EngineOptions withKvCacheBytes(long b) {
        return new EngineOptions(modelDir, device, maxBatchSize, maxTokensPerStep, b, blockSize, threads, promptPolicy, parseSpecialTokens, prefixCaching);
    }

    public EngineOptions withPromptPolicy(String p) {
        return new EngineOptions(modelDir, device, maxBatchSize, maxTokensPerStep, kvCacheBytes, blockSize, threads, p, parseSpecialTokens, prefixCaching);
    }
}
