package gptq4j.spark.execution;

import gptq4j.spark.GptqSettings;
import gptq4j.spark.catalyst.GenerateCall;
import gptq4j.spark.catalyst.Scala;
import org.apache.spark.api.java.function.Function2;
import org.apache.spark.rdd.RDD;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.expressions.AttributeSet$;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.execution.SparkPlan;
import org.apache.spark.sql.execution.metric.SQLMetric;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Map;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Objects;

/**
 * Physical operator for {@link gptq4j.spark.catalyst.GenerateBatch}: output = child output ++ one column per call,
 * rows in child order. Each task runs a {@link BatchPipeline} over its partition against the executor's shared
 * engine. Metrics: rows, prompt tokens, generated tokens, error rows, engine time, tokens/s.
 */
public final class GenerateBatchExec extends SparkPlan {

    private final Seq<Expression> calls;
    private final Seq<Attribute> resultAttrs;
    private final SparkPlan child;
    private final GptqSettings settings;
    private GenerateMetrics metrics;

    public GenerateBatchExec(Seq<Expression> calls, Seq<Attribute> resultAttrs, SparkPlan child, GptqSettings settings) {
        this.calls = calls;
        this.resultAttrs = resultAttrs;
        this.child = child;
        this.settings = settings;
    }

    public SparkPlan child() { return child; }

    public GptqSettings settings() { return settings; }

    private synchronized GenerateMetrics generateMetrics() {
        if (metrics == null) metrics = GenerateMetrics.create(sparkContext());
        return metrics;
    }

    @Override
    public Map<String, SQLMetric> metrics() {
        return Map.from(CollectionConverters.asScala(generateMetrics().byName()));
    }

    @Override
    public RDD<InternalRow> doExecute() {
        List<CallSpec> specs = new ArrayList<>();
        List<Expression> args = new ArrayList<>();
        int[] offsets = new int[calls.size()];
        for (int c = 0; c < calls.size(); c++) {
            GenerateCall call = (GenerateCall) calls.apply(c);
            offsets[c] = args.size();
            specs.add(call.spec());
            args.addAll(Scala.list(call.children()));
        }
        List<Attribute> out = Scala.list(output());
        org.apache.spark.sql.types.DataType[] types = new org.apache.spark.sql.types.DataType[out.size()];
        for (int i = 0; i < types.length; i++) types[i] = out.get(i).dataType();
        GenerateEvaluator evaluator = new GenerateEvaluator(specs, offsets, args, Scala.list(child.output()), types,
                settings, generateMetrics());
        Function2<Integer, Iterator<InternalRow>, Iterator<InternalRow>> f = evaluator::eval;
        return child.execute().toJavaRDD().mapPartitionsWithIndex(f, false).rdd();
    }

    @Override
    public Seq<Attribute> output() {
        List<Attribute> out = new ArrayList<>(Scala.list(child.output()));
        out.addAll(Scala.list(resultAttrs));
        return Scala.seq(out);
    }

    @Override
    public AttributeSet producedAttributes() { return AttributeSet$.MODULE$.apply((scala.collection.Iterable<Expression>) (scala.collection.Iterable<?>) resultAttrs); }

    @Override
    public Seq<SparkPlan> children() { return Scala.seq(List.of(child)); }

    @Override
    public SparkPlan withNewChildrenInternal(IndexedSeq<SparkPlan> newChildren) {
        return new GenerateBatchExec(calls, resultAttrs, newChildren.apply(0), settings);
    }

    @Override
    public scala.collection.Iterator<Object> stringArgs() {
        return CollectionConverters.asScala(List.<Object>of(calls, resultAttrs,
                "model=" + settings.model() + ", device=" + settings.device()).iterator());
    }

    @Override
    public int productArity() { return 4; }

    @Override
    public Object productElement(int n) {
        return switch (n) {
            case 0 -> calls;
            case 1 -> resultAttrs;
            case 2 -> child;
            case 3 -> settings;
            default -> throw new IndexOutOfBoundsException(n);
        };
    }

    @Override
    public boolean canEqual(Object that) { return that instanceof GenerateBatchExec; }

    @Override
    public boolean equals(Object o) {
        if (this == o) return true;
        return o instanceof GenerateBatchExec g && calls.equals(g.calls) && resultAttrs.equals(g.resultAttrs)
                && child.equals(g.child) && settings.equals(g.settings);
    }

    @Override
    public int hashCode() { return Objects.hash(calls, resultAttrs, child, settings); }
}
