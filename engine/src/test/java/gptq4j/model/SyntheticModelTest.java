package gptq4j.model;

import gptq4j.backend.Backend;
import gptq4j.backend.cpu.CpuBackend;
import gptq4j.loader.Checkpoint;
import gptq4j.loader.CheckpointSynthesizer;
import gptq4j.testing.ReferenceMixtral;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Shapes and formats beyond the golden fixtures (2-bit, asymmetric zeros, no act order, one file, sliding
 * window, other head / expert / layer counts): the engine against an independent float64 forward pass.
 */
class SyntheticModelTest {
    @TempDir
    Path tmp;

    static Stream<Arguments> variants() {
        // name, shape, bits, group, actOrder, asym, singleFile, window
        return Stream.of(
                Arguments.of("2bit-asym-noact", new Shapes.Shape(512, 128, 256, 2, 4, 2, 4, 2), 2, 32, false, true, false, 0),
                Arguments.of("3bit-64g-asym-act", new Shapes.Shape(512, 128, 256, 2, 4, 4, 8, 2), 3, 64, true, true, true, 0),
                Arguments.of("4bit-noact-window", new Shapes.Shape(512, 128, 256, 3, 8, 2, 4, 1), 4, 128, false, false, true, 7),
                Arguments.of("8bit-32g-mha", new Shapes.Shape(512, 96, 192, 1, 3, 3, 6, 3), 8, 32, true, false, false, 0),
                Arguments.of("4bit-none-act-asym", new Shapes.Shape(512, 128, 384, 2, 2, 1, 8, 2), 4, -1, true, true, true, 5));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variants")
    void cpuMatchesFloat64Reference(String name, Shapes.Shape shape, int bits, int group, boolean act, boolean asym,
                                    boolean single, int window) throws Exception {
        Path dir = tmp.resolve(name);
        long seed = System.nanoTime();
        CheckpointSynthesizer.write(new CheckpointSynthesizer.Options(shape, bits, group, act, asym, single, window, seed, null), dir);
        int[] ids = new SplittableRandom(seed).ints(19, 0, shape.vocab()).toArray();
        try (Checkpoint ck = Checkpoint.open(dir)) {
            double[][] ref = new ReferenceMixtral(ck).logits(ids);
            for (boolean vector : new boolean[]{false, true}) {
                if (vector && CpuBackend.vectorUnavailable() != null) continue;
                try (Backend be = new CpuBackend(2, vector);
                     MixtralModel m = new MixtralModel(ck.config(), MixtralWeights.load(ck, be), be, 32, 2, 8, 4)) {
                    float[] got = SingleSequence.prefill(m, ids, null);
                    double num = 0, den = 0;
                    int V = shape.vocab();
                    for (int t = 0; t < ids.length; t++) {
                        for (int v = 0; v < V; v++) {
                            double dd = got[t * V + v] - ref[t][v];
                            num += dd * dd;
                            den += ref[t][v] * ref[t][v];
                        }
                    }
                    double err = Math.sqrt(num / den);
                    assertTrue(err < 1e-4, name + " (" + be.name() + ", seed " + seed + "): logits rel err " + err);
                }
            }
        }
    }
}
