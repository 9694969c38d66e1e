package gptq4j.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class BlockManagerTest {

    private static final int B = 16;
    private static final int SEQS = 256;
    private static final int PREFIX = 500;
    private static final int PROMPT = 520;

    private static int[] sharedPrefixPrompt(int seq) {
        int[] p = new int[PROMPT];
        for (int i = 0; i < PREFIX; i++) p[i] = 1 + (i * 7919) % 31000;
        for (int i = PREFIX; i < PROMPT; i++) p[i] = 1 + (seq * 20 + i) % 31999;
        return p;
    }

    private static int[] range(int from, int n) {
        return IntStream.range(from, from + n).toArray();
    }

    @Test
    void sharedPrefixUsesFarFewerBlocks() {
        int blocksPerPrompt = (PROMPT + B - 1) / B;              // 33: 32 full + 8 tokens
        int sharedBlocks = PREFIX / B;                          // 31 full blocks of pure prefix
        int pool = SEQS * blocksPerPrompt;                      // 8448: enough without sharing
        BlockManager shared = new BlockManager(pool, B, true);
        assertEquals(0, shared.allocate(0, sharedPrefixPrompt(0)));
        shared.markComputed(0, PROMPT);
        for (int s = 1; s < SEQS; s++) {
            assertEquals(sharedBlocks * B, shared.allocate(s, sharedPrefixPrompt(s)), "cached tokens of " + s);
            shared.markComputed(s, PROMPT);
        }
        assertEquals(blocksPerPrompt + (SEQS - 1) * (blocksPerPrompt - sharedBlocks), shared.usedBlocks());  // 543
        assertEquals(543, shared.usedBlocks());
        assertEquals(pool - 543, shared.freeBlocks());
        int[] t0 = shared.blockTable(0);
        int[] t1 = shared.blockTable(SEQS - 1);
        for (int i = 0; i < sharedBlocks; i++) {
            assertEquals(t0[i], t1[i]);
            assertEquals(SEQS, shared.refCount(t0[i]));
        }
        for (int i = sharedBlocks; i < blocksPerPrompt; i++) {
            assertNotEquals(t0[i], t1[i]);
            assertEquals(1, shared.refCount(t1[i]));
        }

        BlockManager unshared = new BlockManager(pool, B, false);
        for (int s = 0; s < SEQS; s++) {
            assertEquals(0, unshared.allocate(s, sharedPrefixPrompt(s)));
            unshared.markComputed(s, PROMPT);
        }
        assertEquals(8448, unshared.usedBlocks());
        assertEquals(0, unshared.freeBlocks());
        assertFalse(unshared.canAllocate(sharedPrefixPrompt(SEQS)));
        assertTrue(shared.canAllocate(sharedPrefixPrompt(SEQS)));

        for (int s = 0; s < SEQS; s++) shared.free(s);
        assertEquals(0, shared.usedBlocks());
        assertEquals(pool, shared.freeBlocks());
        for (int b = 0; b < pool; b++) assertEquals(0, shared.refCount(b), "block " + b);
        // 31 prefix blocks plus each prompt's 32nd block (4 prefix + 12 own tokens) stay cached
        assertEquals(sharedBlocks + SEQS, shared.cachedFreeBlocks());
        // a new prompt with the prefix: 31 cached hits leave the free queue, plus 2 new blocks
        assertEquals(blocksPerPrompt, shared.blocksToAllocate(sharedPrefixPrompt(SEQS + 7)));
        assertEquals(sharedBlocks * B, shared.allocate(999, sharedPrefixPrompt(SEQS + 7)));
        assertEquals(blocksPerPrompt - sharedBlocks, shared.blocksToAllocate(sharedPrefixPrompt(SEQS + 8)));
        // an old prompt is cached up to its 32nd block; the block holding its last token is recomputed
        assertEquals(32 * B, shared.allocate(1000, sharedPrefixPrompt(7)));
    }

    @Test
    void nothingIsSharedBeforeItIsComputed() {
        BlockManager m = new BlockManager(100, 4, true);
        m.allocate(1, range(0, 12));
        assertEquals(0, m.allocate(2, range(0, 12)), "blocks of sequence 1 are not computed yet");
        m.markComputed(1, 6);  // the first block only
        assertEquals(4, m.allocate(3, range(0, 12)));
        assertEquals(m.blockTable(1)[0], m.blockTable(3)[0]);
        assertNotEquals(m.blockTable(1)[1], m.blockTable(3)[1]);
    }

    @Test
    void lastPromptTokenIsNeverCached() {
        BlockManager m = new BlockManager(100, 4, true);
        m.allocate(1, range(0, 8));
        m.markComputed(1, 8);
        assertEquals(4, m.allocate(2, range(0, 8)), "8 tokens = 2 full blocks, but token 7 must run");
        assertEquals(8, m.allocate(3, range(0, 9)));
        assertEquals(0, m.allocate(4, range(0, 1)));
        assertEquals(0, m.allocate(5, range(0, 4)));
        assertEquals(4, m.allocate(6, range(0, 5)));
        assertEquals(4, m.cachedTokens(6));
    }

    @Test
    void freedPrefixIsReusedThenEvictedLeastRecentlyUsedFirst() {
        BlockManager m = new BlockManager(10, 4, true);
        int[] a = range(100, 9);  // 2 full blocks + 1 token
        m.allocate(1, a);
        m.markComputed(1, 9);
        int[] tableA = m.blockTable(1);
        m.free(1);
        assertEquals(10, m.freeBlocks());
        assertEquals(2, m.cachedFreeBlocks());
        assertEquals(3, m.blocksToAllocate(a), "two cached hits leave the free queue too");

        assertEquals(8, m.allocate(2, a));
        assertArrayEquals(new int[] {tableA[0], tableA[1]}, new int[] {m.blockTable(2)[0], m.blockTable(2)[1]});
        m.free(2);

        // 7 unrelated blocks: the never-used and older freed blocks go first, the prefix survives
        m.allocate(3, range(5000, 28));
        assertEquals(3, m.freeBlocks());
        assertEquals(8, m.allocate(4, a));
        m.free(3);
        m.free(4);  // freed last: the prefix is the most recently used

        // now take 9 blocks: the prefix's second block (queued before its first) is evicted, the first survives
        m.allocate(5, range(6000, 33));  // 9 blocks
        assertEquals(1, m.freeBlocks());
        assertEquals(1, m.cachedFreeBlocks());
        assertTrue(m.isCached(tableA[0]));
        assertFalse(m.isCached(tableA[1]));
        m.free(5);
        assertEquals(4, m.allocate(6, a), "only the first block of the prefix is still cached");
        m.free(6);

        // take every block: the whole prefix is evicted and the prompt is computed from scratch
        m.allocate(7, range(7000, 40));
        assertEquals(0, m.freeBlocks());
        assertEquals(0, m.cachedFreeBlocks());
        assertFalse(m.canAllocate(a));
        assertThrows(IllegalStateException.class, () -> m.allocate(8, a));
        m.free(7);
        assertEquals(0, m.allocate(8, a));
        assertEquals(0, m.cachedTokens(8));
        assertEquals(0, m.computedTokens(8));
        // recomputed, it is registered again
        m.markComputed(8, 9);
        assertEquals(8, m.allocate(9, a));
    }

    @Test
    void appendTakesBlocksAtBoundariesAndSlotsFollowTheTable() {
        BlockManager m = new BlockManager(8, 4, true);
        m.allocate(1, range(0, 3));
        assertEquals(1, m.blockTable(1).length);
        assertEquals(0, m.blocksNeededToAppend(1));
        int s3 = m.appendToken(1, 42);  // position 3 fills the first block
        assertEquals(m.blockTable(1)[0] * 4 + 3, s3);
        assertEquals(1, m.blocksNeededToAppend(1));
        int s4 = m.appendToken(1, 43);  // position 4 starts the second block
        int[] table = m.blockTable(1);
        assertEquals(2, table.length);
        assertEquals(table[1] * 4, s4);
        assertEquals(5, m.numTokens(1));
        int[] slots = new int[5];
        m.slots(1, 0, 5, slots, 0);
        for (int p = 0; p < 5; p++) {
            assertEquals(table[p / 4] * 4 + p % 4, slots[p]);
            assertEquals(slots[p], m.slot(1, p));
        }
        assertThrows(IndexOutOfBoundsException.class, () -> m.slot(1, 5));
        assertThrows(IllegalArgumentException.class, () -> m.slot(2, 0));
    }

    @Test
    void generatedBlocksAreSharedOnceComputed() {
        BlockManager m = new BlockManager(20, 4, true);
        int[] prompt = range(10, 6);
        m.allocate(1, prompt);
        m.markComputed(1, 6);
        int[] all = new int[13];
        System.arraycopy(prompt, 0, all, 0, 6);
        for (int i = 6; i < 13; i++) {
            all[i] = 900 + i;
            m.appendToken(1, all[i]);
        }
        m.markComputed(1, 12);  // position 12 is the last sampled token, not yet run
        // a preempted-and-recomputed copy of the sequence reuses all three full blocks
        assertEquals(12, m.allocate(2, all));
        assertArrayEquals(java.util.Arrays.copyOf(m.blockTable(1), 3), java.util.Arrays.copyOf(m.blockTable(2), 3));
    }

    @Test
    void oneBlockPerTokenContentNeverLeaks() {
        // prompts equal up to a token must not share the block holding the difference
        BlockManager m = new BlockManager(50, 4, true);
        int[] a = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        int[] b = {1, 2, 3, 4, 5, 6, 7, 0, 9};
        int[] c = {9, 2, 3, 4, 5, 6, 7, 8, 9};  // differs in block 0: block 1 is equal but its chain is not
        m.allocate(1, a);
        m.markComputed(1, 9);
        assertEquals(4, m.allocate(2, b));
        assertEquals(0, m.allocate(3, c));
    }

    @Test
    void rejectsMisuse() {
        BlockManager m = new BlockManager(4, 4, true);
        assertThrows(IllegalArgumentException.class, () -> m.allocate(1, new int[0]));
        m.allocate(1, range(0, 5));
        assertThrows(IllegalArgumentException.class, () -> m.allocate(1, range(0, 5)));
        assertThrows(IllegalArgumentException.class, () -> m.markComputed(1, 6));
        m.markComputed(1, 3);
        assertThrows(IllegalArgumentException.class, () -> m.markComputed(1, 2));
        m.free(1);
        assertThrows(IllegalArgumentException.class, () -> m.free(1));
        m.allocate(2, range(100, 16));
        assertEquals(1, m.blocksNeededToAppend(2));
        assertFalse(m.canAppend(2));
        assertThrows(IllegalStateException.class, () -> m.appendToken(2, 7));
        assertThrows(IllegalArgumentException.class, () -> new BlockManager(0, 16, true));
    }

    /**
     * Random admissions, appends, computation and frees over a small pool and a small alphabet (so prefixes
     * collide often), checked after every operation against a simulated KV store: every computed position of
     * every live sequence must read back the KV written for exactly its prefix.
     */
    @ParameterizedTest(name = "prefixCaching={0}")
    @ValueSource(booleans = {true, false})
    void randomOperationsKeepInvariants(boolean prefixCaching) {
        int n = 48;
        int bs = 4;
        BlockManager m = new BlockManager(n, bs, prefixCaching);
        Random r = new Random(0xB10C5L);
        Map<Long, List<Integer>> tokens = new HashMap<>();
        long[] kv = new long[n * bs];  // slot → identity of the prefix whose KV it holds
        long nextId = 0;
        int hits = 0;
        for (int op = 0; op < 20_000; op++) {
            List<Long> live = new ArrayList<>(tokens.keySet());
            live.sort(null);
            int kind = r.nextInt(10);
            if (kind < 3 || live.isEmpty()) {
                int len = 1 + r.nextInt(14);
                int[] prompt = new int[len];
                int family = r.nextInt(3);
                for (int i = 0; i < len; i++) prompt[i] = i < 8 ? family * 10 + i : r.nextInt(3);
                if (!m.canAllocate(prompt)) {
                    assertThrows(IllegalStateException.class, () -> m.allocate(-1, prompt));
                    continue;
                }
                long id = nextId++;
                int cached = m.allocate(id, prompt);
                assertTrue(cached < len && cached % bs == 0);
                if (cached > 0) hits++;
                List<Integer> t = new ArrayList<>();
                for (int v : prompt) t.add(v);
                tokens.put(id, t);
            } else {
                long id = live.get(r.nextInt(live.size()));
                List<Integer> t = tokens.get(id);
                if (kind < 6) {
                    if (m.canAppend(id)) {
                        int tok = r.nextInt(3);
                        int slot = m.appendToken(id, tok);
                        t.add(tok);
                        assertEquals(m.slot(id, t.size() - 1), slot);
                    } else {
                        assertThrows(IllegalStateException.class, () -> m.appendToken(id, 0));
                    }
                } else if (kind < 9) {
                    int from = m.computedTokens(id);
                    int to = from + r.nextInt(t.size() - from + 1);
                    for (int p = from; p < to; p++) kv[m.slot(id, p)] = prefixIdentity(t, p);  // the forward pass writes
                    m.markComputed(id, to);
                } else {
                    m.free(id);
                    tokens.remove(id);
                }
            }
            check(m, tokens, kv, n, bs);
        }
        if (prefixCaching) assertTrue(hits > 100, "the random workload hit the prefix cache only " + hits + " times");
        for (long id : new ArrayList<>(tokens.keySet())) m.free(id);
        assertEquals(0, m.usedBlocks());
        for (int b = 0; b < n; b++) assertEquals(0, m.refCount(b));
    }

    private static long prefixIdentity(List<Integer> t, int p) {
        long h = 1469598103934665603L;
        for (int i = 0; i <= p; i++) h = (h ^ (t.get(i) + 1)) * 1099511628211L;
        return h ^ p;
    }

    private static void check(BlockManager m, Map<Long, List<Integer>> tokens, long[] kv, int n, int bs) {
        int[] refs = new int[n];
        for (Map.Entry<Long, List<Integer>> e : tokens.entrySet()) {
            long id = e.getKey();
            List<Integer> t = e.getValue();
            int[] table = m.blockTable(id);
            assertEquals(t.size(), m.numTokens(id));
            assertEquals((t.size() + bs - 1) / bs, table.length, "blocks of sequence " + id);
            Set<Integer> own = new HashSet<>();
            for (int b : table) {
                assertTrue(own.add(b), "block " + b + " twice in the table of " + id);
                refs[b]++;
            }
            int computed = m.computedTokens(id);
            for (int i = computed / bs; i < table.length; i++) {  // blocks still to be written
                assertEquals(1, m.refCount(table[i]), "block " + table[i] + " is written by " + id + " but shared");
                assertFalse(m.isCached(table[i]), "block " + table[i] + " is written by " + id + " but cached");
            }
            for (int p = 0; p < computed; p++) {
                assertEquals(prefixIdentity(t, p), kv[m.slot(id, p)], "sequence " + id + " position " + p + " reads foreign KV");
            }
        }
        int used = 0;
        for (int b = 0; b < n; b++) {
            assertEquals(refs[b], m.refCount(b), "refcount of block " + b);
            if (refs[b] > 0) used++;
        }
        assertEquals(used, m.usedBlocks());
        assertEquals(n, m.freeBlocks() + m.usedBlocks());
    }
}
