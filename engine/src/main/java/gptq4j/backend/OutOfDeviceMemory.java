package gptq4j.backend;

/**
 * Marks an exception thrown when a backend cannot allocate device memory. The engine reacts by retrying
 * with a smaller batch and KV cache before it gives up.
 */
public interface OutOfDeviceMemory {
}
