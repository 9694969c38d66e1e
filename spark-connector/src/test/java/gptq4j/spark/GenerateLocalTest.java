package gptq4j.spark;

import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;
import gptq4j.spark.engine.EngineCache;
import gptq4j.spark.engine.EngineLoad;
import gptq4j.spark.execution.GenerateBatchExec;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static gptq4j.spark.functions.generate;
import static gptq4j.spark.functions.generate_struct;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.length;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.upper;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The connector on local[2] with the golden fixture model: every way of calling generate gives, for greedy decoding,
 * exactly what Engine.generate gives on the same prompts.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class GenerateLocalTest {

    static final int N = 24;
    static final int MAX_NEW = 10;

    SparkSession spark;
    List<String> prompts;
    List<GenerationResult> expected;
    Dataset<Row> df;
    /** Engine loads in this JVM before this class (other test classes share the surefire JVM and EngineCache). */
    int loadsBefore;

    @BeforeAll
    void start() {
        loadsBefore = EngineCache.loadCount();
        Path model = Fixtures.model();
        prompts = Fixtures.prompts(N);
        expected = Fixtures.directGreedy(prompts, MAX_NEW);
        spark = SparkSession.builder()
                .master("local[2]")
                .appName("gptq4j-local-test")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.gptq4j.model", model.toString())
                .config("spark.gptq4j.device", "cpu")
                .config("spark.gptq4j.rowsPerBatch", "5")
                .config("spark.gptq4j.batchesInFlight", "2")
                .config("spark.gptq4j.sampling.temperature", "0")
                .config("spark.gptq4j.sampling.maxNewTokens", Integer.toString(MAX_NEW))
                .getOrCreate();
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < N; i++) rows.add(RowFactory.create((long) i, prompts.get(i)));
        StructType schema = new StructType().add("id", DataTypes.LongType, false).add("prompt", DataTypes.StringType, true);
        df = spark.createDataFrame(rows, schema).repartition(3);
        df.createOrReplaceTempView("prompts");
    }

    @AfterAll
    void stop() {
        if (spark != null) spark.stop();
    }

    private Map<Long, Row> byId(Dataset<Row> d) {
        Map<Long, Row> m = new HashMap<>();
        for (Row r : d.collectAsList()) assertNull(m.put(r.getLong(r.fieldIndex("id")), r), "duplicate id " + r);
        return m;
    }

    /** The GenerateBatchExec nodes of an executed plan, looking through adaptive query stages. */
    static List<GenerateBatchExec> execs(SparkPlan plan) {
        List<GenerateBatchExec> out = new ArrayList<>();
        collectExecs(plan, out);
        return out;
    }

    private static void collectExecs(SparkPlan p, List<GenerateBatchExec> out) {
        if (p instanceof GenerateBatchExec g) out.add(g);
        if (p instanceof org.apache.spark.sql.execution.adaptive.AdaptiveSparkPlanExec a) collectExecs(a.executedPlan(), out);
        if (p instanceof org.apache.spark.sql.execution.adaptive.QueryStageExec q) collectExecs(q.plan(), out);
        for (SparkPlan c : scala.jdk.javaapi.CollectionConverters.asJava(p.children())) collectExecs(c, out);
    }

    private static int countExecs(SparkPlan plan) {
        return execs(plan).size();
    }

    private static SparkPlan executed(Dataset<Row> d) {
        return d.queryExecution().executedPlan();
    }

    @Test
    @Order(1)
    void columnFunctionMatchesEngine() {
        Dataset<Row> out = df.withColumn("out", generate(col("prompt"), GenerateOptions.greedy(MAX_NEW)));
        Map<Long, Row> got = byId(out);
        assertEquals(N, got.size());
        for (int i = 0; i < N; i++) assertEquals(expected.get(i).text(), got.get((long) i).getAs("out"), "row " + i);
        assertEquals(1, countExecs(executed(out)), out.queryExecution().executedPlan().toString());
    }

    @Test
    @Order(2)
    void sqlNamedPositionalAndDefaultFormsMatchEngine() {
        Map<Long, Row> got = byId(spark.sql("SELECT id, generate(prompt) AS a, "
                + "generate(prompt, max_new_tokens => " + MAX_NEW + ", temperature => 0.0) AS b, "
                + "generate(prompt, " + MAX_NEW + ", 0.0) AS c, "
                + "generate(prompt, map('max_new_tokens', " + MAX_NEW + ")) AS d FROM prompts"));
        for (int i = 0; i < N; i++) {
            Row r = got.get((long) i);
            for (String c : new String[]{"a", "b", "c", "d"}) assertEquals(expected.get(i).text(), r.getAs(c), "row " + i + " column " + c);
        }
    }

    @Test
    @Order(3)
    void generateInsideFilterAndNestedExpressions() {
        int cut = 12;
        Dataset<Row> filtered = df.filter(length(generate(col("prompt"))).gt(cut))
                .select(col("id"), upper(generate(col("prompt"))).as("up"));
        Map<Long, Row> got = byId(filtered);
        for (int i = 0; i < N; i++) {
            String text = expected.get(i).text();
            if (text.length() > cut) assertEquals(text.toUpperCase(java.util.Locale.ROOT), got.get((long) i).getAs("up"), "row " + i);
            else assertTrue(!got.containsKey((long) i), "row " + i + " should be filtered out");
        }
        assertEquals(2, countExecs(executed(filtered)), "one batched operator below the filter, one below the projection");

        Dataset<Row> sql = spark.sql("SELECT id FROM prompts WHERE length(generate(prompt)) > " + cut);
        List<Long> ids = new ArrayList<>();
        for (Row r : sql.collectAsList()) ids.add(r.getLong(0));
        List<Long> want = new ArrayList<>();
        for (int i = 0; i < N; i++) if (expected.get(i).text().length() > cut) want.add((long) i);
        ids.sort(null);
        assertEquals(want, ids);
    }

    @Test
    @Order(4)
    void perRowParametersMatchEngine() {
        Dataset<Row> withN = df.withColumn("n", col("id").mod(4).plus(1).cast("int"));
        Map<String, Object> opts = new HashMap<>();
        opts.put("max_new_tokens", col("n"));
        opts.put("temperature", 0.0);
        Map<Long, Row> got = byId(withN.withColumn("out", generate(col("prompt"), opts)));
        Map<Long, Row> viaSql = byId(spark.sql("SELECT id, generate(prompt, named_struct('max_new_tokens', CAST(id % 4 + 1 AS INT), "
                + "'seed', id)) AS out FROM prompts"));
        List<SamplingParams> ps = new ArrayList<>();
        for (int i = 0; i < N; i++) ps.add(SamplingParams.greedy(i % 4 + 1));
        List<GenerationResult> want = Fixtures.direct(prompts, ps);
        for (int i = 0; i < N; i++) {
            assertEquals(want.get(i).text(), got.get((long) i).getAs("out"), "row " + i);
            assertEquals(want.get(i).text(), viaSql.get((long) i).getAs("out"), "row " + i + " (sql)");
        }
    }

    @Test
    @Order(5)
    void structVariantCarriesFinishReasonAndTokenCounts() {
        Dataset<Row> out = df.withColumn("r", generate_struct(col("prompt"))).select(col("id"), col("r.*"));
        Map<Long, Row> got = byId(out);
        for (int i = 0; i < N; i++) {
            GenerationResult e = expected.get(i);
            Row r = got.get((long) i);
            assertEquals(e.text(), r.getAs("text"), "row " + i);
            assertEquals(e.finishReason().wire(), r.getAs("finish_reason"), "row " + i);
            assertEquals(e.promptTokens(), (int) r.<Integer>getAs("prompt_tokens"), "row " + i);
            assertEquals(e.completionTokens(), (int) r.<Integer>getAs("completion_tokens"), "row " + i);
            assertNull(r.getAs("error"), "row " + i);
        }
    }

    @Test
    @Order(6)
    void nullPromptGivesNullAndHugePromptGivesErrorRow() {
        String huge = "x".repeat(100_000);
        List<Row> rows = List.of(RowFactory.create(0L, "Hello my name is"), RowFactory.create(1L, null),
                RowFactory.create(2L, huge), RowFactory.create(3L, "Once upon a time"));
        StructType schema = new StructType().add("id", DataTypes.LongType, false).add("prompt", DataTypes.StringType, true);
        Dataset<Row> bad = spark.createDataFrame(rows, schema);
        Map<Long, Row> got = byId(bad.select(col("id"), generate(col("prompt")).as("t"), generate_struct(col("prompt")).as("s")));
        assertEquals(4, got.size());
        assertEquals(expected.get(0).text(), got.get(0L).getAs("t"));
        assertNull(got.get(1L).getAs("t"));
        assertNull(got.get(1L).getAs("s"));
        assertNull(got.get(2L).getAs("t"), "a rejected row has no text");
        Row s = got.get(2L).getAs("s");
        assertEquals("error", s.getAs("finish_reason"));
        assertNotNull(s.getAs("error"));
        assertEquals(expected.get(2).text(), got.get(3L).getAs("t"));

        spark.conf().set("spark.gptq4j.onError", "fail");
        try {
            Exception e = assertThrows(Exception.class, () -> bad.select(generate(col("prompt"))).collectAsList());
            String msg = String.valueOf(e.getMessage()) + (e.getCause() == null ? "" : e.getCause().getMessage());
            assertTrue(msg.contains("rejected"), msg);
        } finally {
            spark.conf().unset("spark.gptq4j.onError");
        }
    }

    @Test
    @Order(7)
    void dataSourceReadsJsonlAndTextAsArrowBatches(@TempDir Path dir) throws Exception {
        StringBuilder jsonl = new StringBuilder();
        StringBuilder text = new StringBuilder();
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<String> linePrompts = new ArrayList<>();
        for (int i = 0; i < N; i++) {
            jsonl.append(json.writeValueAsString(Map.of("prompt", prompts.get(i), "other", i))).append('\n');
            if (i == 5) jsonl.append("\n");
            if (!prompts.get(i).isEmpty()) {
                text.append(prompts.get(i)).append('\n');
                linePrompts.add(prompts.get(i));
            }
        }
        Path jf = dir.resolve("prompts.jsonl"), tf = dir.resolve("prompts.txt");
        Files.writeString(jf, jsonl.toString(), StandardCharsets.UTF_8);
        Files.writeString(tf, text.toString(), StandardCharsets.UTF_8);

        Dataset<Row> read = spark.read().format("gptq4j").option("numPartitions", "3").option("max_new_tokens", MAX_NEW)
                .option("temperature", "0").load(jf.toString());
        Map<Long, Row> got = byId(read);
        assertEquals(N, got.size());
        for (int i = 0; i < N; i++) {
            Row r = got.get((long) i);
            assertEquals(prompts.get(i), r.getAs("prompt"), "row " + i);
            assertEquals(expected.get(i).text(), r.getAs("text"), "row " + i);
            assertEquals(expected.get(i).finishReason().wire(), r.getAs("finish_reason"), "row " + i);
            assertEquals(expected.get(i).completionTokens(), (int) r.<Integer>getAs("completion_tokens"), "row " + i);
        }
        String plan = read.queryExecution().executedPlan().toString();
        assertTrue(plan.contains("ColumnarToRow") && plan.contains("BatchScan"), plan);

        List<GenerationResult> lineExpected = Fixtures.directGreedy(linePrompts, MAX_NEW);
        Map<Long, Row> lines = byId(spark.read().format("gptq4j").option("format", "text").load(tf.toString()));
        assertEquals(linePrompts.size(), lines.size());
        for (int i = 0; i < linePrompts.size(); i++) {
            assertEquals(lineExpected.get(i).text(), lines.get((long) i).getAs("text"), "line " + i);
        }
    }

    @Test
    @Order(8)
    void metricsCountRowsAndTokens() {
        Dataset<Row> out = df.select(col("id"), generate(col("prompt")).as("t"));
        out.collectAsList();
        SparkPlan plan = executed(out);
        List<GenerateBatchExec> found = execs(plan);
        assertEquals(1, found.size(), plan.toString());
        GenerateBatchExec[] exec = {found.get(0)};
        long tokens = expected.stream().mapToLong(GenerationResult::completionTokens).sum();
        long promptTokens = expected.stream().mapToLong(GenerationResult::promptTokens).sum();
        assertEquals(N, exec[0].metrics().apply("numOutputRows").value());
        assertEquals(tokens, exec[0].metrics().apply("generatedTokens").value());
        assertEquals(promptTokens, exec[0].metrics().apply("promptTokens").value());
        assertTrue(exec[0].metrics().apply("engineTime").value() >= 0);
    }

    @Test
    @Order(9)
    void oneEngineLoadedForTheWholeSession() {
        List<EngineLoad> all = EngineCache.loads();
        List<EngineLoad> loads = all.subList(loadsBefore, all.size());
        assertEquals(1, loads.size(), loads.toString());
        assertEquals("cpu", loads.get(0).requestedDevice());
        assertTrue(loads.get(0).actualDevice().startsWith("cpu"), loads.get(0).actualDevice());
        assertEquals(0, EngineCache.activeLeases(), "every task released its lease");
    }

    @Test
    @Order(10)
    void unknownOptionIsAnAnalysisError() {
        Exception e = assertThrows(Exception.class, () -> spark.sql("SELECT generate(prompt, nonsense => 1) FROM prompts").collectAsList());
        assertTrue(e.getMessage().contains("unknown option 'nonsense'"), e.getMessage());
        Exception t = assertThrows(Exception.class, () -> df.select(generate(lit(3))).collectAsList());
        assertTrue(t.getMessage().contains("prompt must be a string"), t.getMessage());
    }
}
