/**
 * The runtime around the model: requests and results, sampling ({@link gptq4j.runtime.Sampler}), paged KV cache
 * bookkeeping with prefix sharing ({@link gptq4j.runtime.BlockManager}), stop strings
 * ({@link gptq4j.runtime.StopChecker}) and the continuous-batching scheduler that drives them.
 */
package gptq4j.runtime;
