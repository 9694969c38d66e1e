package gptq4j.spark.catalyst;

import gptq4j.runtime.arrow.ArrowGeneration;
import gptq4j.spark.SamplingOption;
import gptq4j.spark.execution.CallSpec;
import gptq4j.spark.execution.SingleRowGeneration;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenContext;
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenFallback;
import org.apache.spark.sql.catalyst.expressions.codegen.ExprCode;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.NullType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * One {@code generate(prompt, options…)} / {@code generate_struct(…)} call. Children: the prompt, then one
 * value per sampling option named in {@link #options()} (literals for per-call options, any expression for
 * per-row ones).
 *
 * <p>Non-deterministic, so the optimizer neither duplicates, reorders nor pushes it around. It is normally
 * evaluated in batches by the operator {@link ExtractGenerateCalls} plans for it; {@link #eval} is the fallback
 * for the few places the rule leaves it (e.g. inside a window or a grouping key), one row per engine call.
 */
public final class GenerateCall extends Expression implements CodegenFallback, Serializable {

    public static final String GENERATE = "generate";
    public static final String GENERATE_STRUCT = "generate_struct";

    /** struct&lt;text, finish_reason, prompt_tokens, completion_tokens, error&gt;. */
    public static final StructType RESULT_TYPE = new StructType(new StructField[]{
            DataTypes.createStructField(ArrowGeneration.TEXT, DataTypes.StringType, true),
            DataTypes.createStructField(ArrowGeneration.FINISH_REASON, DataTypes.StringType, true),
            DataTypes.createStructField(ArrowGeneration.PROMPT_TOKENS, DataTypes.IntegerType, true),
            DataTypes.createStructField(ArrowGeneration.COMPLETION_TOKENS, DataTypes.IntegerType, true),
            DataTypes.createStructField(ArrowGeneration.ERROR, DataTypes.StringType, true)});

    private final Seq<Expression> args;
    private final List<String> options;
    private final boolean struct;
    private final String problem;

    /**
     * @param args     prompt, then one value per option
     * @param options  option names ({@link SamplingOption#sqlName()}), one per arg after the prompt
     * @param struct   return the result struct instead of the text
     * @param problem  why the call as written cannot be used (reported at analysis), or null
     */
    public GenerateCall(Seq<Expression> args, List<String> options, boolean struct, String problem) {
        this.args = args;
        this.options = List.copyOf(options);
        this.struct = struct;
        this.problem = problem;
    }

    public Expression prompt() { return args.apply(0); }

    public List<String> options() { return options; }

    public boolean isStruct() { return struct; }

    /** What the batch operator needs to know about this call. */
    public CallSpec spec() {
        List<DataType> types = new ArrayList<>();
        for (Expression e : Scala.list(args)) types.add(e.dataType());
        return new CallSpec(options, types, struct);
    }

    @Override
    public Seq<Expression> children() { return args; }

    @Override
    public boolean nullable() { return true; }

    @Override
    public DataType dataType() { return struct ? RESULT_TYPE : DataTypes.StringType; }

    @Override
    public boolean deterministic() { return false; }

    @Override
    public String prettyName() { return struct ? GENERATE_STRUCT : GENERATE; }

    @Override
    public TypeCheckResult checkInputDataTypes() {
        if (problem != null) return new TypeCheckResult.TypeCheckFailure(problem);
        DataType p = prompt().dataType();
        if (!(p instanceof StringType) && !(p instanceof NullType)) {
            return new TypeCheckResult.TypeCheckFailure(prettyName() + ": the prompt must be a string, got "
                    + p.sql() + "; cast it with CAST(x AS STRING)");
        }
        for (int i = 0; i < options.size(); i++) {
            SamplingOption o = SamplingOption.byName(options.get(i));
            if (o == null) {
                return new TypeCheckResult.TypeCheckFailure("unknown option '" + options.get(i) + "'; known: " + SamplingOption.names());
            }
            String bad = o.typeProblem(args.apply(i + 1).dataType());
            if (bad != null) return new TypeCheckResult.TypeCheckFailure(bad);
        }
        return TypeCheckResult.TypeCheckSuccess$.MODULE$;
    }

    @Override
    public Object eval(InternalRow input) {
        Object[] values = new Object[args.size()];
        for (int i = 0; i < values.length; i++) values[i] = args.apply(i).eval(input);
        return SingleRowGeneration.evaluate(spec(), values);
    }

    @Override
    public ExprCode doGenCode(CodegenContext ctx, ExprCode ev) {
        return CodegenFallback.super.doGenCode(ctx, ev);
    }

    @Override
    public Expression withNewChildrenInternal(IndexedSeq<Expression> newChildren) {
        return new GenerateCall(newChildren.toSeq(), options, struct, problem);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(prettyName()).append('(').append(prompt());
        for (int i = 0; i < options.size(); i++) sb.append(", ").append(options.get(i)).append(" => ").append(args.apply(i + 1));
        return sb.append(')').toString();
    }

    @Override
    public String sql() {
        StringBuilder sb = new StringBuilder(prettyName()).append('(').append(prompt().sql());
        for (int i = 0; i < options.size(); i++) sb.append(", ").append(options.get(i)).append(" => ").append(args.apply(i + 1).sql());
        return sb.append(')').toString();
    }

    @Override
    public int productArity() { return 4; }

    @Override
    public Object productElement(int n) {
        return switch (n) {
            case 0 -> args;
            case 1 -> options;
            case 2 -> struct;
            case 3 -> problem;
            default -> throw new IndexOutOfBoundsException(n);
        };
    }

    @Override
    public boolean canEqual(Object that) { return that instanceof GenerateCall; }

    @Override
    public boolean equals(Object o) {
        if (this == o) return true;
        if (!(o instanceof GenerateCall g)) return false;
        return struct == g.struct && args.equals(g.args) && options.equals(g.options) && Objects.equals(problem, g.problem);
    }

    @Override
    public int hashCode() { return Objects.hash(args, options, struct, problem); }
}
