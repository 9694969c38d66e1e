package gptq4j.reliability;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptq4j.cli.Main;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The command line meets a bad checkpoint (issues 2 and 9): exactly one line {@code error: …} on stderr naming the
 * file and what is wrong, nothing on stdout, exit code 1; a stack trace only with --verbose.
 */
class CliBadCheckpointTest {
    static final String MODEL = "tiny-mixtral-gptq-4bit-128g-actorder";
    static GoldenCopy golden;

    @TempDir
    Path tmp;

    @BeforeAll
    static void golden() {
        golden = new GoldenCopy(MODEL);
    }

    @AfterAll
    static void fixturesUntouched() {
        golden.assertUntouched();
    }

    /** A broken checkpoint: how to break it, the file the error must name, and words saying what is wrong. */
    record Case(String name, Mutations.Action breakIt, String file, String... what) {
        @Override
        public String toString() { return name; }
    }

    static Stream<Case> cases() {
        GoldenCopy g = new GoldenCopy(MODEL);
        String s1 = g.shards.get(0), s2 = g.shards.get(1);
        List<String> names = new java.util.ArrayList<>();
        g.headers.get(s2).fieldNames().forEachRemaining(n -> { if (!n.equals("__metadata__")) names.add(n); });
        String t = names.get(names.size() / 2);
        ObjectNode lyingOffsets = g.header(s2);
        ArrayNode o = (ArrayNode) lyingOffsets.get(t).get("data_offsets");
        long end = o.get(1).asLong();
        o.set(1, lyingOffsets.numberNode(end + 1_000_000_000L));
        ObjectNode lyingShape = g.header(s2);
        String q = names.stream().filter(n -> n.endsWith(".qweight")).findFirst().orElseThrow();
        ArrayNode shape = (ArrayNode) lyingShape.get(q).get("shape");
        long rows = shape.get(0).asLong(), cols = shape.get(1).asLong();
        shape.set(0, shape.numberNode(cols));
        shape.set(1, shape.numberNode(rows)); // same byte count, transposed: only the config can tell
        ObjectNode bits = g.json("quantize_config.json").put("bits", 5);
        ObjectNode llama = g.json("config.json").put("model_type", "llama");
        llama.putArray("architectures").add("LlamaForCausalLM");
        return Stream.of(
                new Case("missing shard", d -> Files.delete(d.resolve(s1)), s1, "missing"),
                new Case("truncated safetensors", d -> g.writeTruncated(d, s2, g.size.get(s2) - 1000), s2, "truncated", "data_offsets"),
                new Case("truncated inside the header", d -> g.writeTruncated(d, s1, 100), s1, "header length", "truncated"),
                new Case("header lying about offsets", d -> g.writeShard(d, s2, lyingOffsets), s2, t, "data_offsets"),
                new Case("header lying about shapes", d -> g.writeShard(d, s2, lyingShape), s2, q, "shape", "expected"),
                new Case("unknown bits", d -> GoldenCopy.writeJson(d, "quantize_config.json", bits), "quantize_config.json", "bits = 5"),
                new Case("config that is not Mixtral", d -> GoldenCopy.writeJson(d, "config.json", llama), "config.json", "llama", "not Mixtral"),
                new Case("missing tokenizer.json", d -> Files.delete(d.resolve("tokenizer.json")), "tokenizer.json", "not found"));
    }

    record Run(int code, String out, String err) { }

    static Run cli(String... argv) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int code = Main.run(argv, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private Path broken(Case c) throws IOException {
        Path d = tmp.resolve("model");
        golden.linkInto(d);
        c.breakIt().apply(d);
        return d;
    }

    static void assertOneErrorLine(Case c, Run r, String how) {
        assertEquals(1, r.code(), how + ": exit code; stderr: " + r.err());
        assertEquals("", r.out(), how + ": nothing on stdout");
        String[] lines = r.err().split("\n", -1);
        assertEquals(2, lines.length, how + ": exactly one line on stderr, got: " + r.err());
        assertEquals("", lines[1]);
        String line = lines[0];
        assertTrue(line.startsWith("error: "), how + ": " + line);
        assertTrue(line.contains("/" + c.file()), how + ": the line names " + c.file() + ": " + line);
        for (String w : c.what()) assertTrue(line.contains(w), how + ": the line says '" + w + "': " + line);
        assertTrue(!line.contains("Exception") && !line.contains("\tat "), how + ": no exception class or trace: " + line);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void generateGivesOneErrorLine(Case c) throws IOException {
        Path d = broken(c);
        Run r = cli("generate", "--model", d.toString(), "--device", "cpu", "--threads", "1", "--prompt", "hello", "--max-new-tokens", "1");
        assertOneErrorLine(c, r, c.name() + " (generate)");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void verboseAddsTheStackTrace(Case c) throws IOException {
        Path d = broken(c);
        Run r = cli("generate", "--model", d.toString(), "--device", "cpu", "--threads", "1", "--prompt", "hello", "--verbose");
        assertEquals(1, r.code());
        String first = r.err().lines().filter(l -> l.startsWith("error: ")).findFirst().orElse("");
        assertTrue(first.contains("/" + c.file()), first);
        assertTrue(r.err().contains("\tat gptq4j."), "--verbose prints the stack trace: " + r.err());
        assertTrue(r.err().contains("CheckpointException"), r.err());
    }

    @Test
    void inspectGivesOneErrorLineToo() throws IOException {
        Case c = cases().filter(x -> x.name().equals("header lying about shapes")).findFirst().orElseThrow();
        assertOneErrorLine(c, cli("inspect", "--model", broken(c).toString()), "inspect");
    }

    /**
     * The real launcher, bin/gptq4j, when `mvn package` has built it (and the jar is not older than the classes
     * under test); otherwise the same case runs through Main.run so the assertion is never skipped.
     */
    @Test
    void launcherScriptGivesOneErrorLine() throws Exception {
        Case c = cases().filter(x -> x.name().equals("missing shard")).findFirst().orElseThrow();
        Path d = broken(c);
        Path root = Path.of("").toAbsolutePath();
        if (!Files.isDirectory(root.resolve("engine"))) root = root.getParent();
        Path script = root.resolve("bin/gptq4j");
        Path jar = null;
        Path target = root.resolve("engine/target");
        if (Files.isDirectory(target)) {
            try (Stream<Path> s = Files.list(target)) {
                jar = s.filter(p -> p.getFileName().toString().matches("gptq4j-engine-.*\\.jar")
                        && !p.getFileName().toString().contains("sources") && !p.getFileName().toString().contains("tests"))
                        .findFirst().orElse(null);
            }
        }
        Path mainClass = target.resolve("classes/gptq4j/cli/Main.class");
        boolean fresh = jar != null && Files.isDirectory(target.resolve("lib")) && Files.isExecutable(script)
                && Files.exists(mainClass)
                && Files.getLastModifiedTime(jar).compareTo(Files.getLastModifiedTime(mainClass)) >= 0;
        if (!fresh) {
            System.out.println("[cli] engine jar not built (or older than the classes): asserting through Main.run instead of " + script);
            assertOneErrorLine(c, cli("generate", "--model", d.toString(), "--device", "cpu", "--prompt", "x"), "Main.run");
            return;
        }
        Process p = new ProcessBuilder(script.toString(), "generate", "--model", d.toString(), "--device", "cpu", "--prompt", "x")
                .directory(tmp.toFile()).start();
        p.getOutputStream().close();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "bin/gptq4j did not finish");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertOneErrorLine(c, new Run(p.exitValue(), out, err), "bin/gptq4j");
    }
}
