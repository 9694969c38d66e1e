package gptq4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptq4j.loader.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Reads {@code tokenizer.json} (and optionally {@code tokenizer_config.json}) into a {@link Tokenizer}.
 * Every failure is a {@link CheckpointException} naming the file and the key that is wrong; a component type
 * this package does not implement is refused by name rather than ignored.
 */
final class TokenizerLoader {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Token ids must be below this (tables are indexed by id; real vocabularies stay far below it). */
    static final int MAX_TOKEN_ID = 1 << 24;

    private final Path file;

    private TokenizerLoader(Path file) {
        this.file = file;
    }

    static Tokenizer load(Path tokenizerJson, Path tokenizerConfigOrNull) {
        JsonNode root = readJson(tokenizerJson, "tokenizer.json");
        TokenizerLoader loader = new TokenizerLoader(tokenizerJson);
        return loader.build(root, tokenizerConfigOrNull);
    }

    private static JsonNode readJson(Path path, String what) {
        if (path == null) {
            throw new CheckpointException(what + ": no path given");
        }
        if (!Files.isRegularFile(path)) {
            throw CheckpointException.of(path, what + " not found (expected a file; a model directory must contain "
                    + "the Hugging Face tokenizer.json)");
        }
        try {
            JsonNode node = JSON.readTree(path.toFile());
            if (node == null || !node.isObject()) {
                throw CheckpointException.of(path, what + " is not a JSON object");
            }
            return node;
        } catch (IOException e) {
            throw new CheckpointException(path + ": " + what + " is not valid JSON: " + CheckpointException.jsonProblem(e), e);
        }
    }

    private CheckpointException bad(String what) {
        return CheckpointException.of(file, what);
    }

    private Tokenizer build(JsonNode root, Path configPath) {
        JsonNode modelNode = root.get("model");
        if (modelNode == null || !modelNode.isObject()) {
            throw bad("missing \"model\" object");
        }
        String modelType = text(modelNode, "type", "BPE");
        if (!"BPE".equals(modelType)) {
            throw bad("model.type \"" + modelType + "\" is not supported (only BPE)");
        }
        Map<String, Integer> vocab = readVocab(modelNode);
        List<AddedToken> added = readAddedTokens(root.get("added_tokens"));

        int maxId = -1;
        for (int id : vocab.values()) {
            maxId = Math.max(maxId, id);
        }
        for (AddedToken t : added) {
            maxId = Math.max(maxId, t.id());
        }
        if (maxId >= MAX_TOKEN_ID) {
            throw bad("token id " + maxId + " is too large (ids must be below " + MAX_TOKEN_ID + "; the vocabulary has "
                    + vocab.size() + " entries and " + added.size() + " added tokens)");
        }
        String[] idToText = new String[maxId + 1];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            idToText[e.getValue()] = e.getKey();
        }
        boolean[] special = new boolean[maxId + 1];
        Map<String, Integer> addedByText = new HashMap<>();
        for (AddedToken t : added) {
            idToText[t.id()] = t.content();
            special[t.id()] = t.special();
            addedByText.put(t.content(), t.id());
        }

        BpeModel model = readBpe(modelNode, vocab);
        Normalizer normalizer = readNormalizer(root.get("normalizer"), "normalizer");
        PreTokenizer preTokenizer = readPreTokenizer(root.get("pre_tokenizer"), "pre_tokenizer");
        TokenDecoder decoder = readDecoder(root.get("decoder"), "decoder");

        SpecialIds template = readPostProcessor(root.get("post_processor"), vocab, addedByText);
        SpecialIds specials = configPath == null
                ? template
                : readConfig(configPath, template, vocab, addedByText);

        return new Tokenizer(model, idToText, special, added, normalizer, preTokenizer, decoder,
                specials.bosId, specials.eosId, specials.addBos, specials.addEos);
    }

    // ---- model ---------------------------------------------------------------------------------------------

    private Map<String, Integer> readVocab(JsonNode modelNode) {
        JsonNode v = modelNode.get("vocab");
        if (v == null || !v.isObject() || v.isEmpty()) {
            throw bad("model.vocab is missing or empty");
        }
        Map<String, Integer> vocab = new HashMap<>(v.size() * 2);
        Iterator<Map.Entry<String, JsonNode>> it = v.fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().canConvertToInt() || e.getValue().asInt() < 0) {
                throw bad("model.vocab[\"" + e.getKey() + "\"] is not a non-negative integer id: " + e.getValue());
            }
            vocab.put(e.getKey(), e.getValue().asInt());
        }
        return vocab;
    }

    private BpeModel readBpe(JsonNode m, Map<String, Integer> vocab) {
        JsonNode dropout = m.get("dropout");
        if (dropout != null && !dropout.isNull() && dropout.asDouble() > 0) {
            throw bad("model.dropout " + dropout + " is not supported (inference needs deterministic BPE; set it to null)");
        }
        String prefix = nullableText(m, "continuing_subword_prefix");
        String suffix = nullableText(m, "end_of_word_suffix");
        String unk = nullableText(m, "unk_token");
        int unkId = -1;
        if (unk != null) {
            Integer id = vocab.get(unk);
            if (id == null) {
                throw bad("model.unk_token \"" + unk + "\" is not in model.vocab");
            }
            unkId = id;
        }
        JsonNode mergesNode = m.get("merges");
        if (mergesNode == null || !mergesNode.isArray()) {
            throw bad("model.merges is missing or not an array");
        }
        MergeTable merges = new MergeTable(mergesNode.size());
        int prefixLen = prefix == null ? 0 : prefix.length();
        for (int rank = 0; rank < mergesNode.size(); rank++) {
            JsonNode entry = mergesNode.get(rank);
            String left;
            String right;
            if (entry.isTextual()) {
                String line = entry.asText();
                int space = line.indexOf(' ');
                if (space < 0 || line.indexOf(' ', space + 1) >= 0) {
                    throw bad("model.merges[" + rank + "] \"" + line + "\" is not two tokens separated by one space");
                }
                left = line.substring(0, space);
                right = line.substring(space + 1);
            } else if (entry.isArray() && entry.size() == 2 && entry.get(0).isTextual() && entry.get(1).isTextual()) {
                left = entry.get(0).asText();
                right = entry.get(1).asText();
            } else {
                throw bad("model.merges[" + rank + "] is neither \"a b\" nor [\"a\", \"b\"]: " + entry);
            }
            Integer leftId = vocab.get(left);
            Integer rightId = vocab.get(right);
            if (leftId == null || rightId == null) {
                throw bad("model.merges[" + rank + "] uses \"" + (leftId == null ? left : right) + "\", which is not in model.vocab");
            }
            if (prefixLen > 0 && !right.startsWith(prefix)) {
                throw bad("model.merges[" + rank + "] right side \"" + right + "\" lacks continuing_subword_prefix \"" + prefix + "\"");
            }
            String merged = left + right.substring(prefixLen);
            Integer mergedId = vocab.get(merged);
            if (mergedId == null) {
                throw bad("model.merges[" + rank + "] makes \"" + merged + "\", which is not in model.vocab");
            }
            merges.putIfAbsent(leftId, rightId, rank, mergedId);
        }
        return new BpeModel(vocab, merges, unkId, bool(m, "fuse_unk", false), bool(m, "byte_fallback", false),
                bool(m, "ignore_merges", false), prefix, suffix);
    }

    private List<AddedToken> readAddedTokens(JsonNode node) {
        List<AddedToken> list = new ArrayList<>();
        if (node == null || node.isNull()) {
            return list;
        }
        if (!node.isArray()) {
            throw bad("added_tokens is not an array");
        }
        for (int i = 0; i < node.size(); i++) {
            JsonNode t = node.get(i);
            JsonNode id = t.get("id");
            JsonNode content = t.get("content");
            if (id == null || !id.canConvertToInt() || id.asInt() < 0 || content == null || !content.isTextual()) {
                throw bad("added_tokens[" + i + "] needs a non-negative \"id\" and a string \"content\": " + t);
            }
            list.add(new AddedToken(id.asInt(), content.asText(), bool(t, "single_word", false), bool(t, "lstrip", false),
                    bool(t, "rstrip", false), bool(t, "normalized", false), bool(t, "special", false)));
        }
        return list;
    }

    // ---- normalizer, pre-tokenizer, decoder --------------------------------------------------------------

    private Normalizer readNormalizer(JsonNode n, String where) {
        if (n == null || n.isNull()) {
            return null;
        }
        String type = text(n, "type", null);
        if (type == null) {
            throw bad(where + " has no \"type\"");
        }
        return switch (type) {
            case "Sequence" -> {
                List<Normalizer> steps = new ArrayList<>();
                JsonNode list = array(n, "normalizers", where);
                for (int i = 0; i < list.size(); i++) {
                    steps.add(readNormalizer(list.get(i), where + ".normalizers[" + i + "]"));
                }
                yield new Normalizer.Sequence(List.copyOf(steps));
            }
            case "Prepend" -> new Normalizer.Prepend(requiredText(n, "prepend", where));
            case "Replace" -> {
                String content = requiredText(n, "content", where);
                JsonNode pattern = n.get("pattern");
                if (pattern != null && pattern.hasNonNull("String")) {
                    yield new Normalizer.Replace(pattern.get("String").asText(), content);
                }
                yield new Normalizer.ReplaceRegex(regex(pattern, where), content);
            }
            case "NFC" -> new Normalizer.Unicode(java.text.Normalizer.Form.NFC);
            case "NFD" -> new Normalizer.Unicode(java.text.Normalizer.Form.NFD);
            case "NFKC" -> new Normalizer.Unicode(java.text.Normalizer.Form.NFKC);
            case "NFKD" -> new Normalizer.Unicode(java.text.Normalizer.Form.NFKD);
            case "Lowercase" -> new Normalizer.Lowercase();
            case "Strip" -> new Normalizer.Strip(bool(n, "strip_left", true), bool(n, "strip_right", true));
            default -> throw bad(where + ".type \"" + type + "\" is not supported (supported: Sequence, Prepend, "
                    + "Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip)");
        };
    }

    private PreTokenizer readPreTokenizer(JsonNode n, String where) {
        if (n == null || n.isNull()) {
            return null;
        }
        String type = text(n, "type", null);
        if (type == null) {
            throw bad(where + " has no \"type\"");
        }
        return switch (type) {
            case "Sequence" -> {
                List<PreTokenizer> steps = new ArrayList<>();
                JsonNode list = array(n, "pretokenizers", where);
                for (int i = 0; i < list.size(); i++) {
                    steps.add(readPreTokenizer(list.get(i), where + ".pretokenizers[" + i + "]"));
                }
                yield new PreTokenizer.Sequence(List.copyOf(steps));
            }
            case "Metaspace" -> new PreTokenizer.Metaspace(replacementChar(n, where), prependScheme(n, where),
                    bool(n, "split", true));
            default -> throw bad(where + ".type \"" + type + "\" is not supported (supported: Metaspace, Sequence)");
        };
    }

    private TokenDecoder readDecoder(JsonNode n, String where) {
        if (n == null || n.isNull()) {
            return null;
        }
        String type = text(n, "type", null);
        if (type == null) {
            throw bad(where + " has no \"type\"");
        }
        return switch (type) {
            case "Sequence" -> {
                List<TokenDecoder> steps = new ArrayList<>();
                JsonNode list = array(n, "decoders", where);
                for (int i = 0; i < list.size(); i++) {
                    steps.add(readDecoder(list.get(i), where + ".decoders[" + i + "]"));
                }
                yield new TokenDecoder.Sequence(List.copyOf(steps));
            }
            case "Replace" -> {
                JsonNode pattern = n.get("pattern");
                if (pattern == null || !pattern.hasNonNull("String")) {
                    throw bad(where + ".pattern must be {\"String\": ...} (regex patterns are not supported in decoders)");
                }
                yield new TokenDecoder.Replace(pattern.get("String").asText(), requiredText(n, "content", where));
            }
            case "ByteFallback" -> new TokenDecoder.ByteFallback();
            case "Fuse" -> new TokenDecoder.Fuse();
            case "Strip" -> {
                String content = requiredText(n, "content", where);
                if (content.codePointCount(0, content.length()) != 1) {
                    throw bad(where + ".content must be one character: \"" + content + "\"");
                }
                yield new TokenDecoder.Strip(content.codePointAt(0), intField(n, "start", where), intField(n, "stop", where));
            }
            case "Metaspace" -> new TokenDecoder.Metaspace(replacementChar(n, where),
                    prependScheme(n, where) != PreTokenizer.PrependScheme.NEVER);
            default -> throw bad(where + ".type \"" + type + "\" is not supported (supported: Sequence, Replace, "
                    + "ByteFallback, Fuse, Strip, Metaspace)");
        };
    }

    private char replacementChar(JsonNode n, String where) {
        String r = requiredText(n, "replacement", where);
        if (r.length() != 1) {
            throw bad(where + ".replacement must be one character: \"" + r + "\"");
        }
        return r.charAt(0);
    }

    /** {@code prepend_scheme}, or the older {@code add_prefix_space} (true = always, false = never). */
    private PreTokenizer.PrependScheme prependScheme(JsonNode n, String where) {
        String scheme = nullableText(n, "prepend_scheme");
        if (scheme == null) {
            return bool(n, "add_prefix_space", true) ? PreTokenizer.PrependScheme.ALWAYS : PreTokenizer.PrependScheme.NEVER;
        }
        return switch (scheme) {
            case "always" -> PreTokenizer.PrependScheme.ALWAYS;
            case "first" -> PreTokenizer.PrependScheme.FIRST;
            case "never" -> PreTokenizer.PrependScheme.NEVER;
            default -> throw bad(where + ".prepend_scheme \"" + scheme + "\" is not one of always, first, never");
        };
    }

    private Pattern regex(JsonNode pattern, String where) {
        if (pattern == null || !pattern.hasNonNull("Regex")) {
            throw bad(where + ".pattern must be {\"String\": ...} or {\"Regex\": ...}: " + pattern);
        }
        try {
            return Pattern.compile(pattern.get("Regex").asText());
        } catch (PatternSyntaxException e) {
            throw bad(where + ".pattern.Regex does not compile: " + e.getDescription() + " at index " + e.getIndex());
        }
    }

    // ---- special tokens: post_processor and tokenizer_config.json -------------------------------------------

    /** BOS/EOS ids (-1 when absent) and whether plain {@code encode} adds them. */
    private record SpecialIds(int bosId, int eosId, boolean addBos, boolean addEos) {
    }

    /** {@code TemplateProcessing}: the special token before {@code $A} is BOS, the one after it EOS. */
    private SpecialIds readPostProcessor(JsonNode n, Map<String, Integer> vocab, Map<String, Integer> added) {
        if (n == null || n.isNull()) {
            return new SpecialIds(-1, -1, false, false);
        }
        String type = text(n, "type", "");
        if ("Sequence".equals(type)) {
            JsonNode list = array(n, "processors", "post_processor");
            for (JsonNode p : list) {
                if ("TemplateProcessing".equals(text(p, "type", ""))) {
                    return readPostProcessor(p, vocab, added);
                }
            }
            return new SpecialIds(-1, -1, false, false);
        }
        if ("ByteLevel".equals(type)) {
            return new SpecialIds(-1, -1, false, false); // only adjusts offsets
        }
        if (!"TemplateProcessing".equals(type)) {
            throw bad("post_processor.type \"" + type + "\" is not supported (supported: TemplateProcessing, Sequence, ByteLevel)");
        }
        JsonNode single = array(n, "single", "post_processor");
        JsonNode specialTokens = n.get("special_tokens");
        List<Integer> before = new ArrayList<>();
        List<Integer> after = new ArrayList<>();
        boolean seenSequence = false;
        for (JsonNode item : single) {
            if (item.has("Sequence")) {
                seenSequence = true;
            } else if (item.has("SpecialToken")) {
                String name = requiredText(item.get("SpecialToken"), "id", "post_processor.single");
                JsonNode def = specialTokens == null ? null : specialTokens.get(name);
                List<Integer> ids = new ArrayList<>();
                if (def != null && def.has("ids") && def.get("ids").isArray()) {
                    def.get("ids").forEach(id -> ids.add(id.asInt()));
                } else {
                    ids.add(tokenId(name, vocab, added, "post_processor special token"));
                }
                (seenSequence ? after : before).addAll(ids);
            }
        }
        if (before.size() > 1 || after.size() > 1) {
            throw bad("post_processor.single adds " + before + " before and " + after + " after the text; "
                    + "only one BOS before and one EOS after are supported");
        }
        return new SpecialIds(before.isEmpty() ? -1 : before.get(0), after.isEmpty() ? -1 : after.get(0),
                !before.isEmpty(), !after.isEmpty());
    }

    /**
     * {@code tokenizer_config.json} overrides the template the way transformers' Llama tokenizers do:
     * {@code add_bos_token}/{@code add_eos_token} decide what plain encode adds, {@code bos_token}/{@code eos_token}
     * name the tokens. A key that is absent leaves the template's choice in place.
     */
    private SpecialIds readConfig(Path configPath, SpecialIds template, Map<String, Integer> vocab, Map<String, Integer> added) {
        JsonNode c = readJson(configPath, "tokenizer_config.json");
        int bos = template.bosId;
        int eos = template.eosId;
        String bosText = specialTokenText(c, "bos_token", configPath);
        String eosText = specialTokenText(c, "eos_token", configPath);
        if (bosText != null) {
            bos = configTokenId(bosText, vocab, added, configPath, "bos_token");
        }
        if (eosText != null) {
            eos = configTokenId(eosText, vocab, added, configPath, "eos_token");
        }
        boolean addBos = c.hasNonNull("add_bos_token") ? c.get("add_bos_token").asBoolean() : template.addBos;
        boolean addEos = c.hasNonNull("add_eos_token") ? c.get("add_eos_token").asBoolean() : template.addEos;
        return new SpecialIds(bos, eos, addBos, addEos);
    }

    private static String specialTokenText(JsonNode c, String key, Path configPath) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) {
            return null;
        }
        if (v.isTextual()) {
            return v.asText();
        }
        if (v.isObject() && v.hasNonNull("content")) {
            return v.get("content").asText();
        }
        throw CheckpointException.of(configPath, key + " is neither a string nor {\"content\": ...}: " + v);
    }

    private static int configTokenId(String text, Map<String, Integer> vocab, Map<String, Integer> added, Path configPath, String key) {
        Integer id = added.containsKey(text) ? added.get(text) : vocab.get(text);
        if (id == null) {
            throw CheckpointException.of(configPath, key + " \"" + text + "\" is neither an added token nor in the vocabulary");
        }
        return id;
    }

    private int tokenId(String text, Map<String, Integer> vocab, Map<String, Integer> added, String what) {
        Integer id = added.containsKey(text) ? added.get(text) : vocab.get(text);
        if (id == null) {
            throw bad(what + " \"" + text + "\" is neither an added token nor in model.vocab");
        }
        return id;
    }

    // ---- small JSON helpers ----------------------------------------------------------------------------

    private static String text(JsonNode n, String key, String dflt) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? dflt : v.asText();
    }

    private static String nullableText(JsonNode n, String key) {
        return text(n, key, null);
    }

    private String requiredText(JsonNode n, String key, String where) {
        JsonNode v = n.get(key);
        if (v == null || !v.isTextual()) {
            throw bad(where + "." + key + " is missing or not a string");
        }
        return v.asText();
    }

    private int intField(JsonNode n, String key, String where) {
        JsonNode v = n.get(key);
        if (v == null || !v.canConvertToInt() || v.asInt() < 0) {
            throw bad(where + "." + key + " is missing or not a non-negative integer");
        }
        return v.asInt();
    }

    private static boolean bool(JsonNode n, String key, boolean dflt) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? dflt : v.asBoolean();
    }

    private JsonNode array(JsonNode n, String key, String where) {
        JsonNode v = n.get(key);
        if (v == null || !v.isArray()) {
            throw bad(where + "." + key + " is missing or not an array");
        }
        return v;
    }
}
