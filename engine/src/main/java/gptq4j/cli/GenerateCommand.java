package gptq4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptq4j.runtime.Engine;
import gptq4j.runtime.EngineOptions;
import gptq4j.runtime.GenerationRequest;
import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;
import gptq4j.runtime.TokenLogprob;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * {@code generate}: prompts from --prompt or a JSONL file (one {"prompt": …} per line, optional per-row
 * max_new_tokens, temperature, top_k, top_p, min_p, seed, stop, logprobs), one JSON result per input line in
 * the same order. Rows stream through the engine with a bounded window, so inputs of any size work.
 */
final class GenerateCommand {
    private GenerateCommand() { }

    static final Set<String> FLAGS = Set.of("model", "device", "input", "output", "prompt", "max-new-tokens", "temperature",
            "top-k", "top-p", "min-p", "repetition-penalty", "presence-penalty", "frequency-penalty", "seed", "stop",
            "logprobs", "batch-size", "max-tokens-per-step", "kv-cache-mb", "threads", "prompt-policy");
    static final Set<String> SWITCHES = Set.of("verbose", "progress", "parse-special-tokens", "ignore-eos");

    private static final ObjectMapper JSON = new ObjectMapper();

    static int run(String[] argv, PrintStream out, PrintStream err) {
        Args a = new Args(argv, 1, FLAGS, SWITCHES);
        Path model = Path.of(a.require("model"));
        if (!a.has("input") && !a.has("prompt")) throw new Args.UsageException("give --prompt TEXT or --input FILE.jsonl");
        SamplingParams defaults = defaults(a);
        String bad = defaults.validate();
        if (bad != null) throw new Args.UsageException(bad);
        EngineOptions opts = new EngineOptions(model, a.get("device", "auto"), a.getInt("batch-size", 0),
                a.getInt("max-tokens-per-step", 0), a.getLong("kv-cache-mb", 0) << 20, 0, a.getInt("threads", 0),
                a.get("prompt-policy", "error"), a.flag("parse-special-tokens"));
        Path input = a.has("input") ? Path.of(a.get("input", null)) : null;
        if (input != null && !Files.isRegularFile(input)) throw new IllegalArgumentException(input + ": input file not found");
        try (Engine engine = Engine.load(opts);
             Writer w = a.has("output")
                     ? Files.newBufferedWriter(Path.of(a.get("output", null)), StandardCharsets.UTF_8)
                     : new BufferedWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8))) {
            if (input == null) {
                GenerationResult r = engine.generate(List.of(new GenerationRequest(a.get("prompt", null), defaults))).get(0);
                w.write(toJson(r, defaults.logprobs() > 0).toString());
                w.write('\n');
                w.flush();
                return 0;
            }
            long total = countLines(input);
            Progress progress = new Progress(err, total, a.flag("progress") || a.has("output"), engine);
            int window = Math.max(256, 4 * engine.options().maxBatchSize());
            Deque<Pending> pending = new ArrayDeque<>();
            try (BufferedReader in = Files.newBufferedReader(input, StandardCharsets.UTF_8)) {
                long lineNo = 0;
                for (String line; (line = in.readLine()) != null; ) {
                    lineNo++;
                    if (line.isBlank()) continue;
                    pending.add(submit(engine, line, lineNo, input, defaults));
                    while (pending.size() >= window) writeHead(pending, w, progress);
                }
            }
            while (!pending.isEmpty()) writeHead(pending, w, progress);
            progress.done();
            return 0;
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }

    private record Pending(CompletableFuture<GenerationResult> future, boolean logprobs) { }

    private static void writeHead(Deque<Pending> pending, Writer w, Progress progress) throws IOException {
        Pending p = pending.removeFirst();
        GenerationResult r = p.future.join();
        w.write(toJson(r, p.logprobs).toString());
        w.write('\n');
        progress.row(r);
    }

    /** One input line to a request; a line that cannot be read becomes an error row, never a failed run. */
    private static Pending submit(Engine engine, String line, long lineNo, Path input, SamplingParams d) {
        JsonNode n;
        try {
            n = JSON.readTree(line);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            return errorRow(input + " line " + lineNo + ": not valid JSON: " + e.getOriginalMessage(), d);
        }
        if (n == null || !n.isObject()) return errorRow(input + " line " + lineNo + ": expected a JSON object", d);
        JsonNode prompt = n.get("prompt");
        if (prompt == null || !prompt.isTextual()) {
            return errorRow(input + " line " + lineNo + ": missing or non-string \"prompt\"", d);
        }
        SamplingParams p;
        try {
            p = rowParams(n, d);
        } catch (IllegalArgumentException e) {
            return errorRow(input + " line " + lineNo + ": " + e.getMessage(), d);
        }
        return new Pending(engine.submit(new GenerationRequest(prompt.asText(), p)), p.logprobs() > 0);
    }

    private static Pending errorRow(String msg, SamplingParams d) {
        return new Pending(CompletableFuture.completedFuture(GenerationResult.error(null, msg)), d.logprobs() > 0);
    }

    static SamplingParams defaults(Args a) {
        return new SamplingParams(a.getInt("max-new-tokens", SamplingParams.DEFAULT_MAX_NEW_TOKENS),
                a.getDouble("temperature", 0), a.getInt("top-k", 0), a.getDouble("top-p", 1), a.getDouble("min-p", 0),
                a.getDouble("repetition-penalty", 1), a.getDouble("presence-penalty", 0), a.getDouble("frequency-penalty", 0),
                a.getLong("seed", 0), a.all("stop"), List.of(), a.getInt("logprobs", 0), a.flag("ignore-eos"));
    }

    /** Per-row overrides of the command-line sampling parameters. */
    static SamplingParams rowParams(JsonNode n, SamplingParams d) {
        List<String> stop = d.stop();
        JsonNode s = n.get("stop");
        if (s != null && !s.isNull()) {
            stop = new ArrayList<>();
            if (s.isTextual()) stop.add(s.asText());
            else if (s.isArray()) for (JsonNode x : s) stop.add(x.asText());
            else throw new IllegalArgumentException("\"stop\" must be a string or an array of strings");
        }
        return new SamplingParams(intField(n, "max_new_tokens", d.maxNewTokens()), num(n, "temperature", d.temperature()),
                intField(n, "top_k", d.topK()), num(n, "top_p", d.topP()), num(n, "min_p", d.minP()),
                num(n, "repetition_penalty", d.repetitionPenalty()), num(n, "presence_penalty", d.presencePenalty()),
                num(n, "frequency_penalty", d.frequencyPenalty()), (long) num(n, "seed", d.seed()), stop,
                d.stopTokenIds(), intField(n, "logprobs", d.logprobs()), d.ignoreEos());
    }

    private static double num(JsonNode n, String k, double d) {
        JsonNode v = n.get(k);
        if (v == null || v.isNull()) return d;
        if (!v.isNumber()) throw new IllegalArgumentException("\"" + k + "\" must be a number, got " + v);
        return v.asDouble();
    }

    private static int intField(JsonNode n, String k, int d) {
        JsonNode v = n.get(k);
        if (v == null || v.isNull()) return d;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw new IllegalArgumentException("\"" + k + "\" must be an integer, got " + v);
        return v.asInt();
    }

    /** The output line of one result. */
    static ObjectNode toJson(GenerationResult r, boolean logprobs) {
        ObjectNode o = JSON.createObjectNode();
        if (r == null) {
            o.putNull("text");
            return o;
        }
        ArrayNode p = o.putArray("prompt_token_ids");
        for (int id : r.promptTokenIds()) p.add(id);
        ArrayNode t = o.putArray("token_ids");
        for (int id : r.tokenIds()) t.add(id);
        o.put("text", r.text());
        o.put("finish_reason", r.finishReason().wire());
        o.put("prompt_tokens", r.promptTokens());
        o.put("completion_tokens", r.completionTokens());
        if (logprobs) {
            ArrayNode lp = o.putArray("logprobs");
            for (TokenLogprob l : r.logprobs()) {
                ObjectNode e = lp.addObject();
                e.put("token_id", l.tokenId());
                e.put("logprob", l.logprob());
                ArrayNode top = e.putArray("top");
                for (TokenLogprob.Top x : l.top()) top.addObject().put("token_id", x.tokenId()).put("logprob", x.logprob());
            }
        }
        if (r.error() == null) o.putNull("error");
        else o.put("error", r.error());
        return o;
    }

    private static long countLines(Path p) throws IOException {
        try (var lines = Files.lines(p, StandardCharsets.UTF_8)) {
            return lines.filter(l -> !l.isBlank()).count();
        }
    }
}
