package gptq4j.spark.cluster;

import gptq4j.spark.engine.TaskDevice;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF0;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.types.DataTypes;

import static gptq4j.spark.functions.generate;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.concat;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.udf;

/**
 * The job ClusterTest submits through SparkSubmit: three stages with generate calls over many small tasks.
 * Args: ROWS OUTPUT_DIR. Writes JSON rows (id, prompt, a, b, t1, t2) where t1/t2 record, for the task that
 * computed a and b, "executorId|gpuAddress".
 */
public final class ClusterJob {

    public static void main(String[] args) {
        int rows = Integer.parseInt(args[0]);
        String out = args[1];
        SparkSession spark = SparkSession.builder().appName("gptq4j-cluster-test").getOrCreate();
        UserDefinedFunction taskInfo = udf((UDF0<String>) () -> SparkEnv.get().executorId() + "|"
                + TaskDevice.assignedGpu(TaskContext.get()), DataTypes.StringType).asNondeterministic();

        // stage 1: 12 tasks, generate over a prompt column
        Dataset<Row> first = spark.range(0, rows, 1, 12)
                .withColumn("prompt", concat(lit("Prompt number "), col("id").mod(9).cast("string")))
                .withColumn("a", generate(col("prompt")))
                .withColumn("t1", taskInfo.apply());
        // stage 2 (after a shuffle): 8 tasks, generate over the first stage's output, written as JSON
        first.repartition(8, col("id"))
                .withColumn("b", generate(concat(col("a"), lit(" and"))))
                .withColumn("t2", taskInfo.apply())
                .write().mode("overwrite").json(out);
        // stage 3: read back, 6 tasks, generate once more and count
        long n = spark.read().json(out).repartition(6).select(generate(col("prompt")).as("c"))
                .filter(col("c").isNotNull()).count();
        System.out.println("ClusterJob: " + n + " rows with a third-stage generation");
        if (n != rows) throw new IllegalStateException("third stage saw " + n + " rows, expected " + rows);
        spark.stop();
    }
}
