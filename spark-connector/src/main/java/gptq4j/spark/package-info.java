/**
 * gptq4j on Apache Spark: the column functions ({@link gptq4j.spark.functions}), the session extension that
 * registers them and plans their batched evaluation ({@link gptq4j.spark.GptqExtensions}), and the
 * {@code spark.gptq4j.*} configuration ({@link gptq4j.spark.GptqConf}).
 */
package gptq4j.spark;
