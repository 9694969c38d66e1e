package gptq4j.backend.cuda;

import gptq4j.loader.Checkpoint;
import gptq4j.model.MixtralConfig;
import gptq4j.model.MixtralModel;
import gptq4j.model.MixtralWeights;
import gptq4j.model.Step;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The GPU benchmark: {@code gptq4j bench --shape mixtral-8x7b --device cuda} (synthetic weights in the published
 * act-order layout, generated on the device) or {@code --model DIR}. It runs the engine's own forward pass
 * ({@link MixtralModel#forwardGreedy}: the next token of every sequence chosen greedily on the device and one int per
 * sequence copied back, as the engine does for greedy requests; --select host: {@link MixtralModel#forward}, every
 * step's logits copied back into a Java array, the sampler's input for the other requests) over batches of sequences and
 * prints device, copy bandwidth, active bytes per token, prefill and decode tokens/s, the time one step's logits take
 * to come back to the host at each batch size (JSON logits_readback_ms), the fraction of the bandwidth floor at batch
 * 1, KV-cache capacity, peak device memory and a final JSON line.
 *
 * <p>Flags: --shape mixtral-8x7b | --model DIR, --device cuda[:N], --bits 4 (3, 8, 2), --group-size 128 (0: none),
 * --no-act-order, --perms shared (the default since round 33: q, k and v share one act-order permutation and each
 * expert's w1 and w3 one, as in the published checkpoints) | separate (every layer its own, rounds 1-32), --zeros
 * centered (the default since round 28: the zero point 2^(bits-1) of the published branches, all quantised with
 * sym=True, and codes symmetric about it, as a trained checkpoint's codes centre on its zero points; no product then
 * carries a common offset and the untrained router spreads a batch over the experts as a trained one
 * does: at batch 256 all 8 experts, the largest ~74 of 256 rows) | random (uniform codes and zero points, rounds 1-27)
 * | sym (uniform codes, sym zero points). Uniform codes average half a step off their zero point, every product carries
 * a term in the sum of its inputs, the residual stream takes a direction shared by all tokens and the router sends a
 * batch to about half the experts (random) or mostly one (sym), so fewer experts' weights are read per step than a
 * trained model's routing reads (BENCHMARKS.md rounds 16 and 28), --batch 1,8,32,64,128,256, --prompt-tokens 128,
 * --new-tokens 128, --warmup-steps 2, --warmup 512,
 * --layers N (fewer layers, for a quick check), --activations fp32 (the default: the hi + lo pair, float32's
 * precision) | fp16 (CudaBackend.FP16_ACTIVATIONS), --select device | host (above), --kv-cache-mb N (at most N MiB
 * of KV cache; default: the device memory left after the weights and a 6 GiB reserve. Nsight Compute's kernel replay
 * saves the device memory a kernel may write, and fails when the KV cache has taken it all). Decode steps feed random
 * token ids, not the chosen ones, so that the routing does not follow the synthetic weights' argmax (the host sampler is
 * not timed);
 * the first warmup-steps decode steps of each batch are not timed. Before the first batch, --warmup untimed decode
 * steps run at batch 1 (in runs of new-tokens steps, each after its own prefill; 0: none), so what is timed is the
 * steady state of a long-running engine: the step's host code (the model's Java and the launch queue, serial with the
 * GPU) is compiled by the JVM over the first few hundred steps. Round 22, H100: four batch-1 runs of 126 timed steps in
 * one process measured 5.45 / 5.42 / 4.85 / 4.89 ms per step; with every kernel skipped the host alone took 0.72 ms per
 * step in the first run and 0.16 after 2,048 steps.
 */
public final class GpuBench {
    private GpuBench() { }

    public static void main(String[] argv) {
        System.exit(run(argv, System.out));
    }

    public static int run(String[] argv, PrintStream out) {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i < argv.length; i++) {
            String k = argv[i];
            if (k.equals("bench")) continue;
            if (k.equals("--no-act-order") || k.equals("--verbose")) { a.put(k, "true"); continue; }
            if (!k.startsWith("--") || i + 1 >= argv.length) throw new IllegalArgumentException("bench: bad flag " + k);
            a.put(k, argv[++i]);
        }
        String device = a.getOrDefault("--device", "cuda");
        int ordinal = device.startsWith("cuda:") ? Integer.parseInt(device.substring(5)) : 0;
        if (!device.startsWith("cuda")) throw new IllegalArgumentException("the GPU bench runs on --device cuda[:N]");
        int bits = Integer.parseInt(a.getOrDefault("--bits", "4"));
        int group = Integer.parseInt(a.getOrDefault("--group-size", "128"));
        boolean act = !a.containsKey("--no-act-order");
        String zeros = a.getOrDefault("--zeros", "centered");
        if (!zeros.equals("sym") && !zeros.equals("random") && !zeros.equals("centered")) {
            throw new IllegalArgumentException("bench: --zeros centered|random|sym");
        }
        String activations = a.getOrDefault("--activations", CudaBackend.FP16_ACTIVATIONS ? "fp16" : "fp32");
        if (!activations.equals("fp16") && !activations.equals("fp32")) {
            throw new IllegalArgumentException("bench: --activations fp32|fp16");
        }
        boolean sym = !zeros.equals("random"), centred = zeros.equals("centered");
        String perms = a.getOrDefault("--perms", "shared");
        if (!perms.equals("shared") && !perms.equals("separate")) throw new IllegalArgumentException("bench: --perms shared|separate");
        boolean sharedPerms = perms.equals("shared");
        int P = Integer.parseInt(a.getOrDefault("--prompt-tokens", "128"));
        int N = Integer.parseInt(a.getOrDefault("--new-tokens", "128"));
        int warm = Integer.parseInt(a.getOrDefault("--warmup-steps", "2"));
        int warmup = Integer.parseInt(a.getOrDefault("--warmup", "512"));
        long kvCapMb = Long.parseLong(a.getOrDefault("--kv-cache-mb", "-1"));
        if (a.containsKey("--kv-cache-mb") && kvCapMb < 1) throw new IllegalArgumentException("bench: --kv-cache-mb must be >= 1");
        String select = a.getOrDefault("--select", "device");
        if (!select.equals("device") && !select.equals("host")) throw new IllegalArgumentException("bench: --select device|host");
        boolean onDevice = select.equals("device");
        if (warmup < 0) throw new IllegalArgumentException("bench: --warmup must be >= 0");
        int warmRuns = (warmup + N - 1) / N, warmSteps = warmRuns * N;   // whole runs of new-tokens steps
        List<Integer> batches = new ArrayList<>();
        for (String b : a.getOrDefault("--batch", "1,8,32,64,128,256").split(",")) batches.add(Integer.parseInt(b.trim()));
        if (batches.stream().anyMatch(b -> b < 1)) throw new IllegalArgumentException("bench: batch sizes must be >= 1");
        int maxB = batches.stream().max(Integer::compare).orElse(1);
        final int blockSize = 16, maxStepTokens = 2048;

        try (CudaBackend be = new CudaBackend(ordinal, activations.equals("fp16"))) {
            out.printf(Locale.ROOT, "device: %s (sm_%s, %d SMs), JDK %s, graphs %s, PDL %s, linear %s, activations %s%n",
                    be.deviceName(), be.computeCapability().replace(".", ""), be.multiprocessors(),
                    System.getProperty("java.version"), CudaDriver.GRAPHS ? "on" : "off", be.pdl() ? "on" : "off",
                    CudaBackend.linearName(), activations);
            double copy = be.copyBandwidth(1L << 30, 8);
            out.printf(Locale.ROOT, "device-to-device copy: %.1f GB/s (read + write, 1 GiB buffers, best of 8)%n", copy / 1e9);

            MixtralConfig cfg;
            MixtralWeights w;
            String what;
            long t0 = System.nanoTime();
            if (a.containsKey("--model")) {
                Path dir = Path.of(a.get("--model"));
                try (Checkpoint ck = Checkpoint.open(dir)) {
                    cfg = ck.config();
                    w = MixtralWeights.load(ck, be);
                    be.synchronize();
                    what = dir + " (" + ck.quant().bits() + "-bit g" + ck.quant().groupSize() + ")";
                }
                double s = (System.nanoTime() - t0) / 1e9;
                long diskBytes;
                try (Stream<Path> files = Files.list(dir)) {
                    diskBytes = files.filter(f -> f.toString().endsWith(".safetensors")).mapToLong(f -> f.toFile().length()).sum();
                }
                out.printf(Locale.ROOT, "load: %.1f s, %.2f GB of safetensors, %.2f GB/s disk->GPU%n", s, diskBytes / 1e9, diskBytes / 1e9 / s);
            } else {
                String shape = a.getOrDefault("--shape", "mixtral-8x7b");
                if (!shape.equals("mixtral-8x7b")) throw new IllegalArgumentException("bench: unknown shape " + shape);
                int layers = Integer.parseInt(a.getOrDefault("--layers", "32"));
                cfg = new MixtralConfig(32000, 4096, 14336, layers, 32, 8, 128, 8, 2, 1e6, 1e-5, 32768, 0, 1, 2, false);
                w = synthetic(be, cfg, bits, group, act, sym, centred, sharedPerms);
                be.synchronize();
                what = "synthetic mixtral-8x7b" + (layers != 32 ? " (" + layers + " layers)" : "") + ", " + bits + "-bit g"
                        + (group <= 0 ? "none" : group) + (act ? " act order" + (sharedPerms ? "" : " (separate permutations)") : "")
                        + (centred ? ", sym, centred codes" : sym ? ", sym" : ", random zero points")
                        + ", generated on the device";
                out.printf(Locale.ROOT, "weights: %s in %.2f s%n", what, (System.nanoTime() - t0) / 1e9);
            }

            long wBytes = activeBytesPerToken(cfg, w);
            double floorMs = wBytes / copy * 1e3;
            out.printf(Locale.ROOT, "active weight bytes per token: %.3f GB (device layout: packed weights, scales/zeros, lm_head, "
                    + "router, norms); bandwidth floor %.3f ms/token%n", wBytes / 1e9, floorMs);

            long[] mem = be.memoryInfo();
            long peakUsed = mem[1] - mem[0];
            long perToken = (long) cfg.layers() * 2 * cfg.kvDim() * (CudaBackend.KV_FP16 ? 2 : 4);
            long reserve = 6L << 30;      // activations, MoE scratch and split-K partials at the largest step
            long kvBytes = mem[0] - reserve;
            if (kvCapMb > 0) kvBytes = Math.min(kvBytes, kvCapMb << 20);
            long kvTokens = Math.max(blockSize, kvBytes / perToken / blockSize * blockSize);
            int kvBlocks = (int) (kvTokens / blockSize);
            int nb = (P + N + blockSize - 1) / blockSize;
            if ((long) maxB * nb > kvBlocks) throw new IllegalStateException("KV cache of " + kvTokens + " tokens is too small for batch " + maxB);
            MixtralModel model = new MixtralModel(cfg, w, be, maxStepTokens, Math.max(maxB, maxStepTokens / P), kvBlocks, blockSize);
            out.printf(Locale.ROOT, "KV cache: %d tokens (%s, %d KB per token) allocated in the %.1f GB left after the weights%n",
                    kvTokens, CudaBackend.KV_FP16 ? "fp16" : "float32", perToken / 1024, mem[0] / 1e9);

            Random rnd = new Random(1), warmRnd = new Random(2);
            Map<Integer, Double> decode = new LinkedHashMap<>(), readBack = new LinkedHashMap<>();
            double prefillTps = 0;
            int prefillTokensBest = 0;
            // warmRuns untimed batch-1 runs first, then the timed batches
            long wt0 = System.nanoTime();
            for (int run = 0; run < warmRuns + batches.size(); run++) {
                boolean untimed = run < warmRuns;
                int B = untimed ? 1 : batches.get(run - warmRuns);
                Random rr = untimed ? warmRnd : rnd;     // the timed batches draw the same tokens as without a warm-up
                if (run == warmRuns && warmRuns > 0) {
                    out.printf(Locale.ROOT, "warm-up: %d untimed decode steps at batch 1 in %.1f s%n",
                            warmSteps, (System.nanoTime() - wt0) / 1e9);
                }
                if (CudaBackend.ROUTE_STATS) be.resetRouting();      // this batch's prefill and decode steps only
                int maxBlocks = model.maxBlocksPerSeq();
                // prefill: groups of sequences, at most maxStepTokens tokens a step, logits of each last token
                int g = Math.max(1, Math.min(B, maxStepTokens / P));
                float[] logits = onDevice ? null : new float[Math.max(B, g) * cfg.vocabSize()];   // --select host
                int[] chosen = onDevice ? new int[Math.max(B, g)] : null;    // --select device
                long pt0 = System.nanoTime();
                for (int s0 = 0; s0 < B; s0 += g) {
                    int S = Math.min(g, B - s0), T = S * P;
                    int[] tok = new int[T], pos = new int[T], slot = new int[T], seq = new int[T], rows = new int[S];
                    int[] tables = new int[S * maxBlocks];
                    for (int i = 0; i < S; i++) {
                        for (int b = 0; b < nb; b++) tables[i * maxBlocks + b] = (s0 + i) * nb + b;
                        for (int p = 0; p < P; p++) {
                            int t = i * P + p;
                            tok[t] = 3 + rr.nextInt(cfg.vocabSize() - 3);
                            pos[t] = p;
                            slot[t] = ((s0 + i) * nb + p / blockSize) * blockSize + p % blockSize;
                            seq[t] = i;
                        }
                        rows[i] = i * P + P - 1;
                    }
                    Step st = new Step(T, tok, pos, slot, seq, S, tables, maxBlocks, S, rows);
                    if (onDevice) model.forwardGreedy(st, chosen);
                    else model.forward(st, logits, null);
                }
                double ps = (System.nanoTime() - pt0) / 1e9;
                if (!untimed && (long) B * P > prefillTokensBest) {
                    prefillTokensBest = B * P;
                    prefillTps = B * P / ps;
                }
                // decode: N steps of B tokens
                int[] tables = new int[B * maxBlocks];
                for (int i = 0; i < B; i++) for (int b = 0; b < nb; b++) tables[i * maxBlocks + b] = i * nb + b;
                int[] seq = new int[B], rows = new int[B];
                for (int i = 0; i < B; i++) { seq[i] = i; rows[i] = i; }
                long dt0 = 0;
                for (int step = 0; step < N; step++) {
                    if (step == Math.min(warm, N - 1)) dt0 = System.nanoTime();
                    int[] tok = new int[B], pos = new int[B], slot = new int[B];
                    for (int i = 0; i < B; i++) {
                        int p = P + step;
                        tok[i] = 3 + rr.nextInt(cfg.vocabSize() - 3);
                        pos[i] = p;
                        slot[i] = (i * nb + p / blockSize) * blockSize + p % blockSize;
                    }
                    Step st = new Step(B, tok, pos, slot, seq, B, tables, maxBlocks, B, rows);
                    if (onDevice) model.forwardGreedy(st, chosen);
                    else model.forward(st, logits, null);
                }
                if (untimed) continue;
                int timed = N - Math.min(warm, N - 1);
                double ds = (System.nanoTime() - dt0) / 1e9;
                double tps = (double) B * timed / ds;
                decode.put(B, tps);
                mem = be.memoryInfo();
                peakUsed = Math.max(peakUsed, mem[1] - mem[0]);
                long[] ls = be.launchStats();
                out.printf(Locale.ROOT, "batch %3d: prefill %d tokens in %.2f s (%.0f tokens/s); decode %.2f ms/step, %.1f tokens/s "
                                + "(%d timed steps, context %d..%d) [graph launches %d, captures %d, direct kernels %d, steps replayed %d]%n",
                        B, B * P, ps, B * P / ps, ds * 1e3 / timed, tps, timed, P + N - timed, P + N, ls[0], ls[1], ls[2], ls[4]);
                double rb = readBackMs(be, (long) B * cfg.vocabSize());
                readBack.put(B, rb);
                out.printf(Locale.ROOT, "  logits read-back: %d x %d floats in %.2f ms (%.1f GB/s, into a Java array as a step of"
                                + " sampled requests does; %s)%n", B, cfg.vocabSize(), rb, 4e-6 * B * cfg.vocabSize() / rb,
                        onDevice ? "not in the greedy steps timed here"
                                : String.format(Locale.ROOT, "%.1f %% of the step", 100 * rb * timed / (ds * 1e3)));
                String routed = CudaBackend.ROUTE_STATS ? be.routingSummary(B) : null;
                if (routed != null) out.println("  decode routing: " + routed);
                routed = CudaBackend.ROUTE_STATS ? be.routingSummary(g * P) : null;
                if (routed != null) out.println("  prefill routing: " + routed);
            }
            Double d1 = decode.get(1);
            double achieved = d1 == null ? 0 : wBytes * d1;
            double fraction = d1 == null ? 0 : achieved / copy;
            out.printf(Locale.ROOT, "prefill: %.0f tokens/s (batch of %d prompts x %d tokens, steps of <= %d tokens)%n",
                    prefillTps, prefillTokensBest / P, P, maxStepTokens);
            if (d1 != null) {
                out.printf(Locale.ROOT, "batch 1: %.3f ms/token = %.1f GB/s of weights, %.1f%% of the copy-bandwidth floor (%.3f ms)%n",
                        1e3 / d1, achieved / 1e9, 100 * fraction, floorMs);
            }
            out.printf(Locale.ROOT, "KV-cache capacity: %d tokens; peak device memory %.2f GB of %.2f GB%n", kvTokens, peakUsed / 1e9, mem[1] / 1e9);
            StringBuilder j = new StringBuilder();
            j.append(String.format(Locale.ROOT, "{\"device\":\"%s\",\"threads\":1,\"batch\":%s,\"model\":\"%s\",\"bits\":%d,",
                    be.deviceName(), batches.toString().replace(" ", ""), what.replace("\"", "'"), bits));
            j.append(String.format(Locale.ROOT, "\"prefill_tokens_per_s\":%.1f,\"decode_tokens_per_s\":", prefillTps));
            jsonByBatch(j, decode, "%.1f");
            j.append(",\"logits_readback_ms\":");
            jsonByBatch(j, readBack, "%.3f");
            j.append(String.format(Locale.ROOT, ",\"weight_bytes_per_token\":%d,\"achieved_gb_per_s\":%.1f,\"machine_gb_per_s\":%.1f,"
                            + "\"bandwidth_fraction\":%.3f,\"copy_gb_per_s\":%.1f,\"kv_cache_tokens\":%d,\"peak_device_bytes\":%d,"
                            + "\"prompt_tokens\":%d,\"new_tokens\":%d,\"graphs\":%s,\"pdl\":%s,\"linear\":\"%s\","
                            + "\"activations\":\"%s\",\"select\":\"%s\",\"warmup_steps\":%d}",
                    wBytes, achieved / 1e9, copy / 1e9, fraction, copy / 1e9, kvTokens, peakUsed, P, N, CudaDriver.GRAPHS,
                    be.pdl(), CudaBackend.linearName(), activations, select, warmSteps));
            out.println(j);
            model.close();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return 0;
    }

    /** A JSON object {"batch": value, ...} of per-batch figures, each value in the given format. */
    private static void jsonByBatch(StringBuilder j, Map<Integer, Double> byBatch, String format) {
        j.append('{');
        int n = 0;
        for (var e : byBatch.entrySet()) {
            j.append(n++ > 0 ? "," : "").append(String.format(Locale.ROOT, "\"%d\":" + format, e.getKey(), e.getValue()));
        }
        j.append('}');
    }

    /**
     * The best of 5 reads of n floats from the device into a Java array, the copy MixtralModel.forward makes of its
     * logits every step (synchronous; from 1 MiB through the pinned read buffer, CudaDriver.PINNED_READS): the part
     * of a decode step that is the host's read-back.
     */
    static double readBackMs(CudaBackend be, long n) {
        gptq4j.backend.Buf b = be.allocFloats(n);
        try {
            float[] h = new float[Math.toIntExact(n)];
            be.synchronize();
            double best = Double.MAX_VALUE;
            for (int r = 0; r < 5; r++) {
                long t0 = System.nanoTime();
                be.read(b, 0, h, h.length);
                best = Math.min(best, (System.nanoTime() - t0) / 1e6);
            }
            return best;
        } finally {
            be.free(b);
        }
    }

    /**
     * Random weights of the given format, generated on the device (no host copy of the 24 GB). sharedPerms: q, k and
     * v share one act-order permutation, and each expert's w1 and w3 one, as in the published checkpoints (GPTQ orders
     * a layer's inputs by the diagonal of its input's Hessian, the same for the projections of one input; vLLM's fused
     * GPTQ MoE keeps one g_idx per expert for w1 and w3 together). The fixtures' tiny 32g model draws them separately;
     * the engine takes either (CudaBackend's sharedPerm tables). Without it (--perms separate, rounds 1-32) every layer
     * draws its own, and the engine converts q/k/v's and w1/w3's activations once per projection.
     */
    static MixtralWeights synthetic(CudaBackend be, MixtralConfig c, int bits, int group, boolean act, boolean sym,
                                    boolean centred, boolean sharedPerms) {
        long seed = 1000;
        int h = c.hidden();
        Object embed = be.syntheticDense("embed", c.vocabSize(), h, -0.05f, 0.05f, seed++);
        Object lmHead = be.syntheticDense("lm_head", c.vocabSize(), h, -0.05f, 0.05f, seed++);
        Object norm = be.syntheticDense("norm", 1, h, 0.9f, 1.1f, seed++);
        MixtralWeights.Layer[] layers = new MixtralWeights.Layer[c.layers()];
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".";
            Object[] w1 = new Object[c.experts()], w2 = new Object[c.experts()], w3 = new Object[c.experts()];
            for (int e = 0; e < c.experts(); e++) {
                String q = p + "block_sparse_moe.experts." + e + ".";
                long s1 = seed++, s3 = seed++;
                w1[e] = be.syntheticLinear(q + "w1", h, c.intermediate(), bits, group, act, sym, centred, s1);
                w3[e] = be.syntheticLinear(q + "w3", h, c.intermediate(), bits, group, act, sym, centred, s3,
                        sharedPerms ? s1 : s3);
                w2[e] = be.syntheticLinear(q + "w2", c.intermediate(), h, bits, group, act, sym, centred, seed++);
            }
            Object inNorm = be.syntheticDense(p + "input_layernorm", 1, h, 0.9f, 1.1f, seed++);
            long sq = seed++, sk = seed++, sv = seed++;
            layers[l] = new MixtralWeights.Layer(
                    inNorm,
                    be.syntheticLinear(p + "self_attn.q_proj", h, c.qDim(), bits, group, act, sym, centred, sq),
                    be.syntheticLinear(p + "self_attn.k_proj", h, c.kvDim(), bits, group, act, sym, centred, sk,
                            sharedPerms ? sq : sk),
                    be.syntheticLinear(p + "self_attn.v_proj", h, c.kvDim(), bits, group, act, sym, centred, sv,
                            sharedPerms ? sq : sv),
                    be.syntheticLinear(p + "self_attn.o_proj", c.qDim(), h, bits, group, act, sym, centred, seed++),
                    be.syntheticDense(p + "post_attention_layernorm", 1, h, 0.9f, 1.1f, seed++),
                    be.syntheticDense(p + "block_sparse_moe.gate", c.experts(), h, -0.05f, 0.05f, seed++),
                    w1, w3, w2);
        }
        return MixtralWeights.of(embed, lmHead, norm, layers);
    }

    /** Bytes one decode token reads from device memory at batch 1: attention, top-k experts, router, norms, lm_head. */
    static long activeBytesPerToken(MixtralConfig c, MixtralWeights w) {
        long b = 0;
        for (MixtralWeights.Layer l : w.layers) {
            b += CudaBackend.gptqDeviceBytes(l.q()) + CudaBackend.gptqDeviceBytes(l.k()) + CudaBackend.gptqDeviceBytes(l.v())
                    + CudaBackend.gptqDeviceBytes(l.o());
            long expert = CudaBackend.gptqDeviceBytes(l.w1()[0]) + CudaBackend.gptqDeviceBytes(l.w3()[0])
                    + CudaBackend.gptqDeviceBytes(l.w2()[0]);
            b += c.topK() * expert;
            b += 2L * c.experts() * c.hidden() + 2L * 2 * c.hidden();
        }
        b += 2L * c.vocabSize() * c.hidden() + 2L * c.hidden() * 2;   // lm_head, final norm, one embedding row
        return b;
    }
}
