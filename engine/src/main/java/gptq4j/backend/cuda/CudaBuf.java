package gptq4j.backend.cuda;

import gptq4j.backend.Buf;
import jcuda.driver.CUdeviceptr;

/** A device buffer of 4-byte elements (float32 or int32). */
final class CudaBuf implements Buf {
    final CUdeviceptr ptr;
    final long length;
    final boolean ints;
    boolean freed;

    CudaBuf(CUdeviceptr ptr, long length, boolean ints) {
        this.ptr = ptr;
        this.length = length;
        this.ints = ints;
    }

    @Override
    public long length() { return length; }

    /** Pointer to element {@code i}. */
    CUdeviceptr at(long i) { return i == 0 ? ptr : ptr.withByteOffset(i * 4); }

    static CudaBuf of(Buf b) {
        if (b instanceof CudaBuf c) {
            if (c.freed) throw new IllegalStateException("CUDA buffer used after free");
            return c;
        }
        throw new IllegalArgumentException("expected a buffer of the CUDA backend, got "
                + (b == null ? "null" : b.getClass().getName()));
    }

    @Override
    public String toString() { return (ints ? "int" : "float") + "[" + length + "]@cuda"; }
}
