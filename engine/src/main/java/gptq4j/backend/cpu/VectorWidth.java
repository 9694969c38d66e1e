package gptq4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The vector width the CPU kernels use: the JVM's preferred shape, or the one named by the system property
 * {@value #PROPERTY} (128, 256 or 512 bits; read once). On some CPUs (AMD Zen 4: 512-bit operations run as two
 * 256-bit halves) the narrower shape is as fast or faster. Layouts packed for one width cannot be used with
 * another (the lane count is part of {@link PackedGptq}'s layout), so the width is fixed for the JVM's lifetime.
 * Vector API class: load it only through {@link Kernels}.
 */
final class VectorWidth {
    /** System property: vector width in bits for the CPU kernels (default: the platform's preferred width). */
    static final String PROPERTY = "gptq4j.cpu.vectorBits";

    static final VectorShape SHAPE = shape();
    static final VectorSpecies<Float> FLOAT = FloatVector.SPECIES_PREFERRED.withShape(SHAPE);
    static final VectorSpecies<Integer> INT = IntVector.SPECIES_PREFERRED.withShape(SHAPE);

    private VectorWidth() { }

    private static VectorShape shape() {
        String v = System.getProperty(PROPERTY, "").trim();
        if (v.isEmpty() || v.equals("0")) return VectorShape.preferredShape();
        int bits;
        try {
            bits = Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + v + ": expected 128, 256 or 512");
        }
        VectorShape s = switch (bits) {
            case 128 -> VectorShape.S_128_BIT;
            case 256 -> VectorShape.S_256_BIT;
            case 512 -> VectorShape.S_512_BIT;
            default -> throw new IllegalArgumentException("-D" + PROPERTY + "=" + v + ": expected 128, 256 or 512");
        };
        if (s.vectorBitSize() > VectorShape.preferredShape().vectorBitSize()) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + v + ": this CPU's widest vectors are "
                    + VectorShape.preferredShape().vectorBitSize() + " bits");
        }
        return s;
    }

    /** Bits of the shape in use. */
    static int bits() { return SHAPE.vectorBitSize(); }
}
