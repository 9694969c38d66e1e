package gptq4j.backend;

/**
 * A buffer of float32 or int32 elements living where a backend computes: Java arrays for the CPU
 * backends, device memory for CUDA. The model code only passes these between backend operations;
 * it never reads their contents except through {@link Backend#read}.
 */
public interface Buf {
    /** Number of elements. */
    long length();
}
