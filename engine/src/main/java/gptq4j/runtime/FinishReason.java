package gptq4j.runtime;

/** Why a sequence stopped. */
public enum FinishReason {
    /** EOS, a stop token or a stop string. */
    STOP("stop"),
    /** max_new_tokens or the context window reached. */
    LENGTH("length"),
    /** The request was rejected or failed; the result's error says why. */
    ERROR("error");

    private final String wire;

    FinishReason(String wire) { this.wire = wire; }

    /** The string written to JSON and Spark columns. */
    public String wire() { return wire; }
}
