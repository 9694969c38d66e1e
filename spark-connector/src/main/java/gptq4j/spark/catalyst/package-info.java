/**
 * Catalyst side of the connector: the {@link gptq4j.spark.catalyst.GenerateCall} expression built by the SQL
 * function builder, the {@link gptq4j.spark.catalyst.GenerateBatch} logical node, and the optimizer rule
 * {@link gptq4j.spark.catalyst.ExtractGenerateCalls} that moves every call into such a node (the pattern Spark
 * uses for Python UDFs) so one batched operator evaluates them.
 */
package gptq4j.spark.catalyst;
