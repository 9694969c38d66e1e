package gptq4j.examples;

import com.fasterxml.jackson.databind.JsonNode;
import gptq4j.spark.cluster.StandaloneCluster;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarInputStream;
import java.util.jar.JarOutputStream;
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
 * bin/spark-submit-gpu.sh as written, against a standalone Master and one Worker on 127.0.0.1 whose GPU "0" comes from
 * examples/conf/gpu-discovery.sh (GPTQ4J_GPU_ADDRESSES=0: no real GPU here). spark-submit is SparkSubmit with only
 * Spark's jars on its classpath (a "Spark distribution" made of the Maven jars), and the application is one jar with
 * the examples, the connector, the engine and JCuda and no Spark, as examples/target/...-spark.jar (the test assembles
 * the same content from the module outputs, because the shaded jar is made after the test phase; -Dgptq4j.appJar=FILE
 * tests a given jar instead). Shows: the job runs with the script's GPU resource settings (the task got GPU 0 and
 * the engine was asked for cuda:0, then fell back to the CPU, which this test allows), every prompt gives exactly
 * what bin/gptq4j generate gives, no row lost or duplicated. Only the sizes a 2-core test machine cannot give
 * (16 GB executors, 4 cores, an 8 GB KV cache, 2048-token steps whose logits
 * buffer alone is 2048 × 32000 floats) and the fallback are overridden through GPTQ4J_SUBMIT_OPTS.
 */
class SparkSubmitGpuTest {

    static final int ROWS = 40;

    private final List<Process> processes = new ArrayList<>();

    @Test
    @Timeout(value = 9, unit = TimeUnit.MINUTES)
    void gpuScriptRunsBatchGenerateOnAStandaloneClusterWithAFakeGpu(@TempDir Path dir) throws Exception {
        Path model = Cli.fixtureModel();
        List<String> prompts = new ArrayList<>();
        for (JsonNode n : Cli.readLines(List.of(Cli.data("prompts.jsonl"))).subList(0, ROWS)) prompts.add(n.get("prompt").asText());
        Path input = Cli.writePrompts(dir.resolve("prompts.jsonl"), prompts);
        List<JsonNode> want = Cli.generate(model, input, dir.resolve("cli.jsonl"), "--max-new-tokens", "6");

        List<String> classpath = testClasspath();
        Path sparkHome = sparkHome(dir.resolve("spark-home"), classpath, SparkSubmitGpuTest::notSpark);
        Path appJar = System.getProperty("gptq4j.appJar") != null ? Path.of(System.getProperty("gptq4j.appJar"))
                : appJar(dir.resolve("app.jar"), classpath);
        System.out.println("application jar: " + appJar);
        Path submitScript = dir.resolve("spark-submit");
        Files.writeString(submitScript, "#!/bin/sh\nexec \"" + javaBin() + "\" " + SPARK_FLAGS + " -Xmx768m -cp '" + sparkHome
                + "/jars/*' org.apache.spark.deploy.SparkSubmit \"$@\"\n");
        Files.setPosixFilePermissions(submitScript, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path markers = dir.resolve("markers"), out = dir.resolve("out");
        Path discovery = Cli.repo().resolve("examples/conf/gpu-discovery.sh");
        try {
            int masterPort = freePort();
            start(dir, "master", sparkHome, List.of(javaBin(), "-Xmx256m", "-cp", sparkHome + "/jars/*",
                    "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", Integer.toString(masterPort),
                    "--webui-port", Integer.toString(freePort())));
            waitForPort(masterPort, 120, dir);
            String master = "spark://127.0.0.1:" + masterPort;
            start(dir, "worker", sparkHome, List.of(javaBin(), "-Xmx256m", "-Dspark.worker.resource.gpu.amount=1",
                    "-Dspark.worker.resource.gpu.discoveryScript=" + discovery, "-cp", sparkHome + "/jars/*",
                    "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "2", "--memory", "1g",
                    "--webui-port", Integer.toString(freePort()), "--work-dir", dir.resolve("work").toString(), master));
            waitForLog(dir.resolve("worker.log"), "Successfully registered with master", 120, dir);

            String overrides = String.join(" ", "--conf spark.executor.cores=2", "--conf spark.executor.memory=640m",
                    "--conf spark.gptq4j.kvCacheBytes=" + (16 << 20),
                    "--conf spark.gptq4j.maxTokensPerStep=512", "--conf spark.gptq4j.device.fallback=cpu",
                    "--conf spark.gptq4j.threads=1", "--conf spark.gptq4j.engine.markerDir=" + markers,
                    "--conf spark.ui.enabled=false", "--conf spark.driver.host=127.0.0.1");
            Process submit = start(dir, "submit", sparkHome, List.of(Cli.repo().resolve("bin/spark-submit-gpu.sh").toString(),
                    "--master", master, "--model", model.toString(), "--input", input.toString(), "--output", out.toString(),
                    "--max-new-tokens", "6"), "SPARK_SUBMIT", submitScript.toString(), "GPTQ4J_APP_JAR", appJar.toString(),
                    "GPTQ4J_SUBMIT_OPTS", overrides);
            if (!submit.waitFor(6, TimeUnit.MINUTES)) fail("spark-submit-gpu.sh did not finish in 6 minutes\n" + tails(dir));
            assertEquals(0, submit.exitValue(), "spark-submit-gpu.sh failed\n" + tails(dir));
        } finally {
            stopAll(processes);
        }

        // the engine was asked for the task's GPU, cuda:0, on an executor, and (no GPU here) fell back to the CPU
        List<Properties> loads = new ArrayList<>();
        try (Stream<Path> s = Files.list(markers)) {
            for (Path p : s.filter(p -> p.toString().endsWith(".properties")).toList()) {
                Properties pr = new Properties();
                try (InputStream in = Files.newInputStream(p)) {
                    pr.load(in);
                }
                loads.add(pr);
            }
        }
        assertEquals(1, loads.size(), "one engine load on the one executor: " + loads + "\n" + tails(dir));
        Properties load = loads.get(0);
        assertEquals("cuda:0", load.getProperty("requestedDevice"), "engine requested on the task's GPU: " + load);
        assertTrue(load.getProperty("actualDevice").startsWith("cpu"), "no GPU here: fell back to the CPU: " + load);
        assertNotNull(load.getProperty("fallbackReason"), load.toString());
        assertTrue(load.getProperty("executorId").matches("\\d+"), "loaded on an executor, not the driver: " + load);

        List<JsonNode> rows = Cli.readLines(Cli.parts(out, ".json"));
        assertEquals(ROWS, rows.size(), "no row lost or added");
        Set<Long> ids = new HashSet<>();
        for (JsonNode r : rows) {
            long id = r.get("id").asLong();
            assertTrue(ids.add(id), "row " + id + " duplicated");
            assertEquals(want.get((int) id).get("text").asText(), r.get("text").asText(), "row " + id);
            assertEquals(prompts.get((int) id), r.get("prompt").asText());
        }
    }

    // ---- the "distribution" and the application jar ----

    /** What goes into the application jar (the shade plugin's artifactSet: io.gptq4j:* and org.jcuda:*). */
    private static boolean ours(String entry) {
        return entry.contains("gptq4j") || entry.contains("/org/jcuda/") || entry.contains("engine/target")
                || entry.contains("spark-connector/target") || entry.contains("examples/target");
    }

    /** Kept out of SPARK_HOME/jars: ours and the test framework's jars. */
    private static boolean notSpark(String entry) {
        return ours(entry) || entry.contains("junit") || entry.contains("opentest4j") || entry.contains("apiguardian");
    }

    /** The examples' main classes, the connector, the engine and JCuda in one jar (no test classes, no Spark). */
    private static Path appJar(Path jar, List<String> classpath) throws IOException {
        Set<String> seen = new HashSet<>();
        try (OutputStream os = Files.newOutputStream(jar); JarOutputStream jos = new JarOutputStream(os)) {
            for (String e : classpath) {
                if (!ours(e) || e.contains("test-classes") || e.endsWith("-tests.jar")) continue;
                Path p = Path.of(e);
                if (Files.isDirectory(p)) {
                    try (Stream<Path> s = Files.walk(p)) {
                        for (Path f : s.filter(Files::isRegularFile).toList()) {
                            put(jos, seen, p.relativize(f).toString().replace(File.separatorChar, '/'), Files.readAllBytes(f));
                        }
                    }
                } else if (e.endsWith(".jar") && Files.isRegularFile(p)) {
                    try (JarInputStream in = new JarInputStream(Files.newInputStream(p))) {
                        for (JarEntry x; (x = in.getNextJarEntry()) != null; ) {
                            if (!x.isDirectory()) put(jos, seen, x.getName(), in.readAllBytes());
                        }
                    }
                }
            }
        }
        return jar;
    }

    private static void put(JarOutputStream jos, Set<String> seen, String name, byte[] bytes) throws IOException {
        if (name.startsWith("META-INF/MANIFEST") || !seen.add(name)) return;
        jos.putNextEntry(new JarEntry(name));
        jos.write(bytes);
        jos.closeEntry();
    }

    // ---- processes ----

    /** {@link StandaloneCluster#start} with GPTQ4J_GPU_ADDRESSES=0 (GPU "0" for examples/conf/gpu-discovery.sh). */
    private Process start(Path dir, String name, Path sparkHome, List<String> cmd, String... env) throws IOException {
        String[] all = Stream.concat(Stream.of("GPTQ4J_GPU_ADDRESSES", "0"), Stream.of(env)).toArray(String[]::new);
        return StandaloneCluster.start(processes, dir, name, sparkHome, cmd, all);
    }
}
