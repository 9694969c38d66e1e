package gptq4j.model;

/**
 * The shape of a Mixtral model, read from config.json (see {@link gptq4j.loader.ConfigReader}).
 *
 * @param vocabSize             number of tokens in the vocabulary (32000 for Mixtral-8x7B)
 * @param hidden                residual stream width (4096)
 * @param intermediate          expert MLP width (14336)
 * @param layers                decoder layers (32)
 * @param heads                 query heads (32)
 * @param kvHeads               key/value heads, grouped-query attention (8)
 * @param headDim               width of one head (hidden / heads unless config.json says head_dim)
 * @param experts               experts per MoE block (8)
 * @param topK                  experts chosen per token (2)
 * @param ropeTheta             RoPE base (1e6)
 * @param rmsNormEps            RMSNorm epsilon (1e-5)
 * @param maxPositions          context window (max_position_embeddings, 32768)
 * @param slidingWindow         attention window in tokens, or 0 for none
 * @param bosTokenId            beginning-of-sequence token (1)
 * @param eosTokenId            end-of-sequence token (2)
 * @param tieWordEmbeddings     lm_head shares the embedding matrix
 */
public record MixtralConfig(
        int vocabSize, int hidden, int intermediate, int layers, int heads, int kvHeads, int headDim,
        int experts, int topK, double ropeTheta, double rmsNormEps, int maxPositions, int slidingWindow,
        int bosTokenId, int eosTokenId, boolean tieWordEmbeddings) {

    public MixtralConfig {
        if (hidden <= 0 || intermediate <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || headDim <= 0
                || experts <= 0 || topK <= 0 || vocabSize <= 0) {
            throw new IllegalArgumentException("model dimensions must be positive: " + this);
        }
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads (" + heads
                    + ") must be a multiple of num_key_value_heads (" + kvHeads + ")");
        }
        if (topK > experts) {
            throw new IllegalArgumentException("num_experts_per_tok (" + topK + ") exceeds num_local_experts (" + experts + ")");
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for RoPE, got " + headDim);
        }
    }

    /** Width of all query heads together. */
    public int qDim() { return heads * headDim; }

    /** Width of all key (or value) heads together. */
    public int kvDim() { return kvHeads * headDim; }

    /** Query heads sharing one key/value head. */
    public int groupSize() { return heads / kvHeads; }
}
