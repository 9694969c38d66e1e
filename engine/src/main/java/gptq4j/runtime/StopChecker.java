package gptq4j.runtime;

import java.util.List;

/**
 * Stop strings of one sequence, matched on its decoded completion as text is appended (vLLM semantics: the
 * stop string and everything after it are removed from the output).
 *
 * <p>Each {@link #append} searches only the region where a new occurrence can end, so the cost per token is
 * bounded by the stop strings' lengths. When several stop strings are complete after an append, the one that
 * starts earliest wins (the first listed on a tie); generation stops at the append that completes a match, so a
 * longer stop string that would only complete later does not take over.
 *
 * <p>For streaming, {@link #emittableLength()} is how much of the text can be sent now: a tail that could be
 * the start of a stop string is held back until the next append decides it. Lengths count UTF-16 chars; the
 * boundary never splits a surrogate pair.
 */
public final class StopChecker {

    private final String[] stops;
    private final StringBuilder text = new StringBuilder();
    private int stopAt = -1;
    private String matched;

    /** @param stops non-empty stop strings; an empty list never stops */
    public StopChecker(List<String> stops) {
        this.stops = stops.toArray(new String[0]);
        for (String s : this.stops) {
            if (s == null || s.isEmpty()) throw new IllegalArgumentException("stop strings must be non-empty, got " + stops);
        }
    }

    /**
     * Appends newly decoded text and looks for a stop string ending inside it.
     *
     * @return true when the text now contains a stop string (then {@link #text()} is truncated before it);
     *         once stopped, further appends are ignored
     */
    public boolean append(CharSequence delta) {
        if (stopAt >= 0) return true;
        int oldLength = text.length();
        text.append(delta);
        if (stops.length == 0 || delta.length() == 0) return false;
        // a new occurrence ends after oldLength, so it starts at or after oldLength - (its length - 1)
        int best = -1;
        String bestStop = null;
        for (String s : stops) {
            int start = Math.max(0, oldLength - s.length() + 1);
            int i = text.indexOf(s, start);
            if (i >= 0 && (best < 0 || i < best)) {
                best = i;
                bestStop = s;
            }
        }
        if (best < 0) return false;
        stopAt = best;
        matched = bestStop;
        text.setLength(best);
        return true;
    }

    /** Whether a stop string was found. */
    public boolean stopped() { return stopAt >= 0; }

    /** The stop string found, or null. */
    public String matchedStop() { return matched; }

    /** The completion so far; once stopped, everything before the stop string. */
    public String text() { return text.toString(); }

    /** Chars of the text so far. */
    public int length() { return text.length(); }

    /**
     * Trailing chars that must not be streamed yet because they are a proper prefix of some stop string; 0 once
     * stopped (the text is final).
     */
    public int holdBack() {
        if (stopAt >= 0 || stops.length == 0) return 0;
        int n = text.length();
        int hold = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, n); k > hold; k--) {
                if (endsWith(s, k, n)) {
                    hold = k;
                    break;
                }
            }
        }
        int cut = n - hold;
        if (cut > 0 && cut < n && Character.isHighSurrogate(text.charAt(cut - 1)) && Character.isLowSurrogate(text.charAt(cut))) {
            hold++;  // keep a surrogate pair together
        }
        return hold;
    }

    /** Chars of {@link #text()} that can be streamed now: the length less the held-back tail. */
    public int emittableLength() { return text.length() - holdBack(); }

    /** The streamable text from {@code from} (what was already sent) to {@link #emittableLength()}. */
    public String emittable(int from) {
        int end = emittableLength();
        return from >= end ? "" : text.substring(from, end);
    }

    /** The rest of the text from {@code from}, held-back tail included: the last chunk when generation ends. */
    public String remaining(int from) {
        return from >= text.length() ? "" : text.substring(from);
    }

    /** Whether the text ends with the first k chars of s. */
    private boolean endsWith(String s, int k, int n) {
        int base = n - k;
        for (int i = 0; i < k; i++) if (text.charAt(base + i) != s.charAt(i)) return false;
        return true;
    }
}
