package gptq4j.backend.cpu;

/** A body of a parallel loop over the half-open index range [from, to). */
@FunctionalInterface
public interface IntRangeConsumer {
    void accept(int from, int to);
}
