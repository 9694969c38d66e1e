package gptq4j.backend;

import gptq4j.backend.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Device choice: auto falls back to the CPU with the reason; an explicit cuda without a GPU is a clear error. */
class BackendProviderTest {

    @Test
    void autoPicksCudaWhenUsableElseTheCpuAndSaysWhy() {
        String cuda = BackendProvider.cudaUnavailable(0);
        BackendProvider.Choice c = BackendProvider.create("auto", 1);
        try (Backend b = c.backend()) {
            if (cuda == null) {
                assertTrue(b.name().startsWith("cuda"), b.name());
            } else {
                assertEquals(CpuBackend.vectorUnavailable() == null ? "cpu-vector" : "cpu-scalar", b.name());
                assertTrue(c.refused().get(0).startsWith("cuda: "), c.refused().toString());
                assertFalse(c.refused().get(0).substring(6).isBlank());
            }
        }
    }

    @Test
    void explicitCudaWithoutAGpuFailsWithTheReason() {
        String why = BackendProvider.cudaUnavailable(0);
        if (why == null) return; // a GPU is present: covered by the CUDA tests
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> BackendProvider.create("cuda:0", 1));
        assertTrue(e.getMessage().contains(why), e.getMessage());
    }

    @Test
    void unknownDevicesAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> BackendProvider.create("tpu", 1));
        assertThrows(IllegalArgumentException.class, () -> BackendProvider.create("cuda:x", 1));
    }

    @Test
    void cpuScalarIsTheReference() {
        try (Backend b = BackendProvider.create("cpu-scalar", 1).backend()) {
            assertEquals("cpu-scalar", b.name());
        }
    }
}
