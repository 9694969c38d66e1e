package gptq4j.backend;

/**
 * Paged key/value storage owned by a backend: per layer, {@code blocks × blockSize} token slots of
 * {@code kvHeads × headDim} floats for K and for V. Which blocks belong to which sequence is decided by
 * the runtime's block manager and passed in {@link AttentionBatch} block tables.
 */
public interface KvCache extends AutoCloseable {
    int blocks();

    int blockSize();

    /** Copies one block's contents (all layers) onto another (copy-on-write of a shared prefix block). */
    void copyBlock(int from, int to);

    @Override
    void close();
}
