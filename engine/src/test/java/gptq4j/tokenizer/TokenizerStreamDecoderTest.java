package gptq4j.tokenizer;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** StreamDecoder output, concatenated, equals Tokenizer.decode of the same ids (random sequences, fresh seed). */
class TokenizerStreamDecoderTest {
    private static Tokenizer tok;
    private static int[] byteTokens;

    @BeforeAll
    static void load() {
        tok = Tokenizer.load(FixtureDir.file("models/tiny-mixtral-gptq-4bit-actorder"));
        byteTokens = new int[256];
        for (int b = 0; b < 256; b++) {
            byteTokens[b] = idOf(String.format("<0x%02X>", b));
        }
    }

    private static final java.util.Map<String, Integer> IDS = new java.util.HashMap<>();

    private static int idOf(String piece) {
        if (IDS.isEmpty()) {
            for (int id = 0; id < tok.vocabSize(); id++) {
                IDS.put(tok.tokenText(id), id);
            }
        }
        Integer id = IDS.get(piece);
        if (id == null) {
            throw new AssertionError("no token " + piece);
        }
        return id;
    }

    private static String streamAll(StreamDecoder d, int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append(d.push(id));
        }
        return sb.append(d.flush()).toString();
    }

    @Test
    void heldByteRunIsReleasedWhole() {
        int e2 = byteTokens[0xE2];
        int x82 = byteTokens[0x82];
        int xac = byteTokens[0xAC];
        int a = idOf("▁a");
        StreamDecoder d = tok.streamDecoder();
        assertEquals("", d.push(e2));
        assertEquals("", d.push(x82));
        assertEquals("", d.push(xac));
        assertEquals("€ a", d.push(a));
        assertEquals("", d.flush());

        StreamDecoder atEnd = tok.streamDecoder();
        atEnd.push(a);
        atEnd.push(e2);
        atEnd.push(x82);
        assertEquals("", atEnd.push(xac));
        assertEquals("€", atEnd.flush());

        // an invalid run turns into one U+FFFD per byte, as in decode
        int[] invalid = {e2, x82, a};
        assertEquals("\uFFFD\uFFFD a", tok.decode(invalid));
        assertEquals(tok.decode(invalid), streamAll(tok.streamDecoder(), invalid));
    }

    @Test
    void leadingSpaceOfGeneratedTextVersusContinuation() {
        int[] prompt = tok.encode("Hello my name is");
        int[] generated = tok.encode("Hello world", false, true); // [▁Hello, ▁world]
        assertEquals("Hello world", streamAll(tok.streamDecoder(), generated));
        assertEquals(tok.decode(generated), streamAll(tok.streamDecoder(), generated));
        String continuation = streamAll(tok.streamDecoder(prompt), generated);
        assertEquals(" Hello world", continuation);
        int[] all = concat(prompt, generated);
        assertEquals(tok.decode(all), tok.decode(prompt) + continuation);
    }

    @Test
    void pushAfterFlushIsRefused() {
        StreamDecoder d = tok.streamDecoder();
        d.push(idOf("▁a"));
        d.flush();
        assertThrows(IllegalStateException.class, () -> d.push(idOf("▁a")));
        assertThrows(IllegalArgumentException.class, () -> tok.streamDecoder().push(tok.vocabSize()));
    }

    @Test
    void randomSequencesMatchDecode() {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int[] specials = {0, 1, 2};
        for (int trial = 0; trial < 2000; trial++) {
            int n = rnd.nextInt(40);
            int[] ids = new int[n];
            int mode = trial % 4;
            for (int i = 0; i < n; i++) {
                int r = rnd.nextInt(100);
                if (mode == 0) {
                    ids[i] = rnd.nextInt(tok.vocabSize());                       // anything
                } else if (r < 45) {
                    ids[i] = byteTokens[mode == 1 ? rnd.nextInt(256) : utf8ish(rnd)]; // byte fallback
                } else if (r < 55) {
                    ids[i] = specials[rnd.nextInt(3)];
                } else {
                    ids[i] = 3 + 256 + rnd.nextInt(tok.vocabSize() - 259);
                }
            }
            if (mode == 3) {
                ids = validUtf8Runs(rnd, n);
            }
            int[] seq = ids;
            String expected = tok.decode(seq);
            String streamed = streamAll(tok.streamDecoder(), seq);
            assertEquals(expected, streamed, () -> "seed " + seed + ", ids " + Arrays.toString(seq));
            int[] ctx = {1, rnd.nextInt(tok.vocabSize() - 259) + 259};
            String cont = streamAll(tok.streamDecoder(ctx), seq);
            assertEquals(tok.decode(concat(ctx, seq)), tok.decode(ctx) + cont,
                    () -> "seed " + seed + ", context " + Arrays.toString(ctx) + ", ids " + Arrays.toString(seq));
        }
    }

    @Test
    void encodedRandomTextStreamsToItsDecode() {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int[] pool = "aé€🚀🤖数学ℌ𝔢 \n\t<s>".codePoints().toArray();
        for (int trial = 0; trial < 300; trial++) {
            StringBuilder sb = new StringBuilder();
            int len = rnd.nextInt(30);
            for (int i = 0; i < len; i++) {
                sb.appendCodePoint(pool[rnd.nextInt(pool.length)]);
            }
            String text = sb.toString();
            int[] ids = tok.encode(text, false, rnd.nextBoolean());
            String streamed = streamAll(tok.streamDecoder(), ids);
            assertEquals(tok.decode(ids), streamed, () -> "seed " + seed + ", text " + text);
            assertTrue(streamed.indexOf('\uFFFD') < 0, () -> "seed " + seed + ", text " + text + " streamed " + streamed);
        }
    }

    /** Bytes that often form valid UTF-8 characters: lead bytes and continuation bytes. */
    private static int utf8ish(Random rnd) {
        int[] leads = {0xC3, 0xE2, 0xE6, 0xF0};
        return rnd.nextBoolean() ? leads[rnd.nextInt(leads.length)] : 0x80 + rnd.nextInt(0x40);
    }

    /** Runs of byte tokens spelling whole valid characters, between ordinary tokens. */
    private static int[] validUtf8Runs(Random rnd, int n) {
        IntList out = new IntList(n * 4);
        for (int i = 0; i < n; i++) {
            if (rnd.nextBoolean()) {
                int cp = rnd.nextBoolean() ? 0x1F300 + rnd.nextInt(0x300) : 0x4E00 + rnd.nextInt(0x5000);
                for (byte b : new String(Character.toChars(cp)).getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
                    out.add(byteTokens[b & 0xFF]);
                }
            } else {
                out.add(3 + 256 + rnd.nextInt(tok.vocabSize() - 259));
            }
        }
        return out.toArray();
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
