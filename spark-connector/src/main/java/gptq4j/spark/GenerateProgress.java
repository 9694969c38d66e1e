package gptq4j.spark;

import org.apache.spark.SparkContext;
import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerEvent;
import org.apache.spark.scheduler.SparkListenerExecutorMetricsUpdate;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.SparkPlanInfo;
import org.apache.spark.sql.execution.metric.SQLMetricInfo;
import org.apache.spark.sql.execution.ui.SparkListenerSQLAdaptiveExecutionUpdate;
import org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart;
import scala.jdk.javaapi.CollectionConverters;

import java.io.PrintStream;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A driver-side progress line for jobs that call generate: rows done (of a known total), generated tokens, tokens/s
 * of wall time since {@link #start}, and an ETA, printed every {@code intervalMillis} while the numbers change and
 * once more by {@link #close()}.
 * <p>
 * It reads the SQL metrics of the {@code GenerateBatch} operators of the queries that start while it is attached:
 * finished tasks through task-end events, running tasks through the executor heartbeats
 * ({@code spark.executor.heartbeatInterval}), which carry their current metric values (the operator updates them
 * after every batch).
 * <pre>
 *   try (GenerateProgress p = GenerateProgress.start(spark, df.count(), System.err, 5_000)) {
 *       df.withColumn("out", generate(col("prompt"))).write().parquet(out);
 *   }
 * </pre>
 */
public final class GenerateProgress extends SparkListener implements AutoCloseable {

    static final String NODE = "GenerateBatch";
    static final String ROWS = "number of output rows";
    static final String TOKENS = "generated tokens";

    private final SparkContext sc;
    private final long totalRows;
    private final PrintStream out;
    private final long startNanos = System.nanoTime();
    private volatile long endNanos;
    private final Thread printer;

    /** Accumulator ids of the operators' row and token metrics, by operator (its row metric id). */
    private final Map<Long, Long> tokenIdByRowId = new HashMap<>();
    private final Set<Long> tokenIds = new HashSet<>();
    /** Values of finished, successful tasks, by accumulator id. */
    private final Map<Long, Long> finished = new HashMap<>();
    /** Latest heartbeat values of running tasks: task id → accumulator id → value. */
    private final Map<Long, Map<Long, Long>> running = new HashMap<>();
    private String lastPrinted = "";
    private boolean closed;

    private GenerateProgress(SparkContext sc, long totalRows, PrintStream out, long intervalMillis) {
        this.sc = sc;
        this.totalRows = totalRows;
        this.out = out;
        if (intervalMillis > 0) {
            printer = new Thread(() -> {
                try {
                    while (true) {
                        Thread.sleep(intervalMillis);
                        printIfChanged();
                    }
                } catch (InterruptedException e) {
                    // closed
                }
            }, "gptq4j-progress");
            printer.setDaemon(true);
        } else {
            printer = null;
        }
    }

    /**
     * Attaches a progress listener to the session's context.
     *
     * @param totalRows      rows the job will produce (≤ 0 when unknown: no percentage or ETA)
     * @param out            where the lines go (null: nowhere; read {@link #line()} instead)
     * @param intervalMillis how often to print while running (≤ 0: only at {@link #close()})
     */
    public static GenerateProgress start(SparkSession spark, long totalRows, PrintStream out, long intervalMillis) {
        GenerateProgress p = new GenerateProgress(spark.sparkContext(), totalRows, out, intervalMillis);
        spark.sparkContext().addSparkListener(p);
        if (p.printer != null) p.printer.start();
        return p;
    }

    @Override
    public void onOtherEvent(SparkListenerEvent event) {
        if (event instanceof SparkListenerSQLExecutionStart s) register(s.sparkPlanInfo());
        else if (event instanceof SparkListenerSQLAdaptiveExecutionUpdate u) register(u.sparkPlanInfo());
    }

    private synchronized void register(SparkPlanInfo node) {
        if (node.nodeName().equals(NODE)) {
            Long rows = null, tokens = null;
            for (SQLMetricInfo m : CollectionConverters.asJava(node.metrics())) {
                if (m.name().equals(ROWS)) rows = m.accumulatorId();
                if (m.name().equals(TOKENS)) tokens = m.accumulatorId();
            }
            if (rows != null && tokens != null) {
                tokenIdByRowId.put(rows, tokens);
                tokenIds.add(tokens);
            }
        }
        for (SparkPlanInfo c : CollectionConverters.asJava(node.children())) register(c);
    }

    @Override
    public synchronized void onExecutorMetricsUpdate(SparkListenerExecutorMetricsUpdate update) {
        for (var t : CollectionConverters.asJava(update.accumUpdates())) {
            long taskId = (Long) t._1();
            Map<Long, Long> values = running.computeIfAbsent(taskId, k -> new HashMap<>());
            for (AccumulableInfo a : CollectionConverters.asJava(t._4())) {
                if (tracked(a.id()) && a.update().isDefined() && a.update().get() instanceof Long v) values.put(a.id(), v);
            }
        }
    }

    @Override
    public synchronized void onTaskEnd(SparkListenerTaskEnd end) {
        running.remove(end.taskInfo().taskId());
        if (!end.taskInfo().successful()) return;
        for (AccumulableInfo a : CollectionConverters.asJava(end.taskInfo().accumulables())) {
            if (tracked(a.id()) && a.update().isDefined() && a.update().get() instanceof Long v) finished.merge(a.id(), v, Long::sum);
        }
    }

    private boolean tracked(long id) {
        return tokenIdByRowId.containsKey(id) || tokenIds.contains(id);
    }

    private long current(long id) {
        long v = finished.getOrDefault(id, 0L);
        for (Map<Long, Long> t : running.values()) v += t.getOrDefault(id, 0L);
        return v;
    }

    /** Rows done: of the operator furthest along when a query has several (nested calls). */
    public synchronized long rows() {
        long max = 0;
        for (Long id : tokenIdByRowId.keySet()) max = Math.max(max, current(id));
        return max;
    }

    /** Generated tokens so far, over all operators. */
    public synchronized long generatedTokens() {
        long sum = 0;
        for (Long id : tokenIds) sum += current(id);
        return sum;
    }

    /** Seconds since start, up to {@link #close()}. */
    public double elapsedSeconds() {
        long end = endNanos;
        return ((end != 0 ? end : System.nanoTime()) - startNanos) / 1e9;
    }

    /** Generated tokens per second of wall time since start. */
    public double tokensPerSecond() {
        double s = elapsedSeconds();
        return s <= 0 ? 0 : generatedTokens() / s;
    }

    /** The progress line, e.g. {@code 120/301 rows (40%)  1920 tokens  45.3 tok/s  elapsed 0:42  ETA 1:03}. */
    public String line() {
        long rows = rows(), tokens = generatedTokens();
        double s = elapsedSeconds();
        StringBuilder b = new StringBuilder();
        if (totalRows > 0) {
            b.append(String.format(Locale.ROOT, "%d/%d rows (%d%%)", rows, totalRows, Math.min(100, rows * 100 / totalRows)));
        } else {
            b.append(rows).append(" rows");
        }
        b.append(String.format(Locale.ROOT, "  %d tokens  %.1f tok/s  elapsed %s", tokens, s <= 0 ? 0 : tokens / s, clock(s)));
        if (totalRows > 0 && rows > 0 && rows < totalRows) b.append("  ETA ").append(clock(s * (totalRows - rows) / rows));
        return b.toString();
    }

    private static String clock(double seconds) {
        long t = Math.round(seconds);
        return t >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60)
                : String.format(Locale.ROOT, "%d:%02d", t / 60, t % 60);
    }

    private void printIfChanged() {
        String key = rows() + "/" + generatedTokens();
        synchronized (this) {
            if (closed || out == null || key.equals(lastPrinted) || key.equals("0/0")) return;
            lastPrinted = key;
        }
        out.println("progress: " + line());
        out.flush();
    }

    /** Waits for the listener bus to deliver the job's events, prints the final line, detaches. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            endNanos = System.nanoTime();
        }
        if (printer != null) printer.interrupt();
        try {
            sc.listenerBus().waitUntilEmpty(10_000);
        } catch (Exception e) {
            // a TimeoutException: the final figures may miss the last task; still print and detach
        }
        synchronized (this) {
            closed = true;
        }
        sc.removeSparkListener(this);
        if (out != null) {
            out.println("progress: " + line());
            out.flush();
        }
    }
}
