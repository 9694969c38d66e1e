package gptq4j.model;

/**
 * Receives intermediate tensors of a forward step for tests and debugging (transformers'
 * output_hidden_states / output_router_logits conventions). Copies cost a device read; pass null to skip.
 */
public interface Probe {
    /** The residual stream [T][hidden]: index 0 embeddings, l = after layer l-1, layers = after the final norm. */
    void hidden(int index, float[] x);

    /** Router logits [T][experts] of a layer. */
    void routerLogits(int layer, float[] logits);
}
