package gptq4j.backend.cpu;

import gptq4j.backend.AttentionBatch;
import gptq4j.backend.Backend;
import gptq4j.backend.Buf;
import gptq4j.backend.KvCache;
import gptq4j.loader.HalfMatrix;
import gptq4j.quant.gptq.GptqLinear;

import java.util.function.IntConsumer;

/**
 * The CPU backend: float32 activations on the heap, work split across a fixed pool of threads. Every
 * (token, output) value is computed by one thread with a fixed accumulation order, so results do not
 * depend on the batch or the thread count.
 */
public final class CpuBackend implements Backend {
    private final Parallel parallel;
    private final int threads;
    private final String name;
    private final GptqKernel gptq;
    private final DenseKernel dense;
    private final HalfDenseKernel halfDense;

    /** Matrices with at least this many rows (embeddings, lm_head) stay fp16 ({@link HalfDense}); smaller ones float32. */
    static final int HALF_DENSE_MIN_ROWS = 1024;

    private final boolean vector;

    /**
     * @param threads worker threads; 0 = available processors
     * @param vector  use the Vector API kernels (see {@link #vectorUnavailable()})
     */
    public CpuBackend(int threads, boolean vector) {
        this.threads = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        this.parallel = new Parallel(this.threads);
        this.vector = vector;
        this.gptq = vector ? Kernels.vectorGptq(parallel) : Kernels.scalarGptq(parallel);
        this.dense = vector ? Kernels.vectorDense(parallel) : Kernels.scalarDense(parallel);
        this.halfDense = vector ? Kernels.vectorHalfDense(parallel) : Kernels.scalarHalfDense(parallel);
        this.name = vector ? "cpu-vector" : "cpu-scalar";
    }

    /** Null when the Vector API kernels can run in this JVM, else why not. */
    public static String vectorUnavailable() {
        return Kernels.vectorAvailable() ? null : Kernels.vectorUnavailableReason();
    }

    @Override
    public String name() { return name; }

    public int threads() { return threads; }

    private void parallelFor(int n, IntConsumer body) {
        parallel.parallelFor(n, 1, (from, to) -> {
            for (int i = from; i < to; i++) body.accept(i);
        });
    }

    // ---- memory ----

    @Override
    public Buf allocFloats(long n) { return CpuBuf.floats(n); }

    @Override
    public Buf allocInts(long n) { return CpuBuf.ints(n); }

    @Override
    public void write(Buf dst, int[] src, int n) { System.arraycopy(src, 0, CpuBuf.i(dst), 0, n); }

    @Override
    public void write(Buf dst, float[] src, int n) { System.arraycopy(src, 0, CpuBuf.f(dst), 0, n); }

    @Override
    public void read(Buf src, long offset, float[] dst, int n) {
        System.arraycopy(CpuBuf.f(src), Math.toIntExact(offset), dst, 0, n);
    }

    @Override
    public void readInts(Buf src, long offset, int[] dst, int n) {
        System.arraycopy(CpuBuf.i(src), Math.toIntExact(offset), dst, 0, n);
    }

    // ---- weights ----

    @Override
    public Object prepareLinear(GptqLinear w) { return PackedGptq.pack(w, gptq.lanes()); }

    /**
     * Large fp16 matrices (embeddings, lm_head: {@value #HALF_DENSE_MIN_ROWS} rows or more) stay fp16 and are
     * converted in the kernel, halving the bytes a decode step reads; the rest (norms, router) and non-F16 or
     * non-finite matrices are converted to float32 once.
     */
    @Override
    public Object prepareDense(HalfMatrix m) {
        if (m.rows() >= HALF_DENSE_MIN_ROWS) {
            HalfDense h = HalfDense.ofF16(m, Kernels.preferredLanes());
            if (h != null) return h;
        }
        return DenseMatrix.of(m);
    }

    @Override
    public KvCache allocKvCache(int layers, int blocks, int blockSize, int kvHeads, int headDim) {
        return new CpuKvCache(layers, blocks, blockSize, kvHeads, headDim);
    }

    // ---- operations ----

    @Override
    public void embed(Object table, Buf tokens, int T, Buf out) {
        int[] tok = CpuBuf.i(tokens);
        float[] o = CpuBuf.f(out);
        int rows = table instanceof HalfDense h ? h.rows() : ((DenseMatrix) table).rows();
        for (int t = 0; t < T; t++) {
            int id = tok[t];
            if (id < 0 || id >= rows) throw new IllegalArgumentException("token id " + id + " outside the vocabulary of " + rows);
            if (table instanceof HalfDense h) h.row(id, o, t * h.cols());
            else ((DenseMatrix) table).row(id, o, t * ((DenseMatrix) table).cols());
        }
    }

    @Override
    public void rmsNorm(Buf xb, Object weight, float eps, int T, int dim, Buf outb) {
        float[] x = CpuBuf.f(xb), out = CpuBuf.f(outb);
        DenseMatrix w = (DenseMatrix) weight;
        for (int t = 0; t < T; t++) {
            int b = t * dim;
            float ss = 0;
            for (int i = 0; i < dim; i++) ss += x[b + i] * x[b + i];
            float r = (float) (1.0 / Math.sqrt(ss / dim + eps));
            for (int i = 0; i < dim; i++) out[b + i] = w.get(0, i) * (x[b + i] * r);
        }
    }

    @Override
    public void linear(Object w, Buf x, int T, Buf out) {
        gptq.matmul((PackedGptq) w, CpuBuf.f(x), 0, T, CpuBuf.f(out), 0);
    }

    /** out[t][r] = Σ_c M[r][c] x[t][c]. */
    @Override
    public void dense(Object m, Buf x, int T, Buf out) {
        if (m instanceof HalfDense h) halfDense.matmul(h, CpuBuf.f(x), 0, T, CpuBuf.f(out), 0);
        else dense.matmul((DenseMatrix) m, CpuBuf.f(x), 0, T, CpuBuf.f(out), 0);
    }

    @Override
    public void gatherRows(Buf x, Buf rows, int R, int dim, Buf out) {
        float[] xa = CpuBuf.f(x), o = CpuBuf.f(out);
        int[] r = CpuBuf.i(rows);
        for (int i = 0; i < R; i++) System.arraycopy(xa, r[i] * dim, o, i * dim, dim);
    }

    @Override
    public void add(Buf x, Buf y, long n) {
        float[] a = CpuBuf.f(x), b = CpuBuf.f(y);
        for (int i = 0; i < n; i++) a[i] += b[i];
    }

    @Override
    public void argmaxRows(Buf x, int R, int dim, Buf out) {
        float[] a = CpuBuf.f(x);
        int[] o = CpuBuf.i(out);
        for (int r = 0; r < R; r++) {
            int base = r * dim, best = 0;
            float bv = a[base];
            boolean bad = false;
            for (int i = 0; i < dim; i++) {
                float v = a[base + i];
                if (Float.isNaN(v) || v == Float.POSITIVE_INFINITY) {
                    bad = true;
                    break;
                }
                if (v > bv) {
                    bv = v;
                    best = i;
                }
            }
            o[r] = bad ? -1 : best;
        }
    }

    @Override
    public void rope(Buf qb, Buf kb, Buf positions, int T, int heads, int kvHeads, int headDim, double theta) {
        float[] q = CpuBuf.f(qb), k = CpuBuf.f(kb);
        int[] pos = CpuBuf.i(positions);
        int half = headDim / 2;
        float[] cos = new float[half], sin = new float[half];
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < half; i++) {
                // transformers: inv_freq in float32, angle = pos * inv_freq in float32
                float invFreq = (float) (1.0 / Math.pow(theta, (2.0 * i) / headDim));
                float ang = pos[t] * invFreq;
                cos[i] = (float) Math.cos(ang);
                sin[i] = (float) Math.sin(ang);
            }
            rotate(q, t * heads * headDim, heads, headDim, cos, sin);
            rotate(k, t * kvHeads * headDim, kvHeads, headDim, cos, sin);
        }
    }

    private static void rotate(float[] v, int base, int nHeads, int headDim, float[] cos, float[] sin) {
        int half = headDim / 2;
        for (int h = 0; h < nHeads; h++) {
            int b = base + h * headDim;
            for (int i = 0; i < half; i++) {
                float a = v[b + i], c = v[b + i + half];
                v[b + i] = a * cos[i] - c * sin[i];
                v[b + i + half] = c * cos[i] + a * sin[i];
            }
        }
    }

    @Override
    public void attention(KvCache cacheObj, int layer, Buf qb, Buf kb, Buf vb, AttentionBatch m, Buf outb) {
        CpuKvCache cache = (CpuKvCache) cacheObj;
        float[] q = CpuBuf.f(qb), k = CpuBuf.f(kb), v = CpuBuf.f(vb), out = CpuBuf.f(outb);
        float[] kc = cache.k[layer], vc = cache.v[layer];
        int[] slots = CpuBuf.i(m.slots()), pos = CpuBuf.i(m.positions()), seq = CpuBuf.i(m.tokenSeq()),
                bt = CpuBuf.i(m.blockTables());
        int w = cache.width;
        int T = m.T();
        for (int t = 0; t < T; t++) {                            // append this step's keys and values
            System.arraycopy(k, t * w, kc, slots[t] * w, w);
            System.arraycopy(v, t * w, vc, slots[t] * w, w);
        }
        int heads = m.heads(), hd = cache.headDim, group = heads / cache.kvHeads, bs = cache.blockSize;
        int maxBlocks = m.maxBlocks(), window = m.slidingWindow();
        float scale = (float) (1.0 / Math.sqrt(hd));
        parallelFor(T * heads, th -> {
            int t = th / heads, h = th % heads, kvh = h / group;
            int p = pos[t];
            int first = window > 0 ? Math.max(0, p - window + 1) : 0;
            int n = p - first + 1;
            float[] sc = new float[n];
            int qb0 = (t * heads + h) * hd;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < n; j++) {                            // scores = q·k / √d
                int slot = slotOf(bt, seq[t] * maxBlocks, first + j, bs);
                int kb0 = slot * w + kvh * hd;
                float dot = 0;
                for (int d = 0; d < hd; d++) dot += q[qb0 + d] * kc[kb0 + d];
                sc[j] = dot * scale;
                max = Math.max(max, sc[j]);
            }
            float sum = 0;
            for (int j = 0; j < n; j++) {                            // softmax in float32
                sc[j] = (float) Math.exp(sc[j] - max);
                sum += sc[j];
            }
            float inv = 1f / sum;
            int ob = (t * heads + h) * hd;
            for (int d = 0; d < hd; d++) out[ob + d] = 0;
            for (int j = 0; j < n; j++) {                            // out = Σ p·v
                int slot = slotOf(bt, seq[t] * maxBlocks, first + j, bs);
                int vb0 = slot * w + kvh * hd;
                float pj = sc[j] * inv;
                for (int d = 0; d < hd; d++) out[ob + d] += pj * vc[vb0 + d];
            }
        });
    }

    private static int slotOf(int[] blockTables, int rowBase, int position, int blockSize) {
        return blockTables[rowBase + position / blockSize] * blockSize + position % blockSize;
    }

    @Override
    public void moe(Object[] w1, Object[] w3, Object[] w2, Buf xb, Buf routerLogits, int T, int topK, int hidden,
                    int intermediate, Buf outb) {
        float[] x = CpuBuf.f(xb), rl = CpuBuf.f(routerLogits), out = CpuBuf.f(outb);
        int E = w1.length;
        int[] chosen = new int[T * topK];
        float[] weight = new float[T * topK];
        Routing.topK(rl, T, E, topK, chosen, weight);
        java.util.Arrays.fill(out, 0, T * hidden, 0f);
        int[] count = new int[E];                                   // tokens grouped per expert
        for (int i = 0; i < T * topK; i++) count[chosen[i]]++;
        int A = 0;
        for (int e = 0; e < E; e++) if (count[e] > 0) A++;
        int[] expert = new int[A];
        int[][] rows = new int[A][];
        float[][] rw = new float[A][];
        float[][] xe = new float[A][], a = new float[A][], b = new float[A][], y = new float[A][];
        for (int e = 0, k = 0; e < E; e++) {
            int n = count[e];
            if (n == 0) continue;
            expert[k] = e;
            rows[k] = new int[n];
            rw[k] = new float[n];
            n = 0;
            for (int i = 0; i < T * topK; i++) {
                if (chosen[i] == e) {
                    rows[k][n] = i / topK;
                    rw[k][n++] = weight[i];
                }
            }
            xe[k] = new float[n * hidden];                          // gathered inputs      [n][hidden]
            for (int r = 0; r < n; r++) System.arraycopy(x, rows[k][r] * hidden, xe[k], r * hidden, hidden);
            a[k] = new float[n * intermediate];
            b[k] = new float[n * intermediate];
            y[k] = new float[n * hidden];
            k++;
        }
        // every chosen expert's W1 and W3 products in one parallel section, then every W2 product in another
        PackedGptq[] up = new PackedGptq[2 * A], down = new PackedGptq[A];
        float[][] upX = new float[2 * A][], upOut = new float[2 * A][];
        int[] upT = new int[2 * A], downT = new int[A];
        for (int k = 0; k < A; k++) {
            int e = expert[k], n = rows[k].length;
            up[2 * k] = (PackedGptq) w1[e];                         // a = xe · W1ᵀ          [n][inter]
            up[2 * k + 1] = (PackedGptq) w3[e];                     // b = xe · W3ᵀ          [n][inter]
            upX[2 * k] = upX[2 * k + 1] = xe[k];
            upOut[2 * k] = a[k];
            upOut[2 * k + 1] = b[k];
            upT[2 * k] = upT[2 * k + 1] = n;
            down[k] = (PackedGptq) w2[expert[k]];
            downT[k] = n;
        }
        gptq.matmulAll(up, upX, upT, upOut);
        for (int k = 0; k < A; k++) {
            float[] ak = a[k], bk = b[k];
            for (int i = 0; i < ak.length; i++) {                   // a = silu(a) * b
                float g = ak[i];
                ak[i] = (float) (g / (1.0 + Math.exp(-g))) * bk[i];
            }
        }
        gptq.matmulAll(down, a, downT, y);                          // y = a · W2ᵀ           [n][hidden]
        for (int k = 0; k < A; k++) {                               // out[t] += w · y, experts in order
            for (int r = 0; r < rows[k].length; r++) {
                int ob = rows[k][r] * hidden, yb = r * hidden;
                float wr = rw[k][r];
                float[] yk = y[k];
                for (int i = 0; i < hidden; i++) out[ob + i] += wr * yk[yb + i];
            }
        }
    }

    @Override
    public void close() {
        parallel.close();
    }
}
