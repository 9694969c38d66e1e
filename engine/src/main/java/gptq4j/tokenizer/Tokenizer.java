package gptq4j.tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A Hugging Face {@code tokenizer.json} BPE tokenizer with byte fallback, producing the same ids as the
 * Hugging Face tokenizers library for both layouts Mixtral ships in (normalizer Prepend + Replace with no
 * pre-tokenizer, or a Metaspace pre-tokenizer).
 *
 * <p>Encoding: the text (invalid UTF-16, i.e. unpaired surrogates, replaced by U+FFFD) is cut at added tokens
 * (special ones only when special tokens are parsed); each remaining piece is normalized, cut at added tokens
 * marked {@code normalized}, pre-tokenized, and BPE-encoded; BOS/EOS are added per
 * {@code tokenizer_config.json} ({@code add_bos_token}, {@code add_eos_token}) or, without it, per the
 * {@code post_processor} template.
 *
 * <p>Decoding skips special tokens and runs the file's {@code decoder}, like HF
 * {@code decode(ids, skip_special_tokens=True)}; for Mixtral that strips one leading space of the result.
 *
 * <p>Immutable and safe to share between threads.
 */
public final class Tokenizer {
    private final BpeModel model;
    private final String[] idToText;
    private final boolean[] special;
    private final boolean[] streamHeld;
    private final Normalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final TokenDecoder decoder;
    private final AddedTokenMatcher rawAll;
    private final AddedTokenMatcher rawNonSpecial;
    private final AddedTokenMatcher normalizedAll;
    private final AddedTokenMatcher normalizedNonSpecial;
    private final int bosId;
    private final int eosId;
    private final boolean addBos;
    private final boolean addEos;

    Tokenizer(BpeModel model, String[] idToText, boolean[] special, List<AddedToken> added, Normalizer normalizer,
              PreTokenizer preTokenizer, TokenDecoder decoder, int bosId, int eosId, boolean addBos, boolean addEos) {
        this.model = model;
        this.idToText = idToText;
        this.special = special;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.decoder = decoder;
        this.bosId = bosId;
        this.eosId = eosId;
        this.addBos = addBos;
        this.addEos = addEos;
        List<AddedToken> raw = new ArrayList<>();
        List<AddedToken> norm = new ArrayList<>();
        for (AddedToken t : added) {
            (t.normalized() ? norm : raw).add(t);
        }
        this.rawAll = new AddedTokenMatcher(raw);
        this.rawNonSpecial = new AddedTokenMatcher(raw.stream().filter(t -> !t.special()).toList());
        this.normalizedAll = new AddedTokenMatcher(norm);
        this.normalizedNonSpecial = new AddedTokenMatcher(norm.stream().filter(t -> !t.special()).toList());
        boolean byteRuns = decoder != null && decoder.handlesByteFallback();
        this.streamHeld = new boolean[idToText.length];
        for (int id = 0; id < idToText.length; id++) {
            streamHeld[id] = special[id]
                    || (byteRuns && idToText[id] != null && TokenDecoder.ByteFallback.byteValue(idToText[id]) >= 0);
        }
    }

    /**
     * Loads {@code modelDir/tokenizer.json}, with {@code modelDir/tokenizer_config.json} when that file exists.
     *
     * @throws gptq4j.loader.CheckpointException if tokenizer.json is missing or invalid (the message names the file)
     */
    public static Tokenizer load(Path modelDir) {
        Path config = modelDir.resolve("tokenizer_config.json");
        return fromFiles(modelDir.resolve("tokenizer.json"), Files.isRegularFile(config) ? config : null);
    }

    /**
     * Loads a {@code tokenizer.json} and, if not null, a {@code tokenizer_config.json}.
     *
     * @throws gptq4j.loader.CheckpointException if a file is missing or invalid (the message names the file)
     */
    public static Tokenizer fromFiles(Path tokenizerJson, Path tokenizerConfigOrNull) {
        return TokenizerLoader.load(tokenizerJson, tokenizerConfigOrNull);
    }

    /** Encodes like HF {@code encode(text)}: special tokens in the text are parsed; BOS/EOS as configured. */
    public int[] encode(String text) {
        return encode(text, addBos, true);
    }

    /**
     * Encodes {@code text}.
     *
     * @param addBos             whether to put BOS first (if this tokenizer has one)
     * @param parseSpecialTokens true: special added tokens written in the text ({@code "<s>"}) become their ids, as
     *                           HF does by default; false: they are ordinary text (HF {@code split_special_tokens}),
     *                           which is what untrusted prompt text should get. EOS is appended only when the
     *                           configuration says so ({@code add_eos_token}), in both overloads.
     */
    public int[] encode(String text, boolean addBos, boolean parseSpecialTokens) {
        String clean = Utf16.replaceUnpairedSurrogates(text);
        IntList out = new IntList(clean.length() / 3 + 4);
        if (addBos && bosId >= 0) {
            out.add(bosId);
        }
        AddedTokenMatcher raw = parseSpecialTokens ? rawAll : rawNonSpecial;
        AddedTokenMatcher norm = parseSpecialTokens ? normalizedAll : normalizedNonSpecial;
        for (AddedTokenMatcher.Piece piece : splitOrWhole(raw, clean, 0)) {
            if (piece.isToken()) {
                out.add(piece.tokenId());
                continue;
            }
            String normalized = normalizer == null ? piece.text() : normalizer.normalize(piece.text());
            for (AddedTokenMatcher.Piece sub : splitOrWhole(norm, normalized, piece.offset())) {
                if (sub.isToken()) {
                    out.add(sub.tokenId());
                } else if (preTokenizer == null) {
                    model.encodeWord(sub.text(), out);
                } else {
                    for (String word : preTokenizer.split(sub.text(), sub.offset() == 0)) {
                        model.encodeWord(word, out);
                    }
                }
            }
        }
        if (addEos && eosId >= 0) {
            out.add(eosId);
        }
        return out.toArray();
    }

    private static List<AddedTokenMatcher.Piece> splitOrWhole(AddedTokenMatcher matcher, String text, int offset) {
        if (matcher.isEmpty()) {
            return text.isEmpty() ? List.of() : List.of(new AddedTokenMatcher.Piece(text, -1, offset));
        }
        return matcher.split(text, offset);
    }

    /** Decodes like HF {@code decode(ids, skip_special_tokens=True)}. */
    public String decode(int[] ids) {
        return decode(ids, 0, ids.length);
    }

    /** Decodes {@code ids[from, to)} as if it were the whole sequence. */
    public String decode(int[] ids, int from, int to) {
        if (from < 0 || to > ids.length || from > to) {
            throw new IndexOutOfBoundsException("range [" + from + ", " + to + ") of " + ids.length + " ids");
        }
        List<String> tokens = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            int id = checkId(ids[i]);
            if (!special[id] && idToText[id] != null) {
                tokens.add(idToText[id]);
            }
        }
        return decodeTokens(tokens);
    }

    String decode(IntList ids, int from, int to) {
        List<String> tokens = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            int id = ids.get(i);
            if (!special[id] && idToText[id] != null) {
                tokens.add(idToText[id]);
            }
        }
        return decodeTokens(tokens);
    }

    private String decodeTokens(List<String> tokens) {
        if (decoder == null) {
            return String.join(" ", tokens);
        }
        return String.join("", decoder.decodeChain(tokens));
    }

    /**
     * An incremental decoder for generated ids whose pushes and flush concatenate to {@code decode(generatedIds)}
     * (so a leading "▁" of the first generated piece is dropped, as HF decode of the generated ids does).
     */
    public StreamDecoder streamDecoder() {
        return new StreamDecoder(this, new int[0]);
    }

    /**
     * An incremental decoder that continues after {@code contextIds} (e.g. the prompt): the pushes and flush
     * concatenate to {@code decode(context ++ generated)} minus {@code decode(context)}, so the first generated
     * piece keeps its leading space. Exact when the context does not end inside a byte-fallback run.
     */
    public StreamDecoder streamDecoder(int[] contextIds) {
        return new StreamDecoder(this, contextIds.clone());
    }

    /** Number of token ids (one more than the largest id of the vocabulary and the added tokens). */
    public int vocabSize() {
        return idToText.length;
    }

    /** Id of the beginning-of-sequence token, -1 when there is none. */
    public int bosId() {
        return bosId;
    }

    /** Id of the end-of-sequence token, -1 when there is none. */
    public int eosId() {
        return eosId;
    }

    /** Whether plain {@link #encode(String)} puts BOS first. */
    public boolean addsBos() {
        return addBos;
    }

    /** The raw vocabulary piece of {@code id}, e.g. {@code "▁Hello"} or {@code "<0x0A>"}; null for an unused id. */
    public String tokenText(int id) {
        return idToText[checkId(id)];
    }

    /** Whether {@code id} is a special added token ({@code <s>}, {@code </s>}, {@code <unk>}), which decode skips. */
    public boolean isSpecial(int id) {
        return special[checkId(id)];
    }

    /** Tokens the stream decoder must hold back: special (invisible) and byte-fallback tokens. */
    boolean heldInStream(int id) {
        return streamHeld[id];
    }

    int checkId(int id) {
        if (id < 0 || id >= idToText.length) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + idToText.length + ")");
        }
        return id;
    }
}
