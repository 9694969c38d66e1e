package gptq4j.spark.execution;

import gptq4j.spark.GptqSettings;
import gptq4j.spark.catalyst.GenerateBatch;
import gptq4j.spark.catalyst.Scala;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.SparkStrategy;
import org.apache.spark.sql.internal.SQLConf;
import scala.collection.immutable.Seq;

import java.util.List;

/**
 * Planner strategy: {@link GenerateBatch} becomes {@link GenerateBatchExec}, carrying the session's
 * {@code spark.gptq4j.*} settings (checked here, so a missing model fails the query on the driver).
 */
public final class GenerateBatchStrategy extends SparkStrategy {

    private final SparkSession session;

    public GenerateBatchStrategy(SparkSession session) {
        this.session = session;
    }

    @Override
    public Seq<SparkPlan> apply(LogicalPlan plan) {
        if (!(plan instanceof GenerateBatch g)) return Scala.seq(List.of());
        SQLConf conf = SQLConf.get();
        GptqSettings settings = GptqSettings.fromSqlConf(conf);
        settings.modelDir();
        return Scala.seq(List.of(new GenerateBatchExec(g.calls(), g.resultAttrs(), planLater(g.child()), settings)));
    }
}
