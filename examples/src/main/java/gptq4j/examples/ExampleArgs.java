package gptq4j.examples;

import gptq4j.spark.GptqConf;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The flags every example shares: {@code --name value} pairs, the usage line, and the session they configure. */
final class ExampleArgs {

    private final Map<String, String> values = new HashMap<>();
    private final String usage;

    ExampleArgs(String[] argv, String usage, List<String> known) {
        this.usage = usage;
        for (int i = 0; i < argv.length; i++) {
            String k = argv[i];
            if (!k.startsWith("--") || i + 1 >= argv.length) fail("bad argument '" + k + "'");
            String name = k.substring(2);
            if (!known.contains(name)) fail("unknown flag --" + name);
            values.put(name, argv[++i]);
        }
    }

    boolean has(String name) { return values.containsKey(name); }

    String get(String name, String fallback) { return values.getOrDefault(name, fallback); }

    String require(String name) {
        if (!has(name)) fail("missing --" + name);
        return values.get(name);
    }

    /** Prints the problem and the usage line, exits with status 2. */
    void fail(String message) {
        System.err.println("error: " + message);
        System.err.println(usage);
        System.exit(2);
    }

    /**
     * A session builder for the model, greedy decoding and {@code --max-new-tokens} (16 by default, as
     * {@code bin/gptq4j generate}), {@code --device} and {@code --master} where given; a short executor heartbeat so
     * progress lines follow running tasks; rowsPerBatch 64 and batchesInFlight 4 unless spark-submit set them.
     */
    SparkSession.Builder session(String appName) {
        SparkSession.Builder b = SparkSession.builder().appName(appName);
        if (has("master") && System.getProperty("spark.master") == null) b.master(values.get("master"));
        b.config(GptqConf.MODEL.key(), require("model"))
                .config(GptqConf.TEMPERATURE.key(), get("temperature", "0"))
                .config(GptqConf.MAX_NEW_TOKENS.key(), get("max-new-tokens", "16"));
        if (has("top-p")) b.config(GptqConf.TOP_P.key(), values.get("top-p"));
        if (has("top-k")) b.config(GptqConf.TOP_K.key(), values.get("top-k"));
        if (has("seed")) b.config(GptqConf.SEED.key(), values.get("seed"));
        if (has("device")) b.config(GptqConf.DEVICE.key(), values.get("device"));
        SparkConf submitted = new SparkConf();
        if (!submitted.contains(HEARTBEAT)) b.config(HEARTBEAT, "3s");
        // 64-row batches, 4 ahead per task: the engine's continuous batch (64 by default) stays full from one task
        // alone, and the progress line moves every 64 rows rather than once per task
        if (!submitted.contains(GptqConf.ROWS_PER_BATCH.key())) b.config(GptqConf.ROWS_PER_BATCH.key(), "64");
        if (!submitted.contains(GptqConf.BATCHES_IN_FLIGHT.key())) b.config(GptqConf.BATCHES_IN_FLIGHT.key(), "4");
        return b;
    }

    static final String HEARTBEAT = "spark.executor.heartbeatInterval";
}
