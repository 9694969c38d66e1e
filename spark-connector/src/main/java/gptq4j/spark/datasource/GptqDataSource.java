package gptq4j.spark.datasource;

import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.sources.DataSourceRegister;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

import java.util.Map;

/**
 * {@code spark.read.format("gptq4j").option("model", dir).load("prompts.jsonl")}. Options: {@code path},
 * {@code format} (jsonl | text; by default jsonl for *.jsonl / *.json, else text), {@code promptField}
 * (jsonl, default prompt), {@code numPartitions}, any {@code spark.gptq4j.*} key without its prefix (model, device,
 * rowsPerBatch, …), and sampling options by their SQL names (max_new_tokens, temperature, top_k, top_p, min_p, seed,
 * …). JSONL lines may carry per-row sampling options as fields of the same names.
 */
public final class GptqDataSource implements TableProvider, DataSourceRegister {

    /** id (record number in the file, from 0), prompt, and the generation result. */
    public static final StructType SCHEMA = new StructType(new StructField[]{
            DataTypes.createStructField("id", DataTypes.LongType, false),
            DataTypes.createStructField("prompt", DataTypes.StringType, true),
            DataTypes.createStructField("text", DataTypes.StringType, true),
            DataTypes.createStructField("finish_reason", DataTypes.StringType, true),
            DataTypes.createStructField("prompt_tokens", DataTypes.IntegerType, true),
            DataTypes.createStructField("completion_tokens", DataTypes.IntegerType, true),
            DataTypes.createStructField("error", DataTypes.StringType, true)});

    @Override
    public String shortName() { return "gptq4j"; }

    @Override
    public StructType inferSchema(CaseInsensitiveStringMap options) { return SCHEMA; }

    @Override
    public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
        return new GptqTable(properties);
    }
}
