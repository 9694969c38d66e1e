package gptq4j.spark.datasource;

import com.fasterxml.jackson.databind.JsonNode;
import gptq4j.runtime.arrow.ArrowGeneration;
import gptq4j.spark.SamplingOption;
import gptq4j.spark.engine.EngineCache;
import gptq4j.spark.engine.EngineLease;
import gptq4j.spark.engine.TaskDevice;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.util.ArrowUtils;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Reads a partition's records in batches of {@code rowsPerBatch}, keeps {@code batchesInFlight} batches submitted
 * to the executor's shared engine, and returns each as a ColumnarBatch of ArrowColumnVectors: id and prompt from
 * the input vectors, the result columns straight from the engine's result struct.
 */
public final class GptqColumnarReader implements PartitionReader<ColumnarBatch> {

    private static final Logger LOG = LoggerFactory.getLogger(GptqColumnarReader.class);
    private static final ExecutorService THREADS = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "gptq4j-read");
        t.setDaemon(true);
        return t;
    });
    private static final String[] RESULT_COLUMNS = {ArrowGeneration.TEXT, ArrowGeneration.FINISH_REASON,
            ArrowGeneration.PROMPT_TOKENS, ArrowGeneration.COMPLETION_TOKENS, ArrowGeneration.ERROR};

    private final PromptFilePartition partition;
    private final ReadOptions options;
    private final PromptFile.Records records;
    private final EngineLease lease;
    private final BufferAllocator allocator;
    private final String requested;
    private final ArrayDeque<Pending> pending = new ArrayDeque<>();
    private long nextRecord;
    private int remaining;
    private Pending current;
    private ColumnarBatch batch;
    private long rows, promptTokens, completionTokens, errors;
    private final long startNanos = System.nanoTime();

    GptqColumnarReader(PromptFilePartition partition, ReadOptions options) {
        this.partition = partition;
        this.options = options;
        this.nextRecord = partition.firstRecord();
        this.remaining = partition.records();
        this.requested = TaskDevice.requested(TaskContext.get(), options.settings());
        try {
            this.records = new PromptFile.Records(partition.path(), partition.byteOffset(), options.format(), options.promptField());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException("gptq4j: cannot open " + partition.path(), e);
        }
        this.lease = EngineCache.acquire(options.settings(), requested);
        this.allocator = ArrowUtils.rootAllocator().newChildAllocator("gptq4j read " + partition.path() + "@" + nextRecord, 0, Long.MAX_VALUE);
    }

    @Override
    public boolean next() throws IOException {
        if (current != null) {
            current.close(new ArrayList<>());
            current = null;
            batch = null;
        }
        fill();
        current = pending.poll();
        if (current == null) return false;
        StructVector result;
        try {
            result = current.future.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while generating", e);
        } catch (ExecutionException e) {
            throw new IOException("gptq4j: the engine failed on records " + current.firstRecord + ".." + (current.firstRecord + current.size() - 1)
                    + " of " + partition.path() + ": " + e.getCause(), e.getCause());
        }
        current.result = result;
        ColumnVector[] cols = new ColumnVector[2 + RESULT_COLUMNS.length];
        cols[0] = new ArrowColumnVector(current.ids);
        cols[1] = new ArrowColumnVector(current.prompts);
        for (int i = 0; i < RESULT_COLUMNS.length; i++) cols[2 + i] = new ArrowColumnVector(result.getChild(RESULT_COLUMNS[i]));
        batch = new ColumnarBatch(cols, current.size());
        count(result);
        fill();
        return true;
    }

    private void count(StructVector result) {
        ArrowColumnVector v = new ArrowColumnVector(result);
        for (int r = 0; r < result.getValueCount(); r++) {
            rows++;
            if (v.isNullAt(r)) continue;
            promptTokens += v.getChild(2).isNullAt(r) ? 0 : v.getChild(2).getInt(r);
            completionTokens += v.getChild(3).isNullAt(r) ? 0 : v.getChild(3).getInt(r);
            if (!v.getChild(1).isNullAt(r) && v.getChild(1).getUTF8String(r).toString().equals("error")) {
                errors++;
                if (options.settings().failOnError()) {
                    throw new IllegalStateException("gptq4j: record " + (current.firstRecord + r) + " of " + partition.path()
                            + " was rejected: " + v.getChild(4).getUTF8String(r) + " (spark.gptq4j.onError=fail)");
                }
            }
        }
    }

    @Override
    public ColumnarBatch get() { return batch; }

    private void fill() throws IOException {
        while (remaining > 0 && pending.size() < options.settings().batchesInFlight()) {
            int n = Math.min(remaining, options.settings().rowsPerBatch());
            List<PromptFile.Record> recs = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                PromptFile.Record r = records.next(nextRecord + i);
                if (r == null) {
                    throw new IOException(partition.path() + " ended before record " + (nextRecord + i) + "; was it changed while being read?");
                }
                recs.add(r);
            }
            pending.add(submit(recs, nextRecord));
            nextRecord += n;
            remaining -= n;
        }
    }

    private Pending submit(List<PromptFile.Record> recs, long first) {
        int n = recs.size();
        BigIntVector ids = new BigIntVector("id", allocator);
        VarCharVector prompts = new VarCharVector("prompt", allocator);
        ids.allocateNew(n);
        prompts.allocateNew(n);
        for (int i = 0; i < n; i++) {
            ids.set(i, first + i);
            String p = recs.get(i).prompt();
            if (p == null) prompts.setNull(i);
            else prompts.setSafe(i, p.getBytes(StandardCharsets.UTF_8));
        }
        ids.setValueCount(n);
        prompts.setValueCount(n);
        Map<String, ValueVector> params = optionVectors(recs);
        Pending p = new Pending(first, ids, prompts);
        p.future = CompletableFuture.supplyAsync(() -> {
            try {
                return ArrowGeneration.generate(lease::generate, prompts, params, options.settings().defaults(), allocator);
            } finally {
                params.values().forEach(ValueVector::close);
            }
        }, THREADS);
        return p;
    }

    /** Per-row sampling options found in the JSONL records, one vector per option. */
    private Map<String, ValueVector> optionVectors(List<PromptFile.Record> recs) {
        Map<String, ValueVector> out = new LinkedHashMap<>();
        int n = recs.size();
        for (SamplingOption o : SamplingOption.values()) {
            String name = o.sqlName();
            if (recs.stream().noneMatch(r -> r.options().containsKey(name))) continue;
            FieldVector v = switch (o.kind()) {
                case BOOLEAN -> {
                    BitVector b = new BitVector(name, allocator);
                    b.allocateNew(n);
                    for (int i = 0; i < n; i++) {
                        JsonNode j = recs.get(i).options().get(name);
                        if (j == null || j.isNull()) b.setNull(i);
                        else b.set(i, j.asBoolean() ? 1 : 0);
                    }
                    yield b;
                }
                case STRINGS -> {
                    ListVector l = ListVector.empty(name, allocator);
                    VarCharVector items = (VarCharVector) l.addOrGetVector(FieldType.nullable(ArrowType.Utf8.INSTANCE)).getVector();
                    l.allocateNew();
                    for (int i = 0; i < n; i++) {
                        JsonNode j = recs.get(i).options().get(name);
                        if (j == null || j.isNull()) {
                            l.setNull(i);
                            continue;
                        }
                        List<JsonNode> elems = new ArrayList<>();
                        if (j.isArray()) j.forEach(elems::add);
                        else elems.add(j);
                        int start = l.startNewValue(i);
                        for (int k = 0; k < elems.size(); k++) {
                            JsonNode e = elems.get(k);
                            if (e.isNull()) items.setNull(start + k);
                            else items.setSafe(start + k, e.asText().getBytes(StandardCharsets.UTF_8));
                        }
                        l.endValue(i, elems.size());
                    }
                    yield l;
                }
                case INTEGER, REAL -> {
                    boolean integral = recs.stream().map(r -> r.options().get(name))
                            .allMatch(j -> j == null || j.isNull() || (j.isIntegralNumber() && j.canConvertToLong()));
                    if (integral) {
                        BigIntVector b = new BigIntVector(name, allocator);
                        b.allocateNew(n);
                        for (int i = 0; i < n; i++) {
                            JsonNode j = recs.get(i).options().get(name);
                            if (j == null || j.isNull()) b.setNull(i);
                            else b.set(i, j.longValue());
                        }
                        yield b;
                    }
                    Float8Vector f = new Float8Vector(name, allocator);
                    f.allocateNew(n);
                    for (int i = 0; i < n; i++) {
                        JsonNode j = recs.get(i).options().get(name);
                        if (j == null || j.isNull()) f.setNull(i);
                        else f.set(i, j.isNumber() ? j.doubleValue() : Double.NaN);
                    }
                    yield f;
                }
            };
            v.setValueCount(n);
            out.put(name, v);
        }
        return out;
    }

    @Override
    public void close() throws IOException {
        List<CompletableFuture<?>> unfinished = new ArrayList<>();
        try {
            if (current != null) current.close(unfinished);
            for (Pending p : pending) p.close(unfinished);
            pending.clear();
            records.close();
        } finally {
            // a killed (interrupted) task frees the batches the engine still works on when they finish, and closes
            // the allocator after them (closing it first would leak their memory)
            if (unfinished.isEmpty()) closeAllocator();
            else CompletableFuture.allOf(unfinished.toArray(CompletableFuture[]::new)).whenComplete((x, e) -> closeAllocator());
            lease.close();
            double secs = (System.nanoTime() - startNanos) / 1e9;
            LOG.info(String.format(java.util.Locale.ROOT,
                    "gptq4j read %s records %d..%d: %d rows (%d error), %d prompt tokens, %d generated tokens, %.3f s, "
                            + "%.1f tokens/s, device %s (requested %s)", partition.path(), partition.firstRecord(),
                    partition.firstRecord() + partition.records() - 1, rows, errors, promptTokens, completionTokens,
                    secs, secs > 0 ? completionTokens / secs : 0, lease.device(), requested));
        }
    }

    private void closeAllocator() {
        try {
            allocator.close();
        } catch (RuntimeException e) {
            LOG.warn("gptq4j: Arrow memory not fully released reading {}: {}", partition.path(), e.getMessage());
        }
    }

    /** A submitted batch: its input vectors and the future result. */
    private static final class Pending {
        final long firstRecord;
        final BigIntVector ids;
        final VarCharVector prompts;
        CompletableFuture<StructVector> future;
        StructVector result;

        Pending(long firstRecord, BigIntVector ids, VarCharVector prompts) {
            this.firstRecord = firstRecord;
            this.ids = ids;
            this.prompts = prompts;
        }

        int size() { return ids.getValueCount(); }

        /** Frees the vectors; when interrupted, adds a future that frees them once the engine is done to {@code unfinished}. */
        void close(List<CompletableFuture<?>> unfinished) {
            if (result == null && future != null) {
                try {
                    result = future.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    unfinished.add(future.handle((r, x) -> {   // the engine may still be reading prompts
                        if (r != null) r.close();
                        ids.close();
                        prompts.close();
                        return null;
                    }));
                    return;
                } catch (ExecutionException e) {
                    // reported by next()
                }
            }
            if (result != null) result.close();
            ids.close();
            prompts.close();
        }
    }
}
