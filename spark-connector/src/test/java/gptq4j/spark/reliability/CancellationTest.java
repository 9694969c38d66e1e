package gptq4j.spark.reliability;

import gptq4j.runtime.GenerationResult;
import gptq4j.spark.Fixtures;
import gptq4j.spark.engine.EngineCache;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Map;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import static gptq4j.spark.functions.generate;
import static org.apache.spark.sql.functions.col;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A job cancelled while its tasks have batches with the engine (with and without interrupting the task threads):
 * the job fails as cancelled, every lease and Arrow allocator is released once the engine has finished the batches
 * it was given, and the same engine then answers correctly.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CancellationTest {

    static final int ROWS = 400;
    static final int MAX_NEW = 24;

    SparkSession spark;
    @TempDir
    Path dir;

    @BeforeAll
    void start() {
        spark = Reliability.session("local[2]", "gptq4j-cancel")
                .config("spark.gptq4j.rowsPerBatch", "8")
                .config("spark.gptq4j.batchesInFlight", "2")
                .config("spark.gptq4j.sampling.temperature", "0")
                .config("spark.gptq4j.sampling.maxNewTokens", Integer.toString(MAX_NEW))
                .getOrCreate();
    }

    @AfterAll
    void stop() {
        if (spark != null) spark.stop();
    }

    /** generate over Fixtures.prompts(n), through a DataFrame or the gptq4j data source; rows by id. */
    List<Row> run(int n, int maxNew, boolean dataSource) {
        List<String> prompts = Fixtures.prompts(n);
        Dataset<Row> out;
        if (dataSource) {
            StringBuilder jsonl = new StringBuilder();
            for (String p : prompts) {
                jsonl.append("{\"prompt\": ").append(BadInputCorpusTest.jsonString(p)).append(", \"max_new_tokens\": ")
                        .append(maxNew).append(", \"ignore_eos\": true}\n");
            }
            Path file = dir.resolve("prompts-" + n + "-" + maxNew + ".jsonl");
            try {
                Files.writeString(file, jsonl.toString(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            out = spark.read().format("gptq4j").option("numPartitions", "2").load(file.toString()).select(col("id"), col("text"));
        } else {
            List<Row> rows = new ArrayList<>();
            for (int i = 0; i < n; i++) rows.add(RowFactory.create((long) i, prompts.get(i)));
            StructType schema = new StructType().add("id", DataTypes.LongType, false).add("prompt", DataTypes.StringType, true);
            out = spark.createDataFrame(rows, schema).repartition(2)
                    .select(col("id"), generate(col("prompt"), Map.of("max_new_tokens", maxNew, "ignore_eos", true)).as("text"));
        }
        List<Row> got = new ArrayList<>(out.collectAsList());
        got.sort(Comparator.comparingLong(r -> r.getLong(0)));
        return got;
    }

    @ParameterizedTest(name = "interruptOnCancel={0}, data source={1}")
    @CsvSource({"false,false", "true,false", "true,true"})
    @Timeout(value = 170, unit = TimeUnit.SECONDS)
    void cancelledJobReleasesEverythingAndTheEngineGoesOn(boolean interrupt, boolean dataSource) throws Exception {
        run(4, 2, dataSource);   // engine loaded, pools warm
        int loads = EngineCache.loadCount();
        long arrow0 = Reliability.arrowBytes();
        int children0 = Reliability.arrowChildren();
        String group = "cancel-" + interrupt;
        CompletableFuture<List<Row>> job = CompletableFuture.supplyAsync(() -> {
            spark.sparkContext().setJobGroup(group, "cancelled on purpose", interrupt);
            try {
                return run(ROWS, MAX_NEW, dataSource);
            } finally {
                spark.sparkContext().clearJobGroup();
            }
        });
        assertTrue(Reliability.eventually(120_000, () -> EngineCache.activeLeases() == 2 && Reliability.arrowBytes() > arrow0),
                "both tasks hold the engine with batches in flight");
        Thread.sleep(500);
        spark.sparkContext().cancelJobGroup(group);
        ExecutionException e = assertThrows(ExecutionException.class, () -> job.get(120, TimeUnit.SECONDS));
        assertTrue(String.valueOf(e.getCause().getMessage()).contains("cancel"), String.valueOf(e.getCause()));

        assertTrue(Reliability.eventually(60_000, () -> EngineCache.activeLeases() == 0), "leases after cancel: " + EngineCache.activeLeases());
        assertTrue(Reliability.eventually(60_000, () -> Reliability.arrowBytes() == arrow0 && Reliability.arrowChildren() == children0),
                "Arrow after cancel: " + Reliability.arrowBytes() + " bytes, " + Reliability.arrowChildren() + " allocators "
                        + ArrowChildren.names());
        List<GenerationResult> want = Fixtures.direct(Fixtures.prompts(16), java.util.Collections.nCopies(16,
                new gptq4j.runtime.SamplingParams(4, 0, 0, 1, 0, 1, 0, 0, 0, List.of(), List.of(), 0, true)));
        List<Row> got = run(16, 4, dataSource);
        for (int i = 0; i < 16; i++) assertEquals(want.get(i).text(), got.get(i).getString(1), "row " + i);
        assertEquals(loads, EngineCache.loadCount(), "the engine survived the cancel");
        Reliability.figure("cancel", "interruptOnCancel=" + interrupt + (dataSource ? ", data source" : ", DataFrame") + ": job cancelled with batches in flight; leases, Arrow memory "
                + "and allocators released; engine answers correctly afterwards");
    }

    /** Names of Spark's Arrow root allocator's open children, for the failure message. */
    static final class ArrowChildren {
        static String names() {
            List<String> out = new ArrayList<>();
            for (var c : org.apache.spark.sql.util.ArrowUtils.rootAllocator().getChildAllocators()) out.add(c.getName() + "=" + c.getAllocatedMemory());
            return out.toString();
        }
    }
}
