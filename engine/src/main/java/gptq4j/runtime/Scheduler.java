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
    private final Sampler sampler = new Sampler();
    private final int maxBatch;
    private final int tokenBudget;
    private final LinkedBlockingQueue<Object> inbox = new LinkedBlockingQueue<>();
    private final Deque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    private final float[] logits;
    private volatile boolean closed;
    final EngineStats stats = new EngineStats();

    private static final Object WAKE = new Object();

    Scheduler(MixtralModel model, BlockManager blocks, int maxBatch, int tokenBudget) {
        this.model = model;
        this.cfg = model.config();
        this.blocks = blocks;
        this.maxBatch = Math.min(maxBatch, model.maxSeqs());
        this.tokenBudget = Math.min(tokenBudget, model.maxTokens());
        this.logits = new float[model.maxSeqs() * cfg.vocabSize()];
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
        long t0 = System.nanoTime();
        try {
            model.forward(new Step(T, tokens, positions, slots, tokenSeq, S, tables, mb, R, rows), logits, null);
        } catch (RuntimeException | Error e) {
            LOG.log(Level.SEVERE, "forward step failed; failing its " + S + " sequences", e);
            String why = e.getMessage() != null ? e.getMessage() : e.toString();
            for (Part p : parts) finish(p.seq, FinishReason.ERROR, "engine failure: " + why);
            return;
        }
        stats.addStep(T, System.nanoTime() - t0);
        int r = 0;
        for (Part p : parts) {
            p.seq.computed += p.n;
            blocks.markComputed(p.seq.id, p.seq.computed);
            if (!p.wantLogits) continue;
            int offset = r++ * cfg.vocabSize();
            try {
                sampleNext(p.seq, offset);
            } catch (RuntimeException e) {               // e.g. non-finite logits: this row fails, the batch goes on
                LOG.log(Level.WARNING, "sampling failed for sequence " + p.seq.id, e);
                finish(p.seq, FinishReason.ERROR, "sampling failed: " + e.getMessage());
            }
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

    private void sampleNext(Sequence s, int offset) {
        SamplingParams p = s.params;
        int step = s.generatedCount;
        int token = sampler.sample(logits, offset, cfg.vocabSize(), p, s.prompt, s.generated, s.generatedCount, step);
        if (p.logprobs() > 0) s.logprobs.add(sampler.logprob(logits, offset, cfg.vocabSize(), token, p.logprobs()));
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
