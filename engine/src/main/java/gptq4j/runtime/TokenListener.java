package gptq4j.runtime;

/** Receives a request's tokens as they are generated (on the engine's scheduler thread: return quickly). */
@FunctionalInterface
public interface TokenListener {
    void onToken(int tokenId);
}
