package gptq4j.runtime.arrow;

import gptq4j.runtime.GenerationRequest;
import gptq4j.runtime.GenerationResult;
import gptq4j.runtime.SamplingParams;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.BaseIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FloatingPointVector;
import org.apache.arrow.vector.IntVector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.complex.StructVector;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.arrow.vector.types.pojo.FieldType;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Generates for a batch of prompts held in Arrow vectors.
 *
 * <p>In: a {@link VarCharVector} of prompts (UTF-8; null rows give null results) and, optionally, one vector
 * per sampling parameter named by the constants below (a null cell keeps the default). Integer parameters
 * accept any integer or floating-point vector holding integral values; real parameters any numeric vector;
 * {@code stop} a VarChar vector (one stop string) or a list of VarChar; {@code ignore_eos} a Bit vector.
 *
 * <p>Out: a {@link StructVector} shaped as {@link #resultField(String)}: {@code text}, {@code finish_reason},
 * {@code prompt_tokens}, {@code completion_tokens}, {@code error}, one row per prompt, in order. A row whose
 * parameters cannot be used is not sent to the engine: it comes back with finish_reason {@code error} and a
 * message naming the parameter. The caller owns (and closes) the returned vector.
 */
public final class ArrowGeneration {

    public static final String MAX_NEW_TOKENS = "max_new_tokens";
    public static final String TEMPERATURE = "temperature";
    public static final String TOP_K = "top_k";
    public static final String TOP_P = "top_p";
    public static final String MIN_P = "min_p";
    public static final String REPETITION_PENALTY = "repetition_penalty";
    public static final String PRESENCE_PENALTY = "presence_penalty";
    public static final String FREQUENCY_PENALTY = "frequency_penalty";
    public static final String SEED = "seed";
    public static final String STOP = "stop";
    public static final String IGNORE_EOS = "ignore_eos";

    /** Every parameter name the entry point reads, in documentation order. */
    public static final List<String> PARAMETERS = List.of(MAX_NEW_TOKENS, TEMPERATURE, TOP_K, TOP_P, MIN_P,
            REPETITION_PENALTY, PRESENCE_PENALTY, FREQUENCY_PENALTY, SEED, STOP, IGNORE_EOS);

    public static final String TEXT = "text";
    public static final String FINISH_REASON = "finish_reason";
    public static final String PROMPT_TOKENS = "prompt_tokens";
    public static final String COMPLETION_TOKENS = "completion_tokens";
    public static final String ERROR = "error";

    private ArrowGeneration() { }

    /** struct&lt;text: utf8, finish_reason: utf8, prompt_tokens: int32, completion_tokens: int32, error: utf8&gt;, nullable. */
    public static Field resultField(String name) {
        FieldType utf8 = FieldType.nullable(ArrowType.Utf8.INSTANCE);
        FieldType int32 = FieldType.nullable(new ArrowType.Int(32, true));
        return new Field(name, FieldType.nullable(ArrowType.Struct.INSTANCE), List.of(
                new Field(TEXT, utf8, null),
                new Field(FINISH_REASON, utf8, null),
                new Field(PROMPT_TOKENS, int32, null),
                new Field(COMPLETION_TOKENS, int32, null),
                new Field(ERROR, utf8, null)));
    }

    /** Runs {@code engine} (typically {@code Engine::generate}) over the batch; see the class comment. */
    public static StructVector generate(Function<List<GenerationRequest>, List<GenerationResult>> engine,
                                        VarCharVector prompts, Map<String, ? extends ValueVector> params,
                                        SamplingParams defaults, BufferAllocator allocator) {
        int n = prompts.getValueCount();
        String[] rejected = new String[n];
        List<GenerationRequest> all = requests(prompts, params, defaults, rejected);
        List<GenerationRequest> sent = new ArrayList<>(n);
        for (int i = 0; i < n; i++) if (rejected[i] == null) sent.add(all.get(i));
        List<GenerationResult> got = sent.isEmpty() ? List.of() : engine.apply(sent);
        if (got == null || got.size() != sent.size()) {
            throw new IllegalStateException("engine returned " + (got == null ? "null" : got.size() + " results")
                    + " for " + sent.size() + " requests");
        }
        GenerationResult[] results = new GenerationResult[n];
        for (int i = 0, j = 0; i < n; i++) {
            results[i] = rejected[i] != null ? GenerationResult.error(null, rejected[i]) : got.get(j++);
        }
        StructVector out = (StructVector) resultField("result").createVector(allocator);
        try {
            write(Arrays.asList(results), out);
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
        return out;
    }

    /**
     * One request per row, defaults overridden by the non-null parameter cells. A row whose parameters
     * cannot be used gets a message in {@code rejected[row]} (and a request that must not be sent).
     */
    public static List<GenerationRequest> requests(VarCharVector prompts, Map<String, ? extends ValueVector> params,
                                                   SamplingParams defaults, String[] rejected) {
        int n = prompts.getValueCount();
        if (rejected.length < n) throw new IllegalArgumentException("rejected has " + rejected.length + " slots for " + n + " rows");
        for (Map.Entry<String, ? extends ValueVector> e : params.entrySet()) {
            if (!PARAMETERS.contains(e.getKey())) {
                throw new IllegalArgumentException("unknown sampling parameter vector '" + e.getKey() + "'; known: " + PARAMETERS);
            }
            if (e.getValue().getValueCount() < n) {
                throw new IllegalArgumentException("parameter vector '" + e.getKey() + "' has " + e.getValue().getValueCount()
                        + " rows, prompts have " + n);
            }
        }
        SamplingParams base = defaults == null ? SamplingParams.defaults() : defaults;
        List<GenerationRequest> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            String prompt = prompts.isNull(i) ? null : new String(prompts.get(i), StandardCharsets.UTF_8);
            SamplingParams p = base;
            if (prompt != null && !params.isEmpty()) {
                try {
                    p = rowParams(base, params, i);
                    String invalid = p.validate();
                    if (invalid != null) rejected[i] = invalid;
                } catch (IllegalArgumentException e) {
                    rejected[i] = e.getMessage();
                }
            }
            out.add(new GenerationRequest(prompt, p));
        }
        return out;
    }

    private static SamplingParams rowParams(SamplingParams d, Map<String, ? extends ValueVector> params, int i) {
        int maxNew = d.maxNewTokens(), topK = d.topK();
        double temp = d.temperature(), topP = d.topP(), minP = d.minP(), rep = d.repetitionPenalty();
        double pres = d.presencePenalty(), freq = d.frequencyPenalty();
        long seed = d.seed();
        List<String> stop = d.stop();
        boolean ignoreEos = d.ignoreEos();
        for (Map.Entry<String, ? extends ValueVector> e : params.entrySet()) {
            ValueVector v = e.getValue();
            if (v.isNull(i)) continue;
            String name = e.getKey();
            switch (name) {
                case MAX_NEW_TOKENS -> maxNew = intValue(name, v, i);
                case TOP_K -> topK = intValue(name, v, i);
                case SEED -> seed = longValue(name, v, i);
                case TEMPERATURE -> temp = doubleValue(name, v, i);
                case TOP_P -> topP = doubleValue(name, v, i);
                case MIN_P -> minP = doubleValue(name, v, i);
                case REPETITION_PENALTY -> rep = doubleValue(name, v, i);
                case PRESENCE_PENALTY -> pres = doubleValue(name, v, i);
                case FREQUENCY_PENALTY -> freq = doubleValue(name, v, i);
                case STOP -> stop = stopValue(v, i);
                case IGNORE_EOS -> {
                    if (!(v instanceof BitVector b)) throw new IllegalArgumentException("ignore_eos must be a boolean vector, got " + v.getMinorType());
                    ignoreEos = b.get(i) != 0;
                }
                default -> throw new IllegalArgumentException("unknown sampling parameter '" + name + "'");
            }
        }
        return new SamplingParams(maxNew, temp, topK, topP, minP, rep, pres, freq, seed, stop,
                d.stopTokenIds(), d.logprobs(), ignoreEos);
    }

    private static long longValue(String name, ValueVector v, int i) {
        if (v instanceof BaseIntVector iv) return iv.getValueAsLong(i);
        if (v instanceof FloatingPointVector fv) {
            double x = fv.getValueAsDouble(i);
            if (!Double.isFinite(x) || x != Math.rint(x) || Math.abs(x) > 0x1p63) {
                throw new IllegalArgumentException(name + " must be an integer, got " + x);
            }
            return (long) x;
        }
        throw new IllegalArgumentException(name + " must be numeric, got a " + v.getMinorType() + " vector");
    }

    private static int intValue(String name, ValueVector v, int i) {
        long x = longValue(name, v, i);
        if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) throw new IllegalArgumentException(name + " out of int range: " + x);
        return (int) x;
    }

    private static double doubleValue(String name, ValueVector v, int i) {
        if (v instanceof FloatingPointVector fv) return fv.getValueAsDouble(i);
        if (v instanceof BaseIntVector iv) return iv.getValueAsLong(i);
        throw new IllegalArgumentException(name + " must be numeric, got a " + v.getMinorType() + " vector");
    }

    private static List<String> stopValue(ValueVector v, int i) {
        if (v instanceof VarCharVector s) return List.of(new String(s.get(i), StandardCharsets.UTF_8));
        if (v instanceof ListVector l && l.getDataVector() instanceof VarCharVector s) {
            int start = l.getElementStartIndex(i), end = l.getElementEndIndex(i);
            List<String> out = new ArrayList<>(end - start);
            for (int k = start; k < end; k++) {
                if (s.isNull(k)) throw new IllegalArgumentException("stop strings must not be null");
                out.add(new String(s.get(k), StandardCharsets.UTF_8));
            }
            return out;
        }
        throw new IllegalArgumentException("stop must be a string or a list of strings, got a " + v.getMinorType() + " vector");
    }

    /** Writes results (null entries give null struct rows) into {@code out}, shaped as {@link #resultField}. */
    public static void write(List<GenerationResult> results, StructVector out) {
        VarCharVector text = out.getChild(TEXT, VarCharVector.class);
        VarCharVector reason = out.getChild(FINISH_REASON, VarCharVector.class);
        IntVector promptTokens = out.getChild(PROMPT_TOKENS, IntVector.class);
        IntVector completionTokens = out.getChild(COMPLETION_TOKENS, IntVector.class);
        VarCharVector error = out.getChild(ERROR, VarCharVector.class);
        int n = results.size();
        for (int i = 0; i < n; i++) {
            GenerationResult r = results.get(i);
            if (r == null) {
                out.setNull(i);
                text.setNull(i);
                reason.setNull(i);
                promptTokens.setNull(i);
                completionTokens.setNull(i);
                error.setNull(i);
                continue;
            }
            out.setIndexDefined(i);
            setString(text, i, r.text());
            setString(reason, i, r.finishReason() == null ? null : r.finishReason().wire());
            promptTokens.setSafe(i, r.promptTokens());
            completionTokens.setSafe(i, r.completionTokens());
            setString(error, i, r.error());
        }
        out.setValueCount(n);
    }

    private static void setString(VarCharVector v, int i, String s) {
        if (s == null) v.setNull(i);
        else v.setSafe(i, s.getBytes(StandardCharsets.UTF_8));
    }
}
