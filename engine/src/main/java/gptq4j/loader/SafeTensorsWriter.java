package gptq4j.loader;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Writes a safetensors file: tensors are declared first (name, dtype, shape, a filler that writes the
 * little-endian bytes), then streamed one by one, so files larger than memory can be written.
 */
public final class SafeTensorsWriter {
    private record Entry(String name, String dtype, long[] shape, long bytes, Consumer<ByteBuffer> fill) { }

    private final List<Entry> entries = new ArrayList<>();

    /** Declares a tensor; {@code fill} receives a little-endian buffer of exactly its size to fill. */
    public SafeTensorsWriter add(String name, String dtype, long[] shape, Consumer<ByteBuffer> fill) {
        long n = TensorInfo.dtypeSize(dtype);
        for (long d : shape) n *= d;
        entries.add(new Entry(name, dtype, shape.clone(), n, fill));
        return this;
    }

    public long totalBytes() {
        long t = 0;
        for (Entry e : entries) t += e.bytes;
        return t;
    }

    public List<String> names() {
        return entries.stream().map(Entry::name).toList();
    }

    public void write(Path file) throws IOException {
        ObjectNode header = new ObjectMapper().createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long off = 0;
        for (Entry e : entries) {
            ObjectNode t = header.putObject(e.name);
            t.put("dtype", e.dtype);
            var s = t.putArray("shape");
            for (long d : e.shape) s.add(d);
            t.putArray("data_offsets").add(off).add(off + e.bytes);
            off += e.bytes;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int pad = (8 - json.length % 8) % 8;
        ByteBuffer head = ByteBuffer.allocate(8 + json.length + pad).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(json.length + pad).put(json);
        for (int i = 0; i < pad; i++) head.put((byte) ' ');
        head.flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            while (head.hasRemaining()) ch.write(head);
            for (Entry e : entries) {
                ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(e.bytes)).order(ByteOrder.LITTLE_ENDIAN);
                e.fill.accept(b);
                if (b.position() != 0 && b.position() != b.capacity()) {
                    throw new IllegalStateException("tensor " + e.name + ": filler wrote " + b.position() + " of " + e.bytes + " bytes");
                }
                b.clear();
                while (b.hasRemaining()) ch.write(b);
            }
        }
    }
}
