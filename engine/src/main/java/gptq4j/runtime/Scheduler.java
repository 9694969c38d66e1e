package gptq4j.runtime;

import gptq4j.model.MixtralConfig;
import gptq4j.model.MixtralModel;
import gptq4j.model.Step;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Continuous batching on one thread: sequences join the running batch as others finish, prompts are
 * prefilled in chunks within a per-step token budget, decode tokens go first, and when the paged KV cache
 * is full the most recently admitted sequence is preempted and later recomputed. Every sequence's
 * arithmetic is independent of the others (the backends are batch-invariant) and its random stream
 * depends only on its seed and step, so results do not depend on scheduling.
 */
final class Scheduler implements Runnable {
    private static final Logger LOG = Logger.getLogger(Scheduler.class.getName());

    private final MixtralModel model;
    private final MixtralConfig cfg;
    private final BlockManager blocks;
    private final Sampler[] samplers;                 // one per sampling thread ([0]: the scheduler's)
    private final java.util.concurrent.ExecutorService pool;   // the other sampling threads; null with one
    private final int maxBatch;
    private final int tokenBudget;
    private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private final Deque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    private final float[] logits;
    private final int[] greedy;
    private volatile boolean closed;
    final EngineStats stats = new EngineStats();

    private static final Object WAKE = new Object();

    /**
     * Greedy rows without penalties or logprobs are chosen on the backend ({@link MixtralModel#forwardGreedy}):
     * a step whose rows are all such reads back one int per row instead of its logits, and the sampler does not
     * run. The same tokens as the sampler's argmax. {@code -Dgptq4j.deviceGreedy=false} turns it off.
     */
    static final boolean DEVICE_GREEDY = !"false".equals(System.getProperty("gptq4j.deviceGreedy"));

    /** True when the sampler's choice for p is the plain argmax of the logits and nothing else reads them. */
    static boolean greedyOnDevice(SamplingParams p) {
        return p.temperature() < Sampler.GREEDY_TEMPERATURE && p.repetitionPenalty() == 1 && p.presencePenalty() == 0
                && p.frequencyPenalty() == 0 && p.logprobs() == 0;
    }

    /** Most threads that sample one step's rows. */
    static final int MAX_SAMPLING_THREADS = 16;

    /**
     * @param samplingThreads threads that sample a step's rows together (the scheduler's own included; at most
     *                        {@value #MAX_SAMPLING_THREADS}): at batch 256 one thread takes 5 ms per step for
     *                        greedy rows and 50-190 ms for sampled ones (a 32,000-token vocabulary)
     */
    Scheduler(MixtralModel model, BlockManager blocks, int maxBatch, int tokenBudget, int samplingThreads) {
        int nt = Math.max(1, Math.min(samplingThreads, MAX_SAMPLING_THREADS));
        this.samplers = new Sampler[nt];
        for (int i = 0; i < nt; i++) samplers[i] = new Sampler();
        if (nt > 1) {
            java.util.concurrent.atomic.AtomicInteger id = new java.util.concurrent.atomic.AtomicInteger();
            this.pool = java.util.concurrent.Executors.newFixedThreadPool(nt - 1, task -> {
                Thread t = new Thread(task, "gptq4j-sampler-" + id.incrementAndGet());
                t.setDaemon(true);
                return t;
            });
        } else {
            this.pool = null;
        }
        this.model = model;
        this.cfg = model.config();
        this.blocks = blocks;
        this.maxBatch = Math.min(maxBatch, model.maxSeqs());
        this.tokenBudget = Math.min(tokenBudget, model.maxTokens());
        this.logits = new float[model.maxSeqs() * cfg.vocabSize()];
        this.greedy = new int[model.maxSeqs()];
    }

    void enqueue(Sequence s) {
        inbox.add(s);
    }

    void shutdown() {
        closed = true;
        inbox.add(WAKE);
    }

    @Override
    public void run() {
        try {
            while (!closed) {
                if (running.isEmpty() && waiting.isEmpty()) {
                    Object o = inbox.take();
                    if (o instanceof Sequence s) waiting.add(s);
                }
                for (Object o; (o = inbox.poll()) != null; ) if (o instanceof Sequence s) waiting.add(s);
                if (closed) break;
                admit();
                if (!running.isEmpty()) step();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            if (pool != null) pool.shutdownNow();
            failAll("engine closed");
        }
    }

    /** Moves waiting sequences into the batch while there is room and KV blocks for their prompts. */
    private void admit() {
        while (running.size() < maxBatch && !waiting.isEmpty()) {
            Sequence s = waiting.peekFirst();
            int[] tokens = s.allTokens();
            int needed = (s.prompt.length + s.maxNewTokens + blocks.blockSize() - 1) / blocks.blockSize();
            if (needed > blocks.numBlocks()) {                // can never fit: fail now, not after the others
                waiting.pollFirst();
                finish(s, FinishReason.ERROR, "the sequence needs " + needed + " KV-cache blocks of " + blocks.blockSize()
                        + " tokens (prompt " + s.prompt.length + " + max_new_tokens " + s.maxNewTokens + ") but the cache has "
                        + blocks.numBlocks() + "; raise the KV-cache memory (--kv-cache-mb / spark.gptq4j.kvCacheBytes)");
                continue;
            }
            if (waitsForSharedPrefix(s) || !blocks.canAllocate(tokens)) return;
            waiting.pollFirst();
            s.computed = blocks.allocate(s.id, tokens);
            stats.cachedPromptTokens.addAndGet(s.computed);
            running.add(s);
        }
    }

    /**
     * True when a running sequence with the same first KV block is still prefilling: admitting s now would
     * compute the common prefix twice, while waiting lets s share it (a system prompt common to millions of
     * rows is computed once). Admission stays first-in first-out.
     */
    private boolean waitsForSharedPrefix(Sequence s) {
        int bs = blocks.blockSize();
        if (!blocks.prefixCaching() || s.prompt.length <= bs) return false;
        for (Sequence r : running) {
            if (r.computed < r.prompt.length && r.prompt.length > bs
                    && java.util.Arrays.equals(r.prompt, 0, bs, s.prompt, 0, bs)) {
                return true;
            }
        }
        return false;
    }

    private record Part(Sequence seq, int from, int n, boolean wantLogits) { }

    private void step() {
        List<Part> parts = new ArrayList<>();
        int budget = tokenBudget;
        // decode tokens first, then prefill chunks, both in admission order
        for (int pass = 0; pass < 2 && budget > 0; pass++) {
            for (int i = 0; i < running.size() && budget > 0; i++) {
                Sequence s = running.get(i);
                int need = s.length() - s.computed;
                if ((pass == 0) != (need == 1) || need <= 0) continue;
                if (!reserve(s)) {
                    i--;                      // s left the batch; the next one moved into its place
                    continue;
                }
                int n = Math.min(need, budget);
                parts.add(new Part(s, s.computed, n, s.computed + n == s.length()));
                budget -= n;
            }
        }
        parts.removeIf(p -> !running.contains(p.seq));
        stats.observeBlocks(blocks.usedBlocks());
        if (parts.isEmpty()) return;

        int T = 0;
        for (Part p : parts) T += p.n;
        int S = parts.size(), mb = model.maxBlocksPerSeq();
        int[] tokens = new int[T], positions = new int[T], slots = new int[T], tokenSeq = new int[T];
        int[] tables = new int[S * mb];
        int[] rows = new int[S];
        int R = 0, t = 0;
        for (int si = 0; si < S; si++) {
            Part p = parts.get(si);
            int[] table = blocks.blockTable(p.seq.id);
            System.arraycopy(table, 0, tables, si * mb, Math.min(table.length, mb));
            blocks.slots(p.seq.id, p.from, p.n, slots, t);
            for (int j = 0; j < p.n; j++, t++) {
                int pos = p.from + j;
                tokens[t] = p.seq.tokenAt(pos);
                positions[t] = pos;
                tokenSeq[t] = si;
            }
            if (p.wantLogits) rows[R++] = t - 1;
        }
        boolean onDevice = DEVICE_GREEDY && R > 0;
        for (Part p : parts) if (p.wantLogits && !greedyOnDevice(p.seq.params)) onDevice = false;
        long t0 = System.nanoTime();
        try {
            Step st = new Step(T, tokens, positions, slots, tokenSeq, S, tables, mb, R, rows);
            if (onDevice) model.forwardGreedy(st, greedy);
            else model.forward(st, logits, null);
        } catch (RuntimeException | Error e) {
            LOG.log(Level.SEVERE, "forward step failed; failing its " + S + " sequences", e);
            String why = e.getMessage() != null ? e.getMessage() : e.toString();
            for (Part p : parts) finish(p.seq, FinishReason.ERROR, "engine failure: " + why);
            return;
        }
        stats.addStep(T, System.nanoTime() - t0);
        if (onDevice) stats.deviceGreedySteps.incrementAndGet();
        // the rows' choices: the backend's greedy ones, else the sampler's (rows in parallel: a row's choice
        // depends on its own logits, parameters and seed only); then each sequence's bookkeeping, in order
        Sequence[] bySeq = new Sequence[R];
        Sampled[] out = new Sampled[R];
        int[] sampled = new int[R];
        int ns = 0, r = 0;
        for (Part p : parts) {
            p.seq.computed += p.n;
            blocks.markComputed(p.seq.id, p.seq.computed);
            if (!p.wantLogits) continue;
            int row = r++;
            bySeq[row] = p.seq;
            if (onDevice && greedy[row] >= 0) {
                out[row] = new Sampled(greedy[row], null, null);
                continue;
            }
            if (onDevice) {                               // NaN or +inf in the row: the sampler says which
                try {
                    model.readLogits(row, logits, row * cfg.vocabSize());
                } catch (RuntimeException e) {
                    out[row] = new Sampled(-1, null, e);
                    continue;
                }
            }
            sampled[ns++] = row;
        }
        sampleRows(bySeq, sampled, ns, out);
        for (int row = 0; row < R; row++) {
            Sequence seq = bySeq[row];
            Sampled c = out[row];
            if (c.error() != null) {                      // e.g. non-finite logits: this row fails, the batch goes on
                LOG.log(Level.WARNING, "sampling failed for sequence " + seq.id, c.error());
                finish(seq, FinishReason.ERROR, "sampling failed: " + c.error().getMessage());
                continue;
            }
            if (c.logprob() != null) seq.logprobs.add(c.logprob());
            accept(seq, c.token());
        }
    }

    /** One row's choice: the token and, when asked for, its logprobs; or what went wrong. */
    private record Sampled(int token, TokenLogprob logprob, RuntimeException error) { }

    /** Rows under this many go through the sampler on the scheduler's thread alone (a hand-over costs ~50 µs). */
    static final int PARALLEL_ROWS = 4;

    /**
     * The sampler's choices for rows[0..n) (row r: bySeq[r]'s logits at r * vocab) into out. With more than one
     * sampling thread the rows are cut into contiguous shares, one per thread; the scheduler's thread takes the
     * first. Which thread samples a row does not change its choice.
     */
    private void sampleRows(Sequence[] bySeq, int[] rows, int n, Sampled[] out) {
        int shares = pool == null || n < PARALLEL_ROWS ? 1 : Math.min(samplers.length, (n + PARALLEL_ROWS - 1) / PARALLEL_ROWS);
        List<java.util.concurrent.Future<?>> pending = new ArrayList<>(shares - 1);
        for (int k = 1; k < shares; k++) {
            int from = (int) ((long) n * k / shares), to = (int) ((long) n * (k + 1) / shares);
            Sampler smp = samplers[k];
            pending.add(pool.submit(() -> { for (int i = from; i < to; i++) out[rows[i]] = sampleOne(smp, bySeq[rows[i]], rows[i]); }));
        }
        for (int i = 0, to = n / shares; i < to; i++) out[rows[i]] = sampleOne(samplers[0], bySeq[rows[i]], rows[i]);
        for (java.util.concurrent.Future<?> f : pending) {
            try {
                f.get();
            } catch (java.util.concurrent.ExecutionException e) {   // an Error (a row's exceptions are in its Sampled)
                if (e.getCause() instanceof Error err) throw err;
                throw new IllegalStateException("sampling thread failed", e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while sampling", e);
            }
        }
    }

    private Sampled sampleOne(Sampler smp, Sequence s, int row) {
        SamplingParams p = s.params;
        int offset = row * cfg.vocabSize();
        try {
            int token = smp.sample(logits, offset, cfg.vocabSize(), p, s.prompt, s.generated, s.generatedCount,
                    s.generatedCount);
            TokenLogprob lp = p.logprobs() > 0 ? smp.logprob(logits, offset, cfg.vocabSize(), token, p.logprobs()) : null;
            return new Sampled(token, lp, null);
        } catch (RuntimeException e) {
            return new Sampled(-1, null, e);
        }
    }

    /**
     * Gives the block manager every token of s (the last sampled one needs a slot), preempting the most
     * recently admitted other sequence when no block is free. False when s itself had to fail.
     */
    private boolean reserve(Sequence s) {
        while (blocks.numTokens(s.id) < s.length()) {
            if (blocks.canAppend(s.id)) {
                blocks.appendToken(s.id, s.tokenAt(blocks.numTokens(s.id)));
                continue;
            }
            Sequence victim = null;
            for (int i = running.size() - 1; i >= 0; i--) {
                if (running.get(i) != s) {
                    victim = running.get(i);
                    break;
                }
            }
            if (victim == null) {
                finish(s, FinishReason.ERROR, "the KV cache (" + blocks.numBlocks() + " blocks of " + blocks.blockSize()
                        + " tokens) cannot hold this sequence of " + s.length() + " tokens; raise the KV-cache memory");
                return false;
            }
            preempt(victim);
        }
        return true;
    }

    private void preempt(Sequence v) {
        running.remove(v);
        blocks.free(v.id);
        v.computed = 0;
        v.preemptions++;
        stats.preemptions.incrementAndGet();
        waiting.addFirst(v);
    }

    /** Appends the chosen token to s and finishes s when it stops. */
    private void accept(Sequence s, int token) {
        SamplingParams p = s.params;
        s.append(token);
        stats.generatedTokens.incrementAndGet();
        if (s.listener != null) {
            try {
                s.listener.onToken(token);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "token listener failed", e);
            }
        }
        boolean eos = !p.ignoreEos() && token == cfg.eosTokenId();
        boolean stopToken = p.stopTokenIds().contains(token);
        if (!eos && !stopToken) s.stop.append(s.decoder.push(token));   // text grows only by real tokens
        if (eos || stopToken || s.stop.stopped()) {
            finish(s, FinishReason.STOP, null);
        } else if (s.generatedCount >= s.maxNewTokens || s.length() >= cfg.maxPositions()) {
            finish(s, FinishReason.LENGTH, null);
        }
    }

    void finish(Sequence s, FinishReason reason, String error) {
        running.remove(s);
        waiting.remove(s);
        if (blocks.contains(s.id)) blocks.free(s.id);
        GenerationResult r;
        if (reason == FinishReason.ERROR) {
            r = new GenerationResult(s.prompt, s.generatedIds(), "", reason, s.prompt.length, s.generatedCount,
                    List.copyOf(s.logprobs), error);
            stats.errors.incrementAndGet();
        } else {
            if (!s.stop.stopped()) s.stop.append(s.decoder.flush());
            String text = s.stop.text();
            r = new GenerationResult(s.prompt, s.generatedIds(), text, reason, s.prompt.length, s.generatedCount,
                    List.copyOf(s.logprobs), null);
        }
        stats.finished.incrementAndGet();
        s.future.complete(r);
    }

    private void failAll(String why) {
        for (Sequence s : new ArrayList<>(running)) finish(s, FinishReason.ERROR, why);
        for (Sequence s : new ArrayList<>(waiting)) finish(s, FinishReason.ERROR, why);
        for (Object o; (o = inbox.poll()) != null; ) if (o instanceof Sequence s) finish(s, FinishReason.ERROR, why);
    }
}
