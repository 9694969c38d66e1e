package gptq4j.spark.reliability;

import gptq4j.runtime.GenerationResult;
import gptq4j.spark.Fixtures;
import gptq4j.spark.engine.EngineCache;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static gptq4j.spark.functions.generate;
import static org.apache.spark.sql.functions.array;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.element_at;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.udf;
import static org.apache.spark.sql.functions.when;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * local[8]: eight tasks hold the executor's one engine at the same moment (a latch in the input makes every task
 * wait until all eight have their lease), then 1,000 one-row tasks run; the engine is loaded once, every result
 * equals Engine.generate, and after warm-up heap (after GC), direct buffers, Spark's Arrow allocator and the thread
 * count return to their level.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ConcurrencyLeakTest {

    static final int TASKS = 8;
    static final int SMALL_TASKS = 1_000;
    static final int MAX_NEW = 2;

    static volatile CountDownLatch allTasksIn;
    static final AtomicInteger MAX_LEASES = new AtomicInteger();
    static final Set<Long> TASKS_IN = ConcurrentHashMap.newKeySet();

    SparkSession spark;
    int loadsBefore;

    @BeforeAll
    void start() {
        EngineCache.closeAll();   // engines of earlier test classes in this JVM, so thread counts are this test's
        assertTrue(Reliability.eventually(10_000, () -> Reliability.threads("gptq4j-scheduler").isEmpty()),
                "engine threads left from earlier tests: " + Reliability.threads("gptq4j-"));
        spark = Reliability.session("local[" + TASKS + "]", "gptq4j-concurrency")
                .config("spark.gptq4j.rowsPerBatch", "4")
                .config("spark.gptq4j.batchesInFlight", "2")
                .config("spark.gptq4j.sampling.temperature", "0")
                .config("spark.gptq4j.sampling.maxNewTokens", Integer.toString(MAX_NEW))
                .getOrCreate();
        loadsBefore = EngineCache.loadCount();
    }

    @AfterAll
    void stop() {
        if (spark != null) spark.stop();
    }

    /** Fixtures.prompts(n) as a column over a range of n rows in {@code partitions} partitions. */
    Dataset<Row> prompts(int n, int partitions) {
        Column[] seeds = Fixtures.prompts(10).stream().map(functions::lit).toArray(Column[]::new);
        return spark.range(0, n, 1, partitions)
                .withColumn("prompt", concat(element_at(array(seeds), col("id").mod(10).plus(1).cast("int")),
                        when(col("id").geq(10), concat(lit(" #"), col("id").cast("string"))).otherwise(lit(""))));
    }

    /** On a task's first row: wait until all TASKS tasks got here (each holds its lease by then), note the leases. */
    static long meetOthers(long id) {
        TaskContext t = TaskContext.get();
        if (t != null && TASKS_IN.add(t.taskAttemptId())) {
            allTasksIn.countDown();
            try {
                if (!allTasksIn.await(120, TimeUnit.SECONDS)) throw new IllegalStateException("the " + TASKS + " tasks never ran together");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            MAX_LEASES.accumulateAndGet(EngineCache.activeLeases(), Math::max);
        }
        return id;
    }

    static void assertTexts(List<Row> got, int n) {
        List<GenerationResult> want = Fixtures.directGreedy(Fixtures.prompts(n), MAX_NEW);
        assertEquals(n, got.size());
        for (int i = 0; i < n; i++) {
            assertEquals((long) i, got.get(i).getLong(0), "row order");
            assertEquals(want.get(i).text(), got.get(i).getString(1), "row " + i);
        }
    }

    @Test
    @Order(1)
    @Timeout(value = 170, unit = TimeUnit.SECONDS)
    void eightConcurrentTasksShareOneEngine() {
        allTasksIn = new CountDownLatch(TASKS);
        TASKS_IN.clear();
        MAX_LEASES.set(0);
        UserDefinedFunction meet = udf((Long id) -> meetOthers(id), DataTypes.LongType).asNondeterministic();
        int n = TASKS * 12;
        long t0 = System.nanoTime();
        List<Row> got = prompts(n, TASKS).withColumn("id", meet.apply(col("id")))
                .select(col("id"), generate(col("prompt")).as("t")).collectAsList();
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertEquals(TASKS, MAX_LEASES.get(), "all tasks held the engine at once");
        assertEquals(1, EngineCache.loadCount() - loadsBefore, "one engine for all concurrent tasks");
        assertEquals(0, EngineCache.activeLeases());
        assertTexts(got, n);
        Reliability.figure("concurrency", String.format("%d tasks on one engine at once (leases seen %d), %d rows in %.1f s, "
                + "every text equal to Engine.generate", TASKS, MAX_LEASES.get(), n, seconds));
    }

    @Test
    @Order(2)
    @Timeout(value = 170, unit = TimeUnit.SECONDS)
    void thousandSmallTasksLeakNothing() {
        // warm-up: the same shape of job, so pools, caches and JIT reach their working size
        prompts(200, 200).select(col("id"), generate(col("prompt"))).collectAsList();
        long heap0 = Reliability.usedHeapAfterGc();
        long direct0 = Reliability.directBytes();
        long arrow0 = Reliability.arrowBytes();
        int children0 = Reliability.arrowChildren();
        int threads0 = Thread.activeCount();
        List<String> names0 = Reliability.threads("");
        List<String> engineThreads0 = Reliability.threads("gptq4j-cpu");
        List<String> schedulers0 = Reliability.threads("gptq4j-scheduler");

        long t0 = System.nanoTime();
        List<Row> got = prompts(SMALL_TASKS, SMALL_TASKS).select(col("id"), generate(col("prompt")).as("t")).collectAsList();
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertTexts(got, SMALL_TASKS);

        long heap1 = Reliability.usedHeapAfterGc();
        long direct1 = Reliability.directBytes();
        int threads1 = Thread.activeCount();
        assertEquals(1, EngineCache.loadCount() - loadsBefore, "still one engine after " + SMALL_TASKS + " more tasks");
        assertEquals(0, EngineCache.activeLeases(), "every task released its lease");
        assertEquals(arrow0, Reliability.arrowBytes(), "Arrow memory outstanding");
        assertEquals(children0, Reliability.arrowChildren(), "per-task Arrow allocators left open");
        assertEquals(1, schedulers0.size(), "one engine scheduler thread: " + schedulers0);
        assertEquals(schedulers0, Reliability.threads("gptq4j-scheduler"));
        assertEquals(engineThreads0, Reliability.threads("gptq4j-cpu"), "engine worker threads");
        assertTrue(Reliability.threads("gptq4j-submit").size() <= TASKS * 2,
                "submit threads are bounded by tasks × batches in flight: " + Reliability.threads("gptq4j-submit"));
        // pools (Spark's task launch workers, gptq4j-submit) may settle at a few more threads; a per-task leak would add ~1,000
        List<String> added = new java.util.ArrayList<>(Reliability.threads(""));
        names0.forEach(added::remove);
        assertTrue(threads1 <= threads0 + 16, "threads " + threads0 + " → " + threads1 + ", new: " + added);
        assertTrue(direct1 - direct0 < (1 << 20), "direct buffers grew " + (direct1 - direct0) + " bytes");
        assertTrue(heap1 - heap0 < (32L << 20), "heap after GC grew " + ((heap1 - heap0) >> 10) + " KiB");
        Reliability.figure("leaks", String.format("%d one-row tasks in %.1f s (%.0f tasks/s); after warm-up: heap after GC "
                        + "%+d KiB (%d → %d MiB), direct buffers %+d bytes, Arrow %d bytes outstanding, threads %d → %d, engine loads %d",
                SMALL_TASKS, seconds, SMALL_TASKS / seconds, (heap1 - heap0) >> 10, heap0 >> 20, heap1 >> 20, direct1 - direct0,
                Reliability.arrowBytes(), threads0, threads1, EngineCache.loadCount() - loadsBefore));
    }
}
