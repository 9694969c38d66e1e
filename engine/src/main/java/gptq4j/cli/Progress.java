package gptq4j.cli;

import gptq4j.runtime.Engine;
import gptq4j.runtime.GenerationResult;

import java.io.PrintStream;

/** A one-line progress bar on stderr: rows done, generated tokens/s, ETA. Redrawn at most twice a second. */
final class Progress {
    private final PrintStream err;
    private final long total;
    private final boolean enabled;
    private final Engine engine;
    private final long start = System.nanoTime();
    private long rows;
    private long tokens;
    private long lastDraw;

    Progress(PrintStream err, long total, boolean enabled, Engine engine) {
        this.err = err;
        this.total = total;
        this.enabled = enabled;
        this.engine = engine;
    }

    void row(GenerationResult r) {
        rows++;
        if (r != null) tokens += r.completionTokens();
        long now = System.nanoTime();
        if (enabled && (now - lastDraw > 500_000_000L || rows == total)) {
            lastDraw = now;
            draw(now);
        }
    }

    private void draw(long now) {
        double s = (now - start) / 1e9;
        double rate = rows / Math.max(s, 1e-9);
        long eta = rate > 0 ? (long) ((total - rows) / rate) : 0;
        int width = 30;
        int filled = total > 0 ? (int) (width * rows / total) : 0;
        err.printf("\r[%s%s] %d/%d rows  %.1f tok/s  elapsed %ds  ETA %ds   ",
                "#".repeat(filled), ".".repeat(width - filled), rows, total, tokens / Math.max(s, 1e-9), (long) s, eta);
        err.flush();
    }

    void done() {
        if (!enabled) return;
        draw(System.nanoTime());
        err.println();
        err.println("done: " + rows + " rows, " + tokens + " generated tokens on " + engine.device() + "; " + engine.stats());
    }
}
