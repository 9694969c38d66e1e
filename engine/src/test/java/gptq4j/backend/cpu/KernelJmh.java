package gptq4j.backend.cpu;

import gptq4j.loader.HalfMatrix;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Random;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * JMH benchmarks of the CPU kernels (a program, not a test; see BENCHMARKS.md for the command line):
 * <ul>
 * <li>{@code gptq}: a GPTQ layer of Mixtral's expert shape (in x out, default 4096x14336, {@code bits}-bit, group 128,
 *     act order) times T tokens, vector or scalar kernel;</li>
 * <li>{@code lmHead}: the fp16-kept lm_head of the small benchmark model (32000x2048) times T tokens.</li>
 * </ul>
 * Bytes per call for bandwidth: 4096x14336 at 4 bits is 29.4 MB of packed weights; lm_head 131 MB.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@State(Scope.Benchmark)
public class KernelJmh {
    @Param({"vector"})
    public String kernel;

    @Param({"1", "16"})
    public int T;

    @Param({"4"})
    public int bits;

    @Param({"4096x14336"})
    public String shape;

    @Param({"0"})
    public int threads;

    private Parallel parallel;
    private PackedGptq layer;
    private GptqKernel gptq;
    private HalfDense lmHead;
    private HalfDenseKernel half;
    private float[] x, y, xh, yh;

    @Setup(Level.Trial)
    public void setUp() {
        parallel = new Parallel(threads);
        String[] s = shape.split("x");
        int in = Integer.parseInt(s[0]), out = Integer.parseInt(s[1]);
        layer = Kernels.pack(KernelBench.randomLayer(new SplittableRandom(42), in, out, bits, 128));
        boolean vec = kernel.equals("vector");
        gptq = vec ? Kernels.vectorGptq(parallel) : Kernels.scalarGptq(parallel);
        Random r = new Random(7);
        x = KernelTestSupport.gaussian(r, T * in);
        y = new float[T * out];
        HalfMatrix hm = HalfDenseKernelTest.randomHalf(r, 32000, 2048);
        lmHead = HalfDense.ofF16(hm, Kernels.preferredLanes());
        half = vec ? Kernels.vectorHalfDense(parallel) : Kernels.scalarHalfDense(parallel);
        xh = KernelTestSupport.gaussian(r, T * 2048);
        yh = new float[T * 32000];
    }

    @TearDown(Level.Trial)
    public void tearDown() { parallel.close(); }

    @Benchmark
    public float gptq() {
        gptq.matmul(layer, x, 0, T, y, 0);
        return y[0];
    }

    @Benchmark
    public float lmHead() {
        half.matmul(lmHead, xh, 0, T, yh, 0);
        return yh[0];
    }
}
