package gptq4j.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;

/**
 * The BPE model of a Hugging Face {@code tokenizer.json}: turns one pre-tokenized word into token ids.
 *
 * <p>A word starts as one symbol per Unicode code point (a code point missing from the vocabulary becomes one
 * {@code <0xXX>} symbol per UTF-8 byte when byte fallback is on, else the unknown token, else nothing). Then
 * adjacent pairs are merged, always the pair with the lowest merge rank first and, among equal ranks, the
 * leftmost, until no adjacent pair has a merge rule. The symbols live in a doubly linked list over arrays and
 * the candidate pairs in a binary min-heap of packed (rank, position) longs; a heap entry whose pair has
 * changed since it was pushed is recognised on pop and dropped. Cost: O(n log n) for a word of n code points,
 * which matters because a layout without a pre-tokenizer hands the whole prompt over as one word.
 */
final class BpeModel {
    private final Map<String, Integer> vocab;
    private final MergeTable merges;
    private final int unkId;
    private final boolean fuseUnk;
    private final boolean byteFallback;
    private final boolean ignoreMerges;
    private final String continuingSubwordPrefix;
    private final String endOfWordSuffix;
    /** id of each {@code <0xXX>} token, or -1 where the vocabulary lacks it. */
    private final int[] byteIds = new int[256];
    /** id of the single-char piece for each BMP char, -1 if absent; built only without prefix/suffix. */
    private final int[] bmpCharIds;

    BpeModel(Map<String, Integer> vocab, MergeTable merges, int unkId, boolean fuseUnk, boolean byteFallback,
             boolean ignoreMerges, String continuingSubwordPrefix, String endOfWordSuffix) {
        this.vocab = vocab;
        this.merges = merges;
        this.unkId = unkId;
        this.fuseUnk = fuseUnk;
        this.byteFallback = byteFallback;
        this.ignoreMerges = ignoreMerges;
        this.continuingSubwordPrefix = continuingSubwordPrefix;
        this.endOfWordSuffix = endOfWordSuffix;
        for (int b = 0; b < 256; b++) {
            byteIds[b] = vocab.getOrDefault(byteTokenText(b), -1);
        }
        if (continuingSubwordPrefix == null && endOfWordSuffix == null) {
            bmpCharIds = new int[0x10000];
            Arrays.fill(bmpCharIds, -1);
            for (Map.Entry<String, Integer> e : vocab.entrySet()) {
                if (e.getKey().length() == 1) {
                    bmpCharIds[e.getKey().charAt(0)] = e.getValue();
                }
            }
        } else {
            bmpCharIds = null;
        }
    }

    /** The vocabulary text of the byte-fallback token for byte {@code b}, e.g. {@code <0x0A>}. */
    static String byteTokenText(int b) {
        return String.format("<0x%02X>", b);
    }

    /** Appends the ids of {@code word} to {@code out}. */
    void encodeWord(String word, IntList out) {
        if (word.isEmpty()) {
            return;
        }
        if (ignoreMerges) {
            Integer whole = vocab.get(word);
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        Symbols symbols = initialSymbols(word);
        mergeAll(symbols);
        for (int i = 0; i != -1 && symbols.count > 0; i = symbols.next[i]) {
            out.add(symbols.id[i]);
        }
    }

    private Symbols initialSymbols(String word) {
        Symbols s = new Symbols(word.length() + 4);
        int n = word.length();
        boolean lastWasUnk = false;
        for (int i = 0; i < n; ) {
            int cp = word.codePointAt(i);
            int end = i + Character.charCount(cp);
            int id = pieceId(word, i, end, cp);
            if (id >= 0) {
                s.append(id);
                lastWasUnk = false;
            } else if (byteFallback && appendBytes(s, cp)) {
                lastWasUnk = false;
            } else if (unkId >= 0) {
                if (!(fuseUnk && lastWasUnk)) {
                    s.append(unkId);
                }
                lastWasUnk = true;
            }
            i = end;
        }
        return s;
    }

    private int pieceId(String word, int start, int end, int cp) {
        if (bmpCharIds != null && end - start == 1) {
            return bmpCharIds[cp];
        }
        String piece = word.substring(start, end);
        if (continuingSubwordPrefix != null && start > 0) {
            piece = continuingSubwordPrefix + piece;
        }
        if (endOfWordSuffix != null && end == word.length()) {
            piece = piece + endOfWordSuffix;
        }
        return vocab.getOrDefault(piece, -1);
    }

    /** Byte fallback for one code point: all of its UTF-8 bytes must have a token, else nothing is added. */
    private boolean appendBytes(Symbols s, int cp) {
        byte[] utf8 = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8);
        for (byte b : utf8) {
            if (byteIds[b & 0xFF] < 0) {
                return false;
            }
        }
        for (byte b : utf8) {
            s.append(byteIds[b & 0xFF]);
        }
        return true;
    }

    private void mergeAll(Symbols s) {
        LongMinHeap queue = new LongMinHeap(s.count);
        for (int i = 0; i + 1 < s.count; i++) {
            int slot = merges.find(s.id[i], s.id[i + 1]);
            if (slot >= 0) {
                queue.push(entry(merges.rankAt(slot), i));
            }
        }
        while (!queue.isEmpty()) {
            long top = queue.pop();
            int rank = (int) (top >>> 32);
            int pos = (int) top;
            if (s.removed[pos]) {
                continue;
            }
            int right = s.next[pos];
            if (right == -1) {
                continue;
            }
            int slot = merges.find(s.id[pos], s.id[right]);
            if (slot < 0 || merges.rankAt(slot) != rank) {
                continue; // stale: one side of this pair was merged with something else since the push
            }
            s.id[pos] = merges.mergedIdAt(slot);
            s.removed[right] = true;
            int after = s.next[right];
            s.next[pos] = after;
            if (after != -1) {
                s.prev[after] = pos;
            }
            int before = s.prev[pos];
            if (before != -1) {
                int leftSlot = merges.find(s.id[before], s.id[pos]);
                if (leftSlot >= 0) {
                    queue.push(entry(merges.rankAt(leftSlot), before));
                }
            }
            if (after != -1) {
                int rightSlot = merges.find(s.id[pos], s.id[after]);
                if (rightSlot >= 0) {
                    queue.push(entry(merges.rankAt(rightSlot), pos));
                }
            }
        }
    }

    private static long entry(int rank, int pos) {
        return ((long) rank << 32) | pos;
    }

    /** The symbols of one word: ids with prev/next links; position 0 is always the head (it is never removed). */
    private static final class Symbols {
        int[] id;
        int[] prev;
        int[] next;
        boolean[] removed;
        int count;

        Symbols(int capacity) {
            id = new int[capacity];
            prev = new int[capacity];
            next = new int[capacity];
            removed = new boolean[capacity];
        }

        void append(int tokenId) {
            if (count == id.length) {
                int cap = count * 2;
                id = Arrays.copyOf(id, cap);
                prev = Arrays.copyOf(prev, cap);
                next = Arrays.copyOf(next, cap);
                removed = Arrays.copyOf(removed, cap);
            }
            id[count] = tokenId;
            prev[count] = count - 1;
            next[count] = -1;
            if (count > 0) {
                next[count - 1] = count;
            }
            count++;
        }
    }

    /** A binary min-heap of longs; entries pack (rank, position) so the order is rank, then position. */
    private static final class LongMinHeap {
        private long[] heap;
        private int size;

        LongMinHeap(int capacity) {
            heap = new long[Math.max(8, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long value) {
            if (size == heap.length) {
                heap = Arrays.copyOf(heap, size * 2);
            }
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (heap[parent] <= value) {
                    break;
                }
                heap[i] = heap[parent];
                i = parent;
            }
            heap[i] = value;
        }

        long pop() {
            long result = heap[0];
            long last = heap[--size];
            int i = 0;
            int half = size >>> 1;
            while (i < half) {
                int child = 2 * i + 1;
                if (child + 1 < size && heap[child + 1] < heap[child]) {
                    child++;
                }
                if (heap[child] >= last) {
                    break;
                }
                heap[i] = heap[child];
                i = child;
            }
            heap[i] = last;
            return result;
        }
    }
}
