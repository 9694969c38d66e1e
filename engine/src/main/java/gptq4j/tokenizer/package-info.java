/**
 * The tokenizer: Hugging Face {@code tokenizer.json} BPE with byte fallback (both Mixtral layouts), special
 * tokens from {@code added_tokens} and {@code tokenizer_config.json}, and streaming decode.
 * Entry points: {@link gptq4j.tokenizer.Tokenizer} and {@link gptq4j.tokenizer.StreamDecoder}.
 */
package gptq4j.tokenizer;
