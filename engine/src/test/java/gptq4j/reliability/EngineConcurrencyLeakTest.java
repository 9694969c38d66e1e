package gptq4j.reliability;

import gptq4j.runtime.Engine;
import gptq4j.runtime.EngineOptions;
import gptq4j.runtime.GenerationRequest;
import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Concurrency, leaks and shutdown of one engine (issue 9, engine side): 8 threads submitting at once get exactly
 * what sequential calls get (greedy and seeded sampling); 1,000 small calls in sequence leave heap, direct memory
 * and thread count where warm-up left them; close() stops the engine's threads (scheduler and CPU pool); a second
 * load after close gives the same results.
 */
class EngineConcurrencyLeakTest {
    static final String MODEL = "tiny-mixtral-gptq-4bit-128g-actorder";
    static final int THREADS = 8;
    static final int PER_THREAD = 3;
    static final long HEAP_GROWTH_LIMIT = 64L << 20;
    static final long DIRECT_GROWTH_LIMIT = 16L << 20;

    static EngineOptions options() {
        return EngineOptions.of(Fixtures.model(MODEL)).withDevice("cpu").withThreads(2).withKvCacheBytes(16L << 20);
    }

    /** Thread t's requests: prompts of different lengths, greedy and seeded sampling alternating. */
    static List<GenerationRequest> requests(int t) {
        String[] words = "the river bridge spark executor token cache quietly northern café 12 345 ! ?".split(" ");
        List<GenerationRequest> out = new ArrayList<>();
        for (int i = 0; i < PER_THREAD; i++) {
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < 3 + 11 * ((t * PER_THREAD + i) % 7); w++) sb.append(words[(w * 7 + t * 3 + i) % words.length]).append(' ');
            SamplingParams p = (t + i) % 2 == 0 ? SamplingParams.greedy(8)
                    : new SamplingParams(8, 0.9, 50, 0.95, 0, 1.0, 0, 0, 1000L * t + i, List.of(), List.of(), 0, true);
            out.add(new GenerationRequest(sb.toString().strip(), p));
        }
        return out;
    }

    static Set<Thread> gptq4jThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().startsWith("gptq4j-")).collect(Collectors.toSet());
    }

    static long usedHeapAfterGc() throws InterruptedException {
        Runtime rt = Runtime.getRuntime();
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 4; i++) {
            System.gc();
            Thread.sleep(50);
            best = Math.min(best, rt.totalMemory() - rt.freeMemory());
        }
        return best;
    }

    static long directBytes() {
        return ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(b -> b.getName().equals("direct")).mapToLong(BufferPoolMXBean::getMemoryUsed).sum();
    }

    static List<List<GenerationResult>> sequential(Engine e) {
        List<List<GenerationResult>> out = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            List<GenerationResult> rs = new ArrayList<>();
            for (GenerationRequest r : requests(t)) rs.add(e.generate(List.of(r)).get(0));
            out.add(rs);
        }
        return out;
    }

    static void assertSame(List<List<GenerationResult>> want, List<List<GenerationResult>> got, String how) {
        for (int t = 0; t < THREADS; t++) {
            for (int i = 0; i < PER_THREAD; i++) {
                GenerationResult w = want.get(t).get(i), g = got.get(t).get(i);
                assertNull(g.error(), how);
                assertArrayEquals(w.tokenIds(), g.tokenIds(), how + ": thread " + t + " request " + i);
                assertEquals(w.text(), g.text(), how + ": thread " + t + " request " + i);
                assertEquals(w.finishReason(), g.finishReason(), how);
            }
        }
    }

    @Test
    void concurrentCallsEqualSequentialNoLeaksAndCleanShutdown() throws Exception {
        Set<Thread> before = gptq4jThreads();
        List<List<GenerationResult>> firstSequential;
        Set<Thread> engineThreads;
        long heapWarm, heapAfter, directWarm, directAfter;
        int threadsWarm, threadsAfter;
        try (Engine e = Engine.load(options())) {
            engineThreads = new HashSet<>(gptq4jThreads());
            engineThreads.removeAll(before);
            assertTrue(engineThreads.stream().anyMatch(t -> t.getName().equals("gptq4j-scheduler")), "scheduler thread: " + engineThreads);
            firstSequential = sequential(e);
            for (List<GenerationResult> rs : firstSequential) for (GenerationResult r : rs) assertEquals(8, r.completionTokens());

            // 8 threads at once, released together, each submitting its requests one after another
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            try {
                for (int round = 0; round < 2; round++) {
                    CountDownLatch go = new CountDownLatch(1);
                    List<Future<List<GenerationResult>>> fs = new ArrayList<>();
                    for (int t = 0; t < THREADS; t++) {
                        int tt = t;
                        fs.add(pool.submit(() -> {
                            go.await();
                            List<GenerationResult> rs = new ArrayList<>();
                            if (tt % 2 == 0) {
                                for (GenerationRequest r : requests(tt)) rs.add(e.generate(List.of(r)).get(0));
                            } else {
                                rs.addAll(e.generate(requests(tt))); // a whole list at once joins the batch too
                            }
                            return rs;
                        }));
                    }
                    go.countDown();
                    List<List<GenerationResult>> concurrent = new ArrayList<>();
                    for (Future<List<GenerationResult>> f : fs) concurrent.add(f.get(120, TimeUnit.SECONDS));
                    assertSame(firstSequential, concurrent, "8 concurrent threads, round " + round);
                }
            } finally {
                pool.shutdownNow();
            }

            // 1,000 small calls in sequence: heap, direct memory and threads stay where warm-up left them
            for (int i = 0; i < 100; i++) e.generate(List.of(small(i)));
            heapWarm = usedHeapAfterGc();
            directWarm = directBytes();
            threadsWarm = Thread.activeCount();
            for (int i = 0; i < 1000; i++) {
                GenerationResult r = e.generate(List.of(small(i))).get(0);
                assertNull(r.error(), "call " + i);
                assertEquals(2, r.completionTokens(), "call " + i);
            }
            heapAfter = usedHeapAfterGc();
            directAfter = directBytes();
            threadsAfter = Thread.activeCount();
            assertEquals(0, e.kvBlocksInUse(), "KV blocks still referenced after every request finished");
        }
        System.out.printf("[leaks] used heap after warm-up %.1f MB, after 1000 calls %.1f MB (growth %.1f MB); direct %.1f -> %.1f MB;"
                        + " threads %d -> %d%n", heapWarm / 1e6, heapAfter / 1e6, (heapAfter - heapWarm) / 1e6,
                directWarm / 1e6, directAfter / 1e6, threadsWarm, threadsAfter);
        assertTrue(heapAfter - heapWarm < HEAP_GROWTH_LIMIT, "heap grew by " + (heapAfter - heapWarm) + " bytes over 1000 calls");
        assertTrue(directAfter - directWarm < DIRECT_GROWTH_LIMIT, "direct memory grew by " + (directAfter - directWarm) + " bytes");
        assertTrue(threadsAfter <= threadsWarm, "threads " + threadsWarm + " -> " + threadsAfter);

        // close() stopped the engine's own threads
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (engineThreads.stream().anyMatch(Thread::isAlive) && System.nanoTime() < deadline) Thread.sleep(20);
        List<String> alive = engineThreads.stream().filter(Thread::isAlive).map(Thread::getName).toList();
        assertTrue(alive.isEmpty(), "threads still alive after close: " + alive);

        // a second load after close works and gives the same answers
        try (Engine e2 = Engine.load(options())) {
            assertSame(firstSequential, sequential(e2), "second engine after close");
        }
        Set<Thread> left = gptq4jThreads();
        left.removeAll(before);
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (left.stream().anyMatch(Thread::isAlive) && System.nanoTime() < deadline) Thread.sleep(20);
        assertTrue(left.stream().noneMatch(Thread::isAlive), "second engine's threads alive after close: " + left);
    }

    static GenerationRequest small(int i) {
        SamplingParams p = i % 2 == 0 ? SamplingParams.greedy(2)
                : new SamplingParams(2, 0.7, 0, 1, 0, 1, 0, 0, i, List.of(), List.of(), 0, true);
        return new GenerationRequest("row " + i + " of the table", p);
    }
}
