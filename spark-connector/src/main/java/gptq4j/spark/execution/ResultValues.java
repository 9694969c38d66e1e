package gptq4j.spark.execution;

import gptq4j.runtime.FinishReason;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Reads one row of a result struct column (text, finish_reason, prompt_tokens, completion_tokens, error) as the
 * Catalyst value of a generate call: the struct, or for plain generate the text (null for a null prompt and for a
 * row that failed, whose message is only in generate_struct's error field).
 */
public final class ResultValues {

    private static final UTF8String ERROR = UTF8String.fromString(FinishReason.ERROR.wire());

    static final int TEXT = 0, FINISH_REASON = 1, PROMPT_TOKENS = 2, COMPLETION_TOKENS = 3, ERROR_MESSAGE = 4;

    private ResultValues() { }

    /** The value, pointing into the vector's memory (copy before the vector is closed). */
    public static Object value(ArrowColumnVector result, int row, boolean struct) {
        if (result.isNullAt(row)) return null;
        if (struct) return result.getStruct(row);
        if (failed(result, row)) return null;
        ColumnVector text = result.getChild(TEXT);
        return text.isNullAt(row) ? null : text.getUTF8String(row);
    }

    /** Like {@link #value} but owning its memory. */
    public static Object copiedValue(ArrowColumnVector result, int row, boolean struct) {
        Object v = value(result, row, struct);
        if (v instanceof UTF8String s) return s.copy();
        if (v instanceof org.apache.spark.sql.vectorized.ColumnarRow r) return r.copy();
        return v;
    }

    /** The row has finish_reason error. */
    public static boolean failed(ArrowColumnVector result, int row) {
        if (result.isNullAt(row)) return false;
        ColumnVector reason = result.getChild(FINISH_REASON);
        return !reason.isNullAt(row) && ERROR.equals(reason.getUTF8String(row));
    }

    /** The row's error message, or null. */
    public static String error(ArrowColumnVector result, int row) {
        if (result.isNullAt(row)) return null;
        ColumnVector e = result.getChild(ERROR_MESSAGE);
        return e.isNullAt(row) ? null : e.getUTF8String(row).toString();
    }

    static int intField(ArrowColumnVector result, int field, int row) {
        if (result.isNullAt(row)) return 0;
        ColumnVector c = result.getChild(field);
        return c.isNullAt(row) ? 0 : c.getInt(row);
    }
}
