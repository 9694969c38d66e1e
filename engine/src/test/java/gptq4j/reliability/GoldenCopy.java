package gptq4j.reliability;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import gptq4j.testing.Fixtures;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * One golden fixture, read once: its file names, each shard's header, and helpers that make a checkpoint
 * directory of symbolic links to the golden files in which single files can be replaced by mutated copies
 * (the 16 MB shard is only rewritten when a mutation touches it).
 */
final class GoldenCopy {
    static final ObjectMapper JSON = new ObjectMapper();

    final String name;
    final Path dir;
    final List<String> files = new ArrayList<>();
    final List<String> shards = new ArrayList<>();
    final Map<String, ObjectNode> headers = new LinkedHashMap<>();
    final Map<String, Long> headerLength = new LinkedHashMap<>();
    final Map<String, Long> size = new LinkedHashMap<>();
    private ObjectNode tokenizer;
    private final Map<String, String> stamp = new LinkedHashMap<>();

    GoldenCopy(String model) {
        this.name = model;
        this.dir = Fixtures.model(model);
        try (Stream<Path> s = Files.list(dir)) {
            s.map(p -> p.getFileName().toString()).sorted().forEach(files::add);
            for (String f : files) {
                if (!f.endsWith(".safetensors")) continue;
                shards.add(f);
                Path p = dir.resolve(f);
                size.put(f, Files.size(p));
                try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
                    ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                    ch.read(len, 0);
                    long n = len.flip().getLong();
                    ByteBuffer h = ByteBuffer.allocate((int) n);
                    ch.read(h, 8);
                    headerLength.put(f, n);
                    headers.put(f, (ObjectNode) JSON.readTree(new String(h.array(), StandardCharsets.UTF_8)));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        for (String f : files) stamp.put(f, stampOf(f));
        if (shards.size() != 2 || !files.contains("model.safetensors.index.json") || !files.contains("tokenizer.json")) {
            throw new AssertionError(dir + " is not the two-shard fixture this test expects: " + files);
        }
    }

    private String stampOf(String f) {
        try {
            Path p = dir.resolve(f);
            return Files.size(p) + "@" + Files.getLastModifiedTime(p).toMillis();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The golden files still have the size and modification time they had when read: mutations replace links,
     * never write through them (tests may run as root, for whom read-only files are writable).
     */
    void assertUntouched() {
        for (String f : files) {
            if (!stamp.get(f).equals(stampOf(f))) {
                throw new AssertionError("golden fixture file " + dir.resolve(f) + " was modified during the test: "
                        + stamp.get(f) + " -> " + stampOf(f));
            }
        }
    }

    /** A fresh directory {@code target} of links to every golden file. */
    void linkInto(Path target) throws IOException {
        Files.createDirectories(target);
        for (String f : files) Files.createSymbolicLink(target.resolve(f), dir.resolve(f));
    }

    ObjectNode header(String shard) {
        return headers.get(shard).deepCopy();
    }

    ObjectNode json(String file) {
        try {
            return (ObjectNode) JSON.readTree(dir.resolve(file).toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    synchronized ObjectNode tokenizer() {
        if (tokenizer == null) tokenizer = json("tokenizer.json");
        return tokenizer.deepCopy();
    }

    byte[] bytes(String file) throws IOException {
        return Files.readAllBytes(dir.resolve(file));
    }

    /** Replaces {@code target/file} (a link) by the given bytes. */
    static void write(Path target, String file, byte[] content) throws IOException {
        Path p = target.resolve(file);
        Files.deleteIfExists(p);
        Files.write(p, content);
    }

    static void writeJson(Path target, String file, JsonNode n) throws IOException {
        write(target, file, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(n));
    }

    /**
     * Replaces a shard by one with the given 8-byte length field and header bytes, followed by the golden
     * shard's data area unchanged.
     */
    void writeShard(Path target, String shard, long lengthField, byte[] header) throws IOException {
        Path p = target.resolve(shard);
        Files.deleteIfExists(p);
        try (FileChannel out = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
             FileChannel in = FileChannel.open(dir.resolve(shard), StandardOpenOption.READ)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(lengthField);
            out.write(len.flip());
            out.write(ByteBuffer.wrap(header));
            long from = 8 + headerLength.get(shard), n = size.get(shard) - from;
            long done = 0;
            while (done < n) done += in.transferTo(from + done, n - done, out);
        }
    }

    /** Replaces a shard by one whose header is {@code header} serialised (length field consistent). */
    void writeShard(Path target, String shard, JsonNode header) throws IOException {
        byte[] h = JSON.writeValueAsBytes(header);
        writeShard(target, shard, h.length, h);
    }

    /** Copies the first {@code length} bytes of a golden file. */
    void writeTruncated(Path target, String file, long length) throws IOException {
        Path p = target.resolve(file);
        Files.deleteIfExists(p);
        try (FileChannel out = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
             FileChannel in = FileChannel.open(dir.resolve(file), StandardOpenOption.READ)) {
            long done = 0;
            while (done < length) done += in.transferTo(done, length - done, out);
        }
    }
}
