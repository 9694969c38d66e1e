package gptq4j.loader;

import java.nio.file.Path;

/**
 * One tensor entry of a safetensors header.
 *
 * @param name    tensor name as published (e.g. model.layers.0.self_attn.q_proj.qweight)
 * @param dtype   safetensors dtype string (F16, F32, I32, BF16, ...)
 * @param shape   dimensions
 * @param file    the file holding it
 * @param begin   absolute byte offset of the data in the file
 * @param length  data length in bytes
 */
public record TensorInfo(String name, String dtype, long[] shape, Path file, long begin, long length) {

    public long elements() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    public static int dtypeSize(String dtype) {
        return switch (dtype) {
            case "F64", "I64", "U64" -> 8;
            case "F32", "I32", "U32" -> 4;
            case "F16", "BF16", "I16", "U16" -> 2;
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2" -> 1;
            default -> -1;
        };
    }

    public String shapeString() {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) sb.append(", ");
            sb.append(shape[i]);
        }
        return sb.append(']').toString();
    }
}
