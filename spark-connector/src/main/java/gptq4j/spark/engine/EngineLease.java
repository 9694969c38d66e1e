package gptq4j.spark.engine;

import gptq4j.runtime.Engine;
import gptq4j.runtime.GenerationRequest;
import gptq4j.runtime.GenerationResult;

import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A task's hold on a cached engine. Closing it releases the hold (once); the engine itself stays cached for
 * later tasks until the executor stops.
 */
public final class EngineLease implements AutoCloseable {

    private final EngineCache.Slot slot;
    private final Engine engine;
    private final AtomicBoolean released = new AtomicBoolean();

    EngineLease(EngineCache.Slot slot, Engine engine) {
        this.slot = slot;
        this.engine = engine;
    }

    /** Blocking generation; concurrent callers' requests join the engine's continuous batch. */
    public List<GenerationResult> generate(List<GenerationRequest> requests) {
        if (released.get()) throw new IllegalStateException("engine lease already released");
        return engine.generate(requests);
    }

    /** The device the engine runs on, e.g. cpu-vector or cuda:1. */
    public String device() { return engine.device(); }

    /** How this engine was loaded. */
    public EngineLoad load() { return slot.load(); }

    @Override
    public void close() {
        if (released.compareAndSet(false, true)) slot.release();
    }
}
