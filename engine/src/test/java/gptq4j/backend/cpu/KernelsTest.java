package gptq4j.backend.cpu;

import org.junit.jupiter.api.Test;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KernelsTest {

    /** Without the module the probe says so, the default kernel is scalar and still correct. */
    @Test
    void fallsBackToScalarWithoutVectorModule() throws Exception {
        String out = runChild(false);
        assertTrue(out.contains("vector=false kernel=cpu-scalar"), out);
        assertTrue(relError(out) <= 1e-5, out);
        assertTrue(out.contains("CPU vector kernels unavailable"), "one warning expected:\n" + out);
    }

    @Test
    void usesVectorWithModule() throws Exception {
        String out = runChild(true);
        assertTrue(out.contains("vector=true kernel=cpu-vector"), out);
        assertTrue(relError(out) <= 1e-5, out);
    }

    private static double relError(String out) {
        int i = out.indexOf("rel=");
        return Double.parseDouble(out.substring(i + 4).trim().split("\\s+")[0]);
    }

    private static String runChild(boolean withModule) throws Exception {
        long seed = System.nanoTime();
        List<String> cmd = new ArrayList<>();
        cmd.add(System.getProperty("java.home") + File.separator + "bin" + File.separator + "java");
        if (withModule) cmd.add("--add-modules=jdk.incubator.vector");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(VectorFallbackMain.class.getName());
        cmd.add(Long.toString(seed));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM timed out");
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), "child JVM failed (seed=" + seed + "):\n" + out);
        return out + "\nseed=" + seed;
    }

    /** The same call gives the same bits before and after the JIT compiled the kernels. */
    @Test
    void jitAgreesWithFirstCall() {
        KernelTestSupport.requireVector();
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        for (int bits : new int[] {3, 4}) {
            RandomGptq r = RandomGptq.create(rnd, 256, 64, bits, 32, true, false);
            PackedGptq p = Kernels.pack(r.layer);
            float[] x = KernelTestSupport.gaussian(rnd, 5 * 256);
            try (Parallel par = new Parallel(2)) {
                List<GptqKernel> ks = new ArrayList<>(List.of(Kernels.scalarGptq(par)));
                if (Kernels.vectorAvailable()) ks.add(Kernels.vectorGptq(par));
                for (GptqKernel k : ks) {
                    float[] cold1 = new float[64], cold5 = new float[5 * 64];
                    k.matmul(p, x, 0, 1, cold1, 0);
                    k.matmul(p, x, 0, 5, cold5, 0);
                    float[] y1 = new float[64], y5 = new float[5 * 64];
                    for (int i = 0; i < 3000; i++) {
                        k.matmul(p, x, 0, 1, y1, 0);
                        k.matmul(p, x, 0, 5, y5, 0);
                    }
                    assertArrayEquals(cold1, y1, k.name() + " " + bits + "bit T=1 seed=" + seed);
                    assertArrayEquals(cold5, y5, k.name() + " " + bits + "bit T=5 seed=" + seed);
                }
            }
        }
    }
}
