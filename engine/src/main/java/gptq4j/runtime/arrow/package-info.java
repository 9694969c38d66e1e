/**
 * The engine's Arrow entry point: a column of prompts (and optional columns of per-row sampling
 * parameters) in, a struct column of results out. Spark's connector hands batches to the engine
 * through here; Arrow is a {@code provided} dependency, present wherever Spark runs.
 */
package gptq4j.runtime.arrow;
