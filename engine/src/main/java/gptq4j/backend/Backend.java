package gptq4j.backend;

import gptq4j.quant.gptq.GptqLinear;
import gptq4j.loader.HalfMatrix;

/**
 * The operations the Mixtral forward pass needs, on one device. The forward pass
 * ({@link gptq4j.model.MixtralModel}) is written once against this interface; backends
 * (cpu-scalar, cpu-vector, cuda) implement the arithmetic.
 *
 * <p>Shapes below: T tokens in the step, row-major {@code [T][dim]} activations.
 * Implementations must compute every token's result with an arithmetic order that does not depend
 * on T or on the other tokens in the step (batch invariance: a sequence decodes the same alone or in a batch).
 *
 * <p>A backend instance is used by one thread at a time (the runtime's step loop).
 */
public interface Backend extends AutoCloseable {

    /** Short name for logs, e.g. {@code cpu-vector}, {@code cpu-scalar}, {@code cuda:0}. */
    String name();

    // ---- memory -------------------------------------------------------------------------

    /** A float buffer of n elements, zero-filled. */
    Buf allocFloats(long n);

    /** An int buffer of n elements, zero-filled. */
    Buf allocInts(long n);

    /** Copies n ints from the host into dst[0..n). */
    void write(Buf dst, int[] src, int n);

    /** Copies n floats from the host into dst[0..n). */
    void write(Buf dst, float[] src, int n);

    /** Copies n floats from src[offset..offset+n) to the host. */
    void read(Buf src, long offset, float[] dst, int n);

    /** Copies n ints from src[offset..offset+n) to the host. */
    void readInts(Buf src, long offset, int[] dst, int n);

    /** Releases a buffer (no-op on the heap backends). */
    default void free(Buf b) { }

    // ---- weights (prepared once at load) -----------------------------------------------

    /** Repacks / uploads one GPTQ linear layer; the result is passed back to {@link #linear}. */
    Object prepareLinear(GptqLinear w);

    /** Uploads an fp16 matrix [rows][cols] (embeddings, router, lm_head, norm weights as [1][dim]). */
    Object prepareDense(HalfMatrix m);

    /** The KV cache: {@code blocks} blocks of {@code blockSize} token slots, per layer, for K and V. */
    KvCache allocKvCache(int layers, int blocks, int blockSize, int kvHeads, int headDim);

    // ---- operations --------------------------------------------------------------------

    /** out[t][:] = table[tokens[t]][:] for t in [0,T). */
    void embed(Object table, Buf tokens, int T, Buf out);

    /** out[t] = x[t] / rms(x[t]) * w, statistics in float32; out may be x. */
    void rmsNorm(Buf x, Object weight, float eps, int T, int dim, Buf out);

    /** out[T][w.out] = x[T][w.in] · Wᵀ for a GPTQ layer prepared by {@link #prepareLinear}. */
    void linear(Object w, Buf x, int T, Buf out);

    /**
     * A product over a normalised input: xn = {@link #rmsNorm}(x) [T][dim], then out = {@link #linear}(w, xn), with
     * the same bits in xn and out. A backend may normalise inside the product's own input pass (one launch less).
     * xn must not be x.
     */
    default void rmsNormLinear(Buf x, Object normWeight, float eps, int T, int dim, Buf xn, Object w, Buf out) {
        rmsNorm(x, normWeight, eps, T, dim, xn);
        linear(w, xn, T, out);
    }

    /** Two products of one input (the k and v projections), with the same bits as two {@link #linear} calls. */
    default void linear2(Object wa, Object wb, Buf x, int T, Buf outA, Buf outB) {
        linear(wa, x, T, outA);
        linear(wb, x, T, outB);
    }

    /**
     * The product added to a residual stream: res[T][outDim] += x[T][w.in] · Wᵀ, with the same bits as
     * {@link #linear} into tmp followed by {@link #add}(res, tmp). tmp [T][outDim] is scratch a backend may use.
     */
    default void linearAdd(Object w, Buf x, int T, int outDim, Buf tmp, Buf res) {
        linear(w, x, T, tmp);
        add(res, tmp, (long) T * outDim);
    }

    /** out[T][rows] = x[T][cols] · Mᵀ for an fp16 matrix prepared by {@link #prepareDense}. */
    void dense(Object m, Buf x, int T, Buf out);

    /**
     * A dense product over a normalised input: xn = {@link #rmsNorm}(x) [T][dim], then out = {@link #dense}(m, xn), with
     * the same bits in xn and out (the MoE router over the FFN norm). A backend may normalise inside the product.
     * xn must not be x.
     */
    default void rmsNormDense(Buf x, Object normWeight, float eps, int T, int dim, Buf xn, Object m, Buf out) {
        rmsNorm(x, normWeight, eps, T, dim, xn);
        dense(m, xn, T, out);
    }

    /** out[r][:] = x[rows[r]][:] for r in [0,R), rows of width dim. */
    void gatherRows(Buf x, Buf rows, int R, int dim, Buf out);

    /** x[i] += y[i] for i in [0,n). */
    void add(Buf x, Buf y, long n);

    /**
     * Greedy selection without a read-back of the rows: out[r] = the index of the largest of x[r][0..dim), ties
     * to the lowest index (Sampler's argmax, so -0 equals +0), or -1 when the row holds NaN or +infinity (which
     * the sampler refuses), for r in [0,R).
     */
    void argmaxRows(Buf x, int R, int dim, Buf out);

    /**
     * Rotary position embedding in the rotate-half form (pairs i and i+headDim/2), in place on
     * q [T][heads*headDim] and k [T][kvHeads*headDim], angle = position · theta^(-2i/headDim).
     */
    void rope(Buf q, Buf k, Buf positions, int T, int heads, int kvHeads, int headDim, double theta);

    /**
     * Appends k and v of the step into the cache at their slots, then computes causal attention
     * for every query token over its own sequence's cached keys.
     *
     * @param meta where each token sits: its slot, its position, its sequence's block table
     * @param out  [T][heads*headDim]
     */
    void attention(KvCache cache, int layer, Buf q, Buf k, Buf v, AttentionBatch meta, Buf out);

    /**
     * {@link #rope} on q and k at meta's positions, then {@link #attention}: a backend may rotate and append to the
     * cache in one step (the same numbers).
     */
    default void ropeAttention(KvCache cache, int layer, Buf q, Buf k, Buf v, AttentionBatch meta, int kvHeads,
                               int headDim, double theta, Buf out) {
        rope(q, k, meta.positions(), meta.T(), meta.heads(), kvHeads, headDim, theta);
        attention(cache, layer, q, k, v, meta, out);
    }

    /**
     * The attention block up to o_proj: xn = rmsNorm(x); q, k, v = xn · Wq/Wk/Wvᵀ ({@link #rmsNormLinear},
     * {@link #linear2}); then {@link #ropeAttention}. The same bits as those three calls in every output: xn, q and k
     * rotated, v, the cache and out. A backend may fold split products inside the RoPE pass. T = meta.T().
     */
    default void rmsNormQkvAttention(Buf x, Object normWeight, float eps, int dim, Buf xn, Object wq, Object wk,
                                     Object wv, Buf q, Buf k, Buf v, KvCache cache, int layer, AttentionBatch meta,
                                     int kvHeads, int headDim, double theta, Buf out) {
        rmsNormLinear(x, normWeight, eps, meta.T(), dim, xn, wq, q);
        linear2(wk, wv, xn, meta.T(), k, v);
        ropeAttention(cache, layer, q, k, v, meta, kvHeads, headDim, theta, out);
    }

    /**
     * The sparse MoE block: softmax over routerLogits [T][experts], top-k, renormalise the k weights
     * to sum 1, then out[t] = Σ_j w_j · w2_e(silu(w1_e x_t) · w3_e x_t) over the chosen experts e.
     * Tokens are grouped per expert so each expert's weights are read once per step.
     *
     * @param w1 prepared gate projections, one per expert
     * @param w3 prepared up projections
     * @param w2 prepared down projections
     */
    void moe(Object[] w1, Object[] w3, Object[] w2, Buf x, Buf routerLogits, int T, int topK,
             int hidden, int intermediate, Buf out);

    /**
     * The MoE block added to a residual stream: res[T][hidden] += moe(...), with the same bits as {@link #moe} into
     * tmp followed by {@link #add}(res, tmp). tmp [T][hidden] is scratch a backend may use.
     */
    default void moeAdd(Object[] w1, Object[] w3, Object[] w2, Buf x, Buf routerLogits, int T, int topK,
                        int hidden, int intermediate, Buf tmp, Buf res) {
        moe(w1, w3, w2, x, routerLogits, T, topK, hidden, intermediate, tmp);
        add(res, tmp, (long) T * hidden);
    }

    /**
     * The MoE block over the FFN norm, added to the residual stream: {@link #rmsNormDense}(x, normWeight, eps, T, dim,
     * xn, router, routerLogits), then {@link #moeAdd}(w1, w3, w2, xn, routerLogits, T, topK, dim, intermediate, tmp,
     * res), with the same bits in xn, routerLogits and res. A backend may route inside the router's launch. res may be x.
     */
    default void rmsNormRouteMoeAdd(Buf x, Object normWeight, float eps, int T, int dim, Buf xn, Object router,
                                    Buf routerLogits, Object[] w1, Object[] w3, Object[] w2, int topK, int intermediate,
                                    Buf tmp, Buf res) {
        rmsNormDense(x, normWeight, eps, T, dim, xn, router, routerLogits);
        moeAdd(w1, w3, w2, xn, routerLogits, T, topK, dim, intermediate, tmp, res);
    }

    /**
     * Step replay. A caller whose calls for a step are a function of {@code signature} (equal signatures: the same
     * calls with the same arguments, results read back by {@link #read}) may ask for the last such step to be
     * replayed. True: the backend has queued exactly the work those calls would queue, and the caller skips them
     * (it still writes the step's inputs before and reads its results after). False: the caller makes its calls,
     * then calls {@link #endStep}. The CPU backend never replays.
     */
    default boolean replayStep(Object signature) { return false; }

    /** Ends a step for which {@link #replayStep} returned false (after its results were read). */
    default void endStep() { }

    /** Waits for queued work (no-op on the CPU). */
    default void synchronize() { }

    @Override
    void close();
}
