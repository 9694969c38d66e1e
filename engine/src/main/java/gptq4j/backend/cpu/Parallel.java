package gptq4j.backend.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed pool of worker threads shared by the CPU kernels; the caller owns it and closes it. The calling thread
 * works too, so a pool of N threads runs N-1 workers.
 *
 * <p>{@link #parallelFor} splits [0, n) into chunks of {@code grain} indices and gives thread i the i-th contiguous
 * share of them, which it walks front to back; a thread that runs out takes chunks from the back of another's share.
 * So each core streams one long run of memory (one matrix half at batch 1 with two threads) instead of every other
 * 64 KiB, and a core slowed by another process still gets its share done by the other.
 *
 * <p>A decode step makes ~50 parallel calls of 0.1–1 ms each, and waking a parked thread costs 30–70 µs in this
 * KVM guest (measured: an empty two-thread call took 35–70 µs after a 200 µs pause, 0.3 µs with spinning workers), so workers spin for {@link #SPIN_PROPERTY} microseconds after each
 * call before they park (yielding the core after the first 50 µs, so another process that wants it gets it), and the
 * caller spins, then yields, while the workers finish their last chunks.
 *
 * <p>Which thread computes which index never changes a result: kernels compute each output from its own
 * inputs only (see the package documentation on batch invariance).
 */
public final class Parallel implements AutoCloseable {
    /**
     * System property: how long (µs) an idle worker spins for the next call before it parks; default
     * {@value #DEFAULT_SPIN_MICROS}; 0 parks at once (saves CPU on a shared machine, costs a wake-up per call).
     */
    public static final String SPIN_PROPERTY = "gptq4j.cpu.spinMicros";
    static final int DEFAULT_SPIN_MICROS = 2000;

    /** How long an idle worker spins before it spins with {@link Thread#yield} (the rest of the spin time). */
    private static final long PURE_SPIN_NANOS = 50_000;
    private static final int PAD = 16;   // longs between two shares' counters (128 bytes: no false sharing)

    private final int threads;
    private final Worker[] workers;      // threads-1, empty when threads == 1
    private final long spinNanos;
    private final AtomicBoolean busy = new AtomicBoolean();   // one call at a time; others (and nested ones) run serially

    // the current call, published by the volatile write to generation
    private IntRangeConsumer body;
    private int n, grain;
    private final AtomicLongArray shares;                    // [thread * PAD]: front << 32 | back, in chunks
    private final AtomicInteger active = new AtomicInteger(); // workers inside the call; CLOSED bit once the caller is done
    private volatile Throwable failure;
    private volatile boolean stopping;
    private volatile long generation;
    private volatile boolean closed;

    private static final int CLOSED = 1 << 30;

    /** @param threads worker count including the caller; 0 means {@link Runtime#availableProcessors()} */
    public Parallel(int threads) {
        this(threads, spinMicrosProperty());
    }

    /** @param spinMicros how long idle workers spin before they park (see {@link #SPIN_PROPERTY}) */
    public Parallel(int threads, int spinMicros) {
        if (threads < 0) throw new IllegalArgumentException("threads must be >= 0 (0 = all processors), got " + threads);
        if (spinMicros < 0) throw new IllegalArgumentException("spinMicros must be >= 0, got " + spinMicros);
        this.threads = threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
        this.spinNanos = spinMicros * 1000L;
        this.shares = new AtomicLongArray(this.threads * PAD);
        this.workers = new Worker[this.threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
    }

    private static int spinMicrosProperty() {
        String v = System.getProperty(SPIN_PROPERTY);
        if (v == null) return DEFAULT_SPIN_MICROS;
        try {
            int us = Integer.parseInt(v.trim());
            if (us < 0) throw new NumberFormatException();
            return us;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-D" + SPIN_PROPERTY + "=" + v + ": expected microseconds >= 0");
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
        if (workers.length == 0 || chunks == 1 || !busy.compareAndSet(false, true)) {
            body.accept(0, n);
            return;
        }
        try {
            this.body = body;
            this.n = n;
            this.grain = grain;
            this.failure = null;
            this.stopping = false;
            for (int t = 0; t < threads; t++) {
                long front = (long) chunks * t / threads, back = (long) chunks * (t + 1) / threads;
                shares.set(t * PAD, front << 32 | back);
            }
            active.set(0);
            generation = generation + 1;                     // publishes the call
            for (Worker w : workers) if (w.parked) LockSupport.unpark(w);
            work(0);
            int a;
            while (true) {                                   // no worker may enter from now on
                a = active.get();
                if (active.compareAndSet(a, a | CLOSED)) break;
            }
            for (int spins = 0; (active.get() & ~CLOSED) != 0; spins++) {
                if (spins < 1 << 10) Thread.onSpinWait();
                else Thread.yield();                         // a worker descheduled by another process: let it run
            }
            this.body = null;
            Throwable f = failure;
            if (f instanceof RuntimeException re) throw re;
            if (f instanceof Error er) throw er;
            if (f != null) throw new IllegalStateException("parallel loop failed", f);
        } finally {
            busy.set(false);
        }
    }

    /** Runs body over [0, n) with a grain giving each thread several chunks. */
    public void parallelFor(int n, IntRangeConsumer body) {
        parallelFor(n, Math.max(1, n / (threads * 8)), body);
    }

    /** Thread {@code self}'s part of the current call: its own share front to back, then the others' from the back. */
    private void work(int self) {
        IntRangeConsumer b = body;
        int nn = n, g = grain;
        try {
            int idx = self * PAD;
            while (!stopping) {                              // own share, from the front
                long s = shares.get(idx);
                int front = (int) (s >>> 32), back = (int) s;
                if (front >= back) break;
                if (!shares.compareAndSet(idx, s, (long) (front + 1) << 32 | back)) continue;
                run(b, front, g, nn);
            }
            for (int k = 1; k < threads && !stopping; k++) { // then the others', from the back
                int other = ((self + k) % threads) * PAD;
                while (!stopping) {
                    long s = shares.get(other);
                    int front = (int) (s >>> 32), back = (int) s;
                    if (front >= back) break;
                    if (!shares.compareAndSet(other, s, (long) front << 32 | (back - 1))) continue;
                    run(b, back - 1, g, nn);
                }
            }
        } catch (RuntimeException | Error e) {
            if (failure == null) failure = e;
            stopping = true;                                 // stop handing out work
        }
    }

    private static void run(IntRangeConsumer b, int chunk, int g, int n) {
        int from = chunk * g;
        b.accept(from, Math.min(n, from + g));
    }

    private final class Worker extends Thread {
        private final int self;
        volatile boolean parked;

        Worker(int self) {
            super("gptq4j-cpu-" + self);
            this.self = self;
            setDaemon(true);
        }

        @Override
        public void run() {
            long seen = generation;
            while (true) {
                long start = System.nanoTime();
                long g;
                while ((g = generation) == seen && !closed) {   // spin, then spin yielding the core, then park
                    long idle = System.nanoTime() - start;
                    if (idle < Math.min(spinNanos, PURE_SPIN_NANOS)) {
                        Thread.onSpinWait();
                    } else if (idle < spinNanos) {
                        Thread.yield();                      // another process waiting for this core gets it
                    } else {
                        parked = true;
                        if (generation == seen && !closed) LockSupport.park(this);
                        parked = false;
                    }
                }
                if (closed) return;
                seen = g;
                int a;
                do {                                         // enter, unless the caller already finished the call
                    a = active.get();
                } while ((a & CLOSED) == 0 && !active.compareAndSet(a, a + 1));
                if ((a & CLOSED) != 0) continue;
                try {
                    work(self);
                } finally {
                    active.decrementAndGet();
                }
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Worker w : workers) LockSupport.unpark(w);
    }
}
