package gptq4j.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class StopCheckerTest {

    @Test
    void stopInsideOneTokenIsRemovedWithWhatFollows() {
        StopChecker c = new StopChecker(List.of("###"));
        assertFalse(c.append("Answer: 42"));
        assertTrue(c.append(" ### next question"));
        assertEquals("Answer: 42 ", c.text());
        assertEquals("###", c.matchedStop());
        assertTrue(c.stopped());
        assertTrue(c.append("ignored"));
        assertEquals("Answer: 42 ", c.text());
    }

    @Test
    void stopSpanningTokenBoundaries() {
        StopChecker c = new StopChecker(List.of("</answer>"));
        String[] tokens = {"The", " result", "</", "ans", "w", "er", ">", "junk"};
        int stoppedAt = -1;
        for (int i = 0; i < tokens.length && stoppedAt < 0; i++) if (c.append(tokens[i])) stoppedAt = i;
        assertEquals(6, stoppedAt);
        assertEquals("The result", c.text());
    }

    @Test
    void partialMatchThatFailsIsNotAStop() {
        StopChecker c = new StopChecker(List.of("STOP"));
        c.append("ST");
        c.append("OR");
        c.append("M STO");
        assertFalse(c.stopped());
        assertEquals(3, c.holdBack());
        assertTrue(c.append("P!"));
        assertEquals("STORM ", c.text());
    }

    @Test
    void earliestOfSeveralStopStringsWins() {
        // both complete in the same append: the one starting first wins whatever the list order
        StopChecker c = new StopChecker(List.of("world", "lo w"));
        assertTrue(c.append("hello world"));
        assertEquals("hel", c.text());
        assertEquals("lo w", c.matchedStop());

        StopChecker d = new StopChecker(List.of("c", "abcd"));
        d.append("xab");
        assertTrue(d.append("cd"));
        assertEquals("x", d.text(), "abcd starts before c");
        assertEquals("abcd", d.matchedStop());

        // same start: the first listed is reported, the text is the same either way
        StopChecker e = new StopChecker(List.of("ab", "abc"));
        assertTrue(e.append("zzabc"));
        assertEquals("zz", e.text());
        assertEquals("ab", e.matchedStop());
    }

    @Test
    void stopAtTheVeryStartGivesEmptyText() {
        StopChecker c = new StopChecker(List.of("\n\n"));
        assertFalse(c.append("\n"));
        assertEquals(0, c.emittableLength());
        assertTrue(c.append("\nHello"));
        assertEquals("", c.text());
    }

    @Test
    void holdBackCoversTheLongestPossibleStart() {
        StopChecker c = new StopChecker(List.of("<|end|>", "Observation:"));
        c.append("Thought: done <|e");
        assertEquals(3, c.holdBack());
        assertEquals("Thought: done ", c.emittable(0));
        c.append("n");
        assertEquals(4, c.holdBack());
        c.append("x");
        assertEquals(0, c.holdBack(), "<|enx cannot start a stop string");
        assertEquals("Thought: done <|enx", c.emittable(0));
        c.append(" Obs");
        assertEquals(3, c.holdBack());
        c.append("ervation");
        assertEquals(11, c.holdBack());
        assertTrue(c.append(":"));
        assertEquals(0, c.holdBack());
        assertEquals("Thought: done <|enx ", c.emittable(0));
    }

    @Test
    void unicodeStopStrings() {
        StopChecker cjk = new StopChecker(List.of("。", "答案"));
        cjk.append("这是");
        cjk.append("答");
        assertEquals(1, cjk.holdBack());
        assertTrue(cjk.append("案：四十二"));
        assertEquals("这是", cjk.text());

        // a supplementary character (two UTF-16 chars) as the stop string, arriving half at a time
        String smile = "\uD83D\uDE00";  // 😀
        StopChecker emoji = new StopChecker(List.of(smile + "!"));
        emoji.append("ok \uD83D");
        assertEquals(1, emoji.holdBack());
        emoji.append("\uDE00");
        assertEquals(2, emoji.holdBack());
        assertEquals("ok ", emoji.emittable(0));
        assertTrue(emoji.append("!!"));
        assertEquals("ok ", emoji.text());

        // accents: a precomposed é is not matched by e + combining acute, and vice versa
        StopChecker accent = new StopChecker(List.of("café"));
        assertFalse(accent.append("cafe\u0301 au lait"));
        assertTrue(accent.append(" café"));
        assertEquals("cafe\u0301 au lait ", accent.text());
    }

    @Test
    void holdBackNeverSplitsASurrogatePair() {
        String smile = "\uD83D\uDE00";
        // the stop starts with the low half of nothing valid: only the pair as a whole may be held
        StopChecker c = new StopChecker(List.of("\uDE00x"));
        c.append("a" + smile);
        int emit = c.emittableLength();
        assertFalse(Character.isHighSurrogate(c.text().charAt(emit - 1)), "emitted a lone high surrogate");
        assertEquals(1, emit);
    }

    @Test
    void noStopStringsNeverStopNorHold() {
        StopChecker c = new StopChecker(List.of());
        assertFalse(c.append("anything at all"));
        assertEquals(0, c.holdBack());
        assertNull(c.matchedStop());
        assertThrows(IllegalArgumentException.class, () -> new StopChecker(Arrays.asList("ok", "")));
    }

    /**
     * Random texts over a tiny alphabet cut into random tokens: the result equals a direct search on the whole
     * text for the first position at which some stop string completes, and the streamed pieces concatenate to
     * the final text without ever emitting a char that is later removed.
     */
    @Test
    void incrementalMatchesWholeTextSearch() {
        Random r = new Random(77);
        List<String> stops = List.of("aba", "bb", "cab", "a\uD83D\uDE00");
        for (int trial = 0; trial < 3000; trial++) {
            StringBuilder whole = new StringBuilder();
            int len = r.nextInt(30);
            for (int i = 0; i < len; i++) whole.append(r.nextInt(8) == 0 ? "\uD83D\uDE00" : String.valueOf("abcx".charAt(r.nextInt(4))));
            List<String> pieces = new ArrayList<>();
            for (int i = 0; i < whole.length(); ) {
                int n = Math.min(whole.length() - i, 1 + r.nextInt(4));
                pieces.add(whole.substring(i, i + n));
                i += n;
            }
            StopChecker c = new StopChecker(stops);
            StringBuilder streamed = new StringBuilder();
            for (String p : pieces) {
                boolean stop = c.append(p);
                streamed.append(c.emittable(streamed.length()));
                if (stop) break;
            }
            streamed.append(c.remaining(streamed.length()));  // generation ended: flush the held-back tail
            String expected = expectedText(whole.toString(), stops, pieces);
            assertEquals(expected, c.text(), "text " + whole + " pieces " + pieces);
            assertEquals(expected, streamed.toString());
        }
    }

    /** Reference: after each piece, the earliest-starting occurrence in the whole prefix, if any. */
    private static String expectedText(String whole, List<String> stops, List<String> pieces) {
        int end = 0;
        for (String p : pieces) {
            end += p.length();
            String prefix = whole.substring(0, end);
            int best = -1;
            for (String s : stops) {
                int i = prefix.indexOf(s);
                if (i >= 0 && (best < 0 || i < best)) best = i;
            }
            if (best >= 0) return prefix.substring(0, best);
        }
        return whole;
    }
}
