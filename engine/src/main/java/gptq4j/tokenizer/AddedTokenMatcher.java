package gptq4j.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds added tokens in text, leftmost first and, at one position, longest first, and cuts the text into
 * alternating plain-text pieces and token ids. Candidates are indexed by their first char, so a scan costs
 * one map lookup per char plus a comparison per candidate that starts with that char.
 */
final class AddedTokenMatcher {
    /** A piece of the input: either plain text ({@code tokenId == -1}) or one added token. */
    record Piece(String text, int tokenId, int offset) {
        boolean isToken() {
            return tokenId >= 0;
        }
    }

    private final Map<Character, List<AddedToken>> byFirstChar = new HashMap<>();

    AddedTokenMatcher(List<AddedToken> tokens) {
        for (AddedToken t : tokens) {
            if (!t.content().isEmpty()) {
                byFirstChar.computeIfAbsent(t.content().charAt(0), c -> new ArrayList<>()).add(t);
            }
        }
        for (List<AddedToken> list : byFirstChar.values()) {
            list.sort(Comparator.comparingInt((AddedToken t) -> t.content().length()).reversed());
        }
    }

    boolean isEmpty() {
        return byFirstChar.isEmpty();
    }

    /** Cuts {@code text} (found at {@code baseOffset} of the input) into pieces; empty text pieces are left out. */
    List<Piece> split(String text, int baseOffset) {
        List<Piece> pieces = new ArrayList<>();
        int textStart = 0;
        int i = 0;
        int n = text.length();
        while (i < n) {
            List<AddedToken> candidates = byFirstChar.get(text.charAt(i));
            AddedToken hit = null;
            if (candidates != null) {
                for (AddedToken t : candidates) {
                    if (text.startsWith(t.content(), i) && wordBoundaryOk(t, text, i, i + t.content().length())) {
                        hit = t;
                        break;
                    }
                }
            }
            if (hit == null) {
                i++;
                continue;
            }
            int matchStart = i;
            int matchEnd = i + hit.content().length();
            if (hit.lstrip()) {
                while (matchStart > textStart && Character.isWhitespace(text.codePointBefore(matchStart))) {
                    matchStart -= Character.charCount(text.codePointBefore(matchStart));
                }
            }
            if (hit.rstrip()) {
                while (matchEnd < n && Character.isWhitespace(text.codePointAt(matchEnd))) {
                    matchEnd += Character.charCount(text.codePointAt(matchEnd));
                }
            }
            if (matchStart > textStart) {
                pieces.add(new Piece(text.substring(textStart, matchStart), -1, baseOffset + textStart));
            }
            pieces.add(new Piece(hit.content(), hit.id(), baseOffset + matchStart));
            textStart = matchEnd;
            i = matchEnd;
        }
        if (textStart < n) {
            pieces.add(new Piece(text.substring(textStart), -1, baseOffset + textStart));
        }
        return pieces;
    }

    private static boolean wordBoundaryOk(AddedToken t, String text, int start, int end) {
        if (!t.singleWord()) {
            return true;
        }
        boolean before = start > 0 && isWordChar(text.codePointBefore(start));
        boolean after = end < text.length() && isWordChar(text.codePointAt(end));
        return !before && !after;
    }

    private static boolean isWordChar(int cp) {
        return Character.isLetterOrDigit(cp) || cp == '_';
    }
}
