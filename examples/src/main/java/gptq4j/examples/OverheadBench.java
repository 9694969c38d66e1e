package gptq4j.examples;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptq4j.cli.Main;
import gptq4j.spark.engine.EngineCache;
import org.apache.spark.sql.SparkSession;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The Spark connector's overhead: the same prompts, model, device and sampling (greedy) through
 * {@code bin/gptq4j generate} (in this JVM: {@link Main#run}) and through the main Spark job ({@link BatchGenerate} on
 * this session, local[2] under bin/run-example), alternating CLI, Spark, Spark, CLI, … so drifting machine load
 * falls on both sides alike. Prints generated tokens/s of each run, of each side over all its runs, and the ratio.
 * <p>
 * Both sides are timed end to end from a cold engine: the CLI run includes its engine load (as
 * {@code bin/gptq4j generate} does), and the Spark engine cache is emptied before each Spark run, so the Spark run
 * includes reading the input (schema inference and a row count), planning, its engine load and writing the output.
 * JVM and SparkSession start-up are outside both. A small warm-up of each side runs first.
 * <pre>
 *   bin/run-example OverheadBench [--model DIR] [--input FILE] [--rows N] [--max-new-tokens N] [--reps R]
 *       [--device cpu] [--work DIR] [--master local[2]]
 * </pre>
 * Without --model it uses (and synthesizes if absent) examples/target/bench-model: random 4-bit g128 act-order
 * weights, vocab 32000, hidden 512, intermediate 1408, 4 layers, 8 heads / 2 KV heads, 8 experts top-2.
 */
public final class OverheadBench {

    static final String USAGE = "usage: OverheadBench [--model DIR] [--input FILE] [--rows N] [--max-new-tokens N] "
            + "[--reps R] [--device D] [--work DIR] [--master URL]";
    static final List<String> FLAGS = List.of("model", "input", "rows", "max-new-tokens", "reps", "device", "work",
            "master", "tokenizer");
    static final String[] BENCH_SHAPE = {"--shape", "small", "--hidden", "512", "--intermediate", "1408", "--layers", "4",
            "--heads", "8", "--kv-heads", "2"};

    private static final ObjectMapper JSON = new ObjectMapper();

    private OverheadBench() { }

    /** One timed run. */
    record Run(String side, int index, long rows, long tokens, double seconds, double cpuSeconds, String engineStats) {
        double tokensPerSecond() { return tokens / seconds; }
    }

    /** CPU seconds this JVM has used (all threads: Spark, the engine, GC, JIT). */
    static double cpuSeconds() {
        var os = java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        return os instanceof com.sun.management.OperatingSystemMXBean o ? o.getProcessCpuTime() / 1e9 : Double.NaN;
    }

    public static void main(String[] argv) throws IOException {
        List<String> args = new ArrayList<>(List.of(argv));
        if (!args.contains("--model")) args.addAll(List.of("--model", "examples/target/bench-model"));
        ExampleArgs a = new ExampleArgs(args.toArray(new String[0]), USAGE, FLAGS);
        Path model = Path.of(a.require("model")).toAbsolutePath();
        if (!Files.isRegularFile(model.resolve("config.json"))) synthesize(model, Path.of(a.get("tokenizer", "examples/data/tokenizer")));
        String device = a.get("device", "cpu");
        int maxNew = Integer.parseInt(a.get("max-new-tokens", "16"));
        int reps = Integer.parseInt(a.get("reps", "2"));
        Path work = Path.of(a.get("work", "examples/target/overhead-bench")).toAbsolutePath();
        Files.createDirectories(work);
        List<String> lines = prompts(Path.of(a.get("input", "examples/data/prompts.jsonl")), Integer.parseInt(a.get("rows", "0")));
        Path input = work.resolve("input.jsonl"), warm = work.resolve("warm.jsonl");
        Files.write(input, lines, StandardCharsets.UTF_8);
        Files.write(warm, lines.subList(0, Math.min(16, lines.size())), StandardCharsets.UTF_8);

        String loadBefore = loadAverage();
        SparkSession spark = a.session("gptq4j OverheadBench").getOrCreate();
        try {
            System.out.printf(Locale.ROOT, "OverheadBench: %d prompts, %d new tokens each (greedy), device %s, model %s%n",
                    lines.size(), maxNew, device, model);
            System.out.printf(Locale.ROOT, "spark: master %s, rowsPerBatch %s, batchesInFlight %s, maxBatchSize %s%n",
                    spark.sparkContext().master(), spark.conf().get("spark.gptq4j.rowsPerBatch", "256"),
                    spark.conf().get("spark.gptq4j.batchesInFlight", "2"), spark.conf().get("spark.gptq4j.maxBatchSize", "64"));
            spark.conf().set("spark.gptq4j.device", device);
            spark.conf().set("spark.gptq4j.sampling.temperature", "0");
            cli(model, warm, work.resolve("warm-cli.jsonl"), 4, device, 0);
            spark.conf().set("spark.gptq4j.sampling.maxNewTokens", "4");
            spark(spark, warm, work.resolve("warm-spark"), 0);
            spark.conf().set("spark.gptq4j.sampling.maxNewTokens", Integer.toString(maxNew));

            List<Run> runs = new ArrayList<>();
            for (int r = 0; r < reps; r++) {
                boolean cliFirst = r % 2 == 0;
                for (int k = 0; k < 2; k++) {
                    Run run = (k == 0) == cliFirst
                            ? cli(model, input, work.resolve("cli-" + r + ".jsonl"), maxNew, device, r + 1)
                            : spark(spark, input, work.resolve("spark-" + r), r + 1);
                    runs.add(run);
                    System.out.printf(Locale.ROOT, "  run %d %-5s  %4d rows  %6d tokens  %7.2f s  %7.1f tokens/s  cpu %7.2f s  engine: %s%n",
                            run.index(), run.side(), run.rows(), run.tokens(), run.seconds(), run.tokensPerSecond(),
                            run.cpuSeconds(), run.engineStats());
                }
            }
            int mismatches = compare(work.resolve("cli-0.jsonl"), work.resolve("spark-0"));
            String loadAfter = loadAverage();

            double cliTps = rate(runs, "cli", false), sparkTps = rate(runs, "spark", false);
            double cliCpu = rate(runs, "cli", true), sparkCpu = rate(runs, "spark", true);
            System.out.println();
            System.out.printf(Locale.ROOT, "machine: %s, %d cores, JDK %s (%s), load average before %s, after %s%n",
                    cpuModel(), Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"),
                    System.getProperty("java.vm.name"), loadBefore, loadAfter);
            System.out.printf(Locale.ROOT, "texts: %d of %d rows differ between bin/gptq4j generate and Spark%n", mismatches, lines.size());
            System.out.printf(Locale.ROOT, "bin/gptq4j generate: %.1f generated tokens/s (%d runs)%n", cliTps, reps);
            System.out.printf(Locale.ROOT, "Spark local job:     %.1f generated tokens/s (%d runs)%n", sparkTps, reps);
            System.out.printf(Locale.ROOT, "Spark / CLI:         %.1f %%%n", 100 * sparkTps / cliTps);
            System.out.printf(Locale.ROOT, "per CPU second of this JVM: CLI %.1f, Spark %.1f generated tokens, Spark / CLI %.1f %%%n",
                    cliCpu, sparkCpu, 100 * sparkCpu / cliCpu);
        } finally {
            spark.stop();
        }
    }

    /** All tokens over all (wall or CPU) seconds of one side. */
    static double rate(List<Run> runs, String side, boolean cpu) {
        long tokens = 0;
        double seconds = 0;
        for (Run r : runs) {
            if (r.side().equals(side)) {
                tokens += r.tokens();
                seconds += cpu ? r.cpuSeconds() : r.seconds();
            }
        }
        return tokens / seconds;
    }

    static Run cli(Path model, Path input, Path output, int maxNew, String device, int index) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        double c0 = cpuSeconds();
        long t0 = System.nanoTime();
        int rc = Main.run(new String[]{"generate", "--model", model.toString(), "--input", input.toString(), "--output",
                output.toString(), "--max-new-tokens", Integer.toString(maxNew), "--temperature", "0", "--device", device},
                System.out, new PrintStream(err, true, StandardCharsets.UTF_8));
        double s = (System.nanoTime() - t0) / 1e9, cpu = cpuSeconds() - c0;
        if (rc != 0) throw new IllegalStateException("bin/gptq4j generate failed (exit " + rc + "): " + err.toString(StandardCharsets.UTF_8));
        List<JsonNode> rows = readJsonLines(List.of(output));
        String done = "";
        for (String l : err.toString(StandardCharsets.UTF_8).split("\n")) if (l.startsWith("done: ")) done = l.substring(l.indexOf("; ") + 2);
        return new Run("cli", index, rows.size(), tokens(rows), s, cpu, done);
    }

    static Run spark(SparkSession spark, Path input, Path output, int index) {
        EngineCache.closeAll();
        double c0 = cpuSeconds();
        long t0 = System.nanoTime();
        BatchGenerate.run(spark, input.toString(), output.toString(), "jsonl", null);
        double s = (System.nanoTime() - t0) / 1e9, cpu = cpuSeconds() - c0;
        String stats = String.join("; ", EngineCache.describe()).replaceAll("^.* on [^:]*: ", "");
        List<JsonNode> rows = readJsonLines(partFiles(output));
        return new Run("spark", index, rows.size(), tokens(rows), s, cpu, stats);
    }

    /** Rows whose text differs (or that are missing) between the CLI output and the Spark output, matched by id. */
    static int compare(Path cliOut, Path sparkOut) {
        List<JsonNode> cli = readJsonLines(List.of(cliOut));
        Map<Long, JsonNode> spark = new HashMap<>();
        for (JsonNode n : readJsonLines(partFiles(sparkOut))) spark.put(n.get("id").asLong(), n);
        List<JsonNode> input = readJsonLines(List.of(cliOut.resolveSibling("input.jsonl")));
        int bad = 0;
        for (int i = 0; i < cli.size(); i++) {
            JsonNode s = spark.get(input.get(i).get("id").asLong());
            if (s == null || !s.get("text").asText().equals(cli.get(i).get("text").asText())) bad++;
        }
        return bad + Math.abs(spark.size() - cli.size());
    }

    static long tokens(List<JsonNode> rows) {
        long t = 0;
        for (JsonNode n : rows) t += n.get("completion_tokens").asLong();
        return t;
    }

    static List<Path> partFiles(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith("part-")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": " + e.getMessage(), e);
        }
    }

    static List<JsonNode> readJsonLines(List<Path> files) {
        List<JsonNode> out = new ArrayList<>();
        try {
            for (Path f : files) {
                for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) if (!line.isBlank()) out.add(JSON.readTree(line));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
        return out;
    }

    /** The first {@code n} JSONL lines of {@code file} (all when n ≤ 0), repeated with a fresh id when n exceeds them. */
    static List<String> prompts(Path file, int n) throws IOException {
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8).stream().filter(l -> !l.isBlank()).toList();
        if (n <= 0) return lines;
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            var node = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(lines.get(i % lines.size()));
            node.put("id", i);
            out.add(JSON.writeValueAsString(node));
        }
        return out;
    }

    static void synthesize(Path model, Path tokenizer) {
        List<String> a = new ArrayList<>(List.of("synthesize", "--out", model.toString()));
        a.addAll(List.of(BENCH_SHAPE));
        a.addAll(List.of("--bits", "4", "--group-size", "128", "--act-order", "--tokenizer", tokenizer.toString()));
        int rc = Main.run(a.toArray(new String[0]), System.out, System.err);
        if (rc != 0) throw new IllegalStateException("synthesizing " + model + " failed (exit " + rc + ")");
    }

    static String cpuModel() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (l.startsWith("model name")) return l.substring(l.indexOf(':') + 1).trim();
            }
        } catch (IOException | RuntimeException e) {
            // not Linux
        }
        return System.getProperty("os.arch");
    }

    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException | RuntimeException e) {
            return String.format(Locale.ROOT, "%.2f", java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
        }
    }
}
