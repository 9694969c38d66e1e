package gptq4j.backend.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * cuLaunchKernelEx through a small JNI library shipped in the jar (engine/src/main/native, built by bin/build-cuda;
 * JCuda 12.6 binds only cuLaunchKernel). It launches kernels with programmatic dependent launch (PDL, sm_90): the
 * next kernel of a stream, or of a captured CUDA graph, is scheduled while the current one runs and waits in
 * {@code GK_ENTER} (common.cuh) until it completes, so the gap between two kernels shrinks. The library exists for
 * linux-x86_64 only; elsewhere, or when it fails to load, {@link #unavailable()} says why and the driver launches
 * through JCuda as before.
 */
final class CudaLaunchEx {
    static final String RESOURCE = "/gptq4j/cuda/linux-x86_64/libgptq4j_launch.so";
    /** Arguments per launch the library accepts (MAX_ARGS in gptq4j_launch.c). */
    static final int MAX_ARGS = 64;
    private static final String UNAVAILABLE = load();

    private CudaLaunchEx() { }

    private static String load() {
        String os = System.getProperty("os.name", ""), arch = System.getProperty("os.arch", "");
        if (!os.startsWith("Linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            return "no launcher library for " + os + "/" + arch;
        }
        try (InputStream in = CudaLaunchEx.class.getResourceAsStream(RESOURCE)) {
            if (in == null) return "resource " + RESOURCE + " missing (run bin/build-cuda)";
            Path dir = Files.createTempDirectory("gptq4j-launch");
            Path lib = dir.resolve("libgptq4j_launch.so");
            Files.copy(in, lib, StandardCopyOption.REPLACE_EXISTING);
            lib.toFile().deleteOnExit();
            dir.toFile().deleteOnExit();
            System.load(lib.toAbsolutePath().toString());
        } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
            return "cannot load " + RESOURCE + ": " + e;
        }
        int rc = init();
        return rc == 0 ? null : rc == -1 ? "libcuda.so.1 not found" : "the driver has no cuLaunchKernelEx (CUDA 12+ drivers have it)";
    }

    /** Why PDL launches are not possible in this JVM, or null when they are. */
    static String unavailable() { return UNAVAILABLE; }

    private static native int init();

    /**
     * One launch: function and stream are the driver handles (0 = the null stream), args a direct little-endian
     * buffer of nargs 8-byte slots (argument i in slot i), pdl with the programmatic stream serialization
     * attribute. Returns the CUresult.
     */
    static native int launch(long function, int gx, int gy, int gz, int bx, int by, int bz, int smem, long stream,
                             ByteBuffer args, int nargs, boolean pdl);
}
