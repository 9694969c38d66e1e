/**
 * Physical side: {@link gptq4j.spark.execution.GenerateBatchStrategy} plans a
 * {@link gptq4j.spark.catalyst.GenerateBatch} as a {@link gptq4j.spark.execution.GenerateBatchExec}, which pulls rows
 * from its child, writes the calls' arguments into Arrow vectors ({@link gptq4j.spark.execution.ArgumentVectors}),
 * keeps several batches submitted to the executor's shared engine ({@link gptq4j.spark.execution.BatchPipeline}) and
 * emits results in input order, with SQL metrics and one summary log line per task.
 */
package gptq4j.spark.execution;
