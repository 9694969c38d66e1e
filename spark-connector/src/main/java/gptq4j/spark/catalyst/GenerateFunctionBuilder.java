package gptq4j.spark.catalyst;

import gptq4j.spark.SamplingOption;
import org.apache.spark.sql.catalyst.expressions.CreateNamedStruct;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.GetStructField;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.NamedArgumentExpression;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.catalyst.util.MapData;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.MapType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.Option;
import scala.collection.immutable.Seq;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a {@link GenerateCall} from SQL arguments. Accepted forms (options may be mixed):
 * <pre>
 *   generate(prompt)
 *   generate(prompt, max_new_tokens => 32, temperature => 0.7, stop => array('###'))   -- named arguments
 *   generate(prompt, 32, 0.7, 0.9, 40, 1234)   -- positional: max_new_tokens, temperature, top_p, top_k, seed
 *   generate(prompt, named_struct('max_new_tokens', n, 'seed', id))   -- a struct; fields may be columns
 *   generate(prompt, map('max_new_tokens', 32, 'temperature', 0.0))   -- a constant map
 * </pre>
 * Any value may be a column or expression, evaluated per row; a null value keeps the default
 * ({@code spark.gptq4j.sampling.*}). The same holds for {@code generate_struct}.
 */
public final class GenerateFunctionBuilder {

    private GenerateFunctionBuilder() { }

    /** The builder registered for {@code generate} (struct=false) or {@code generate_struct} (struct=true). */
    public static scala.Function1<Seq<Expression>, Expression> builder(boolean struct) {
        return args -> build(Scala.list(args), struct);
    }

    /** Builds the call; problems are carried in the call and reported by analysis. */
    public static GenerateCall build(List<Expression> arguments, boolean struct) {
        String fn = struct ? GenerateCall.GENERATE_STRUCT : GenerateCall.GENERATE;
        if (arguments.isEmpty()) {
            return new GenerateCall(Scala.seq(List.of(new Literal(null, org.apache.spark.sql.types.DataTypes.StringType))),
                    List.of(), struct, fn + " needs a prompt: " + fn + "(prompt [, options])");
        }
        Map<String, Expression> named = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        int positional = 0;
        for (Expression arg : arguments.subList(1, arguments.size())) {
            if (arg instanceof NamedArgumentExpression n) {
                put(named, n.key(), n.value(), problems);
            } else if (arg instanceof CreateNamedStruct s) {
                List<Object> names = Scala.list(s.names());
                List<Expression> values = Scala.list(s.valExprs());
                for (int i = 0; i < names.size(); i++) put(named, String.valueOf(names.get(i)), values.get(i), problems);
            } else if (arg.dataType() instanceof StructType st) {
                StructField[] fields = st.fields();
                for (int i = 0; i < fields.length; i++) {
                    put(named, fields[i].name(), new GetStructField(arg, i, Option.apply(fields[i].name())), problems);
                }
            } else if (arg.dataType() instanceof MapType mt) {
                if (!(mt.keyType() instanceof StringType) || !arg.foldable()) {
                    problems.add("an options map must be a constant map with string keys; use named_struct(...) for per-row options");
                    continue;
                }
                MapData map = (MapData) arg.eval(null);
                if (map == null) continue;
                ArrayData keys = map.keyArray(), values = map.valueArray();
                DataType vt = mt.valueType();
                for (int i = 0; i < map.numElements(); i++) {
                    Object v = values.isNullAt(i) ? null : values.get(i, vt);
                    put(named, keys.getUTF8String(i).toString(), new Literal(v, vt), problems);
                }
            } else {
                if (positional >= SamplingOption.POSITIONAL.length) {
                    problems.add(fn + " takes at most " + SamplingOption.POSITIONAL.length
                            + " positional options (max_new_tokens, temperature, top_p, top_k, seed); name the others");
                } else {
                    put(named, SamplingOption.POSITIONAL[positional].sqlName(), arg, problems);
                }
                positional++;
            }
        }
        List<Expression> children = new ArrayList<>();
        children.add(arguments.get(0));
        children.addAll(named.values());
        String problem = problems.isEmpty() ? null : String.join("; ", problems);
        return new GenerateCall(Scala.seq(children), new ArrayList<>(named.keySet()), struct, problem);
    }

    private static void put(Map<String, Expression> named, String name, Expression value, List<String> problems) {
        SamplingOption o = SamplingOption.byName(name);
        if (o == null) {
            problems.add("unknown option '" + name + "'; known: " + SamplingOption.names());
            return;
        }
        if (named.put(o.sqlName(), value) != null) problems.add("option " + o.sqlName() + " given twice");
    }
}
