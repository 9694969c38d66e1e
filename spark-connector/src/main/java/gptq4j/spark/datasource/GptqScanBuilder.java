package gptq4j.spark.datasource;

import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.ScanBuilder;

import java.util.Map;

/** Builds the scan from the reader options (no push-down: every row must be generated). */
public final class GptqScanBuilder implements ScanBuilder {

    private final Map<String, String> options;

    GptqScanBuilder(Map<String, String> options) {
        this.options = options;
    }

    @Override
    public Scan build() { return new GptqScan(ReadOptions.from(options)); }
}
