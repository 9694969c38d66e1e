package gptq4j.backend.cpu;

import gptq4j.quant.gptq.GptqLinear;
import gptq4j.util.Half;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The random layer reads back through GptqLinear, and PackedGptq holds the same values in its layout. */
class RandomGptqTest {

    static Stream<Arguments> configs() {
        List<Arguments> a = new ArrayList<>();
        for (int bits : new int[] {2, 3, 4, 8})
            for (int gs : new int[] {-1, 32, 64, 128})
                for (boolean act : new boolean[] {false, true})
                    for (boolean sym : new boolean[] {false, true}) a.add(Arguments.of(bits, gs, act, sym));
        return a.stream();
    }

    @ParameterizedTest(name = "{0}bit g{1} act={2} sym={3}")
    @MethodSource("configs")
    void packingRoundTrips(int bits, int gs, boolean act, boolean sym) {
        long seed = System.nanoTime();
        Random rnd = new Random(seed);
        int in = 416, out = 96;
        RandomGptq r = RandomGptq.create(rnd, in, out, bits, gs, act, sym);
        GptqLinear w = r.layer;
        String ctx = w.name() + " seed=" + seed;
        for (int i = 0; i < in; i++) for (int o = 0; o < out; o++) assertEquals(r.q[i][o], w.q(i, o), ctx + " q(" + i + "," + o + ")");
        for (int g = 0; g < w.groups(); g++) {
            for (int o = 0; o < out; o++) {
                assertEquals(r.zero[g][o], w.zero(g, o), ctx + " zero(" + g + "," + o + ")");
                if (sym) assertEquals(1 << (bits - 1), w.zero(g, o), ctx + " sym zero");
                assertEquals(Half.toFloat(r.scale[g][o]), w.scale(g, o), ctx + " scale");
            }
        }
        if (act && gs != -1) {
            boolean monotonic = true;
            for (int i = 1; i < in; i++) monotonic &= r.gIdx[i] >= r.gIdx[i - 1];
            assertTrue(!monotonic, ctx + ": act-order g_idx should be non-monotonic");
        }
        for (int lanes : new int[] {4, 8, 16}) {
            PackedGptq p = PackedGptq.pack(w, lanes);
            boolean[] seen = new boolean[in];
            int[] groupOf = new int[p.paddedIn()];
            int pc0 = 0;
            for (int g = 0; g < p.groups(); g++) {
                for (int e = pc0 + p.groupSlots[g] * lanes; pc0 < e; pc0++) groupOf[pc0] = g;
            }
            assertEquals(p.paddedIn(), pc0, ctx + ": group slots cover the row");
            int lastGroup = -1;
            for (int pc = 0; pc < p.paddedIn(); pc++) {
                int i = p.perm[pc];
                if (i < 0) {
                    for (int o = 0; o < out; o++) assertEquals(0, p.q(o, pc), ctx + " padding");
                    continue;
                }
                assertTrue(!seen[i], ctx + ": column " + i + " packed twice");
                seen[i] = true;
                assertTrue(r.gIdx[i] >= lastGroup, ctx + ": groups not contiguous at packed column " + pc);
                lastGroup = r.gIdx[i];
                for (int o = 0; o < out; o++) {
                    assertEquals(r.q[i][o], p.q(o, pc), ctx + " lanes=" + lanes + " packed q(" + o + "," + pc + ")");
                    int g = groupOf[pc];
                    assertEquals(w.scale(r.gIdx[i], o), p.scales[o * p.groups() + g], ctx + " packed scale");
                    assertEquals(w.zero(r.gIdx[i], o), p.zeros[o * p.groups() + g], ctx + " packed zero");
                }
            }
            for (int i = 0; i < in; i++) assertTrue(seen[i], ctx + ": column " + i + " missing");
            // memory stays about the packed size: weights at the original bit width, little padding here
            long raw = (long) in * out * bits / 8;
            assertTrue(p.weightBytes() <= raw * 1.6 + 4L * lanes * bits * out, ctx + ": packed " + p.weightBytes() + " vs raw " + raw);
        }
    }
}
