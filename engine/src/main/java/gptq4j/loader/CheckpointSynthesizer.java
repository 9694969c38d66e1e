package gptq4j.loader;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptq4j.model.Shapes;
import gptq4j.quant.gptq.GptqPacker;
import gptq4j.util.Half;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.SplittableRandom;

/**
 * Writes a random GPTQ Mixtral checkpoint in exactly the published layout: config.json with
 * quantization_config, quantize_config.json, generation_config.json, safetensors (one file or two shards
 * with an index) and the tokenizer files copied from a directory. Weights are random: the text it
 * produces is meaningless. Every tensor is drawn from its own seeded stream, so the output depends only
 * on the options.
 */
public final class CheckpointSynthesizer {

    /**
     * @param shape         dimensions
     * @param bits          2, 3, 4 or 8
     * @param groupSize     -1 or a positive group size dividing the input widths
     * @param actOrder      random non-monotonic g_idx (desc_act)
     * @param asym          random zero points instead of 2^(bits-1)
     * @param singleFile    one model.safetensors instead of two shards with an index
     * @param slidingWindow 0 for none
     * @param seed          random seed
     * @param tokenizerDir  directory with tokenizer.json (+ tokenizer_config.json, tokenizer.model), or null
     */
    public record Options(Shapes.Shape shape, int bits, int groupSize, boolean actOrder, boolean asym, boolean singleFile,
                          int slidingWindow, long seed, Path tokenizerDir) { }

    private CheckpointSynthesizer() { }

    public static void write(Options o, Path out) throws IOException {
        Shapes.Shape s = o.shape();
        if (o.bits() != 2 && o.bits() != 3 && o.bits() != 4 && o.bits() != 8) {
            throw new IllegalArgumentException("--bits must be 2, 3, 4 or 8, got " + o.bits());
        }
        for (int in : new int[]{s.hidden(), s.intermediate(), s.heads() * (s.hidden() / s.heads())}) {
            if (o.groupSize() != -1 && (o.groupSize() <= 0 || in % o.groupSize() != 0)) {
                throw new IllegalArgumentException("group size " + o.groupSize() + " must divide the input width " + in);
            }
        }
        Files.createDirectories(out);
        writeConfigs(o, out);
        int headDim = s.hidden() / s.heads();
        SafeTensorsWriter a = new SafeTensorsWriter(), b = new SafeTensorsWriter();
        SafeTensorsWriter dense = a, quant = o.singleFile() ? a : b;
        half(dense, TensorNames.EMBED, s.vocab(), s.hidden(), 1.0, 0, o.seed());
        half(dense, TensorNames.LM_HEAD, s.vocab(), s.hidden(), 4.0 / Math.sqrt(s.hidden()), 0, o.seed());
        half(dense, TensorNames.FINAL_NORM, 1, s.hidden(), 0.1, 1.0, o.seed());
        for (int l = 0; l < s.layers(); l++) {
            half(dense, TensorNames.attnNorm(l), 1, s.hidden(), 0.1, 1.0, o.seed());
            half(dense, TensorNames.ffnNorm(l), 1, s.hidden(), 0.1, 1.0, o.seed());
            half(dense, TensorNames.router(l), s.experts(), s.hidden(), 2.0 / Math.sqrt(s.hidden()), 0, o.seed());
            gptq(quant, o, TensorNames.attn(l, 'q'), s.hidden(), s.heads() * headDim);
            gptq(quant, o, TensorNames.attn(l, 'k'), s.hidden(), s.kvHeads() * headDim);
            gptq(quant, o, TensorNames.attn(l, 'v'), s.hidden(), s.kvHeads() * headDim);
            gptq(quant, o, TensorNames.attn(l, 'o'), s.heads() * headDim, s.hidden());
            for (int e = 0; e < s.experts(); e++) {
                gptq(quant, o, TensorNames.expert(l, e, 1), s.hidden(), s.intermediate());
                gptq(quant, o, TensorNames.expert(l, e, 3), s.hidden(), s.intermediate());
                gptq(quant, o, TensorNames.expert(l, e, 2), s.intermediate(), s.hidden());
            }
        }
        if (o.singleFile()) {
            a.write(out.resolve("model.safetensors"));
        } else {
            String fa = "model-00001-of-00002.safetensors", fb = "model-00002-of-00002.safetensors";
            a.write(out.resolve(fa));
            b.write(out.resolve(fb));
            ObjectMapper m = new ObjectMapper();
            ObjectNode idx = m.createObjectNode();
            idx.putObject("metadata").put("total_size", a.totalBytes() + b.totalBytes());
            ObjectNode wm = idx.putObject("weight_map");
            for (String n : a.names()) wm.put(n, fa);
            for (String n : b.names()) wm.put(n, fb);
            m.writerWithDefaultPrettyPrinter().writeValue(out.resolve("model.safetensors.index.json").toFile(), idx);
        }
        if (o.tokenizerDir() != null) {
            for (String f : new String[]{"tokenizer.json", "tokenizer_config.json", "tokenizer.model"}) {
                Path src = o.tokenizerDir().resolve(f);
                if (Files.isRegularFile(src)) Files.copy(src, out.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        }
    }

    private static void writeConfigs(Options o, Path out) throws IOException {
        Shapes.Shape s = o.shape();
        ObjectMapper m = new ObjectMapper();
        ObjectNode q = m.createObjectNode();
        q.put("bits", o.bits()).put("group_size", o.groupSize()).put("damp_percent", 0.1).put("desc_act", o.actOrder())
                .put("static_groups", false).put("sym", !o.asym()).put("true_sequential", true).putNull("model_name_or_path");
        q.put("model_file_base_name", "model").put("quant_method", "gptq");
        ObjectNode c = m.createObjectNode();
        c.putArray("architectures").add("MixtralForCausalLM");
        c.put("attention_dropout", 0.0).put("bos_token_id", 1).put("eos_token_id", 2).put("hidden_act", "silu")
                .put("hidden_size", s.hidden()).put("initializer_range", 0.02).put("intermediate_size", s.intermediate())
                .put("max_position_embeddings", 32768).put("model_type", "mixtral")
                .put("num_attention_heads", s.heads()).put("num_experts_per_tok", s.topK())
                .put("num_hidden_layers", s.layers()).put("num_key_value_heads", s.kvHeads())
                .put("num_local_experts", s.experts()).put("output_router_logits", false).put("rms_norm_eps", 1e-5)
                .put("rope_theta", 1e6).put("router_aux_loss_coef", 0.02);
        if (o.slidingWindow() > 0) c.put("sliding_window", o.slidingWindow());
        else c.putNull("sliding_window");
        c.put("tie_word_embeddings", false).put("torch_dtype", "float16").put("use_cache", true)
                .put("vocab_size", s.vocab()).set("quantization_config", q.deepCopy());
        var w = m.writerWithDefaultPrettyPrinter();
        w.writeValue(out.resolve("config.json").toFile(), c);
        w.writeValue(out.resolve("quantize_config.json").toFile(), q);
        w.writeValue(out.resolve("generation_config.json").toFile(),
                m.createObjectNode().put("bos_token_id", 1).put("eos_token_id", 2));
    }

    private static SplittableRandom rng(long seed, String name) {
        return new SplittableRandom(seed * 0x9E3779B97F4A7C15L ^ name.hashCode());
    }

    /** fp16 tensor with entries mean + std·N(0,1). */
    private static void half(SafeTensorsWriter w, String name, int rows, int cols, double std, double mean, long seed) {
        long[] shape = rows == 1 && (name.endsWith("norm.weight")) ? new long[]{cols} : new long[]{rows, cols};
        w.add(name, "F16", shape, b -> {
            SplittableRandom r = rng(seed, name);
            long n = (long) rows * cols;
            for (long i = 0; i < n; i++) b.putShort(Half.fromFloat((float) (mean + std * gaussian(r))));
        });
    }

    private static double gaussian(SplittableRandom r) {
        double u = r.nextDouble(), v = r.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
    }

    /** The four GPTQ tensors of one linear: random q, zeros, fp16 scales, g_idx (permuted under act order). */
    private static void gptq(SafeTensorsWriter w, Options o, String prefix, int in, int out) {
        int bits = o.bits();
        int gs = o.groupSize() == -1 ? in : o.groupSize();
        int groups = in / gs;
        int[] gIdx = new int[in];
        SplittableRandom r0 = rng(o.seed(), prefix + ".g_idx");
        int[] perm = new int[in];
        for (int i = 0; i < in; i++) perm[i] = i;
        if (o.actOrder()) {
            for (int i = in - 1; i > 0; i--) {
                int j = r0.nextInt(i + 1);
                int t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        }
        for (int j = 0; j < in; j++) gIdx[perm[j]] = j / gs;
        int levels = 1 << bits;
        w.add(prefix + TensorNames.QWEIGHT, "I32", new long[]{(long) in * bits / 32, out}, b -> {
            SplittableRandom r = rng(o.seed(), prefix + ".qweight");
            int[] q = new int[in * out];
            for (int i = 0; i < q.length; i++) q[i] = r.nextInt(levels);
            GptqPacker.packQweight(q, in, out, bits, b);
        });
        w.add(prefix + TensorNames.QZEROS, "I32", new long[]{groups, (long) out * bits / 32}, b -> {
            SplittableRandom r = rng(o.seed(), prefix + ".qzeros");
            int[] z = new int[groups * out];
            for (int i = 0; i < z.length; i++) z[i] = o.asym() ? r.nextInt(levels - 1) : levels / 2 - 1;
            GptqPacker.packQzeros(z, groups, out, bits, b);
        });
        double base = 1.0 / Math.sqrt(in) / (levels / Math.sqrt(12));
        w.add(prefix + TensorNames.SCALES, "F16", new long[]{groups, out}, b -> {
            SplittableRandom r = rng(o.seed(), prefix + ".scales");
            for (long i = 0; i < (long) groups * out; i++) b.putShort(Half.fromFloat((float) (base * (0.5 + r.nextDouble()))));
        });
        w.add(prefix + TensorNames.G_IDX, "I32", new long[]{in}, b -> {
            for (int g : gIdx) b.putInt(g);
        });
    }
}
