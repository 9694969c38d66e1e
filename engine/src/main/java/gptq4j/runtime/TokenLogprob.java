package gptq4j.runtime;

import java.util.List;

/**
 * The log-probability of one generated token and the top alternatives, from the log-softmax of the
 * logits that chose it (before temperature and filters, as vLLM reports them).
 */
public record TokenLogprob(int tokenId, double logprob, List<Top> top) {
    /** One alternative. */
    public record Top(int tokenId, double logprob) { }
}
