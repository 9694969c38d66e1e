package gptq4j.backend.cuda;

import gptq4j.loader.Checkpoint;
import gptq4j.model.ForwardGreedyTest;
import gptq4j.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Random;

/** ForwardGreedyTest's comparison on the GPU: argmax_rows after the lm_head, recorded and replayed steps. */
class CudaForwardGreedyTest {

    static List<String> models() { return Fixtures.MODELS; }

    @ParameterizedTest
    @MethodSource("models")
    void greedyTokensAreTheSamplersChoiceOnTheGpu(String name) {
        CudaBackend be = CudaTestSupport.backend();
        try (Checkpoint ck = Checkpoint.open(Fixtures.model(name))) {
            ForwardGreedyTest.check(ck, be, new Random());
        }
    }
}
