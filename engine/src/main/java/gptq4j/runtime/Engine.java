package gptq4j.runtime;

import gptq4j.backend.Backend;
import gptq4j.backend.BackendProvider;
import gptq4j.loader.Checkpoint;
import gptq4j.model.MixtralConfig;
import gptq4j.model.MixtralModel;
import gptq4j.model.MixtralWeights;
import gptq4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/**
 * A loaded model behind a continuous-batching scheduler. Thread-safe: any number of callers may submit;
 * their requests join the same running batch. Results are independent of what else is in the batch.
 */
public final class Engine implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Engine.class.getName());

    /** KV-cache memory when none is configured: at most this, and at most a quarter of the JVM's maximum heap. */
    public static final long DEFAULT_KV_CACHE_BYTES = 512L << 20;

    private final EngineOptions options;
    private final MixtralConfig cfg;
    private final Tokenizer tokenizer;
    private final Backend backend;
    private final MixtralModel model;
    private final Scheduler scheduler;
    private final Thread loop;
    private final BlockManager blocks;
    private final AtomicLong ids = new AtomicLong();
    private final List<String> refusedBackends;
    private volatile boolean closed;

    private Engine(EngineOptions o) {
        this.options = o;
        long t0 = System.nanoTime();
        Checkpoint ck = Checkpoint.open(o.modelDir());
        Backend be = null;
        MixtralModel m = null;
        try {
            this.cfg = ck.config();
            this.tokenizer = Tokenizer.load(o.modelDir());
            ck.checkTokenizerVocab(tokenizer.vocabSize());
            BackendProvider.Choice choice = BackendProvider.create(o.device(), o.threads());
            be = choice.backend();
            this.refusedBackends = choice.refused();
            MixtralWeights w = MixtralWeights.load(ck, be);
            int bs = o.blockSize();
            long perToken = (long) cfg.layers() * 2 * cfg.kvDim() * 4;
            long bytes = o.kvCacheBytes() > 0 ? o.kvCacheBytes()
                    : Math.min(DEFAULT_KV_CACHE_BYTES, Runtime.getRuntime().maxMemory() / 4);
            long maxUseful = (long) o.maxBatchSize() * ((cfg.maxPositions() + bs - 1) / bs);
            long maxHeap = (Integer.MAX_VALUE - 8L) / ((long) bs * cfg.kvDim());
            int nBlocks = (int) Math.max(1, Math.min(Math.min(bytes / (perToken * bs), maxUseful), maxHeap));
            int maxTokens = o.maxTokensPerStep(), maxBatch = o.maxBatchSize();
            int minBlocks = (int) Math.min(nBlocks, (cfg.maxPositions() + bs - 1) / bs);
            while (true) {
                try {
                    m = new MixtralModel(cfg, w, be, maxTokens, maxBatch, nBlocks, bs);
                    break;
                } catch (RuntimeException e) {
                    if (!(e instanceof gptq4j.backend.OutOfDeviceMemory) || (maxTokens <= 16 && maxBatch <= 1 && nBlocks <= minBlocks)) {
                        throw e;
                    }
                    maxTokens = Math.max(16, maxTokens / 2);
                    maxBatch = Math.max(1, maxBatch / 2);
                    nBlocks = Math.max(minBlocks, nBlocks / 2);
                    LOG.warning("out of device memory (" + e.getMessage() + "); retrying with batch " + maxBatch
                            + ", " + maxTokens + " tokens per step, " + nBlocks + " KV blocks");
                }
            }
            this.backend = be;
            this.model = m;
            this.blocks = new BlockManager(nBlocks, bs, o.prefixCaching());
            this.scheduler = new Scheduler(m, blocks, maxBatch, maxTokens,
                    o.threads() > 0 ? o.threads() : Runtime.getRuntime().availableProcessors());
            this.loop = new Thread(scheduler, "gptq4j-scheduler");
            loop.setDaemon(true);
            loop.start();
            LOG.info(String.format("loaded %s on %s in %.1f s: %d layers, hidden %d, %d experts, %d-bit g%d; KV cache %d blocks × %d tokens",
                    o.modelDir(), be.name(), (System.nanoTime() - t0) / 1e9, cfg.layers(), cfg.hidden(), cfg.experts(),
                    ck.quant().bits(), ck.quant().groupSize(), nBlocks, bs));
        } catch (RuntimeException | Error e) {
            if (m != null) m.close();
            if (be != null) be.close();
            throw e;
        } finally {
            ck.close();
        }
    }

    /** Loads the model and tokenizer from {@code options.modelDir()} onto the chosen device. */
    public static Engine load(EngineOptions options) {
        return new Engine(options);
    }

    public MixtralConfig config() { return cfg; }

    public Tokenizer tokenizer() { return tokenizer; }

    public EngineOptions options() { return options; }

    /** The backend in use, e.g. {@code cpu-vector} or {@code cuda:0}. */
    public String device() { return backend.name(); }

    /** Backends that {@code auto} considered and refused, with the reason. */
    public List<String> refusedBackends() { return refusedBackends; }

    public EngineStats stats() { return scheduler.stats; }

    /** KV-cache blocks currently holding a sequence's tokens (shared prefix blocks counted once). */
    public int kvBlocksInUse() { return blocks.usedBlocks(); }

    /** Generates for every request and returns the results in request order (null for a null prompt). */
    public List<GenerationResult> generate(List<GenerationRequest> requests) {
        List<CompletableFuture<GenerationResult>> fs = new ArrayList<>(requests.size());
        for (GenerationRequest r : requests) fs.add(submit(r));
        List<GenerationResult> out = new ArrayList<>(fs.size());
        for (CompletableFuture<GenerationResult> f : fs) {
            try {
                out.add(f.get());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while generating", e);
            } catch (ExecutionException e) {
                throw new IllegalStateException("generation failed: " + e.getCause(), e.getCause());
            }
        }
        return out;
    }

    /** Submits one request; the future completes when it finishes (with null for a null prompt). */
    public CompletableFuture<GenerationResult> submit(GenerationRequest r) {
        return submit(r, null);
    }

    /** Submits one request and streams its tokens to {@code listener} as they are generated. */
    public CompletableFuture<GenerationResult> submit(GenerationRequest r, TokenListener listener) {
        if (closed) throw new IllegalStateException("engine is closed");
        if (r == null || r.prompt() == null) return CompletableFuture.completedFuture(null);
        SamplingParams p = r.params();
        String bad = p.validate();
        if (bad != null) return CompletableFuture.completedFuture(GenerationResult.error(null, bad));
        int[] prompt;
        try {
            prompt = tokenizer.encode(r.prompt(), tokenizer.addsBos(), options.parseSpecialTokens());
        } catch (RuntimeException e) {
            return CompletableFuture.completedFuture(GenerationResult.error(null, "cannot tokenise prompt: " + e.getMessage()));
        }
        int window = cfg.maxPositions();
        if (prompt.length >= window) {
            if (!options.promptPolicy().equals("truncate_left")) {
                return CompletableFuture.completedFuture(GenerationResult.error(prompt, "prompt is " + prompt.length
                        + " tokens but the context window is " + window + " (max_position_embeddings); shorten it or use prompt policy truncate_left"));
            }
            prompt = truncateLeft(prompt, window - 1);
        }
        int maxNew = Math.min(p.maxNewTokens(), window - prompt.length);
        scheduler.stats.promptTokens.addAndGet(prompt.length);
        CompletableFuture<GenerationResult> f = new CompletableFuture<>();
        if (maxNew == 0) {
            f.complete(new GenerationResult(prompt, new int[0], "", FinishReason.LENGTH, prompt.length, 0, List.of(), null));
            return f;
        }
        scheduler.enqueue(new Sequence(ids.incrementAndGet(), p, prompt, maxNew, f, listener, tokenizer.streamDecoder()));
        return f;
    }

    /** Keeps BOS (when the prompt starts with it) and the last tokens, keep tokens in all. */
    private int[] truncateLeft(int[] prompt, int keep) {
        int[] out = new int[keep];
        boolean bos = prompt.length > 0 && prompt[0] == tokenizer.bosId();
        int from = bos ? 1 : 0;
        if (bos) out[0] = prompt[0];
        System.arraycopy(prompt, prompt.length - (keep - from), out, from, keep - from);
        return out;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        scheduler.shutdown();
        try {
            loop.join(60_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        model.close();
        backend.close();
    }
}
