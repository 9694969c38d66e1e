package gptq4j.notebook.kernel;

import java.util.List;

/**
 * A cell that JShell rejected (a syntax or type error, or a declaration that needs a class the classpath lacks).
 * Jupyter shows it as {@code CompilationError} with {@link #lines()}: each diagnostic and the source line it points at.
 */
final class CompilationError extends RuntimeException {
    private final List<String> lines;

    CompilationError(List<String> lines) {
        // the message is the whole report (Jupyter's execute reply carries only the message and this exception's
        // stack, which would be the kernel's own frames: there is none)
        super(String.join("\n", lines), null, false, false);
        this.lines = List.copyOf(lines);
    }

    List<String> lines() { return lines; }
}
