package gptq4j.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Seeded mutations of a golden checkpoint directory. A seed picks a category ({@code seed % CATEGORIES.length})
 * and, through a {@link SplittableRandom} of that seed, the file, the key or tensor and the new value, so one
 * seed always gives the same mutation.
 */
final class Mutations {
    private Mutations() { }

    /** What a mutation must end in: anything clean, a successful load, or a CheckpointException. */
    enum Expect { ANY, OK, REJECT }

    interface Action {
        void apply(Path dir) throws IOException;
    }

    record Mutation(String id, String category, String file, String description, Expect expect, Action action) { }

    static final String[] CATEGORIES = {
        "header-length", "header-json", "data-offsets", "dtype", "shape", "tensor-set", "config", "quantize-config",
        "truncated-shard", "missing-file", "index", "tokenizer", "tokenizer-config", "shard-data", "harmless",
    };

    static final String INDEX = "model.safetensors.index.json";
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    /** Odd JSON values for keys that should hold small positive integers, strings or booleans. */
    static JsonNode oddValue(SplittableRandom r) {
        return switch (r.nextInt(26)) {
            case 0 -> F.numberNode(0);
            case 1 -> F.numberNode(-1);
            case 2 -> F.numberNode(-2);
            case 3 -> F.numberNode(1);
            case 4 -> F.numberNode(3);
            case 5 -> F.numberNode(5);
            case 6 -> F.numberNode(7);
            case 7 -> F.numberNode(129);
            case 8 -> F.numberNode(Integer.MAX_VALUE);
            case 9 -> F.numberNode(1L << 31);
            case 10 -> F.numberNode(1L << 40);
            case 11 -> F.numberNode(-(1L << 40));
            case 12 -> F.numberNode(1e308);
            case 13 -> F.numberNode(1.5);
            case 14 -> F.numberNode(128.0);
            case 15 -> F.textNode("128");
            case 16 -> F.textNode("abc");
            case 17 -> F.booleanNode(true);
            case 18 -> F.nullNode();
            case 19 -> F.arrayNode();
            case 20 -> F.objectNode();
            case 21 -> F.arrayNode().add(128);
            case 22 -> F.numberNode(new BigInteger("123456789012345678901234567890"));
            case 23 -> F.numberNode(Long.MIN_VALUE);
            case 24 -> F.numberNode(1 << 20);
            default -> F.numberNode(r.nextInt(-1000, 100_000));
        };
    }

    static Mutation random(GoldenCopy g, long seed) {
        SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + 12345);
        String cat = CATEGORIES[(int) Math.floorMod(seed, (long) CATEGORIES.length)];
        String id = "seed " + seed;
        String shard = g.shards.get(r.nextInt(4) == 0 ? 0 : 1); // the small shard mostly: the big one is 16 MB
        return switch (cat) {
            case "header-length" -> headerLength(g, r, id, shard);
            case "header-json" -> headerJson(g, r, id, shard);
            case "data-offsets" -> dataOffsets(g, r, id, shard);
            case "dtype" -> dtype(g, r, id, shard);
            case "shape" -> shape(g, r, id, shard);
            case "tensor-set" -> tensorSet(g, r, id, shard);
            case "config" -> config(g, r, id);
            case "quantize-config" -> quantizeConfig(g, r, id);
            case "truncated-shard" -> truncated(g, r, id, shard);
            case "missing-file" -> missing(g, r, id);
            case "index" -> index(g, r, id);
            case "tokenizer" -> tokenizer(g, r, id);
            case "tokenizer-config" -> tokenizerConfig(g, r, id);
            case "shard-data" -> shardData(g, r, id, shard);
            case "harmless" -> harmless(g, r, id, shard);
            default -> throw new AssertionError(cat);
        };
    }

    // ---- safetensors --------------------------------------------------------------------------------------

    private static Mutation headerLength(GoldenCopy g, SplittableRandom r, String id, String shard) {
        byte[] h;
        try {
            h = GoldenCopy.JSON.writeValueAsBytes(g.headers.get(shard));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        long hl = h.length, sz = 8 + hl + dataLength(g, shard);
        long[] pool = {0, -1, 1, 7, hl - 1, hl + 1, hl + 8, sz - 8, sz, sz + 1, Long.MAX_VALUE, Long.MIN_VALUE,
            1L << 40, (100L << 20) + 1, Integer.MAX_VALUE, (long) Integer.MAX_VALUE + 9, hl / 2, r.nextLong(),
            hl + r.nextInt(1, 4096), Math.max(1, hl - r.nextInt(1, (int) hl))};
        long field = pool[r.nextInt(pool.length)];
        return new Mutation(id, "header-length", shard, "header length field " + field + " for a " + hl + "-byte header",
                Expect.REJECT, d -> g.writeShard(d, shard, field, h));
    }

    /** The shard's header JSON as the mutations start from it (re-serialised, compact). */
    private static byte[] headerBytes(GoldenCopy g, String shard) {
        try {
            return GoldenCopy.JSON.writeValueAsBytes(g.headers.get(shard));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Mutation headerJson(GoldenCopy g, SplittableRandom r, String id, String shard) {
        byte[] json = headerBytes(g, shard);
        int kind = r.nextInt(7);
        String desc;
        byte[] out;
        switch (kind) {
            case 0 -> {
                out = json.clone();
                int flips = r.nextInt(1, 9);
                for (int i = 0; i < flips; i++) out[r.nextInt(out.length)] = (byte) r.nextInt(256);
                desc = flips + " random bytes in the header JSON";
            }
            case 1 -> {
                int cut = r.nextInt(1, json.length);
                out = java.util.Arrays.copyOf(json, cut);
                desc = "header JSON truncated to " + cut + " of " + json.length + " bytes";
            }
            case 2 -> {
                String[] alt = {"", "[]", "null", "1", "\"x\"", "[1,2,3]", "true", "{", "}", "{\"a\":}", "\u0000\u0000\u0000\u0000"};
                String a = alt[r.nextInt(alt.length)];
                out = a.getBytes(StandardCharsets.UTF_8);
                desc = "header JSON replaced by " + a.replace("\u0000", "\\0");
            }
            case 3 -> {
                int depth = r.nextInt(500, 100_000);
                out = ("[".repeat(depth) + "]".repeat(depth)).getBytes(StandardCharsets.UTF_8);
                desc = "header JSON nested " + depth + " deep";
            }
            case 4 -> {
                out = new byte[r.nextInt(1, 2000)];
                for (int i = 0; i < out.length; i++) out[i] = (byte) r.nextInt(256);
                desc = out.length + " bytes of garbage as header";
            }
            case 5 -> {
                out = json.clone();
                out[r.nextInt(out.length)] = (byte) 0xC3; // a lone UTF-8 lead byte
                out[r.nextInt(out.length)] = (byte) 0xFF;
                desc = "invalid UTF-8 in the header";
            }
            default -> {
                String s = new String(json, StandardCharsets.UTF_8);
                String[] nums = {"1e999", "NaN", "-Infinity", "99999999999999999999999999", "-0", "1.0e2", "0x10"};
                String num = nums[r.nextInt(nums.length)];
                out = firstEntryAs(s, "data_offsets", r.nextInt(s.length() / 2), num);
                desc = "data_offsets begin written as literal " + num;
            }
        }
        byte[] h = out;
        return new Mutation(id, "header-json", shard, desc, Expect.REJECT, d -> g.writeShard(d, shard, h.length, h));
    }

    /**
     * The header JSON text s with the first entry of the first array "key":[...] at or after index from (else the
     * first in s) replaced by literal, as UTF-8 bytes.
     */
    private static byte[] firstEntryAs(String s, String key, int from, String literal) {
        String open = "\"" + key + "\":[";
        int at = s.indexOf(open, from);
        if (at < 0) at = s.indexOf(open);
        int start = at + open.length();
        int comma = s.indexOf(',', start), close = s.indexOf(']', start);
        int end = comma >= 0 && comma < close ? comma : close;
        return (s.substring(0, start) + literal + s.substring(end)).getBytes(StandardCharsets.UTF_8);
    }

    private static String pickTensor(ObjectNode header, SplittableRandom r) {
        List<String> names = new ArrayList<>();
        header.fieldNames().forEachRemaining(n -> { if (!n.equals("__metadata__")) names.add(n); });
        return names.get(r.nextInt(names.size()));
    }

    private static long[] offsets(ObjectNode t) {
        return new long[] {t.get("data_offsets").get(0).asLong(), t.get("data_offsets").get(1).asLong()};
    }

    private static long dataLength(GoldenCopy g, String shard) {
        return g.size.get(shard) - 8 - g.headerLength.get(shard);
    }

    private static Mutation dataOffsets(GoldenCopy g, SplittableRandom r, String id, String shard) {
        ObjectNode h = g.header(shard);
        String name = pickTensor(h, r);
        ObjectNode t = (ObjectNode) h.get(name);
        long[] o = offsets(t);
        long len = dataLength(g, shard), span = o[1] - o[0];
        ArrayNode a = F.arrayNode();
        String desc;
        Expect expect = Expect.REJECT;
        switch (r.nextInt(13)) {
            case 0 -> { a.add(o[1]).add(o[0]); desc = "reversed"; }
            case 1 -> { a.add(o[0]).add(len + 1); desc = "end past the data area"; }
            case 2 -> { a.add(len - span + 1).add(len + 1); desc = "shifted past the end"; }
            case 3 -> { a.add(-1).add(o[1]); desc = "negative begin"; }
            case 4 -> { a.add(1L << 62).add((1L << 62) + span); desc = "begin 2^62"; }
            case 5 -> { a.add(o[0]).add(Long.MAX_VALUE); desc = "end Long.MAX_VALUE"; }
            case 6 -> {
                // alias another tensor's bytes: an overlap (the tensor's own range becomes a hole)
                String other = pickTensor(h, r);
                if (other.equals(name)) other = pickTensor(h, r);
                long[] p = offsets((ObjectNode) h.get(other));
                long b = Math.min(p[0], len - span);
                if (b == o[0]) b = o[0] >= 2 ? o[0] - 2 : o[0] + 2;
                a.add(b).add(b + span);
                desc = "overlapping " + other;
            }
            case 7 -> { a.add(o[0]).add(o[1]).add(o[1]); desc = "three offsets"; }
            case 8 -> { a.add(o[0]); desc = "one offset"; }
            case 9 -> { a.add(F.textNode(Long.toString(o[0]))).add(o[1]); desc = "begin as a string"; }
            case 10 -> { a.add((double) o[0] + 0.5).add(o[1]); desc = "begin as a fraction"; }
            case 11 -> {
                a.add(o[0]).add(new BigInteger("18446744073709551616").add(BigInteger.valueOf(o[1])));
                desc = "end 2^64 + end (wraps to the right value when read as a long)";
            }
            default -> { a.add(o[0] + 4).add(o[1] + 4); desc = "shifted by 4 bytes (overlaps its neighbour)"; }
        }
        t.set("data_offsets", a);
        return new Mutation(id, "data-offsets", shard, "tensor " + name + " data_offsets " + a + ": " + desc, expect,
                d -> g.writeShard(d, shard, h));
    }

    private static Mutation dtype(GoldenCopy g, SplittableRandom r, String id, String shard) {
        ObjectNode h = g.header(shard);
        String name = pickTensor(h, r);
        ObjectNode t = (ObjectNode) h.get(name);
        String old = t.get("dtype").asText();
        JsonNode[] pool = {F.textNode("F32"), F.textNode("F64"), F.textNode("I32"), F.textNode("U32"), F.textNode("I16"),
            F.textNode("F16"), F.textNode("BF16"), F.textNode("U8"), F.textNode("BOOL"), F.textNode("F8_E4M3"),
            F.textNode("f16"), F.textNode("F17"), F.textNode(""), F.textNode("I4"), F.numberNode(4), F.nullNode(),
            F.arrayNode().add("F16"), F.objectNode()};
        JsonNode v = pool[r.nextInt(pool.length)];
        boolean remove = r.nextInt(12) == 0;
        if (remove) t.remove("dtype"); else t.set("dtype", v);
        // F16 <-> BF16 keeps the size and the loader accepts both for unquantised tensors
        Expect e = !remove && v.isTextual() && (v.asText().equals(old)
                || (old.equals("F16") && v.asText().equals("BF16") && !name.endsWith(".scales"))) ? Expect.ANY : Expect.REJECT;
        return new Mutation(id, "dtype", shard, "tensor " + name + " dtype " + old + " -> " + (remove ? "(removed)" : v), e,
                d -> g.writeShard(d, shard, h));
    }

    private static Mutation shape(GoldenCopy g, SplittableRandom r, String id, String shard) {
        ObjectNode h = g.header(shard);
        String name = pickTensor(h, r);
        ObjectNode t = (ObjectNode) h.get(name);
        ArrayNode old = (ArrayNode) t.get("shape");
        ArrayNode s = old.deepCopy();
        String desc;
        boolean keepsOffsets = r.nextBoolean(); // else data_offsets are adjusted to match the new shape
        switch (r.nextInt(12)) {
            case 0 -> { int i = r.nextInt(s.size()); s.set(i, F.numberNode(s.get(i).asLong() + 1)); desc = "dim +1"; }
            case 1 -> { int i = r.nextInt(s.size()); s.set(i, F.numberNode(s.get(i).asLong() - 1)); desc = "dim -1"; }
            case 2 -> { int i = r.nextInt(s.size()); s.set(i, F.numberNode(0)); desc = "zero dim"; }
            case 3 -> { int i = r.nextInt(s.size()); s.set(i, F.numberNode(-s.get(i).asLong())); desc = "negative dim"; }
            case 4 -> { s = F.arrayNode().add(1L << 40).add(1L << 40); desc = "2^40 x 2^40 (overflows)"; }
            case 5 -> { s = F.arrayNode().add(1L << 62).add(4); desc = "2^62 x 4 (bytes overflow)"; }
            case 6 -> { s.add(1); desc = "extra dim of 1"; }
            case 7 -> { s = F.arrayNode(); desc = "scalar"; }
            case 8 -> {
                if (s.size() == 2) { JsonNode x = s.get(0); s.set(0, s.get(1)); s.set(1, x); desc = "dims swapped"; }
                else { s = F.arrayNode().add(1).add(s.get(0)); desc = "vector as [1, n]"; }
            }
            case 9 -> { int i = r.nextInt(s.size()); s.set(i, F.numberNode(s.get(i).asDouble())); desc = "float dim"; }
            case 10 -> { int i = r.nextInt(s.size()); s.set(i, F.textNode(s.get(i).asText())); desc = "string dim"; }
            default -> { s = F.arrayNode().add(Integer.MAX_VALUE).add(Integer.MAX_VALUE).add(Integer.MAX_VALUE); desc = "3 x 2^31-1"; }
        }
        t.set("shape", s);
        long[] o = offsets(t);
        if (!keepsOffsets) {
            long elements = 1;
            boolean ok = true;
            for (JsonNode d : s) {
                if (!d.isIntegralNumber() || d.asLong() < 0) { ok = false; break; }
                try { elements = Math.multiplyExact(elements, d.asLong()); } catch (ArithmeticException ex) { ok = false; break; }
            }
            long oldElements = 1;
            for (JsonNode d : old) oldElements *= d.asLong();
            int es = (int) ((o[1] - o[0]) / Math.max(1, oldElements));
            if (ok && es > 0 && elements < (1L << 40)) {
                t.set("data_offsets", F.arrayNode().add(o[0]).add(o[0] + elements * es));
                desc += ", data_offsets adjusted";
            }
        }
        // a 2-D [1, n] instead of a vector, or dims swapped on a square matrix, may be harmless
        Expect e = Expect.ANY;
        return new Mutation(id, "shape", shard, "tensor " + name + " shape " + old + " -> " + s + ": " + desc, e,
                d -> g.writeShard(d, shard, h));
    }

    private static Mutation tensorSet(GoldenCopy g, SplittableRandom r, String id, String shard) {
        ObjectNode h = g.header(shard);
        String name = pickTensor(h, r);
        String desc;
        Expect e = Expect.REJECT;
        switch (r.nextInt(6)) {
            case 0 -> { h.remove(name); desc = "tensor " + name + " removed from the header"; }
            case 1 -> { JsonNode t = h.remove(name); h.set(name + "_x", t); desc = "tensor " + name + " renamed"; }
            case 2 -> {
                String otherShard = g.shards.get(0).equals(shard) ? g.shards.get(1) : g.shards.get(0);
                String other = pickTensor(g.headers.get(otherShard), r);
                h.set(other, h.get(name).deepCopy());
                desc = "tensor " + other + " (of " + otherShard + ") also declared here";
            }
            case 3 -> {
                h.set("model.layers.0.self_attn.q_proj.bias", h.get(name).deepCopy());
                desc = "a q_proj.bias aliasing " + name;
            }
            case 4 -> {
                h.set("__metadata__", oddValue(r));
                desc = "__metadata__ = " + h.get("__metadata__");
                e = Expect.OK;
            }
            default -> {
                h.set(name, F.textNode("x"));
                desc = "tensor " + name + " entry is a string";
            }
        }
        return new Mutation(id, "tensor-set", shard, desc, e, d -> g.writeShard(d, shard, h));
    }

    private static Mutation truncated(GoldenCopy g, SplittableRandom r, String id, String shard) {
        long size = g.size.get(shard), n = g.headerLength.get(shard);
        long[] pool = {0, 1, 7, 8, 9, 8 + n / 2, 8 + n - 1, 8 + n, 8 + n + 1, size - 1, size - 4, size - r.nextLong(1, size - 8 - n),
            8 + r.nextLong(1, n), size / 2};
        long len = pool[r.nextInt(pool.length)];
        return new Mutation(id, "truncated-shard", shard, "truncated to " + len + " of " + size + " bytes", Expect.REJECT,
                d -> g.writeTruncated(d, shard, len));
    }

    private static Mutation shardData(GoldenCopy g, SplittableRandom r, String id, String shard) {
        // random bytes inside the data area: only a g_idx out of range is detectable at load
        ObjectNode h = g.header(shard);
        String name = pickTensor(h, r);
        long[] o = offsets((ObjectNode) h.get(name));
        long at = 8 + g.headerLength.get(shard) + o[0] + r.nextLong(0, o[1] - o[0]);
        byte v = (byte) r.nextInt(256);
        return new Mutation(id, "shard-data", shard, "byte " + at + " (in " + name + ") = " + v, Expect.ANY, d -> {
            byte[] b = g.bytes(shard);
            b[(int) at] = v;
            GoldenCopy.write(d, shard, b);
        });
    }

    // ---- json files --------------------------------------------------------------------------------------

    static final String[] CONFIG_KEYS = {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "num_local_experts", "num_experts_per_tok", "rope_theta",
        "rms_norm_eps", "max_position_embeddings", "sliding_window", "bos_token_id", "eos_token_id", "tie_word_embeddings",
        "model_type", "architectures", "hidden_act", "quantization_config"};

    private static Mutation config(GoldenCopy g, SplittableRandom r, String id) {
        ObjectNode c = g.json("config.json");
        String key = CONFIG_KEYS[r.nextInt(CONFIG_KEYS.length)];
        String desc;
        if (r.nextInt(6) == 0) {
            c.remove(key);
            desc = "config.json without " + key;
        } else if (r.nextInt(5) == 0 && (key.equals("model_type") || key.equals("architectures") || key.equals("hidden_act"))) {
            String[] alt = {"llama", "mistral", "Mixtral", "gpt2", "silu", "gelu", "MixtralForCausalLM"};
            String a = alt[r.nextInt(alt.length)];
            c.set(key, key.equals("architectures") ? F.arrayNode().add(a) : F.textNode(a));
            desc = "config.json " + key + " = " + c.get(key);
        } else {
            c.set(key, oddValue(r));
            desc = "config.json " + key + " = " + c.get(key);
        }
        return new Mutation(id, "config", "config.json", desc, Expect.ANY, d -> GoldenCopy.writeJson(d, "config.json", c));
    }

    static final String[] QUANT_KEYS = {"bits", "group_size", "desc_act", "sym", "quant_method", "checkpoint_format"};

    private static Mutation quantizeConfig(GoldenCopy g, SplittableRandom r, String id) {
        ObjectNode q = g.json("quantize_config.json");
        String key = QUANT_KEYS[r.nextInt(QUANT_KEYS.length)];
        String desc;
        if (r.nextInt(8) == 0) {
            q.remove(key);
            desc = "quantize_config.json without " + key;
        } else if (key.equals("quant_method") || key.equals("checkpoint_format")) {
            String[] alt = {"gptq", "awq", "gptq_v2", "marlin", "", "GPTQ"};
            q.set(key, r.nextBoolean() ? F.textNode(alt[r.nextInt(alt.length)]) : oddValue(r));
            desc = "quantize_config.json " + key + " = " + q.get(key);
        } else {
            JsonNode[] pool = {F.numberNode(5), F.numberNode(0), F.numberNode(-2), F.numberNode(7), F.numberNode(2),
                F.numberNode(3), F.numberNode(8), F.numberNode(16), F.numberNode(32), F.numberNode(64), F.numberNode(256),
                oddValue(r), oddValue(r)};
            q.set(key, pool[r.nextInt(pool.length)]);
            desc = "quantize_config.json " + key + " = " + q.get(key);
        }
        return new Mutation(id, "quantize-config", "quantize_config.json", desc, Expect.ANY,
                d -> GoldenCopy.writeJson(d, "quantize_config.json", q));
    }

    private static Mutation missing(GoldenCopy g, SplittableRandom r, String id) {
        String[] files = {g.shards.get(0), g.shards.get(1), "config.json", "tokenizer.json", INDEX, "quantize_config.json"};
        String f = files[r.nextInt(files.length)];
        int how = r.nextInt(4);
        String[] hows = {"deleted", "replaced by a directory", "a dangling link", "empty"};
        Expect e = f.equals(INDEX) || f.equals("quantize_config.json") ? Expect.ANY : Expect.REJECT;
        if (f.equals("quantize_config.json") && how != 3) e = Expect.OK; // config.json's quantization_config is used
        return new Mutation(id, "missing-file", f, f + " " + hows[how], e, d -> {
            Path p = d.resolve(f);
            Files.delete(p);
            switch (how) {
                case 1 -> Files.createDirectory(p);
                case 2 -> Files.createSymbolicLink(p, d.resolve("nothing-here"));
                case 3 -> Files.write(p, new byte[0]);
                default -> { }
            }
        });
    }

    private static Mutation index(GoldenCopy g, SplittableRandom r, String id) {
        ObjectNode idx = g.json(INDEX);
        ObjectNode wm = (ObjectNode) idx.get("weight_map");
        List<String> names = new ArrayList<>();
        wm.fieldNames().forEachRemaining(names::add);
        String name = names.get(r.nextInt(names.size()));
        String desc;
        Expect e = Expect.REJECT;
        switch (r.nextInt(8)) {
            case 0 -> { wm.remove(name); desc = "weight_map entry " + name + " removed"; e = Expect.ANY; }
            case 1 -> {
                String cur = wm.get(name).asText();
                wm.put(name, cur.equals(g.shards.get(0)) ? g.shards.get(1) : g.shards.get(0));
                desc = "weight_map sends " + name + " to the wrong shard";
            }
            case 2 -> { wm.put(name, "model-00003-of-00003.safetensors"); desc = "weight_map names an unknown file"; }
            case 3 -> {
                String[] bad = {"../x", "../" + g.shards.get(0), "/etc/passwd", "..", ".", "", "sub/../" + g.shards.get(0),
                    "..\\x", "~/" + g.shards.get(0), g.shards.get(0) + "\u0000", "a:b", "%2e%2e/x"};
                String b = bad[r.nextInt(bad.length)];
                wm.put(name, b);
                desc = "weight_map " + name + " -> \"" + b.replace("\u0000", "\\0") + "\"";
            }
            case 4 -> { wm.set(name, oddValue(r)); desc = "weight_map " + name + " = " + wm.get(name); }
            case 5 -> { idx.set("weight_map", oddValue(r)); desc = "weight_map = " + idx.get("weight_map"); }
            case 6 -> { idx.remove("weight_map"); desc = "no weight_map"; }
            default -> { wm.put("model.layers.9.mlp.extra.weight", g.shards.get(1)); desc = "weight_map lists a tensor no shard has"; }
        }
        return new Mutation(id, "index", INDEX, desc, e, d -> GoldenCopy.writeJson(d, INDEX, idx));
    }

    private static Mutation tokenizer(GoldenCopy g, SplittableRandom r, String id) {
        int kind = r.nextInt(12);
        String f = "tokenizer.json";
        switch (kind) {
            case 0 -> {
                long size;
                try { size = Files.size(g.dir.resolve(f)); } catch (IOException ex) { throw new IllegalStateException(ex); }
                long len = r.nextLong(0, size);
                return new Mutation(id, "tokenizer", f, "tokenizer.json truncated to " + len + " bytes", Expect.REJECT,
                        d -> g.writeTruncated(d, f, len));
            }
            case 1 -> {
                int flips = r.nextInt(1, 6);
                long s = r.nextLong();
                return new Mutation(id, "tokenizer", f, flips + " random bytes in tokenizer.json", Expect.ANY, d -> {
                    byte[] b = g.bytes(f);
                    SplittableRandom q = new SplittableRandom(s);
                    for (int i = 0; i < flips; i++) b[q.nextInt(b.length)] = (byte) q.nextInt(256);
                    GoldenCopy.write(d, f, b);
                });
            }
            default -> { }
        }
        ObjectNode t = g.tokenizer();
        ObjectNode model = (ObjectNode) t.get("model");
        String desc;
        Expect e = Expect.REJECT;
        switch (kind) {
            case 2 -> {
                String[] keys = {"model", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"};
                String k = keys[r.nextInt(keys.length)];
                t.remove(k);
                desc = "tokenizer.json without " + k;
                e = k.equals("model") ? Expect.REJECT : Expect.ANY;
            }
            case 3 -> {
                String[] types = {"WordPiece", "Unigram", "WordLevel", "", "bpe"};
                model.put("type", types[r.nextInt(types.length)]);
                desc = "model.type = " + model.get("type");
            }
            case 4 -> {
                ObjectNode v = (ObjectNode) model.get("vocab");
                String tok = randomKey(v, r);
                long[] ids = {Integer.MAX_VALUE, Integer.MAX_VALUE - 1, 1 << 30, 1L << 31, -1, 40_000_000, 5_000_000};
                long nv = ids[r.nextInt(ids.length)];
                v.put(tok, nv);
                desc = "model.vocab[" + tok + "] = " + nv;
                e = Expect.ANY;
            }
            case 5 -> {
                ObjectNode v = (ObjectNode) model.get("vocab");
                String tok = randomKey(v, r);
                v.set(tok, oddValue(r));
                desc = "model.vocab[" + tok + "] = " + v.get(tok);
                e = Expect.ANY;
            }
            case 6 -> {
                ArrayNode added = (ArrayNode) t.get("added_tokens");
                ObjectNode a = (ObjectNode) added.get(r.nextInt(added.size()));
                JsonNode[] vals = {F.numberNode(Integer.MAX_VALUE), F.numberNode(1 << 30), F.numberNode(-5), F.textNode("1"), F.nullNode(),
                    F.numberNode(32000), F.numberNode(31999)};
                a.set("id", vals[r.nextInt(vals.length)]);
                desc = "added token " + a.get("content") + " id = " + a.get("id");
                e = Expect.ANY;
            }
            case 7 -> {
                ArrayNode m = (ArrayNode) model.get("merges");
                int i = r.nextInt(m.size());
                JsonNode[] vals = {F.textNode("a"), F.textNode("a b c"), F.textNode("zzzqqq ▁the"), F.numberNode(3), F.nullNode(),
                    F.arrayNode().add("a"), F.textNode("")};
                m.set(i, vals[r.nextInt(vals.length)]);
                desc = "model.merges[" + i + "] = " + m.get(i);
            }
            case 8 -> {
                model.set("merges", oddValue(r));
                desc = "model.merges = " + model.get("merges");
                e = model.get("merges").isArray() ? Expect.ANY : Expect.REJECT;
            }
            case 9 -> {
                ObjectNode n = F.objectNode().put("type", "Replace").put("content", "x");
                String[] regexes = {"(", "[a-", "\\", "a{99999999999}", "(?<", "*"};
                n.set("pattern", F.objectNode().put("Regex", regexes[r.nextInt(regexes.length)]));
                t.set("normalizer", n);
                desc = "normalizer regex " + n.get("pattern");
            }
            case 10 -> {
                String[] parts = {"normalizer", "pre_tokenizer", "decoder", "post_processor"};
                String p = parts[r.nextInt(parts.length)];
                t.set(p, r.nextBoolean() ? F.objectNode().put("type", "Frobnicate") : oddValue(r));
                desc = p + " = " + t.get(p);
                e = t.get(p).isNull() ? Expect.ANY : Expect.REJECT;
            }
            default -> {
                model.set("vocab", r.nextBoolean() ? F.objectNode() : oddValue(r));
                desc = "model.vocab = " + model.get("vocab");
            }
        }
        return new Mutation(id, "tokenizer", f, desc, e, d -> GoldenCopy.writeJson(d, f, t));
    }

    private static String randomKey(ObjectNode o, SplittableRandom r) {
        int k = r.nextInt(o.size());
        Iterator<String> it = o.fieldNames();
        for (int i = 0; i < k; i++) it.next();
        return it.next();
    }

    private static Mutation tokenizerConfig(GoldenCopy g, SplittableRandom r, String id) {
        String f = "tokenizer_config.json";
        ObjectNode c = g.json(f);
        String[] keys = {"bos_token", "eos_token", "add_bos_token", "add_eos_token", "model_max_length"};
        String k = keys[r.nextInt(keys.length)];
        JsonNode v = r.nextBoolean() ? F.textNode(r.nextBoolean() ? "<nope>" : "") : oddValue(r);
        c.set(k, v);
        return new Mutation(id, "tokenizer-config", f, f + " " + k + " = " + v, Expect.ANY, d -> GoldenCopy.writeJson(d, f, c));
    }

    private static Mutation harmless(GoldenCopy g, SplittableRandom r, String id, String shard) {
        switch (r.nextInt(8)) {
            case 0 -> {
                int pad = r.nextInt(1, 64);
                byte[] h;
                try {
                    h = (new String(GoldenCopy.JSON.writeValueAsBytes(g.headers.get(shard)), StandardCharsets.UTF_8) + " ".repeat(pad))
                            .getBytes(StandardCharsets.UTF_8);
                } catch (IOException ex) {
                    throw new IllegalStateException(ex);
                }
                return new Mutation(id, "harmless", shard, "header padded with " + pad + " spaces", Expect.OK,
                        d -> g.writeShard(d, shard, h.length, h));
            }
            case 1 -> {
                ObjectNode h = g.header(shard);
                h.set("__metadata__", F.objectNode().put("format", "pt").put("note", "x".repeat(r.nextInt(1, 1000))));
                return new Mutation(id, "harmless", shard, "header __metadata__ with an extra key", Expect.OK, d -> g.writeShard(d, shard, h));
            }
            case 2 -> {
                ObjectNode c = g.json("config.json");
                c.put("some_new_key_" + r.nextInt(1000), r.nextInt());
                return new Mutation(id, "harmless", "config.json", "config.json with an unknown key", Expect.OK,
                        d -> GoldenCopy.writeJson(d, "config.json", c));
            }
            case 3 -> {
                String f = r.nextBoolean() ? "config.json" : INDEX;
                return new Mutation(id, "harmless", f, f + " reformatted on one line with CRLF and tabs", Expect.OK, d -> {
                    String s = new String(g.bytes(f), StandardCharsets.UTF_8).replace("\n", "\r\n\t");
                    GoldenCopy.write(d, f, s.getBytes(StandardCharsets.UTF_8));
                });
            }
            case 4 -> {
                ObjectNode idx = g.json(INDEX);
                ((ObjectNode) idx.get("metadata")).set("total_size", oddValue(r));
                return new Mutation(id, "harmless", INDEX, "index metadata.total_size = " + idx.get("metadata").get("total_size"),
                        Expect.OK, d -> GoldenCopy.writeJson(d, INDEX, idx));
            }
            case 5 -> {
                return new Mutation(id, "harmless", "generation_config.json", "generation_config.json is garbage", Expect.OK,
                        d -> GoldenCopy.write(d, "generation_config.json", new byte[] {1, 2, 3}));
            }
            case 6 -> {
                return new Mutation(id, "harmless", "extra.safetensors", "an unrelated broken extra.safetensors in the directory", Expect.OK,
                        d -> GoldenCopy.write(d, "extra.safetensors", new byte[] {9, 9, 9}));
            }
            default -> {
                ObjectNode q = g.json("quantize_config.json");
                q.put("desc_act", !q.path("desc_act").asBoolean());
                q.put("damp_percent", "lots");
                return new Mutation(id, "harmless", "quantize_config.json", "quantize_config.json desc_act flipped, damp_percent a string",
                        Expect.OK, d -> GoldenCopy.writeJson(d, "quantize_config.json", q));
            }
        }
    }

    // ---- targeted cases named in the issue --------------------------------------------------------------

    static List<Mutation> targeted(GoldenCopy g) {
        List<Mutation> out = new ArrayList<>();
        for (Object bits : new Object[] {5, 0, 1, 16, -4, "4", 4.0}) {
            out.add(quant(g, "bits", bits, Expect.REJECT));
        }
        for (Object gs : new Object[] {0, -2, 7, 1L << 40, 64, 256}) {
            out.add(quant(g, "group_size", gs, Expect.REJECT));
        }
        // a group wider than every input dimension is one group: the same as -1
        out.add(quant(g, "group_size", 1 << 30, Expect.ANY));
        out.add(quant(g, "group_size", Integer.MAX_VALUE, Expect.ANY));
        Object[][] cfg = {
            {"hidden_size", 1L << 40}, {"hidden_size", Integer.MAX_VALUE}, {"hidden_size", 1 << 30}, {"hidden_size", 130},
            {"num_attention_heads", 3}, {"num_attention_heads", 0}, {"num_key_value_heads", 3}, {"num_key_value_heads", 8},
            {"head_dim", 1 << 30}, {"head_dim", 31}, {"vocab_size", 32001}, {"vocab_size", 1 << 30}, {"vocab_size", 0},
            {"intermediate_size", 1 << 30}, {"num_hidden_layers", 3}, {"num_hidden_layers", Integer.MAX_VALUE},
            {"num_local_experts", 9}, {"num_local_experts", 1 << 30}, {"num_experts_per_tok", 9}, {"num_experts_per_tok", 0},
            {"max_position_embeddings", 0}, {"max_position_embeddings", -1}, {"max_position_embeddings", Integer.MAX_VALUE},
            {"max_position_embeddings", 1 << 30}, {"rope_theta", -1}, {"rms_norm_eps", 0}, {"model_type", "llama"},
            {"hidden_act", "gelu"},
        };
        for (Object[] kv : cfg) out.add(cfgValue(g, (String) kv[0], kv[1]));
        // one malformed UTF-8 byte inside __metadata__'s key, which the loader otherwise skips (seed 49945487013856's
        // mutation, which a lenient decoder turned into U+FFFD and loaded)
        for (String shard : g.shards) {
            byte[] hj = headerBytes(g, shard);
            int at = new String(hj, StandardCharsets.ISO_8859_1).indexOf("format");
            if (at < 0) continue;
            byte[] bad = hj.clone();
            bad[at + 2] = (byte) 0xE1;                    // a 3-byte lead followed by ASCII
            out.add(new Mutation("targeted utf8 " + shard, "header-json", shard,
                    "a malformed UTF-8 byte in __metadata__'s key", Expect.REJECT, d -> g.writeShard(d, shard, bad.length, bad)));
        }
        // the integer -0 as a data_offsets begin and as a shape entry (seed 55890650742991's kind: Jackson reads 0,
        // serde_json -0.0, which Hugging Face's loader rejects)
        String shard0 = g.shards.get(0);
        String hs = new String(headerBytes(g, shard0), StandardCharsets.UTF_8);
        byte[] negOff = firstEntryAs(hs, "data_offsets", 0, "-0");
        out.add(new Mutation("targeted data_offsets -0", "header-json", shard0, "data_offsets begin written as literal -0",
                Expect.REJECT, d -> g.writeShard(d, shard0, negOff.length, negOff)));
        byte[] negShape = firstEntryAs(hs, "shape", 0, "-0");
        out.add(new Mutation("targeted shape -0", "header-json", shard0, "a shape entry written as literal -0",
                Expect.REJECT, d -> g.writeShard(d, shard0, negShape.length, negShape)));
        ObjectNode llama = g.json("config.json");
        llama.put("model_type", "llama").set("architectures", F.arrayNode().add("LlamaForCausalLM"));
        out.add(new Mutation("targeted llama", "config", "config.json", "config.json is a Llama config", Expect.REJECT,
                d -> GoldenCopy.writeJson(d, "config.json", llama)));
        for (String bad : new String[] {"../x", "../" + g.shards.get(1), "/etc/passwd", "..", "sub/x.safetensors", g.shards.get(1) + "\u0000"}) {
            ObjectNode idx = g.json(INDEX);
            ((ObjectNode) idx.get("weight_map")).put("model.norm.weight", bad);
            out.add(new Mutation("targeted index " + bad.replace("\u0000", "\\0"), "index", INDEX,
                    "weight_map model.norm.weight -> " + bad.replace("\u0000", "\\0"), Expect.REJECT,
                    d -> GoldenCopy.writeJson(d, INDEX, idx)));
        }
        for (String s : g.shards) {
            out.add(new Mutation("targeted missing " + s, "missing-file", s, s + " deleted", Expect.REJECT, d -> Files.delete(d.resolve(s))));
        }
        out.add(new Mutation("targeted no tokenizer", "missing-file", "tokenizer.json", "tokenizer.json deleted", Expect.REJECT,
                d -> Files.delete(d.resolve("tokenizer.json"))));
        ObjectNode t = g.tokenizer();
        ((ObjectNode) t.get("model").get("vocab")).put("▁the", Integer.MAX_VALUE);
        out.add(new Mutation("targeted vocab id 2^31-1", "tokenizer", "tokenizer.json", "a vocab id of 2^31-1", Expect.REJECT,
                d -> GoldenCopy.writeJson(d, "tokenizer.json", t)));
        // an id the tokenizer itself accepts but config.json's vocab_size does not cover (seed 50194131413216's kind):
        // the loader checks and Engine.load must both reject it
        int vocab = g.json("config.json").get("vocab_size").asInt();
        ObjectNode past = g.tokenizer();
        ((ObjectNode) past.get("model").get("vocab")).put("▁the", vocab + 343);
        out.add(new Mutation("targeted vocab id past vocab_size", "tokenizer", "tokenizer.json",
                "a vocab id of vocab_size + 343", Expect.REJECT, d -> GoldenCopy.writeJson(d, "tokenizer.json", past)));
        return out;
    }

    private static Mutation quant(GoldenCopy g, String key, Object v, Expect e) {
        ObjectNode q = g.json("quantize_config.json");
        q.set(key, GoldenCopy.JSON.valueToTree(v));
        return new Mutation("targeted " + key + "=" + v, "quantize-config", "quantize_config.json", key + " = " + q.get(key), e,
                d -> GoldenCopy.writeJson(d, "quantize_config.json", q));
    }

    private static Mutation cfgValue(GoldenCopy g, String key, Object v) {
        ObjectNode c = g.json("config.json");
        c.set(key, GoldenCopy.JSON.valueToTree(v));
        return new Mutation("targeted " + key + "=" + v, "config", "config.json", key + " = " + c.get(key), Expect.REJECT,
                d -> GoldenCopy.writeJson(d, "config.json", c));
    }
}
