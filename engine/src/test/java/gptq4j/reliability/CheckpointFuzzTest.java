package gptq4j.reliability;

import gptq4j.loader.Checkpoint;
import gptq4j.loader.CheckpointException;
import gptq4j.model.MixtralWeights;
import gptq4j.reliability.Mutations.Expect;
import gptq4j.reliability.Mutations.Mutation;
import gptq4j.runtime.Engine;
import gptq4j.runtime.EngineOptions;
import gptq4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Checkpoint fuzzing (issue 9): seeded mutations of two golden fixtures, each loaded the way the engine loads
 * a checkpoint (Checkpoint.open, every tensor validated by MixtralWeights.load without a backend, Tokenizer.load;
 * for a sample also Engine.load on the CPU). Each must end within a second in success or in a
 * {@link CheckpointException} whose one-line message names a file of the checkpoint: no other exception type,
 * no OutOfMemoryError, no hang. "Within a second" is measured as CPU time of the loading thread, since wall time on
 * a shared machine measures the other processes; a load still running after {@link #HANG_GUARD} counts as hung.
 *
 * <p>Seeds 0..{@value #FIXED_SEEDS}-1 always run, plus the targeted cases the issues name, plus
 * {@value #RANDOM_EXTRA} mutations from a random seed printed on stdout. Reproduce one mutation with
 * {@code -Dgptq4j.fuzz.seeds=17,42} (runs only those seeds).
 */
class CheckpointFuzzTest {
    static final int FIXED_SEEDS = 1000;
    static final int RANDOM_EXTRA = 100;
    static final int ENGINE_SAMPLE_EVERY = 100;
    /** CPU time of the loading thread per mutation (CPU, not wall time: the test machine is shared and loaded). */
    static final Duration PER_MUTATION = Duration.ofSeconds(1);
    /** Wall-clock limit after which a load counts as hung. */
    static final Duration HANG_GUARD = Duration.ofSeconds(15);
    static final Duration ENGINE_LOAD = Duration.ofSeconds(10);
    static final List<String> MODELS = List.of("tiny-mixtral-gptq-3bit-128g-actorder", "tiny-mixtral-gptq-4bit-actorder");

    @TempDir
    Path tmp;

    /** What happened to one mutation. */
    record Outcome(Mutation m, String model, Throwable error, long nanos, long wallNanos, boolean engineChecked) { }

    /** A load's result and the CPU time of the loading thread. */
    record Timed(Throwable error, long cpuNanos) { }

    static Timed timedLoad(Path dir, boolean tokenizer) {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        long c0 = mx.getCurrentThreadCpuTime();
        Throwable t = load(dir, tokenizer);
        return new Timed(t, mx.getCurrentThreadCpuTime() - c0);
    }

    @Test
    void everyMutationLoadsOrFailsCleanlyWithinASecond() throws Exception {
        List<GoldenCopy> golden = MODELS.stream().map(GoldenCopy::new).toList();
        List<long[]> seeds = new ArrayList<>(); // {seed, fixed?}
        String only = System.getProperty("gptq4j.fuzz.seeds", "");
        long extra = System.nanoTime() ^ System.identityHashCode(this);
        if (!only.isBlank()) {
            for (String s : only.split(",")) seeds.add(new long[] {Long.parseLong(s.trim()), 1});
        } else {
            for (long s = 0; s < FIXED_SEEDS; s++) seeds.add(new long[] {s, 1});
            for (int i = 0; i < RANDOM_EXTRA; i++) seeds.add(new long[] {extra + i, 0});
            System.out.println("[fuzz] random extra seeds: " + extra + " .. " + (extra + RANDOM_EXTRA - 1)
                    + " (reproduce with -Dgptq4j.fuzz.seeds=SEED)");
        }
        List<Mutation> mutations = new ArrayList<>();
        List<GoldenCopy> on = new ArrayList<>();
        for (long[] s : seeds) {
            GoldenCopy g = golden.get((int) Math.floorMod(s[0] / Mutations.CATEGORIES.length, (long) golden.size()));
            mutations.add(Mutations.random(g, s[0]));
            on.add(g);
        }
        if (only.isBlank()) {
            for (GoldenCopy g : golden) {
                for (Mutation m : Mutations.targeted(g)) {
                    mutations.add(m);
                    on.add(g);
                }
            }
        }

        // warm up: the golden checkpoints load (untimed, so class loading and JIT do not count)
        for (GoldenCopy g : golden) {
            Throwable t = load(g.dir, true);
            if (t != null) throw new AssertionError("the golden fixture " + g.name + " does not load", t);
        }

        List<Outcome> outcomes = new ArrayList<>();
        List<String> failures = new ArrayList<>();
        for (int i = 0; i < mutations.size(); i++) {
            Mutation m = mutations.get(i);
            GoldenCopy g = on.get(i);
            Path dir = tmp.resolve("m" + i);
            g.linkInto(dir);
            m.action().apply(dir);
            long t0 = System.nanoTime();
            Timed timed;
            try {
                boolean tok = m.file().startsWith("tokenizer");
                timed = assertTimeoutPreemptively(HANG_GUARD, () -> timedLoad(dir, tok), () -> describe(m, g) + ": hung (no end within " + HANG_GUARD + ")");
            } catch (AssertionError timeout) {
                failures.add(timeout.getMessage());
                deleteTree(dir);
                continue;
            }
            long wall = System.nanoTime() - t0;
            Throwable error = timed.error();
            String problem = judge(m, g, dir, error);
            if (problem == null && timed.cpuNanos() > PER_MUTATION.toNanos()) {
                problem = describe(m, g) + ": took " + timed.cpuNanos() / 1e6 + " ms of CPU, over " + PER_MUTATION;
            }
            boolean engine = i % ENGINE_SAMPLE_EVERY == 0 || m.id().startsWith("targeted missing")
                    || m.id().startsWith("targeted vocab id past");
            if (problem == null && engine) problem = checkEngine(m, g, dir, error);
            if (problem != null) failures.add(problem);
            outcomes.add(new Outcome(m, g.name, error, timed.cpuNanos(), wall, engine));
            deleteTree(dir);
        }
        for (GoldenCopy g : golden) g.assertUntouched();
        report(outcomes, failures);
        if (!failures.isEmpty()) {
            fail(failures.size() + " of " + mutations.size() + " mutations failed:\n  " + String.join("\n  ", failures.subList(0, Math.min(40, failures.size()))));
        }
    }

    /**
     * Loads a checkpoint the way the engine does, without a backend; returns the CheckpointException or any other
     * throwable, or null. Tokenizer.load reads only tokenizer.json and tokenizer_config.json, so it runs (with the
     * engine's check of its ids against config.json's vocab_size) when the mutation touched one of them (an
     * untouched tokenizer is the golden one, loaded in the warm-up).
     */
    static Throwable load(Path dir, boolean tokenizer) {
        try (Checkpoint ck = Checkpoint.open(dir)) {
            MixtralWeights.load(ck, l -> l, m -> m);
            if (tokenizer) ck.checkTokenizerVocab(Tokenizer.load(dir).vocabSize());
            return null;
        } catch (Throwable t) {
            return t;
        }
    }

    private static String describe(Mutation m, GoldenCopy g) {
        return "[" + m.id() + " on " + g.name + ", " + m.category() + "] " + m.description();
    }

    /** Null when the outcome is acceptable, else what is wrong. */
    static String judge(Mutation m, GoldenCopy g, Path dir, Throwable error) {
        String d = describe(m, g);
        if (error == null) {
            return m.expect() == Expect.REJECT ? d + ": loaded, but should have been rejected" : null;
        }
        if (!(error instanceof CheckpointException)) {
            return d + ": threw " + error + " instead of a CheckpointException" + at(error);
        }
        if (m.expect() == Expect.OK) return d + ": should load, but: " + error.getMessage();
        String msg = error.getMessage();
        if (msg == null || !msg.contains(dir.toString())) return d + ": message does not name a file of the checkpoint: " + msg;
        if (msg.contains("\n") || msg.contains("\r")) return d + ": message is not one line: " + msg;
        return null;
    }

    private static String at(Throwable t) {
        StackTraceElement[] st = t.getStackTrace();
        return st.length == 0 ? "" : " at " + st[0];
    }

    /** Engine.load on the CPU must agree with the loader: success with success, a CheckpointException with one. */
    static String checkEngine(Mutation m, GoldenCopy g, Path dir, Throwable loaderError) {
        Throwable e = assertTimeoutPreemptively(ENGINE_LOAD, () -> {
            try (Engine en = Engine.load(EngineOptions.of(dir).withDevice("cpu").withThreads(1).withKvCacheBytes(1L << 20))) {
                return en.tokenizer() == null ? new AssertionError("no tokenizer") : null;
            } catch (Throwable t) {
                return t;
            }
        }, () -> describe(m, g) + ": Engine.load did not finish within " + ENGINE_LOAD);
        if (loaderError == null && e == null) return null;
        if (loaderError != null && e instanceof CheckpointException) return null;
        return describe(m, g) + ": loader gave " + loaderError + " but Engine.load gave " + e + (e == null ? "" : at(e));
    }

    private static void report(List<Outcome> outcomes, List<String> failures) {
        Map<String, long[]> byCategory = new TreeMap<>(); // loaded, rejected, total nanos, max nanos
        long max = 0;
        String slowest = "";
        int engine = 0;
        for (Outcome o : outcomes) {
            long[] c = byCategory.computeIfAbsent(o.m().category(), k -> new long[4]);
            c[o.error() == null ? 0 : 1]++;
            c[2] += o.nanos();
            c[3] = Math.max(c[3], o.nanos());
            if (o.nanos() > max) {
                max = o.nanos();
                slowest = o.m().id() + " " + o.m().description();
            }
            if (o.engineChecked()) engine++;
        }
        StringBuilder sb = new StringBuilder("[fuzz] mutations run: " + outcomes.size() + " (+ " + failures.size() + " failed)\n");
        sb.append(String.format("[fuzz] %-18s %7s %9s %8s %8s  (CPU ms)%n", "category", "loaded", "rejected", "mean", "max"));
        for (Map.Entry<String, long[]> e : byCategory.entrySet()) {
            long[] c = e.getValue();
            sb.append(String.format("[fuzz] %-18s %7d %9d %8.1f %8.1f%n", e.getKey(), c[0], c[1], c[2] / 1e6 / (c[0] + c[1]), c[3] / 1e6));
        }
        double mean = outcomes.stream().mapToLong(Outcome::nanos).average().orElse(0) / 1e6;
        double wallMean = outcomes.stream().mapToLong(Outcome::wallNanos).average().orElse(0) / 1e6;
        double wallMax = outcomes.stream().mapToLong(Outcome::wallNanos).max().orElse(0) / 1e6;
        sb.append(String.format("[fuzz] CPU time per mutation: mean %.1f ms, max %.1f ms (%s)%n", mean, max / 1e6, slowest));
        sb.append(String.format("[fuzz] wall time per mutation: mean %.1f ms, max %.1f ms (load average %.1f on %d cores)%n", wallMean, wallMax,
                ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(), Runtime.getRuntime().availableProcessors()));
        sb.append("[fuzz] also loaded with Engine.load on cpu: " + engine + " mutations\n");
        System.out.print(sb);
        try {
            Path out = Path.of("target", "reliability");
            Files.createDirectories(out);
            Files.writeString(out.resolve("fuzz-summary.txt"), sb + (failures.isEmpty() ? "" : String.join("\n", failures) + "\n"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
