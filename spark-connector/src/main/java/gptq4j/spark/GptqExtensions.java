package gptq4j.spark;

import gptq4j.spark.catalyst.ExtractGenerateCalls;
import gptq4j.spark.catalyst.GenerateCall;
import gptq4j.spark.catalyst.GenerateFunctionBuilder;
import gptq4j.spark.engine.EngineCache;
import gptq4j.spark.execution.GenerateBatchStrategy;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.SparkSessionExtensionsProvider;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;
import scala.Tuple3;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * The gptq4j session extension. Installed by {@code spark.sql.extensions=gptq4j.spark.GptqExtensions} or, with the
 * connector jar on the classpath, automatically through the {@code SparkSessionExtensionsProvider} service file.
 * It injects:
 * <ul>
 *   <li>the functions {@code generate} and {@code generate_struct} (for SQL and {@code functions.call_function});</li>
 *   <li>the pre-CBO optimizer rule {@link ExtractGenerateCalls}, which moves every call into a
 *       {@link gptq4j.spark.catalyst.GenerateBatch} node;</li>
 *   <li>the planner strategy {@link GenerateBatchStrategy}, which plans that node as the batched operator
 *       {@link gptq4j.spark.execution.GenerateBatchExec}.</li>
 * </ul>
 */
public final class GptqExtensions extends AbstractFunction1<SparkSessionExtensions, BoxedUnit>
        implements SparkSessionExtensionsProvider {

    static final String USAGE = "_FUNC_(prompt [, options]) - Completes the prompt with the gptq4j engine "
            + "(model: spark.gptq4j.model). Options, each a constant or a per-row expression: named "
            + "(max_new_tokens => 32, temperature => 0.0, top_k, top_p, min_p, seed, stop, repetition_penalty, "
            + "presence_penalty, frequency_penalty, ignore_eos), positional (max_new_tokens, temperature, top_p, top_k, seed), "
            + "a named_struct or a constant map.";

    @Override
    public BoxedUnit apply(SparkSessionExtensions extensions) {
        register(extensions, GenerateCall.GENERATE, false,
                USAGE + " Returns the generated text; null for a null prompt or a rejected row.");
        register(extensions, GenerateCall.GENERATE_STRUCT, true,
                USAGE + " Returns struct<text, finish_reason, prompt_tokens, completion_tokens, error>.");
        extensions.injectPreCBORule(session -> {
            EngineCache.closeWhenStopped(session.sparkContext());   // local mode: stopping the session closes the engine
            return new ExtractGenerateCalls();
        });
        extensions.injectPlannerStrategy(GenerateBatchStrategy::new);
        return BoxedUnit.UNIT;
    }

    private static void register(SparkSessionExtensions extensions, String name, boolean struct, String usage) {
        ExpressionInfo info = new ExpressionInfo(GenerateCall.class.getName(), null, name, usage, "");
        extensions.injectFunction(new Tuple3<>(new FunctionIdentifier(name), info, GenerateFunctionBuilder.builder(struct)));
    }
}
