package gptq4j.tokenizer;

/**
 * The BPE merge rules as an open-addressing hash map from a pair of token ids (left, right) to the merge's
 * rank (its line number in {@code merges}; lower merges first) and the id of the merged token.
 * Keys are packed into one long so that a lookup in the merge loop allocates nothing.
 */
final class MergeTable {
    private static final long EMPTY = -1L;

    private final long[] keys;
    private final int[] ranks;
    private final int[] mergedIds;
    private final int mask;
    private int size;

    MergeTable(int expectedEntries) {
        int capacity = Integer.highestOneBit(Math.max(16, expectedEntries * 2 - 1)) << 1;
        keys = new long[capacity];
        java.util.Arrays.fill(keys, EMPTY);
        ranks = new int[capacity];
        mergedIds = new int[capacity];
        mask = capacity - 1;
    }

    private static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private static int hash(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 29));
    }

    /** Adds a rule; the first rule for a pair wins, as when the list is read top to bottom. */
    boolean putIfAbsent(int left, int right, int rank, int mergedId) {
        long k = key(left, right);
        int slot = hash(k) & mask;
        while (keys[slot] != EMPTY) {
            if (keys[slot] == k) {
                return false;
            }
            slot = (slot + 1) & mask;
        }
        if (size + 1 > (keys.length * 3) / 4) {
            throw new IllegalStateException("merge table over capacity: " + size);
        }
        keys[slot] = k;
        ranks[slot] = rank;
        mergedIds[slot] = mergedId;
        size++;
        return true;
    }

    /** Slot of the rule for (left, right), or -1 if the pair never merges. */
    int find(int left, int right) {
        long k = key(left, right);
        int slot = hash(k) & mask;
        while (true) {
            long present = keys[slot];
            if (present == k) {
                return slot;
            }
            if (present == EMPTY) {
                return -1;
            }
            slot = (slot + 1) & mask;
        }
    }

    int rankAt(int slot) {
        return ranks[slot];
    }

    int mergedIdAt(int slot) {
        return mergedIds[slot];
    }

    int size() {
        return size;
    }
}
