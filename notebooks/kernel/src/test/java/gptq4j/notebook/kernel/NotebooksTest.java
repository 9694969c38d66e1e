package gptq4j.notebook.kernel;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Executes every notebook in notebooks/ headlessly on the gptq4j kernel (the kernelspec this build wrote to
 * target/jupyter) with Jupyter's nbclient from Debian's packages, fails on any cell error, and saves the notebook
 * back with its outputs. A notebook lists in its metadata ({@code gptq4j.requires}, {@code gptq4j.fixtures}) the
 * classes and fixtures it needs; one whose classes are not on the kernel's classpath is reported as skipped with
 * the reason, as is one whose fixtures are absent.
 *
 * <p>Needs {@code python3-nbclient} (Debian); {@code GPTQ4J_PYTHON} overrides {@code /usr/bin/python3}.
 */
class NotebooksTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long TIMEOUT_MINUTES = 20;

    private final Path notebooks = Path.of(System.getProperty("gptq4j.notebooks", "..")).toAbsolutePath().normalize();
    private final Path fixtures = Path.of(System.getProperty("gptq4j.fixtures", "../../../shared/fixtures")).toAbsolutePath().normalize();
    private final Path jupyterPath = Path.of(System.getProperty("gptq4j.jupyter.path", "target/jupyter")).toAbsolutePath();
    private final Path runner = Path.of(System.getProperty("gptq4j.notebook.runner", "src/test/python/execute_notebook.py")).toAbsolutePath();
    private final Path failedDir = Path.of(System.getProperty("gptq4j.notebook.failed", "target/failed-notebooks")).toAbsolutePath();
    private final String python = System.getenv().getOrDefault("GPTQ4J_PYTHON", "/usr/bin/python3");

    @TestFactory
    Stream<DynamicTest> everyNotebookRunsWithoutACellError() throws IOException {
        List<Path> all;
        try (Stream<Path> s = Files.list(notebooks)) {
            all = s.filter(p -> p.getFileName().toString().endsWith(".ipynb")).sorted().collect(Collectors.toList());
        }
        assertFalse(all.isEmpty(), "no notebooks in " + notebooks);
        return all.stream().map(nb -> DynamicTest.dynamicTest(nb.getFileName().toString(), () -> execute(nb)));
    }

    private void execute(Path nb) throws Exception {
        String name = nb.getFileName().toString();
        JsonNode meta = JSON.readTree(nb.toFile()).path("metadata").path("gptq4j");
        for (JsonNode c : meta.path("requires")) {
            try {
                Class.forName(c.asText(), false, getClass().getClassLoader());
            } catch (ClassNotFoundException e) {
                Assumptions.abort(name + " NOT RUN: it needs " + c.asText() + ", which is not on the kernel's classpath"
                        + " (a dependency of notebooks/kernel/pom.xml that is not built yet)");
            }
        }
        for (JsonNode f : meta.path("fixtures")) {
            Assumptions.assumeTrue(Files.isDirectory(fixtures.resolve(f.asText())),
                    name + " NOT RUN: fixture " + fixtures.resolve(f.asText()) + " is absent");
        }
        assertTrue(Files.isRegularFile(jupyterPath.resolve("kernels/gptq4j-java/kernel.json")),
                "no kernelspec under " + jupyterPath + "; build the module (mvn -pl notebooks/kernel -am package)");
        requireNbclient();

        Path log = failedDir.resolve(name + ".log");
        Path failed = failedDir.resolve(name);
        Files.createDirectories(failedDir);
        Files.deleteIfExists(failed);
        ProcessBuilder pb = new ProcessBuilder(python, runner.toString(), nb.toString(), nb.toString(), failed.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("JUPYTER_PATH", jupyterPath.toString());
        pb.environment().remove("GPTQ4J_MODEL"); // the saved outputs come from the fixture model the notebook names
        Process p = pb.start();
        if (!p.waitFor(TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            fail(name + " did not finish in " + TIMEOUT_MINUTES + " minutes; log: " + log + "\n" + tail(log));
        }
        assertEquals(0, p.exitValue(), name + " failed (partly executed copy: " + failed + ", log: " + log + "):\n" + tail(log));
        checkSaved(nb);
    }

    /** The repository copy now has every code cell executed, no error output, and its charts as PNG. */
    private void checkSaved(Path nb) throws IOException {
        String name = nb.getFileName().toString();
        JsonNode doc = JSON.readTree(nb.toFile());
        assertEquals("gptq4j-java", doc.path("metadata").path("kernelspec").path("name").asText(), name + ": kernelspec");
        int pngs = 0;
        int index = 0;
        for (JsonNode cell : doc.path("cells")) {
            index++;
            if (!cell.path("cell_type").asText().equals("code")) continue;
            assertTrue(cell.path("execution_count").isInt(), name + " cell " + index + " was not executed");
            for (JsonNode out : cell.path("outputs")) {
                assertFalse(out.path("output_type").asText().equals("error"), name + " cell " + index + " has an error output: " + out);
                JsonNode png = out.path("data").path("image/png");
                if (png.isTextual()) {
                    BufferedImage img = ImageIO.read(new ByteArrayInputStream(Base64.getMimeDecoder().decode(png.asText())));
                    assertNotNull(img, name + " cell " + index + ": image/png output is not a PNG");
                    assertTrue(img.getWidth() >= 200 && img.getHeight() >= 150, name + " cell " + index + ": chart " + img.getWidth() + "x" + img.getHeight());
                    pngs++;
                }
            }
        }
        assertTrue(pngs > 0, name + " has no chart (image/png output)");
    }

    private void requireNbclient() throws Exception {
        Process p = new ProcessBuilder(python, "-c", "import nbclient, nbformat, jupyter_client").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            fail("executing notebooks needs Jupyter's nbclient for " + python + " (Debian: apt-get install python3-nbclient;"
                    + " GPTQ4J_PYTHON picks another python3): " + out.strip());
        }
    }

    private static String tail(Path log) throws IOException {
        if (!Files.exists(log)) return "(no log)";
        List<String> lines = new ArrayList<>(Files.readAllLines(log, StandardCharsets.UTF_8));
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
    }
}
