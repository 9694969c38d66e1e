package gptq4j.spark;

import gptq4j.runtime.arrow.ArrowGeneration;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.NullType;
import org.apache.spark.sql.types.NumericType;
import org.apache.spark.sql.types.StringType;

import java.util.Locale;

/**
 * The per-call / per-row sampling options of {@code generate}, by their SQL names. Names match
 * case-insensitively and with or without underscores ({@code max_new_tokens}, {@code maxNewTokens}).
 */
public enum SamplingOption {
    MAX_NEW_TOKENS(ArrowGeneration.MAX_NEW_TOKENS, Kind.INTEGER),
    TEMPERATURE(ArrowGeneration.TEMPERATURE, Kind.REAL),
    TOP_P(ArrowGeneration.TOP_P, Kind.REAL),
    TOP_K(ArrowGeneration.TOP_K, Kind.INTEGER),
    SEED(ArrowGeneration.SEED, Kind.INTEGER),
    MIN_P(ArrowGeneration.MIN_P, Kind.REAL),
    REPETITION_PENALTY(ArrowGeneration.REPETITION_PENALTY, Kind.REAL),
    PRESENCE_PENALTY(ArrowGeneration.PRESENCE_PENALTY, Kind.REAL),
    FREQUENCY_PENALTY(ArrowGeneration.FREQUENCY_PENALTY, Kind.REAL),
    STOP(ArrowGeneration.STOP, Kind.STRINGS),
    IGNORE_EOS(ArrowGeneration.IGNORE_EOS, Kind.BOOLEAN);

    /** The value types an option takes. */
    public enum Kind { INTEGER, REAL, STRINGS, BOOLEAN }

    /** Positional arguments after the prompt: generate(prompt, max_new_tokens, temperature, top_p, top_k, seed). */
    public static final SamplingOption[] POSITIONAL = {MAX_NEW_TOKENS, TEMPERATURE, TOP_P, TOP_K, SEED};

    private final String sqlName;
    private final Kind kind;

    SamplingOption(String sqlName, Kind kind) {
        this.sqlName = sqlName;
        this.kind = kind;
    }

    public String sqlName() { return sqlName; }

    public Kind kind() { return kind; }

    /** The option named {@code name}, or null. */
    public static SamplingOption byName(String name) {
        String n = normalise(name);
        for (SamplingOption o : values()) if (normalise(o.sqlName).equals(n)) return o;
        return null;
    }

    private static String normalise(String s) {
        return s.replace("_", "").replace("-", "").toLowerCase(Locale.ROOT);
    }

    /** Why a value of type {@code t} cannot be used for this option, or null when it can. */
    public String typeProblem(DataType t) {
        if (t instanceof NullType) return null;
        boolean ok = switch (kind) {
            case INTEGER, REAL -> t instanceof NumericType || t instanceof DecimalType;
            case BOOLEAN -> t instanceof BooleanType;
            case STRINGS -> t instanceof StringType
                    || (t instanceof ArrayType a && a.elementType() instanceof StringType);
        };
        if (ok) return null;
        String want = switch (kind) {
            case INTEGER -> "an integer";
            case REAL -> "a number";
            case BOOLEAN -> "a boolean";
            case STRINGS -> "a string or an array of strings";
        };
        return sqlName + " must be " + want + ", got " + t.sql();
    }

    /** All names, for error messages. */
    public static String names() {
        StringBuilder sb = new StringBuilder();
        for (SamplingOption o : values()) sb.append(sb.length() == 0 ? "" : ", ").append(o.sqlName);
        return sb.toString();
    }
}
