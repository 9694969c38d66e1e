/**
 * Data Source V2 {@code spark.read.format("gptq4j")}: reads a file of prompts (JSONL objects with a {@code prompt}
 * field, or plain text lines) and returns {@code id, prompt, text, finish_reason, prompt_tokens, completion_tokens,
 * error} as Arrow-backed columnar batches. One class per link of the chain: {@link GptqDataSource} (TableProvider)
 * → {@link GptqTable} → {@link GptqScanBuilder} → {@link GptqScan} → {@link GptqBatch} →
 * {@link GptqPartitionReaderFactory} → {@link GptqColumnarReader} / {@link GptqRowReader}.
 */
package gptq4j.spark.datasource;
