package gptq4j.spark;

import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static gptq4j.spark.functions.generate_struct;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.lit;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GenerateProgress on local[2]: its final rows and tokens are the job's, for one call and for nested calls. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class GenerateProgressTest {

    static final int N = 24;

    SparkSession spark;
    Dataset<Row> df;

    @BeforeAll
    void start() {
        spark = SparkSession.builder().master("local[2]").appName("gptq4j-progress-test")
                .config("spark.ui.enabled", "false")
                .config("spark.gptq4j.model", Fixtures.model().toString())
                .config("spark.gptq4j.device", "cpu")
                .config("spark.gptq4j.rowsPerBatch", "4")
                .config("spark.gptq4j.sampling.temperature", "0")
                .config("spark.gptq4j.sampling.maxNewTokens", "5")
                .getOrCreate();
        List<Row> rows = new ArrayList<>();
        List<String> prompts = Fixtures.prompts(N);
        for (int i = 0; i < N; i++) rows.add(RowFactory.create((long) i, prompts.get(i)));
        df = spark.createDataFrame(rows, new StructType().add("id", DataTypes.LongType).add("prompt", DataTypes.StringType))
                .repartition(2);
    }

    @AfterAll
    void stop() {
        if (spark != null) spark.stop();
    }

    @Test
    void finalFiguresAreTheJobs() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        List<Row> out;
        GenerateProgress p = GenerateProgress.start(spark, N, new PrintStream(buf, true, StandardCharsets.UTF_8), 200);
        try (p) {
            out = df.withColumn("r", generate_struct(col("prompt"))).collectAsList();
        }
        long tokens = 0;
        for (Row r : out) tokens += r.<Row>getAs("r").<Integer>getAs("completion_tokens");
        assertEquals(N, out.size());
        assertTrue(tokens > 0);
        assertEquals(N, p.rows());
        assertEquals(tokens, p.generatedTokens());
        String printed = buf.toString(StandardCharsets.UTF_8);
        assertTrue(printed.contains("progress: " + N + "/" + N + " rows (100%)  " + tokens + " tokens"), printed);
        // lines never go backwards
        long last = 0;
        for (String l : printed.split("\n")) {
            long rows = Long.parseLong(l.substring("progress: ".length(), l.indexOf('/')));
            assertTrue(rows >= last, printed);
            last = rows;
        }
    }

    @Test
    void nestedCallsCountRowsOnceAndTokensOfBoth() {
        GenerateProgress p = GenerateProgress.start(spark, -1, null, 0);
        List<Row> out;
        try (p) {
            out = df.withColumn("a", generate_struct(col("prompt")))
                    .withColumn("b", generate_struct(concat(col("a.text"), lit(" and"))))
                    .collectAsList();
        }
        long tokens = 0;
        for (Row r : out) {
            tokens += r.<Row>getAs("a").<Integer>getAs("completion_tokens");
            tokens += r.<Row>getAs("b").<Integer>getAs("completion_tokens");
        }
        assertEquals(N, p.rows());
        assertEquals(tokens, p.generatedTokens());
        assertTrue(p.line().startsWith(N + " rows  " + tokens + " tokens"), p.line());
    }
}
