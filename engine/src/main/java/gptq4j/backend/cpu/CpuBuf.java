package gptq4j.backend.cpu;

import gptq4j.backend.Buf;

/** A heap buffer of the CPU backends: floats or ints. */
final class CpuBuf implements Buf {
    final float[] f;
    final int[] i;

    private CpuBuf(float[] f, int[] i) {
        this.f = f;
        this.i = i;
    }

    static CpuBuf floats(long n) {
        return new CpuBuf(new float[Math.toIntExact(n)], null);
    }

    static CpuBuf ints(long n) {
        return new CpuBuf(null, new int[Math.toIntExact(n)]);
    }

    @Override
    public long length() {
        return f != null ? f.length : i.length;
    }

    static float[] f(Buf b) {
        return ((CpuBuf) b).f;
    }

    static int[] i(Buf b) {
        return ((CpuBuf) b).i;
    }
}
