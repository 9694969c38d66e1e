package gptq4j.backend.cpu;

import gptq4j.quant.gptq.GptqConfig;
import gptq4j.quant.gptq.GptqLinear;
import gptq4j.util.Half;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Benchmark program (not a test): scalar vs vector GPTQ kernels on a random 4-bit, group 128, act-order layer of
 * Mixtral's expert shape (4096x14336 and its transpose), matrix-vector (T=1) and T=16, against the machine's
 * streaming-read bandwidth measured here.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp engine/target/classes:$(cat cp.txt) gptq4j.backend.cpu.KernelBench
 *     [--threads N (0 = all, default)] [--seconds S per measurement, default 2] [--bits B, default 4]</pre>
 */
public final class KernelBench {
    private KernelBench() { }

    public static void main(String[] args) throws Exception {
        int threads = 0, bits = 4;
        double seconds = 2;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--threads" -> threads = Integer.parseInt(args[++i]);
                case "--seconds" -> seconds = Double.parseDouble(args[++i]);
                case "--bits" -> bits = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + " (use --threads N, --seconds S, --bits B)");
            }
        }
        try (Parallel par = new Parallel(threads)) {
            System.out.printf("device: %s, %d hardware threads; kernel threads: %d%n", cpuName(),
                    Runtime.getRuntime().availableProcessors(), par.threads());
            System.out.printf("JDK: %s %s (%s)%n", System.getProperty("java.vm.name"), System.getProperty("java.runtime.version"),
                    System.getProperty("java.home"));
            System.out.printf("vector: %s, lanes (floats) = %d%n", Kernels.vectorAvailable() ? "available" : "unavailable ("
                    + Kernels.vectorUnavailableReason() + ")", Kernels.preferredLanes());
            double bw = streamingRead(par, seconds);
            System.out.printf("streaming read (sum of a 1 GiB long[] on %d threads): %.2f GB/s%n%n", par.threads(), bw / 1e9);
            GptqKernel scalar = Kernels.scalarGptq(par);
            GptqKernel vector = Kernels.vectorAvailable() ? Kernels.vectorGptq(par) : null;
            for (int[] shape : new int[][] {{4096, 14336}, {14336, 4096}}) {
                int in = shape[0], out = shape[1];
                long t0 = System.nanoTime();
                GptqLinear layer = randomLayer(new SplittableRandom(42), in, out, bits, 128);
                PackedGptq p = Kernels.pack(layer);
                System.out.printf("layer in=%d out=%d, %d-bit g128 act-order: packed weights %.1f MB (+%.1f MB scales/zeros/perm), packed in %.1f s%n",
                        in, out, bits, p.weightBytes() / 1e6, (p.bytes() - p.weightBytes()) / 1e6, (System.nanoTime() - t0) / 1e9);
                double sT1 = 0, vT1 = 0;
                for (int T : new int[] {1, 16}) {
                    float[] x = new float[T * in];
                    SplittableRandom r = new SplittableRandom(7);
                    for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextDouble() * 2 - 1);
                    float[] y = new float[T * out];
                    double ts = time(scalar, p, x, T, y, seconds);
                    double tv = vector == null ? Double.NaN : time(vector, p, x, T, y, seconds);
                    if (T == 1) { sT1 = ts; vT1 = tv; }
                    report("scalar", p, T, ts, bw);
                    if (vector != null) report("vector", p, T, tv, bw);
                    if (vector != null) System.out.printf("  T=%d vector/scalar speed-up: %.2fx%n", T, ts / tv);
                }
                System.out.println();
            }
        }
    }

    private static void report(String name, PackedGptq p, int T, double sec, double bw) {
        double gbs = p.weightBytes() / sec;
        double gflops = 2.0 * p.in() * p.out() * T / sec / 1e9;
        System.out.printf("  %-6s T=%-2d %8.3f ms/call  %6.2f GB/s packed weights  %6.2f GFLOP/s  %5.1f%% of streaming read%n",
                name, T, sec * 1e3, gbs / 1e9, gflops, 100 * gbs / bw);
    }

    /** Median seconds per call after a warm-up, over about {@code seconds}. */
    private static double time(GptqKernel k, PackedGptq p, float[] x, int T, float[] y, double seconds) {
        long warmEnd = System.nanoTime() + (long) (seconds * 0.5e9);
        while (System.nanoTime() < warmEnd) k.matmul(p, x, 0, T, y, 0);
        double[] samples = new double[100000];
        int n = 0;
        long end = System.nanoTime() + (long) (seconds * 1e9);
        do {
            long a = System.nanoTime();
            k.matmul(p, x, 0, T, y, 0);
            samples[n++] = (System.nanoTime() - a) / 1e9;
        } while (System.nanoTime() < end && n < samples.length);
        double[] s = Arrays.copyOf(samples, n);
        Arrays.sort(s);
        return s[n / 2];
    }

    /** Bytes per second summing a 1 GiB long[] split over the pool's threads (median of several passes). */
    public static double streamingRead(Parallel par, double seconds) {
        long[] a = new long[1 << 27];
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < a.length; i += 512) a[i] = r.nextLong();
        long[] sink = new long[1];
        int chunks = par.threads() * 4;
        int per = a.length / chunks;
        double[] samples = new double[64];
        int n = 0;
        long end = System.nanoTime() + (long) (seconds * 1e9);
        for (int pass = 0; pass < samples.length && (pass < 3 || System.nanoTime() < end); pass++) {
            long t0 = System.nanoTime();
            long[] partial = new long[chunks];
            par.parallelFor(chunks, 1, (from, to) -> {
                for (int c = from; c < to; c++) partial[c] = sum(a, c * per, (c + 1) * per);
            });
            double sec = (System.nanoTime() - t0) / 1e9;
            for (long v : partial) sink[0] += v;
            if (pass > 0) samples[n++] = sec; // the first pass warms up
        }
        if (sink[0] == 42) System.out.print("");
        double[] s = Arrays.copyOf(samples, n);
        Arrays.sort(s);
        return (double) a.length * 8 / s[n / 2];
    }

    private static long sum(long[] a, int from, int to) {
        long s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = from;
        for (; i + 4 <= to; i += 4) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
        }
        for (; i < to; i++) s0 += a[i];
        return s0 + s1 + s2 + s3;
    }

    /**
     * A random layer in the checkpoint format: random packed words (any bits are valid values), symmetric
     * zeros, fp16 scales, act-order g_idx from a random permutation.
     */
    static GptqLinear randomLayer(SplittableRandom r, int in, int out, int bits, int groupSize) {
        int groups = in / groupSize;
        ByteBuffer qweight = ByteBuffer.allocate(in * bits / 32 * out * 4).order(ByteOrder.LITTLE_ENDIAN);
        while (qweight.hasRemaining()) qweight.putInt(r.nextInt());
        int zeroWords = out * bits / 32;
        ByteBuffer qzeros = ByteBuffer.allocate(groups * zeroWords * 4).order(ByteOrder.LITTLE_ENDIAN);
        int stored = (1 << (bits - 1)) - 1;
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                long bit = (long) o * bits;
                int word = (int) (bit >>> 5), sh = (int) (bit & 31);
                int idx = (g * zeroWords + word) * 4;
                qzeros.putInt(idx, qzeros.getInt(idx) | stored << sh);
                if (sh + bits > 32) qzeros.putInt(idx + 4, qzeros.getInt(idx + 4) | stored >>> (32 - sh));
            }
        }
        ByteBuffer scales = ByteBuffer.allocate(groups * out * 2).order(ByteOrder.LITTLE_ENDIAN);
        while (scales.hasRemaining()) scales.putShort(Half.fromFloat((float) (0.002 + 0.02 * r.nextDouble())));
        int[] perm = new int[in];
        for (int i = 0; i < in; i++) perm[i] = i;
        for (int i = in - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
        }
        int[] gIdx = new int[in];
        for (int j = 0; j < in; j++) gIdx[perm[j]] = j / groupSize;
        return new GptqLinear("bench." + in + "x" + out, in, out, groups, new GptqConfig(bits, groupSize, true, true),
                qweight.flip(), qzeros, scales.flip(), gIdx);
    }

    private static String cpuName() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).trim();
            }
        } catch (Exception ignored) {
            // not Linux
        }
        return System.getProperty("os.arch");
    }
}
