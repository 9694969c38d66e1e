package gptq4j.runtime;

import java.util.concurrent.atomic.AtomicLong;

/** Counters of an engine since load: steps, tokens, time in forward passes, preemptions, errors. */
public final class EngineStats {
    public final AtomicLong steps = new AtomicLong();
    public final AtomicLong stepTokens = new AtomicLong();
    public final AtomicLong forwardNanos = new AtomicLong();
    public final AtomicLong generatedTokens = new AtomicLong();
    public final AtomicLong promptTokens = new AtomicLong();
    /** Prompt tokens whose KV came from the shared-prefix cache instead of being computed. */
    public final AtomicLong cachedPromptTokens = new AtomicLong();
    public final AtomicLong finished = new AtomicLong();
    public final AtomicLong errors = new AtomicLong();
    public final AtomicLong preemptions = new AtomicLong();
    /** Steps whose tokens were all chosen greedily on the backend (no logits read back; Scheduler.DEVICE_GREEDY). */
    public final AtomicLong deviceGreedySteps = new AtomicLong();
    /** Most KV-cache blocks held at once (shared prefix blocks counted once). */
    public final AtomicLong peakKvBlocks = new AtomicLong();

    void observeBlocks(int used) {
        peakKvBlocks.accumulateAndGet(used, Math::max);
    }

    void addStep(int tokens, long nanos) {
        steps.incrementAndGet();
        stepTokens.addAndGet(tokens);
        forwardNanos.addAndGet(nanos);
    }

    @Override
    public String toString() {
        return String.format("steps=%d stepTokens=%d forward=%.2fs generated=%d prompt=%d cachedPrompt=%d finished=%d errors=%d preemptions=%d peakKvBlocks=%d deviceGreedySteps=%d",
                steps.get(), stepTokens.get(), forwardNanos.get() / 1e9, generatedTokens.get(), promptTokens.get(), cachedPromptTokens.get(),
                finished.get(), errors.get(), preemptions.get(), peakKvBlocks.get(), deviceGreedySteps.get());
    }
}
