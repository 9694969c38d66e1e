package gptq4j.tokenizer;

/**
 * One entry of {@code added_tokens}: text matched before the model runs and mapped straight to {@code id}.
 * {@code normalized}: matched in the normalized text rather than the raw input; {@code lstrip}/{@code rstrip}:
 * the match swallows whitespace on that side; {@code singleWord}: only matches a whole word;
 * {@code special}: dropped by decode and not matched when special tokens are not parsed.
 */
record AddedToken(int id, String content, boolean singleWord, boolean lstrip, boolean rstrip,
                  boolean normalized, boolean special) {
}
