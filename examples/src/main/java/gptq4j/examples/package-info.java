/** spark-submit jobs; run them with {@code bin/run-example NAME [args]}. */
package gptq4j.examples;
