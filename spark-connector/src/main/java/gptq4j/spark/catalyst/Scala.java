package gptq4j.spark.catalyst;

import scala.PartialFunction;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractPartialFunction;

import java.util.List;
import java.util.function.Function;
import java.util.function.Predicate;

/** The few Scala conversions the Catalyst classes need. */
public final class Scala {
    private Scala() { }

    /** An immutable Scala Seq of the list's elements. */
    public static <T> Seq<T> seq(List<? extends T> list) {
        @SuppressWarnings("unchecked")
        List<T> l = (List<T>) list;
        return CollectionConverters.asScala(l).toSeq();
    }

    /** A Java list view of a Scala Seq. */
    public static <T> List<T> list(scala.collection.Seq<T> seq) {
        return CollectionConverters.asJava(seq);
    }

    /** A partial function defined where {@code when} holds. */
    public static <A, B> PartialFunction<A, B> pf(Predicate<A> when, Function<A, B> then) {
        return new PartialFn<>(when, then);
    }

    private static final class PartialFn<A, B> extends AbstractPartialFunction<A, B> implements java.io.Serializable {
        private final Predicate<A> when;
        private final Function<A, B> then;

        PartialFn(Predicate<A> when, Function<A, B> then) {
            this.when = when;
            this.then = then;
        }

        @Override
        public boolean isDefinedAt(A x) { return when.test(x); }

        @Override
        public <A1 extends A, B1> B1 applyOrElse(A1 x, scala.Function1<A1, B1> fallback) {
            @SuppressWarnings("unchecked")
            B1 out = when.test(x) ? (B1) then.apply(x) : fallback.apply(x);
            return out;
        }
    }
}
