package gptq4j.spark.engine;

import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.SparkPlugin;

/**
 * Optional Spark plugin ({@code spark.plugins=gptq4j.spark.engine.GptqPlugin}): closes the executor's engines when
 * the executor stops, before the JVM shutdown hook would. Without it the hook alone closes them.
 */
public final class GptqPlugin implements SparkPlugin {

    @Override
    public DriverPlugin driverPlugin() { return null; }

    @Override
    public ExecutorPlugin executorPlugin() {
        return new ExecutorPlugin() {
            @Override
            public void shutdown() {
                EngineCache.closeAll();
            }
        };
    }
}
