package gptq4j.backend.cpu;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Shared helpers: random inputs, float64 references, the relative-error check, the kernels under test. */
final class KernelTestSupport {
    private KernelTestSupport() { }

    static float[] gaussian(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) rnd.nextGaussian();
        return x;
    }

    /** ref[t*out + o] = sum_i w[o][i] * x[t*in + i] in float64. */
    static double[] reference(float[][] w, float[] x, int xOff, int T) {
        int out = w.length, in = w[0].length;
        double[] ref = new double[T * out];
        for (int t = 0; t < T; t++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                float[] row = w[o];
                for (int i = 0; i < in; i++) s += (double) row[i] * x[xOff + t * in + i];
                ref[t * out + o] = s;
            }
        }
        return ref;
    }

    /** Per token: ||got - ref|| / ||ref|| <= bound; the message names the case and the seed. */
    static void assertClose(String what, double[] ref, float[] got, int outOff, int T, int out, double bound) {
        for (int t = 0; t < T; t++) {
            double num = 0, den = 0;
            for (int o = 0; o < out; o++) {
                double r = ref[t * out + o], d = got[outOff + t * out + o] - r;
                if (!Double.isFinite(got[outOff + t * out + o])) fail(what + ": token " + t + " row " + o + " is " + got[outOff + t * out + o]);
                num += d * d;
                den += r * r;
            }
            double rel = Math.sqrt(num / den);
            assertTrue(rel <= bound, what + ": token " + t + " relative error " + rel + " > " + bound);
        }
    }

    /** The vector module is in the boot layer whenever the test JVM was started with it (surefire does). */
    static boolean vectorModulePresent() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    static void requireVector() {
        if (vectorModulePresent()) {
            assertTrue(Kernels.vectorAvailable(), "jdk.incubator.vector is present but the vector kernels are not: "
                    + Kernels.vectorUnavailableReason());
        }
    }
}
