package gptq4j.spark.execution;

/**
 * Counters of one task: rows, tokens, and engine time measured as the time at least one batch was in flight
 * (batches overlap, so summing their latencies would overcount). Thread-safe.
 */
final class TaskStats {

    private long rows, promptTokens, completionTokens, errorRows, nullRows, batches;
    private long inFlight, busySince, busyNanos;

    synchronized void batchSubmitted() {
        if (inFlight++ == 0) busySince = System.nanoTime();
    }

    synchronized void batchFinished() {
        if (--inFlight == 0) busyNanos += System.nanoTime() - busySince;
    }

    synchronized void addBatch(long rows, long promptTokens, long completionTokens, long errorRows, long nullRows) {
        this.rows += rows;
        this.promptTokens += promptTokens;
        this.completionTokens += completionTokens;
        this.errorRows += errorRows;
        this.nullRows += nullRows;
        this.batches++;
    }

    synchronized long rows() { return rows; }
    synchronized long promptTokens() { return promptTokens; }
    synchronized long completionTokens() { return completionTokens; }
    synchronized long errorRows() { return errorRows; }
    synchronized long nullRows() { return nullRows; }
    synchronized long batches() { return batches; }

    synchronized long engineNanos() {
        return busyNanos + (inFlight > 0 ? System.nanoTime() - busySince : 0);
    }

    /** Generated tokens per second of engine time (0 when nothing ran). */
    synchronized double tokensPerSecond() {
        long ns = engineNanos();
        return ns == 0 ? 0 : completionTokens * 1e9 / ns;
    }

    /** The per-task log line. */
    String summary(String task, String requested, String device) {
        return String.format(java.util.Locale.ROOT,
                "gptq4j %s: %d rows (%d null, %d error) in %d batches, %d prompt tokens, %d generated tokens, "
                        + "engine %.3f s, %.1f tokens/s, device %s (requested %s)",
                task, rows(), nullRows(), errorRows(), batches(), promptTokens(), completionTokens(),
                engineNanos() / 1e9, tokensPerSecond(), device, requested);
    }
}
