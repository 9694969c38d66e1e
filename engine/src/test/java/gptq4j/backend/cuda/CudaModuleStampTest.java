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

    @Test
    void fatbinMatchesStamp() throws Exception {
        byte[] fatbin;
        try (InputStream in = CudaModuleStampTest.class.getResourceAsStream(CudaDriver.MODULE_RESOURCE)) {
            assertNotNull(in, CudaDriver.MODULE_RESOURCE + " missing: run bin/build-cuda");
            fatbin = in.readAllBytes();
        }
        assertEquals(stamp().getProperty("fatbin_sha256"), sha256(fatbin),
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

    private static String sha256(byte[] b) throws NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
    }

    @Test
    void probeGivesAReasonOrABackend() {
        String why = CudaBackend.probe(0);
        if (why == null) {
            try (CudaBackend be = new CudaBackend(0)) {
                assertEquals("cuda:0", be.name());
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
