package gptq4j.spark.engine;

import gptq4j.runtime.Engine;
import gptq4j.runtime.EngineOptions;
import gptq4j.spark.GptqSettings;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkEnv;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerApplicationEnd;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The executor's engines: at most one per {@link EngineOptions} (model, requested device and engine knobs).
 * Thread-safe: the first task to ask loads the engine while the others wait; every task holds a reference-counted
 * {@link EngineLease}. Engines stay loaded between tasks and stages and are closed by {@link #closeAll()}, which
 * runs on executor shutdown ({@link GptqPlugin}) and in a JVM shutdown hook.
 */
public final class EngineCache {

    private static final Logger LOG = LoggerFactory.getLogger(EngineCache.class);
    private static final Map<EngineOptions, Slot> SLOTS = new ConcurrentHashMap<>();
    private static final List<EngineLoad> LOADS = new CopyOnWriteArrayList<>();
    private static final AtomicInteger SEQUENCE = new AtomicInteger();
    private static volatile boolean hookInstalled;
    private static final Set<SparkContext> WATCHED = Collections.synchronizedSet(Collections.newSetFromMap(new WeakHashMap<>()));

    private EngineCache() { }

    /** The engine for {@code settings} on {@code requestedDevice}, loading it if this JVM has none yet. */
    public static EngineLease acquire(GptqSettings settings, String requestedDevice) {
        EngineOptions options = settings.engineOptions(requestedDevice);
        Slot slot = SLOTS.computeIfAbsent(options, Slot::new);
        return slot.acquire(settings);
    }

    /** Engine loads in this JVM so far (tests and the cluster job read it). */
    public static int loadCount() { return LOADS.size(); }

    /** Every load in this JVM, in order. */
    public static List<EngineLoad> loads() { return List.copyOf(LOADS); }

    /** Leases currently held, over all engines. */
    public static int activeLeases() {
        int n = 0;
        for (Slot s : SLOTS.values()) n += s.refs();
        return n;
    }

    /** One line per engine loaded in this JVM: model, device and the engine's counters (steps, tokens, forward time). */
    public static List<String> describe() {
        List<String> out = new ArrayList<>();
        for (Slot s : SLOTS.values()) {
            String d = s.describe();
            if (d != null) out.add(d);
        }
        return out;
    }

    /** Closes every engine (in-flight generate calls finish first on the engine's side). */
    public static void closeAll() {
        for (Slot s : new ArrayList<>(SLOTS.values())) s.closeEngine();
        SLOTS.clear();
    }

    /** Closes the engines no task holds; returns how many were closed. */
    public static int closeIdle() {
        int n = 0;
        for (Map.Entry<EngineOptions, Slot> e : SLOTS.entrySet()) {
            if (e.getValue().closeIfIdle()) {
                SLOTS.remove(e.getKey(), e.getValue());
                n++;
            }
        }
        return n;
    }

    /**
     * Closes this JVM's engines when {@code sc} stops. In local mode the executor lives in the driver JVM and stops
     * with the context, but the JVM (and so the shutdown hook) goes on: without this a stopped session would keep
     * its engine, threads and KV cache until the JVM exits. Idempotent per context; called by {@code GptqExtensions}.
     */
    public static void closeWhenStopped(SparkContext sc) {
        if (sc == null || !WATCHED.add(sc)) return;
        sc.addSparkListener(new SparkListener() {
            @Override
            public void onApplicationEnd(SparkListenerApplicationEnd end) {
                closeAll();
            }
        });
    }

    private static synchronized void installShutdownHook() {
        if (hookInstalled) return;
        Runtime.getRuntime().addShutdownHook(new Thread(EngineCache::closeAll, "gptq4j-engine-cache-shutdown"));
        hookInstalled = true;
    }

    static String executorId() {
        SparkEnv env = SparkEnv.get();
        return env == null ? "none" : env.executorId();
    }

    /** One cached engine and its reference count. */
    static final class Slot {
        private final EngineOptions options;
        private Engine engine;
        private EngineLoad load;
        private int refs;
        private boolean closed;

        Slot(EngineOptions options) { this.options = options; }

        synchronized EngineLease acquire(GptqSettings settings) {
            if (closed) throw new IllegalStateException("engine cache closed (executor shutting down)");
            if (engine == null) load(settings);
            refs++;
            return new EngineLease(this, engine);
        }

        private void load(GptqSettings settings) {
            long t0 = System.nanoTime();
            String requested = options.device();
            String fallbackReason = null;
            Engine e;
            try {
                e = Engine.load(options);
            } catch (RuntimeException | LinkageError failure) {
                String fallback = settings.deviceFallback();
                if (fallback == null || fallback.isBlank() || fallback.equals("none") || fallback.equals(requested)) {
                    throw new IllegalStateException("could not load the engine for " + options.modelDir() + " on device "
                            + requested + " (" + failure + "); " + "set spark.gptq4j.device.fallback to load elsewhere", failure);
                }
                fallbackReason = requested + " unusable: " + failure.getMessage();
                LOG.warn("gptq4j: loading {} on {} failed ({}); falling back to {}", options.modelDir(), requested,
                        failure.toString(), fallback);
                e = Engine.load(options.withDevice(fallback));
            }
            engine = e;
            installShutdownHook();
            load = new EngineLoad(SEQUENCE.incrementAndGet(), executorId(), ProcessHandle.current().pid(),
                    options.modelDir().toString(), requested, e.device(), fallbackReason,
                    (System.nanoTime() - t0) / 1_000_000);
            LOADS.add(load);
            LOG.info(load.logLine());
            if (!settings.markerDir().isBlank()) {
                try {
                    load.writeMarker(Path.of(settings.markerDir()));
                } catch (Exception x) {
                    LOG.warn("gptq4j: could not write the engine-load marker under {}: {}", settings.markerDir(), x.toString());
                }
            }
        }

        synchronized void release() {
            if (refs > 0) refs--;
        }

        synchronized int refs() { return refs; }

        synchronized String describe() {
            return engine == null ? null : options.modelDir() + " on " + engine.device() + ": " + engine.stats();
        }

        synchronized EngineLoad load() { return load; }

        synchronized boolean closeIfIdle() {
            if (refs > 0 || engine == null) return false;
            closeEngine();
            return true;
        }

        synchronized void closeEngine() {
            closed = true;
            if (engine != null) {
                try {
                    engine.close();
                    LOG.info("gptq4j: closed engine {} on {}", options.modelDir(), load == null ? "?" : load.actualDevice());
                } catch (Exception x) {
                    LOG.warn("gptq4j: closing engine {} failed: {}", options.modelDir(), x.toString());
                }
                engine = null;
            }
        }
    }
}
