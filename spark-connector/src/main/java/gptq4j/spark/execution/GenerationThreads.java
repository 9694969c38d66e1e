package gptq4j.spark.execution;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * Daemon threads that wait on the engine's blocking generate calls, so a task can keep several batches submitted
 * while it emits the results of the oldest. The engine's own threads do the computing.
 *
 * <p>A worker counts itself free again before it completes a call's future, so a task that the completion wakes and
 * that submits its next batch at once finds it: there are never more workers than calls in flight at one time. (A
 * cached thread pool could start a thread in that hand-over, before the finished worker waited for work again; under
 * 8 tasks of 2 batches in flight, 1,000 tasks once left 17 threads.) Free workers end after a minute without work.
 */
final class GenerationThreads {

    private static final long KEEP_ALIVE_NANOS = TimeUnit.SECONDS.toNanos(60);
    private static final AtomicInteger COUNT = new AtomicInteger();
    private static final AtomicInteger LIVE = new AtomicInteger();
    /** Calls submitted and not yet taken by a worker. */
    private static final LinkedBlockingQueue<Call<?>> QUEUE = new LinkedBlockingQueue<>();
    /** Free workers that no queued call has been promised: a submission takes one, or starts a worker. */
    private static final AtomicInteger FREE = new AtomicInteger();

    private GenerationThreads() { }

    /** Runs work on a worker; the future completes with its value or with what it threw. */
    static <T> CompletableFuture<T> supply(Supplier<T> work) {
        Call<T> call = new Call<>(work);
        QUEUE.add(call);
        if (!takeFree()) start();
        return call.future;
    }

    /** Live workers (busy or free). */
    static int workers() { return LIVE.get(); }

    /** Takes one free worker if there is one. */
    private static boolean takeFree() {
        return FREE.getAndUpdate(n -> n > 0 ? n - 1 : n) > 0;
    }

    private static void start() {
        LIVE.incrementAndGet();
        Thread t = new Thread(GenerationThreads::work, "gptq4j-submit-" + COUNT.incrementAndGet());
        t.setDaemon(true);
        t.start();
    }

    /**
     * A worker's life. It starts promised to a queued call (not counted free), so every queued call has a worker
     * bound to take it: one started for it or a free one it took.
     */
    private static void work() {
        try {
            for (;;) {
                Call<?> call;
                try {
                    call = QUEUE.poll(KEEP_ALIVE_NANOS, TimeUnit.NANOSECONDS);
                } catch (InterruptedException e) {
                    continue;                                 // nobody interrupts these threads; keep serving
                }
                if (call == null) {
                    if (takeFree()) return;                   // a free worker not promised to any call: this one leaves
                    continue;                                 // every free worker is promised: a call is on its way
                }
                call.run();
                FREE.incrementAndGet();                       // free before the completion wakes the task
                try {
                    call.complete();
                } catch (Throwable t) {
                    // only an error outside the call (its dependents' are theirs): the worker is counted free, so it
                    // must keep serving
                }
            }
        } finally {
            LIVE.decrementAndGet();
        }
    }

    private static final class Call<T> {
        final Supplier<T> work;
        final CompletableFuture<T> future = new CompletableFuture<>();
        private T value;
        private Throwable failure;

        Call(Supplier<T> work) { this.work = work; }

        void run() {
            try {
                value = work.get();
            } catch (Throwable t) {
                failure = t;
            }
        }

        void complete() {
            if (failure != null) future.completeExceptionally(failure);
            else future.complete(value);
        }
    }
}
