/**
 * spark-submit jobs; run them with {@code bin/run-example NAME [args]} (SparkSubmit from the Maven jars, local[2] by
 * default) or, with a Spark distribution, {@code spark-submit --class gptq4j.examples.NAME
 * examples/target/gptq4j-examples-VERSION-spark.jar [args]}.
 * <ul>
 *   <li>{@link gptq4j.examples.BatchGenerate}: the main batch job (JSONL / Parquet / CSV in, JSONL / Parquet out)</li>
 *   <li>{@link gptq4j.examples.SqlGenerate}: Spark SQL over a view of prompts</li>
 *   <li>{@link gptq4j.examples.Summarise}: summarises one column of a table</li>
 *   <li>{@link gptq4j.examples.Demo}: the quickstart behind {@code bin/demo}</li>
 *   <li>{@link gptq4j.examples.OverheadBench}: the connector's overhead against {@code bin/gptq4j generate}</li>
 * </ul>
 */
package gptq4j.examples;
