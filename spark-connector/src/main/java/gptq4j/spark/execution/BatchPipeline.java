package gptq4j.spark.execution;

import gptq4j.runtime.arrow.ArrowGeneration;
import gptq4j.spark.GptqSettings;
import gptq4j.spark.engine.EngineLease;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.spark.SparkException;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.Supplier;

/**
 * One task's row iterator: reads the child's rows in batches of {@code rowsPerBatch}, writes each call's arguments
 * into Arrow vectors and submits them to the shared engine, keeping {@code batchesInFlight} batches submitted ahead,
 * and returns child row ++ results in input order. {@link #close()} (task end) waits for batches still in flight,
 * frees every vector, releases the engine lease and reports metrics once.
 */
final class BatchPipeline implements Iterator<InternalRow>, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(BatchPipeline.class);

    private final Iterator<InternalRow> input;
    private final List<CallSpec> specs;
    private final int[] offsets;
    private final UnsafeProjection argProjection;
    private final UnsafeProjection outProjection;
    private final GptqSettings settings;
    private final EngineLease lease;
    private final BufferAllocator allocator;
    private final GenerateMetrics metrics;
    private final String taskName;
    private final String requestedDevice;
    private final TaskStats stats = new TaskStats();
    private final ArrayDeque<Batch> inFlight = new ArrayDeque<>();
    private Batch current;
    private int position;
    private long rowsEmittedBefore;
    private boolean inputDone;
    private boolean closed;

    BatchPipeline(Iterator<InternalRow> input, List<CallSpec> specs, int[] offsets, UnsafeProjection argProjection,
                  UnsafeProjection outProjection, GptqSettings settings, EngineLease lease, BufferAllocator allocator,
                  GenerateMetrics metrics, String taskName, String requestedDevice) {
        this.input = input;
        this.specs = specs;
        this.offsets = offsets;
        this.argProjection = argProjection;
        this.outProjection = outProjection;
        this.settings = settings;
        this.lease = lease;
        this.allocator = allocator;
        this.metrics = metrics;
        this.taskName = taskName;
        this.requestedDevice = requestedDevice;
    }

    @Override
    public boolean hasNext() {
        while (true) {
            if (current != null && position < current.size()) return true;
            if (current != null) {
                rowsEmittedBefore += current.size();
                current.close(new ArrayList<>());
                current = null;
            }
            fill();
            Batch next = inFlight.poll();
            if (next == null) {
                close();
                return false;
            }
            current = next;
            position = 0;
            current.await();
            fill();
        }
    }

    @Override
    public InternalRow next() {
        if (!hasNext()) throw new NoSuchElementException();
        int r = position++;
        GenericInternalRow results = new GenericInternalRow(specs.size());
        for (int c = 0; c < specs.size(); c++) {
            results.update(c, ResultValues.value(current.results[c], r, specs.get(c).struct()));
        }
        return outProjection.apply(new JoinedRow(current.inputs.get(r), results));
    }

    /** Submits batches until {@code batchesInFlight} are pending or the input is exhausted. */
    private void fill() {
        while (!inputDone && inFlight.size() < settings.batchesInFlight()) {
            List<InternalRow> inputs = new ArrayList<>(settings.rowsPerBatch());
            List<InternalRow> args = new ArrayList<>(settings.rowsPerBatch());
            while (inputs.size() < settings.rowsPerBatch() && input.hasNext()) {
                InternalRow row = input.next();
                inputs.add(row.copy());
                args.add(argProjection.apply(row).copy());
            }
            if (inputs.isEmpty()) {
                inputDone = true;
                return;
            }
            inFlight.add(submit(inputs, args));
        }
    }

    private Batch submit(List<InternalRow> inputs, List<InternalRow> args) {
        Batch b = new Batch(inputs, specs.size());
        for (int c = 0; c < specs.size(); c++) {
            ArgumentVectors vectors = ArgumentVectors.write(specs.get(c), args, offsets[c], allocator);
            Supplier<StructVector> work = () -> {
                try (vectors) {
                    return ArrowGeneration.generate(lease::generate, vectors.prompts(), vectors.params(),
                            settings.defaults(), allocator);
                } finally {
                    stats.batchFinished();
                }
            };
            stats.batchSubmitted();
            b.futures.add(GenerationThreads.supply(work));
        }
        return b;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        RuntimeException failure = null;
        List<CompletableFuture<?>> unfinished = new ArrayList<>();
        try {
            if (current != null) current.close(unfinished);
            for (Batch b : inFlight) b.close(unfinished);
            inFlight.clear();
        } catch (RuntimeException e) {
            failure = e;
        }
        // An interrupted (killed) task cannot wait for the batches the engine still works on; their vectors are freed
        // when they finish, and the allocator is closed only then (closing it first would leak their memory).
        if (unfinished.isEmpty()) closeAllocator();
        else CompletableFuture.allOf(unfinished.toArray(CompletableFuture[]::new)).whenComplete((x, e) -> closeAllocator());
        lease.close();
        metrics.addTask(stats);
        LOG.info(stats.summary(taskName, requestedDevice, lease.device()));
        if (failure != null) throw failure;
    }

    private void closeAllocator() {
        try {
            allocator.close();
        } catch (RuntimeException e) {
            LOG.warn("gptq4j {}: Arrow memory not fully released: {}", taskName, e.getMessage());
        }
    }

    /** Rows of one batch and the futures of its calls' results. */
    private final class Batch {
        final List<InternalRow> inputs;
        final List<CompletableFuture<StructVector>> futures;
        final ArrowColumnVector[] results;
        private final StructVector[] vectors;

        Batch(List<InternalRow> inputs, int calls) {
            this.inputs = inputs;
            this.futures = new ArrayList<>(calls);
            this.results = new ArrowColumnVector[calls];
            this.vectors = new StructVector[calls];
        }

        int size() { return inputs.size(); }

        /** Waits for the results, counts them and applies the error policy. */
        void await() {
            for (int c = 0; c < futures.size(); c++) {
                try {
                    vectors[c] = futures.get(c).get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new RuntimeException("gptq4j " + taskName + " interrupted while waiting for the engine", e);
                } catch (ExecutionException e) {
                    Throwable cause = e.getCause();
                    throw new RuntimeException("gptq4j " + taskName + ": the engine failed on a batch of " + size()
                            + " rows: " + cause, cause);
                }
                results[c] = new ArrowColumnVector(vectors[c]);
            }
            long prompt = 0, completion = 0, errors = 0, nulls = 0;
            for (int r = 0; r < size(); r++) {
                for (int c = 0; c < results.length; c++) {
                    ArrowColumnVector v = results[c];
                    if (v.isNullAt(r)) {
                        nulls++;
                        continue;
                    }
                    prompt += ResultValues.intField(v, ResultValues.PROMPT_TOKENS, r);
                    completion += ResultValues.intField(v, ResultValues.COMPLETION_TOKENS, r);
                    if (ResultValues.failed(v, r)) {
                        errors++;
                        if (settings.failOnError()) {
                            throw new RuntimeException(new SparkException("gptq4j " + taskName + ": row "
                                    + (rowsEmittedBefore + r) + " of this partition was rejected: "
                                    + ResultValues.error(v, r) + " (spark.gptq4j.onError=fail; set it to row to keep such rows)"));
                        }
                    }
                }
            }
            stats.addBatch(size(), prompt, completion, errors, nulls);
            metrics.addBatch(size(), prompt, completion, errors);
        }

        /**
         * Frees the result vectors, waiting for any still being computed; when the task thread is interrupted, adds
         * a future that frees them once computed to {@code unfinished} instead.
         */
        void close(List<CompletableFuture<?>> unfinished) {
            for (int c = 0; c < futures.size(); c++) {
                if (vectors[c] == null) {
                    try {
                        vectors[c] = futures.get(c).get();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        unfinished.add(futures.get(c).handle((v, x) -> {
                            if (v != null) v.close();
                            return null;
                        }));
                    } catch (ExecutionException e) {
                        // the failure was reported by await(), or the task is ending anyway
                    }
                }
                if (vectors[c] != null) vectors[c].close();
                vectors[c] = null;
            }
        }
    }
}
