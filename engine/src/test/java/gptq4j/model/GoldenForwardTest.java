package gptq4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import gptq4j.backend.cpu.CpuBackend;
import gptq4j.loader.Checkpoint;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU forward pass against transformers' float64 outputs: hidden states per layer, router logits, logits. */
class GoldenForwardTest {

    static List<String> models() { return Fixtures.MODELS; }

    @ParameterizedTest
    @MethodSource("models")
    void prompt0MatchesReferenceLayerByLayer(String name) {
        JsonNode ref = Fixtures.reference(name);
        int[] ids = Fixtures.ints(ref.get("input_ids").get(0));
        try (Checkpoint ck = Checkpoint.open(Fixtures.model(name)); CpuBackend be = new CpuBackend(2, true)) {
            MixtralConfig c = ck.config();
            MixtralWeights w = MixtralWeights.load(ck, be);
            try (MixtralModel m = new MixtralModel(c, w, be, 64, 4, 64, 16)) {
                List<float[]> hidden = new ArrayList<>();
                List<float[]> router = new ArrayList<>();
                float[] logits = SingleSequence.prefill(m, ids, new Probe() {
                    public void hidden(int index, float[] x) { hidden.add(x); }
                    public void routerLogits(int layer, float[] l) { router.add(l); }
                });
                int T = ids.length, H = c.hidden();
                float[] refHidden = Fixtures.tensor(name, "p0.hidden_states");
                for (int l = 0; l <= c.layers(); l++) {
                    double err = Fixtures.relErr(hidden.get(l), 0, refHidden, l * T * H, T * H);
                    assertTrue(err < 1e-4, name + ": hidden state " + l + " rel err " + err);
                }
                float[] refRouter = Fixtures.tensor(name, "p0.router_logits");
                for (int l = 0; l < c.layers(); l++) {
                    double err = Fixtures.relErr(router.get(l), 0, refRouter, l * T * c.experts(), T * c.experts());
                    assertTrue(err < 1e-4, name + ": router logits " + l + " rel err " + err);
                }
                float[] refLogits = Fixtures.tensor(name, "p0.logits");
                double err = Fixtures.relErr(logits, 0, refLogits, 0, T * c.vocabSize());
                assertTrue(err < 1e-4, name + ": logits rel err " + err);
            }
        }
    }
}
