package gptq4j.tokenizer;

/**
 * Turns generated token ids into text one id at a time.
 *
 * <p>Contract: the strings returned by {@link #push} and the final {@link #flush} concatenate to exactly
 * {@link Tokenizer#decode(int[])} of the pushed ids (for a decoder made with a context, to
 * {@code decode(context ++ pushed)} minus {@code decode(context)}). Consequences:
 * <ul>
 *   <li>Byte-fallback tokens ({@code <0xE2><0x82><0xAC>}) are held until the run of them ends (at the next
 *       ordinary token or at flush), so a UTF-8 character is never split. The whole run is held, not just an
 *       incomplete character, because HF decode turns a run that is invalid anywhere into one U+FFFD per byte,
 *       so text already valid could still change.</li>
 *   <li>Special tokens (EOS) produce no text; they are held like byte tokens because decode skips them, joining
 *       the byte runs on either side.</li>
 *   <li>Without a context, the first piece's "▁" is dropped (Mixtral's decoder strips one leading space), exactly
 *       as HF decode of the generated ids alone; with the prompt as context it becomes a space.</li>
 * </ul>
 *
 * <p>How: it keeps a short window of already emitted ids whose text is non-empty (so the decoder's start-of-text
 * rules, Strip and Metaspace's first token, are used up inside the window), decodes window + new ids, and
 * returns what extends the window's text. Cost per token is the size of the window, usually one or two ids.
 * Not thread-safe: one per sequence.
 */
public final class StreamDecoder {
    private final Tokenizer tokenizer;
    /** ids from the start of the window; {@code ids[0, committed)} is the window, the rest is pending. */
    private final IntList ids = new IntList(16);
    private int committed;
    /** decode of the window. */
    private String windowText = "";
    private boolean flushed;

    StreamDecoder(Tokenizer tokenizer, int[] contextIds) {
        this.tokenizer = tokenizer;
        for (int id : contextIds) {
            ids.add(tokenizer.checkId(id));
        }
        if (contextIds.length > 0) {
            commit();
        }
    }

    /** Adds one generated id; returns the text that is now final (often empty while a byte run is open). */
    public String push(int tokenId) {
        if (flushed) {
            throw new IllegalStateException("push after flush: a StreamDecoder decodes one sequence; make a new one");
        }
        ids.add(tokenizer.checkId(tokenId));
        if (tokenizer.heldInStream(tokenId)) {
            return "";
        }
        return commit();
    }

    /** Ends the sequence and returns the text still held (an unterminated byte run). */
    public String flush() {
        if (flushed) {
            return "";
        }
        flushed = true;
        return committed == ids.size() ? "" : commit();
    }

    /** Emits the text of all pending ids and makes them part of the window. */
    private String commit() {
        int size = ids.size();
        String text = tokenizer.decode(ids, 0, size);
        if (!text.startsWith(windowText)) {
            throw new IllegalStateException("tokenizer decoder is not incremental: decode of the window \"" + windowText
                    + "\" is not a prefix of decode with the next ids \"" + text + "\"");
        }
        String delta = text.substring(windowText.length());
        String segmentText = tokenizer.decode(ids, committed, size);
        if (!segmentText.isEmpty() && committed > 0) {
            ids.dropFirst(committed);
            windowText = segmentText;
        } else {
            windowText = text;
        }
        committed = ids.size();
        return delta;
    }
}
