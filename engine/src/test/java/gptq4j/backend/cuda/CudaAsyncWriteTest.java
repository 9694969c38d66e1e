package gptq4j.backend.cuda;

import gptq4j.backend.Buf;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Host-to-device writes through the pinned staging buffer (CudaDriver.ASYNC_WRITES): each write lands before the
 * launches queued after it and after those queued before it, the caller may reuse its array as soon as write returns,
 * and the staging space is recycled (more bytes written between two read-backs than it holds); writes larger than
 * the staging buffer go synchronously. And reads through the pinned read buffer.
 */
class CudaAsyncWriteTest {

    @Test
    void writesAreOrderedWithLaunchesAndOwnTheirBytes() {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        int n = 1000 + r.nextInt(100), rounds = 3 * (int) (CudaDriver.STAGE_BYTES / (4L * n)) + 7;
        Buf acc = be.allocFloats(n), tmp = be.allocFloats(n);
        float[] want = new float[n], src = new float[n];
        for (int i = 0; i < rounds; i++) {
            for (int j = 0; j < n; j++) src[j] = (float) r.nextGaussian();
            be.write(tmp, src, n);
            be.add(acc, tmp, n);                                    // acc += tmp, after this write, before the next
            for (int j = 0; j < n; j++) want[j] += src[j];
            Arrays.fill(src, Float.NaN);                            // the write took its own copy
        }
        float[] got = new float[n];
        be.read(acc, 0, got, n);
        assertArrayEquals(want, got, "the sum of " + rounds + " written vectors");

        // ints: one write under the staging size, one over it (synchronous), read back after both
        int small = 1 + r.nextInt(5000), large = (int) (CudaDriver.STAGE_BYTES / 4) + 1 + r.nextInt(1000);
        int[] a = r.ints(small).toArray(), b = r.ints(large).toArray();
        Buf ba = be.allocInts(small), bb = be.allocInts(large);
        int[] ca = a.clone(), cb = b.clone();
        be.write(ba, ca, small);
        Arrays.fill(ca, -1);
        be.write(bb, cb, large);
        Arrays.fill(cb, -1);
        int[] ga = new int[small], gb = new int[large];
        be.readInts(ba, 0, ga, small);
        be.readInts(bb, 0, gb, large);
        assertArrayEquals(a, ga, "ints under the staging size");
        assertArrayEquals(b, gb, "ints over the staging size");
        for (Buf x : new Buf[]{acc, tmp, ba, bb}) be.free(x);
    }

    /**
     * Reads through the pinned buffer (CudaDriver.PINNED_READS, on here whatever the default) return what was
     * written, bit for bit: under its minimum size (pageable), one piece copied out by one thread, by several, and
     * more than one piece; at an offset into the device buffer too.
     */
    @Test
    void pinnedReadsReturnTheWrittenValues() {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        try {
            be.pinnedReads(true);
            int[] sizes = {1000 + r.nextInt(1000), (int) (CudaDriver.PINNED_READ_MIN / 4) + r.nextInt(10_000),
                    5_000_000 + r.nextInt(10_000), (int) (CudaDriver.PINNED_READ_MAX / 4) + 1_000_000 + r.nextInt(10_000)};
            for (int n : sizes) {
                float[] a = new float[n];
                for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
                Buf b = be.allocFloats(n);
                be.write(b, a, n);
                float[] got = new float[n];
                be.read(b, 0, got, n);
                assertArrayEquals(a, got, n + " floats");
                int off = 1 + r.nextInt(100);
                float[] part = new float[n - off];
                be.read(b, off, part, n - off);
                assertArrayEquals(Arrays.copyOfRange(a, off, n), part, (n - off) + " floats at offset " + off);
                be.free(b);
            }
        } finally {
            be.pinnedReads(CudaDriver.PINNED_READS);
        }
    }
}
