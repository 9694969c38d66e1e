package gptq4j.runtime;

import java.util.List;

/**
 * The outcome of one request. A failed row carries {@link FinishReason#ERROR} and a message, never an exception.
 *
 * @param promptTokenIds    the tokenised prompt (BOS first)
 * @param tokenIds          generated tokens (stop tokens and the tokens of a matched stop string excluded from text)
 * @param text              decoded completion, stop string removed
 * @param finishReason      stop, length or error
 * @param promptTokens      prompt length in tokens
 * @param completionTokens  generated tokens
 * @param logprobs          per generated token when asked, else empty
 * @param error             null, or why the row failed
 */
public record GenerationResult(int[] promptTokenIds, int[] tokenIds, String text, FinishReason finishReason,
                               int promptTokens, int completionTokens, List<TokenLogprob> logprobs, String error) {

    public static GenerationResult error(int[] promptTokenIds, String message) {
        int[] p = promptTokenIds == null ? new int[0] : promptTokenIds;
        return new GenerationResult(p, new int[0], "", FinishReason.ERROR, p.length, 0, List.of(), message);
    }
}
