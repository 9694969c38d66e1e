package gptq4j.spark.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptq4j.runtime.GenerationResult;
import gptq4j.spark.Fixtures;
import gptq4j.spark.engine.EngineLoad;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static gptq4j.spark.cluster.StandaloneCluster.SPARK_FLAGS;
import static gptq4j.spark.cluster.StandaloneCluster.freePort;
import static gptq4j.spark.cluster.StandaloneCluster.javaBin;
import static gptq4j.spark.cluster.StandaloneCluster.sparkHome;
import static gptq4j.spark.cluster.StandaloneCluster.stopAll;
import static gptq4j.spark.cluster.StandaloneCluster.tails;
import static gptq4j.spark.cluster.StandaloneCluster.testClasspath;
import static gptq4j.spark.cluster.StandaloneCluster.waitForLog;
import static gptq4j.spark.cluster.StandaloneCluster.waitForPort;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A standalone Master and two Workers started from the Maven jars on 127.0.0.1, each Worker with one fake GPU
 * ("0" and "1") from a discovery script; {@link ClusterJob} submitted through SparkSubmit with one GPU per executor
 * and half a GPU per task. Checks: each executor loaded the engine exactly once over three stages and 26 tasks, bound
 * to its executor's GPU address (the engine falls back to the CPU: no real GPU), and no row is lost or duplicated.
 */
class ClusterTest {

    static final int ROWS = 240;

    private final List<Process> processes = new ArrayList<>();

    @Test
    @Timeout(value = 9, unit = TimeUnit.MINUTES)
    void twoWorkersWithFakeGpusLoadOneEngineEachOnTheirGpu(@TempDir Path dir) throws Exception {
        Path model = Fixtures.model();
        List<String> classpath = testClasspath();
        Path sparkHome = sparkHome(dir.resolve("spark-home"), classpath, e -> false);
        Path markers = dir.resolve("markers");
        Path out = dir.resolve("out");
        try {
            int masterPort = freePort();
            start(dir, "master", sparkHome, List.of("-Xmx256m"), "org.apache.spark.deploy.master.Master",
                    "--host", "127.0.0.1", "--port", Integer.toString(masterPort), "--webui-port", Integer.toString(freePort()));
            waitForPort(masterPort, 90, dir);
            String master = "spark://127.0.0.1:" + masterPort;
            for (int w = 0; w < 2; w++) {
                Path script = dir.resolve("gpu" + w + ".sh");
                Files.writeString(script, "#!/bin/sh\necho '{\"name\":\"gpu\",\"addresses\":[\"" + w + "\"]}'\n");
                Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
                start(dir, "worker" + w, sparkHome, List.of("-Xmx256m", "-Dspark.worker.resource.gpu.amount=1",
                                "-Dspark.worker.resource.gpu.discoveryScript=" + script),
                        "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "2", "--memory", "1g",
                        "--webui-port", Integer.toString(freePort()), "--work-dir", dir.resolve("work" + w).toString(), master);
            }
            waitForLog(dir.resolve("worker0.log"), "Successfully registered with master", 90, dir);
            waitForLog(dir.resolve("worker1.log"), "Successfully registered with master", 90, dir);

            String executorCp = String.join(File.pathSeparator, System.getProperty("gptq4j.main.classes"),
                    System.getProperty("gptq4j.test.classes"), engineClasses(classpath));
            Path appJar = appJar(dir.resolve("cluster-job.jar"));
            Process submit = start(dir, "submit", sparkHome, List.of("-Xmx768m"), "org.apache.spark.deploy.SparkSubmit",
                    "--master", master, "--deploy-mode", "client", "--class", ClusterJob.class.getName(),
                    "--conf", "spark.ui.enabled=false",
                    "--conf", "spark.driver.host=127.0.0.1",
                    "--conf", "spark.executor.cores=2",
                    "--conf", "spark.executor.memory=640m",
                    "--conf", "spark.cores.max=4",
                    "--conf", "spark.executor.resource.gpu.amount=1",
                    "--conf", "spark.task.resource.gpu.amount=0.5",
                    "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",
                    "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=120s",
                    "--conf", "spark.sql.shuffle.partitions=4",
                    "--conf", "spark.executor.extraClassPath=" + executorCp,
                    "--conf", "spark.executor.extraJavaOptions=" + SPARK_FLAGS,
                    "--conf", "spark.gptq4j.model=" + model,
                    "--conf", "spark.gptq4j.engine.markerDir=" + markers,
                    "--conf", "spark.gptq4j.threads=1",
                    "--conf", "spark.gptq4j.kvCacheBytes=" + (16 << 20),
                    "--conf", "spark.gptq4j.rowsPerBatch=8",
                    "--conf", "spark.gptq4j.sampling.temperature=0",
                    "--conf", "spark.gptq4j.sampling.maxNewTokens=6",
                    appJar.toString(), Integer.toString(ROWS), out.toString());
            if (!submit.waitFor(6, TimeUnit.MINUTES)) fail("SparkSubmit did not finish in 6 minutes\n" + tails(dir));
            assertEquals(0, submit.exitValue(), "SparkSubmit failed\n" + tails(dir));
            check(markers, out, dir);
        } finally {
            stopAll(processes);
        }
    }

    private void check(Path markerDir, Path out, Path dir) throws IOException {
        // engine loads: one marker per executor
        List<EngineLoad> loads = new ArrayList<>();
        try (Stream<Path> s = Files.list(markerDir)) {
            for (Path p : s.filter(p -> p.toString().endsWith(".properties")).toList()) loads.add(EngineLoad.readMarker(p));
        }
        Map<String, List<EngineLoad>> byExecutor = loads.stream().collect(Collectors.groupingBy(EngineLoad::executorId));
        assertEquals(2, byExecutor.size(), "two executors loaded engines: " + loads + "\n" + tails(dir));
        for (Map.Entry<String, List<EngineLoad>> e : byExecutor.entrySet()) {
            assertEquals(1, e.getValue().size(), "executor " + e.getKey() + " loaded the engine once: " + e.getValue());
        }
        assertEquals(Set.of("cuda:0", "cuda:1"), loads.stream().map(EngineLoad::requestedDevice).collect(Collectors.toSet()));
        for (EngineLoad l : loads) {
            assertTrue(l.actualDevice().startsWith("cpu"), "no real GPU, so the engine runs on the CPU: " + l);
            assertNotNull(l.fallbackReason(), l.toString());
            assertTrue(l.executorId().matches("\\d+"), "loaded on an executor, not the driver: " + l);
        }

        // rows: every id once; each task's GPU is its executor's, and the engine of that executor was bound to it
        ObjectMapper json = new ObjectMapper();
        Map<Long, JsonNode> rows = new TreeMap<>();
        try (Stream<Path> s = Files.list(out)) {
            for (Path p : s.filter(p -> p.getFileName().toString().startsWith("part-")).toList()) {
                for (String line : Files.readAllLines(p, StandardCharsets.UTF_8)) {
                    if (line.isBlank()) continue;
                    JsonNode n = json.readTree(line);
                    JsonNode prev = rows.put(n.get("id").asLong(), n);
                    assertTrue(prev == null, "row " + n.get("id") + " duplicated");
                }
            }
        }
        assertEquals(ROWS, rows.size(), "no row lost");
        for (long i = 0; i < ROWS; i++) assertTrue(rows.containsKey(i), "row " + i + " lost");
        Map<String, Set<String>> gpusByExecutor = new HashMap<>();
        for (JsonNode n : rows.values()) {
            for (String t : new String[]{"t1", "t2"}) {
                String[] parts = n.get(t).asText().split("\\|");
                gpusByExecutor.computeIfAbsent(parts[0], k -> new HashSet<>()).add(parts[1]);
            }
        }
        assertEquals(byExecutor.keySet(), gpusByExecutor.keySet(), "tasks ran on the executors that loaded engines");
        for (Map.Entry<String, Set<String>> e : gpusByExecutor.entrySet()) {
            assertEquals(1, e.getValue().size(), "executor " + e.getKey() + " tasks saw one GPU: " + e.getValue());
            String gpu = e.getValue().iterator().next();
            assertEquals("cuda:" + gpu, byExecutor.get(e.getKey()).get(0).requestedDevice(),
                    "executor " + e.getKey() + "'s engine is bound to its GPU");
        }

        // and the generations are the engine's
        List<String> prompts = new ArrayList<>(new LinkedHashSet<>(rows.values().stream().map(n -> n.get("prompt").asText()).toList()));
        List<GenerationResult> a = Fixtures.directGreedy(prompts, 6);
        Map<String, String> expectA = new HashMap<>();
        for (int i = 0; i < prompts.size(); i++) expectA.put(prompts.get(i), a.get(i).text());
        List<String> second = new ArrayList<>(new LinkedHashSet<>(expectA.values().stream().map(x -> x + " and").toList()));
        List<GenerationResult> b = Fixtures.directGreedy(second, 6);
        Map<String, String> expectB = new HashMap<>();
        for (int i = 0; i < second.size(); i++) expectB.put(second.get(i), b.get(i).text());
        for (JsonNode n : rows.values()) {
            String want = expectA.get(n.get("prompt").asText());
            assertEquals(want, n.get("a").asText(), "row " + n.get("id"));
            assertEquals(expectB.get(want + " and"), n.get("b").asText(), "row " + n.get("id"));
        }
    }

    // ---- processes ----

    /** java JVM_ARGS SPARK_FLAGS -cp SPARK_HOME/jars/* MAIN ARGS; SparkSubmit also gets this module's and the engine's classes. */
    private Process start(Path dir, String name, Path sparkHome, List<String> jvmArgs, String mainClass, String... args)
            throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBin());
        cmd.addAll(jvmArgs);
        cmd.addAll(List.of(SPARK_FLAGS.split(" ")));
        cmd.add("-cp");
        cmd.add(name.equals("submit")
                ? String.join(File.pathSeparator, System.getProperty("gptq4j.main.classes"), System.getProperty("gptq4j.test.classes"),
                        engineClasses(testClasspath()), sparkHome.resolve("jars") + "/*")
                : sparkHome.resolve("jars") + "/*");
        cmd.add(mainClass);
        cmd.addAll(List.of(args));
        return StandaloneCluster.start(processes, dir, name, sparkHome, cmd);
    }

    // ---- classpath ----

    /** The engine module's classes (a directory in the reactor, else its jar). */
    private static String engineClasses(List<String> classpath) {
        for (String e : classpath) {
            if (e.contains("engine") && (e.endsWith("classes") || e.endsWith("classes/") || e.contains("gptq4j-engine"))) return e;
        }
        throw new AssertionError("engine classes not found on the test classpath: " + classpath);
    }

    /** A jar holding ClusterJob (SparkSubmit wants a primary resource). */
    private static Path appJar(Path jar) throws IOException {
        Path classes = Path.of(System.getProperty("gptq4j.test.classes"));
        try (OutputStream os = Files.newOutputStream(jar); JarOutputStream jos = new JarOutputStream(os);
             Stream<Path> s = Files.walk(classes.resolve("gptq4j/spark/cluster"))) {
            for (Path p : s.filter(p -> p.getFileName().toString().startsWith("ClusterJob")).toList()) {
                jos.putNextEntry(new JarEntry(classes.relativize(p).toString().replace(File.separatorChar, '/')));
                jos.write(Files.readAllBytes(p));
                jos.closeEntry();
            }
        }
        return jar;
    }
}
