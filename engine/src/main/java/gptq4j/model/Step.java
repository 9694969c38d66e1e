package gptq4j.model;

/**
 * One forward step over a flat list of T tokens from S sequences (prefill chunks and decode tokens mixed).
 * Host-side arrays; the model copies them to the backend.
 *
 * @param T           tokens in the step
 * @param tokens      [T] token ids
 * @param positions   [T] position of each token in its sequence
 * @param slots       [T] KV-cache slot of each token (block * blockSize + offset)
 * @param tokenSeq    [T] index in [0,S) of each token's sequence
 * @param S           sequences in the step
 * @param blockTables [S][maxBlocks] row-major block ids
 * @param maxBlocks   width of a block-table row
 * @param R           tokens whose logits are wanted
 * @param logitRows   [R] indices into [0,T) of those tokens
 */
public record Step(int T, int[] tokens, int[] positions, int[] slots, int[] tokenSeq, int S, int[] blockTables,
                   int maxBlocks, int R, int[] logitRows) {
}
