package gptq4j.backend.cpu;

import java.util.Random;

/**
 * Run in a child JVM by {@link KernelsTest}, possibly without {@code jdk.incubator.vector}: prints
 * {@code vector=<bool> kernel=<name> rel=<relative error of a random 4-bit product>}.
 */
public final class VectorFallbackMain {
    public static void main(String[] args) {
        long seed = Long.parseLong(args[0]);
        Random rnd = new Random(seed);
        RandomGptq r = RandomGptq.create(rnd, 256, 64, 4, 128, true, false);
        float[] x = KernelTestSupport.gaussian(rnd, 2 * 256);
        double[] ref = KernelTestSupport.reference(r.dequantised(), x, 0, 2);
        float[] y = new float[2 * 64];
        try (Parallel p = new Parallel(2)) {
            GptqKernel k = Kernels.gptq(p);
            k.matmul(Kernels.pack(r.layer), x, 0, 2, y, 0);
            double num = 0, den = 0;
            for (int i = 0; i < y.length; i++) {
                num += (y[i] - ref[i]) * (y[i] - ref[i]);
                den += ref[i] * ref[i];
            }
            System.out.println("vector=" + Kernels.vectorAvailable() + " kernel=" + k.name() + " rel=" + Math.sqrt(num / den));
        }
    }
}
