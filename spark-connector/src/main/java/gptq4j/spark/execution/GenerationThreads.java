package gptq4j.spark.execution;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Daemon threads that wait on the engine's blocking generate calls, so a task can keep several batches submitted
 * while it emits the results of the oldest. The engine's own threads do the computing.
 */
final class GenerationThreads {

    private static final AtomicInteger COUNT = new AtomicInteger();

    static final ExecutorService POOL = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "gptq4j-submit-" + COUNT.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    private GenerationThreads() { }
}
