package gptq4j.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptq4j.loader.SafeTensorsFile;
import gptq4j.loader.TensorInfo;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.fail;

/** The golden fixtures in ../shared/fixtures. Missing fixtures fail the test: CI must not skip them. */
public final class Fixtures {
    private Fixtures() { }

    public static final List<String> MODELS = List.of(
            "tiny-mixtral-gptq-4bit-actorder",
            "tiny-mixtral-gptq-4bit-128g-actorder",
            "tiny-mixtral-gptq-4bit-32g-actorder",
            "tiny-mixtral-gptq-3bit-actorder",
            "tiny-mixtral-gptq-3bit-128g-actorder",
            "tiny-mixtral-gptq-8bit-actorder",
            "tiny-mixtral-gptq-8bit-128g-actorder");

    public static Path root() {
        String p = System.getProperty("gptq4j.fixtures", System.getenv().getOrDefault("GPTQ4J_FIXTURES", "../shared/fixtures"));
        Path dir = Path.of(p).toAbsolutePath().normalize();
        if (!Files.isDirectory(dir.resolve("models"))) {
            fail("golden fixtures not found at " + dir + " (set -Dgptq4j.fixtures or GPTQ4J_FIXTURES; CI must provide ../shared/fixtures)");
        }
        return dir;
    }

    public static Path model(String name) {
        return root().resolve("models").resolve(name);
    }

    public static JsonNode reference(String name) {
        try {
            return new ObjectMapper().readTree(root().resolve("reference").resolve(name + ".json").toFile());
        } catch (IOException e) {
            throw new AssertionError("cannot read reference " + name, e);
        }
    }

    /** A float32 reference tensor, flattened. */
    public static float[] tensor(String name, String tensor) {
        try (SafeTensorsFile f = new SafeTensorsFile(root().resolve("reference").resolve(name + ".safetensors"))) {
            TensorInfo t = f.tensors().get(tensor);
            if (t == null) throw new AssertionError("reference " + name + " has no tensor " + tensor);
            ByteBuffer b = f.map(t);
            float[] out = new float[(int) t.elements()];
            for (int i = 0; i < out.length; i++) out[i] = b.getFloat(i * 4);
            return out;
        }
    }

    public static int[] ints(JsonNode array) {
        int[] r = new int[array.size()];
        for (int i = 0; i < r.length; i++) r[i] = array.get(i).asInt();
        return r;
    }

    /** ‖a−b‖/‖b‖ over [from, to). */
    public static double relErr(float[] a, int aOff, float[] b, int bOff, int n) {
        double num = 0, den = 0;
        for (int i = 0; i < n; i++) {
            double d = a[aOff + i] - b[bOff + i];
            num += d * d;
            den += (double) b[bOff + i] * b[bOff + i];
        }
        return Math.sqrt(num / Math.max(den, 1e-300));
    }
}
