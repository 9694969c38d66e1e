package gptq4j.backend.cpu;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A fixed pool of worker threads shared by the CPU kernels; the caller owns it and closes it.
 * {@link #parallelFor} splits [0, n) into chunks handed out dynamically; the calling thread works too,
 * so a pool of N threads runs N-1 workers.
 *
 * <p>Which thread computes which index never changes a result: kernels compute each output from its own
 * inputs only (see the package documentation on batch invariance).
 */
public final class Parallel implements AutoCloseable {
    private final int threads;
    private final ExecutorService pool; // threads-1 workers, null when threads == 1

    /** @param threads worker count including the caller; 0 means {@link Runtime#availableProcessors()} */
    public Parallel(int threads) {
        if (threads < 0) throw new IllegalArgumentException("threads must be >= 0 (0 = all processors), got " + threads);
        this.threads = threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
        if (this.threads == 1) {
            pool = null;
        } else {
            AtomicInteger id = new AtomicInteger();
            pool = Executors.newFixedThreadPool(this.threads - 1, r -> {
                Thread t = new Thread(r, "gptq4j-cpu-" + id.incrementAndGet());
                t.setDaemon(true);
                return t;
            });
        }
    }

    /** A single-threaded instance (runs everything on the caller). */
    public static Parallel serial() { return new Parallel(1); }

    public int threads() { return threads; }

    /** Runs body over [0, n) in chunks of {@code grain} indices (the last may be shorter), in parallel. */
    public void parallelFor(int n, int grain, IntRangeConsumer body) {
        if (n <= 0) return;
        if (grain < 1) grain = 1;
        int chunks = (int) (((long) n + grain - 1) / grain);
        if (pool == null || chunks == 1) {
            body.accept(0, n);
            return;
        }
        final int g = grain;
        AtomicInteger next = new AtomicInteger();
        Runnable worker = () -> {
            int c;
            while ((c = next.getAndIncrement()) < chunks) {
                int from = c * g;
                body.accept(from, Math.min(n, from + g));
            }
        };
        int helpers = Math.min(threads, chunks) - 1;
        Future<?>[] fs = new Future<?>[helpers];
        for (int i = 0; i < helpers; i++) fs[i] = pool.submit(worker);
        Throwable failure = null;
        try {
            worker.run();
        } catch (RuntimeException | Error e) {
            failure = e;
            next.set(chunks); // stop handing out work
        }
        for (Future<?> f : fs) {
            try {
                f.get();
            } catch (ExecutionException e) {
                if (failure == null) failure = e.getCause();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                if (failure == null) failure = e;
            }
        }
        if (failure instanceof RuntimeException re) throw re;
        if (failure instanceof Error er) throw er;
        if (failure != null) throw new IllegalStateException("parallel loop failed", failure);
    }

    /** Runs body over [0, n) with a grain giving each thread several chunks. */
    public void parallelFor(int n, IntRangeConsumer body) {
        parallelFor(n, Math.max(1, n / (threads * 8)), body);
    }

    @Override
    public void close() {
        if (pool != null) pool.shutdownNow();
    }
}
