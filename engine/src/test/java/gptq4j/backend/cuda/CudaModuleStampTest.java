package gptq4j.backend.cuda;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The shipped CUDA module matches its sources: the stamp bin/build-cuda wrote records the hash of
 * engine/src/main/cuda (recomputed here the same way) and of the fatbin resource. Runs without a GPU.
 */
class CudaModuleStampTest {

    private static Properties stamp() throws IOException {
        Properties p = new Properties();
        try (InputStream in = CudaModuleStampTest.class.getResourceAsStream("/gptq4j/cuda/gptq4j.stamp")) {
            assertNotNull(in, "gptq4j/cuda/gptq4j.stamp missing: run bin/build-cuda");
            p.load(in);
        }
        return p;
    }

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = CudaModuleStampTest.class.getResourceAsStream(name)) {
            assertNotNull(in, name + " missing: run bin/build-cuda");
            return in.readAllBytes();
        }
    }

    @Test
    void fatbinMatchesStamp() throws Exception {
        assertEquals(stamp().getProperty("fatbin_sha256"), sha256(resource(CudaDriver.MODULE_RESOURCE)),
                "gptq4j.fatbin does not match its stamp: run bin/build-cuda");
    }

    @Test
    void sourcesMatchStamp() throws Exception {
        Path src = Path.of(System.getProperty("gptq4j.cuda.sources", "src/main/cuda"));
        assumeTrue(Files.isDirectory(src), "CUDA sources not present at " + src.toAbsolutePath() + " (e.g. in the GPU bundle)");
        List<Path> files;
        try (Stream<Path> s = Files.list(src)) {
            files = s.filter(p -> p.toString().endsWith(".cu") || p.toString().endsWith(".cuh"))
                    .sorted((a, b) -> a.getFileName().toString().compareTo(b.getFileName().toString())).toList();
        }
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        for (Path f : files) {
            md.update((f.getFileName().toString() + "\n").getBytes(StandardCharsets.UTF_8));
            md.update(Files.readAllBytes(f));
        }
        assertEquals(stamp().getProperty("sources_sha256"), HexFormat.of().formatHex(md.digest()),
                "engine/src/main/cuda changed since the module was built: run bin/build-cuda and commit the fatbin");
    }

    @Test
    void launcherMatchesStamp() throws Exception {
        assertEquals(stamp().getProperty("launch_sha256"), sha256(resource(CudaLaunchEx.RESOURCE)),
                "libgptq4j_launch.so does not match its stamp: run bin/build-cuda");
        Path src = Path.of(System.getProperty("gptq4j.native.sources", "src/main/native"), "gptq4j_launch.c");
        assumeTrue(Files.isRegularFile(src), "launcher source not present at " + src.toAbsolutePath());
        assertEquals(stamp().getProperty("launch_source_sha256"), sha256(Files.readAllBytes(src)),
                "engine/src/main/native/gptq4j_launch.c changed since the library was built: run bin/build-cuda");
    }

    /**
     * Every kernel starts with GK_ENTER (common.cuh), or with GK_ENTER_LATE in a file that has GK_WAIT: launched with
     * programmatic dependent launch, a kernel that read or wrote memory before it could race the kernel before it.
     */
    @Test
    void everyKernelWaitsForItsPredecessorFirst() throws Exception {
        Path src = Path.of(System.getProperty("gptq4j.cuda.sources", "src/main/cuda"));
        assumeTrue(Files.isDirectory(src), "CUDA sources not present at " + src.toAbsolutePath());
        List<Path> files;
        try (Stream<Path> s = Files.list(src)) {
            files = s.filter(p -> p.toString().endsWith(".cu")).sorted().toList();
        }
        int kernels = 0;
        for (Path f : files) {
            String text = Files.readString(f);
            int at = 0;
            while ((at = text.indexOf("GPTQ4J_KERNEL", at)) >= 0) {
                int lineStart = text.lastIndexOf('\n', at) + 1;
                boolean comment = text.substring(lineStart, at).contains("//");
                int open = text.indexOf('{', at), paren = text.indexOf('(', at);
                String name = paren < 0 ? "?" : text.substring(at + "GPTQ4J_KERNEL".length(), paren).trim();
                at = open < 0 ? text.length() : open;
                if (comment || open < 0) continue;
                String body = text.substring(open + 1).replaceFirst("^[\\s\\\\]*", "");
                // GK_ENTER_LATE: the kernel's body reaches GK_WAIT after a prologue of constant reads (common.cuh)
                boolean late = body.startsWith("GK_ENTER_LATE;") && text.contains("GK_WAIT;");
                assertTrue(body.startsWith("GK_ENTER;") || late, f.getFileName() + ": the kernel '" + name
                        + "' must start with GK_ENTER; (programmatic dependent launch)");
                kernels++;
            }
        }
        assertTrue(kernels >= 30, "found only " + kernels + " kernel definitions in " + src.toAbsolutePath());
    }

    private static String sha256(byte[] b) throws NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    @Test
    void probeGivesAReasonOrABackend() {
        String why = CudaBackend.probe(0);
        if (why == null) {
            try (CudaBackend be = new CudaBackend(0)) {
                assertEquals("cuda:0", be.name());
                // on sm_90 the JNI launcher must load (linux-x86_64), or every kernel boundary costs a full drain
                if (CudaDriver.PDL && be.computeCapability().equals("9.0")) {
                    assertTrue(be.pdl(), "programmatic dependent launch unavailable: " + CudaLaunchEx.unavailable());
                }
            }
        } else {
            assertEquals(false, why.isBlank(), "probe must say why CUDA is unusable");
            try {
                new CudaBackend(0).close();
                throw new AssertionError("probe said '" + why + "' but the backend opened");
            } catch (CudaUnavailableException expected) {
                assertEquals(false, expected.getMessage().isBlank());
            }
        }
    }
}
