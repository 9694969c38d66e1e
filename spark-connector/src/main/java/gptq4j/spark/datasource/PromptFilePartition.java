package gptq4j.spark.datasource;

import org.apache.spark.sql.connector.read.InputPartition;

/**
 * Consecutive records of a prompt file.
 *
 * @param path        the file
 * @param byteOffset  where the first record starts
 * @param firstRecord its record number (the id column)
 * @param records     how many records
 */
public record PromptFilePartition(String path, long byteOffset, long firstRecord, int records) implements InputPartition { }
