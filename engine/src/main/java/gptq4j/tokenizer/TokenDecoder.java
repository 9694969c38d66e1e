package gptq4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@code decoder} of {@code tokenizer.json}: rewrites the list of token texts; the decoded string is the
 * concatenation of the final list. Each variant follows the Hugging Face tokenizers semantics, which are per
 * token (so {@code Strip} after {@code Fuse} strips the whole text once, before it strips every token).
 */
interface TokenDecoder {
    List<String> decodeChain(List<String> tokens);

    /** Whether this decoder turns {@code <0xXX>} tokens back into bytes (then the stream decoder holds byte runs). */
    default boolean handlesByteFallback() {
        return false;
    }

    /** {@code Sequence}: each in turn. */
    record Sequence(List<TokenDecoder> steps) implements TokenDecoder {
        public List<String> decodeChain(List<String> tokens) {
            for (TokenDecoder step : steps) {
                tokens = step.decodeChain(tokens);
            }
            return tokens;
        }

        public boolean handlesByteFallback() {
            return steps.stream().anyMatch(TokenDecoder::handlesByteFallback);
        }
    }

    /** {@code Replace} with a {@code String} pattern, in every token. */
    record Replace(String pattern, String content) implements TokenDecoder {
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (String t : tokens) {
                out.add(t.replace(pattern, content));
            }
            return out;
        }
    }

    /**
     * {@code ByteFallback}: a maximal run of consecutive {@code <0xXX>} tokens becomes the string its bytes spell
     * in UTF-8; if the run is not valid UTF-8 as a whole, every byte of it becomes U+FFFD.
     */
    record ByteFallback() implements TokenDecoder {
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            ByteArrayOutputStream run = new ByteArrayOutputStream();
            for (String t : tokens) {
                int b = byteValue(t);
                if (b >= 0) {
                    run.write(b);
                    continue;
                }
                flushRun(run, out);
                out.add(t);
            }
            flushRun(run, out);
            return out;
        }

        public boolean handlesByteFallback() {
            return true;
        }

        /** The byte a {@code <0xXX>} token stands for, or -1 for any other token. */
        static int byteValue(String token) {
            if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>') {
                return -1;
            }
            int hi = hexDigit(token.charAt(3));
            int lo = hexDigit(token.charAt(4));
            return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
        }

        private static int hexDigit(char c) {
            if (c >= '0' && c <= '9') {
                return c - '0';
            }
            if (c >= 'A' && c <= 'F') {
                return c - 'A' + 10;
            }
            if (c >= 'a' && c <= 'f') {
                return c - 'a' + 10;
            }
            return -1;
        }

        private static void flushRun(ByteArrayOutputStream run, List<String> out) {
            if (run.size() == 0) {
                return;
            }
            byte[] bytes = run.toByteArray();
            run.reset();
            try {
                out.add(StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(ByteBuffer.wrap(bytes)).toString());
            } catch (CharacterCodingException invalid) {
                for (int i = 0; i < bytes.length; i++) {
                    out.add("\uFFFD");
                }
            }
        }
    }

    /** {@code Fuse}: all tokens become one. */
    record Fuse() implements TokenDecoder {
        public List<String> decodeChain(List<String> tokens) {
            return tokens.isEmpty() ? tokens : List.of(String.join("", tokens));
        }
    }

    /** {@code Strip}: removes up to {@code start} leading and {@code stop} trailing {@code content} chars of each token. */
    record Strip(int content, int start, int stop) implements TokenDecoder {
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (String t : tokens) {
                int[] cps = t.codePoints().toArray();
                int from = 0;
                while (from < start && from < cps.length && cps[from] == content) {
                    from++;
                }
                int to = cps.length;
                while (cps.length - to < stop && to > from && cps[to - 1] == content) {
                    to--;
                }
                out.add(new String(cps, from, to - from));
            }
            return out;
        }
    }

    /**
     * {@code Metaspace} decoder: {@code replacement} becomes a space, except in the first token when a prefix was
     * prepended at encode time ({@code prepend_scheme} other than never), where the replacement is dropped.
     */
    record Metaspace(char replacement, boolean dropInFirstToken) implements TokenDecoder {
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (int i = 0; i < tokens.size(); i++) {
                String t = tokens.get(i);
                out.add(i == 0 && dropInFirstToken
                        ? t.replace(String.valueOf(replacement), "")
                        : t.replace(replacement, ' '));
            }
            return out;
        }
    }
}
