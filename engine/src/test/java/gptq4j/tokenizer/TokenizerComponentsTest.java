package gptq4j.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The tokenizer.json components the Mixtral files do not exercise, on a small hand-made vocabulary:
 * Metaspace prepend schemes and split, added-token lstrip/rstrip/single_word/normalized, unk fusing,
 * merge priority, the Metaspace decoder and the post_processor template without a config file.
 */
class TokenizerComponentsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> PIECES = List.of(
            "<unk>", "<s>", "</s>", "▁", "a", "b", "c", "▁a", "▁b", "ab", "bc", "▁ab", "a▁", "<0x21>", "<0xC3>", "<0xA9>", "[X]");
    // ranks: "▁ a" 0, "b c" 1, "a b" 2, "▁a b" 3, "a ▁" 4, "▁ b" 5
    private static final String[][] MERGES = {{"▁", "a"}, {"b", "c"}, {"a", "b"}, {"▁a", "b"}, {"a", "▁"}, {"▁", "b"}};

    @TempDir
    Path dir;

    private static ObjectNode baseJson() {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.put("byte_fallback", true);
        model.put("fuse_unk", true);
        model.put("unk_token", "<unk>");
        ObjectNode vocab = model.putObject("vocab");
        for (int i = 0; i < PIECES.size(); i++) {
            vocab.put(PIECES.get(i), i);
        }
        ArrayNode merges = model.putArray("merges");
        for (String[] m : MERGES) {
            merges.addArray().add(m[0]).add(m[1]);
        }
        ArrayNode added = root.putArray("added_tokens");
        addToken(added, 0, "<unk>", true, false, false, false);
        addToken(added, 1, "<s>", true, false, false, false);
        addToken(added, 2, "</s>", true, false, false, false);
        ObjectNode decoder = root.putObject("decoder");
        decoder.put("type", "Metaspace");
        decoder.put("replacement", "▁");
        decoder.put("prepend_scheme", "always");
        return root;
    }

    private static ObjectNode addToken(ArrayNode added, int id, String content, boolean special, boolean lstrip,
                                       boolean rstrip, boolean normalized) {
        ObjectNode t = added.addObject();
        t.put("id", id).put("content", content).put("single_word", false).put("lstrip", lstrip).put("rstrip", rstrip)
                .put("normalized", normalized).put("special", special);
        return t;
    }

    private Tokenizer metaspace(String scheme, boolean split, Consumer<ObjectNode> edit) throws IOException {
        ObjectNode root = baseJson();
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Metaspace").put("replacement", "▁").put("prepend_scheme", scheme).put("split", split);
        edit.accept(root);
        Path f = dir.resolve("tokenizer-" + scheme + split + System.nanoTime() + ".json");
        Files.writeString(f, JSON.writeValueAsString(root));
        return Tokenizer.fromFiles(f, null);
    }

    private static int id(String piece) {
        return PIECES.indexOf(piece);
    }

    private static int[] ids(String... pieces) {
        int[] out = new int[pieces.length];
        for (int i = 0; i < pieces.length; i++) {
            out[i] = id(pieces[i]);
        }
        return out;
    }

    @Test
    void prependSchemes() throws IOException {
        Tokenizer always = metaspace("always", false, r -> { });
        Tokenizer first = metaspace("first", false, r -> { });
        Tokenizer never = metaspace("never", false, r -> { });
        // no post_processor and no config: no BOS
        assertEquals(-1, always.bosId());
        assertArrayEquals(ids("▁a", "<s>", "▁a"), always.encode("a<s>a"));
        assertArrayEquals(ids("▁a", "<s>", "a"), first.encode("a<s>a"));
        assertArrayEquals(ids("a", "<s>", "a"), never.encode("a<s>a"));
        // a piece already starting with a space gets no second "▁"
        assertArrayEquals(ids("▁a"), always.encode(" a"));
        assertArrayEquals(ids("<s>", "▁a"), first.encode("<s> a"));
    }

    @Test
    void splitKeepsMergesInsideWords() throws IOException {
        // "a ▁" is a merge: without split "ca b" becomes c, a▁, b; with split the words are "▁ca" and "▁b"
        Tokenizer joined = metaspace("never", false, r -> { });
        Tokenizer split = metaspace("never", true, r -> { });
        assertArrayEquals(ids("c", "a▁", "b"), joined.encode("ca b"));
        assertArrayEquals(ids("c", "a", "▁b"), split.encode("ca b"));
    }

    @Test
    void mergePriorityIsByRankNotPosition() throws IOException {
        Tokenizer t = metaspace("never", false, r -> { });
        // "abc": "b c" (rank 1) beats "a b" (rank 2) although it is further right
        assertArrayEquals(ids("a", "bc"), t.encode("abc"));
        // "▁ab": "▁ a" first, then "▁a b"
        assertArrayEquals(ids("▁ab"), t.encode(" ab"));
    }

    @Test
    void byteFallbackAndFusedUnknown() throws IOException {
        Tokenizer t = metaspace("never", false, r -> { });
        // é = C3 A9 has byte tokens; ! = 21 too; "zz" has neither a piece nor all byte tokens: one fused <unk>
        assertArrayEquals(ids("a", "<0xC3>", "<0xA9>", "<0x21>", "<unk>", "b"), t.encode("aé!zzb"));
        assertEquals("a<0xC3><0xA9><0x21>b", t.decode(t.encode("aé!zzb")), "no ByteFallback in this decoder");
        Tokenizer withBytes = metaspace("never", false, r -> {
            ObjectNode seq = r.putObject("decoder");
            seq.put("type", "Sequence");
            ArrayNode steps = seq.putArray("decoders");
            steps.addObject().put("type", "ByteFallback");
            steps.addObject().put("type", "Metaspace").put("replacement", "▁").put("prepend_scheme", "never");
        });
        assertEquals("aé!b", withBytes.decode(t.encode("aé!zzb")));
        assertEquals("a\uFFFD\uFFFDb", withBytes.decode(ids("a", "<0xC3>", "<0x21>", "b")),
                "a run that is invalid UTF-8 anywhere becomes one U+FFFD per byte, even its valid '!'");
        Tokenizer noFuse = metaspace("never", false, r -> ((ObjectNode) r.get("model")).put("fuse_unk", false));
        assertArrayEquals(ids("<unk>", "<unk>"), noFuse.encode("zz"));
    }

    @Test
    void addedTokenOptions() throws IOException {
        Tokenizer t = metaspace("never", false, r -> {
            ArrayNode added = (ArrayNode) r.get("added_tokens");
            addToken(added, id("[X]"), "[X]", false, true, true, false);
        });
        // lstrip and rstrip swallow the spaces around [X]
        assertArrayEquals(ids("a", "[X]", "b"), t.encode("a  [X]  b"));
        // a non-special added token is matched even when special tokens are not parsed
        assertArrayEquals(ids("a", "[X]", "b"), t.encode("a [X] b", false, false));

        Tokenizer word = metaspace("never", false, r -> {
            ArrayNode added = (ArrayNode) r.get("added_tokens");
            addToken(added, id("[X]"), "ab", false, false, false, false).put("single_word", true);
        });
        assertArrayEquals(ids("[X]", "▁", "c"), word.encode("ab c"));
        assertArrayEquals(ids("c", "ab"), word.encode("cab"), "inside a word the text 'ab' is not the added token");

        Tokenizer normalized = metaspace("never", false, r -> {
            ArrayNode added = (ArrayNode) r.get("added_tokens");
            addToken(added, id("bc"), "B", false, false, false, true);
            ObjectNode lower = r.putObject("normalizer");
            lower.put("type", "Replace");
            lower.putObject("pattern").put("String", "C");
            lower.put("content", "B");
        });
        // "C" is normalized to "B", which is then matched as the normalized added token (id of "bc")
        assertArrayEquals(ids("a", "bc", "a"), normalized.encode("aCa"));
    }

    @Test
    void metaspaceDecoderDropsReplacementInFirstToken() throws IOException {
        Tokenizer t = metaspace("always", false, r -> { });
        assertEquals("a b", t.decode(ids("▁a", "▁b")));
        assertEquals("ab", t.decode(ids("<s>", "▁a", "b")), "special tokens are skipped before the decoder runs");
    }

    @Test
    void templateGivesBosWithoutConfig() throws IOException {
        Tokenizer t = metaspace("always", false, r -> {
            ObjectNode pp = r.putObject("post_processor");
            pp.put("type", "TemplateProcessing");
            ArrayNode single = pp.putArray("single");
            single.addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
            single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
            single.addObject().putObject("SpecialToken").put("id", "</s>").put("type_id", 0);
            ObjectNode st = pp.putObject("special_tokens");
            st.putObject("<s>").put("id", "<s>").putArray("ids").add(1);
            st.putObject("</s>").put("id", "</s>").putArray("ids").add(2);
        });
        assertEquals(1, t.bosId());
        assertEquals(2, t.eosId());
        assertArrayEquals(ids("<s>", "▁a", "</s>"), t.encode("a"));
        assertArrayEquals(ids("▁a", "</s>"), t.encode("a", false, true));
    }
}
