package gptq4j.notebook.kernel;

/**
 * Carries an {@link Error} (or another non-{@link Exception} throwable) that cell code threw out to Jupyter, which
 * only reports exceptions; the cause is the original.
 */
final class CellError extends RuntimeException {
    CellError(Throwable cause) {
        super(cause.toString(), cause);
    }
}
