/**
 * CPU kernels: GPTQ matrix products on a one-time repacked layout ({@link gptq4j.backend.cpu.PackedGptq}) and
 * dense float matrix products ({@link gptq4j.backend.cpu.DenseMatrix}), each with a plain-Java scalar reference
 * beside a Vector API version, multi-threaded over output rows by {@link gptq4j.backend.cpu.Parallel}.
 *
 * <p>Batch invariance: every kernel computes the result for one (token, output) pair with an arithmetic order
 * that depends only on the weight layout, never on the number of tokens, the other tokens or the thread count.
 *
 * <p>The Vector API classes are only touched through classes loaded reflectively by
 * {@link gptq4j.backend.cpu.Kernels}, so the package works (scalar) when {@code jdk.incubator.vector} is absent.
 */
package gptq4j.backend.cpu;
