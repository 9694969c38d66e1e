package gptq4j.spark.cluster;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.jar.JarFile;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * A Spark standalone cluster from the Maven jars, for tests that start its JVMs (Master, Workers, SparkSubmit) as
 * processes on 127.0.0.1: a SPARK_HOME whose jars/ links the test classpath's jars, the processes (each logging to
 * DIR/NAME.log), and waits whose failures carry the tails of the logs. Used by {@link ClusterTest} and, through this
 * module's test-jar, by the examples' SparkSubmitGpuTest.
 */
public final class StandaloneCluster {

    /** The flags every Spark JVM needs: the Vector API module and Spark's opens (the parent pom's gptq4j.spark.test.args). */
    public static final String SPARK_FLAGS = String.join(" ",
            "--add-modules=jdk.incubator.vector", "-XX:+IgnoreUnrecognizedVMOptions",
            "--add-opens=java.base/java.lang=ALL-UNNAMED", "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
            "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
            "--add-opens=java.base/java.net=ALL-UNNAMED", "--add-opens=java.base/java.nio=ALL-UNNAMED",
            "--add-opens=java.base/java.util=ALL-UNNAMED", "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
            "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED", "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
            "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
            "--add-opens=java.base/sun.security.action=ALL-UNNAMED", "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
            "-Djdk.reflect.useDirectMethodHandle=false", "-Dio.netty.tryReflectionSetAccessible=true");

    private StandaloneCluster() { }

    /** The java launcher of the test JVM's JDK. */
    public static String javaBin() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    // ---- processes ----

    /**
     * Starts {@code cmd} with SPARK_HOME, SPARK_SCALA_VERSION, SPARK_LOCAL_IP and JAVA_HOME set, then the {@code env}
     * pairs (name, value, ...); stdout and stderr go to DIR/NAME.log. The process is added to {@code processes}.
     */
    public static Process start(List<Process> processes, Path dir, String name, Path sparkHome, List<String> cmd,
                                String... env) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve(name + ".log").toFile());
        pb.environment().put("SPARK_HOME", sparkHome.toString());
        pb.environment().put("SPARK_SCALA_VERSION", "2.13");
        pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        for (int i = 0; i + 1 < env.length; i += 2) pb.environment().put(env[i], env[i + 1]);
        Process p = pb.start();
        processes.add(p);
        return p;
    }

    /** Stops the processes and their descendants: destroy, then destroyForcibly what is still running after 10 s. */
    public static void stopAll(List<Process> processes) {
        List<ProcessHandle> all = new ArrayList<>();
        for (Process p : processes) {
            all.addAll(p.descendants().toList());
            all.add(p.toHandle());
        }
        all.forEach(ProcessHandle::destroy);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        for (ProcessHandle h : all) {
            try {
                h.onExit().get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (Exception e) {
                h.destroyForcibly();
            }
        }
    }

    /** The last 40 lines of every *.log and executor stderr below {@code dir}. */
    public static String tails(Path dir) {
        StringBuilder sb = new StringBuilder();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(p -> p.toString().endsWith(".log") || p.getFileName().toString().equals("stderr")).toList()) {
                List<String> lines = Files.readAllLines(p, StandardCharsets.ISO_8859_1);
                sb.append("==== ").append(p).append('\n');
                lines.subList(Math.max(0, lines.size() - 40), lines.size()).forEach(l -> sb.append(l).append('\n'));
            }
        } catch (IOException e) {
            sb.append("(logs unreadable: ").append(e).append(")");
        }
        return sb.toString();
    }

    /** Waits until something listens on 127.0.0.1:{@code port}; fails with the tails of {@code dir}'s logs. */
    public static void waitForPort(int port, int seconds, Path dir) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            try (Socket s = new Socket("127.0.0.1", port)) {
                return;
            } catch (IOException e) {
                Thread.sleep(500);
            }
        }
        fail("nothing listens on 127.0.0.1:" + port + " after " + seconds + " s\n" + tails(dir));
    }

    /** Waits until {@code log} contains {@code text}; fails with the tails of {@code dir}'s logs. */
    public static void waitForLog(Path log, String text, int seconds, Path dir) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            if (Files.exists(log) && Files.readString(log, StandardCharsets.ISO_8859_1).contains(text)) return;
            Thread.sleep(500);
        }
        fail(log + " never said '" + text + "' in " + seconds + " s\n" + tails(dir));
    }

    public static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    // ---- classpath ----

    /** The test JVM's classpath entries (surefire may hide them behind a manifest-only jar). */
    public static List<String> testClasspath() throws IOException {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> entries = new ArrayList<>(List.of(cp.split(File.pathSeparator)));
        if (entries.size() == 1 && entries.get(0).endsWith(".jar")) {
            try (JarFile jar = new JarFile(entries.get(0))) {
                String manifestCp = jar.getManifest().getMainAttributes().getValue("Class-Path");
                if (manifestCp != null) {
                    entries = new ArrayList<>();
                    for (String u : manifestCp.trim().split("\\s+")) entries.add(Path.of(java.net.URI.create(u)).toString());
                }
            }
        }
        return entries;
    }

    /** SPARK_HOME with jars/ linking every jar of the classpath that {@code skip} does not accept (the first of a name). */
    public static Path sparkHome(Path home, List<String> classpath, Predicate<String> skip) throws IOException {
        Path jars = Files.createDirectories(home.resolve("jars"));
        Set<String> names = new HashSet<>();
        for (String e : classpath) {
            Path p = Path.of(e);
            if (!e.endsWith(".jar") || !Files.isRegularFile(p) || skip.test(e) || !names.add(p.getFileName().toString())) continue;
            Files.createSymbolicLink(jars.resolve(p.getFileName()), p.toAbsolutePath());
        }
        return home;
    }
}
