package gptq4j.runtime;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/** One request inside the scheduler: its tokens, how many have KV in the cache, and its outcome. */
final class Sequence {
    final long id;
    final SamplingParams params;
    final int[] prompt;                 // BOS first
    final int maxNewTokens;             // already clipped to the context window
    final CompletableFuture<GenerationResult> future;
    final List<TokenLogprob> logprobs = new ArrayList<>();
    final TokenListener listener;
    final gptq4j.tokenizer.StreamDecoder decoder;
    final StopChecker stop;
    int[] generated = new int[16];
    int generatedCount;
    /** Tokens (prompt then generated) whose keys and values are in the cache. */
    int computed;
    /** Times this sequence was preempted and recomputed. */
    int preemptions;

    Sequence(long id, SamplingParams params, int[] prompt, int maxNewTokens, CompletableFuture<GenerationResult> future,
             TokenListener listener, gptq4j.tokenizer.StreamDecoder decoder) {
        this.listener = listener;
        this.decoder = decoder;
        this.stop = new StopChecker(params.stop());
        this.id = id;
        this.params = params;
        this.prompt = prompt;
        this.maxNewTokens = maxNewTokens;
        this.future = future;
    }

    int length() { return prompt.length + generatedCount; }

    int tokenAt(int pos) { return pos < prompt.length ? prompt[pos] : generated[pos - prompt.length]; }

    /** All tokens so far (prompt then generated). */
    int[] allTokens() {
        int[] all = Arrays.copyOf(prompt, length());
        System.arraycopy(generated, 0, all, prompt.length, generatedCount);
        return all;
    }

    void append(int token) {
        if (generatedCount == generated.length) generated = Arrays.copyOf(generated, generated.length * 2);
        generated[generatedCount++] = token;
    }

    int[] generatedIds() { return Arrays.copyOf(generated, generatedCount); }
}
