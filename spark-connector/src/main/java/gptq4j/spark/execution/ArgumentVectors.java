package gptq4j.spark.execution;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.vector.BigIntVector;
import org.apache.arrow.vector.BitVector;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.Float8Vector;
import org.apache.arrow.vector.ValueVector;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.complex.ListVector;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.FieldType;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.NullType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One call's arguments for a batch of rows, as the Arrow vectors {@code ArrowGeneration} reads: a VarChar vector
 * of prompts and one vector per option (integers as BigInt, reals as Float8, booleans as Bit, stop as VarChar
 * or List&lt;VarChar&gt;). Closing releases the vectors.
 */
public final class ArgumentVectors implements AutoCloseable {

    private final VarCharVector prompts;
    private final Map<String, ValueVector> params;

    private ArgumentVectors(VarCharVector prompts, Map<String, ValueVector> params) {
        this.prompts = prompts;
        this.params = params;
    }

    public VarCharVector prompts() { return prompts; }

    public Map<String, ValueVector> params() { return params; }

    /**
     * Writes {@code rows} (each holding the call's arguments at {@code offset}, offset+1, …) into new vectors.
     */
    public static ArgumentVectors write(CallSpec spec, List<InternalRow> rows, int offset, BufferAllocator allocator) {
        List<FieldVector> made = new ArrayList<>();
        try {
            VarCharVector prompts = new VarCharVector("prompt", allocator);
            made.add(prompts);
            DataType promptType = spec.argTypes().get(0);
            prompts.allocateNew(rows.size());
            for (int r = 0; r < rows.size(); r++) {
                InternalRow row = rows.get(r);
                if (promptType instanceof NullType || row.isNullAt(offset)) prompts.setNull(r);
                else prompts.setSafe(r, row.getUTF8String(offset).getBytes());
            }
            prompts.setValueCount(rows.size());
            Map<String, ValueVector> params = new LinkedHashMap<>();
            for (int k = 0; k < spec.options().size(); k++) {
                FieldVector v = writeOption(spec.options().get(k), spec.argTypes().get(k + 1), rows, offset + 1 + k, allocator);
                made.add(v);
                params.put(spec.options().get(k), v);
            }
            return new ArgumentVectors(prompts, params);
        } catch (RuntimeException e) {
            made.forEach(FieldVector::close);
            throw e;
        }
    }

    private static FieldVector writeOption(String name, DataType t, List<InternalRow> rows, int col, BufferAllocator a) {
        int n = rows.size();
        if (t instanceof ByteType || t instanceof ShortType || t instanceof IntegerType || t instanceof LongType || t instanceof NullType) {
            BigIntVector v = new BigIntVector(name, a);
            v.allocateNew(n);
            for (int r = 0; r < n; r++) {
                InternalRow row = rows.get(r);
                if (t instanceof NullType || row.isNullAt(col)) v.setNull(r);
                else if (t instanceof ByteType) v.set(r, row.getByte(col));
                else if (t instanceof ShortType) v.set(r, row.getShort(col));
                else if (t instanceof IntegerType) v.set(r, row.getInt(col));
                else v.set(r, row.getLong(col));
            }
            v.setValueCount(n);
            return v;
        }
        if (t instanceof FloatType || t instanceof DoubleType || t instanceof DecimalType) {
            Float8Vector v = new Float8Vector(name, a);
            v.allocateNew(n);
            for (int r = 0; r < n; r++) {
                InternalRow row = rows.get(r);
                if (row.isNullAt(col)) v.setNull(r);
                else if (t instanceof FloatType) v.set(r, row.getFloat(col));
                else if (t instanceof DoubleType) v.set(r, row.getDouble(col));
                else {
                    DecimalType d = (DecimalType) t;
                    v.set(r, row.getDecimal(col, d.precision(), d.scale()).toDouble());
                }
            }
            v.setValueCount(n);
            return v;
        }
        if (t instanceof BooleanType) {
            BitVector v = new BitVector(name, a);
            v.allocateNew(n);
            for (int r = 0; r < n; r++) {
                InternalRow row = rows.get(r);
                if (row.isNullAt(col)) v.setNull(r);
                else v.set(r, row.getBoolean(col) ? 1 : 0);
            }
            v.setValueCount(n);
            return v;
        }
        if (t instanceof StringType) {
            VarCharVector v = new VarCharVector(name, a);
            v.allocateNew(n);
            for (int r = 0; r < n; r++) {
                InternalRow row = rows.get(r);
                if (row.isNullAt(col)) v.setNull(r);
                else v.setSafe(r, row.getUTF8String(col).getBytes());
            }
            v.setValueCount(n);
            return v;
        }
        if (t instanceof ArrayType at && at.elementType() instanceof StringType) {
            ListVector v = ListVector.empty(name, a);
            try {
                VarCharVector items = (VarCharVector) v.addOrGetVector(FieldType.nullable(ArrowType.Utf8.INSTANCE)).getVector();
                v.allocateNew();
                for (int r = 0; r < n; r++) {
                    InternalRow row = rows.get(r);
                    if (row.isNullAt(col)) {
                        v.setNull(r);
                        continue;
                    }
                    ArrayData arr = row.getArray(col);
                    int start = v.startNewValue(r);
                    for (int j = 0; j < arr.numElements(); j++) {
                        if (arr.isNullAt(j)) items.setNull(start + j);
                        else items.setSafe(start + j, arr.getUTF8String(j).getBytes());
                    }
                    v.endValue(r, arr.numElements());
                }
                v.setValueCount(n);
                return v;
            } catch (RuntimeException e) {
                v.close();
                throw e;
            }
        }
        throw new IllegalArgumentException("option " + name + ": unsupported type " + t.sql());
    }

    @Override
    public void close() {
        prompts.close();
        for (ValueVector v : params.values()) v.close();
    }
}
