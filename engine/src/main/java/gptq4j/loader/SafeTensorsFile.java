package gptq4j.loader;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonStreamContext;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One safetensors file: an 8-byte little-endian header length, a JSON header, then raw data.
 * Tensors are memory-mapped one by one (each well under 2 GiB) so files of any size work and nothing
 * is copied onto the Java heap. The header is checked against the file: offsets inside the data area,
 * lengths equal to dtype size × shape, no overlaps past the end.
 */
public final class SafeTensorsFile implements AutoCloseable {
    /** Headers larger than this are rejected (the format's own limit is 100 MB). */
    static final long MAX_HEADER_BYTES = 100L << 20;

    /** Strict: a repeated tensor name or anything but whitespace after the header object is corruption. */
    private static final ObjectMapper HEADER_JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private final Path path;
    private final FileChannel channel;
    private final Map<String, TensorInfo> tensors = new LinkedHashMap<>();

    public SafeTensorsFile(Path path) {
        this.path = path;
        try {
            this.channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw CheckpointException.of(path, "file not found");
        } catch (IOException e) {
            throw CheckpointException.of(path, "cannot open: " + e.getMessage());
        }
        try {
            readHeader();
        } catch (RuntimeException e) {
            closeQuietly();
            throw e;
        }
    }

    private void readHeader() {
        long size;
        try {
            size = channel.size();
            if (size < 8) throw CheckpointException.of(path, "truncated safetensors file: " + size + " bytes, no header length");
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(len, 0);
            long headerLen = len.flip().getLong();
            if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
                throw CheckpointException.of(path, "invalid safetensors header length " + headerLen
                        + " (file is " + size + " bytes): the file is truncated or not safetensors");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
            readFully(hb, 8);
            String json = strictUtf8(hb.array());
            JsonNode root;
            try {
                root = HEADER_JSON.readTree(json);
            } catch (IOException e) {
                throw CheckpointException.of(path, "safetensors header is not valid JSON: " + CheckpointException.jsonProblem(e));
            }
            if (root == null || !root.isObject()) throw CheckpointException.of(path, "safetensors header is not a JSON object");
            rejectNegativeZero(json);
            long dataStart = 8 + headerLen;
            long dataLen = size - dataStart;
            for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) continue;
                tensors.put(e.getKey(), parseEntry(e.getKey(), e.getValue(), dataStart, dataLen));
            }
            checkNoOverlaps();
        } catch (IOException e) {
            throw CheckpointException.of(path, "read failed: " + e.getMessage());
        }
    }

    /**
     * The integer literal -0 in a tensor's entry is rejected. Jackson reads it as 0; serde_json, which Hugging Face's
     * safetensors parses headers with, reads it as the float -0.0, which an unsigned shape or data_offsets entry does
     * not accept, so such a file does not load there either (CheckpointFuzzTest, seed 55890650742991: a data_offsets
     * begin written as -0 loaded). __metadata__ is skipped: the loader ignores it.
     */
    private void rejectNegativeZero(String json) throws IOException {
        try (JsonParser p = HEADER_JSON.getFactory().createParser(json)) {
            for (JsonToken t; (t = p.nextToken()) != null; ) {
                JsonStreamContext here = p.getParsingContext();
                if (t == JsonToken.FIELD_NAME && here.getParent() != null && here.getParent().inRoot()
                        && "__metadata__".equals(p.currentName())) {
                    p.nextToken();                        // the loader ignores __metadata__, whatever it holds
                    p.skipChildren();
                    continue;
                }
                if (t == JsonToken.VALUE_NUMBER_INT && "-0".equals(p.getText())) {
                    JsonStreamContext c = p.getParsingContext();
                    String field = c.inArray() && c.getParent() != null ? c.getParent().getCurrentName() : c.getCurrentName();
                    throw CheckpointException.of(path, "safetensors header has the integer -0" + (field == null ? "" : " in \"" + field + "\"")
                            + " (character " + p.currentLocation().getCharOffset() + "): not an unsigned integer");
                }
            }
        }
    }

    /**
     * The header's text, decoded strictly: new String(..., UTF_8) would turn a malformed byte into U+FFFD, so a damaged
     * byte in a key the loader skips (__metadata__'s) would load. The format's header is UTF-8 JSON.
     */
    private String strictUtf8(byte[] header) {
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(header);
        CharBuffer out = CharBuffer.allocate(header.length);
        CoderResult r = dec.decode(in, out, true);
        if (!r.isError()) r = dec.flush(out);
        if (r.isError()) {
            throw CheckpointException.of(path, "safetensors header is not valid UTF-8: a malformed byte sequence at byte "
                    + in.position() + " of the header");
        }
        return out.flip().toString();
    }

    private TensorInfo parseEntry(String name, JsonNode n, long dataStart, long dataLen) {
        String where = "tensor " + name + ": ";
        if (!n.isObject()) throw CheckpointException.of(path, where + "header entry is not an object");
        JsonNode dt = n.get("dtype"), sh = n.get("shape"), off = n.get("data_offsets");
        if (dt == null || !dt.isTextual()) throw CheckpointException.of(path, where + "missing dtype");
        int esize = TensorInfo.dtypeSize(dt.asText());
        if (esize < 0) throw CheckpointException.of(path, where + "unknown dtype " + dt.asText());
        if (sh == null || !sh.isArray()) throw CheckpointException.of(path, where + "missing shape");
        long[] shape = new long[sh.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) {
                throw CheckpointException.of(path, where + "bad shape " + sh);
            }
            shape[i] = d.asLong();
            try {
                elements = Math.multiplyExact(elements, shape[i]);
            } catch (ArithmeticException ex) {
                throw CheckpointException.of(path, where + "shape " + sh + " overflows");
            }
        }
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber() || !off.get(1).isIntegralNumber()
                || !off.get(0).canConvertToLong() || !off.get(1).canConvertToLong()) {
            throw CheckpointException.of(path, where + "missing or malformed data_offsets");
        }
        long b = off.get(0).asLong(), e = off.get(1).asLong();
        if (b < 0 || e < b || e > dataLen) {
            throw CheckpointException.of(path, where + "data_offsets [" + b + ", " + e + "] lie outside the data area of "
                    + dataLen + " bytes (file truncated or header corrupt)");
        }
        long expect;
        try {
            expect = Math.multiplyExact(elements, esize);
        } catch (ArithmeticException ex) {
            throw CheckpointException.of(path, where + "shape " + sh + " × " + esize + " bytes overflows");
        }
        if (e - b != expect) {
            throw CheckpointException.of(path, where + "data_offsets span " + (e - b) + " bytes but dtype " + dt.asText()
                    + " × shape " + sh + " needs " + expect);
        }
        return new TensorInfo(name, dt.asText(), shape, path, dataStart + b, e - b);
    }

    /** Tensors may not share bytes (the format requires disjoint ranges). */
    private void checkNoOverlaps() {
        TensorInfo[] byBegin = tensors.values().stream().filter(t -> t.length() > 0)
                .sorted(java.util.Comparator.comparingLong(TensorInfo::begin)).toArray(TensorInfo[]::new);
        for (int i = 1; i < byBegin.length; i++) {
            TensorInfo prev = byBegin[i - 1], t = byBegin[i];
            if (t.begin() < prev.begin() + prev.length()) {
                throw CheckpointException.of(path, "tensor " + t.name() + ": data_offsets overlap those of tensor " + prev.name()
                        + " (header corrupt)");
            }
        }
    }

    private void readFully(ByteBuffer dst, long pos) throws IOException {
        while (dst.hasRemaining()) {
            int r = channel.read(dst, pos);
            if (r < 0) throw CheckpointException.of(path, "unexpected end of file");
            pos += r;
        }
    }

    public Path path() { return path; }

    public Map<String, TensorInfo> tensors() { return tensors; }

    /** Maps one tensor's bytes read-only, little-endian. */
    public ByteBuffer map(TensorInfo t) {
        if (t.length() > Integer.MAX_VALUE) {
            throw CheckpointException.of(path, "tensor " + t.name() + " is " + t.length() + " bytes; tensors over 2 GiB are not supported");
        }
        try {
            if (t.length() == 0) return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);
            MappedByteBuffer m = channel.map(FileChannel.MapMode.READ_ONLY, t.begin(), t.length());
            return m.order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw CheckpointException.of(path, "cannot map tensor " + t.name() + ": " + e.getMessage());
        }
    }

    private void closeQuietly() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing to do
        }
    }

    @Override
    public void close() {
        closeQuietly();
    }
}
