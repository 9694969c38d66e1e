package gptq4j.backend.cuda;

import gptq4j.backend.AttentionBatch;
import gptq4j.backend.Backend;
import gptq4j.backend.Buf;
import gptq4j.backend.KvCache;
import gptq4j.loader.HalfMatrix;
import gptq4j.quant.gptq.GptqLinear;
import gptq4j.util.Half;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@link Backend} on one NVIDIA GPU (JCuda driver API). Activations are float32 in device memory;
 * GPTQ weights are repacked once at load (act order undone by sorting the input rows by group, the
 * activation permutation applied by the kernel), fp16 matrices stay fp16, the KV cache is float32 (fp16 with
 * {@code -Dgptq4j.cuda.kvFp16=true}: half the memory, about 1e-3 relative drift from the CPU engine).
 * Every kernel computes a token's result in an order independent of the other tokens (batch invariance).
 * Operations are queued on the default stream; {@link #read} and {@link #synchronize} wait for them.
 */
public final class CudaBackend implements Backend {
    private final CudaDriver drv;
    private final String name;
    /** Every live device allocation, freed on close. */
    private final Map<CUdeviceptr, String> allocations = new IdentityHashMap<>();
    private final Scratch scratch = new Scratch();

    /**
     * -Dgptq4j.cuda.fp16Activations=true: the GPTQ products take their activations as one fp16 value each (x scaled
     * by the split's power of two, then rounded once: relative error <= 2^-11 per input), as fp16 inference engines
     * do, instead of the default hi + lo pair that carries float32's precision. Half the activation bytes and, at
     * large batches, half the tensor-core work of gq_wg.cu; logits drift about 1e-3 relative from the CPU engine.
     * Still batch invariant (every kernel sums the same hi-plane products).
     */
    static final boolean FP16_ACTIVATIONS = Boolean.getBoolean("gptq4j.cuda.fp16Activations");
    private final boolean fp16Activations;

    /** Opens device {@code ordinal}; throws {@link CudaUnavailableException} when CUDA cannot be used. */
    public CudaBackend(int ordinal) {
        this(ordinal, FP16_ACTIVATIONS);
    }

    /** Opens device {@code ordinal} with fp16 activations in the GPTQ products or not (see FP16_ACTIVATIONS). */
    public CudaBackend(int ordinal, boolean fp16Activations) {
        this.drv = new CudaDriver(ordinal);
        this.name = "cuda:" + ordinal;
        this.fp16Activations = fp16Activations;
    }

    /** Whether the GPTQ products take fp16 activations (one plane) rather than the float32-precise hi + lo pair. */
    public boolean fp16Activations() { return fp16Activations; }

    /**
     * Whether CUDA device {@code ordinal} can be used: null when it can, else the reason (no driver library,
     * driver initialisation failed, no such device, compute capability below 8.0). Starts no context.
     */
    public static String probe(int ordinal) {
        try {
            CudaDriver.initDriver();
            int[] count = new int[1];
            int rc = jcuda.driver.JCudaDriver.cuDeviceGetCount(count);
            if (rc != 0) return "cuDeviceGetCount failed: " + CudaDriver.errorName(rc);
            if (count[0] == 0) return "no CUDA device is visible";
            if (ordinal < 0 || ordinal >= count[0]) {
                return "CUDA device " + ordinal + " does not exist (" + count[0] + " visible)";
            }
            jcuda.driver.CUdevice dev = new jcuda.driver.CUdevice();
            rc = jcuda.driver.JCudaDriver.cuDeviceGet(dev, ordinal);
            if (rc != 0) return "cuDeviceGet(" + ordinal + ") failed: " + CudaDriver.errorName(rc);
            int[] major = new int[1];
            jcuda.driver.JCudaDriver.cuDeviceGetAttribute(major,
                    jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
            if (major[0] < 8) return "CUDA device " + ordinal + " has compute capability " + major[0] + ".x; 8.0 or newer is needed";
            return null;
        } catch (CudaException e) {
            return e.getMessage();
        } catch (LinkageError e) {
            return "JCuda could not be loaded: " + e;
        }
    }

    @Override
    public String name() { return name; }

    /** The GPU's name, e.g. "NVIDIA H100 80GB HBM3". */
    public String deviceName() { return drv.deviceName(); }

    /** Whether kernels launch with programmatic dependent launch (sm_90, -Dgptq4j.cuda.pdl). */
    public boolean pdl() { return drv.pdl(); }

    /** Compute capability, e.g. "9.0". */
    public String computeCapability() { return drv.computeCapability(); }

    /** Free and total device memory in bytes. */
    public long[] memoryInfo() {
        drv.bind();
        return drv.memInfo();
    }

    // ---- memory -------------------------------------------------------------------------

    private CUdeviceptr alloc(long bytes, String what) {
        drv.bind();
        CUdeviceptr p = drv.malloc(bytes, what);
        allocations.put(p, what);
        return p;
    }

    private void release(CUdeviceptr p) {
        if (p != null && allocations.remove(p) != null) drv.free(p);
    }

    private CudaBuf buffer(long n, boolean ints) {
        if (n < 0) throw new IllegalArgumentException("negative buffer length " + n);
        CUdeviceptr p = alloc(n * 4, (ints ? "int" : "float") + " buffer of " + n);
        drv.memsetD32(p, 0, n);
        return new CudaBuf(p, n, ints);
    }

    @Override
    public Buf allocFloats(long n) { return buffer(n, false); }

    @Override
    public Buf allocInts(long n) { return buffer(n, true); }

    @Override
    public void write(Buf dst, int[] src, int n) {
        CudaBuf b = checked(dst, n, "write");
        drv.write(b.ptr, src, n, b.toString());
    }

    @Override
    public void write(Buf dst, float[] src, int n) {
        CudaBuf b = checked(dst, n, "write");
        drv.write(b.ptr, src, n, b.toString());
    }

    @Override
    public void readInts(Buf src, long offset, int[] dst, int n) {
        CudaBuf b = checked(src, offset + n, "read");
        drv.copyDtoH(Pointer.to(dst), b.at(offset), 4L * n, b.toString());
    }

    @Override
    public void read(Buf src, long offset, float[] dst, int n) {
        CudaBuf b = checked(src, offset + n, "read");
        drv.read(b.at(offset), dst, n, b.toString());
    }

    private CudaBuf checked(Buf buf, long needed, String op) {
        drv.bind();
        CudaBuf b = CudaBuf.of(buf);
        if (needed > b.length) {
            throw new IndexOutOfBoundsException(op + " of " + needed + " elements on " + b + " of " + b.length);
        }
        return b;
    }

    @Override
    public void free(Buf b) {
        CudaBuf c = CudaBuf.of(b);
        drv.bind();
        release(c.ptr);
        c.freed = true;
    }

    // ---- weights ------------------------------------------------------------------------

    @Override
    public Object prepareLinear(GptqLinear w) {
        drv.bind();
        String name = w.name();
        int in = w.in(), out = w.out(), bits = w.bits(), groups = w.groups();
        if (in % 32 != 0) {
            throw new IllegalArgumentException(name + ": " + in + " input features; the CUDA GPTQ kernels need a multiple of 32");
        }
        if ((long) out * bits % 32 != 0) {
            throw new IllegalArgumentException(name + ": " + out + " outputs x " + bits + " bits is not a whole number of qzeros words");
        }
        int[] g = w.gIdx();
        if (g.length != in) throw new IllegalArgumentException(name + ": g_idx has " + g.length + " entries, expected " + in);
        // act order undone: sort inputs by group (stable), so each group is a contiguous run of sorted inputs
        int[] start = new int[groups + 1];
        for (int i = 0; i < in; i++) {
            if (g[i] < 0 || g[i] >= groups) {
                throw new IllegalArgumentException(name + ": g_idx[" + i + "] = " + g[i] + " outside [0," + groups + ")");
            }
            start[g[i] + 1]++;
        }
        for (int k = 0; k < groups; k++) start[k + 1] += start[k];
        int[] perm = new int[in];
        boolean identity = true;
        for (int i = 0; i < in; i++) {
            int j = start[g[i]]++;
            perm[j] = i;
            identity &= j == i;
        }
        int[] chunkGroup = new int[CudaGptq.chunks(in, MMA)];
        for (int c = 0; c < chunkGroup.length; c++) {
            if (32 * c >= in) {                              // padded chunks of the mma layout (x is 0 there)
                chunkGroup[c] = chunkGroup[c - 1];
                continue;
            }
            int gc = g[perm[32 * c]];
            if (g[perm[32 * c + 31]] != gc) {
                throw new IllegalArgumentException(name + ": a group boundary falls inside input chunk " + c
                        + " (groups must hold a multiple of 32 inputs for the CUDA kernels)");
            }
            chunkGroup[c] = gc;
        }
        long qwBytes = (long) in / 32 * bits * out * 4;
        long qzBytes = (long) groups * out * bits / 32 * 4;
        long scBytes = (long) groups * out * 2;
        ByteBuffer qw = w.qweight(), qz = w.qzeros(), sc = w.scales();
        requireBytes(name + ".qweight", qw, qwBytes);
        requireBytes(name + ".qzeros", qz, qzBytes);
        requireBytes(name + ".scales", sc, scBytes);

        CUdeviceptr packed = alloc(CudaGptq.packedBytes(in, out, bits, MMA), name + " packed weights");
        CUdeviceptr sz = alloc((long) groups * out * 4, name + " scales/zeros");
        CUdeviceptr cg = upload(chunkGroup, name + " chunk groups");
        CUdeviceptr permDev = identity ? null : upload(perm, name + " act-order permutation");
        CUdeviceptr raw = alloc(qwBytes, name + " qweight (load)");
        CUdeviceptr rawZ = alloc(qzBytes, name + " qzeros (load)");
        CUdeviceptr rawS = alloc(scBytes, name + " scales (load)");
        try {
            drv.copyHtoD(raw, Pointer.to(qw), qwBytes, name + ".qweight");
            drv.copyHtoD(rawZ, Pointer.to(qz), qzBytes, name + ".qzeros");
            drv.copyHtoD(rawS, Pointer.to(sc), scBytes, name + ".scales");
            if (MMA) {
                long lanes = (long) CudaGptq.pad(out, 16) / 16 * (CudaGptq.pad(in, 64) / 64) * 32;
                drv.launch("gq_mma_repack_b" + bits, Math.toIntExact(ceil(lanes, 128)), 1, 128, 1, raw, permDev, in, out, packed);
            } else {
                drv.launch("gptq_repack", ceil(out, 128), in / 32, 128, 1, raw, permDev, in, out, bits, packed);
            }
            drv.launch("gptq_unpack_zeros", ceil(out, 128), groups, 128, 1, rawZ, rawS, groups, out, bits, sz);
            if (MMA) drv.launch("gq_mma_zeros", 1024, 1, 256, 1, sz, (long) groups * out, out, bits);
            drv.synchronize();
        } finally {
            release(raw);
            release(rawZ);
            release(rawS);
        }
        return finishGptq(name, in, out, bits, groups, packed, sz, permDev, cg, chunkGroup, identity ? null : perm);
    }

    private CudaGptq finishGptq(String name, int in, int out, int bits, int groups, CUdeviceptr packed, CUdeviceptr sz,
                                CUdeviceptr perm, CUdeviceptr cg, int[] chunkGroup, int[] permHost) {
        int cpb = MMA ? CudaGptq.mmaChunksPerSplit(in, out, bits) : CudaGptq.chunksPerSplit(in, out);
        int sp = MMA ? CudaGptq.scalePeriod(chunkGroup, cpb) : 1;
        int shift = MMA ? CudaGptq.groupShift(chunkGroup) : -1;
        int ksplit = (CudaGptq.chunks(in, MMA) + cpb - 1) / cpb;
        CUdeviceptr desc = uploadAddresses(new CUdeviceptr[]{packed, sz, perm, cg}, name + " descriptor");
        return new CudaGptq(name, in, out, bits, groups, packed, sz, perm, cg, cpb, sp, shift, ksplit, desc, MMA, permHost);
    }

    /**
     * A prepared fp16 matrix; with rows >= DENSE_ROWS_BLOCK and cols % 64 == 0 (the lm_head) also the descriptor of
     * the tensor-core path (bits 16: the weights read in place, one group, so one scale period per split).
     */
    private CudaDense dense(String name, int rows, int cols, CUdeviceptr p) {
        CudaGptq mma = null;
        if (MMA && DENSE_MMA && rows >= DENSE_ROWS_BLOCK && cols % 64 == 0) {
            int cpb = CudaGptq.mmaChunksPerSplit(cols, rows, 16);
            int[] oneGroup = new int[CudaGptq.chunks(cols, true)];
            int ksplit = (oneGroup.length + cpb - 1) / cpb;
            CUdeviceptr desc = uploadAddresses(new CUdeviceptr[]{p, null, null, null}, name + " descriptor");
            mma = new CudaGptq(name, cols, rows, 16, 1, p, null, null, null, cpb, CudaGptq.scalePeriod(oneGroup, cpb),
                    CudaGptq.groupShift(oneGroup), ksplit, desc, true, null);
        }
        return new CudaDense(name, rows, cols, p, mma);
    }

    /** -Dgptq4j.cuda.denseMma=false keeps every fp16 matrix on the SIMT dense kernels (a load-time choice). */
    static final boolean DENSE_MMA = !"false".equals(System.getProperty("gptq4j.cuda.denseMma"));

    /** Device array of the given device addresses (null: 0). */
    private CUdeviceptr uploadAddresses(CUdeviceptr[] ptrs, String what) {
        long[] a = new long[ptrs.length];
        for (int i = 0; i < a.length; i++) a[i] = CudaDriver.address(ptrs[i]);
        CUdeviceptr p = alloc(8L * a.length, what);
        drv.copyHtoD(p, Pointer.to(a), 8L * a.length, what);
        return p;
    }

    /**
     * A GPTQ layer with random packed weights, scales and zeros generated on the device, in the layout
     * {@link #prepareLinear} builds from a checkpoint with act order (desc_act): a random input permutation
     * (g_idx of the published act-order checkpoints), groups of {@code groupSize} inputs (0: one group), zero points
     * 2^(bits-1) where {@code sym} (symmetric quantisation, as every published Mixtral GPTQ branch) or random, and
     * codes uniform over all 2^bits values or, {@code centred} (needs {@code sym}), symmetric about the zero point
     * (kernel centre_codes). For benchmarks: nothing of its size passes through the host.
     */
    public Object syntheticLinear(String name, int in, int out, int bits, int groupSize, boolean actOrder, boolean sym,
                                  boolean centred, long seed) {
        return syntheticLinear(name, in, out, bits, groupSize, actOrder, sym, centred, seed, seed);
    }

    /**
     * The same with the act-order permutation drawn from {@code permSeed}: layers given one permSeed share their
     * permutation, as the projections of one input do in a published GPTQ checkpoint (GPTQ orders the inputs by the
     * diagonal of the Hessian of that input, so q, k and v share one, and each expert's w1 and w3).
     */
    public Object syntheticLinear(String name, int in, int out, int bits, int groupSize, boolean actOrder, boolean sym,
                                  boolean centred, long seed, long permSeed) {
        drv.bind();
        if (in % 32 != 0 || (long) out * bits % 32 != 0 || out % 4 != 0) {
            throw new IllegalArgumentException(name + ": " + in + "x" + out + " is not a shape the CUDA GPTQ kernels take");
        }
        int gs = groupSize <= 0 ? in : groupSize;
        if (gs % 32 != 0 || in % gs != 0) throw new IllegalArgumentException(name + ": group size " + groupSize);
        int groups = in / gs;
        long words = CudaGptq.packedBytes(in, out, bits, MMA) / 4;
        CUdeviceptr packed = alloc(4 * words, name + " packed weights");
        CUdeviceptr sz = alloc(4L * groups * out, name + " scales/zeros");
        drv.launch("fill_random_u32", 4096, 1, 256, 1, packed, words, seed);
        if (centred) {
            if (!MMA || !sym) throw new IllegalArgumentException(name + ": centred codes need the tensor-core layout and sym zeros");
            drv.launch("centre_codes", 4096, 1, 256, 1, packed, words, bits);
        }
        drv.launch("fill_random_sz", 1024, 1, 256, 1, sz, (long) groups * out, seed + 1, bits, sym ? 1 : 0);
        if (MMA) drv.launch("gq_mma_zeros", 1024, 1, 256, 1, sz, (long) groups * out, out, bits);
        int[] chunkGroup = new int[CudaGptq.chunks(in, MMA)];
        for (int c = 0; c < chunkGroup.length; c++) chunkGroup[c] = Math.min(groups - 1, c * 32 / gs);
        CUdeviceptr cg = upload(chunkGroup, name + " chunk groups");
        CUdeviceptr perm = null;
        int[] permHost = null;
        if (actOrder && groups > 1) {
            int[] p = new int[in];
            for (int i = 0; i < in; i++) p[i] = i;
            java.util.Random r = new java.util.Random(permSeed);
            for (int i = in - 1; i > 0; i--) {
                int j = r.nextInt(i + 1), t = p[i];
                p[i] = p[j];
                p[j] = t;
            }
            perm = upload(p, name + " act-order permutation");
            permHost = p;
        }
        return finishGptq(name, in, out, bits, groups, packed, sz, perm, cg, chunkGroup, permHost);
    }

    /** The packed weight words of a prepared GPTQ layer, copied back (tests). */
    int[] packedWords(Object w) {
        drv.bind();
        CudaGptq g = CudaGptq.of(w);
        int[] words = new int[Math.toIntExact(CudaGptq.packedBytes(g.in(), g.out(), g.bits(), g.mma()) / 4)];
        drv.copyDtoH(Pointer.to(words), g.qweight(), 4L * words.length, g.name() + " packed weights");
        return words;
    }

    /** An fp16 matrix [rows][cols] of uniform random values in [lo, hi), generated on the device. */
    public Object syntheticDense(String name, int rows, int cols, float lo, float hi, long seed) {
        drv.bind();
        long n = (long) rows * cols;
        CUdeviceptr p = alloc(Math.max(4, 2 * n), name);
        drv.launch("fill_random_f16", 2048, 1, 256, 1, p, n, seed, lo, hi);
        return dense(name, rows, cols, p);
    }

    /** Device bytes one product with this prepared GPTQ layer reads. */
    public static long gptqDeviceBytes(Object w) { return CudaGptq.of(w).deviceBytes(); }

    /** Device-to-device copy bandwidth, bytes read plus written per second. */
    public double copyBandwidth(long bytes, int reps) {
        drv.bind();
        return drv.copyBandwidth(bytes, reps);
    }

    /** {graph launches, graph captures, kernels launched one by one, kernels launched in all, steps replayed}. */
    public long[] launchStats() { return drv.launchStats(); }

    @Override
    public boolean replayStep(Object signature) {
        drv.bind();
        return drv.replayStep(signature);
    }

    @Override
    public void endStep() {
        drv.bind();
        drv.endStep();
    }

    /** Pinned reads on or off for this backend (tests; the default is -Dgptq4j.cuda.pinnedReads, on). */
    void pinnedReads(boolean on) {
        drv.bind();
        drv.pinnedReads(on);
    }

    /** Step replay on or off for this backend (tests; the default is -Dgptq4j.cuda.stepReplay, on). */
    void stepReplay(boolean on) {
        drv.bind();
        drv.stepReplay(on);
    }

    /** Multiprocessors on the device. */
    public int multiprocessors() { return drv.multiprocessors(); }

    private static void requireBytes(String tensor, ByteBuffer b, long bytes) {
        if (b.remaining() < bytes) {
            throw new IllegalArgumentException(tensor + ": " + b.remaining() + " bytes, expected " + bytes);
        }
    }

    private CUdeviceptr upload(int[] data, String what) {
        CUdeviceptr p = alloc(4L * data.length, what);
        drv.copyHtoD(p, Pointer.to(data), 4L * data.length, what);
        return p;
    }

    @Override
    public Object prepareDense(HalfMatrix m) {
        drv.bind();
        long n = (long) m.rows() * m.cols();
        ByteBuffer half;
        if ("F16".equals(m.dtype())) {
            half = m.data();
        } else {
            half = ByteBuffer.allocateDirect(Math.toIntExact(2 * n)).order(ByteOrder.LITTLE_ENDIAN);
            for (int r = 0; r < m.rows(); r++) {
                for (int c = 0; c < m.cols(); c++) half.putShort(Half.fromFloat(m.get(r, c)));
            }
            half.flip();
        }
        requireBytes(m.name(), half, 2 * n);
        CUdeviceptr p = alloc(2 * n, m.name());
        drv.copyHtoD(p, Pointer.to(half), 2 * n, m.name());
        return dense(m.name(), m.rows(), m.cols(), p);
    }

    /** KV cache storage: float32 unless {@code -Dgptq4j.cuda.kvFp16=true}. */
    static final boolean KV_FP16 = Boolean.getBoolean("gptq4j.cuda.kvFp16");

    @Override
    public KvCache allocKvCache(int layers, int blocks, int blockSize, int kvHeads, int headDim) {
        return allocKvCache(layers, blocks, blockSize, kvHeads, headDim, KV_FP16);
    }

    /** A KV cache stored as fp16 ({@code half}) or float32. */
    public KvCache allocKvCache(int layers, int blocks, int blockSize, int kvHeads, int headDim, boolean half) {
        if (headDim % 32 != 0 || headDim > 256) {
            throw new IllegalArgumentException("head_dim " + headDim + ": the CUDA attention kernel needs a multiple of 32 up to 256");
        }
        int elem = half ? 2 : 4;
        long bytes = CudaKvCache.bytes(layers, blocks, blockSize, kvHeads, headDim, elem);
        CUdeviceptr p = alloc(bytes, "KV cache (" + blocks + " blocks of " + blockSize + " tokens)");
        drv.memsetD32(p, 0, bytes / 4);
        return new CudaKvCache(this, p, layers, blocks, blockSize, kvHeads, headDim, elem);
    }

    void copyKvBlock(CudaKvCache c, int from, int to) {
        drv.bind();
        long blockWords = (long) c.blockSize * c.kvHeads * c.headDim * c.elemBytes / 4;
        long planeWords = c.planeElems() * c.elemBytes / 4;
        drv.launch("kv_copy_block", ceil(blockWords, 256), 2 * c.layers, 256, 1,
                c.data, planeWords, from, to, blockWords);
    }

    void releaseCache(CudaKvCache c) {
        drv.bind();
        release(c.data);
    }

    // ---- operations ---------------------------------------------------------------------

    @Override
    public void embed(Object table, Buf tokens, int T, Buf out) {
        CudaDense m = CudaDense.of(table);
        drv.bind();
        drv.launch("embed_fp16", ceil(m.cols(), 256), T, 256, 1,
                m.data(), CudaBuf.of(tokens).ptr, m.cols(), CudaBuf.of(out).ptr);
    }

    @Override
    public void rmsNorm(Buf x, Object weight, float eps, int T, int dim, Buf out) {
        CudaDense w = CudaDense.of(weight);
        if (w.rows() * w.cols() != dim) throw new IllegalArgumentException(w.name() + " has " + w.cols() + " entries, dim is " + dim);
        drv.bind();
        drv.launch("rms_norm", T, 1, 256, 1, CudaBuf.of(x).ptr, w.data(), eps, dim, CudaBuf.of(out).ptr);
    }

    @Override
    public void linear(Object w, Buf x, int T, Buf out) {
        drv.bind();
        launchLinear(CudaGptq.of(w), CudaBuf.of(x).ptr, null, null, T, CudaBuf.of(out).ptr, null, null);
    }

    /** -Dgptq4j.cuda.fuseNorm=false: rmsNormLinear as rms_norm then the product (an experiment switch, same bits). */
    static final boolean FUSE_NORM = Boolean.parseBoolean(System.getProperty("gptq4j.cuda.fuseNorm", "true"));

    /** An RMSNorm applied by gq_mma_prep to its input (Backend.rmsNormLinear): the norm's weights and eps, xn the output. */
    private record PrepNorm(CUdeviceptr weight, float eps, CUdeviceptr xn) { }

    /**
     * The RMSNorm for g's input pass (gq_mma_prep normalises x itself and writes xn), or null where it cannot: the
     * switch is off, g is not on the tensor-core path, the shapes disagree, or xn is x.
     */
    private static PrepNorm prepNorm(CudaGptq g, Object normWeight, float eps, int dim, Buf x, Buf xn) {
        CudaDense nw = CudaDense.of(normWeight);
        if (!FUSE_NORM || REFERENCE_LINEAR || !g.mma() || g.in() != dim || (long) nw.rows() * nw.cols() != dim || x == xn) {
            return null;
        }
        return new PrepNorm(nw.data(), eps, CudaBuf.of(xn).ptr);
    }

    /** On the tensor-core path the product's input pass (gq_mma_prep) normalises x itself and writes xn: one launch less. */
    @Override
    public void rmsNormLinear(Buf x, Object normWeight, float eps, int T, int dim, Buf xn, Object w, Buf out) {
        CudaGptq g = CudaGptq.of(w);
        PrepNorm norm = prepNorm(g, normWeight, eps, dim, x, xn);
        if (norm == null) {
            Backend.super.rmsNormLinear(x, normWeight, eps, T, dim, xn, w, out);
            return;
        }
        drv.bind();
        launchLinear(g, CudaBuf.of(x).ptr, null, null, T, CudaBuf.of(out).ptr, null, norm);
    }

    /** A device GqMat table of two products of one input (k and v), built on first use. */
    private record PairTable(Object second, GqTable table) { }

    /** Pair tables by their first weight. */
    private final Map<Object, PairTable> pairTables = new IdentityHashMap<>();

    /**
     * Two products of one input with the same shape and format (k and v) in one launch each of prep, product and
     * fold (split mode; the same bits as two linear calls: equal cpb, scale period and group shift), else two
     * linear calls.
     */
    @Override
    public void linear2(Object wa, Object wb, Buf x, int T, Buf outA, Buf outB) {
        drv.bind();
        GqTable tab = pairTable(wa, wb, T);
        if (tab == null) {
            Backend.super.linear2(wa, wb, x, T, outA, outB);
            return;
        }
        CudaGptq a = CudaGptq.of(wa);
        long n = (long) T * a.out(), pstride = a.ksplit() * n;
        CudaBuf part = pairPartials(a, tab, CudaBuf.of(x).ptr, T);
        drv.launch("gq_reduce", ceil(n, 256), 2, 256, 1, part.ptr, a.ksplit(), n, n, CudaBuf.of(outA).ptr, null,
                pstride, CudaBuf.of(outB).ptr);
    }

    /**
     * The device table of linear2's two products in one split-mode launch (built on first use), or null where they
     * do not share one: other shapes or formats, or no split mode at T tokens.
     */
    private GqTable pairTable(Object wa, Object wb, int T) {
        CudaGptq a = CudaGptq.of(wa), b = CudaGptq.of(wb);
        if (REFERENCE_LINEAR || !a.splitsLike(b) || a.out() != b.out() || !useSplitMode(a, T, 2)) return null;
        PairTable pt = pairTables.get(wa);
        if (pt == null || pt.second() != wb) {
            if (pt != null) release(pt.table().descs());
            CUdeviceptr[] mats = new CUdeviceptr[8];
            a.putMat(mats, 0);
            b.putMat(mats, 1);
            pt = new PairTable(wb, new GqTable(uploadAddresses(mats, a.name() + " pair table"), 1, 2,
                    Arrays.equals(a.permHost(), b.permHost()), a.scalePeriod(), a.groupShift()));
            pairTables.put(wa, pt);
        }
        return pt.table();
    }

    /** linear2's product in split mode: the partials [2][a.ksplit][T][a.out] (the second product's at a.ksplit·T·a.out). */
    private CudaBuf pairPartials(CudaGptq a, GqTable tab, CUdeviceptr x, int T) {
        CudaBuf part = scratch.floats("linear.partials2", 2L * a.ksplit() * T * a.out());
        launchSplit(a, tab, null, x, null, T, T, T, true, part.ptr, null);
        return part;
    }

    /** Split mode: the residual add rides in the fold of the partials (one launch less); else linear, add. */
    @Override
    public void linearAdd(Object w, Buf x, int T, int outDim, Buf tmp, Buf res) {
        CudaGptq g = CudaGptq.of(w);
        if (g.out() != outDim) throw new IllegalArgumentException(g.name() + ": " + g.out() + " outputs, not " + outDim);
        drv.bind();
        launchLinear(g, CudaBuf.of(x).ptr, null, null, T, CudaBuf.of(res).ptr, CudaBuf.of(tmp).ptr, null);
    }

    /** Token rows per block for a launch over T rows (tiles of T ≤ 8 are GEMV-shaped). */
    static int tileRows(int T) {
        return T <= 1 ? 1 : T <= 2 ? 2 : T <= 4 ? 4 : T <= 8 ? 8 : 16;
    }

    /** -Dgptq4j.cuda.linear=reference selects the first (one-block-per-32-outputs) GPTQ kernels, for comparison. */
    static final boolean REFERENCE_LINEAR = "reference".equals(System.getProperty("gptq4j.cuda.linear"));
    /** Partial sums of a split-K product are kept in device memory up to this size, else the splits loop in-block. */
    static final long PARTIAL_LIMIT = Long.getLong("gptq4j.cuda.partialBytes", 768L << 20);

    /** Outputs per thread of the gq_pipe kernel for a tile height. */
    static int outputsPerThread(int tt) { return tt <= 2 ? 4 : tt <= 8 ? 2 : 1; }

    /**
     * The matrices of one split-K launch: nmat = nproj × nexp matrices of one shape (descs: device GqMat[nmat]).
     * sharedPerm: every expert's projections share one input permutation (one converted copy of the activations);
     * scalePeriod: the smallest of the matrices' (CudaGptq.scalePeriod), so one value serves the launch;
     * groupShift: the matrices' common CudaGptq.groupShift, or -1;
     * szRows: device int[nmat], uint4 per (scale, zero) row of each matrix (gq_mmv only: entries that are runs of a
     * wider matrix), or null (out / 4 for every matrix).
     */
    private record GqTable(CUdeviceptr descs, int nexp, int nmat, boolean sharedPerm, int scalePeriod, int groupShift,
                           CUdeviceptr szRows) {
        GqTable(CUdeviceptr descs, int nexp, int nmat, boolean sharedPerm, int scalePeriod, int groupShift) {
            this(descs, nexp, nmat, sharedPerm, scalePeriod, groupShift, null);
        }

        static GqTable of(CudaGptq g) { return new GqTable(g.desc(), 1, 1, false, g.scalePeriod(), g.groupShift()); }
    }

    /**
     * One split-K GPTQ launch (gq_mma or gq_pipe) over a table of matrices shaped as g. rowsPerMatrix (≤ T) sizes
     * the token tile of the mma kernels (an expert's expected rows). Split mode writes [nproj][ksplit][rowsCap][out]
     * partials into out; loop mode writes [nproj][rowsCap][out].
     */
    private void launchSplit(CudaGptq g, GqTable tab, CUdeviceptr segs, CUdeviceptr x, CUdeviceptr xRows, int T,
                             int rowsPerMatrix, int rowsCap, boolean splitMode, CUdeviceptr out, PrepNorm norm) {
        launchSplit(g, tab, segs, x, xRows, T, rowsPerMatrix, rowsCap, splitMode, out, norm, null);
    }

    /**
     * launchSplit whose input rows are silu(x) · h3 (silu_mul's arithmetic, done by gq_mma_prep_rows) where h3 is not
     * null; only where g.mma() and prepRows(g, rowsPerMatrix, false) hold.
     */
    private void launchSplit(CudaGptq g, GqTable tab, CUdeviceptr segs, CUdeviceptr x, CUdeviceptr xRows, int T,
                             int rowsPerMatrix, int rowsCap, boolean splitMode, CUdeviceptr out, PrepNorm norm,
                             CUdeviceptr h3) {
        boolean rowsPrep = prepRows(g, rowsPerMatrix, norm != null);
        if (h3 != null && !(g.mma() && rowsPrep)) {      // only gq_mma_prep_rows applies it; other paths would drop it
            throw new IllegalStateException(g.name() + ": silu in the preparation needs gq_mma_prep_rows");
        }
        CUdeviceptr descs = tab.descs();
        int nexp = tab.nexp(), nmat = tab.nmat();
        long projStride = (splitMode ? (long) g.ksplit() : 1L) * rowsCap * g.out();
        if (tab.szRows() != null && !(splitMode && mmvFits(g, tab, T))) {
            throw new IllegalStateException(g.name() + ": a table of output runs needs the one-token kernel");
        }
        if (g.mma()) {
            // activations converted once into the mma operand form (planes: one per projection unless they share
            // the input permutation), then the tensor-core product
            int planes = nmat / nexp > 1 && !tab.sharedPerm() ? nmat / nexp : 1;
            int kch = CudaGptq.chunks(g.in(), true);
            CudaBuf xq = scratch.floats("mma.xq", (long) planes * rowsCap * kch * 32);
            CudaBuf xe = scratch.floats("mma.xe", (long) planes * rowsCap * kch);
            int wgRows = wgmmaTileRows(segs != null, rowsPerMatrix);
            boolean wg = T > 1 && wgmmaFits(g, tab, rowsPerMatrix, wgRows, splitMode);
            int prepFlags = (wg ? 1 : 0) | (fp16Activations ? 2 : 0);   // gq_wg's layout; lo = 0 (fp16 activations)
            // every product kernel's one-plane form with fp16 activations: the lo plane (0) not multiplied
            String h1 = fp16Activations ? "_h1" : "";
            // block rows: the expected rows per matrix (blocks loop over further rows); the plane's matrices
            int y = PREP_WORST ? T : Math.max(1, Math.min(T, rowsPerMatrix));
            int z = PREP_WORST ? nmat : planes == 1 ? nexp : nmat;
            if (rowsPrep) {                                       // whole rows per block, staged in shared memory
                boolean wide = prepWide(g, norm != null);                // 512 threads, 64 chunks per pass
                if (segs != null && PREP_SPREAD && norm == null) {
                    // spread: the plane's grouped rows shared out evenly over about PREP_SPREAD_BLOCKS blocks per SM
                    // (skewed routing leaves no block of a large expert looping over several rows), see gq_mma.cu
                    prepFlags |= 4;
                    z = planes == 1 ? 1 : nmat / nexp;
                    int perSm = PREP_SPREAD_BLOCKS > 0 ? PREP_SPREAD_BLOCKS : wide ? 2 : 4;
                    y = Math.max(1, Math.min(rowsCap, ceil((long) perSm * drv.multiprocessors(), z)));
                }
                // blocks per row: its passes of 32 chunks spread so the grid has about two blocks per SM
                int bx = Math.max(1, Math.min(ceil(kch, wide ? 64 : 32), ceil(2 * drv.multiprocessors(), y * z)));
                drv.launch3(wide ? "gq_mma_prep_rows_w" : "gq_mma_prep_rows", bx, y, z, wide ? 512 : 256, 1,
                        prepRowsSmem(g.in(), norm != null),
                        descs, nexp, planes, segs, x, xRows, T, g.in(), rowsCap, g.cpb(), xq.ptr, xe.ptr,
                        norm == null ? null : norm.weight(), norm == null ? 0f : norm.eps(), norm == null ? null : norm.xn(),
                        prepFlags, h3);
            } else {                                              // a block per 32 chunks of a row
                drv.launch3("gq_mma_prep", ceil(kch, 32), y, z, 256, 1, 0,
                        descs, nexp, planes, segs, x, xRows, T, g.in(), rowsCap, g.cpb(), xq.ptr, xe.ptr,
                        norm == null ? null : norm.weight(), norm == null ? 0f : norm.eps(), norm == null ? null : norm.xn(),
                        prepFlags);
            }
            if (wg) {
                // Hopper: the warpgroup-MMA kernel (gq_wg.cu), gq_mma's bits, in either mode; token tiles of wgRows
                wgmmaLaunches++;
                // the blocks take the matrix fastest where two projections read one plane (w1+w3), see gq_wg.cu
                boolean interleave = WGMMA_INTERLEAVE && !splitMode && planes == 1 && nmat > nexp;
                // the lm_head's token tiles side by side: its 262 MB are read from memory once, not once per tile
                boolean tilesFirst = WGMMA_TILES_FIRST && g.bits() == 16 && !interleave;
                String kernel = "gq_wg_b" + g.bits() + h1;   // its block size: the kernel's launch bounds (gq_wg.cu)
                drv.launch3(kernel, g.out() / wgmmaOutputs(g.bits()) * (splitMode ? g.ksplit() : 1), ceil(T, wgRows),
                        nmat, drv.maxThreadsPerBlock(kernel), 1, wgmmaSharedBytes(g.bits()), descs, nexp, segs, xq.ptr, xe.ptr,
                        planes, g.in(), g.out(), g.cpb(), tab.scalePeriod(), tab.groupShift(), g.ksplit(),
                        (splitMode ? 1 : 0) | (interleave ? 2 : 0) | (tilesFirst ? 4 : 0), wgRows, rowsCap, projStride, out);
                return;
            }
            int nt = mmaTokenTiles(rowsPerMatrix);
            if (splitMode && mmvFits(g, tab, T)) {
                // one token: the persistent kernel (the same partials as gq_mma_b*_n1's split mode)
                long tasks = (long) nmat * (g.out() / (16 * mmvTiles(g.bits()))) * g.ksplit();
                String kernel = "gq_mmv_b" + g.bits() + h1;
                int smem = mmvSharedBytes(g.bits());
                int perSm = MMV_BLOCKS_PER_SM > 0 ? MMV_BLOCKS_PER_SM : drv.residentBlocksPerSm(kernel, 32 * MMV_WARPS, smem);
                if (MMV_ONE_TILE && g.bits() == 4 && tasks < (long) drv.multiprocessors() * perSm * MMV_WARPS) {
                    kernel = "gq_mmv_b4_t1" + h1;                     // fewer tasks than warps: one tile per task
                    tasks = (long) nmat * (g.out() / 16) * g.ksplit();
                    smem = mmvSharedBytes(4, 1);
                    perSm = MMV_BLOCKS_PER_SM > 0 ? MMV_BLOCKS_PER_SM : drv.residentBlocksPerSm(kernel, 32 * MMV_WARPS, smem);
                    mmvOneTileLaunches++;
                } else {
                    mmvLaunches++;
                }
                int grid = (int) Math.min((long) drv.multiprocessors() * perSm, ceil(tasks, MMV_WARPS));
                drv.launch3(kernel, grid, 1, 1, 32 * MMV_WARPS, 1, smem,
                        descs, nexp, nmat, segs, xq.ptr, xe.ptr, planes, T, g.in(), g.out(), g.cpb(), tab.scalePeriod(),
                        tab.groupShift(), g.ksplit(), rowsCap, projStride, out, tab.szRows());
                return;
            }
            int ws = 8 / nt;                                     // super-tiles per window (gq_mma.cu)
            int window = nt * 8 * (ws * 256 + 16 * MMA_PAD)                           // activations
                    + (nt >= 4 && g.bits() <= 8 ? MMA_WARPS * ws * g.bits() * 128 : 0); // staged weights
            int smem = Math.min(MMA_STAGES, ceil(g.cpb() / 2, ws)) * window
                    + (mmaFoldInShared(nt) ? MMA_WARPS * nt * 4 * 32 * 4 : 0);
            drv.launch3("gq_mma_b" + g.bits() + "_n" + nt + h1, ceil(ceil(g.out(), 16), MMA_WARPS) * ceil(T, 8 * nt),
                    splitMode ? g.ksplit() : 1, nmat, 32 * MMA_WARPS, 1, smem,
                    descs, nexp, nmat, segs, xq.ptr, xe.ptr, planes, T, g.in(), g.out(), g.cpb(), tab.scalePeriod(),
                    tab.groupShift(), g.ksplit(),
                    splitMode ? 1 : 0, rowsCap, projStride, out);
            return;
        }
        int tt = tileRows(T);
        int opt = outputsPerThread(tt);
        int bx = 256 / opt;                                 // 64 threads x 4 outputs, 128 x 2, 256 x 1: 256 outputs a block
        int cols = ceil(g.out(), (long) bx * opt);
        int smem = tt * g.cpb() * 32 * 4;
        drv.launch3(splitKernel(g.bits(), tt), cols, splitMode ? g.ksplit() : 1, ceil(T, tt) * nmat, bx, 1, smem,
                descs, nexp, nmat, segs, x, xRows, T, g.in(), g.out(), g.cpb(), g.ksplit(), splitMode ? 1 : 0, rowsCap,
                projStride, out);
    }

    /**
     * -Dgptq4j.cuda.gq=mma (default) selects the tensor-core kernels of gq_mma.cu, =pipe the software-pipelined
     * SIMT float32 kernels of gptq_gemm.cu (the round-2 default), whose bit-stream weight layout the reference
     * kernels also need. Fixed at load: it picks the weight layout.
     */
    static final String GQ = System.getProperty("gptq4j.cuda.gq", "mma");
    static final boolean MMA = "mma".equals(GQ) && !REFERENCE_LINEAR;
    /** mma: products whose loop-mode grid has at least this many blocks skip the split partials (same bits). */
    static final int MMA_LOOP_BLOCKS = Integer.getInteger("gptq4j.cuda.loopBlocks", 1024);

    /** The GPTQ kernel family in use, for the bench's report: mma, pipe or reference (with the experiment switches). */
    static String linearName() {
        if (MMA) return "mma" + (CudaGptq.CPB > 0 ? "-cpb" + CudaGptq.CPB : "") + "-loop" + MMA_LOOP_BLOCKS
                + (MMA_MAX_TILES < 8 ? "-tiles" + MMA_MAX_TILES : "") + (MMA_64_FROM != 65 ? "-t64from" + MMA_64_FROM : "")
                + (CudaGptq.SCALE_PERIOD_MAX < 16 ? "-sp" + CudaGptq.SCALE_PERIOD_MAX : "")
                + (REFERENCE_ATTENTION ? "-refattn" : "") + (DENSE_MMA ? "" : "-simtdense") + (MMV ? (MMV_ONE_TILE ? "" : "-nommvonetile") : "-nommv")
                + (FUSE_NORM ? "" : "-nofusenorm") + (FUSE_FOLD ? "" : "-nofusefold") + (QKV_LAUNCH ? "" : "-noqkv")
                + (CudaGptq.MMA_SPLIT_WARPS != 512 ? "-splitwarps" + CudaGptq.MMA_SPLIT_WARPS : "")
                + (CudaGptq.MMA_SPLIT_WARPS_4 != 256 ? "-splitwarps4-" + CudaGptq.MMA_SPLIT_WARPS_4 : "")
                + (CudaGptq.MAX_CPB_4 < 32 ? "-maxcpb4-" + CudaGptq.MAX_CPB_4 : "")
                + (WGMMA ? (WGMMA_FROM != 1 ? "-wgmmafrom" + WGMMA_FROM : "") + (WGMMA_DENSE_FROM != 64 ? "-wgmmadensefrom" + WGMMA_DENSE_FROM : "") + (WGMMA_TILES_FIRST ? "" : "-notilesfirst") + (WGMMA_COVER != 0 ? "-wgmmacover" + WGMMA_COVER : "") + (WGMMA_SPLIT ? "" : "-nowgmmasplit")
                        + (WGMMA_INTERLEAVE ? "" : "-nointerleave") + (WGMMA_FULLEST_FIRST ? "" : "-nofullestfirst")
                        : "-nowgmma")
                + (ATT_HEADS > 0 ? "-attheads" + ATT_HEADS : "") + ("auto".equals(ATT_LEAN) ? "" : "-attlean" + ATT_LEAN)
                + (PREP_WORST ? "-prepworst" : "")
                + (PREP_ROWS_FROM != 16 ? "-preprowsfrom" + PREP_ROWS_FROM : "")
                + (PREP_SPREAD ? (PREP_SPREAD_BLOCKS > 0 ? "-prepspread" + PREP_SPREAD_BLOCKS : "") : "-noprepspread") + (PREP_WIDE_FROM != 8192 ? "-prepwidefrom" + PREP_WIDE_FROM : "")
                + (CudaDriver.MODULE_FILE == null ? "" : "-module[" + java.nio.file.Path.of(CudaDriver.MODULE_FILE).getFileName() + "]")
                + (CudaDriver.SKIP_KERNELS == null ? "" : "-SKIPPING[" + CudaDriver.SKIP_KERNELS + "]");
        return REFERENCE_LINEAR ? "reference" : "pipe" + (CudaGptq.CPB > 0 ? "-cpb" + CudaGptq.CPB : "")
                + (REFERENCE_ATTENTION ? "-refattn" : "");
    }

    /**
     * gq_mma_prep_rows (a block per row, the row and the permutation staged in shared memory) instead of gq_mma_prep
     * (a block per 32 chunks of a row, each value read from L2 on its own) from this many rows per matrix, where the
     * row fits (prepRowsSmem up to PREP_ROWS_SMEM: two blocks per SM). -Dgptq4j.cuda.prepRowsFrom=N (0: never; same
     * bits either way). H100 (round 15, medians of 3 runs in alternating order, 64 new tokens): from 16 rows, decode
     * batch 256 / 128 / 64 / 32 at 4,441 / 3,814 / 2,730 / 1,782 tok/s and prefill 6,399, against 4,256 / 3,712 /
     * 2,717 / 1,781 and 6,035 with 0; from 64: 4,406 / 3,708 / 2,741 / 1,748.
     */
    static final int PREP_ROWS_FROM = Integer.getInteger("gptq4j.cuda.prepRowsFrom", 16);
    static final int PREP_ROWS_SMEM = 112 << 10;

    /**
     * gq_mma_prep_rows_w (512 threads, 64 chunks per pass) instead of gq_mma_prep_rows (256, 32) for rows of at least
     * -Dgptq4j.cuda.prepWideFrom inputs without a fused norm (0: never; same bits): the MoE's w2 (14,336 inputs), whose
     * 86 KB of staged row and permutation leave room for two blocks per SM.
     */
    static final int PREP_WIDE_FROM = Integer.getInteger("gptq4j.cuda.prepWideFrom", 8192);

    static boolean prepWide(CudaGptq g, boolean norm) {
        return PREP_WIDE_FROM > 0 && !norm && g.in() >= PREP_WIDE_FROM;
    }

    /** Dynamic shared memory of gq_mma_prep_rows: the row (floats), its 16-bit permutation and, with a norm, its weights. */
    static int prepRowsSmem(int in, boolean norm) {
        return 4 * ceil(in, 4) * 4 + (norm ? 4 : 2) * ceil(in, 8) * 8;
    }

    /** Whether g's activation preparation for rowsPerMatrix rows per matrix runs on gq_mma_prep_rows. */
    static boolean prepRows(CudaGptq g, int rowsPerMatrix, boolean norm) {
        return PREP_ROWS_FROM > 0 && !PREP_WORST && rowsPerMatrix >= PREP_ROWS_FROM && g.in() <= 65536 && g.in() % 4 == 0
                && prepRowsSmem(g.in(), norm) <= PREP_ROWS_SMEM;
    }

    /**
     * -Dgptq4j.cuda.prepRows=worst launches gq_mma_prep with a block row per worst-case row and matrix (round 12's
     * grid: a MoE launch's blocks mostly exit at once; a comparison switch, same bits).
     */
    static final boolean PREP_WORST = "worst".equals(System.getProperty("gptq4j.cuda.prepRows"));

    /**
     * MoE activation preparations on gq_mma_prep_rows(_w) share the grouped rows of all the experts out evenly over the
     * blocks (wg bit 2 of gq_mma.cu's preparation), about PREP_SPREAD_BLOCKS blocks per SM (0: the kernel's resident
     * blocks, 2 for the 512-thread form, 4 for the other). -Dgptq4j.cuda.prepSpread=false gives each expert its
     * expected rows' worth of blocks (the round-19 grid; a comparison switch, same bits).
     */
    static final boolean PREP_SPREAD = !"false".equals(System.getProperty("gptq4j.cuda.prepSpread"));
    static final int PREP_SPREAD_BLOCKS = Integer.getInteger("gptq4j.cuda.prepSpreadBlocks", 0);

    /**
     * -Dgptq4j.cuda.wgmma=false keeps every product on gq_mma's mma.sync kernels (the same bits; a comparison switch).
     * Otherwise, on compute capability 9.0, products of 2, 3 or 4 bits with at least WGMMA_FROM rows per matrix run
     * on gq_wg.cu's warpgroup-MMA kernel, in loop or split mode as gq_mma would, when their grid (a block per 256
     * outputs, token tile and, in split mode, split) has at least a quarter of the SMs' count in blocks (one block per
     * SM; 3/4 until round 20, see WGMMA_COVER).
     * -Dgptq4j.cuda.wgmmaSplit=false keeps split-mode products on gq_mma (a comparison switch).
     */
    static final boolean WGMMA = Boolean.parseBoolean(System.getProperty("gptq4j.cuda.wgmma", "true"));
    /**
     * -Dgptq4j.cuda.wgmmaFrom=N: the fewest rows per matrix (an expert's expected rows) for the wgmma kernel, above one
     * token (a single token keeps the one-token kernel). 1 since round 35: the warp-specialised kernel (round 33) now
     * beats gq_mma's small tiles from one expected row per expert (H200: batch 4 359 against 297 tok/s, batch 8
     * 568-571 against 472; batch 16 unchanged). 4 from round 13 (H100, the kernel before warp specialisation): batch 16
     * 938-951 against 843-851 tok/s with 9, batch 32 1,554-1,581 against 1,042-1,059; from 2 rows batch 8 lost 12 %.
     */
    static final int WGMMA_FROM = Integer.getInteger("gptq4j.cuda.wgmmaFrom", 1);
    /**
     * Rows from which the fp16 lm_head's product runs on gq_wg_b16 (wgmma, A from shared memory by ldmatrix; the same
     * bits as gq_mma_b16_n*) instead of gq_mma_b16_n* (-Dgptq4j.cuda.wgmmaDenseFrom).
     */
    static final int WGMMA_DENSE_FROM = Integer.getInteger("gptq4j.cuda.wgmmaDenseFrom", 64);
    /** -Dgptq4j.cuda.wgmmaTilesFirst=false: gq_wg_b16's blocks in grid order (a comparison switch; the same bits). */
    static final boolean WGMMA_TILES_FIRST =
            Boolean.parseBoolean(System.getProperty("gptq4j.cuda.wgmmaTilesFirst", "true"));
    /**
     * -Dgptq4j.cuda.wgmmaCover=N: the wgmma kernel needs a grid of at least N/4 of the SMs' count in blocks (default
     * 0: any grid). With 32-chunk splits Mixtral's q and o at decode batch 8-64 have 64 split-mode blocks, which 3/4
     * sent to gq_mma: H100, ncu, batch 64 per launch 30.9 (gq_wg on 64 SMs) against 42.5 us, batch 32 20.9 against
     * 22.3; end to end batch 64 +2 to +4 %, 32 +3 %, 8 and 16 +0.4 to +2.6 % (round 20, N = 1). H200, round 36: 0
     * against 1 in 15 alternating pairs at decode batch 2-32, 0 faster in every pair (+0.4 to +1.8 %, about +1 %).
     */
    static final int WGMMA_COVER = Integer.getInteger("gptq4j.cuda.wgmmaCover", 0);
    static final boolean WGMMA_SPLIT = Boolean.parseBoolean(System.getProperty("gptq4j.cuda.wgmmaSplit", "true"));
    /**
     * -Dgptq4j.cuda.wgmmaInterleave=false keeps w1+w3's gq_wg blocks in grid order (a comparison switch; the same bits):
     * by default they take the matrix fastest (gq_wg.cu's mode bit 1).
     */
    static final boolean WGMMA_INTERLEAVE =
            Boolean.parseBoolean(System.getProperty("gptq4j.cuda.wgmmaInterleave", "true"));
    /**
     * -Dgptq4j.cuda.wgmmaFullestFirst=false gives w2's launch the experts in their own order (a comparison switch; the
     * same bits). By default moe_route ranks them by rows for it, most first, so the blocks of a launch of 1-2 waves
     * (batch 256: 1.5) start on the large experts' tiles and end on the small ones.
     */
    static final boolean WGMMA_FULLEST_FIRST =
            Boolean.parseBoolean(System.getProperty("gptq4j.cuda.wgmmaFullestFirst", "true"));
    /** gq_wg.cu: GW_NWG m64 tiles (64 outputs each) per block; GW_ROWS token rows per tile; GW_STAGES ring stages. */
    static final int WG_TILES = 4, WG_ROWS = 80, WG_STAGES = 5;

    /** gq_wg.cu's gw_mt: m64 tiles per block for weights of the given bits (2 for fp16 weights, the lm_head). */
    static int wgmmaTiles(int bits) { return bits == 16 ? 2 : WG_TILES; }

    /** Outputs per gq_wg block. */
    static int wgmmaOutputs(int bits) { return 64 * wgmmaTiles(bits); }

    /**
     * gq_wg.cu's gw_smem_bytes: GW_STAGES stages of B (WG_ROWS * 16 uint4) and of the rest (weights, scales unless
     * fp16, 2^e; 128-byte multiples), the split fold (WG_ROWS / 2 floats per m64 tile and consumer thread), the ring's
     * 2 * GW_STAGES mbarriers. Its threads per block (consumer warpgroups and a producer) come from the module.
     */
    static int wgmmaSharedBytes(int bits) {
        int mt = wgmmaTiles(bits);
        int rest = (mt * 4 * bits * 8 + (bits == 16 ? 0 : mt * 16) + WG_ROWS / 4 + 7) / 8 * 8;
        return WG_STAGES * (WG_ROWS * 16 + rest) * 16 + mt * 128 * (WG_ROWS / 2) * 4 + 2 * WG_STAGES * 8;
    }

    /** Products launched on gq_wg.cu's kernel so far (tests check that a shape reaches it). */
    private long wgmmaLaunches;
    /** Products launched on gq_mmv_b* (several tiles per task) and gq_mmv_b4_t1 (one) so far (the same, for tests). */
    private long mmvLaunches, mmvOneTileLaunches;

    long mmvLaunches() { return mmvLaunches; }

    long mmvOneTileLaunches() { return mmvOneTileLaunches; }

    long wgmmaLaunches() { return wgmmaLaunches; }

    /** Whether the module's sm_90a kernels (gq_wg.cu) run on this device. */
    boolean sm90a() { return drv.sm90a(); }

    /**
     * Token rows per gq_wg tile: WG_ROWS for expert segments (an expert's rows vary around rowsPerMatrix, and one tile
     * of 80 holds the ~64 of decode batch 256); for a plain product of rows rows, the fewest tiles of at most WG_ROWS,
     * evened out (256 rows: 4 x 64, not 3 x 80 + 16, whose last tile would stream the weights again for 16 rows).
     */
    static int wgmmaTileRows(boolean segments, int rows) {
        if (segments || rows <= 0) return WG_ROWS;
        return ceil(ceil(rows, ceil(rows, WG_ROWS)), 8) * 8;
    }

    /** Whether a product runs on gq_wg.cu's kernel (its requirements there; same bits as gq_mma). */
    private boolean wgmmaFits(CudaGptq g, GqTable tab, int rowsPerMatrix, int tileRows, boolean splitMode) {
        int outputs = wgmmaOutputs(g.bits());
        return WGMMA && (WGMMA_SPLIT || !splitMode) && drv.sm90a() && g.mma()
                && (g.bits() >= 2 && g.bits() <= 4 || g.bits() == 16 && rowsPerMatrix >= WGMMA_DENSE_FROM)
                && g.out() % outputs == 0 && tab.scalePeriod() >= 2 && rowsPerMatrix >= WGMMA_FROM
                && tab.szRows() == null
                && (long) (g.out() / outputs) * ceil(rowsPerMatrix, tileRows) * tab.nmat() * (splitMode ? g.ksplit() : 1)
                        * 4 >= (long) WGMMA_COVER * drv.multiprocessors();
    }

    /** -Dgptq4j.cuda.mmv=false keeps one-token products on gq_mma_b*_n1 (an experiment switch, same bits). */
    static final boolean MMV = Boolean.parseBoolean(System.getProperty("gptq4j.cuda.mmv", "true"));

    /**
     * Warps per block and ring slots per warp of gq_mmv (GV_NW, GV_D in gq_mmv.cu; the properties go with a fatbin
     * built with other values, -Dgptq4j.cuda.module).
     */
    static final int MMV_WARPS = Integer.getInteger("gptq4j.cuda.mmvWarps", 4), MMV_SLOTS = Integer.getInteger("gptq4j.cuda.mmvSlots", 4);
    /**
     * 16-output tiles per gq_mmv task at 2, 3 and 4 bits (GV_OT) and at 8 bits (GV_OT_8): independent mma chains per
     * warp (-Dgptq4j.cuda.mmvTiles, mmvTiles8 go with a fatbin built with other values).
     */
    static final int MMV_TILES = Integer.getInteger("gptq4j.cuda.mmvTiles", 4), MMV_TILES_8 = Integer.getInteger("gptq4j.cuda.mmvTiles8", 2);

    /** gq_mmv's tiles per task for weights of the given bits. */
    static int mmvTiles(int bits) { return bits == 8 ? MMV_TILES_8 : MMV_TILES; }
    /** -Dgptq4j.cuda.mmvBlocks=N: gq_mmv blocks per SM in the grid (default 0: as many as an SM holds at once). */
    static final int MMV_BLOCKS_PER_SM = Integer.getInteger("gptq4j.cuda.mmvBlocks", 0);

    /**
     * -Dgptq4j.cuda.mmvOneTile=false keeps every 4-bit one-token launch on gq_mmv_b4 (GV_OT tiles per task). By default
     * a 4-bit launch with fewer GV_OT-tile tasks than the GPU's resident gq_mmv warps runs gq_mmv_b4_t1, one tile per
     * task: GV_OT times the tasks, so more warps streaming (the same bits).
     */
    static final boolean MMV_ONE_TILE = !"false".equals(System.getProperty("gptq4j.cuda.mmvOneTile"));

    /** Dynamic shared memory of a gq_mmv block: the warps' rings of slots (gv_slot, gv_depth in gq_mmv.cu). */
    static int mmvSharedBytes(int bits) { return mmvSharedBytes(bits, mmvTiles(bits)); }

    /** mmvSharedBytes for a kernel of the given tiles per task. */
    static int mmvSharedBytes(int bits, int tiles) {
        return MMV_WARPS * (bits == 8 ? MMV_SLOTS / 2 : MMV_SLOTS) * (tiles * (bits * 8 + 8) + 16) * 16;
    }

    /**
     * Whether a split-mode product runs on the persistent one-token kernel gq_mmv: at most one row per segment
     * (T == 1), packed weights (2/3/4/8 bits) with uniform groups, whole groups of mmvTiles 16-output tiles, at most
     * 128 matrices.
     */
    static boolean mmvFits(CudaGptq g, GqTable tab, int T) {
        return MMV && T == 1 && g.bits() <= 8 && tab.groupShift() >= 0 && g.out() % (16 * mmvTiles(g.bits())) == 0 && tab.nmat() <= 128;
    }

    /** Activation windows in flight per gq_mma block (GM_STAGES in gq_mma.cu). */
    static final int MMA_STAGES = 3;

    /** Padding uint4 per token row of a gq_mma window (GM_PAD in gq_mma.cu). */
    static final int MMA_PAD = 4;

    /** Warps per block of the gq_mma kernels (GM_NW in gq_mma.cu). */
    static final int MMA_WARPS = 4;

    /**
     * n-tiles of 8 tokens per gq_mma block for a matrix with about this many rows: 1, 2, 4 or 8 (8 from 65 rows:
     * at 64 rows, 32-token tiles give twice the blocks, +15 % at batch 64; prefill keeps 64-token tiles, which were
     * 18 % faster there). The per-token arithmetic is the same for every choice.
     */
    static int mmaTokenTiles(int rows) {
        return Math.min(MMA_MAX_TILES, rows <= 8 ? 1 : rows <= 16 ? 2 : rows < MMA_64_FROM ? 4 : 8);
    }

    /** -Dgptq4j.cuda.mma64From=N: 64-token tiles from N rows (default 65; an experiment switch, same arithmetic). */
    static final int MMA_64_FROM = Math.max(17, Integer.getInteger("gptq4j.cuda.mma64From", 65));

    /** gq_mma keeps the loop-mode fold in shared memory for 32-token tiles (gm_ys in gq_mma.cu). */
    static boolean mmaFoldInShared(int nt) {
        return nt == 4;
    }

    /** -Dgptq4j.cuda.mmaMaxTiles=N caps the n-tiles per gq_mma block (1, 2, 4 or 8; the per-token arithmetic is the same). */
    static final int MMA_MAX_TILES = Integer.getInteger("gptq4j.cuda.mmaMaxTiles", 8);

    static String splitKernel(int bits, int tt) {
        return "gq_pipe" + (tt > 1 ? 2 : 1) + "_b" + bits + "_t" + tt;
    }

    private boolean useSplitMode(CudaGptq g, long rowsCap, int nproj) {
        if (g.ksplit() <= 1 || (long) nproj * g.ksplit() * rowsCap * g.out() * 4 > PARTIAL_LIMIT) return false;
        if (!g.mma()) return true;
        // mma: when the blocks of the loop mode alone fill the GPU, skip the partials' round trip through memory
        // (both modes give the same bits)
        int nt = mmaTokenTiles((int) Math.min(rowsCap, 64));
        long loopBlocks = (long) ceil(ceil(g.out(), 16), MMA_WARPS) * nproj * ceil(rowsCap, 8L * nt);
        return loopBlocks < MMA_LOOP_BLOCKS;
    }

    /**
     * y = x · Wᵀ, or y += x · Wᵀ where addTmp is not null: the split mode's fold adds the product to y (one launch),
     * the other paths write it to addTmp and add that to y (add's arithmetic either way).
     */
    private void launchLinear(CudaGptq g, CUdeviceptr x, CUdeviceptr xRows, CUdeviceptr seg, int T, CUdeviceptr y,
                              CUdeviceptr addTmp, PrepNorm norm) {
        if (norm != null && (!g.mma() || REFERENCE_LINEAR || xRows != null || seg != null)) {
            throw new IllegalStateException(g.name() + ": a fused norm needs the tensor-core path");
        }
        long n = (long) T * g.out();
        if (!REFERENCE_LINEAR && xRows == null && seg == null && useSplitMode(g, T, 1)) {
            CudaBuf part = scratch.floats("linear.partials", (long) g.ksplit() * T * g.out());
            launchSplit(g, GqTable.of(g), null, x, null, T, T, T, true, part.ptr, norm);
            drv.launch("gq_reduce", ceil(n, 256), 1, 256, 1, part.ptr, g.ksplit(), n, n, y, addTmp == null ? null : y,
                    0L, null);
            return;
        }
        CUdeviceptr out = addTmp == null ? y : addTmp;
        if (!REFERENCE_LINEAR && xRows == null && seg == null) {
            launchSplit(g, GqTable.of(g), null, x, null, T, T, T, false, out, norm);
        } else {
            int tt = tileRows(T);
            drv.launch("gptq_linear_b" + g.bits() + "_t" + tt, ceil(g.out(), 32), ceil(T, tt), 32, 8,
                    x, xRows, seg, T, g.qweight(), g.scaleZero(), g.perm(), g.chunkGroup(), g.in(), g.out(), out);
        }
        if (addTmp != null) addInPlace(y, addTmp, n);
    }

    /** Matrices with fewer rows than this use dense_fp16_rows (a block per row); a property of the weight, not the batch. */
    static final int DENSE_ROWS_BLOCK = 512;

    @Override
    public void dense(Object m, Buf x, int T, Buf out) {
        CudaDense d = CudaDense.of(m);
        drv.bind();
        if (d.rows() < DENSE_ROWS_BLOCK) {                  // few rows (the router): a block of 8 warps per row
            drv.launch("dense_fp16_rows", ceil(T, 8), d.rows(), 256, 1,
                    CudaBuf.of(x).ptr, d.data(), T, d.rows(), d.cols(), CudaBuf.of(out).ptr);
            return;
        }
        if (ceil(d.rows(), 8) > 65535) throw new IllegalArgumentException(d.name() + ": " + d.rows() + " rows (the dense kernel takes up to 524,280)");
        if (d.mma() != null) {                              // the lm_head: tensor cores (gq_mma_b16, gq_wg_b16)
            launchLinear(d.mma(), CudaBuf.of(x).ptr, null, null, T, CudaBuf.of(out).ptr, null, null);
            return;
        }
        if (T > 8 && d.cols() % 8 == 0) {                   // several row tiles: four outputs per warp (same bits)
            drv.launch("dense_fp16_o4", ceil(T, 8), ceil(d.rows(), 32), 256, 1,
                    CudaBuf.of(x).ptr, d.data(), T, d.rows(), d.cols(), CudaBuf.of(out).ptr);
            return;
        }
        drv.launch("dense_fp16", ceil(T, 8), ceil(d.rows(), 8), 256, 1,
                CudaBuf.of(x).ptr, d.data(), T, d.rows(), d.cols(), CudaBuf.of(out).ptr);
    }

    /** Few rows (the router): dense_fp16_rows_norm normalises the input itself and writes xn (one launch less). */
    @Override
    public void rmsNormDense(Buf x, Object normWeight, float eps, int T, int dim, Buf xn, Object m, Buf out) {
        CudaDense d = CudaDense.of(m), nw = CudaDense.of(normWeight);
        if (!rowsNormFits(d, nw, dim, x, xn)) {
            Backend.super.rmsNormDense(x, normWeight, eps, T, dim, xn, m, out);
            return;
        }
        drv.bind();
        drv.launch("dense_fp16_rows_norm", ceil(T, 8), d.rows(), 256, 1, CudaBuf.of(x).ptr, nw.data(), eps,
                CudaBuf.of(xn).ptr, d.data(), T, d.rows(), d.cols(), CudaBuf.of(out).ptr);
    }

    /** Whether rmsNormDense runs as dense_fp16_rows_norm (the norm inside the router's product). */
    private static boolean rowsNormFits(CudaDense d, CudaDense nw, int dim, Buf x, Buf xn) {
        return FUSE_NORM && d.rows() < DENSE_ROWS_BLOCK && d.cols() == dim && dim % 8 == 0
                && (long) nw.rows() * nw.cols() == dim && x != xn;
    }

    /**
     * The router's launch also routes (router_route_one, moe.cu) at one token: dense_fp16_rows_norm's arithmetic for up
     * to 8 router rows of up to 4,096 columns, then moe_route's one-token path, in one launch instead of two (decode at
     * batch 1). -Dgptq4j.cuda.fuseRoute=false: the two launches.
     */
    static final boolean FUSE_ROUTE = Boolean.parseBoolean(System.getProperty("gptq4j.cuda.fuseRoute", "true"));
    /** router_route_one's limits (RR_ROWS, 8 * RR_V * RMS_THREADS in moe.cu). */
    static final int ROUTE_ROWS = 8, ROUTE_COLS = 4096;

    @Override
    public void rmsNormRouteMoeAdd(Buf x, Object normWeight, float eps, int T, int dim, Buf xn, Object router,
                                   Buf routerLogits, Object[] w1, Object[] w3, Object[] w2, int topK, int intermediate,
                                   Buf tmp, Buf res) {
        CudaDense d = CudaDense.of(router), nw = CudaDense.of(normWeight);
        if (!FUSE_ROUTE || T != 1 || !rowsNormFits(d, nw, dim, x, xn) || d.rows() != w1.length || d.rows() > ROUTE_ROWS
                || dim > ROUTE_COLS || topK < 1 || topK > d.rows()) {
            Backend.super.rmsNormRouteMoeAdd(x, normWeight, eps, T, dim, xn, router, routerLogits, w1, w3, w2, topK,
                    intermediate, tmp, res);
            return;
        }
        moe(w1, w3, w2, xn, routerLogits, T, topK, dim, intermediate, res, res,
                (topIdx, topW, seg, rows, where) -> drv.launch("router_route_one", 1, 1, 256, 1, CudaBuf.of(x).ptr,
                        nw.data(), eps, CudaBuf.of(xn).ptr, d.data(), d.rows(), dim, CudaBuf.of(routerLogits).ptr, topK,
                        topIdx.ptr, topW.ptr, seg.ptr, rows.ptr, where.ptr));
    }

    /** A launch that writes a MoE step's routing (moe_route's outputs) in place of moe_route. */
    private interface Routing { void launch(CudaBuf topIdx, CudaBuf topW, CudaBuf seg, CudaBuf rows, CudaBuf where); }

    @Override
    public void gatherRows(Buf x, Buf rows, int R, int dim, Buf out) {
        drv.bind();
        drv.launch("gather_rows", ceil(dim, 256), R, 256, 1, CudaBuf.of(x).ptr, CudaBuf.of(rows).ptr, dim, CudaBuf.of(out).ptr);
    }

    @Override
    public void argmaxRows(Buf x, int R, int dim, Buf out) {
        if (R <= 0) return;
        if (dim <= 0) throw new IllegalArgumentException("argmaxRows: rows of " + dim + " elements");
        CudaBuf xb = checked(x, (long) R * dim, "argmaxRows"), ob = checked(out, R, "argmaxRows");
        drv.launch("argmax_rows", R, 1, 512, 1, xb.ptr, dim, ob.ptr);
    }

    @Override
    public void add(Buf x, Buf y, long n) {
        drv.bind();
        addInPlace(CudaBuf.of(x).ptr, CudaBuf.of(y).ptr, n);
    }

    /** x[i] += y[i] for i in [0, n). */
    private void addInPlace(CUdeviceptr x, CUdeviceptr y, long n) {
        drv.launch("add_inplace", Math.toIntExact(ceil(n, 256)), 1, 256, 1, x, y, n);
    }

    @Override
    public void rope(Buf q, Buf k, Buf positions, int T, int heads, int kvHeads, int headDim, double theta) {
        drv.bind();
        if (headDim % 2 != 0 || headDim > 2048) throw new IllegalArgumentException("RoPE head_dim " + headDim + " (even, up to 2048)");
        drv.launch("rope_rotate_half", T, heads + kvHeads, headDim / 2, 1, CudaBuf.of(q).ptr, CudaBuf.of(k).ptr, CudaBuf.of(positions).ptr,
                heads, kvHeads, headDim, Math.log(theta));
    }

    /** -Dgptq4j.cuda.attention=reference selects the one-block-per-query-head kernel of the first round. */
    static final boolean REFERENCE_ATTENTION = "reference".equals(System.getProperty("gptq4j.cuda.attention"));

    @Override
    public void attention(KvCache cache, int layer, Buf q, Buf k, Buf v, AttentionBatch meta, Buf out) {
        if (!(cache instanceof CudaKvCache c)) throw new IllegalArgumentException("expected a CUDA KV cache, got " + cache);
        if (layer < 0 || layer >= c.layers) throw new IndexOutOfBoundsException("layer " + layer + " of " + c.layers);
        int T = meta.T(), heads = meta.heads(), d = c.headDim, kvDim = c.kvHeads * d;
        if (heads % c.kvHeads != 0) throw new IllegalArgumentException(heads + " query heads for " + c.kvHeads + " KV heads");
        drv.bind();
        drv.launch("kv_append_" + c.suffix(), ceil(kvDim, 256), T, 256, 1,
                CudaBuf.of(k).ptr, CudaBuf.of(v).ptr, CudaBuf.of(meta.slots()).ptr, kvDim, c.keys(layer), c.values(layer));
        attend(c, layer, q, meta, out);
    }

    /**
     * The cache as a RoPE-and-append kernel (rope_kv_append, rope_kv_append_fold) takes it, or null where the default
     * path must run (with its checks): not a CUDA cache, another shape, an odd or oversized head dim, no such layer.
     */
    private static CudaKvCache ropeCache(KvCache cache, int layer, AttentionBatch meta, int kvHeads, int headDim) {
        if (!(cache instanceof CudaKvCache c) || c.kvHeads != kvHeads || c.headDim != headDim || headDim % 2 != 0
                || headDim > 2048 || layer < 0 || layer >= c.layers || meta.heads() % kvHeads != 0) {
            return null;
        }
        return c;
    }

    /** RoPE and the cache append in one launch (rope_kv_append: rope_rotate_half's and kv_append's arithmetic). */
    @Override
    public void ropeAttention(KvCache cache, int layer, Buf q, Buf k, Buf v, AttentionBatch meta, int kvHeads,
                              int headDim, double theta, Buf out) {
        CudaKvCache c = ropeCache(cache, layer, meta, kvHeads, headDim);
        if (c == null) {
            Backend.super.ropeAttention(cache, layer, q, k, v, meta, kvHeads, headDim, theta, out);   // its checks
            return;
        }
        drv.bind();
        drv.launch("rope_kv_append_" + c.suffix(), meta.T(), meta.heads() + kvHeads, headDim / 2, 1,
                CudaBuf.of(q).ptr, CudaBuf.of(k).ptr, CudaBuf.of(v).ptr, CudaBuf.of(meta.positions()).ptr,
                CudaBuf.of(meta.slots()).ptr, meta.heads(), kvHeads, headDim, Math.log(theta), c.keys(layer),
                c.values(layer));
        attend(c, layer, q, meta, out);
    }

    /** -Dgptq4j.cuda.fuseFold=false: rmsNormQkvAttention folds q, k and v in gq_reduce launches (an experiment switch, same bits). */
    static final boolean FUSE_FOLD = Boolean.parseBoolean(System.getProperty("gptq4j.cuda.fuseFold", "true"));

    /**
     * When q and the k+v pair run in split mode (decode), their partial sums are folded by the RoPE pass itself
     * (rope_kv_append_fold: gq_reduce's fold, then rope_kv_append's arithmetic): two launches less.
     */
    @Override
    public void rmsNormQkvAttention(Buf x, Object normWeight, float eps, int dim, Buf xn, Object wq, Object wk,
                                    Object wv, Buf q, Buf k, Buf v, KvCache cache, int layer, AttentionBatch meta,
                                    int kvHeads, int headDim, double theta, Buf out) {
        int T = meta.T();
        CudaGptq gq = CudaGptq.of(wq), gk = CudaGptq.of(wk);
        drv.bind();
        PrepNorm norm = FUSE_FOLD ? prepNorm(gq, normWeight, eps, dim, x, xn) : null;
        CudaKvCache c = ropeCache(cache, layer, meta, kvHeads, headDim);
        boolean shapes = norm != null && c != null && useSplitMode(gq, T, 1) && gq.out() == meta.heads() * headDim
                && gk.out() == kvHeads * headDim;
        GqTable qkv = shapes ? qkvTable(wq, wk, wv, T) : null;
        GqTable kv = shapes && qkv == null ? pairTable(wk, wv, T) : null;
        if (qkv == null && kv == null) {
            Backend.super.rmsNormQkvAttention(x, normWeight, eps, dim, xn, wq, wk, wv, q, k, v, cache, layer, meta,
                    kvHeads, headDim, theta, out);
            return;
        }
        CUdeviceptr pq, pkv;
        int qRun;
        long qStride, kvStride = (long) gk.ksplit() * T * gk.out();
        if (qkv != null) {
            // q's runs, k and v in one prep and one product: partials [runs + 2][ksplit][T][kv width]
            CudaBuf part = scratch.floats("linear.partials", qkv.nmat() * kvStride);
            launchSplit(gk, qkv, null, CudaBuf.of(x).ptr, null, T, T, T, true, part.ptr, norm);
            qRun = gk.out();
            qStride = kvStride;
            pq = part.ptr;
            pkv = part.ptr.withByteOffset(4L * (qkv.nmat() - 2) * kvStride);
        } else {
            CudaBuf pqb = scratch.floats("linear.partials", (long) gq.ksplit() * T * gq.out());
            launchSplit(gq, GqTable.of(gq), null, CudaBuf.of(x).ptr, null, T, T, T, true, pqb.ptr, norm);
            pq = pqb.ptr;
            qRun = gq.out();
            qStride = 0;
            pkv = pairPartials(gk, kv, CudaBuf.of(xn).ptr, T).ptr;
        }
        drv.launch("rope_kv_append_fold_" + c.suffix(), T, meta.heads() + 2 * kvHeads, headDim / 2, 1,
                pq, gq.ksplit(), qRun, qStride, pkv, gk.ksplit(), kvStride,
                CudaBuf.of(q).ptr, CudaBuf.of(k).ptr, CudaBuf.of(v).ptr, CudaBuf.of(meta.positions()).ptr,
                CudaBuf.of(meta.slots()).ptr, meta.heads(), kvHeads, headDim, Math.log(theta), c.keys(layer),
                c.values(layer));
        attend(c, layer, q, meta, out);
    }

    /** -Dgptq4j.cuda.qkvLaunch=false: q and the k+v pair in two one-token launches (an experiment switch, same bits). */
    static final boolean QKV_LAUNCH = Boolean.parseBoolean(System.getProperty("gptq4j.cuda.qkvLaunch", "true"));

    /** A device table of q's runs of k's width, k and v, by q's weight (built on first use). */
    private record QkvTable(Object k, Object v, GqTable table) { }

    private final Map<Object, QkvTable> qkvTables = new IdentityHashMap<>();

    /**
     * The one-token launch of q, k and v together (gq_mmv): q enters the table as q.out / k.out runs of k.out
     * outputs (its packed weights and scales offset to each run, its (scale, zero) row stride given per entry), then
     * k and v. Each entry's partials are what q's, k's and v's own split-mode launches give (the same cpb, scale
     * period and group shift are required, and every task's arithmetic is per output tile and split). Null where
     * that does not hold or gq_mmv does not take the launch.
     */
    private GqTable qkvTable(Object wq, Object wk, Object wv, int T) {
        CudaGptq q = CudaGptq.of(wq), k = CudaGptq.of(wk), v = CudaGptq.of(wv);
        // runs of whole 16-output tiles (the packed layout is tile-major); gq_mmv's own limits are mmvFits' below
        if (!QKV_LAUNCH || REFERENCE_LINEAR || !q.splitsLike(k) || !k.splitsLike(v) || k.out() != v.out()
                || k.out() % 16 != 0 || q.out() % k.out() != 0) {
            return null;
        }
        int runs = q.out() / k.out(), nmat = runs + 2;
        QkvTable qt = qkvTables.get(wq);
        if (qt == null || qt.k() != wk || qt.v() != wv) {
            if (qt != null) {
                release(qt.table().descs());
                release(qt.table().szRows());
            }
            CUdeviceptr[] a = new CUdeviceptr[4 * nmat];
            int[] rows = new int[nmat];
            long runWeights = CudaGptq.packedBytes(q.in(), k.out(), q.bits(), true);   // tile-major: a run is contiguous
            for (int j = 0; j < runs; j++) {                     // scales: half2 (scale, zero) per output
                q.putMat(a, j, q.qweight().withByteOffset(j * runWeights), q.scaleZero().withByteOffset(4L * j * k.out()));
                rows[j] = q.out() / 4;
            }
            k.putMat(a, runs);
            v.putMat(a, runs + 1);
            rows[runs] = k.out() / 4;
            rows[runs + 1] = v.out() / 4;
            boolean shared = Arrays.equals(q.permHost(), k.permHost()) && Arrays.equals(k.permHost(), v.permHost());
            CUdeviceptr szRows = alloc(4L * nmat, q.name() + " q+k+v rows");
            drv.copyHtoD(szRows, Pointer.to(rows), 4L * nmat, q.name() + " q+k+v rows");
            qt = new QkvTable(wk, wv, new GqTable(uploadAddresses(a, q.name() + " q+k+v table"), 1, nmat, shared,
                    k.scalePeriod(), k.groupShift(), szRows));
            qkvTables.put(wq, qt);
        }
        return useSplitMode(k, T, nmat) && mmvFits(k, qt.table(), T) ? qt.table() : null;
    }

    /** -Dgptq4j.cuda.attHeads=1, 2 or 4 fixes the query heads per attention_gqa block (0: {@link #attHeads}'s rule). */
    static final int ATT_HEADS = Integer.getInteger("gptq4j.cuda.attHeads", 0);

    /**
     * Query heads per attention_gqa block (ATT_HB, 4, in attention.cu at most): the most of 4, 2, 1 whose grid
     * (kvHeads × ceil(group / heads per block) × T blocks) still has a block for every SM, else 1. A head's arithmetic
     * is the same whatever its block holds, so this only spreads the work: at one token Mixtral's 8 blocks of 4 heads
     * took 12.1 µs per layer on the H100, 32 blocks of one head 8.7 (round 10); at batch 64 and 256 one head per block
     * was 6-7 % slower end to end (the K/V rows are loaded once per head instead of once per 4).
     */
    static int attHeads(int kvHeads, int group, int T, int sms) {
        if (ATT_HEADS > 0) return Math.max(1, Math.min(4, ATT_HEADS));
        for (int hb = 4; hb > 1; hb >>= 1) {
            if ((long) kvHeads * ceil(group, hb) * T >= sms) return Math.min(hb, Math.max(1, group));
        }
        return 1;
    }

    /**
     * -Dgptq4j.cuda.attLean=auto (default), true or false: attention_gqa_lean_* (attention.cu's LEAN: the query rows
     * and the warps' weighted V sums in shared memory, 64 registers, two 512-thread blocks per SM; the same bits) for
     * head dim 128. auto: when the grid has more blocks than the GPU has SMs, i.e. when the register-heavy form would
     * run in more than one wave of one block per SM.
     */
    static final String ATT_LEAN = System.getProperty("gptq4j.cuda.attLean", "auto");

    /** Tests: null follows {@link #ATT_LEAN}, else forces the lean form on or off. */
    volatile Boolean attLeanForce;

    /**
     * -Dgptq4j.cuda.attPipe=true (default) or false: where the lean form runs, its pipelined variant
     * attention_gqa_pipe_* (attention.cu's PIPE: each warp's next keys copied to shared memory by cp.async while it
     * computes the present ones, {@link #attPipeBytes} of dynamic shared memory per block, and a step's 16 dot products
     * summed over the lanes by a reduce-scatter with the butterflies' pairs, each lane taking 3 expf instead of 20; the
     * same bits). H200, decode batch 256: 110 against 159 µs per layer under ncu, 6,826-6,856 against 6,526-6,594 tok/s.
     */
    static final boolean ATT_PIPE = Boolean.parseBoolean(System.getProperty("gptq4j.cuda.attPipe", "true"));

    /** Tests: null follows {@link #ATT_PIPE}, else forces the pipelined lean form on or off. */
    volatile Boolean attPipeForce;

    /** attention.cu's att_pipe_bytes for head dim 128 (16 warps, 4 keys per step, K and V, 32 lanes of 4 elements). */
    static int attPipeBytes(boolean fp16) {
        return 16 * 4 * 2 * 32 * 4 * (fp16 ? 2 : 4);
    }

    /**
     * Whether a launch of attention_gqa for head dim 32 * dl over a grid of the given blocks takes the lean form (which
     * exists for head dim 128 only): force when not null, else {@link #ATT_LEAN}'s rule.
     */
    static boolean attLean(int dl, long blocks, int sms, Boolean force) {
        if (dl != 4) return false;
        if (force != null) return force;
        return switch (ATT_LEAN) {
            case "true" -> true;
            case "false" -> false;
            default -> blocks > sms;
        };
    }

    /** Attention of meta's tokens over the cache (their own k and v already appended). */
    private void attend(CudaKvCache c, int layer, Buf q, AttentionBatch meta, Buf out) {
        int T = meta.T(), heads = meta.heads(), d = c.headDim;
        CUdeviceptr kc = c.keys(layer), vc = c.values(layer);
        int dl = d / 32;
        boolean gqa = !REFERENCE_ATTENTION && (dl == 1 || dl == 2 || dl == 4 || dl == 8);   // head dims 32, 64, 128, 256
        String kernel = gqa ? "attention_gqa_" + c.suffix() + "_dl" + dl : "attention_paged_" + c.suffix();
        int threads = gqa ? (dl == 8 ? 256 : 512) : 128;
        if (gqa) {
            int hb = attHeads(c.kvHeads, heads / c.kvHeads, T, drv.multiprocessors());
            int gx = c.kvHeads * ceil(heads / c.kvHeads, hb);
            int smem = 0;
            if (attLean(dl, (long) gx * T, drv.multiprocessors(), attLeanForce)) {
                boolean pipe = attPipeForce != null ? attPipeForce : ATT_PIPE;
                kernel = "attention_gqa_" + (pipe ? "pipe_" : "lean_") + c.suffix() + "_dl" + dl;
                if (pipe) smem = attPipeBytes(c.elemBytes == 2);
            }
            drv.launch3(kernel, gx, T, 1, threads, 1, smem,
                    CudaBuf.of(q).ptr, kc, vc, CudaBuf.of(meta.positions()).ptr, CudaBuf.of(meta.tokenSeq()).ptr,
                    CudaBuf.of(meta.blockTables()).ptr, meta.maxBlocks(), c.blockSize, heads, c.kvHeads, d, hb,
                    meta.slidingWindow(), (float) (1.0 / Math.sqrt(d)), CudaBuf.of(out).ptr);
            return;
        }
        drv.launch(kernel, heads, T, threads, 1,
                CudaBuf.of(q).ptr, kc, vc, CudaBuf.of(meta.positions()).ptr, CudaBuf.of(meta.tokenSeq()).ptr,
                CudaBuf.of(meta.blockTables()).ptr, meta.maxBlocks(), c.blockSize, heads, c.kvHeads, d,
                meta.slidingWindow(), (float) (1.0 / Math.sqrt(d)), CudaBuf.of(out).ptr);
    }

    @Override
    public void moe(Object[] w1, Object[] w3, Object[] w2, Buf x, Buf routerLogits, int T, int topK,
                    int hidden, int intermediate, Buf out) {
        moe(w1, w3, w2, x, routerLogits, T, topK, hidden, intermediate, out, null, null);
    }

    /** The residual add rides in the weighted combine (one launch less). */
    @Override
    public void moeAdd(Object[] w1, Object[] w3, Object[] w2, Buf x, Buf routerLogits, int T, int topK,
                       int hidden, int intermediate, Buf tmp, Buf res) {
        moe(w1, w3, w2, x, routerLogits, T, topK, hidden, intermediate, res, res, null);
    }

    /**
     * out = the MoE block's output, plus res where res is not null (out may be res). routing: the launch that routes
     * (T == 1 only: router_route_one), else moe_route on routerLogits.
     */
    private void moe(Object[] w1, Object[] w3, Object[] w2, Buf x, Buf routerLogits, int T, int topK,
                     int hidden, int intermediate, Buf out, Buf resBuf, Routing routing) {
        int experts = w1.length;
        if (experts > 64 || w3.length != experts || w2.length != experts) {
            throw new IllegalArgumentException("MoE with " + experts + " experts (the CUDA kernels take up to 64, equal w1/w2/w3)");
        }
        if (T <= 0) return;
        drv.bind();
        long pairs = (long) T * topK;
        CudaBuf topIdx = scratch.ints("moe.topIdx", pairs);
        CudaBuf topW = scratch.floats("moe.topW", pairs);
        CudaBuf seg = scratch.ints("moe.seg", 2L * experts);
        CudaBuf rows = scratch.ints("moe.rows", pairs);
        CudaBuf where = scratch.ints("moe.where", pairs);
        CudaBuf h1 = scratch.floats("moe.h1", 2 * pairs * intermediate);   // [2][pairs][inter] when the splits loop in-block
        CudaBuf h3 = scratch.floats("moe.h3", pairs * intermediate);
        CudaBuf y = scratch.floats("moe.y", pairs * hidden);
        GqTable[] tables = REFERENCE_LINEAR ? null : expertTables(w1, w3, w2, hidden, intermediate);
        // w2's expert table and segments ranked by rows, most first (moe_route writes them; see WGMMA_FULLEST_FIRST)
        boolean byRows = tables != null && WGMMA_FULLEST_FIRST && T > 1;
        CudaBuf segByRows = byRows ? scratch.ints("moe.segByRows", 2L * experts) : null;
        CudaBuf w2ByRows = byRows ? scratch.ints("moe.w2ByRows", 8L * experts) : null;   // GqMat: 4 device pointers
        if (routing != null) {                        // T == 1 (rmsNormRouteMoeAdd), so byRows is false
            routing.launch(topIdx, topW, seg, rows, where);
        } else {
            // moe_route's threads: a warp per 32 pairs (its per-expert loops take any block size)
            int routeThreads = (int) Math.min(1024, ceil((long) T * topK, 32) * 32L);
            drv.launch("moe_route", 1, 1, routeThreads, 1,
                    CudaBuf.of(routerLogits).ptr, T, experts, topK, topIdx.ptr, topW.ptr, seg.ptr, rows.ptr, where.ptr,
                    byRows ? tables[1].descs() : null, byRows ? w2ByRows.ptr : null, byRows ? segByRows.ptr : null);
        }
        if (ROUTE_STATS) recordRouting(seg, experts, T);
        CUdeviceptr xp = CudaBuf.of(x).ptr, res = resBuf == null ? null : CudaBuf.of(resBuf).ptr;
        if (!REFERENCE_LINEAR) {
            GqTable t2 = tables[1];
            if (byRows) {
                t2 = new GqTable(w2ByRows.ptr, t2.nexp(), t2.nmat(), t2.sharedPerm(), t2.scalePeriod(), t2.groupShift());
            }
            moeSplit(w1, w3, w2, tables[0], t2, byRows ? segByRows.ptr : seg.ptr, xp, T, topK, hidden, intermediate,
                    seg, rows, where, topW, h1, h3, y, CudaBuf.of(out).ptr, res);
            return;
        }
        for (int e = 0; e < experts; e++) {
            CudaGptq g1 = expert(w1[e], hidden, intermediate), g3 = expert(w3[e], hidden, intermediate);
            launchLinear(g1, xp, rows.ptr, seg.at(2L * e), T, h1.ptr, null, null);   // h1 = x[rows] · W1ᵀ  (expert's segment)
            launchLinear(g3, xp, rows.ptr, seg.at(2L * e), T, h3.ptr, null, null);   // h3 = x[rows] · W3ᵀ
        }
        drv.launch("silu_mul", Math.toIntExact(ceil(pairs * intermediate, 256)), 1, 256, 1, h1.ptr, h3.ptr,
                pairs * intermediate);                                        // h1 = silu(h1) · h3
        for (int e = 0; e < experts; e++) {
            launchLinear(expert(w2[e], intermediate, hidden), h1.ptr, null, seg.at(2L * e), T, y.ptr, null, null);  // y = h1 · W2ᵀ
        }
        drv.launch("moe_combine", ceil(hidden, 256), T, 256, 1, y.ptr, where.ptr, topW.ptr, topK, hidden,
                CudaBuf.of(out).ptr, res);                            // out[t] = res[t] + Σ_j w_tj · y[where(t,j)]
    }

    /**
     * -Dgptq4j.cuda.routeStats=true: after each MoE routing the rows per expert are copied back (a synchronisation per
     * layer, so use it with -Dgptq4j.cuda.graphs=false) and tallied per step size; the bench prints the tally per batch.
     * A diagnostic: how evenly the router spreads a batch over the experts decides how many gq_wg token tiles of
     * WG_ROWS rows an expert needs (each tile streams the expert's weights).
     */
    static final boolean ROUTE_STATS = Boolean.getBoolean("gptq4j.cuda.routeStats");
    /**
     * Per step size T: {routings, experts, sum of the largest expert's rows, largest rows seen, experts over WG_ROWS rows,
     * token tiles of WG_ROWS, rows, experts with rows}.
     */
    private final Map<Integer, long[]> routing = new java.util.TreeMap<>();

    private void recordRouting(CudaBuf seg, int experts, int T) {
        int[] s = new int[2 * experts];
        drv.copyDtoH(Pointer.to(s), seg.ptr, 4L * s.length, "routing statistics");
        long[] r = routing.computeIfAbsent(T, k -> new long[8]);
        int max = 0;
        for (int e = 0; e < experts; e++) {
            int c = s[2 * e + 1];
            max = Math.max(max, c);
            if (c > WG_ROWS) r[4]++;
            r[5] += ceil(c, WG_ROWS);
            r[6] += c;
            if (c > 0) r[7]++;
        }
        r[0]++;
        r[1] += experts;
        r[2] += max;
        r[3] = Math.max(r[3], max);
    }

    /** Forgets the routing tally (the bench starts one per batch size). */
    void resetRouting() { routing.clear(); }

    /** The routing tally for steps of T tokens (see ROUTE_STATS), or null. */
    String routingSummary(int T) {
        long[] r = routing.get(T);
        if (r == null) return null;
        return String.format(java.util.Locale.ROOT, "%d routings of %d tokens: %.2f of %d experts with rows, rows per expert mean"
                        + " %.1f, largest %.1f on average (at most %d), %.1f%% of experts over %d rows, %.2f token tiles of %d rows"
                        + " per expert",
                r[0], T, (double) r[7] / r[0], r[1] / r[0], (double) r[6] / r[1], (double) r[2] / r[0], r[3],
                100.0 * r[4] / r[1], WG_ROWS, (double) r[5] / r[1], WG_ROWS);
    }

    /** Device GqMat tables of a layer's experts: {w1[0..E), w3[0..E)} and w2[0..E), built on first use. */
    private final Map<Object[], GqTable[]> expertTables = new IdentityHashMap<>();

    /** A layer's expert tables {w1 and w3, w2} (built and uploaded on first use). */
    private GqTable[] expertTables(Object[] w1, Object[] w3, Object[] w2, int hidden, int intermediate) {
        int experts = w1.length;
        CudaGptq g1 = expert(w1[0], hidden, intermediate), g2 = expert(w2[0], intermediate, hidden);
        GqTable[] tables = expertTables.get(w1);
        if (tables == null) {
            int sp1 = Integer.MAX_VALUE, sp2 = Integer.MAX_VALUE;
            int sh1 = g1.groupShift(), sh2 = g2.groupShift();
            boolean shared = true;                                   // w1 and w3 of each expert: one permutation
            CUdeviceptr[] up = new CUdeviceptr[8 * experts], down = new CUdeviceptr[4 * experts];
            for (int e = 0; e < experts; e++) {
                CudaGptq a = expert(w1[e], hidden, intermediate), b = expert(w3[e], hidden, intermediate);
                CudaGptq c = expert(w2[e], intermediate, hidden);
                if (a.cpb() != g1.cpb() || b.cpb() != g1.cpb() || a.bits() != g1.bits() || b.bits() != g1.bits()
                        || c.cpb() != g2.cpb() || c.bits() != g2.bits()) {
                    throw new IllegalArgumentException(a.name() + ": experts of one layer differ in format");
                }
                a.putMat(up, e);
                b.putMat(up, experts + e);
                c.putMat(down, e);
                sp1 = Math.min(sp1, Math.min(a.scalePeriod(), b.scalePeriod()));
                sp2 = Math.min(sp2, c.scalePeriod());
                if (a.groupShift() != sh1 || b.groupShift() != sh1) sh1 = -1;
                if (c.groupShift() != sh2) sh2 = -1;
                shared &= Arrays.equals(a.permHost(), b.permHost());
            }
            tables = new GqTable[]{
                    new GqTable(uploadAddresses(up, g1.name() + " expert table"), experts, 2 * experts, shared, sp1, sh1),
                    new GqTable(uploadAddresses(down, g2.name() + " expert table"), experts, experts, false, sp2, sh2)};
            expertTables.put(w1, tables);
        }
        return tables;
    }

    /**
     * The MoE block with the split-K kernels: one launch for w1 and w3 of every expert (blocks of experts with
     * no rows exit at once), SiLU·mul fused into the fold of their partial sums, one launch for w2, and the
     * router-weighted combine fused into the fold of w2's partials. up: w1 and w3's table over seg; down and seg2: w2's
     * table and its segments (the same experts' rows, possibly listed in another order: moe_route's ranking by rows).
     */
    private void moeSplit(Object[] w1, Object[] w3, Object[] w2, GqTable up, GqTable down, CUdeviceptr seg2,
                          CUdeviceptr xp, int T, int topK, int hidden, int intermediate, CudaBuf seg, CudaBuf rows,
                          CudaBuf where, CudaBuf topW, CudaBuf h1, CudaBuf h3, CudaBuf y, CUdeviceptr out,
                          CUdeviceptr res) {
        int experts = w1.length;
        CudaGptq g1 = CudaGptq.of(w1[0]), g2 = CudaGptq.of(w2[0]);     // shapes checked by expertTables
        int pairs = T * topK;
        int perExpert = (pairs + experts - 1) / experts;                // token tile of the mma kernels
        CUdeviceptr h3p = null;                                         // w2's input is silu(h1) · h3 where set
        if (useSplitMode(g1, pairs, 2)) {
            CudaBuf part = scratch.floats("moe.partUp", 2L * g1.ksplit() * pairs * intermediate);
            launchSplit(g1, up, seg.ptr, xp, rows.ptr, T, perExpert, pairs, true, part.ptr, null);
            long n = (long) pairs * intermediate;                             // h1 = silu(x·W1ᵀ) · (x·W3ᵀ)
            drv.launch("moe_silu_reduce", ceil(n, 256), 1, 256, 1, part.ptr, g1.ksplit(), n, n, h1.ptr);
        } else {
            launchSplit(g1, up, seg.ptr, xp, rows.ptr, T, perExpert, pairs, false, h1.ptr, null);
            // h3 is the second projection's plane: h1 + pairs*intermediate (h1 and h3 are allocated adjacently below)
            long n = (long) pairs * intermediate;
            if (g2.mma() && prepRows(g2, perExpert, false)) {
                h3p = h1.at(n);                                      // silu(h1) · h3 inside w2's preparation
            } else {
                drv.launch("silu_mul", ceil(n, 256), 1, 256, 1, h1.ptr, h1.at(n), n);
            }
        }
        if (useSplitMode(g2, pairs, 1)) {
            CudaBuf part = scratch.floats("moe.partDown", (long) g2.ksplit() * pairs * hidden);
            launchSplit(g2, down, seg2, h1.ptr, null, T, perExpert, pairs, true, part.ptr, null, h3p);
            long plane = (long) pairs * hidden;                                // out[t] = Σ_j w_tj · (h1 · W2ᵀ)[where(t,j)]
            drv.launch("moe_combine_reduce", ceil(hidden, 256), T, 256, 1, part.ptr, g2.ksplit(), plane, where.ptr,
                    topW.ptr, topK, hidden, out, res);
        } else {
            launchSplit(g2, down, seg2, h1.ptr, null, T, perExpert, pairs, false, y.ptr, null, h3p);
            drv.launch("moe_combine", ceil(hidden, 256), T, 256, 1, y.ptr, where.ptr, topW.ptr, topK, hidden, out, res);
        }
    }

    private static CudaGptq expert(Object o, int in, int out) {
        CudaGptq g = CudaGptq.of(o);
        if (g.in() != in || g.out() != out) {
            throw new IllegalArgumentException(g.name() + " is " + g.in() + "→" + g.out() + ", expected " + in + "→" + out);
        }
        return g;
    }

    @Override
    public void synchronize() {
        drv.bind();
        drv.synchronize();
    }

    @Override
    public void close() {
        try {
            drv.bind();
            drv.synchronize();
        } catch (RuntimeException ignored) {
            // a faulted context still has to be released below
        }
        try {
            for (CUdeviceptr p : new ArrayList<>(allocations.keySet())) {
                allocations.remove(p);
                try {
                    drv.free(p);
                } catch (RuntimeException ignored) {
                    // keep freeing the rest
                }
            }
        } finally {
            drv.close();
        }
    }

    private static int ceil(long n, long d) { return Math.toIntExact((n + d - 1) / d); }

    /** Grow-only scratch buffers for the MoE block, keyed by role; nothing is allocated once they fit the batch. */
    private final class Scratch {
        private final Map<String, CudaBuf> bufs = new java.util.HashMap<>();

        CudaBuf floats(String key, long n) { return get(key, n, false); }

        CudaBuf ints(String key, long n) { return get(key, n, true); }

        private CudaBuf get(String key, long n, boolean ints) {
            CudaBuf b = bufs.get(key);
            if (b != null && b.length >= n) return b;
            if (b != null) {
                release(b.ptr);
                b.freed = true;
            }
            CudaBuf fresh = new CudaBuf(alloc(4 * Math.max(n, 1), "scratch " + key), Math.max(n, 1), ints);
            bufs.put(key, fresh);
            return fresh;
        }
    }

    /** Live allocations, for diagnostics. */
    List<String> liveAllocations() { return new ArrayList<>(allocations.values()); }
}
