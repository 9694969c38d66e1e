package gptq4j.backend.cuda;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPU bench's centred codes (bench --zeros centered, kernel centre_codes): against the same seed's uniform codes,
 * every field of the tensor-core layout that held 0 holds the zero point 2^(bits-1) and every other field is
 * unchanged, so the codes' mean is the zero point (the uniform codes' is half a step below it).
 */
class CudaSyntheticWeightsTest {

    @ParameterizedTest(name = "{0}-bit")
    @ValueSource(ints = {2, 3, 4, 8})
    void centredCodesReplaceZeroFieldsByTheZeroPoint(int bits) {
        CudaBackend be = CudaTestSupport.backend();
        long seed = new Random().nextLong() & 0xFFFFFFFFL;
        int in = 4096, out = 1024, z = 1 << (bits - 1);
        int[] uniform = be.packedWords(be.syntheticLinear("synthetic.uniform.b" + bits, in, out, bits, 128, true, true, false, seed));
        int[] centred = be.packedWords(be.syntheticLinear("synthetic.centred.b" + bits, in, out, bits, 128, true, true, true, seed));
        assertEquals(uniform.length, centred.length);
        int[] a = fields(uniform, bits), c = fields(centred, bits);
        assertEquals((long) in * out, a.length, "fields in the packed layout");
        long zeros = 0;
        double sumA = 0, sumC = 0;
        for (int i = 0; i < a.length; i++) {
            if (a[i] == 0) zeros++;
            assertEquals(a[i] == 0 ? z : a[i], c[i], "field " + i);
            sumA += a[i];
            sumC += c[i];
        }
        assertTrue(zeros > a.length / (2 << bits), "the uniform codes hold zeros: " + zeros);
        // five standard errors of a mean of a.length uniform codes (the centred codes' spread is a little smaller);
        // 8-bit: 0.18 against the 0.5 the two means are apart
        double tol = 5 * Math.sqrt(((1L << 2 * bits) - 1) / 12.0 / a.length);
        double meanA = sumA / a.length, meanC = sumC / c.length;
        assertEquals(z - 0.5, meanA, tol, "uniform codes' mean");
        assertEquals(z, meanC, tol, "centred codes' mean");
    }

    /** The codes of the tensor-core layout in one array (gq_mma.cu's fields; 3-bit: word triples 32 apart). */
    static int[] fields(int[] w, int bits) {
        int mask = (1 << bits) - 1;
        if (bits != 3) {
            int per = 32 / bits;
            int[] f = new int[w.length * per];
            for (int i = 0; i < w.length; i++) {
                for (int j = 0; j < per; j++) f[i * per + j] = (w[i] >>> (bits * j)) & mask;
            }
            return f;
        }
        int[] f = new int[w.length / 3 * 32];
        int k = 0;
        for (int t = 0; t < w.length / 3; t++) {
            int base = (t >> 5) * 96 + (t & 31);
            int[] x = {w[base], w[base + 32], w[base + 64]};
            for (int h = 0; h < 32; h += 16) {
                for (int b = 0; b < 3; b++) {
                    for (int s = h; s < h + 15; s += 3) f[k++] = (x[b] >>> s) & 7;
                }
                f[k++] = ((x[0] >>> (h + 15)) & 1) | ((x[1] >>> (h + 15)) & 1) << 1 | ((x[2] >>> (h + 15)) & 1) << 2;
            }
        }
        return f;
    }
}
