package gptq4j.spark.datasource;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;

/**
 * Splits the file into partitions of consecutive records (one pass over the file on the driver to find the record
 * boundaries).
 */
public final class GptqBatch implements Batch {

    private final ReadOptions options;

    GptqBatch(ReadOptions options) {
        this.options = options;
    }

    @Override
    public InputPartition[] planInputPartitions() {
        List<Long> offsets;
        try {
            offsets = PromptFile.recordOffsets(options.path(), options.format());
        } catch (IOException e) {
            throw new UncheckedIOException("gptq4j: cannot read prompt file " + options.path() + ": " + e.getMessage(), e);
        }
        int records = offsets.size();
        int parts = options.numPartitions() > 0 ? options.numPartitions()
                : SparkSession.active().sparkContext().defaultParallelism();
        parts = Math.max(1, Math.min(parts, records));
        InputPartition[] out = new InputPartition[records == 0 ? 0 : parts];
        for (int p = 0; p < out.length; p++) {
            int first = (int) ((long) records * p / parts), end = (int) ((long) records * (p + 1) / parts);
            out[p] = new PromptFilePartition(options.path(), offsets.get(first), first, end - first);
        }
        return out;
    }

    @Override
    public PartitionReaderFactory createReaderFactory() { return new GptqPartitionReaderFactory(options); }
}
