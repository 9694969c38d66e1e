package gptq4j.model;

import gptq4j.backend.AttentionBatch;
import gptq4j.backend.Backend;
import gptq4j.backend.Buf;
import gptq4j.backend.KvCache;

/**
 * The Mixtral forward pass, one method per block, written against {@link Backend}. Activation buffers
 * live in {@link State}, allocated once for the largest step; the model holds no per-call mutable data
 * outside it.
 */
public final class MixtralModel implements AutoCloseable {
    private final MixtralConfig cfg;
    private final MixtralWeights w;
    private final Backend be;
    private final State s;
    private final KvCache cache;

    /** Preallocated activations for steps of up to maxTokens tokens and maxSeqs sequences. */
    static final class State {
        final int maxTokens;
        final int maxSeqs;
        final int maxBlocks;
        final Buf x;        // [T][hidden] residual stream
        final Buf xb;       // [T][hidden] normed input of a block
        final Buf xb2;      // [T][hidden] output of a block
        final Buf q;        // [T][heads*headDim]
        final Buf k;        // [T][kvHeads*headDim]
        final Buf v;        // [T][kvHeads*headDim]
        final Buf att;      // [T][heads*headDim] attention output
        final Buf router;   // [T][experts] router logits
        final Buf rows;     // [maxSeqs][hidden] final-normed rows whose logits are wanted
        final Buf logits;   // [maxSeqs][vocab] (one row per sequence per step; more rows go in chunks)
        final Buf tokens;       // int [T]
        final Buf positions;    // int [T]
        final Buf slots;        // int [T]
        final Buf tokenSeq;     // int [T]
        final Buf blockTables;  // int [S][maxBlocks]
        final Buf logitRows;    // int [maxSeqs]
        final Buf greedy;       // int [maxSeqs] argmax of each logit row (forwardGreedy)
        private final java.util.List<Buf> all = new java.util.ArrayList<>();

        private Buf f(Backend be, long n) {
            Buf b = be.allocFloats(n);
            all.add(b);
            return b;
        }

        private Buf i(Backend be, long n) {
            Buf b = be.allocInts(n);
            all.add(b);
            return b;
        }

        void free(Backend be) {
            for (Buf b : all) be.free(b);
            all.clear();
        }

        State(Backend be, MixtralConfig c, int maxTokens, int maxSeqs, int maxBlocks) {
            this.maxTokens = maxTokens;
            this.maxSeqs = maxSeqs;
            this.maxBlocks = maxBlocks;
            try {
                long t = maxTokens;
                x = f(be, t * c.hidden());
                xb = f(be, t * c.hidden());
                xb2 = f(be, t * c.hidden());
                q = f(be, t * c.qDim());
                k = f(be, t * c.kvDim());
                v = f(be, t * c.kvDim());
                att = f(be, t * c.qDim());
                router = f(be, t * c.experts());
                rows = f(be, (long) maxSeqs * c.hidden());
                logits = f(be, (long) maxSeqs * c.vocabSize());
                tokens = i(be, t);
                positions = i(be, t);
                slots = i(be, t);
                tokenSeq = i(be, t);
                blockTables = i(be, (long) maxSeqs * maxBlocks);
                logitRows = i(be, maxSeqs);
                greedy = i(be, maxSeqs);
            } catch (RuntimeException | Error e) {
                free(be);
                throw e;
            }
        }
    }

    /**
     * @param maxTokens largest step in tokens
     * @param maxSeqs   most sequences in one step
     * @param kvBlocks  KV-cache blocks to allocate
     * @param blockSize tokens per block
     */
    public MixtralModel(MixtralConfig cfg, MixtralWeights w, Backend be, int maxTokens, int maxSeqs, int kvBlocks, int blockSize) {
        this.cfg = cfg;
        this.w = w;
        this.be = be;
        int maxBlocks = (cfg.maxPositions() + blockSize - 1) / blockSize;
        this.s = new State(be, cfg, maxTokens, maxSeqs, maxBlocks);
        try {
            this.cache = be.allocKvCache(cfg.layers(), kvBlocks, blockSize, cfg.kvHeads(), cfg.headDim());
        } catch (RuntimeException | Error e) {
            s.free(be);
            throw e;
        }
    }

    public MixtralConfig config() { return cfg; }

    public KvCache cache() { return cache; }

    public Backend backend() { return be; }

    /** Width of a block-table row this model expects. */
    public int maxBlocksPerSeq() { return s.maxBlocks; }

    public int maxTokens() { return s.maxTokens; }

    public int maxSeqs() { return s.maxSeqs; }

    /**
     * Runs one step: writes the step's keys and values into the cache and the logits of the
     * {@code step.R()} requested tokens into {@code logits} ([R][vocab]).
     */
    public void forward(Step step, float[] logits, Probe probe) {
        run(step, logits, null, probe);
    }

    /**
     * Runs one step as {@link #forward} does, but selects greedily on the backend instead of reading the logits
     * back: {@code tokens[r]} becomes the argmax of logit row r (ties to the lowest id, as the sampler's greedy
     * choice), or -1 when that row holds NaN or +infinity. The rows stay readable by {@link #readLogits} until
     * the next step. At most {@link #maxSeqs()} rows.
     */
    public void forwardGreedy(Step step, int[] tokens) {
        if (step.R() > s.maxSeqs) {
            throw new IllegalArgumentException("greedy step of " + step.R() + " logit rows exceeds " + s.maxSeqs);
        }
        if (tokens.length < step.R()) {
            throw new IllegalArgumentException("tokens array of " + tokens.length + " for " + step.R() + " rows");
        }
        run(step, null, tokens, null);
    }

    /** Copies logit row r of the last {@link #forwardGreedy} step into {@code dst[offset..offset+vocab)}. */
    public void readLogits(int r, float[] dst, int offset) {
        if (r < 0 || r >= s.maxSeqs) throw new IndexOutOfBoundsException("logit row " + r + " of " + s.maxSeqs);
        readLogitRows(r, 1, dst, offset);
    }

    /** Logit rows [from, from + n) of the state into dst from element dstOffset (through a copy unless it is 0). */
    private void readLogitRows(int from, int n, float[] dst, int dstOffset) {
        int len = n * cfg.vocabSize();
        long src = (long) from * cfg.vocabSize();
        if (dstOffset == 0) {
            be.read(s.logits, src, dst, len);
        } else {
            float[] rows = new float[len];
            be.read(s.logits, src, rows, len);
            System.arraycopy(rows, 0, dst, dstOffset, len);
        }
    }

    /** One step; the logit rows go to {@code logits}, or their argmax to {@code greedy} when that is not null. */
    private void run(Step step, float[] logits, int[] greedy, Probe probe) {
        int T = step.T();
        if (T > s.maxTokens || step.S() > s.maxSeqs || step.maxBlocks() != s.maxBlocks) {
            throw new IllegalArgumentException("step of " + T + " tokens / " + step.S() + " sequences exceeds the state ("
                    + s.maxTokens + " / " + s.maxSeqs + ")");
        }
        be.write(s.tokens, step.tokens(), T);
        be.write(s.positions, step.positions(), T);
        be.write(s.slots, step.slots(), T);
        be.write(s.tokenSeq, step.tokenSeq(), T);
        be.write(s.blockTables, step.blockTables(), step.S() * s.maxBlocks);
        // the logit rows of a one-chunk step go with the other inputs: a copy between the layers and the lm_head
        // would end the step's launch queue there (on the GPU: two graphs per step and a host wait between them)
        boolean oneChunk = step.R() <= s.maxSeqs;
        if (oneChunk) be.write(s.logitRows, step.logitRows(), step.R());
        int V = cfg.vocabSize();
        // Below, up to the logits' read, the calls are a function of this model and (T, S, R, greedy) alone (no
        // probe, one chunk): a backend may replay the last step of that signature instead (on the GPU, one graph
        // launch)
        StepSignature signature = probe == null && oneChunk ? new StepSignature(this, T, step.S(), step.R(), greedy != null)
                : null;
        if (signature != null && be.replayStep(signature)) {
            readOut(step.R(), 0, logits, greedy);
            return;
        }
        AttentionBatch meta = new AttentionBatch(T, s.slots, s.positions, s.tokenSeq, s.blockTables, s.maxBlocks,
                cfg.slidingWindow(), cfg.heads());

        be.embed(w.embed, s.tokens, T, s.x);                       // x = embed(tokens)      [T][hidden]
        observeHidden(probe, 0, T);
        for (int l = 0; l < cfg.layers(); l++) {
            MixtralWeights.Layer layer = w.layers[l];
            attention(l, layer, meta, T);                           // x += attn(norm(x))
            moe(l, layer, T, probe);                                // x += moe(norm(x))
            if (l < cfg.layers() - 1) observeHidden(probe, l + 1, T);
        }
        be.rmsNorm(s.x, w.finalNorm, (float) cfg.rmsNormEps(), T, cfg.hidden(), s.x);   // x = norm(x)
        observeHidden(probe, cfg.layers(), T);
        for (int r0 = 0; r0 < step.R(); r0 += s.maxSeqs) {                        // one chunk unless R > maxSeqs
            int n = Math.min(s.maxSeqs, step.R() - r0);
            if (!oneChunk) be.write(s.logitRows, java.util.Arrays.copyOfRange(step.logitRows(), r0, r0 + n), n);
            be.gatherRows(s.x, s.logitRows, n, cfg.hidden(), s.rows);             // rows = x[logitRows]   [n][hidden]
            be.dense(w.lmHead, s.rows, n, s.logits);                              // logits = rows · lm_headᵀ [n][vocab]
            if (greedy != null) be.argmaxRows(s.logits, n, V, s.greedy);          // greedy[r] = argmax logits[r]
            readOut(n, r0, logits, greedy);
        }
        if (signature != null) be.endStep();
    }

    /** Reads n rows' results (their logits, or their greedy choices) into rows [r0, r0 + n) of the caller's array. */
    private void readOut(int n, int r0, float[] logits, int[] greedy) {
        if (greedy != null) be.readInts(s.greedy, 0, greedy, n);   // one chunk: r0 == 0 (forwardGreedy)
        else readLogitRows(0, n, logits, r0 * cfg.vocabSize());
    }

    /** A step's shape as far as forward's calls depend on it (Backend.replayStep); the model by identity. */
    private record StepSignature(MixtralModel model, int T, int S, int R, boolean greedy) { }

    /** Self-attention block: x += o_proj(attention(rope(q), rope(k), v)) over norm(x). */
    private void attention(int l, MixtralWeights.Layer layer, AttentionBatch meta, int T) {
        // xb = norm(x); q = xb · Wqᵀ [T][heads*headDim], k = xb · Wkᵀ, v = xb · Wvᵀ [T][kvHeads*headDim];
        // q, k = rope(q, k) at the tokens' positions; the cache takes k, v; att = softmax(q·Kᵀ/√d)·V over the cache
        be.rmsNormQkvAttention(s.x, layer.attnNorm(), (float) cfg.rmsNormEps(), cfg.hidden(), s.xb, layer.q(), layer.k(),
                layer.v(), s.q, s.k, s.v, cache, l, meta, cfg.kvHeads(), cfg.headDim(), cfg.ropeTheta(), s.att);
        be.linearAdd(layer.o(), s.att, T, cfg.hidden(), s.xb2, s.x);   // x += att · Woᵀ  [T][hidden]
    }

    /** Sparse MoE block: x += Σ_top-k w_e · expert_e(norm(x)). */
    private void moe(int l, MixtralWeights.Layer layer, int T, Probe probe) {
        // xb = norm(x); router = xb · Wgᵀ [T][experts]; x += moe(xb) routed by the router's logits
        be.rmsNormRouteMoeAdd(s.x, layer.ffnNorm(), (float) cfg.rmsNormEps(), T, cfg.hidden(), s.xb, layer.router(),
                s.router, layer.w1(), layer.w3(), layer.w2(), cfg.topK(), cfg.intermediate(), s.xb2, s.x);
        if (probe != null) {                                      // the logits, which the MoE block only read
            float[] r = new float[T * cfg.experts()];
            be.read(s.router, 0, r, r.length);
            probe.routerLogits(l, r);
        }
    }

    private void observeHidden(Probe probe, int index, int T) {
        if (probe == null) return;
        float[] h = new float[T * cfg.hidden()];
        be.read(s.x, 0, h, h.length);
        probe.hidden(index, h);
    }

    @Override
    public void close() {
        cache.close();
        s.free(be);
    }
}
