package gptq4j.spark;

import gptq4j.runtime.Engine;
import gptq4j.runtime.EngineOptions;
import gptq4j.runtime.GenerationRequest;
import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The golden fixture model (tests fail, never skip, when it is missing) and direct-engine expectations. */
public final class Fixtures {

    public static final String MODEL_NAME = "tiny-mixtral-gptq-4bit-128g-actorder";

    private Fixtures() { }

    public static Path model() {
        String root = System.getProperty("gptq4j.fixtures");
        if (root == null) throw new AssertionError("system property gptq4j.fixtures is not set (surefire sets it to ../shared/fixtures)");
        Path m = Path.of(root, "models", MODEL_NAME);
        if (!Files.isRegularFile(m.resolve("config.json"))) {
            throw new AssertionError("golden fixture model missing: " + m + " (../shared/fixtures must sit beside the repository)");
        }
        return m.toAbsolutePath().normalize();
    }

    /** Prompts of varied shape (short, long, unicode, empty). */
    public static List<String> prompts(int n) {
        String[] seeds = {"Hello my name is", "The capital of France is", "Once upon a time", "", "1, 2, 3, 4,",
                "Écrire en français: ", "def fibonacci(n):", "日本語のテキスト", "[INST] Summarise this. [/INST]",
                "The quick brown fox jumps over the lazy dog."};
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(seeds[i % seeds.length] + (i < seeds.length ? "" : " #" + i));
        return out;
    }

    /** Runs the engine directly, outside Spark, on the CPU. */
    public static List<GenerationResult> direct(List<String> prompts, List<SamplingParams> params) {
        try (Engine e = Engine.load(EngineOptions.of(model()).withDevice("cpu"))) {
            List<GenerationRequest> rs = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) rs.add(new GenerationRequest(prompts.get(i), params.get(i)));
            return e.generate(rs);
        }
    }

    /** Greedy, n tokens, for every prompt. */
    public static List<GenerationResult> directGreedy(List<String> prompts, int n) {
        List<SamplingParams> ps = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) ps.add(SamplingParams.greedy(n));
        return direct(prompts, ps);
    }
}
