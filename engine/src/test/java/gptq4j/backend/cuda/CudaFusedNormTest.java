package gptq4j.backend.cuda;

import gptq4j.backend.Buf;
import gptq4j.loader.HalfMatrix;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The RMSNorm fused into the product's input pass (Backend.rmsNormLinear: gq_mma_prep normalises its own input)
 * against rms_norm then linear, bit for bit in both outputs: the normalised rows and the product.
 */
class CudaFusedNormTest {

    @ParameterizedTest(name = "{0}-bit in {1} out {2}")
    @CsvSource({"4,1024,256", "3,1024,256", "8,512,256", "4,4096,512"})
    void rmsNormLinearEqualsNormThenLinear(int bits, int in, int out) {
        CudaBackend be = CudaTestSupport.backend();
        Random r = new Random();
        Object w = be.prepareLinear(CudaTestSupport.randomGptq(r, "fn.b" + bits + "." + in, in, out, bits, 128, true, false));
        HalfMatrix nw = CudaSmallOpsTest.randomHalf(r, "fn.norm", 1, in, 1.0);
        Object np = be.prepareDense(nw);
        for (int T : new int[]{1, 5, 70}) {
            float[] x = CudaTestSupport.gaussian(r, T * in, 3.0);
            Buf xb = CudaSmallOpsTest.upload(be, x);
            Buf xnF = be.allocFloats((long) T * in), xnP = be.allocFloats((long) T * in);
            Buf yF = be.allocFloats((long) T * out), yP = be.allocFloats((long) T * out);
            be.rmsNormLinear(xb, np, 1e-5f, T, in, xnF, w, yF);
            be.rmsNorm(xb, np, 1e-5f, T, in, xnP);
            be.linear(w, xnP, T, yP);
            float[] a = CudaSmallOpsTest.run(be, yF, T * out), b = CudaSmallOpsTest.run(be, yP, T * out);
            assertTrue(CudaTestSupport.allFinite(a), "non-finite output, T=" + T);
            assertArrayEquals(CudaSmallOpsTest.run(be, xnP, T * in), CudaSmallOpsTest.run(be, xnF, T * in),
                    bits + "-bit T=" + T + ": normalised input");
            assertArrayEquals(b, a, bits + "-bit T=" + T + ": rmsNormLinear differs from rmsNorm + linear");
            assertArrayEquals(x, CudaSmallOpsTest.run(be, xb, T * in), "x must be left as it was");
            for (Buf bb : new Buf[]{xb, xnF, xnP, yF, yP}) be.free(bb);
        }
    }
}
