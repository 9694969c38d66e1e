/**
 * The tokenizer: Hugging Face {@code tokenizer.json} BPE with byte fallback (both Mixtral layouts), special
 * tokens from {@code added_tokens} and {@code tokenizer_config.json}, and streaming decode.
 * Entry points: {@link gptq4j.tokenizer.Tokenizer} and {@link gptq4j.tokenizer.StreamDecoder}.
 *
 * <p>Decisions:
 * <ul>
 *   <li>Special tokens written in text: {@code encode(text)} parses them (HF default; the reference input_ids
 *       follow it). Prompt text from users or tables should go through {@code encode(text, true, false)}, which
 *       keeps {@code "<s>"} as the characters it is (and then agrees with sentencepiece).</li>
 *   <li>Decode skips special tokens and applies the file's decoder; Mixtral's strips one leading space.</li>
 *   <li>Streaming: {@code streamDecoder()} output concatenates to {@code decode(generatedIds)};
 *       {@code streamDecoder(promptIds)} to the continuation of the prompt's text (leading space kept).
 *       Byte-fallback runs are released whole, when they end.</li>
 *   <li>Component types this package does not implement (ByteLevel, WordPiece, Unigram, ...) are refused at
 *       load with a {@link gptq4j.loader.CheckpointException} naming the file and the key.</li>
 * </ul>
 */
package gptq4j.tokenizer;
