package gptq4j.backend;

import gptq4j.backend.cpu.CpuBackend;

import java.lang.reflect.InvocationTargetException;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * Picks a backend for a device string: {@code auto} tries cuda, then cpu-vector, then cpu-scalar and logs
 * why each refused candidate was refused; {@code cuda}/{@code cuda:N} insist on a GPU; {@code cpu} is the
 * Vector API path when the module is present (else scalar with one warning); {@code cpu-scalar} the reference.
 */
public final class BackendProvider {
    private static final Logger LOG = Logger.getLogger(BackendProvider.class.getName());

    private BackendProvider() { }

    /** Why CUDA could not be used, or null when it can; filled by {@link #create}. */
    public record Choice(Backend backend, List<String> refused) { }

    public static Choice create(String device, int threads) {
        String d = device == null ? "auto" : device.trim().toLowerCase();
        List<String> refused = new ArrayList<>();
        if (d.equals("auto") || d.startsWith("cuda")) {
            int ordinal = 0;
            if (d.startsWith("cuda:")) {
                try {
                    ordinal = Integer.parseInt(d.substring(5));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("device '" + device + "': expected cuda:N with N a GPU ordinal");
                }
            } else if (!d.equals("cuda") && !d.equals("auto")) {
                throw new IllegalArgumentException("unknown device '" + device + "' (auto, cpu, cpu-scalar, cuda, cuda:N)");
            }
            String why = cudaUnavailable(ordinal);
            if (why == null) return new Choice(newCuda(ordinal), refused);
            if (!d.equals("auto")) {
                throw new IllegalStateException("device " + device + " requested but CUDA is not usable: " + why);
            }
            refused.add("cuda: " + why);
            LOG.info("device auto: not using CUDA (" + why + ")");
            d = "cpu";
        }
        switch (d) {
            case "cpu": {
                String why = CpuBackend.vectorUnavailable();
                if (why == null) return new Choice(new CpuBackend(threads, true), refused);
                refused.add("cpu-vector: " + why);
                LOG.warning("Vector API not available (" + why + "); using the scalar CPU path. "
                        + "Add --add-modules jdk.incubator.vector to the JVM options for full speed.");
                return new Choice(new CpuBackend(threads, false), refused);
            }
            case "cpu-scalar":
                return new Choice(new CpuBackend(threads, false), refused);
            default:
                throw new IllegalArgumentException("unknown device '" + device + "' (auto, cpu, cpu-scalar, cuda, cuda:N)");
        }
    }

    private static final String CUDA_CLASS = "gptq4j.backend.cuda.CudaBackend";

    /** Null when CUDA device {@code ordinal} is usable, else the reason. */
    public static String cudaUnavailable(int ordinal) {
        try {
            Class<?> c = Class.forName(CUDA_CLASS);
            Object r = c.getMethod("probe", int.class).invoke(null, ordinal);
            return (String) r;
        } catch (ClassNotFoundException e) {
            return "this build has no CUDA backend";
        } catch (InvocationTargetException e) {
            return String.valueOf(e.getCause());
        } catch (ReflectiveOperationException | LinkageError e) {
            return e.toString();
        }
    }

    private static Backend newCuda(int ordinal) {
        try {
            return (Backend) Class.forName(CUDA_CLASS).getConstructor(int.class).newInstance(ordinal);
        } catch (InvocationTargetException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException re) throw re;
            throw new IllegalStateException("cannot start CUDA device " + ordinal + ": " + c, c);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot start CUDA device " + ordinal + ": " + e, e);
        }
    }
}
