package gptq4j.spark.catalyst;

import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.expressions.AttributeSet;
import org.apache.spark.sql.catalyst.expressions.AttributeSet$;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import scala.Option;
import scala.collection.immutable.IndexedSeq;
import scala.collection.immutable.Seq;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Logical node: evaluates {@code calls} (all {@link GenerateCall}s whose inputs come from {@code child}) for every
 * child row and appends one result column per call. Output: child output ++ resultAttrs, in child order.
 * Planned by {@link gptq4j.spark.execution.GenerateBatchStrategy} as a {@link gptq4j.spark.execution.GenerateBatchExec}.
 */
public final class GenerateBatch extends LogicalPlan {

    private final Seq<Expression> calls;
    private final Seq<Attribute> resultAttrs;
    private final LogicalPlan child;

    public GenerateBatch(Seq<Expression> calls, Seq<Attribute> resultAttrs, LogicalPlan child) {
        if (calls.size() != resultAttrs.size()) {
            throw new IllegalArgumentException(calls.size() + " calls but " + resultAttrs.size() + " result attributes");
        }
        this.calls = calls;
        this.resultAttrs = resultAttrs;
        this.child = child;
    }

    public Seq<Expression> calls() { return calls; }

    public Seq<Attribute> resultAttrs() { return resultAttrs; }

    public LogicalPlan child() { return child; }

    @Override
    public Seq<Attribute> output() {
        List<Attribute> out = new ArrayList<>(Scala.list(child.output()));
        out.addAll(Scala.list(resultAttrs));
        return Scala.seq(out);
    }

    @Override
    public AttributeSet producedAttributes() {
        return AttributeSet$.MODULE$.apply((scala.collection.Iterable<Expression>) (scala.collection.Iterable<?>) resultAttrs);
    }

    @Override
    public Option<Object> maxRows() { return child.maxRows(); }

    @Override
    public Seq<LogicalPlan> children() { return Scala.seq(List.of(child)); }

    @Override
    public LogicalPlan withNewChildrenInternal(IndexedSeq<LogicalPlan> newChildren) {
        return new GenerateBatch(calls, resultAttrs, newChildren.apply(0));
    }

    @Override
    public int productArity() { return 3; }

    @Override
    public Object productElement(int n) {
        return switch (n) {
            case 0 -> calls;
            case 1 -> resultAttrs;
            case 2 -> child;
            default -> throw new IndexOutOfBoundsException(n);
        };
    }

    @Override
    public boolean canEqual(Object that) { return that instanceof GenerateBatch; }

    @Override
    public boolean equals(Object o) {
        if (this == o) return true;
        return o instanceof GenerateBatch g && calls.equals(g.calls) && resultAttrs.equals(g.resultAttrs) && child.equals(g.child);
    }

    @Override
    public int hashCode() { return Objects.hash(calls, resultAttrs, child); }
}
