package gptq4j.tokenizer;

import java.util.List;
import java.util.Locale;

/**
 * A {@code normalizer} of {@code tokenizer.json}, applied to each piece of text that is not an added token.
 * The variants are the ones Llama/Mistral-family files use plus the cheap Unicode ones.
 */
interface Normalizer {
    String normalize(String text);

    /** {@code Sequence}: each in turn. */
    record Sequence(List<Normalizer> steps) implements Normalizer {
        public String normalize(String text) {
            for (Normalizer step : steps) {
                text = step.normalize(text);
            }
            return text;
        }
    }

    /** {@code Prepend}: puts {@code prepend} in front of a non-empty piece. */
    record Prepend(String prepend) implements Normalizer {
        public String normalize(String text) {
            return text.isEmpty() ? text : prepend + text;
        }
    }

    /** {@code Replace} with a {@code String} pattern: every literal occurrence. */
    record Replace(String pattern, String content) implements Normalizer {
        public String normalize(String text) {
            return text.replace(pattern, content);
        }
    }

    /** {@code Replace} with a {@code Regex} pattern (java.util.regex syntax, which covers the usual Oniguruma ones). */
    record ReplaceRegex(java.util.regex.Pattern pattern, String content) implements Normalizer {
        public String normalize(String text) {
            return pattern.matcher(text).replaceAll(java.util.regex.Matcher.quoteReplacement(content));
        }
    }

    /** {@code NFC}, {@code NFD}, {@code NFKC}, {@code NFKD}. */
    record Unicode(java.text.Normalizer.Form form) implements Normalizer {
        public String normalize(String text) {
            return java.text.Normalizer.normalize(text, form);
        }
    }

    /** {@code Lowercase}. */
    record Lowercase() implements Normalizer {
        public String normalize(String text) {
            return text.toLowerCase(Locale.ROOT);
        }
    }

    /** {@code Strip}: removes leading and/or trailing whitespace. */
    record Strip(boolean left, boolean right) implements Normalizer {
        public String normalize(String text) {
            int start = 0;
            int end = text.length();
            if (left) {
                while (start < end && Character.isWhitespace(text.codePointAt(start))) {
                    start += Character.charCount(text.codePointAt(start));
                }
            }
            if (right) {
                while (end > start && Character.isWhitespace(text.codePointBefore(end))) {
                    end -= Character.charCount(text.codePointBefore(end));
                }
            }
            return text.substring(start, end);
        }
    }
}
