package gptq4j.spark.datasource;

import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.types.StructType;

/** The scan of one prompt file. */
public final class GptqScan implements Scan {

    private final ReadOptions options;

    GptqScan(ReadOptions options) {
        this.options = options;
    }

    @Override
    public StructType readSchema() { return GptqDataSource.SCHEMA; }

    @Override
    public String description() {
        return "gptq4j " + options.format() + " " + options.path() + " model=" + options.settings().model();
    }

    @Override
    public Batch toBatch() { return new GptqBatch(options); }
}
