package gptq4j.loader;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A checkpoint that cannot be loaded: the message names the file, the tensor or key, and what is wrong.
 * Every loader failure (bad header, missing shard, wrong shape, unsupported quantisation) ends in this type.
 * The message is always one line (line breaks from parser messages are folded), so a command line can print
 * it as one {@code error: …} line.
 */
public class CheckpointException extends RuntimeException {
    public CheckpointException(String message) {
        super(oneLine(message));
    }

    public CheckpointException(String message, Throwable cause) {
        super(oneLine(message), cause);
    }

    public static CheckpointException of(Path file, String what) {
        return new CheckpointException(file + ": " + what);
    }

    /** A JSON parser's complaint without its multi-line source excerpt: "what (line L, column C)". */
    public static String jsonProblem(IOException e) {
        if (e instanceof JsonProcessingException j) {
            JsonLocation at = j.getLocation();
            String what = j.getOriginalMessage();
            return at == null || at.getLineNr() < 0 ? what : what + " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
        }
        return String.valueOf(e.getMessage());
    }

    private static String oneLine(String s) {
        return s == null ? null : s.replaceAll("\\s*[\\r\\n]+\\s*", " ").strip();
    }
}
