package gptq4j.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPU bench's own flags (BenchCommand.GPU_ONLY, read by GpuBench) pass the command line's flag check with --device
 * cuda and are a usage error on the CPU bench, which would ignore them.
 */
class CliBenchFlagsTest {
    /** A valid value for each of BenchCommand.GPU_ONLY. */
    private static final Map<String, String> VALUES = Map.of("zeros", "centered", "perms", "shared", "select", "host",
            "kv-cache-mb", "4096", "warmup", "0", "warmup-steps", "2", "activations", "fp16", "layers", "2");

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
        assertEquals(Set.copyOf(BenchCommand.GPU_ONLY), VALUES.keySet());
        for (String flag : BenchCommand.GPU_ONLY) {
            ByteArrayOutputStream se = new ByteArrayOutputStream();
            int rc = run(bench("cpu", flag, VALUES.get(flag)), se);
            String err = se.toString(StandardCharsets.UTF_8);
            assertEquals(2, rc, err);
            assertTrue(err.contains("--" + flag + " applies to the GPU bench (--device cuda) only"), err);
        }
    }

    @Test
    void gpuOnlyFlagsPassTheFlagCheckOnCuda() {
        for (String flag : BenchCommand.GPU_ONLY) {
            ByteArrayOutputStream se = new ByteArrayOutputStream();
            int rc = run(bench("cuda", flag, VALUES.get(flag)), se);
            String err = se.toString(StandardCharsets.UTF_8);
            // without a GPU the bench stops at the device, with one GpuBench refuses the tiny shape: either way after
            // the flag check, which would have answered with a usage error (2)
            assertFalse(err.contains("unknown flag"), err);
            if (rc != 0) assertNotEquals(2, rc, err);
        }
    }
}
