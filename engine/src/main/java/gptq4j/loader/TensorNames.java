package gptq4j.loader;

/**
 * The checkpoint's tensor names, in one table. Everything else asks this class; no other file spells
 * a checkpoint name. Names are those of the published Mixtral-8x7B-v0.1-GPTQ checkpoints.
 */
public final class TensorNames {
    private TensorNames() { }

    /** [vocab, hidden] fp16 token embeddings. */
    public static final String EMBED = "model.embed_tokens.weight";
    /** [vocab, hidden] fp16 output projection. */
    public static final String LM_HEAD = "lm_head.weight";
    /** [hidden] fp16 final RMSNorm weight. */
    public static final String FINAL_NORM = "model.norm.weight";

    /** [hidden] fp16 RMSNorm before attention. */
    public static String attnNorm(int layer) { return layer(layer) + "input_layernorm.weight"; }

    /** [hidden] fp16 RMSNorm before the MoE block. */
    public static String ffnNorm(int layer) { return layer(layer) + "post_attention_layernorm.weight"; }

    /** GPTQ prefix of an attention projection; proj is one of q, k, v, o. */
    public static String attn(int layer, char proj) { return layer(layer) + "self_attn." + proj + "_proj"; }

    /** [experts, hidden] fp16 router. */
    public static String router(int layer) { return layer(layer) + "block_sparse_moe.gate.weight"; }

    /** GPTQ prefix of an expert projection; w is 1 (gate), 2 (down) or 3 (up). */
    public static String expert(int layer, int expert, int w) {
        return layer(layer) + "block_sparse_moe.experts." + expert + ".w" + w;
    }

    /** GPTQ tensors under a linear's prefix. */
    public static final String QWEIGHT = ".qweight";
    public static final String QZEROS = ".qzeros";
    public static final String SCALES = ".scales";
    public static final String G_IDX = ".g_idx";
    public static final String BIAS = ".bias";

    private static String layer(int l) { return "model.layers." + l + "."; }
}
