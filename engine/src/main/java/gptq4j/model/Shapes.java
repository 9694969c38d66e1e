package gptq4j.model;

import java.util.Map;

/** Named model shapes for synthetic checkpoints and benchmarks. */
public final class Shapes {
    private Shapes() { }

    /** vocab, hidden, intermediate, layers, heads, kvHeads, experts, topK. */
    public record Shape(int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads, int experts, int topK) { }

    public static final Map<String, Shape> NAMED = Map.of(
            // the golden fixtures' shape
            "tiny", new Shape(32000, 128, 384, 2, 4, 2, 8, 2),
            // the CPU benchmark shape of the performance issue
            "small", new Shape(32000, 2048, 5632, 4, 16, 4, 8, 2),
            // Mixtral-8x7B-v0.1
            "mixtral-8x7b", new Shape(32000, 4096, 14336, 32, 32, 8, 8, 2),
            // Mixtral's attention and expert widths with 2 layers (GPU parity tests)
            "mixtral-2layer", new Shape(32000, 4096, 14336, 2, 32, 8, 8, 2));

    public static Shape named(String name) {
        Shape s = NAMED.get(name);
        if (s == null) throw new IllegalArgumentException("unknown shape '" + name + "' (known: " + NAMED.keySet() + ")");
        return s;
    }
}
