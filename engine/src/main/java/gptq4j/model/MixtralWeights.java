package gptq4j.model;

import gptq4j.backend.Backend;
import gptq4j.loader.Checkpoint;
import gptq4j.loader.HalfMatrix;
import gptq4j.loader.TensorNames;
import gptq4j.quant.gptq.GptqLinear;

import java.util.function.Function;

/**
 * The model's weights, prepared once on a backend (repacked / uploaded). Each field is an opaque handle
 * returned by {@link Backend#prepareLinear} or {@link Backend#prepareDense}; shapes in comments.
 */
public final class MixtralWeights {
    /** fp16 [vocab][hidden] token embeddings. */
    public final Object embed;
    /** fp16 [vocab][hidden] output projection (the embeddings when tied). */
    public final Object lmHead;
    /** fp16 [1][hidden] final RMSNorm weight. */
    public final Object finalNorm;
    /** One entry per decoder layer. */
    public final Layer[] layers;

    /**
     * One decoder layer.
     *
     * @param attnNorm fp16 [1][hidden]
     * @param q        GPTQ hidden → heads*headDim
     * @param k        GPTQ hidden → kvHeads*headDim
     * @param v        GPTQ hidden → kvHeads*headDim
     * @param o        GPTQ heads*headDim → hidden
     * @param ffnNorm  fp16 [1][hidden]
     * @param router   fp16 [experts][hidden]
     * @param w1       per expert, GPTQ hidden → intermediate (gate)
     * @param w3       per expert, GPTQ hidden → intermediate (up)
     * @param w2       per expert, GPTQ intermediate → hidden (down)
     */
    public record Layer(Object attnNorm, Object q, Object k, Object v, Object o, Object ffnNorm, Object router,
                        Object[] w1, Object[] w3, Object[] w2) { }

    private MixtralWeights(Object embed, Object lmHead, Object finalNorm, Layer[] layers) {
        this.embed = embed;
        this.lmHead = lmHead;
        this.finalNorm = finalNorm;
        this.layers = layers;
    }

    /** Weights from handles already prepared on a backend (e.g. synthetic weights generated on a device). */
    public static MixtralWeights of(Object embed, Object lmHead, Object finalNorm, Layer[] layers) {
        return new MixtralWeights(embed, lmHead, finalNorm, layers.clone());
    }

    /** Maps every tensor from the checkpoint (checked against the config) and prepares it on the backend. */
    public static MixtralWeights load(Checkpoint ck, Backend be) {
        return load(ck, be::prepareLinear, be::prepareDense);
    }

    /**
     * Maps every tensor and hands it to the given preparers (identity preparers just validate the
     * checkpoint: every name present, every dtype and shape as the config implies).
     */
    public static MixtralWeights load(Checkpoint ck, Function<GptqLinear, Object> linear, Function<HalfMatrix, Object> dense) {
        MixtralConfig c = ck.config();
        int h = c.hidden();
        Object embed = dense.apply(ck.half(TensorNames.EMBED, c.vocabSize(), h));
        Object lmHead = c.tieWordEmbeddings() && !ck.has(TensorNames.LM_HEAD) ? embed
                : dense.apply(ck.half(TensorNames.LM_HEAD, c.vocabSize(), h));
        Object norm = dense.apply(ck.half(TensorNames.FINAL_NORM, 1, h));
        Layer[] layers = new Layer[c.layers()];
        for (int l = 0; l < c.layers(); l++) {
            Object[] w1 = new Object[c.experts()], w2 = new Object[c.experts()], w3 = new Object[c.experts()];
            for (int e = 0; e < c.experts(); e++) {
                w1[e] = linear.apply(ck.gptq(TensorNames.expert(l, e, 1), h, c.intermediate()));
                w3[e] = linear.apply(ck.gptq(TensorNames.expert(l, e, 3), h, c.intermediate()));
                w2[e] = linear.apply(ck.gptq(TensorNames.expert(l, e, 2), c.intermediate(), h));
            }
            layers[l] = new Layer(
                    dense.apply(ck.half(TensorNames.attnNorm(l), 1, h)),
                    linear.apply(ck.gptq(TensorNames.attn(l, 'q'), h, c.qDim())),
                    linear.apply(ck.gptq(TensorNames.attn(l, 'k'), h, c.kvDim())),
                    linear.apply(ck.gptq(TensorNames.attn(l, 'v'), h, c.kvDim())),
                    linear.apply(ck.gptq(TensorNames.attn(l, 'o'), c.qDim(), h)),
                    dense.apply(ck.half(TensorNames.ffnNorm(l), 1, h)),
                    dense.apply(ck.half(TensorNames.router(l), c.experts(), h)),
                    w1, w3, w2);
        }
        return new MixtralWeights(embed, lmHead, norm, layers);
    }
}
