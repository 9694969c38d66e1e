package gptq4j.spark.execution;

import org.apache.spark.sql.types.DataType;

import java.io.Serializable;
import java.util.List;

/**
 * What the operator needs to know about one generate call.
 *
 * @param options   option names, one per argument after the prompt
 * @param argTypes  Spark types of the prompt and the option values
 * @param struct    the call returns the result struct (else the text)
 */
public record CallSpec(List<String> options, List<DataType> argTypes, boolean struct) implements Serializable {
    public CallSpec {
        options = List.copyOf(options);
        argTypes = List.copyOf(argTypes);
        if (argTypes.size() != options.size() + 1) {
            throw new IllegalArgumentException(argTypes.size() + " argument types for " + options.size() + " options plus a prompt");
        }
    }

    /** Arguments (prompt included). */
    public int arity() { return argTypes.size(); }
}
