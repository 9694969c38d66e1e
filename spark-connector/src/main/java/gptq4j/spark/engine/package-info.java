/**
 * One engine per executor JVM and per (model, device): {@link gptq4j.spark.engine.EngineCache} loads it on the
 * first task that needs it, shares it by reference-counted leases with every concurrent task of the executor
 * (their requests join the same continuous batch), and closes it when the executor stops. The device is the GPU
 * Spark assigned to the task ({@link gptq4j.spark.engine.TaskDevice}).
 */
package gptq4j.spark.engine;
