package gptq4j.runtime;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Bookkeeping of the paged KV cache (vLLM style): a pool of {@code numBlocks} blocks of {@code blockSize}
 * token slots, and per sequence a block table mapping its positions to slots.
 *
 * <p>Prefix sharing: a full block whose keys and values have been computed ({@link #markComputed}) is
 * registered under a chain hash of (previous block's hash, its token ids). A new prompt whose leading full
 * blocks hash the same reuses those blocks (reference counted) and skips their computation. Only full blocks
 * are shared, so a block that is still being written always belongs to exactly one sequence.
 *
 * <p>Free blocks wait in one LRU queue: blocks nobody references, some still holding a cached prefix. A freed
 * sequence's blocks join the tail (its last block first, so the tails of prefixes are evicted before their
 * heads); a new block comes from the head, evicting what it cached. A cached block reused by a prefix hit
 * leaves the queue. Every decision depends only on the calls made, never on hash-map order or time.
 *
 * <p>Not thread-safe: one scheduler thread owns it.
 */
public final class BlockManager {

    private static final int NONE = -1;
    private static final long SEED_HASH = 0x2545F4914F6CDD1DL;

    private final int numBlocks;
    private final int blockSize;
    private final boolean prefixCaching;

    private final int[] refCount;      // [numBlocks] sequences whose table holds the block
    private final long[] blockHash;    // [numBlocks] chain hash, valid when registered[b]
    private final long[] parentHash;   // [numBlocks] chain hash of the block before it, for verification
    private final boolean[] registered;
    private final int[] blockTokens;   // [numBlocks × blockSize] token ids of registered blocks
    private final Map<Long, Integer> cache = new HashMap<>();  // chain hash → block

    // free queue: doubly linked over block ids, head = least recently freed
    private final int[] prev;
    private final int[] next;
    private final boolean[] queued;
    private int head = NONE;
    private int tail = NONE;
    private int freeCount;

    private final Map<Long, Seq> seqs = new HashMap<>();

    /** One sequence: its tokens, block table, and how far it has been computed and registered. */
    private static final class Seq {
        int[] tokens;
        int numTokens;
        int[] table;
        int numBlocks;
        int computed;       // leading tokens whose KV is computed
        int hashedBlocks;   // leading full blocks whose chain hash is known
        long lastHash;      // chain hash of block hashedBlocks - 1, or the seed
        int cachedTokens;   // prompt tokens found in the cache at admission

        Seq(int capacity) {
            tokens = new int[capacity];
            table = new int[4];
        }
    }

    /**
     * @param numBlocks     blocks in the pool
     * @param blockSize     token slots per block
     * @param prefixCaching share computed full blocks between sequences with equal prefixes
     */
    public BlockManager(int numBlocks, int blockSize, boolean prefixCaching) {
        if (numBlocks <= 0) throw new IllegalArgumentException("numBlocks must be > 0, got " + numBlocks);
        if (blockSize <= 0) throw new IllegalArgumentException("blockSize must be > 0, got " + blockSize);
        if ((long) numBlocks * blockSize > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("numBlocks × blockSize = " + (long) numBlocks * blockSize
                    + " slots exceeds the int slot range; use fewer or smaller blocks");
        }
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.prefixCaching = prefixCaching;
        refCount = new int[numBlocks];
        blockHash = new long[numBlocks];
        parentHash = new long[numBlocks];
        registered = new boolean[numBlocks];
        blockTokens = new int[prefixCaching ? numBlocks * blockSize : 0];
        prev = new int[numBlocks];
        next = new int[numBlocks];
        queued = new boolean[numBlocks];
        for (int b = 0; b < numBlocks; b++) enqueue(b);
    }

    public int numBlocks() { return numBlocks; }

    public int blockSize() { return blockSize; }

    public boolean prefixCaching() { return prefixCaching; }

    /** Blocks that a new allocation may take: never used, freed, or cached but unreferenced. */
    public int freeBlocks() { return freeCount; }

    /** Blocks referenced by at least one sequence; {@code freeBlocks() + usedBlocks() == numBlocks()}. */
    public int usedBlocks() { return numBlocks - freeCount; }

    /** Unreferenced blocks that still hold a registered prefix and could be reused. */
    public int cachedFreeBlocks() {
        int n = 0;
        for (int b = head; b != NONE; b = next[b]) if (registered[b]) n++;
        return n;
    }

    /** Sequences currently allocated. */
    public int numSequences() { return seqs.size(); }

    public boolean contains(long seqId) { return seqs.containsKey(seqId); }

    // ---------------------------------------------------------------- admission

    /** Blocks the free queue must give to admit this prompt: new blocks plus cached hits now unreferenced. */
    public int blocksToAllocate(int[] promptIds) {
        requirePrompt(promptIds);
        int total = ceilDiv(promptIds.length, blockSize);
        int taken = 0;
        int hits = 0;
        long h = SEED_HASH;
        for (int i = 0, n = maxHitBlocks(promptIds.length); i < n; i++) {
            long parent = h;
            h = chainHash(parent, promptIds, i * blockSize);
            int b = lookup(h, parent, promptIds, i * blockSize);
            if (b == NONE) break;
            hits++;
            if (refCount[b] == 0) taken++;
        }
        return total - hits + taken;
    }

    /** Whether {@link #allocate} would succeed now. */
    public boolean canAllocate(int[] promptIds) {
        return blocksToAllocate(promptIds) <= freeCount;
    }

    /**
     * Gives a new sequence blocks for its prompt, reusing cached full blocks of an equal prefix.
     *
     * @return the number of leading prompt tokens already computed ({@link #cachedTokens}); always less than
     *         the prompt length, because the last prompt token must run to produce logits
     * @throws IllegalStateException when the pool cannot hold the prompt (check {@link #canAllocate} first)
     */
    public int allocate(long seqId, int[] promptIds) {
        requirePrompt(promptIds);
        if (seqs.containsKey(seqId)) throw new IllegalArgumentException("sequence " + seqId + " is already allocated");
        int need = blocksToAllocate(promptIds);
        if (need > freeCount) {
            throw new IllegalStateException("KV cache full: the prompt of sequence " + seqId + " (" + promptIds.length
                    + " tokens) needs " + need + " free blocks, " + freeCount + " of " + numBlocks
                    + " are free; admit it after others finish or enlarge the cache");
        }
        Seq s = new Seq(Math.max(16, promptIds.length + blockSize));
        System.arraycopy(promptIds, 0, s.tokens, 0, promptIds.length);
        s.numTokens = promptIds.length;
        s.lastHash = SEED_HASH;
        for (int i = 0, n = maxHitBlocks(promptIds.length); i < n; i++) {
            long h = chainHash(s.lastHash, promptIds, i * blockSize);
            int b = lookup(h, s.lastHash, promptIds, i * blockSize);
            if (b == NONE) break;
            if (refCount[b] == 0) dequeue(b);
            refCount[b]++;
            addBlock(s, b);
            s.lastHash = h;
            s.hashedBlocks++;
        }
        s.computed = s.cachedTokens = s.numBlocks * blockSize;
        for (int i = s.numBlocks, n = ceilDiv(promptIds.length, blockSize); i < n; i++) addBlock(s, takeFreeBlock());
        seqs.put(seqId, s);
        return s.cachedTokens;
    }

    /** Leading prompt tokens whose KV came from the cache at admission. */
    public int cachedTokens(long seqId) { return seq(seqId).cachedTokens; }

    // ---------------------------------------------------------------- decoding

    /** 1 when the next appended token starts a new block, else 0. */
    public int blocksNeededToAppend(long seqId) {
        return seq(seqId).numTokens % blockSize == 0 ? 1 : 0;
    }

    /** Whether {@link #appendToken} would succeed now. */
    public boolean canAppend(long seqId) {
        return blocksNeededToAppend(seqId) <= freeCount;
    }

    /**
     * Adds a generated token at the next position, taking a new block at a block boundary.
     *
     * @return the slot where that position's keys and values go
     * @throws IllegalStateException when a block is needed and none is free (preempt a sequence first)
     */
    public int appendToken(long seqId, int tokenId) {
        Seq s = seq(seqId);
        if (s.numTokens % blockSize == 0) {
            if (freeCount == 0) {
                throw new IllegalStateException("KV cache full: sequence " + seqId + " needs a block for position "
                        + s.numTokens + " and none of " + numBlocks + " is free; preempt a sequence");
            }
            addBlock(s, takeFreeBlock());
        }
        if (s.numTokens == s.tokens.length) s.tokens = Arrays.copyOf(s.tokens, s.tokens.length * 2);
        s.tokens[s.numTokens] = tokenId;
        int pos = s.numTokens++;
        return slot(s, pos);
    }

    /**
     * Records that the first {@code computedTokens} positions of a sequence now hold their keys and values, and
     * registers its newly completed full blocks for sharing. Call after each forward step.
     */
    public void markComputed(long seqId, int computedTokens) {
        Seq s = seq(seqId);
        if (computedTokens < s.computed || computedTokens > s.numTokens) {
            throw new IllegalArgumentException("sequence " + seqId + ": computed tokens must grow within [" + s.computed
                    + ", " + s.numTokens + "], got " + computedTokens);
        }
        s.computed = computedTokens;
        if (!prefixCaching) return;
        for (int full = computedTokens / blockSize; s.hashedBlocks < full; s.hashedBlocks++) {
            int i = s.hashedBlocks;
            long h = chainHash(s.lastHash, s.tokens, i * blockSize);
            int b = s.table[i];
            if (!registered[b] && !cache.containsKey(h)) {  // an equal block already registered stays the shared one
                cache.put(h, b);
                registered[b] = true;
                blockHash[b] = h;
                parentHash[b] = s.lastHash;
                System.arraycopy(s.tokens, i * blockSize, blockTokens, b * blockSize, blockSize);
            }
            s.lastHash = h;
        }
    }

    /** Leading positions of the sequence whose KV is computed. */
    public int computedTokens(long seqId) { return seq(seqId).computed; }

    /** Tokens (prompt and generated) the sequence holds. */
    public int numTokens(long seqId) { return seq(seqId).numTokens; }

    // ---------------------------------------------------------------- release

    /** Releases a finished or preempted sequence; its unreferenced blocks join the free queue, cached ones kept. */
    public void free(long seqId) {
        Seq s = seqs.remove(seqId);
        if (s == null) throw new IllegalArgumentException("sequence " + seqId + " is not allocated");
        for (int i = s.numBlocks - 1; i >= 0; i--) {
            int b = s.table[i];
            if (--refCount[b] == 0) enqueue(b);
        }
    }

    // ---------------------------------------------------------------- addressing

    /** The slot {@code block × blockSize + offset} of a position of the sequence. */
    public int slot(long seqId, int position) {
        Seq s = seq(seqId);
        if (position < 0 || position >= s.numTokens) {
            throw new IndexOutOfBoundsException("sequence " + seqId + " has positions [0, " + s.numTokens + "), asked " + position);
        }
        return slot(s, position);
    }

    /** Writes the slots of positions {@code [from, from + count)} of the sequence into {@code out[outOffset...]}. */
    public void slots(long seqId, int from, int count, int[] out, int outOffset) {
        Seq s = seq(seqId);
        if (from < 0 || count < 0 || from + count > s.numTokens) {
            throw new IndexOutOfBoundsException("sequence " + seqId + " has positions [0, " + s.numTokens + "), asked ["
                    + from + ", " + (from + count) + ")");
        }
        for (int i = 0; i < count; i++) out[outOffset + i] = slot(s, from + i);
    }

    /** A copy of the sequence's block table. */
    public int[] blockTable(long seqId) {
        Seq s = seq(seqId);
        return Arrays.copyOf(s.table, s.numBlocks);
    }

    /** Sequences whose tables hold the block. */
    public int refCount(int block) { return refCount[block]; }

    /** Whether the block is registered in the prefix cache. */
    public boolean isCached(int block) { return registered[block]; }

    // ---------------------------------------------------------------- internals

    private int slot(Seq s, int position) {
        return s.table[position / blockSize] * blockSize + position % blockSize;
    }

    private Seq seq(long seqId) {
        Seq s = seqs.get(seqId);
        if (s == null) throw new IllegalArgumentException("sequence " + seqId + " is not allocated");
        return s;
    }

    private static void requirePrompt(int[] promptIds) {
        if (promptIds == null || promptIds.length == 0) throw new IllegalArgumentException("a prompt needs at least one token");
    }

    /** Full blocks that may come from the cache: those within the first length - 1 tokens. */
    private int maxHitBlocks(int promptLength) {
        return prefixCaching ? (promptLength - 1) / blockSize : 0;
    }

    private static int ceilDiv(int a, int b) { return (a + b - 1) / b; }

    /**
     * The registered block for this chain hash that follows a block of hash {@code parent} and holds exactly these
     * tokens, or NONE. Checking the parent and the tokens makes a false hit need a 64-bit collision of the parent
     * chain, not just of one block.
     */
    private int lookup(long hash, long parent, int[] tokens, int from) {
        Integer b = cache.get(hash);
        if (b == null || parentHash[b] != parent) return NONE;
        if (!Arrays.equals(blockTokens, b * blockSize, (b + 1) * blockSize, tokens, from, from + blockSize)) return NONE;
        return b;
    }

    /** SplitMix64-style chain hash of the previous block's hash and one block of token ids. */
    private long chainHash(long parent, int[] tokens, int from) {
        long h = parent;
        for (int i = from, end = from + blockSize; i < end; i++) h = mix64(h + 0x9E3779B97F4A7C15L + tokens[i]);
        return h;
    }

    private static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private void addBlock(Seq s, int block) {
        if (s.numBlocks == s.table.length) s.table = Arrays.copyOf(s.table, s.table.length * 2);
        s.table[s.numBlocks++] = block;
    }

    /** Pops the least recently freed block, evicting its cached prefix, and gives it one reference. */
    private int takeFreeBlock() {
        int b = head;
        if (b == NONE) throw new IllegalStateException("KV cache full: none of " + numBlocks + " blocks is free");
        dequeue(b);
        if (registered[b]) {
            cache.remove(blockHash[b]);
            registered[b] = false;
        }
        refCount[b] = 1;
        return b;
    }

    private void enqueue(int b) {
        prev[b] = tail;
        next[b] = NONE;
        if (tail == NONE) head = b;
        else next[tail] = b;
        tail = b;
        queued[b] = true;
        freeCount++;
    }

    private void dequeue(int b) {
        if (!queued[b]) throw new IllegalStateException("block " + b + " is not in the free queue");
        if (prev[b] == NONE) head = next[b];
        else next[prev[b]] = next[b];
        if (next[b] == NONE) tail = prev[b];
        else prev[next[b]] = prev[b];
        queued[b] = false;
        freeCount--;
    }
}
