package gptq4j.spark.reliability;

import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;
import gptq4j.spark.Fixtures;
import gptq4j.spark.engine.EngineCache;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.TaskContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.types.DataTypes;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static gptq4j.spark.functions.generate;
import static gptq4j.spark.functions.generate_struct;
import static org.apache.spark.sql.functions.array;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.element_at;
import static org.apache.spark.sql.functions.when;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.udf;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Task retries on local[2,4] (4 attempts per task): a three-stage job (generate, shuffle, generate on the first
 * result, shuffle, collect) in which the task of partition 0 of every stage throws on its first attempt after it has
 * handed batches to the engine. With seeded sampling (temperature 0.8, top_p 0.9, seed per row) the output equals a
 * clean run's and Engine.generate's, row for row; the engine is loaded once and every lease and Arrow buffer is
 * released.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TaskRetryTest {

    static final int ROWS = 48;
    static final int MAX_NEW = 6;
    /** A failing task throws at this row of its partition: with 4 rows per batch, two batches are with the engine. */
    static final int FAIL_AT_ROW = 6;

    /** Injection switch and per-attempt row counters; tasks run in this JVM (local mode). */
    static volatile boolean inject;
    static final Map<Long, AtomicInteger> ROWS_SEEN = new ConcurrentHashMap<>();
    static final List<String> INJECTED = new CopyOnWriteArrayList<>();

    SparkSession spark;
    final List<SparkListenerTaskEnd> taskEnds = new CopyOnWriteArrayList<>();
    final Set<Integer> stages = ConcurrentHashMap.newKeySet();

    @BeforeAll
    void start() {
        spark = Reliability.session("local[2,4]", "gptq4j-retry")
                .config("spark.sql.adaptive.enabled", "false")
                .config("spark.gptq4j.rowsPerBatch", "4")
                .config("spark.gptq4j.batchesInFlight", "2")
                .getOrCreate();
        spark.sparkContext().addSparkListener(new SparkListener() {
            @Override
            public void onTaskEnd(SparkListenerTaskEnd e) { taskEnds.add(e); }

            @Override
            public void onStageCompleted(SparkListenerStageCompleted e) { stages.add(e.stageInfo().stageId()); }
        });
    }

    @AfterAll
    void stop() {
        if (spark != null) spark.stop();
    }

    /** Returns its argument; on the first attempt of partition 0 it throws once the task has seen FAIL_AT_ROW rows. */
    static long passOrFail(long id, String stage) {
        TaskContext t = TaskContext.get();
        if (inject && t != null && t.partitionId() == 0 && t.attemptNumber() == 0) {
            int seen = ROWS_SEEN.computeIfAbsent(t.taskAttemptId(), k -> new AtomicInteger()).incrementAndGet();
            if (seen == FAIL_AT_ROW) {
                INJECTED.add(stage + "/stage " + t.stageId());
                throw new IllegalStateException("injected failure in " + stage + " (stage " + t.stageId() + ", attempt 0)");
            }
        }
        return id;
    }

    Dataset<Row> job() {
        UserDefinedFunction gate = udf((Long id, String stage) -> passOrFail(id, stage), DataTypes.LongType).asNondeterministic();
        // A range (not a local relation, whose projections the optimizer evaluates on the driver) with
        // Fixtures.prompts(ROWS) as a column: seed i % 10, then " #i" from row 10 on.
        List<String> seeds = Fixtures.prompts(10);
        org.apache.spark.sql.Column[] lits = seeds.stream().map(org.apache.spark.sql.functions::lit).toArray(org.apache.spark.sql.Column[]::new);
        Dataset<Row> in = spark.range(0, ROWS, 1, 2)
                .withColumn("prompt", concat(element_at(array(lits), col("id").mod(10).plus(1).cast("int")),
                        when(col("id").geq(10), concat(lit(" #"), col("id").cast("string"))).otherwise(lit(""))));
        Map<String, Object> first = Map.of("temperature", 0.8, "top_p", 0.9, "seed", col("id"), "max_new_tokens", MAX_NEW);
        Map<String, Object> second = Map.of("temperature", 0.8, "top_p", 0.9, "seed", col("id").plus(1000), "max_new_tokens", MAX_NEW);
        return in.withColumn("id", gate.apply(col("id"), lit("first")))
                .withColumn("a", generate_struct(col("prompt"), first))
                .repartition(3, col("id"))
                .withColumn("id", gate.apply(col("id"), lit("second")))
                .withColumn("b", generate(concat(col("prompt"), col("a.text")), second))
                .repartition(2, col("id"))
                .withColumn("id", gate.apply(col("id"), lit("third")))
                .select(col("id"), col("prompt"), col("a.text").as("a"), col("a.finish_reason").as("a_reason"), col("b"));
    }

    void drainListeners() {
        try {
            spark.sparkContext().listenerBus().waitUntilEmpty(30_000);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("Spark listener bus did not drain in 30 s", e);
        }
    }

    /** Rows by id, with the stages the job ran and its failed task attempts. */
    record Run(TreeMap<Long, List<Object>> rows, Set<Integer> stages, List<SparkListenerTaskEnd> failures, double seconds) { }

    Run run(boolean withFailures) {
        inject = withFailures;
        ROWS_SEEN.clear();
        INJECTED.clear();
        drainListeners();
        taskEnds.clear();
        stages.clear();
        long t0 = System.nanoTime();
        List<Row> got = job().collectAsList();
        double seconds = (System.nanoTime() - t0) / 1e9;
        drainListeners();
        TreeMap<Long, List<Object>> rows = new TreeMap<>();
        for (Row r : got) {
            List<Object> values = new ArrayList<>();
            for (int i = 1; i < r.length(); i++) values.add(r.get(i));
            assertEquals(null, rows.put(r.getLong(0), values), "duplicate row " + r);
        }
        List<SparkListenerTaskEnd> failures = new ArrayList<>();
        for (SparkListenerTaskEnd e : taskEnds) if (!e.taskInfo().successful()) failures.add(e);
        return new Run(rows, new TreeSet<>(stages), failures, seconds);
    }

    @Test
    @Timeout(value = 170, unit = TimeUnit.SECONDS)
    void oneFailedAttemptPerStageGivesExactlyTheCleanOutput() {
        int loadsBefore = EngineCache.loadCount();
        Run clean = run(false);
        assertEquals(ROWS, clean.rows().size());
        assertTrue(clean.failures().isEmpty(), "clean run had failures");
        assertEquals(3, clean.stages().size(), "three stages: " + clean.stages());

        Run retried = run(true);
        assertEquals(3, retried.stages().size(), "three stages: " + retried.stages());
        assertEquals(3, INJECTED.size(), "one injected failure per stage: " + INJECTED);
        assertEquals(3, retried.failures().size(), "failed attempts");
        Set<Integer> failedStages = new TreeSet<>();
        for (SparkListenerTaskEnd e : retried.failures()) {
            assertTrue(e.reason() instanceof ExceptionFailure f && f.description().contains("injected failure"), e.reason().toString());
            assertEquals(0, e.taskInfo().attemptNumber());
            assertEquals(0, e.taskInfo().partitionId());
            failedStages.add(e.stageId());
        }
        assertEquals(retried.stages(), failedStages, "every stage lost one task attempt");
        assertEquals(ROWS, retried.rows().size(), "rows out");
        assertEquals(clean.rows(), retried.rows(), "a retried job gives exactly the clean output");

        // ... which is what the engine gives directly for the same seeds.
        List<String> prompts = Fixtures.prompts(ROWS);
        List<SamplingParams> p1 = new ArrayList<>(), p2 = new ArrayList<>();
        for (int i = 0; i < ROWS; i++) {
            p1.add(new SamplingParams(MAX_NEW, 0.8, 0, 0.9, 0, 1, 0, 0, i, List.of(), List.of(), 0, false));
            p2.add(new SamplingParams(MAX_NEW, 0.8, 0, 0.9, 0, 1, 0, 0, i + 1000, List.of(), List.of(), 0, false));
        }
        List<GenerationResult> a = Fixtures.direct(prompts, p1);
        List<String> secondPrompts = new ArrayList<>();
        for (int i = 0; i < ROWS; i++) secondPrompts.add(prompts.get(i) + a.get(i).text());
        List<GenerationResult> b = Fixtures.direct(secondPrompts, p2);
        List<GenerationResult> greedy = Fixtures.directGreedy(prompts, MAX_NEW);
        int sampledDiffer = 0;
        for (int i = 0; i < ROWS; i++) {
            List<Object> r = retried.rows().get((long) i);
            assertEquals(List.of(prompts.get(i), a.get(i).text(), a.get(i).finishReason().wire(), b.get(i).text()), r, "row " + i);
            if (!a.get(i).text().equals(greedy.get(i).text())) sampledDiffer++;
        }
        assertTrue(sampledDiffer > 0, "sampling at temperature 0.8 differs from greedy somewhere (else the test proves little)");

        assertEquals(1, EngineCache.loadCount() - loadsBefore, "the engine is loaded once, retries included");
        assertEquals(0, EngineCache.activeLeases(), "failed attempts released their leases");
        assertEquals(0, Reliability.arrowBytes(), "failed attempts freed their Arrow vectors");
        Reliability.figure("retries", String.format("rows in %d, rows out %d, stages %d, failed attempts injected %d, "
                        + "retries survived %d, output identical to the clean run and to Engine.generate; clean %.1f s, with retries %.1f s",
                ROWS, retried.rows().size(), retried.stages().size(), INJECTED.size(), retried.failures().size(),
                clean.seconds(), retried.seconds()));
    }
}
