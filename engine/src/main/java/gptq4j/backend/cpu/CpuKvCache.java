package gptq4j.backend.cpu;

import gptq4j.backend.KvCache;

/** Paged KV cache on the heap: per layer, K and V as [blocks*blockSize][kvHeads*headDim] floats. */
final class CpuKvCache implements KvCache {
    final int blocks;
    final int blockSize;
    final int width;     // kvHeads * headDim
    final int kvHeads;
    final int headDim;
    final float[][] k;   // [layer][slot * width + j]
    final float[][] v;

    CpuKvCache(int layers, int blocks, int blockSize, int kvHeads, int headDim) {
        this.blocks = blocks;
        this.blockSize = blockSize;
        this.width = kvHeads * headDim;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        long perLayer = (long) blocks * blockSize * width;
        if (perLayer > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("KV cache of " + blocks + " blocks is too large for one heap array per layer ("
                    + perLayer + " floats); lower the KV-cache memory");
        }
        k = new float[layers][(int) perLayer];
        v = new float[layers][(int) perLayer];
    }

    @Override
    public int blocks() { return blocks; }

    @Override
    public int blockSize() { return blockSize; }

    @Override
    public void copyBlock(int from, int to) {
        int n = blockSize * width;
        for (int l = 0; l < k.length; l++) {
            System.arraycopy(k[l], from * n, k[l], to * n, n);
            System.arraycopy(v[l], from * n, v[l], to * n, n);
        }
    }

    @Override
    public void close() {
        // heap memory: released with the object
    }
}
