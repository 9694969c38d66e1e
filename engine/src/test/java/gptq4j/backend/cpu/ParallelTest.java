package gptq4j.backend.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The thread pool: every index exactly once, whatever the split, the spin setting and the callers. */
class ParallelTest {

    @ParameterizedTest(name = "threads={0} spin={1}us")
    @CsvSource({"1,0", "2,0", "2,2000", "3,0", "3,50", "4,2000"})
    void coversEveryIndexOnce(int threads, int spinMicros) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        try (Parallel p = new Parallel(threads, spinMicros)) {
            for (int call = 0; call < 300; call++) {
                int n = rnd.nextInt(5000), grain = 1 + rnd.nextInt(64);   // a serial call may take [0, n) at once
                AtomicIntegerArray seen = new AtomicIntegerArray(Math.max(1, n));
                p.parallelFor(n, grain, (from, to) -> {
                    assertTrue(0 <= from && from < to && to <= n, "range [" + from + ", " + to + ")");
                    for (int i = from; i < to; i++) seen.incrementAndGet(i);
                });
                for (int i = 0; i < n; i++) assertEquals(1, seen.get(i), "index " + i + " of " + n + " (seed " + seed + ")");
                if (rnd.nextInt(20) == 0) sleepMillis(3);      // let the workers park now and then
            }
        }
    }

    /**
     * Each thread takes the chunks of its own share front to back, so within a share the owner's chunks are a
     * contiguous run from the share's start (a thief takes the rest from the back); timing decides only the run's length.
     */
    @Test
    void eachThreadWalksItsShareFromTheFront() {
        try (Parallel p = new Parallel(2, 2000)) {
            for (int call = 0; call < 50; call++) {
                int n = 64;
                ConcurrentHashMap<Thread, List<Integer>> order = new ConcurrentHashMap<>();
                p.parallelFor(n, 1, (from, to) -> order.computeIfAbsent(Thread.currentThread(),
                        t -> java.util.Collections.synchronizedList(new ArrayList<>())).add(from));
                for (var e : order.entrySet()) {
                    List<Integer> own = new ArrayList<>();
                    int start = e.getKey() == Thread.currentThread() ? 0 : n / 2;
                    for (int c : e.getValue()) if (c >= start && c < start + n / 2) own.add(c);
                    for (int i = 0; i < own.size(); i++) {
                        if (own.get(0) != start) break;      // the worker never started: the caller stole its share
                        assertEquals(start + i, own.get(i), e.getKey().getName() + " took " + e.getValue());
                    }
                }
            }
        }
    }

    @Test
    void failureInABodyIsRethrownAndThePoolStaysUsable() {
        try (Parallel p = new Parallel(2, 2000)) {
            IllegalStateException boom = new IllegalStateException("boom");
            for (int fail : new int[] {0, 63}) {              // the caller's share and the worker's
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> p.parallelFor(64, 1, (from, to) -> {
                    if (from == fail) throw boom;
                }));
                assertSame(boom, e);
            }
            AtomicInteger sum = new AtomicInteger();
            p.parallelFor(100, 7, (from, to) -> sum.addAndGet(to - from));
            assertEquals(100, sum.get());
        }
    }

    @Test
    void nestedAndConcurrentCallsRunSeriallyInsteadOfDeadlocking() throws InterruptedException {
        try (Parallel p = new Parallel(2, 100)) {
            AtomicInteger inner = new AtomicInteger();
            p.parallelFor(8, 1, (from, to) -> p.parallelFor(10, 1, (a, b) -> inner.addAndGet(b - a)));
            assertEquals(80, inner.get());

            int callers = 4, calls = 200;
            AtomicInteger total = new AtomicInteger();
            CountDownLatch done = new CountDownLatch(callers);
            for (int c = 0; c < callers; c++) {
                Thread t = new Thread(() -> {
                    for (int i = 0; i < calls; i++) p.parallelFor(50, 3, (from, to) -> total.addAndGet(to - from));
                    done.countDown();
                });
                t.setDaemon(true);
                t.start();
            }
            assertTrue(done.await(60, java.util.concurrent.TimeUnit.SECONDS), "concurrent callers did not finish");
            assertEquals(callers * calls * 50, total.get());
        }
    }

    @Test
    void rejectsNegativeArguments() {
        assertThrows(IllegalArgumentException.class, () -> new Parallel(-1));
        assertThrows(IllegalArgumentException.class, () -> new Parallel(2, -1));
    }

    private static void sleepMillis(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
