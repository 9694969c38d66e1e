package gptq4j.spark.datasource;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.vectorized.ColumnarBatch;

import java.io.IOException;
import java.util.Iterator;

/** Row view of the columnar reader, for callers that ask for rows. */
public final class GptqRowReader implements PartitionReader<InternalRow> {

    private final PartitionReader<ColumnarBatch> batches;
    private Iterator<InternalRow> rows;
    private InternalRow current;

    GptqRowReader(PartitionReader<ColumnarBatch> batches) {
        this.batches = batches;
    }

    @Override
    public boolean next() throws IOException {
        while (rows == null || !rows.hasNext()) {
            if (!batches.next()) return false;
            rows = batches.get().rowIterator();
        }
        current = rows.next();
        return true;
    }

    @Override
    public InternalRow get() { return current; }

    @Override
    public void close() throws IOException {
        batches.close();
    }
}
