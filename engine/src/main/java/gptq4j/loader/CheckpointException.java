package gptq4j.loader;

import java.nio.file.Path;

/**
 * A checkpoint that cannot be loaded: the message names the file, the tensor or key, and what is wrong.
 * Every loader failure (bad header, missing shard, wrong shape, unsupported quantisation) ends in this type.
 */
public class CheckpointException extends RuntimeException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }

    public static CheckpointException of(Path file, String what) {
        return new CheckpointException(file + ": " + what);
    }
}
