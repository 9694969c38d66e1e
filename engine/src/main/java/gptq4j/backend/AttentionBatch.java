package gptq4j.backend;

/**
 * Where each token of a step sits in the paged KV cache. All buffers are int buffers of the backend.
 *
 * @param T              tokens in the step
 * @param slots          [T] cache slot of each token: block * blockSize + offset
 * @param positions      [T] position of each token in its sequence (0-based)
 * @param tokenSeq       [T] index of the token's sequence within this step's sequences
 * @param blockTables    [S][maxBlocks] block ids of each sequence, row-major
 * @param maxBlocks      width of a block-table row
 * @param slidingWindow  attend only to keys at positions p with pos - window < p ≤ pos; 0 for none
 * @param heads          query heads (kvHeads and headDim are the cache's)
 */
public record AttentionBatch(int T, Buf slots, Buf positions, Buf tokenSeq, Buf blockTables, int maxBlocks,
                             int slidingWindow, int heads) {
}
