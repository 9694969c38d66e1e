package gptq4j.spark.datasource;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/** Creates the readers on the executors; columnar by default. */
public final class GptqPartitionReaderFactory implements PartitionReaderFactory {

    private final ReadOptions options;

    GptqPartitionReaderFactory(ReadOptions options) {
        this.options = options;
    }

    @Override
    public PartitionReader<InternalRow> createReader(InputPartition partition) {
        return new GptqRowReader(createColumnarReader(partition));
    }

    @Override
    public PartitionReader<ColumnarBatch> createColumnarReader(InputPartition partition) {
        return new GptqColumnarReader((PromptFilePartition) partition, options);
    }

    @Override
    public boolean supportColumnarReads(InputPartition partition) { return true; }
}
