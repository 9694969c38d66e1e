package gptq4j.backend.cuda;

import gptq4j.backend.KvCache;
import jcuda.driver.CUdeviceptr;

/**
 * The paged KV cache in device memory, float32 (default) or fp16: one allocation laid out
 * [layers][K|V][blocks*blockSize][kvHeads*headDim].
 */
final class CudaKvCache implements KvCache {
    private final CudaBackend owner;
    final CUdeviceptr data;
    final int layers;
    final int blocks;
    final int blockSize;
    final int kvHeads;
    final int headDim;
    /** Bytes per stored element: 4 (float32) or 2 (fp16). */
    final int elemBytes;
    private boolean closed;

    CudaKvCache(CudaBackend owner, CUdeviceptr data, int layers, int blocks, int blockSize, int kvHeads, int headDim,
                int elemBytes) {
        this.elemBytes = elemBytes;
        this.owner = owner;
        this.data = data;
        this.layers = layers;
        this.blocks = blocks;
        this.blockSize = blockSize;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
    }

    /** Bytes for a cache of this shape. */
    static long bytes(int layers, int blocks, int blockSize, int kvHeads, int headDim, int elemBytes) {
        return (long) elemBytes * layers * 2L * blocks * blockSize * kvHeads * headDim;
    }

    /** Kernel name suffix for this storage type. */
    String suffix() { return elemBytes == 2 ? "f16" : "f32"; }

    /** Elements in one layer's K (or V) plane. */
    long planeElems() { return (long) blocks * blockSize * kvHeads * headDim; }

    CUdeviceptr keys(int layer) { return data.withByteOffset(elemBytes * (2L * layer) * planeElems()); }

    CUdeviceptr values(int layer) { return data.withByteOffset(elemBytes * (2L * layer + 1) * planeElems()); }

    @Override
    public int blocks() { return blocks; }

    @Override
    public int blockSize() { return blockSize; }

    @Override
    public void copyBlock(int from, int to) {
        if (from < 0 || from >= blocks || to < 0 || to >= blocks) {
            throw new IndexOutOfBoundsException("KV block copy " + from + " -> " + to + " outside [0," + blocks + ")");
        }
        owner.copyKvBlock(this, from, to);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        owner.releaseCache(this);
    }
}
