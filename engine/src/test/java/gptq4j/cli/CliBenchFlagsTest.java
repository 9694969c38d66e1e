package gptq4j.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPU bench's own flags (BenchCommand.GPU_ONLY, read by GpuBench) pass the command line's flag check with --device
 * cuda and are a usage error on the CPU bench, which would ignore them.
 */
class CliBenchFlagsTest {
    private static final List<String> VALUES = List.of("centered", "shared", "host", "4096", "0", "2", "fp16", "2");

    private static String[] bench(String device, String flag, String value) {
        List<String> a = new ArrayList<>(List.of("bench", "--shape", "tiny", "--device", device, "--batch", "1",
                "--prompt-tokens", "2", "--new-tokens", "1"));
        a.add("--" + flag);
        a.add(value);
        return a.toArray(String[]::new);
    }

    private static int run(String[] argv, ByteArrayOutputStream se) {
        return Main.run(argv, new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(se, true, StandardCharsets.UTF_8));
    }

    @Test
    void gpuOnlyFlagsAreAUsageErrorOnTheCpu() {
        assertEquals(VALUES.size(), BenchCommand.GPU_ONLY.size());
        for (int i = 0; i < VALUES.size(); i++) {
            String flag = BenchCommand.GPU_ONLY.get(i);
            ByteArrayOutputStream se = new ByteArrayOutputStream();
            int rc = run(bench("cpu", flag, VALUES.get(i)), se);
            String err = se.toString(StandardCharsets.UTF_8);
            assertEquals(2, rc, err);
            assertTrue(err.contains("--" + flag + " applies to the GPU bench (--device cuda) only"), err);
        }
    }

    @Test
    void gpuOnlyFlagsPassTheFlagCheckOnCuda() {
        for (int i = 0; i < VALUES.size(); i++) {
            String flag = BenchCommand.GPU_ONLY.get(i);
            ByteArrayOutputStream se = new ByteArrayOutputStream();
            int rc = run(bench("cuda", flag, VALUES.get(i)), se);
            String err = se.toString(StandardCharsets.UTF_8);
            // without a GPU the bench stops at the device; with one it runs: either way not at the flag check
            assertFalse(err.contains("unknown flag"), err);
            if (rc != 0) assertNotEquals(2, rc, err);
        }
    }
}
