package gptq4j.spark.execution;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

class GenerationThreadsTest {

    @Test
    @Timeout(value = 30, unit = TimeUnit.SECONDS)
    void valuesAndFailuresReachTheFuture() throws Exception {
        assertEquals(42, GenerationThreads.supply(() -> 42).get());
        CompletableFuture<Object> failed = GenerationThreads.supply(() -> {
            throw new IllegalStateException("engine refused");
        });
        ExecutionException e = assertThrows(ExecutionException.class, failed::get);
        assertInstanceOf(IllegalStateException.class, e.getCause());
        assertEquals("engine refused", e.getCause().getMessage());
    }

    /**
     * Tasks that keep two calls in flight and submit the next one the moment the oldest completes (BatchPipeline's
     * pattern): the workers never outnumber the calls in flight, however the hand-overs interleave.
     */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void workersNeverOutnumberTheCallsInFlight() throws Exception {
        int tasks = 8, inFlight = 2, rounds = 400;
        int before = GenerationThreads.workers();
        AtomicInteger most = new AtomicInteger(before), done = new AtomicInteger();
        List<Thread> threads = new ArrayList<>();
        List<Throwable> errors = Collections.synchronizedList(new ArrayList<>());
        for (int k = 0; k < tasks; k++) {
            Thread t = new Thread(() -> {
                try {
                    ArrayDeque<CompletableFuture<Integer>> pending = new ArrayDeque<>();
                    for (int i = 0; i < rounds; i++) {
                        while (pending.size() < inFlight) {
                            int id = i;
                            pending.add(GenerationThreads.supply(() -> {
                                LockSupport.parkNanos(ThreadLocalRandom.current().nextLong(1_000, 60_000));
                                return id;
                            }));
                            most.accumulateAndGet(GenerationThreads.workers(), Math::max);
                        }
                        pending.poll().get();
                        most.accumulateAndGet(GenerationThreads.workers(), Math::max);
                        done.incrementAndGet();
                    }
                    for (CompletableFuture<Integer> f : pending) f.get();
                } catch (Throwable e) {
                    errors.add(e);
                }
            });
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) t.join();
        assertTrue(errors.isEmpty(), "task errors: " + errors);
        assertEquals(tasks * rounds, done.get());
        assertTrue(most.get() <= Math.max(before, tasks * inFlight),
                "workers " + most.get() + " for at most " + tasks * inFlight + " calls in flight (" + before + " before)");
    }
}
