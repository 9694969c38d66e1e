package gptq4j.spark.catalyst;

import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeReference;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.NamedExpression;
import org.apache.spark.sql.catalyst.expressions.NamedExpression$;
import org.apache.spark.sql.catalyst.expressions.aggregate.AggregateExpression;
import org.apache.spark.sql.catalyst.optimizer.ColumnPruning$;
import org.apache.spark.sql.catalyst.optimizer.RemoveNoopOperators$;
import org.apache.spark.sql.catalyst.plans.logical.Aggregate;
import org.apache.spark.sql.catalyst.plans.logical.Filter;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.Project;
import org.apache.spark.sql.catalyst.plans.logical.Subquery;
import org.apache.spark.sql.catalyst.rules.Rule;
import org.apache.spark.sql.types.Metadata;
import scala.collection.immutable.Seq;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Optimizer rule (injected as a pre-CBO rule, after operator optimisation and before scan push-down): moves every
 * {@link GenerateCall} of a Project, a Filter or an Aggregate's aggregate-function inputs into a
 * {@link GenerateBatch} under that node, and replaces the call by the batch's result attribute, exactly as Spark's
 * ExtractPythonUDFs does for Python UDFs:
 * <pre>
 *   Project [upper(generate(p)) AS o]          Project [upper(r#9) AS o]
 *     Relation [p]                      ==>      GenerateBatch [generate(p)] -> [r#9]
 *                                                  Relation [p]
 * </pre>
 * Calls nested in other calls are extracted innermost first into stacked batches. A Filter keeps its output with a
 * Project on top. Column pruning then runs so the scan below reads only what is needed.
 */
public final class ExtractGenerateCalls extends Rule<LogicalPlan> {

    @Override
    public LogicalPlan apply(LogicalPlan plan) {
        if (plan instanceof Subquery s && s.correlated()) return plan;
        if (!planContainsCall(plan)) return plan;
        LogicalPlan rewritten = rewrite(plan);
        return RemoveNoopOperators$.MODULE$.apply(ColumnPruning$.MODULE$.apply(rewritten));
    }

    private LogicalPlan rewrite(LogicalPlan plan) {
        LogicalPlan withChildren = plan.mapChildren(this::rewrite);
        return extract(withChildren);
    }

    private static LogicalPlan extract(LogicalPlan node) {
        boolean aggregateInputsOnly;
        if (node instanceof Project || node instanceof Filter) aggregateInputsOnly = false;
        else if (node instanceof Aggregate) aggregateInputsOnly = true;
        else return node;
        LogicalPlan child = node.children().apply(0);
        Map<GenerateCall, Attribute> found = new LinkedHashMap<>();
        for (Expression e : Scala.list(node.expressions())) collect(e, aggregateInputsOnly, false, child.outputSet(), found);
        if (found.isEmpty()) return node;

        List<Expression> calls = new ArrayList<>();
        List<Attribute> attrs = new ArrayList<>();
        for (Map.Entry<GenerateCall, Attribute> e : found.entrySet()) {
            GenerateCall c = e.getKey();
            Attribute a = new AttributeReference(c.prettyName() + "_result" + calls.size(), c.dataType(), true,
                    Metadata.empty(), NamedExpression$.MODULE$.newExprId(), Scala.seq(List.of()));
            e.setValue(a);
            calls.add(c);
            attrs.add(a);
        }
        GenerateBatch batch = new GenerateBatch(Scala.seq(calls), Scala.seq(attrs), child);
        LogicalPlan replaced = node.withNewChildren(Scala.seq(List.of(batch)))
                .mapExpressions(e -> replace(e, aggregateInputsOnly, false, found));
        LogicalPlan next = extract(replaced);
        if (!next.output().equals(node.output())) {
            @SuppressWarnings("unchecked")
            Seq<NamedExpression> keep = (Seq<NamedExpression>) (Seq<?>) node.output();
            next = new Project(keep, next);
        }
        return next;
    }

    /** Collects the calls that can be evaluated below the node: no call among their inputs, inputs from the child. */
    private static void collect(Expression e, boolean aggregateInputsOnly, boolean inAggregate, AttributeSet available,
                                Map<GenerateCall, Attribute> found) {
        boolean active = !aggregateInputsOnly || inAggregate;
        if (active && e instanceof GenerateCall c && !containsCall(c.children()) && c.references().subsetOf(available)) {
            found.putIfAbsent(c, null);
            return;
        }
        boolean childInAggregate = inAggregate || e instanceof AggregateExpression;
        for (Expression ch : Scala.list(e.children())) collect(ch, aggregateInputsOnly, childInAggregate, available, found);
    }

    private static Expression replace(Expression e, boolean aggregateInputsOnly, boolean inAggregate,
                                      Map<GenerateCall, Attribute> found) {
        boolean active = !aggregateInputsOnly || inAggregate;
        if (active && e instanceof GenerateCall c && found.containsKey(c)) return found.get(c);
        boolean childInAggregate = inAggregate || e instanceof AggregateExpression;
        return e.mapChildren(ch -> replace(ch, aggregateInputsOnly, childInAggregate, found));
    }

    private static boolean containsCall(Seq<Expression> exprs) {
        for (Expression e : Scala.list(exprs)) if (containsCall(e)) return true;
        return false;
    }

    static boolean containsCall(Expression e) {
        if (e instanceof GenerateCall) return true;
        return containsCall(e.children());
    }

    static boolean planContainsCall(LogicalPlan plan) {
        if (containsCall(plan.expressions())) return true;
        for (LogicalPlan c : Scala.list(plan.children())) if (planContainsCall(c)) return true;
        return false;
    }
}
