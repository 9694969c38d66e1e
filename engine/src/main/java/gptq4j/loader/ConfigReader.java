package gptq4j.loader;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptq4j.model.MixtralConfig;
import gptq4j.quant.gptq.GptqConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads config.json (with its quantization_config), quantize_config.json and generation_config.json.
 * Errors name the file and the key.
 */
public final class ConfigReader {
    private ConfigReader() { }

    /** Largest context window accepted (max_position_embeddings); per-sequence tables are sized by it. */
    public static final int MAX_POSITIONS = 1 << 20;

    public static JsonNode readJson(Path file) {
        if (!Files.isRegularFile(file)) throw CheckpointException.of(file, "file not found");
        try {
            JsonNode n = new ObjectMapper().readTree(file.toFile());
            if (n == null || !n.isObject()) throw CheckpointException.of(file, "not a JSON object");
            return n;
        } catch (IOException e) {
            throw CheckpointException.of(file, "invalid JSON: " + CheckpointException.jsonProblem(e));
        }
    }

    /** The model shape from {@code dir/config.json}; rejects configs that are not Mixtral. */
    public static MixtralConfig readModelConfig(Path dir) {
        Path file = dir.resolve("config.json");
        JsonNode c = readJson(file);
        String type = c.path("model_type").asText("");
        boolean archOk = false;
        for (JsonNode a : c.path("architectures")) archOk |= a.asText().equals("MixtralForCausalLM");
        if (c.has("model_type") ? !type.equals("mixtral") : !archOk) {
            throw CheckpointException.of(file, "model_type '" + type + "' is not Mixtral (expected model_type \"mixtral\" / MixtralForCausalLM)");
        }
        String act = c.path("hidden_act").asText("silu");
        if (!act.equals("silu")) throw CheckpointException.of(file, "hidden_act '" + act + "' unsupported (only silu)");
        int hidden = intKey(c, file, "hidden_size", -1);
        int heads = intKey(c, file, "num_attention_heads", -1);
        int headDim = c.hasNonNull("head_dim") ? intKey(c, file, "head_dim", -1) : (heads > 0 ? hidden / heads : -1);
        int sliding = c.hasNonNull("sliding_window") ? intKey(c, file, "sliding_window", 0) : 0;
        int maxPositions = intKey(c, file, "max_position_embeddings", 32768);
        if (maxPositions <= 0 || maxPositions > MAX_POSITIONS) {
            throw CheckpointException.of(file, "max_position_embeddings = " + maxPositions + " out of range [1, " + MAX_POSITIONS + "]");
        }
        if (heads > 0 && headDim > 0 && (long) heads * headDim > Integer.MAX_VALUE) {
            throw CheckpointException.of(file, "num_attention_heads × head_dim = " + heads + " × " + headDim + " overflows");
        }
        JsonNode eos = c.path("eos_token_id");
        int eosId = eos.isArray() ? (eos.size() > 0 ? eos.get(0).asInt() : -1) : eos.asInt(2);
        try {
            return new MixtralConfig(
                    intKey(c, file, "vocab_size", -1), hidden,
                    intKey(c, file, "intermediate_size", -1),
                    intKey(c, file, "num_hidden_layers", -1), heads,
                    c.has("num_key_value_heads") ? intKey(c, file, "num_key_value_heads", -1) : heads,
                    headDim,
                    intKey(c, file, "num_local_experts", -1),
                    intKey(c, file, "num_experts_per_tok", 2),
                    doubleKey(c, file, "rope_theta", 1e6),
                    doubleKey(c, file, "rms_norm_eps", 1e-5),
                    maxPositions,
                    Math.max(0, sliding),
                    c.path("bos_token_id").asInt(1), eosId,
                    c.path("tie_word_embeddings").asBoolean(false));
        } catch (IllegalArgumentException e) {
            throw CheckpointException.of(file, e.getMessage());
        }
    }

    /** GPTQ parameters from quantize_config.json, else config.json's quantization_config. */
    public static GptqConfig readQuantConfig(Path dir) {
        Path qfile = dir.resolve("quantize_config.json");
        Path cfile = dir.resolve("config.json");
        JsonNode q;
        Path from;
        if (Files.isRegularFile(qfile)) {
            q = readJson(qfile);
            from = qfile;
        } else {
            q = readJson(cfile).get("quantization_config");
            from = cfile;
            if (q == null || !q.isObject()) {
                throw CheckpointException.of(dir, "no quantize_config.json and no quantization_config in config.json: not a GPTQ checkpoint");
            }
        }
        String method = q.path("quant_method").asText("gptq");
        if (!method.equals("gptq")) throw CheckpointException.of(from, "quant_method '" + method + "' unsupported (only gptq)");
        String format = q.path("checkpoint_format").asText("gptq");
        if (!format.equals("gptq")) {
            throw CheckpointException.of(from, "checkpoint_format '" + format + "' unsupported (only the v1 \"gptq\" format with zero-1 storage)");
        }
        if (!q.has("bits")) throw CheckpointException.of(from, "missing key bits");
        int bits = intKey(q, from, "bits", -1);
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
            throw CheckpointException.of(from, "bits = " + bits + " unsupported (GPTQ bits must be 2, 3, 4 or 8)");
        }
        int gs = intKey(q, from, "group_size", -1);
        if (gs != -1 && gs <= 0) throw CheckpointException.of(from, "group_size = " + gs + " invalid (must be -1 or positive)");
        return new GptqConfig(bits, gs, q.path("desc_act").asBoolean(false), q.path("sym").asBoolean(true));
    }

    private static int intKey(JsonNode c, Path file, String key, int dflt) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) {
            if (dflt == -1) throw CheckpointException.of(file, "missing key " + key);
            return dflt;
        }
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw CheckpointException.of(file, "key " + key + " must be an integer, got " + n);
        }
        return n.asInt();
    }

    private static double doubleKey(JsonNode c, Path file, String key, double dflt) {
        JsonNode n = c.get(key);
        if (n == null || n.isNull()) return dflt;
        if (!n.isNumber()) throw CheckpointException.of(file, "key " + key + " must be a number, got " + n);
        double v = n.asDouble();
        if (!Double.isFinite(v) || v <= 0) throw CheckpointException.of(file, "key " + key + " must be a positive number, got " + n);
        return v;
    }
}
