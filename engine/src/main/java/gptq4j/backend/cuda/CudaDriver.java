package gptq4j.backend.cuda;

import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

import java.io.IOException;
import java.io.InputStream;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

import static jcuda.driver.CUresult.CUDA_SUCCESS;

/**
 * One GPU through the CUDA driver API: its primary context, the kernel module loaded from the fatbin
 * resource, allocations and launches. Every driver call's result is checked and mapped to a specific
 * exception ({@link CudaUnavailableException}, {@link CudaOutOfMemoryException}, {@link CudaKernelException}).
 */
final class CudaDriver implements AutoCloseable {
    static final String MODULE_RESOURCE = "/gptq4j/cuda/gptq4j.fatbin";
    static final CUdeviceptr NULL = new CUdeviceptr();

    /** Set -Dgptq4j.cuda.sync=true to synchronise after every launch (faults then name their kernel). */
    static final boolean SYNC_EACH_LAUNCH = Boolean.getBoolean("gptq4j.cuda.sync");
    /**
     * Programmatic dependent launch on sm_90 (compute capability 9.0) through {@link CudaLaunchEx} (-Dgptq4j.cuda.pdl=false turns it off):
     * each kernel may be scheduled while the one before it finishes, and waits for it on entry (GK_ENTER).
     */
    static final boolean PDL = !"false".equals(System.getProperty("gptq4j.cuda.pdl"));

    private final int ordinal;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final CUmodule module = new CUmodule();
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final Map<String, Integer> functionIds = new HashMap<>();
    private static final Logger LOG = Logger.getLogger(CudaDriver.class.getName());

    /**
     * Launch queue and CUDA graphs (-Dgptq4j.cuda.graphs=false turns them off). Launches are queued on the host
     * and submitted when anything else touches the device (a copy, an allocation, a synchronisation). A queued
     * sequence identical to one seen before (same kernels, grids and argument values, pointers included) is
     * captured once into a CUDA graph and from then on replayed with one cuGraphLaunch: a decode step at a
     * fixed batch size becomes one launch. A graph is a pure function of its launch list, so replaying it does
     * exactly what launching the kernels one by one would.
     */
    static final boolean GRAPHS = !"false".equals(System.getProperty("gptq4j.cuda.graphs"));
    /**
     * -Dgptq4j.cuda.skipKernels=REGEX: kernels whose names match are not launched. A timing experiment only (the bench
     * reports it; results are wrong): the step time without a family of kernels says what that family costs.
     */
    static final java.util.regex.Pattern SKIP_KERNELS = java.util.Optional.ofNullable(System.getProperty("gptq4j.cuda.skipKernels"))
            .map(java.util.regex.Pattern::compile).orElse(null);
    private static final int MAX_GRAPHS = 48;
    /**
     * Step replay (-Dgptq4j.cuda.stepReplay=false turns it off; needs graphs). A caller that issues the same calls with
     * the same arguments for every step of a given signature (MixtralModel.forward: the model, and the step's token,
     * sequence and logit-row counts; compared with equals) asks {@link #replayStep} first. The queued launches are a
     * function of those calls and of this driver's and the backend's state, and every change of that state that could
     * alter them goes through an allocation, a free or a graph's eviction, each of which bumps {@link #generation}.
     * So a step recorded as exactly one graph, with no such change between its start and its end, is replayed for
     * the next step of the same signature and generation with one cuGraphLaunch, and the caller skips its calls (on
     * the host, the model's Java and this queue's key for ~450 launches per decode step of Mixtral). H100, round 23:
     * batch 1 4.58-4.62 against 4.70-4.83 ms per step.
     */
    static final boolean STEP_REPLAY = !"false".equals(System.getProperty("gptq4j.cuda.stepReplay"));
    private boolean stepReplay = STEP_REPLAY;
    /**
     * Bumped by every allocation, free and graph eviction (see {@link #STEP_REPLAY}); the kept steps are dropped with
     * it (they may name a closed model), and a step recorded across a bump is not kept.
     */
    private long generation;
    /** The kept steps' graphs by signature, all of the current generation. */
    private final Map<Object, GraphEntry> steps = new HashMap<>();
    private boolean recording;
    private Object recordSignature;
    private long recordGeneration;
    private int recordFlushes;
    private GraphEntry recordGraph;
    private long stepReplays;
    private record Queued(CUfunction f, String name, int gx, int gy, int gz, int bx, int by, int smem, Object[] args) { }
    private static final class StepKey {
        final long[] key;
        final int hash;
        StepKey(long[] key) { this.key = key; this.hash = Arrays.hashCode(key); }
        @Override public int hashCode() { return hash; }
        @Override public boolean equals(Object o) { return o instanceof StepKey k && k.hash == hash && Arrays.equals(k.key, key); }
    }
    private static final class GraphEntry { jcuda.driver.CUgraphExec exec; }
    private final List<Queued> queue = new ArrayList<>();
    private long[] keyBuf = new long[4096];
    private int keyLen;
    private final LinkedHashMap<StepKey, GraphEntry> graphs = new LinkedHashMap<>(64, 0.75f, true);
    private jcuda.driver.CUstream graphStream;
    private boolean graphsBroken;
    private long graphLaunches, graphCaptures, directLaunches, kernelsLaunched;

    private static final VarHandle NATIVE_POINTER, BYTE_OFFSET;
    static {
        try {
            MethodHandles.Lookup l = MethodHandles.privateLookupIn(NativePointerObject.class, MethodHandles.lookup());
            NATIVE_POINTER = l.findVarHandle(NativePointerObject.class, "nativePointer", long.class);
            BYTE_OFFSET = MethodHandles.privateLookupIn(Pointer.class, MethodHandles.lookup())
                    .findVarHandle(Pointer.class, "byteOffset", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The device address a JCuda pointer stands for (base plus byte offset). */
    static long address(CUdeviceptr p) {
        return p == null ? 0L : (long) NATIVE_POINTER.get(p) + (long) BYTE_OFFSET.get(p);
    }
    private final String deviceName;
    /** Launches go through cuLaunchKernelEx with the PDL attribute (see {@link #PDL}). */
    private final boolean pdl;
    /** The argument slots of one cuLaunchKernelEx call (reused: the driver copies them at launch). */
    private final ByteBuffer argSlots = ByteBuffer.allocateDirect(8 * CudaLaunchEx.MAX_ARGS).order(ByteOrder.LITTLE_ENDIAN);
    private final int computeMajor;
    private final int computeMinor;
    private final int multiprocessors;
    private Thread boundThread;
    private boolean closed;

    CudaDriver(int ordinal) {
        this.ordinal = ordinal;
        initDriver();
        int[] count = new int[1];
        check(JCudaDriver.cuDeviceGetCount(count), "cuDeviceGetCount");
        if (ordinal < 0 || ordinal >= count[0]) {
            throw new CudaUnavailableException("CUDA device " + ordinal + " does not exist: the driver sees "
                    + count[0] + " device(s) (set CUDA_VISIBLE_DEVICES or pick cuda:0.." + (count[0] - 1) + ")",
                    CUresult.CUDA_ERROR_INVALID_DEVICE, null);
        }
        check(JCudaDriver.cuDeviceGet(device, ordinal), "cuDeviceGet(" + ordinal + ")");
        byte[] name = new byte[256];
        check(JCudaDriver.cuDeviceGetName(name, name.length, device), "cuDeviceGetName");
        int n = 0;
        while (n < name.length && name[n] != 0) n++;
        this.deviceName = new String(name, 0, n, java.nio.charset.StandardCharsets.US_ASCII);
        this.computeMajor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        this.computeMinor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        this.multiprocessors = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        if (computeMajor < 8) {
            throw new CudaUnavailableException("CUDA device " + ordinal + " (" + deviceName + ") has compute capability "
                    + computeMajor + "." + computeMinor + "; gptq4j's kernels need 8.0 or newer (Ampere, Hopper)",
                    CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU, null);
        }
        // only where the fatbin's sm_90a code runs: its kernels wait in GK_ENTER; the compute_80 PTX that newer GPUs
        // would JIT has no such wait, so there a PDL launch could overlap the kernel before it
        String noPdl = !PDL ? "off (-Dgptq4j.cuda.pdl=false)" : !sm90a() ? "needs the module's sm_90a code (this GPU is sm_"
                + computeMajor + computeMinor + ")" : CudaLaunchEx.unavailable();
        this.pdl = noPdl == null;
        if (noPdl != null && PDL && computeMajor >= 9) LOG.info("programmatic dependent launch not used: " + noPdl);
        check(JCudaDriver.cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain(" + ordinal + ")");
        bind();
        byte[] image = loadResource();
        int rc = JCudaDriver.cuModuleLoadData(module, image);
        if (rc != CUDA_SUCCESS) {
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
            throw new CudaUnavailableException("cannot load the gptq4j CUDA module on " + deviceName + " (sm_"
                    + computeMajor + computeMinor + "): " + errorName(rc)
                    + " (the fatbin, built by nvcc 13.0, has sm_80 and sm_90a code and compute_80 PTX: it needs NVIDIA driver R580 (CUDA 13.0) or newer)",
                    rc, null);
        }
    }

    /** Loads the JCuda driver binding and initialises the driver, mapping every failure to "unavailable". */
    static void initDriver() {
        int rc;
        try {
            JCudaDriver.setExceptionsEnabled(false);
            rc = JCudaDriver.cuInit(0);
        } catch (UnsatisfiedLinkError e) {
            String why = String.valueOf(e.getMessage());
            for (String line : why.split("\n")) {
                if (line.contains("libcuda")) {   // JCuda's message lists every attempt; keep the line naming the driver
                    why = line.trim();
                    break;
                }
            }
            if (why.length() > 300) why = why.substring(0, 300) + "...";
            throw new CudaUnavailableException("the NVIDIA driver library could not be loaded (" + why
                    + "); install the NVIDIA driver (libcuda.so.1) or use --device cpu", -1, e);
        } catch (NoClassDefFoundError e) {
            throw new CudaUnavailableException("JCuda is not usable in this JVM (" + e
                    + "); an earlier attempt to load its native library failed", -1, e);
        }
        if (rc != CUDA_SUCCESS) {
            throw new CudaUnavailableException("cuInit failed: " + errorName(rc)
                    + (rc == CUresult.CUDA_ERROR_NO_DEVICE ? " (no CUDA-capable device is visible)" : ""), rc, null);
        }
    }

    /** -Dgptq4j.cuda.module=FILE loads the kernels from that fatbin instead of the jar's (kernel experiments). */
    static final String MODULE_FILE = System.getProperty("gptq4j.cuda.module");

    private static byte[] loadResource() {
        if (MODULE_FILE != null) {
            try {
                return java.nio.file.Files.readAllBytes(java.nio.file.Path.of(MODULE_FILE));
            } catch (IOException e) {
                throw new CudaUnavailableException("cannot read -Dgptq4j.cuda.module=" + MODULE_FILE + ": " + e.getMessage(), -1, e);
            }
        }
        try (InputStream in = CudaDriver.class.getResourceAsStream(MODULE_RESOURCE)) {
            if (in == null) {
                throw new CudaUnavailableException("resource " + MODULE_RESOURCE
                        + " is missing from the classpath (run bin/build-cuda and rebuild the engine jar)", -1, null);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new CudaUnavailableException("cannot read " + MODULE_RESOURCE + ": " + e.getMessage(), -1, e);
        }
    }

    private int attribute(int attr) {
        int[] v = new int[1];
        check(JCudaDriver.cuDeviceGetAttribute(v, attr, device), "cuDeviceGetAttribute(" + attr + ")");
        return v[0];
    }

    int ordinal() { return ordinal; }

    String deviceName() { return deviceName; }

    String computeCapability() { return computeMajor + "." + computeMinor; }

    /** Whether the module's sm_90a code runs here (compute capability 9.0: H100, H200), e.g. gq_wg.cu's wgmma kernels. */
    boolean sm90a() { return computeMajor == 9 && computeMinor == 0; }

    int multiprocessors() { return multiprocessors; }

    /** Makes this device's context current on the calling thread (cheap when it already is). */
    void bind() {
        if (closed) throw new IllegalStateException("CUDA backend for device " + ordinal + " is closed");
        Thread t = Thread.currentThread();
        if (t != boundThread) {
            check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
            boundThread = t;
        }
    }

    /**
     * The most threads a block of kernel {@code name} may have: its __launch_bounds__ (gq_wg's block size depends on
     * how gq_wg.cu was built, so the launcher takes it from the loaded module).
     */
    int maxThreadsPerBlock(String name) {
        return maxThreads.computeIfAbsent(name, n -> {
            bind();
            int[] v = new int[1];
            check(JCudaDriver.cuFuncGetAttribute(v, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, function(n)),
                    "cuFuncGetAttribute(" + n + ")");
            return v[0];
        });
    }

    private final Map<String, Integer> maxThreads = new HashMap<>();

    CUfunction function(String name) {
        return functions.computeIfAbsent(name, n -> {
            CUfunction f = new CUfunction();
            check(JCudaDriver.cuModuleGetFunction(f, module, n), "cuModuleGetFunction(" + n + ")");
            functionIds.put(n, functionIds.size() + 1);
            return f;
        });
    }

    private final Map<String, Integer> residentBlocks = new HashMap<>();

    /**
     * Blocks of {@code threads} threads and {@code smem} bytes of dynamic shared memory that one SM holds at once
     * (registers, shared memory and warps counted by the driver), at least 1: the size of a persistent grid.
     */
    int residentBlocksPerSm(String kernel, int threads, int smem) {
        return residentBlocks.computeIfAbsent(kernel + "/" + threads + "/" + smem, k -> {
            CUfunction f = function(kernel);
            optInSharedMemory(kernel, f, smem);
            int[] n = new int[1];
            check(JCudaDriver.cuOccupancyMaxActiveBlocksPerMultiprocessor(n, f, threads, smem),
                    "cuOccupancyMaxActiveBlocksPerMultiprocessor(" + kernel + ")");
            return Math.max(1, n[0]);
        });
    }

    /**
     * Raises a kernel's dynamic shared memory limit to smem (sm_80+: up to 163/227 KB). Below 48 KB too: the default
     * 48 KB limit counts the kernel's static shared memory as well.
     */
    private void optInSharedMemory(String kernel, CUfunction f, int smem) {
        if (smem > 0 && smemLimits.getOrDefault(kernel, 0) < smem) {
            check(JCudaDriver.cuFuncSetAttribute(f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem),
                    "cuFuncSetAttribute(" + kernel + ", " + smem + " bytes of shared memory)");
            smemLimits.put(kernel, smem);
        }
    }

    /** Device memory of {@code bytes} bytes (at least 4), not initialised. */
    CUdeviceptr malloc(long bytes, String what) {
        flush();
        newGeneration();
        CUdeviceptr p = new CUdeviceptr();
        long size = Math.max(4, bytes);
        int rc = JCudaDriver.cuMemAlloc(p, size);
        if (rc == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
            long[] free = new long[1], total = new long[1];
            JCudaDriver.cuMemGetInfo(free, total);
            throw new CudaOutOfMemoryException("out of device memory on cuda:" + ordinal + " allocating " + size
                    + " bytes for " + what + " (free " + free[0] + " of " + total[0]
                    + " bytes); reduce the batch size, the KV-cache budget or the context length", rc, size);
        }
        check(rc, "cuMemAlloc(" + size + " bytes for " + what + ")");
        return p;
    }

    void free(CUdeviceptr p) {
        if (closed) return;
        flush();
        newGeneration();
        check(JCudaDriver.cuMemFree(p), "cuMemFree");
    }

    void memsetD32(CUdeviceptr p, int value, long words) {
        flush();
        if (words > 0) check(JCudaDriver.cuMemsetD32(p, value, words), "cuMemsetD32");
    }

    void copyHtoD(CUdeviceptr dst, Pointer src, long bytes, String what) {
        flush();
        if (bytes > 0) check(JCudaDriver.cuMemcpyHtoD(dst, src, bytes), "copy to device (" + what + ")");
    }

    /**
     * -Dgptq4j.cuda.asyncWrites=false turns this off. Writes of n ints or floats up to {@link #STAGE_BYTES} are copied
     * into a pinned staging buffer and sent with cuMemcpyHtoDAsync on the legacy stream, which orders them after the
     * launches before them and before everything after them (the graph stream is a blocking stream), so the host
     * does not wait for each: a decode step's six input writes. The staging space is reused once the device has
     * caught up: after a read back (synchronous) or a synchronize, or by a synchronize when it is full. H100, round 23
     * (with step replay): batch 1 4.57-4.59 against 4.61-4.62 ms per step; batch 256 even.
     */
    static final boolean ASYNC_WRITES = !"false".equals(System.getProperty("gptq4j.cuda.asyncWrites"));
    static final long STAGE_BYTES = 1L << 20;
    private Pointer stage;
    private java.nio.IntBuffer stageInts;
    private java.nio.FloatBuffer stageFloats;
    private long staged;

    /** n ints (src an int[]) or floats (a float[]) to dst: staged and asynchronous where they fit (see ASYNC_WRITES). */
    void write(CUdeviceptr dst, Object src, int n, String what) {
        long bytes = 4L * n;
        if (!stageFor(bytes)) {
            copyHtoD(dst, src instanceof int[] a ? Pointer.to(a) : Pointer.to((float[]) src), bytes, what);
            return;
        }
        if (src instanceof int[] a) stageInts.put((int) (staged >> 2), a, 0, n);
        else stageFloats.put((int) (staged >> 2), (float[]) src, 0, n);
        check(JCudaDriver.cuMemcpyHtoDAsync(dst, stage.withByteOffset(staged), bytes, null), "copy to device (" + what + ")");
        staged = (staged + bytes + 15) & ~15L;
    }

    /** Whether a write of this many bytes goes through the staging buffer (then there is room at {@link #staged}). */
    private boolean stageFor(long bytes) {
        if (!ASYNC_WRITES || SYNC_EACH_LAUNCH || bytes <= 0 || bytes > STAGE_BYTES) return false;
        flush();
        if (stage == null) {
            Pointer p = new Pointer();
            ByteBuffer b = allocPinned(p, STAGE_BYTES, "staging");
            stage = p;
            stageInts = b.asIntBuffer();
            stageFloats = b.asFloatBuffer();
        }
        if (staged + bytes > STAGE_BYTES) {                 // the copies still in flight read the whole buffer
            check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize (staging full)");
            staged = 0;
        }
        return true;
    }

    /**
     * -Dgptq4j.cuda.pinnedReads=false turns this off. Reads of at least {@link #PINNED_READ_MIN} bytes into a float[] (a
     * step's logits from batch 8 up) are copied by the DMA engine into a pinned buffer, in pieces of up to
     * {@link #PINNED_READ_MAX}, and from there into the array by up to 4 threads, instead of one pageable
     * cuMemcpyDtoH. H100, round 23: batch-256 logits (32.8 MB) 1.51 against 2.59 ms (21.7 against 12.7 GB/s), decode
     * 49.09 against 50.01 ms per step.
     */
    static final boolean PINNED_READS = !"false".equals(System.getProperty("gptq4j.cuda.pinnedReads"));
    static final long PINNED_READ_MIN = 1L << 20, PINNED_READ_MAX = 64L << 20;
    private boolean pinnedReads = PINNED_READS;
    private Pointer readStage;
    private long readStageBytes;
    private java.nio.FloatBuffer readFloats;
    private static final int READ_THREADS = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors() / 2));
    private static volatile java.util.concurrent.ExecutorService readPool;

    /** n floats from src into dst (see {@link #PINNED_READS}). */
    void read(CUdeviceptr src, float[] dst, int n, String what) {
        long bytes = 4L * n;
        if (!pinnedReads || bytes < PINNED_READ_MIN || n > dst.length) {
            copyDtoH(Pointer.to(dst), src, bytes, what);
            return;
        }
        flush();
        long piece = Math.min(bytes, PINNED_READ_MAX);
        if (readStageBytes < piece) {
            if (readStage != null) check(JCudaDriver.cuMemFreeHost(readStage), "cuMemFreeHost");
            readStage = null;
            readStageBytes = 0;
            Pointer p = new Pointer();
            readFloats = allocPinned(p, piece, "reads").asFloatBuffer();
            readStage = p;
            readStageBytes = piece;
        }
        for (long done = 0; done < bytes; done += piece) {
            long len = Math.min(piece, bytes - done);
            copyDtoH(readStage, src.withByteOffset(done), len, what);
            copyOut(dst, (int) (done >> 2), (int) (len >> 2));
        }
    }

    /** bytes of pinned host memory into p, as a native-order buffer. */
    private ByteBuffer allocPinned(Pointer p, long bytes, String what) {
        check(JCudaDriver.cuMemAllocHost(p, bytes), "cuMemAllocHost (" + bytes + " bytes for " + what + ")");
        return p.getByteBuffer(0, bytes).order(ByteOrder.nativeOrder());
    }

    /** readFloats[0, n) into dst[off, off + n), split over the read threads. */
    private void copyOut(float[] dst, int off, int n) {
        int parts = (int) Math.min(READ_THREADS, Math.max(1, n / (1 << 18)));   // 1 MiB or more per thread
        if (parts == 1) {
            readFloats.get(0, dst, off, n);
            return;
        }
        java.util.concurrent.ExecutorService pool = readPool;
        if (pool == null) {
            synchronized (CudaDriver.class) {
                if (readPool == null) {
                    readPool = java.util.concurrent.Executors.newFixedThreadPool(READ_THREADS, r -> {
                        Thread t = new Thread(r, "gptq4j-cuda-read");
                        t.setDaemon(true);
                        return t;
                    });
                }
                pool = readPool;
            }
        }
        java.nio.FloatBuffer from = readFloats;
        List<java.util.concurrent.Future<?>> fs = new ArrayList<>(parts);
        int per = (n + parts - 1) / parts;
        for (int i = 1; i < parts; i++) {
            int a = i * per, len = Math.min(per, n - a);
            if (len > 0) fs.add(pool.submit(() -> from.get(a, dst, off + a, len)));
        }
        from.get(0, dst, off, Math.min(per, n));                // this thread takes the first part
        try {
            for (java.util.concurrent.Future<?> f : fs) f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while copying a read from the pinned buffer", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException("copying a read from the pinned buffer failed", e.getCause());
        }
    }

    /** Pinned reads on or off for this driver (tests; the default is {@link #PINNED_READS}). */
    void pinnedReads(boolean on) { pinnedReads = on; }

    void copyDtoH(Pointer dst, CUdeviceptr src, long bytes, String what) {
        flush();
        if (bytes > 0) check(JCudaDriver.cuMemcpyDtoH(dst, src, bytes), "copy from device (" + what + ")");
        staged = 0;                                           // synchronous on the legacy stream: earlier copies are done
    }

    void copyDtoD(CUdeviceptr dst, CUdeviceptr src, long bytes) {
        flush();
        if (bytes > 0) check(JCudaDriver.cuMemcpyDtoD(dst, src, bytes), "device copy");
    }

    /** Launches a kernel; each argument is a CUdeviceptr (null for a null pointer), Integer, Long, Float or Double. */
    void launch(String kernel, int gx, int gy, int bx, int by, Object... args) {
        launch3(kernel, gx, gy, 1, bx, by, 0, args);
    }

    /** Kernels allowed more than the default 48 KB of dynamic shared memory, with the limit set. */
    private final Map<String, Integer> smemLimits = new HashMap<>();

    /** Queues a launch with a 3-D grid and {@code smem} bytes of dynamic shared memory (see {@link #GRAPHS}). */
    void launch3(String kernel, int gx, int gy, int gz, int bx, int by, int smem, Object... args) {
        if (gx <= 0 || gy <= 0 || gz <= 0) return;
        if (SKIP_KERNELS != null && SKIP_KERNELS.matcher(kernel).matches()) return;
        kernelsLaunched++;
        CUfunction f = function(kernel);
        optInSharedMemory(kernel, f, smem);
        if (SYNC_EACH_LAUNCH || !GRAPHS || graphsBroken) {
            submit(new Queued(f, kernel, gx, gy, gz, bx, by, smem, args), null);
            directLaunches++;
            return;
        }
        queue.add(new Queued(f, kernel, gx, gy, gz, bx, by, smem, args));
        int need = keyLen + 8 + args.length;
        if (need > keyBuf.length) keyBuf = Arrays.copyOf(keyBuf, Math.max(need, keyBuf.length * 2));
        long[] k = keyBuf;
        k[keyLen++] = functionIds.get(kernel);
        k[keyLen++] = gx;
        k[keyLen++] = gy;
        k[keyLen++] = gz;
        k[keyLen++] = bx;
        k[keyLen++] = by;
        k[keyLen++] = smem;
        k[keyLen++] = args.length;
        for (Object a : args) k[keyLen++] = argumentBits(kernel, a);
    }

    private void submit(Queued q, jcuda.driver.CUstream stream) {
        Object[] args = q.args();
        int rc;
        if (pdl && args.length <= CudaLaunchEx.MAX_ARGS) {
            // cuLaunchKernelEx with the PDL attribute (captured into graphs as programmatic edges)
            ByteBuffer b = argSlots;
            for (int i = 0; i < args.length; i++) b.putLong(8 * i, argumentBits(q.name(), args[i]));
            long s = stream == null ? 0L : (long) NATIVE_POINTER.get(stream);
            rc = CudaLaunchEx.launch((long) NATIVE_POINTER.get(q.f()), q.gx(), q.gy(), q.gz(), q.bx(), q.by(), 1,
                    q.smem(), s, b, args.length, true);
        } else {
            NativePointerObject[] params = new NativePointerObject[args.length];
            for (int i = 0; i < args.length; i++) {
                Object a = args[i];
                params[i] = a == null ? Pointer.to(NULL) : a instanceof CUdeviceptr p ? Pointer.to(p)
                        : a instanceof Long || a instanceof Double ? Pointer.to(new long[]{argumentBits(q.name(), a)})
                        : Pointer.to(new int[]{(int) argumentBits(q.name(), a)});
            }
            rc = JCudaDriver.cuLaunchKernel(q.f(), q.gx(), q.gy(), q.gz(), q.bx(), q.by(), 1, q.smem(), stream,
                    Pointer.to(params), null);
        }
        if (rc != CUDA_SUCCESS) {
            throw new CudaKernelException("launch of kernel " + q.name() + " (grid " + q.gx() + "x" + q.gy() + "x" + q.gz()
                    + ", block " + q.bx() + "x" + q.by() + ", smem " + q.smem() + (pdl ? ", PDL" : "") + ") failed: "
                    + errorName(rc), rc);
        }
        if (SYNC_EACH_LAUNCH) {
            rc = JCudaDriver.cuCtxSynchronize();
            if (rc != CUDA_SUCCESS) throw new CudaKernelException("kernel " + q.name() + " failed: " + errorName(rc), rc);
        }
    }

    /**
     * A kernel argument's bits: a device address, or an int / float in the low 32 bits, or a long / double
     * (null: a null pointer).
     */
    private static long argumentBits(String kernel, Object a) {
        if (a == null) return 0L;
        if (a instanceof CUdeviceptr p) return address(p);
        if (a instanceof Integer v) return v & 0xFFFFFFFFL;
        if (a instanceof Long v) return v;
        if (a instanceof Float v) return Float.floatToRawIntBits(v) & 0xFFFFFFFFL;
        if (a instanceof Double v) return Double.doubleToRawLongBits(v);
        throw new IllegalArgumentException("kernel " + kernel + ": unsupported argument " + a.getClass());
    }

    /** Whether launches use programmatic dependent launch. */
    boolean pdl() { return pdl; }

    /** Submits the queued launches: as a graph replay when this exact sequence was seen before, else one by one. */
    void flush() {
        if (queue.isEmpty()) return;
        if (recording) {
            recordFlushes++;
            recordGraph = null;                              // set below where the queue went as one graph
        }
        try {
            if (queue.size() < 4 || graphsBroken) {
                for (Queued q : queue) submit(q, null);
                directLaunches += queue.size();
                return;
            }
            StepKey key = new StepKey(Arrays.copyOf(keyBuf, keyLen));
            GraphEntry g = graphs.get(key);
            if (g == null) {
                graphs.put(key, new GraphEntry());
                while (graphs.size() > MAX_GRAPHS) {
                    var it = graphs.entrySet().iterator();
                    GraphEntry old = it.next().getValue();
                    it.remove();
                    newGeneration();                                // a kept step may hold it
                    if (old.exec != null) JCudaDriver.cuGraphExecDestroy(old.exec);
                }
                for (Queued q : queue) submit(q, null);
                directLaunches += queue.size();
                return;
            }
            if (graphStream == null) {
                graphStream = new jcuda.driver.CUstream();
                check(JCudaDriver.cuStreamCreate(graphStream, 0), "cuStreamCreate");   // blocking: ordered with the null stream
            }
            if (g.exec == null) {
                check(JCudaDriver.cuStreamBeginCapture(graphStream,
                        jcuda.driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
                jcuda.driver.CUgraph graph = new jcuda.driver.CUgraph();
                try {
                    for (Queued q : queue) submit(q, graphStream);
                } finally {
                    int rc = JCudaDriver.cuStreamEndCapture(graphStream, graph);
                    if (rc != CUDA_SUCCESS) {
                        graphsBroken = true;
                        LOG.warning("CUDA graph capture failed (" + errorName(rc) + "); launching kernels one by one");
                    }
                }
                if (graphsBroken) {
                    for (Queued q : queue) submit(q, null);
                    return;
                }
                jcuda.driver.CUgraphExec exec = new jcuda.driver.CUgraphExec();
                check(JCudaDriver.cuGraphInstantiate(exec, graph, 0L), "cuGraphInstantiate (" + queue.size() + " kernels)");
                JCudaDriver.cuGraphDestroy(graph);
                g.exec = exec;
                graphCaptures++;
            }
            check(JCudaDriver.cuGraphLaunch(g.exec, graphStream), "cuGraphLaunch");
            graphLaunches++;
            if (recording) recordGraph = g;
        } finally {
            queue.clear();
            keyLen = 0;
        }
    }

    /**
     * {graph launches, graph captures, kernels launched one by one, kernels launched in all (either way), steps
     * replayed} so far. A replayed step counts as a graph launch; its kernels are not counted again.
     */
    long[] launchStats() { return new long[]{graphLaunches, graphCaptures, directLaunches, kernelsLaunched, stepReplays}; }

    /**
     * Replays the step of this signature (see {@link #STEP_REPLAY}) and returns true, or returns false and records
     * the step that follows until {@link #endStep}.
     */
    boolean replayStep(Object signature) {
        recording = false;
        if (!stepReplay || !GRAPHS || graphsBroken || SYNC_EACH_LAUNCH || !queue.isEmpty()) return false;
        GraphEntry kept = steps.get(signature);
        if (kept != null && kept.exec != null) {
            check(JCudaDriver.cuGraphLaunch(kept.exec, graphStream), "cuGraphLaunch (step replay)");
            graphLaunches++;
            stepReplays++;
            return true;
        }
        recording = true;
        recordSignature = signature;
        recordGeneration = generation;
        recordFlushes = 0;
        recordGraph = null;
        return false;
    }

    /** Ends a step begun by {@link #replayStep}: a recorded step that went as one graph is kept for replays. */
    void endStep() {
        flush();
        if (recording && recordFlushes == 1 && recordGraph != null && recordGraph.exec != null
                && generation == recordGeneration) {
            if (steps.size() >= MAX_GRAPHS) steps.clear();
            steps.put(recordSignature, recordGraph);
        }
        recording = false;
    }

    private void newGeneration() {
        generation++;
        steps.clear();
    }

    /** Turns step replay on or off for this driver (tests compare both; the default is {@link #STEP_REPLAY}). */
    void stepReplay(boolean on) {
        stepReplay = on;
        steps.clear();
        recording = false;
    }

    /** Device-to-device copy bandwidth in bytes/s (bytes read plus bytes written), over {@code bytes}-byte buffers. */
    double copyBandwidth(long bytes, int reps) {
        flush();
        CUdeviceptr a = malloc(bytes, "bandwidth probe"), b = malloc(bytes, "bandwidth probe");
        try {
            memsetD32(a, 1, bytes / 4);
            memsetD32(b, 2, bytes / 4);
            copyDtoD(b, a, bytes);
            synchronize();
            double best = 0;
            for (int r = 0; r < reps; r++) {
                long t0 = System.nanoTime();
                copyDtoD(b, a, bytes);
                copyDtoD(a, b, bytes);
                synchronize();
                double s = (System.nanoTime() - t0) / 1e9;
                best = Math.max(best, 4.0 * bytes / s);
            }
            return best;
        } finally {
            free(a);
            free(b);
        }
    }

    void synchronize() {
        flush();
        check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize (a kernel queued earlier failed)");
        staged = 0;
    }

    /** Free and total device memory in bytes. */
    long[] memInfo() {
        flush();
        long[] free = new long[1], total = new long[1];
        check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo");
        return new long[]{free[0], total[0]};
    }

    void check(int rc, String what) {
        if (rc == CUDA_SUCCESS) return;
        String msg = what + " failed on cuda:" + ordinal + ": " + errorName(rc);
        switch (rc) {
            case CUresult.CUDA_ERROR_OUT_OF_MEMORY -> throw new CudaOutOfMemoryException(msg, rc, -1);
            case CUresult.CUDA_ERROR_NO_DEVICE, CUresult.CUDA_ERROR_INVALID_DEVICE, CUresult.CUDA_ERROR_NOT_INITIALIZED,
                    CUresult.CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, CUresult.CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE ->
                    throw new CudaUnavailableException(msg, rc, null);
            case CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, CUresult.CUDA_ERROR_LAUNCH_FAILED, CUresult.CUDA_ERROR_LAUNCH_TIMEOUT,
                    CUresult.CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, CUresult.CUDA_ERROR_MISALIGNED_ADDRESS,
                    CUresult.CUDA_ERROR_ILLEGAL_INSTRUCTION, CUresult.CUDA_ERROR_HARDWARE_STACK_ERROR,
                    CUresult.CUDA_ERROR_INVALID_PC, CUresult.CUDA_ERROR_ASSERT ->
                    throw new CudaKernelException(msg + " (a kernel faulted; rerun with -Dgptq4j.cuda.sync=true to name it)", rc);
            default -> throw new CudaException(msg, rc);
        }
    }

    static String errorName(int rc) {
        return CUresult.stringFor(rc) + " (" + rc + ")";
    }

    @Override
    public void close() {
        if (closed) return;
        try {
            JCudaDriver.cuCtxSetCurrent(context);
            try {
                flush();
            } catch (RuntimeException ignored) {
                // closing anyway
            }
            for (GraphEntry g : graphs.values()) if (g.exec != null) JCudaDriver.cuGraphExecDestroy(g.exec);
            graphs.clear();
            if (graphStream != null) JCudaDriver.cuStreamDestroy(graphStream);
            if (stage != null) {
                JCudaDriver.cuCtxSynchronize();
                JCudaDriver.cuMemFreeHost(stage);
            }
            if (readStage != null) JCudaDriver.cuMemFreeHost(readStage);
            JCudaDriver.cuModuleUnload(module);
        } finally {
            closed = true;
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
        }
    }
}
