package gptq4j.spark.engine;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/**
 * One engine load in this JVM, for logs, tests and marker files.
 *
 * @param sequence        1 for the JVM's first load, then 2, …
 * @param executorId      Spark executor id ("driver" in local mode), or "none" outside Spark
 * @param pid             this JVM's process id
 * @param model           checkpoint directory
 * @param requestedDevice the device asked for (cuda:N for the task's GPU)
 * @param actualDevice    the device the engine runs on ({@code Engine.device()})
 * @param fallbackReason  why the requested device was not used, or null
 * @param loadMillis      load time
 */
public record EngineLoad(int sequence, String executorId, long pid, String model, String requestedDevice,
                         String actualDevice, String fallbackReason, long loadMillis) {

    /** One line for the executor log. */
    public String logLine() {
        return "gptq4j engine load #" + sequence + " on executor " + executorId + " (pid " + pid + "): model " + model
                + ", requested device " + requestedDevice + ", actual device " + actualDevice
                + (fallbackReason == null ? "" : " (fallback: " + fallbackReason + ")") + ", " + loadMillis + " ms";
    }

    /** Writes {@code engine-load-<executor>-<pid>-<sequence>.properties} under {@code dir}. */
    public Path writeMarker(Path dir) throws IOException {
        Files.createDirectories(dir);
        Properties p = new Properties();
        p.setProperty("sequence", Integer.toString(sequence));
        p.setProperty("executorId", executorId);
        p.setProperty("pid", Long.toString(pid));
        p.setProperty("model", model);
        p.setProperty("requestedDevice", requestedDevice);
        p.setProperty("actualDevice", actualDevice);
        if (fallbackReason != null) p.setProperty("fallbackReason", fallbackReason);
        p.setProperty("loadMillis", Long.toString(loadMillis));
        String safeExec = executorId.replaceAll("[^A-Za-z0-9_.-]", "_");
        Path file = dir.resolve("engine-load-" + safeExec + "-" + pid + "-" + sequence + ".properties");
        Path tmp = dir.resolve(file.getFileName() + ".tmp");
        try (var w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
            p.store(w, "gptq4j engine load");
        }
        return Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /** Reads a marker written by {@link #writeMarker}. */
    public static EngineLoad readMarker(Path file) throws IOException {
        Properties p = new Properties();
        try (var r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            p.load(r);
        }
        return new EngineLoad(Integer.parseInt(p.getProperty("sequence")), p.getProperty("executorId"),
                Long.parseLong(p.getProperty("pid")), p.getProperty("model"), p.getProperty("requestedDevice"),
                p.getProperty("actualDevice"), p.getProperty("fallbackReason"), Long.parseLong(p.getProperty("loadMillis")));
    }
}
