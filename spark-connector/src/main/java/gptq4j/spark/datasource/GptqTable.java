package gptq4j.spark.datasource;

import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/** A prompt file with its generations; batch-readable. */
public final class GptqTable implements SupportsRead {

    private final Map<String, String> properties;

    GptqTable(Map<String, String> properties) {
        this.properties = Map.copyOf(properties);
    }

    @Override
    public String name() { return "gptq4j(" + properties.getOrDefault("path", "?") + ")"; }

    @Override
    public StructType schema() { return GptqDataSource.SCHEMA; }

    @Override
    public Set<TableCapability> capabilities() { return Set.of(TableCapability.BATCH_READ); }

    @Override
    public ScanBuilder newScanBuilder(CaseInsensitiveStringMap options) {
        Map<String, String> all = new HashMap<>(properties);
        all.putAll(options.asCaseSensitiveMap());
        return new GptqScanBuilder(all);
    }
}
