package gptq4j.loader;

import com.fasterxml.jackson.databind.JsonNode;
import gptq4j.model.MixtralConfig;
import gptq4j.quant.gptq.GptqConfig;
import gptq4j.quant.gptq.GptqLinear;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A GPTQ Mixtral checkpoint directory: config, quantisation config and safetensors (one file or sharded
 * with model.safetensors.index.json). Tensors are memory-mapped on demand and checked against the shapes
 * the config implies; every error names the file and the tensor.
 */
public final class Checkpoint implements AutoCloseable {
    private final Path dir;
    private final MixtralConfig config;
    private final GptqConfig quant;
    private final List<SafeTensorsFile> files = new ArrayList<>();
    private final Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    private final Map<Path, SafeTensorsFile> byPath = new LinkedHashMap<>();

    private Checkpoint(Path dir) {
        this.dir = dir;
        if (!Files.isDirectory(dir)) throw CheckpointException.of(dir, "model directory not found");
        this.config = ConfigReader.readModelConfig(dir);
        this.quant = ConfigReader.readQuantConfig(dir);
        try {
            openFiles();
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    public static Checkpoint open(Path dir) {
        return new Checkpoint(dir.toAbsolutePath().normalize());
    }

    private void openFiles() {
        Path index = dir.resolve("model.safetensors.index.json");
        List<Path> paths = new ArrayList<>();
        Map<String, String> weightMap = new LinkedHashMap<>();
        if (Files.isRegularFile(index)) {
            JsonNode wm = ConfigReader.readJson(index).get("weight_map");
            if (wm == null || !wm.isObject()) throw CheckpointException.of(index, "missing weight_map");
            for (Iterator<Map.Entry<String, JsonNode>> it = wm.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getValue().isTextual()) {
                    throw CheckpointException.of(index, "weight_map entry " + e.getKey() + " is " + e.getValue() + ", expected a shard file name");
                }
                String f = e.getValue().asText();
                Path p = shardPath(index, e.getKey(), f);
                weightMap.put(e.getKey(), f);
                if (!paths.contains(p)) paths.add(p);
            }
            for (Path p : paths) {
                if (!Files.isRegularFile(p)) {
                    throw CheckpointException.of(p, "shard listed in model.safetensors.index.json is missing");
                }
            }
        } else if (Files.isRegularFile(dir.resolve("model.safetensors"))) {
            paths.add(dir.resolve("model.safetensors"));
        } else {
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().forEach(paths::add);
            } catch (IOException e) {
                throw CheckpointException.of(dir, "cannot list directory: " + e.getMessage());
            }
            if (paths.isEmpty()) throw CheckpointException.of(dir, "no model.safetensors, no model.safetensors.index.json and no *.safetensors file");
        }
        for (Path p : paths) {
            SafeTensorsFile f = new SafeTensorsFile(p);
            files.add(f);
            byPath.put(p, f);
            for (TensorInfo t : f.tensors().values()) {
                TensorInfo prev = tensors.putIfAbsent(t.name(), t);
                if (prev != null) throw CheckpointException.of(p, "tensor " + t.name() + " also appears in " + prev.file().getFileName());
            }
        }
        for (Map.Entry<String, String> e : weightMap.entrySet()) {
            TensorInfo t = tensors.get(e.getKey());
            Path listed = dir.resolve(e.getValue());
            if (t == null || !t.file().equals(listed)) {
                throw CheckpointException.of(listed, "tensor " + e.getKey() + " listed in model.safetensors.index.json is not in the file"
                        + (t == null ? "" : " (it is in " + t.file().getFileName() + ")"));
            }
        }
        checkLayerAndExpertCounts();
    }

    /** A weight_map value: a plain file name inside the model directory, nothing else. */
    private Path shardPath(Path index, String tensor, String f) {
        if (f.isEmpty() || f.equals(".") || f.equals("..") || f.contains("/") || f.contains("\\") || f.indexOf('\0') >= 0) {
            throw CheckpointException.of(index, "weight_map entry " + tensor + " names a path outside the directory: \""
                    + f.replace("\0", "\\0") + "\" (expected a shard file name in " + dir + ")");
        }
        try {
            return dir.resolve(f);
        } catch (InvalidPathException e) {
            throw CheckpointException.of(index, "weight_map entry " + tensor + " is not a valid file name: " + e.getMessage());
        }
    }

    /**
     * config.json's layer and expert counts agree with the tensors present, checked before anything is sized
     * by them (a corrupt count of 2^31-1 layers must not allocate 2^31-1 of anything).
     */
    private void checkLayerAndExpertCounts() {
        Path cfg = dir.resolve("config.json");
        int layers = config.layers(), experts = config.experts();
        String lastLayer = TensorNames.attnNorm(layers - 1);
        if (!has(lastLayer)) {
            throw CheckpointException.of(cfg, "num_hidden_layers = " + layers + " but the checkpoint has no tensor " + lastLayer);
        }
        if (has(TensorNames.attnNorm(layers))) {
            throw CheckpointException.of(cfg, "num_hidden_layers = " + layers + " but the checkpoint has tensors of layer " + layers
                    + " (" + TensorNames.attnNorm(layers) + ")");
        }
        String lastExpert = TensorNames.expert(0, experts - 1, 1) + TensorNames.QWEIGHT;
        if (!has(lastExpert)) {
            throw CheckpointException.of(cfg, "num_local_experts = " + experts + " but the checkpoint has no tensor " + lastExpert);
        }
        String extraExpert = TensorNames.expert(0, experts, 1) + TensorNames.QWEIGHT;
        if (has(extraExpert)) {
            throw CheckpointException.of(cfg, "num_local_experts = " + experts + " but the checkpoint has " + extraExpert);
        }
    }

    public Path dir() { return dir; }

    public MixtralConfig config() { return config; }

    public GptqConfig quant() { return quant; }

    /**
     * Rejects a tokenizer whose token ids reach past config.json's vocab_size (one that belongs to another model):
     * tokenizerVocab is its largest token id + 1. The engine's load and the loader checks share this.
     */
    public void checkTokenizerVocab(int tokenizerVocab) {
        if (tokenizerVocab > config.vocabSize()) {
            throw CheckpointException.of(dir.resolve("tokenizer.json"), "has token ids up to " + (tokenizerVocab - 1)
                    + " but config.json's vocab_size is " + config.vocabSize() + ": the tokenizer does not belong to this model");
        }
    }

    public boolean has(String name) { return tensors.containsKey(name); }

    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw CheckpointException.of(dir, "tensor " + name + " is missing from the checkpoint");
        return t;
    }

    public ByteBuffer map(TensorInfo t) {
        return byPath.get(t.file()).map(t);
    }

    /** An unquantised fp16/bf16/fp32 matrix, checked to be [rows, cols] (a vector when rows == 1 and 1-D). */
    public HalfMatrix half(String name, int rows, int cols) {
        TensorInfo t = info(name);
        if (!t.dtype().equals("F16") && !t.dtype().equals("BF16") && !t.dtype().equals("F32")) {
            throw CheckpointException.of(t.file(), "tensor " + name + " has dtype " + t.dtype() + ", expected F16");
        }
        boolean ok = rows == 1 && t.shape().length == 1 ? t.shape()[0] == cols
                : t.shape().length == 2 && t.shape()[0] == rows && t.shape()[1] == cols;
        if (!ok) {
            throw CheckpointException.of(t.file(), "tensor " + name + " has shape " + t.shapeString() + ", expected "
                    + (rows == 1 ? "[" + cols + "]" : "[" + rows + ", " + cols + "]") + " from config.json");
        }
        return new HalfMatrix(name, rows, cols, map(t), t.dtype());
    }

    /** A GPTQ linear [in → out] under {@code prefix}, all four tensors checked against the config. */
    public GptqLinear gptq(String prefix, int in, int out) {
        int bits = quant.bits();
        int gs = quant.groupSize() == -1 ? in : quant.groupSize();
        int groups = (int) (((long) in + gs - 1) / gs);
        if (has(prefix + TensorNames.BIAS)) {
            TensorInfo b = info(prefix + TensorNames.BIAS);
            throw CheckpointException.of(b.file(), "tensor " + b.name() + ": biases on quantised linears are not supported by Mixtral");
        }
        if ((long) in * bits % 32 != 0 || (long) out * bits % 32 != 0) {
            throw CheckpointException.of(dir, prefix + ": dimensions " + in + "×" + out + " cannot be packed at " + bits + " bits");
        }
        TensorInfo qw = expect(prefix + TensorNames.QWEIGHT, "I32", (long) in * bits / 32, out);
        TensorInfo qz = expect(prefix + TensorNames.QZEROS, "I32", groups, (long) out * bits / 32);
        TensorInfo sc = expect(prefix + TensorNames.SCALES, "F16", groups, out);
        int[] gIdx = new int[in];
        if (has(prefix + TensorNames.G_IDX)) {
            TensorInfo gi = info(prefix + TensorNames.G_IDX);
            if (!gi.dtype().equals("I32") || gi.shape().length != 1 || gi.shape()[0] != in) {
                throw CheckpointException.of(gi.file(), "tensor " + gi.name() + " has " + gi.dtype() + " " + gi.shapeString()
                        + ", expected I32 [" + in + "]");
            }
            ByteBuffer b = map(gi);
            for (int i = 0; i < in; i++) {
                int g = b.getInt(i * 4);
                if (g < 0 || g >= groups) {
                    throw CheckpointException.of(gi.file(), "tensor " + gi.name() + "[" + i + "] = " + g
                            + " is not a group index in [0, " + groups + ")");
                }
                gIdx[i] = g;
            }
        } else {
            for (int i = 0; i < in; i++) gIdx[i] = i / gs;
        }
        return new GptqLinear(prefix, in, out, groups, quant, map(qw), map(qz), map(sc), gIdx);
    }

    private TensorInfo expect(String name, String dtype, long d0, long d1) {
        TensorInfo t = info(name);
        if (!t.dtype().equals(dtype) || t.shape().length != 2 || t.shape()[0] != d0 || t.shape()[1] != d1) {
            throw CheckpointException.of(t.file(), "tensor " + name + " has " + t.dtype() + " " + t.shapeString()
                    + ", expected " + dtype + " [" + d0 + ", " + d1 + "] for " + quant.bits() + "-bit group size "
                    + quant.groupSize() + " and the shape in config.json");
        }
        return t;
    }

    @Override
    public void close() {
        for (SafeTensorsFile f : files) f.close();
        files.clear();
    }
}
