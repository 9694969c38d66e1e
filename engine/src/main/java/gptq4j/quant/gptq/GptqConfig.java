package gptq4j.quant.gptq;

/**
 * GPTQ quantisation parameters, from quantize_config.json or config.json's quantization_config.
 *
 * @param bits      2, 3, 4 or 8 bits per weight
 * @param groupSize input columns sharing one scale and zero, or -1 for one group over all inputs
 * @param descAct   act order: g_idx is a non-monotonic map from input column to group
 * @param sym       symmetric quantisation (every zero is 2^(bits-1))
 */
public record GptqConfig(int bits, int groupSize, boolean descAct, boolean sym) {
    public GptqConfig {
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
            throw new IllegalArgumentException("unsupported GPTQ bits " + bits + " (supported: 2, 3, 4, 8)");
        }
        if (groupSize != -1 && groupSize <= 0) {
            throw new IllegalArgumentException("GPTQ group_size must be -1 or positive, got " + groupSize);
        }
    }
}
