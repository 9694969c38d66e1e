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

    /** Adds one task's totals (called once, at the end of the task). */
    void addTask(TaskStats s) {
        rows.add(s.rows());
        promptTokens.add(s.promptTokens());
        generatedTokens.add(s.completionTokens());
        errorRows.add(s.errorRows());
        engineTime.add(s.engineNanos() / 1_000_000);
        if (s.rows() > 0) tokensPerSecond.set(s.tokensPerSecond());
    }
}
