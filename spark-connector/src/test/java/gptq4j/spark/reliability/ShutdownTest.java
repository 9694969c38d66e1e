package gptq4j.spark.reliability;

import gptq4j.runtime.GenerationResult;
import gptq4j.spark.Fixtures;
import gptq4j.spark.engine.EngineCache;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static gptq4j.spark.functions.generate;
import static org.apache.spark.sql.functions.col;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Stopping the session (in local mode the executor stops with it) closes the executor's engine: its scheduler and
 * CPU worker threads end and its KV cache is freed; a new session in the same JVM loads the engine again and gives
 * the same answers. Checked with the {@code GptqPlugin} executor plugin and without it.
 */
class ShutdownTest {

    static final int N = 12;
    static final int MAX_NEW = 3;
    /** A KV cache big enough that freeing it shows in the heap: 256 MiB. */
    static final long KV_BYTES = 256L << 20;

    SparkSession spark;

    @BeforeEach
    void clean() {
        EngineCache.closeAll();   // engines of earlier test classes in this JVM
        assertTrue(Reliability.eventually(10_000, () -> Reliability.threads("gptq4j-scheduler").isEmpty()),
                "engine threads left from earlier tests: " + Reliability.threads("gptq4j-"));
    }

    @AfterEach
    void stop() {
        if (spark != null) spark.stop();
    }

    SparkSession session(boolean plugin) {
        SparkSession.Builder b = Reliability.session("local[2]", "gptq4j-shutdown")
                .config("spark.gptq4j.threads", "2")
                .config("spark.gptq4j.kvCacheBytes", Long.toString(KV_BYTES))
                .config("spark.gptq4j.sampling.temperature", "0")
                .config("spark.gptq4j.sampling.maxNewTokens", Integer.toString(MAX_NEW));
        if (plugin) b.config("spark.plugins", "gptq4j.spark.engine.GptqPlugin");
        return b.getOrCreate();
    }

    /** Runs generate over the fixture prompts and checks every text against Engine.generate. */
    void generatesCorrectly(List<GenerationResult> want) {
        List<String> prompts = Fixtures.prompts(N);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < N; i++) rows.add(RowFactory.create((long) i, prompts.get(i)));
        StructType schema = new StructType().add("id", DataTypes.LongType, false).add("prompt", DataTypes.StringType, true);
        List<Row> got = spark.createDataFrame(rows, schema).select(col("id"), generate(col("prompt")).as("t")).collectAsList();
        assertEquals(N, got.size());
        for (int i = 0; i < N; i++) assertEquals(want.get(i).text(), got.get(i).getString(1), "row " + i);
    }

    void stopClosesTheEngineAndANewSessionLoadsAgain(boolean plugin) {
        List<GenerationResult> want = Fixtures.directGreedy(Fixtures.prompts(N), MAX_NEW);
        String how = plugin ? "with GptqPlugin" : "without plugin";
        int loads0 = EngineCache.loadCount();
        for (int round = 1; round <= 2; round++) {
            spark = session(plugin);
            generatesCorrectly(want);
            assertEquals(round, EngineCache.loadCount() - loads0, how + ": round " + round + " loads the engine once");
            assertEquals(0, EngineCache.activeLeases());
            assertEquals(1, Reliability.threads("gptq4j-scheduler").size(), Reliability.threads("gptq4j-").toString());
            assertFalse(Reliability.threads("gptq4j-cpu").isEmpty(), "the engine's CPU workers run");
            long heapLoaded = Reliability.usedHeapAfterGc();

            long t0 = System.nanoTime();
            spark.stop();
            spark = null;
            boolean gone = Reliability.eventually(15_000, () -> Reliability.threads("gptq4j-scheduler").isEmpty()
                    && Reliability.threads("gptq4j-cpu").isEmpty());
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertTrue(gone, how + ": engine threads still alive after the session stopped: " + Reliability.threads("gptq4j-"));
            long heapStopped = Reliability.usedHeapAfterGc();
            assertTrue(heapLoaded - heapStopped > KV_BYTES * 3 / 4, how + ": the KV cache (" + (KV_BYTES >> 20)
                    + " MiB) was not freed: heap " + (heapLoaded >> 20) + " → " + (heapStopped >> 20) + " MiB");
            Reliability.figure("shutdown", String.format("%s, round %d: engine threads gone %.1f s after stop, heap after GC %d → %d MiB",
                    how, round, seconds, heapLoaded >> 20, heapStopped >> 20));
        }
    }

    @Test
    @Timeout(value = 170, unit = TimeUnit.SECONDS)
    void withThePlugin() {
        stopClosesTheEngineAndANewSessionLoadsAgain(true);
    }

    @Test
    @Timeout(value = 170, unit = TimeUnit.SECONDS)
    void withoutThePlugin() {
        stopClosesTheEngineAndANewSessionLoadsAgain(false);
    }
}
