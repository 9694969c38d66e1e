package gptq4j.spark.execution;

import gptq4j.spark.GptqSettings;
import gptq4j.spark.catalyst.Scala;
import gptq4j.spark.engine.EngineCache;
import gptq4j.spark.engine.EngineLease;
import gptq4j.spark.engine.TaskDevice;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection$;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.util.ArrowUtils;
import org.apache.spark.util.TaskCompletionListener;

import java.io.Serializable;
import java.util.Iterator;
import java.util.List;

/**
 * Everything a task needs to evaluate a {@link GenerateBatchExec} over its partition; shipped to executors
 * instead of the plan node.
 *
 * @param specs        the calls
 * @param offsets      where each call's arguments start in the argument row
 * @param argExprs     all calls' arguments, flattened, over the child's output
 * @param childOutput  the child's output
 * @param outputTypes  types of child output ++ one result per call
 */
record GenerateEvaluator(List<CallSpec> specs, int[] offsets, List<Expression> argExprs, List<Attribute> childOutput,
                         DataType[] outputTypes, GptqSettings settings, GenerateMetrics metrics) implements Serializable {

    Iterator<InternalRow> eval(int partitionIndex, Iterator<InternalRow> input) {
        TaskContext task = TaskContext.get();
        String taskName = task == null ? "partition " + partitionIndex
                : "task " + task.taskAttemptId() + " (stage " + task.stageId() + ", partition " + task.partitionId()
                + ", attempt " + task.attemptNumber() + ")";
        UnsafeProjection args = UnsafeProjection$.MODULE$.create(Scala.seq(argExprs), Scala.seq(childOutput));
        args.initialize(partitionIndex);
        UnsafeProjection out = UnsafeProjection$.MODULE$.create(outputTypes);
        String requested = TaskDevice.requested(task, settings);
        EngineLease lease = EngineCache.acquire(settings, requested);
        BufferAllocator allocator;
        try {
            allocator = ArrowUtils.rootAllocator().newChildAllocator("gptq4j " + taskName, 0, Long.MAX_VALUE);
        } catch (RuntimeException e) {
            lease.close();
            throw e;
        }
        BatchPipeline pipeline = new BatchPipeline(input, specs, offsets, args, out, settings, lease, allocator,
                metrics, taskName, requested);
        if (task != null) task.addTaskCompletionListener((TaskCompletionListener) ctx -> pipeline.close());
        return pipeline;
    }
}
