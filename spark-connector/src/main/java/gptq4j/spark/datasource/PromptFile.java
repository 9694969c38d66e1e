package gptq4j.spark.datasource;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import gptq4j.spark.SamplingOption;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Records of a prompt file. Lines end with \n (a trailing \r is dropped). text: every line is a prompt (a final line
 * without \n too). jsonl: every non-blank line is a JSON object whose prompt field (null or missing: a null prompt)
 * and sampling-option fields are read.
 */
final class PromptFile {

    private static final ObjectMapper JSON = new ObjectMapper();

    private PromptFile() { }

    /** One record: the prompt and the per-row sampling options it carries (JSONL only). */
    record Record(String prompt, Map<String, JsonNode> options) { }

    /** The byte offset of every record, in order. */
    static List<Long> recordOffsets(String path, String format) throws IOException {
        List<Long> offsets = new ArrayList<>();
        boolean jsonl = format.equals("jsonl");
        try (InputStream in = new BufferedInputStream(java.nio.file.Files.newInputStream(Path.of(path)), 1 << 16)) {
            long pos = 0, lineStart = 0;
            boolean blank = true, any = false;
            int b;
            while ((b = in.read()) >= 0) {
                pos++;
                if (b == '\n') {
                    if (!jsonl || !blank) offsets.add(lineStart);
                    lineStart = pos;
                    blank = true;
                    any = false;
                } else {
                    any = true;
                    if (b != ' ' && b != '\t' && b != '\r') blank = false;
                }
            }
            if (any && (!jsonl || !blank)) offsets.add(lineStart);
        }
        return offsets;
    }

    /** Reads records from a byte offset. */
    static final class Records implements AutoCloseable {
        private final String path;
        private final boolean jsonl;
        private final String promptField;
        private final InputStream in;
        private long lineNumberHint;

        Records(String path, long offset, String format, String promptField) throws IOException {
            this.path = path;
            this.jsonl = format.equals("jsonl");
            this.promptField = promptField;
            FileChannel ch = FileChannel.open(Path.of(path), StandardOpenOption.READ);
            ch.position(offset);
            this.in = new BufferedInputStream(Channels.newInputStream(ch), 1 << 16);
        }

        /** The next record, or null at the end of the file. */
        Record next(long recordNumber) throws IOException {
            while (true) {
                String line = readLine();
                if (line == null) return null;
                lineNumberHint++;
                if (!jsonl) return new Record(line, Map.of());
                if (line.isBlank()) continue;
                return parse(line, recordNumber);
            }
        }

        private Record parse(String line, long recordNumber) {
            JsonNode node;
            try {
                node = JSON.readTree(line);
            } catch (IOException e) {
                throw new IllegalArgumentException(path + ": record " + recordNumber + " is not valid JSON: " + (e instanceof com.fasterxml.jackson.core.JsonProcessingException j ? j.getOriginalMessage() : e.getMessage()));
            }
            if (node == null || !node.isObject()) {
                throw new IllegalArgumentException(path + ": record " + recordNumber + " is not a JSON object");
            }
            JsonNode p = node.get(promptField);
            String prompt = p == null || p.isNull() ? null : p.isTextual() ? p.textValue() : p.toString();
            Map<String, JsonNode> options = new LinkedHashMap<>();
            node.fields().forEachRemaining(e -> {
                SamplingOption o = SamplingOption.byName(e.getKey());
                if (o != null && !e.getKey().equals(promptField)) options.put(o.sqlName(), e.getValue());
            });
            return new Record(prompt, options);
        }

        private String readLine() throws IOException {
            ByteArrayOutputStream buf = new ByteArrayOutputStream(256);
            int b;
            boolean any = false;
            while ((b = in.read()) >= 0) {
                any = true;
                if (b == '\n') break;
                buf.write(b);
            }
            if (!any) return null;
            byte[] bytes = buf.toByteArray();
            int n = bytes.length;
            if (n > 0 && bytes[n - 1] == '\r') n--;
            return new String(bytes, 0, n, StandardCharsets.UTF_8);
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
