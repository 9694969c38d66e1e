package gptq4j.spark.execution;

import org.apache.spark.SparkContext;
import org.apache.spark.sql.execution.metric.SQLMetric;
import org.apache.spark.sql.execution.metric.SQLMetrics;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The operator's SQL metrics (shown in the Spark UI's SQL tab), created on the driver and updated by the tasks.
 */
public record GenerateMetrics(SQLMetric rows, SQLMetric promptTokens, SQLMetric generatedTokens, SQLMetric errorRows,
                              SQLMetric engineTime, SQLMetric tokensPerSecond) implements Serializable {

    public static GenerateMetrics create(SparkContext sc) {
        return new GenerateMetrics(
                SQLMetrics.createMetric(sc, "number of output rows"),
                SQLMetrics.createMetric(sc, "prompt tokens"),
                SQLMetrics.createMetric(sc, "generated tokens"),
                SQLMetrics.createMetric(sc, "rows with finish_reason error"),
                SQLMetrics.createTimingMetric(sc, "engine time", -1),
                SQLMetrics.createAverageMetric(sc, "generated tokens/s per task"));
    }

    /** Keyed as SparkPlan.metrics expects; numOutputRows is the conventional name. */
    public Map<String, SQLMetric> byName() {
        Map<String, SQLMetric> m = new LinkedHashMap<>();
        m.put("numOutputRows", rows);
        m.put("promptTokens", promptTokens);
        m.put("generatedTokens", generatedTokens);
        m.put("errorRows", errorRows);
        m.put("engineTime", engineTime);
        m.put("tokensPerSecond", tokensPerSecond);
        return m;
    }

    /**
     * Adds one finished batch's counts, as it completes: executor heartbeats carry a running task's metric values to
     * the driver, so progress listeners (and the UI) see rows and tokens during a long task, not only at its end.
     */
    void addBatch(long batchRows, long batchPromptTokens, long batchGeneratedTokens, long batchErrorRows) {
        rows.add(batchRows);
        promptTokens.add(batchPromptTokens);
        generatedTokens.add(batchGeneratedTokens);
        errorRows.add(batchErrorRows);
    }

    /** Adds one task's engine time and throughput (called once, at the end of the task). */
    void addTask(TaskStats s) {
        engineTime.add(s.engineNanos() / 1_000_000);
        if (s.rows() > 0) tokensPerSecond.set(s.tokensPerSecond());
    }
}
