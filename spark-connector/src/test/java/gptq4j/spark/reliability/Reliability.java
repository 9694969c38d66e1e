package gptq4j.spark.reliability;

import gptq4j.spark.Fixtures;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.util.ArrowUtils;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

/** Shared pieces of the reliability tests: a session on the golden fixture model, memory and thread probes. */
final class Reliability {

    private Reliability() { }

    /** A session on {@code master} with the fixture model on the CPU and Spark's own bookkeeping kept small. */
    static SparkSession.Builder session(String master, String app) {
        SparkSession active = SparkSession.getActiveSession().isDefined() ? SparkSession.getActiveSession().get() : null;
        if (active != null) active.stop();
        return SparkSession.builder()
                .master(master)
                .appName(app)
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.ui.retainedJobs", "20")
                .config("spark.ui.retainedStages", "20")
                .config("spark.ui.retainedTasks", "200")
                .config("spark.sql.ui.retainedExecutions", "5")
                .config("spark.gptq4j.model", Fixtures.model().toString())
                .config("spark.gptq4j.device", "cpu");
    }

    /** One line of figures for the README, easy to find in the surefire output. */
    static void figure(String test, String text) {
        System.out.println("RELIABILITY " + test + ": " + text);
    }

    /** Bytes of used heap after full collections (the smallest of a few readings). */
    static long usedHeapAfterGc() {
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 4; i++) {
            System.gc();
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            best = Math.min(best, ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
        }
        return best;
    }

    /** Bytes held by NIO direct buffers (BufferPoolMXBean "direct"). */
    static long directBytes() {
        for (BufferPoolMXBean b : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            if (b.getName().equals("direct")) return b.getMemoryUsed();
        }
        throw new AssertionError("no direct buffer pool MXBean");
    }

    /** Bytes Spark's Arrow root allocator (which the connector's per-task allocators hang off) has outstanding. */
    static long arrowBytes() {
        return ArrowUtils.rootAllocator().getAllocatedMemory();
    }

    /** Child allocators of Spark's Arrow root allocator still open. */
    static int arrowChildren() {
        BufferAllocator root = ArrowUtils.rootAllocator();
        return root.getChildAllocators().size();
    }

    /** Names of live threads starting with {@code prefix}. */
    static List<String> threads(String prefix) {
        List<String> out = new ArrayList<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.isAlive() && t.getName().startsWith(prefix)) out.add(t.getName());
        }
        out.sort(null);
        return out;
    }

    /** Waits up to {@code millis} for {@code condition}; returns whether it held. */
    static boolean eventually(long millis, BooleanSupplier condition) {
        long end = System.nanoTime() + millis * 1_000_000;
        while (true) {
            if (condition.getAsBoolean()) return true;
            if (System.nanoTime() > end) return false;
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
    }
}
