package gptq4j.spark.execution;

import gptq4j.runtime.arrow.ArrowGeneration;
import gptq4j.spark.GptqSettings;
import gptq4j.spark.engine.EngineCache;
import gptq4j.spark.engine.EngineLease;
import gptq4j.spark.engine.TaskDevice;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.spark.SparkException;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.internal.SQLConf;
import org.apache.spark.sql.util.ArrowUtils;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The fallback for a generate call the optimizer rule could not move into a batch (e.g. inside a window
 * expression): one row per engine call, through the same Arrow entry point and the executor's shared engine.
 */
public final class SingleRowGeneration {

    private static final Logger LOG = LoggerFactory.getLogger(SingleRowGeneration.class);
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private SingleRowGeneration() { }

    /** The call's value for one row of argument values (prompt first). */
    public static Object evaluate(CallSpec spec, Object[] values) {
        if (WARNED.compareAndSet(false, true)) {
            LOG.warn("gptq4j: a generate call is evaluated row by row (it sits where the batching rule cannot reach, "
                    + "or the gptq4j session extension is not installed); move it into a SELECT or WHERE for batching");
        }
        GptqSettings settings = GptqSettings.fromSqlConf(SQLConf.get());
        try (EngineLease lease = EngineCache.acquire(settings, TaskDevice.requested(TaskContext.get(), settings));
             BufferAllocator allocator = ArrowUtils.rootAllocator().newChildAllocator("gptq4j single row", 0, Long.MAX_VALUE);
             ArgumentVectors args = ArgumentVectors.write(spec, List.<InternalRow>of(new GenericInternalRow(values)), 0, allocator);
             StructVector result = ArrowGeneration.generate(lease::generate, args.prompts(), args.params(),
                     settings.defaults(), allocator)) {
            ArrowColumnVector v = new ArrowColumnVector(result);
            if (settings.failOnError() && ResultValues.failed(v, 0)) {
                throw new RuntimeException(new SparkException("gptq4j: a row was rejected: " + ResultValues.error(v, 0)
                        + " (spark.gptq4j.onError=fail; set it to row to keep such rows)"));
            }
            return ResultValues.copiedValue(v, 0, spec.struct());
        }
    }
}
