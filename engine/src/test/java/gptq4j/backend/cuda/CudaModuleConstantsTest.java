package gptq4j.backend.cuda;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CudaBackend's copies of the module's macros and of its kernels' dynamic shared memory sizes agree with the shipped
 * module: host_constants.cu exports each as a device global gptq4j_k_NAME, whose initial value this test reads from
 * the symbol tables of the fatbin's cubins (ELF; every architecture in it) and compares with the Java value. Runs
 * without a GPU. A value exported without a comparison here fails too, so a new export needs its check.
 */
class CudaModuleConstantsTest {

    private static final String PREFIX = "gptq4j_k_";

    /** The Java side of every export. */
    private static Map<String, Integer> expected() {
        Map<String, Integer> m = new TreeMap<>();
        m.put("gw_tiles", CudaBackend.WG_TILES);
        m.put("gw_rows", CudaBackend.WG_ROWS);
        m.put("gw_stages", CudaBackend.WG_STAGES);
        m.put("gw_tiles_b16", CudaBackend.wgmmaTiles(16));
        for (int bits : new int[] {2, 3, 4, 16}) m.put("gw_smem_b" + bits, CudaBackend.wgmmaSharedBytes(bits));
        m.put("gv_warps", CudaBackend.MMV_WARPS);
        m.put("gv_slots", CudaBackend.MMV_SLOTS);
        m.put("gv_tiles", CudaBackend.MMV_TILES);
        m.put("gv_tiles_b8", CudaBackend.MMV_TILES_8);
        for (int bits : new int[] {2, 3, 4, 8}) m.put("gv_smem_b" + bits, CudaBackend.mmvSharedBytes(bits));
        m.put("gv_smem_b4_t1", CudaBackend.mmvSharedBytes(4, 1));
        m.put("gm_warps", CudaBackend.MMA_WARPS);
        m.put("gm_pad", CudaBackend.MMA_PAD);
        m.put("gm_stages", CudaBackend.MMA_STAGES);
        m.put("rr_rows", CudaBackend.ROUTE_ROWS);
        m.put("rr_cols", CudaBackend.ROUTE_COLS);
        m.put("att_pipe_f32", CudaBackend.attPipeBytes(false));
        m.put("att_pipe_f16", CudaBackend.attPipeBytes(true));
        return m;
    }

    @Test
    void hostConstantsMatchTheModule() throws IOException {
        byte[] fatbin;
        try (InputStream in = CudaModuleConstantsTest.class.getResourceAsStream(CudaDriver.MODULE_RESOURCE)) {
            assertNotNull(in, CudaDriver.MODULE_RESOURCE + " missing: run bin/build-cuda");
            fatbin = in.readAllBytes();
        }
        List<Map<String, Integer>> images = exports(fatbin);
        assertTrue(images.size() >= 2, "expected the sm_80 and sm_90a cubins in the fatbin, found " + images.size());
        Map<String, Integer> want = expected();
        for (int i = 0; i < images.size(); i++) {
            assertEquals(want, images.get(i), "cubin " + i + " of the fatbin: host_constants.cu's exports against CudaBackend"
                    + " (a macro changed on one side only, or an export without its check here)");
        }
    }

    /** The gptq4j_k_* symbols and their int values of every 64-bit little-endian ELF image in the fatbin. */
    static List<Map<String, Integer>> exports(byte[] fatbin) {
        ByteBuffer b = ByteBuffer.wrap(fatbin).order(ByteOrder.LITTLE_ENDIAN);
        List<Map<String, Integer>> out = new ArrayList<>();
        for (int at = 0; at + 64 <= fatbin.length; at++) {
            if (fatbin[at] != 0x7F || fatbin[at + 1] != 'E' || fatbin[at + 2] != 'L' || fatbin[at + 3] != 'F'
                    || fatbin[at + 4] != 2 || fatbin[at + 5] != 1) continue;
            long shoff = b.getLong(at + 0x28);
            int shentsize = Short.toUnsignedInt(b.getShort(at + 0x3A)), shnum = Short.toUnsignedInt(b.getShort(at + 0x3C));
            assertTrue(shentsize == 64 && shoff > 0 && at + shoff + (long) shnum * shentsize <= fatbin.length,
                    "malformed ELF image at byte " + at + " of the fatbin");
            Map<String, Integer> syms = new TreeMap<>();
            for (int s = 0; s < shnum; s++) {
                int sh = (int) (at + shoff + (long) s * shentsize);
                if (b.getInt(sh + 4) != 2) continue;                       // SHT_SYMTAB
                long symoff = b.getLong(sh + 0x18), symsize = b.getLong(sh + 0x20);
                int strsec = (int) (at + shoff + (long) b.getInt(sh + 0x28) * shentsize);
                long stroff = b.getLong(strsec + 0x18);
                for (long k = 0; k < symsize / 24; k++) {
                    int sym = (int) (at + symoff + k * 24);
                    String name = cstring(fatbin, (int) (at + stroff + Integer.toUnsignedLong(b.getInt(sym))));
                    if (!name.startsWith(PREFIX)) continue;
                    int shndx = Short.toUnsignedInt(b.getShort(sym + 6));
                    long value = b.getLong(sym + 8), size = b.getLong(sym + 16);
                    assertEquals(4, size, name + ": one int");
                    int sec = (int) (at + shoff + (long) shndx * shentsize);
                    assertEquals(1, b.getInt(sec + 4), name + " must have an initial value (SHT_PROGBITS)");
                    syms.put(name.substring(PREFIX.length()), b.getInt((int) (at + b.getLong(sec + 0x18) + value)));
                }
            }
            out.add(syms);
        }
        return out;
    }

    private static String cstring(byte[] a, int from) {
        int end = from;
        while (a[end] != 0) end++;
        return new String(a, from, end - from, StandardCharsets.US_ASCII);
    }
}
