package gptq4j.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * A {@code pre_tokenizer} of {@code tokenizer.json}: splits one normalized piece into the words the BPE model
 * sees. {@code atInputStart} says whether the piece begins at offset 0 of the caller's text (what Metaspace's
 * {@code prepend_scheme: "first"} keys on).
 */
interface PreTokenizer {
    List<String> split(String piece, boolean atInputStart);

    /** {@code Sequence}: each step splits every word the previous steps produced. */
    record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
        public List<String> split(String piece, boolean atInputStart) {
            List<String> words = List.of(piece);
            for (PreTokenizer step : steps) {
                List<String> next = new ArrayList<>();
                for (int i = 0; i < words.size(); i++) {
                    next.addAll(step.split(words.get(i), atInputStart && i == 0));
                }
                words = next;
            }
            return words;
        }
    }

    /** Metaspace's {@code prepend_scheme}. */
    enum PrependScheme { ALWAYS, FIRST, NEVER }

    /**
     * {@code Metaspace}: spaces become {@code replacement}; the replacement is prepended unless the piece already
     * starts with it (ALWAYS: every piece, FIRST: only the piece at the start of the input, NEVER: none); with
     * {@code split}, the piece is cut before every replacement character (each one starts a new word).
     */
    record Metaspace(char replacement, PrependScheme prependScheme, boolean split) implements PreTokenizer {
        public List<String> split(String piece, boolean atInputStart) {
            String text = piece.replace(' ', replacement);
            boolean prepend = switch (prependScheme) {
                case ALWAYS -> true;
                case FIRST -> atInputStart;
                case NEVER -> false;
            };
            if (prepend && !text.isEmpty() && text.charAt(0) != replacement) {
                text = replacement + text;
            }
            if (!split) {
                return text.isEmpty() ? List.of() : List.of(text);
            }
            List<String> words = new ArrayList<>();
            int start = 0;
            for (int i = 1; i < text.length(); i++) {
                if (text.charAt(i) == replacement) {
                    words.add(text.substring(start, i));
                    start = i;
                }
            }
            if (start < text.length()) {
                words.add(text.substring(start));
            }
            return words;
        }
    }
}
