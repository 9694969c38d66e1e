package gptq4j.runtime;

/**
 * One prompt to complete.
 *
 * @param prompt  the text; null gives a null result (Spark null semantics)
 * @param params  sampling parameters
 */
public record GenerationRequest(String prompt, SamplingParams params) {
    public GenerationRequest {
        if (params == null) params = SamplingParams.defaults();
    }
}
