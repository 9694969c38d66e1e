package gptq4j.backend.cpu;

import java.lang.reflect.InvocationTargetException;

/**
 * Picks the CPU kernels. The Vector API ({@code jdk.incubator.vector}) is only used when the JVM resolved that
 * module ({@code --add-modules jdk.incubator.vector}); its classes are reached reflectively, so this class loads
 * and the scalar kernels run without it, after one logged warning.
 */
public final class Kernels {
    /** System property: set to {@code false} to refuse the vector kernels (default {@code true}). */
    public static final String VECTOR_PROPERTY = "gptq4j.cpu.vector";

    private static final System.Logger LOG = System.getLogger(Kernels.class.getName());
    private static final String VECTOR_GPTQ = "gptq4j.backend.cpu.VectorGptqKernel";
    private static final String VECTOR_DENSE = "gptq4j.backend.cpu.VectorDenseKernel";
    private static final String VECTOR_HALF_DENSE = "gptq4j.backend.cpu.VectorHalfDenseKernel";

    private Kernels() { }

    /** Result of the one-time probe: lanes > 0 when usable, else the reason. */
    private static final class Probe {
        static final int LANES;
        static final String REASON;

        static {
            int lanes = 0;
            String reason = null;
            if (!Boolean.parseBoolean(System.getProperty(VECTOR_PROPERTY, "true"))) {
                reason = "disabled by -D" + VECTOR_PROPERTY + "=false";
            } else {
                try {
                    lanes = (Integer) Class.forName(VECTOR_GPTQ).getMethod("preferredLanes").invoke(null);
                    if (lanes < 2) {
                        reason = "the preferred float vector has " + lanes + " lane(s)";
                        lanes = 0;
                    }
                } catch (InvocationTargetException e) {
                    reason = describe(e.getCause());
                } catch (ReflectiveOperationException | LinkageError e) {
                    reason = describe(e);
                }
            }
            if (reason != null) {
                LOG.log(System.Logger.Level.WARNING, "CPU vector kernels unavailable (" + reason
                        + "); using the scalar kernels. Start the JVM with --add-modules jdk.incubator.vector to enable them.");
            }
            LANES = lanes;
            REASON = reason;
        }

        private static String describe(Throwable t) {
            if (t instanceof ExceptionInInitializerError && t.getCause() != null) t = t.getCause();
            return t.getClass().getSimpleName() + ": " + t.getMessage();
        }
    }

    /** Whether the Vector API kernels can run in this JVM. */
    public static boolean vectorAvailable() { return Probe.LANES > 0; }

    /** Why the vector kernels are unavailable, or null. */
    public static String vectorUnavailableReason() { return Probe.REASON; }

    /** The lane count layouts should be packed with: the vector width in floats, or 8 without the Vector API. */
    public static int preferredLanes() { return vectorAvailable() ? Probe.LANES : 8; }

    /** The vector GPTQ kernel when available, else the scalar one. */
    public static GptqKernel gptq(Parallel parallel) {
        return vectorAvailable() ? vectorGptq(parallel) : scalarGptq(parallel);
    }

    public static GptqKernel scalarGptq(Parallel parallel) { return new ScalarGptqKernel(parallel, preferredLanes()); }

    /** The vector GPTQ kernel; throws IllegalStateException naming the reason when unavailable. */
    public static GptqKernel vectorGptq(Parallel parallel) { return (GptqKernel) newVector(VECTOR_GPTQ, parallel); }

    /**
     * The vector GPTQ kernel with its 4-bit decode scheme forced (subnormal floats or int-to-float conversion) instead
     * of the {@code gptq4j.cpu.subnormalDecode} default; for tests and benchmarks.
     */
    static GptqKernel vectorGptq(Parallel parallel, boolean subnormalDecode) {
        if (!vectorAvailable()) throw new IllegalStateException("CPU vector kernels unavailable: " + Probe.REASON);
        try {
            return (GptqKernel) Class.forName(VECTOR_GPTQ).getConstructor(Parallel.class, boolean.class)
                    .newInstance(parallel, subnormalDecode);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException("cannot create " + VECTOR_GPTQ, e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot create " + VECTOR_GPTQ, e);
        }
    }

    /** The vector dense kernel when available, else the scalar one. */
    public static DenseKernel dense(Parallel parallel) {
        return vectorAvailable() ? vectorDense(parallel) : scalarDense(parallel);
    }

    public static DenseKernel scalarDense(Parallel parallel) { return new ScalarDenseKernel(parallel); }

    public static DenseKernel vectorDense(Parallel parallel) { return (DenseKernel) newVector(VECTOR_DENSE, parallel); }

    public static HalfDenseKernel scalarHalfDense(Parallel parallel) { return new ScalarHalfDenseKernel(parallel); }

    public static HalfDenseKernel vectorHalfDense(Parallel parallel) {
        return (HalfDenseKernel) newVector(VECTOR_HALF_DENSE, parallel);
    }

    /** Packs a layer for the kernels this class hands out. */
    public static PackedGptq pack(gptq4j.quant.gptq.GptqLinear w) { return PackedGptq.pack(w, preferredLanes()); }

    private static Object newVector(String cls, Parallel parallel) {
        if (!vectorAvailable()) {
            throw new IllegalStateException("CPU vector kernels unavailable: " + Probe.REASON);
        }
        try {
            return Class.forName(cls).getConstructor(Parallel.class).newInstance(parallel);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException("cannot create " + cls, e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot create " + cls, e);
        }
    }
}
