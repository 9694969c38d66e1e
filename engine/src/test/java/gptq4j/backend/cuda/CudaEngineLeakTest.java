package gptq4j.backend.cuda;

import gptq4j.runtime.Engine;
import gptq4j.runtime.EngineOptions;
import gptq4j.runtime.GenerationRequest;
import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Reliability on the GPU: 8 threads sharing one engine, then 1,000 small calls, keep device memory at its level
 * and give the results of a fresh engine; closing the engine gives its device memory back; a second load works.
 * Device memory is read through the shared test backend, which keeps the primary context alive throughout.
 */
class CudaEngineLeakTest {
    static final long SLACK = 16L << 20;

    static List<GenerationRequest> requests() {
        List<GenerationRequest> r = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            SamplingParams p = i % 2 == 0 ? SamplingParams.greedy(6)
                    : new SamplingParams(6, 0.8, 40, 0.9, 0, 1, 0, 0, 77 + i, List.of(), List.of(), 0, false);
            r.add(new GenerationRequest("Row " + i + ": tell me about the river bridges of Europe", p));
        }
        return r;
    }

    @Test
    void deviceMemoryReturnsToItsLevel() throws Exception {
        CudaBackend probe = CudaTestSupport.backend();
        EngineOptions o = EngineOptions.of(Fixtures.model("tiny-mixtral-gptq-4bit-128g-actorder")).withDevice("cuda")
                .withKvCacheBytes(64L << 20);
        long base = probe.memoryInfo()[0];
        List<GenerationRequest> reqs = requests();
        List<GenerationResult> want;
        try (Engine e = Engine.load(o)) {
            assertTrue(e.device().startsWith("cuda"), e.device());
            want = e.generate(reqs);
        }
        long afterFirst = probe.memoryInfo()[0];
        try (Engine e = Engine.load(o)) {
            ExecutorService pool = Executors.newFixedThreadPool(8);
            CountDownLatch go = new CountDownLatch(1);
            List<Future<List<GenerationResult>>> fs = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                List<GenerationRequest> mine = reqs.subList(2 * t, 2 * t + 2);
                fs.add(pool.submit(() -> {
                    go.await();
                    return e.generate(mine);
                }));
            }
            go.countDown();
            for (int t = 0; t < 8; t++) {
                List<GenerationResult> got = fs.get(t).get();
                for (int j = 0; j < 2; j++) {
                    assertArrayEquals(want.get(2 * t + j).tokenIds(), got.get(j).tokenIds(), "request " + (2 * t + j));
                }
            }
            pool.shutdown();
            long warm = probe.memoryInfo()[0];
            for (int i = 0; i < 1000; i++) {
                GenerationResult r = e.generate(List.of(reqs.get(i % 16))).get(0);
                assertArrayEquals(want.get(i % 16).tokenIds(), r.tokenIds(), "small call " + i);
            }
            long after = probe.memoryInfo()[0];
            CudaTestSupport.report("device_growth_bytes_1000_calls", Math.max(0, warm - after));
            assertTrue(warm - after <= SLACK, "device memory grew by " + (warm - after) + " bytes over 1,000 calls");
        }
        long closed = probe.memoryInfo()[0];
        CudaTestSupport.report("device_not_returned_bytes", Math.max(0, base - closed));
        assertTrue(base - closed <= SLACK, "closing the engine left " + (base - closed) + " bytes allocated");
        assertTrue(Math.abs(afterFirst - closed) <= SLACK, "first close " + afterFirst + " vs second " + closed);
        assertEquals(want.size(), reqs.size());
    }
}
