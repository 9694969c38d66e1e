package gptq4j.backend.cuda;

import gptq4j.quant.gptq.GptqConfig;
import gptq4j.quant.gptq.GptqLinear;
import gptq4j.util.Half;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Shared by the CUDA tests: one backend per JVM (skipping with the probe's reason when no GPU is usable),
 * random GPTQ layers, float64 references, and a report file ({@code -Dgptq4j.report=FILE}) where each test
 * appends "key value" lines that the GPU bundle's run-tests turns into its JSON summary.
 */
final class CudaTestSupport {
    private CudaTestSupport() { }

    private static CudaBackend backend;
    private static String unavailable;
    private static boolean probed;

    /** The device the CUDA tests run on: 0, or -Dgptq4j.cuda.device. */
    static int deviceOrdinal() { return Integer.getInteger("gptq4j.cuda.device", 0); }

    /** The shared backend on {@link #deviceOrdinal()}, or a skipped test with the reason. */
    static synchronized CudaBackend backend() {
        if (!probed) {
            probed = true;
            int ordinal = deviceOrdinal();
            unavailable = CudaBackend.probe(ordinal);
            if (unavailable == null) {
                backend = new CudaBackend(ordinal);
                System.out.println("CUDA tests on " + backend.name() + ": " + backend.deviceName() + " (sm "
                        + backend.computeCapability() + ")");
                Runtime.getRuntime().addShutdownHook(new Thread(backend::close));
            }
        }
        assumeTrue(unavailable == null, "CUDA tests skipped: " + unavailable);
        return backend;
    }

    /** Appends "key value" to the report file, when one is configured. */
    static synchronized void report(String key, double value) {
        String file = System.getProperty("gptq4j.report");
        if (file == null) return;
        try {
            Files.writeString(Path.of(file), key + " " + value + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new AssertionError("cannot write report " + file, e);
        }
    }

    static float[] gaussian(Random r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * scale);
        return a;
    }

    /** ‖a − b‖ / ‖b‖. */
    static double relErr(float[] a, double[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < b.length; i++) {
            double d = a[i] - b[i];
            num += d * d;
            den += b[i] * b[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-300));
    }

    /**
     * Runs op(x, y) on device copies of x (T x in floats) and of an output of T x out floats first filled with NaN, so
     * an output the op does not write shows; returns the output.
     */
    static float[] runOnDevice(CudaBackend be, float[] x, int T, int in, int out,
                               java.util.function.BiConsumer<gptq4j.backend.Buf, gptq4j.backend.Buf> op) {
        gptq4j.backend.Buf xb = be.allocFloats((long) T * in), yb = be.allocFloats((long) T * out);
        be.write(xb, x, x.length);
        float[] y = new float[T * out];
        java.util.Arrays.fill(y, Float.NaN);
        be.write(yb, y, y.length);
        op.accept(xb, yb);
        be.read(yb, 0, y, y.length);
        be.free(xb);
        be.free(yb);
        return y;
    }

    static boolean allFinite(float[] a) {
        for (float v : a) if (!Float.isFinite(v)) return false;
        return true;
    }

    /**
     * A random GPTQ layer in the AutoGPTQ v1 layout: random codes, random zeros (or all 2^(bits-1) when sym),
     * fp16 scales, and g_idx either i / groupSize or, with act order, a random permutation of that.
     */
    static GptqLinear randomGptq(Random r, String name, int in, int out, int bits, int groupSize, boolean actOrder,
                                 boolean sym) {
        int gs = groupSize == -1 ? in : groupSize;
        int groups = in / gs;
        ByteBuffer qw = le((long) in * bits / 32 * out * 4);
        for (int i = 0; i < qw.capacity() / 4; i++) qw.putInt(i * 4, r.nextInt());
        int zw = out * bits / 32;
        int[] zeros = new int[zw * groups];
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                int z = sym ? (1 << (bits - 1)) - 1 : r.nextInt(1 << bits);
                putBits(zeros, g * zw, (long) o * bits, bits, z);
            }
        }
        ByteBuffer qz = le(4L * zeros.length);
        for (int i = 0; i < zeros.length; i++) qz.putInt(i * 4, zeros[i]);
        ByteBuffer sc = le(2L * groups * out);
        for (int i = 0; i < groups * out; i++) sc.putShort(i * 2, Half.fromFloat((float) (0.002 + 0.02 * r.nextDouble())));
        int[] gIdx = new int[in];
        int[] order = new int[in];
        for (int i = 0; i < in; i++) order[i] = i;
        if (actOrder) {
            for (int i = in - 1; i > 0; i--) {
                int j = r.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        for (int rank = 0; rank < in; rank++) gIdx[order[rank]] = rank / gs;
        return new GptqLinear(name, in, out, groups, new GptqConfig(bits, groupSize, actOrder, sym), qw, qz, sc, gIdx);
    }

    /** g with another g_idx (e.g. another projection's of the same input, as GPTQ's act order gives them). */
    static GptqLinear withGIdx(GptqLinear g, int[] gIdx) {
        return new GptqLinear(g.name(), g.in(), g.out(), g.groups(), g.config(), g.qweight(), g.qzeros(), g.scales(),
                gIdx.clone());
    }

    private static ByteBuffer le(long bytes) {
        return ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void putBits(int[] words, int base, long bit, int bits, int value) {
        int word = (int) (bit >>> 5), shift = (int) (bit & 31);
        words[base + word] |= value << shift;
        if (shift + bits > 32) words[base + word + 1] |= value >>> (32 - shift);
    }

    /** An fp16 matrix's values as doubles, [rows][cols] (the float64 reference of its products). */
    static double[][] toDouble(gptq4j.loader.HalfMatrix m) {
        double[][] d = new double[m.rows()][m.cols()];
        for (int o = 0; o < m.rows(); o++) for (int i = 0; i < m.cols(); i++) d[o][i] = m.get(o, i);
        return d;
    }

    /** W as double [out][in] from the scalar definition. */
    static double[][] dequant(GptqLinear w) {
        double[][] d = new double[w.out()][w.in()];
        for (int o = 0; o < w.out(); o++) for (int i = 0; i < w.in(); i++) d[o][i] = w.weight(o, i);
        return d;
    }

    /** y[t][o] = Σ_i x[t][i] W[o][i] in double. */
    static double[] matmul(float[] x, int T, double[][] w) {
        int out = w.length, in = w[0].length;
        double[] y = new double[T * out];
        for (int t = 0; t < T; t++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                double[] wr = w[o];
                for (int i = 0; i < in; i++) s += x[t * in + i] * wr[i];
                y[t * out + o] = s;
            }
        }
        return y;
    }
}
