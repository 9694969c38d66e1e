package gptq4j.runtime;

import java.util.List;

/**
 * How one request samples. Defaults follow vLLM / Hugging Face: temperature 1, no filters.
 *
 * @param maxNewTokens       tokens to generate at most (clipped to the context window)
 * @param temperature        0 means greedy
 * @param topK               keep the k most likely tokens; 0 or less disables
 * @param topP               nucleus: smallest set with cumulative probability ≥ p; 1 disables
 * @param minP               drop tokens with probability below minP × max probability; 0 disables
 * @param repetitionPenalty  divide positive / multiply negative logits of seen tokens (prompt and output); 1 disables
 * @param presencePenalty    subtract once from logits of tokens already generated; 0 disables
 * @param frequencyPenalty   subtract per occurrence in the generated tokens; 0 disables
 * @param seed               per-request seed; the random stream depends only on it and the step
 * @param stop               stop strings, matched on decoded text and removed from the output
 * @param stopTokenIds       extra token ids that end generation (kept out of the text)
 * @param logprobs           top-K log-probabilities to return per generated token; 0 for none
 * @param ignoreEos          keep generating past EOS
 */
public record SamplingParams(int maxNewTokens, double temperature, int topK, double topP, double minP,
                             double repetitionPenalty, double presencePenalty, double frequencyPenalty,
                             long seed, List<String> stop, List<Integer> stopTokenIds, int logprobs,
                             boolean ignoreEos) {

    public static final int DEFAULT_MAX_NEW_TOKENS = 16;

    public SamplingParams {
        stop = stop == null ? List.of() : List.copyOf(stop);
        stopTokenIds = stopTokenIds == null ? List.of() : List.copyOf(stopTokenIds);
    }

    /** Greedy decoding of at most n tokens. */
    public static SamplingParams greedy(int n) {
        return new SamplingParams(n, 0, 0, 1, 0, 1, 0, 0, 0, List.of(), List.of(), 0, false);
    }

    /** Hugging Face defaults: temperature 1, no filters, 16 tokens. */
    public static SamplingParams defaults() {
        return new SamplingParams(DEFAULT_MAX_NEW_TOKENS, 1, 0, 1, 0, 1, 0, 0, 0, List.of(), List.of(), 0, false);
    }

    public boolean isGreedy() { return temperature == 0; }

    /**
     * Why these parameters cannot be used, or null when they are valid. Bad parameters make one row fail
     * with finish_reason "error", never the batch.
     */
    public String validate() {
        if (maxNewTokens < 0) return "max_new_tokens must be ≥ 0, got " + maxNewTokens;
        if (!(temperature >= 0) || Double.isInfinite(temperature)) return "temperature must be a finite number ≥ 0, got " + temperature;
        if (!(topP > 0 && topP <= 1)) return "top_p must be in (0, 1], got " + topP;
        if (!(minP >= 0 && minP <= 1)) return "min_p must be in [0, 1], got " + minP;
        if (!(repetitionPenalty > 0) || Double.isInfinite(repetitionPenalty)) return "repetition_penalty must be > 0, got " + repetitionPenalty;
        if (!Double.isFinite(presencePenalty)) return "presence_penalty must be finite, got " + presencePenalty;
        if (!Double.isFinite(frequencyPenalty)) return "frequency_penalty must be finite, got " + frequencyPenalty;
        if (logprobs < 0 || logprobs > 20) return "logprobs must be in [0, 20], got " + logprobs;
        for (String s : stop) if (s == null || s.isEmpty()) return "stop strings must be non-empty";
        return null;
    }

    public SamplingParams withMaxNewTokens(int n) {
        return new SamplingParams(n, temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, seed, stop, stopTokenIds, logprobs, ignoreEos);
    }

    public SamplingParams withSeed(long s) {
        return new SamplingParams(maxNewTokens, temperature, topK, topP, minP, repetitionPenalty, presencePenalty,
                frequencyPenalty, s, stop, stopTokenIds, logprobs, ignoreEos);
    }
}
