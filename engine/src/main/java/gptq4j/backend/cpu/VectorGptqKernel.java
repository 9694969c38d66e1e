package gptq4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

/**
 * Vector API kernel on the {@link PackedGptq} layout (lanes = {@link FloatVector#SPECIES_PREFERRED} length).
 * Loaded only through {@link Kernels} (reflectively), never referenced directly by code that must run without
 * {@code jdk.incubator.vector}.
 *
 * <p>Per (token, row), lane by lane: for each group, {@code acc = sum q'*x'} over the group's slots in order,
 * where q' = q << shift is the value masked in place (no shift down) and x' = x * 2^-shift was prescaled once per
 * call, so q'*x' == q*x exactly; then {@code res = (acc - zero*xsum) * scale + res} with the group's per-lane x sums
 * (FMA, the zero folded out of the inner loop). The lanes of res are added in lane order at the end.
 * Only lane-wise IEEE operations are used (no reduceLanes), so the interpreter and the JIT agree bit for bit,
 * and T = 1 (decode and multiply in registers) and T > 1 (decode a row once to floats, then tiles of 4 tokens)
 * perform the same operations per (token, row).
 */
public final class VectorGptqKernel implements GptqKernel {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    static final int L = F.length();

    private final Parallel parallel;

    public VectorGptqKernel(Parallel parallel) {
        if (I.length() != L) {
            throw new IllegalStateException("preferred int and float species differ (" + I + ", " + F + ")");
        }
        this.parallel = parallel;
    }

    /** The lane count of the preferred float species. */
    public static int preferredLanes() { return L; }

    @Override public String name() { return "cpu-vector"; }

    @Override public int lanes() { return L; }

    @Override
    public void matmul(PackedGptq w, float[] x, int xOff, int T, float[] out, int outOff) {
        w.checkArgs(x, xOff, T, out, outOff);
        if (w.lanes != L) {
            throw new IllegalArgumentException(w.name + " was packed for " + w.lanes + " lanes but this vector kernel uses "
                    + L + " (" + F + "); pack it with Kernels.preferredLanes() or use the scalar kernel");
        }
        if (T == 0) return;
        final int K = w.paddedIn, G = w.groups, N = w.out;
        float[] xp = new float[T * K];
        w.permuteX(x, xOff, T, xp);
        float[] xsum = new float[T * G * L];
        w.laneSums(xp, T, xsum);
        w.prescale(xp, T);
        int grain = ScalarGptqKernel.rowGrain(w);
        if (T == 1) {
            parallel.parallelFor(N, grain, (from, to) -> {
                float[] tmp = new float[L];
                for (int o = from; o < to; o++) {
                    FloatVector res = dot(w, o, xp, xsum);
                    res.intoArray(tmp, 0);
                    out[outOff + o] = sumLanes(tmp, 0);
                }
            });
        } else {
            parallel.parallelFor(N, grain, (from, to) -> {
                float[] dq = new float[K];
                float[] res = new float[T * L];
                for (int o = from; o < to; o++) {
                    decode(w, o * w.rowWords, dq);
                    rowMany(w, o, dq, xp, xsum, T, res);
                    for (int t = 0; t < T; t++) out[outOff + t * N + o] = sumLanes(res, t * L);
                }
            });
        }
    }

    /** a[off] + a[off+1] + ... + a[off+L-1], left to right. */
    static float sumLanes(float[] a, int off) {
        float s = a[off];
        for (int l = 1; l < L; l++) s += a[off + l];
        return s;
    }

    /** Closes a group: (acc - zero*xsum) * scale + res, lane-wise. */
    private static FloatVector close(FloatVector res, FloatVector acc, float[] xsum, int xsOff, float zero, float scale) {
        FloatVector d = FloatVector.fromArray(F, xsum, xsOff).fma(FloatVector.broadcast(F, -zero), acc);
        return d.fma(FloatVector.broadcast(F, scale), res);
    }

    private static FloatVector dot(PackedGptq w, int o, float[] xp, float[] xsum) {
        int rowOff = o * w.rowWords, gOff = o * w.groups;
        switch (w.bits) {
            case 2: return dot2(w, rowOff, xp, xsum, gOff);
            case 3: return dot3(w, rowOff, xp, xsum, gOff);
            case 4: return dot4(w, rowOff, xp, xsum, gOff);
            case 8: return dot8(w, rowOff, xp, xsum, gOff);
            default: throw new IllegalStateException(w.name + ": unsupported bits " + w.bits);
        }
    }

    private static void decode(PackedGptq w, int rowOff, float[] dq) {
        switch (w.bits) {
            case 2: decode2(w, rowOff, dq); break;
            case 3: decode3(w, rowOff, dq); break;
            case 4: decode4(w, rowOff, dq); break;
            case 8: decode8(w, rowOff, dq); break;
            default: throw new IllegalStateException(w.name + ": unsupported bits " + w.bits);
        }
    }

    /**
     * One decoded row times T tokens, tiles of 4 tokens sharing each weight load; res[t*L..] gets the lane-wise
     * result of token t. Per token the operations are those of {@code dot*}.
     */
    private static void rowMany(PackedGptq w, int o, float[] dq, float[] xp, float[] xsum, int T, float[] res) {
        final int K = w.paddedIn, G = w.groups;
        final int[] gSlots = w.groupSlots;
        java.util.Arrays.fill(res, 0, T * L, 0f);
        int j0 = 0;
        for (int g = 0; g < G; g++) {
            int j1 = j0 + gSlots[g];
            float zero = w.zeros[o * G + g], scale = w.scales[o * G + g];
            int t = 0;
            for (; t + 4 <= T; t += 4) {
                FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
                int x0 = t * K, x1 = x0 + K, x2 = x1 + K, x3 = x2 + K;
                for (int j = j0 * L, e = j1 * L; j < e; j += L) {
                    FloatVector q = FloatVector.fromArray(F, dq, j);
                    a0 = q.fma(FloatVector.fromArray(F, xp, x0 + j), a0);
                    a1 = q.fma(FloatVector.fromArray(F, xp, x1 + j), a1);
                    a2 = q.fma(FloatVector.fromArray(F, xp, x2 + j), a2);
                    a3 = q.fma(FloatVector.fromArray(F, xp, x3 + j), a3);
                }
                closeInto(res, t, a0, xsum, (t * G + g) * L, zero, scale);
                closeInto(res, t + 1, a1, xsum, ((t + 1) * G + g) * L, zero, scale);
                closeInto(res, t + 2, a2, xsum, ((t + 2) * G + g) * L, zero, scale);
                closeInto(res, t + 3, a3, xsum, ((t + 3) * G + g) * L, zero, scale);
            }
            for (; t < T; t++) {
                FloatVector a = FloatVector.zero(F);
                int x0 = t * K;
                for (int j = j0 * L, e = j1 * L; j < e; j += L) {
                    a = FloatVector.fromArray(F, dq, j).fma(FloatVector.fromArray(F, xp, x0 + j), a);
                }
                closeInto(res, t, a, xsum, (t * G + g) * L, zero, scale);
            }
            j0 = j1;
        }
    }

    private static void closeInto(float[] res, int t, FloatVector acc, float[] xsum, int xsOff, float zero, float scale) {
        close(FloatVector.fromArray(F, res, t * L), acc, xsum, xsOff, zero, scale).intoArray(res, t * L);
    }

    // ---- generated per bit width: value s of a lane is column chunkStart + s*L + lane ----

    /** One row times one token, 2-bit layout; returns the lane-wise result (see {@link #close}). */
    private static FloatVector dot2(PackedGptq w, int rowOff, float[] xp, float[] xsum, int gOff) {
        final int[] words = w.words, gSlots = w.groupSlots;
        final float[] sc = w.scales, zr = w.zeros;
        FloatVector res = FloatVector.zero(F), acc = res;
        int g = 0, rem = gSlots[0], xi = 0, wi = rowOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += 1 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            acc = ((FloatVector) w0.and(0x3).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xc).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x30).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xc0).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x300).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xc00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x3000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xc000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x30000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xc0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x300000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xc00000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x3000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xc000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x30000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.lanewise(LSHR, 30).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
        }
        return res;
    }

    /** One row times one token, 3-bit layout; returns the lane-wise result (see {@link #close}). */
    private static FloatVector dot3(PackedGptq w, int rowOff, float[] xp, float[] xsum, int gOff) {
        final int[] words = w.words, gSlots = w.groupSlots;
        final float[] sc = w.scales, zr = w.zeros;
        FloatVector res = FloatVector.zero(F), acc = res;
        int g = 0, rem = gSlots[0], xi = 0, wi = rowOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += 3 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            IntVector w1 = IntVector.fromArray(I, words, wi + 1 * L);
            IntVector w2 = IntVector.fromArray(I, words, wi + 2 * L);
            acc = ((FloatVector) w0.and(0x7).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x38).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x1c0).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xe00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x7000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x38000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x1c0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xe00000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x7000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0x38000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.lanewise(LSHR, 30).or(w1.and(0x1).lanewise(LSHL, 2)).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0xe).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0x70).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0x380).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0x1c00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0xe000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0x70000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0x380000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0x1c00000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0xe000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.and(0x70000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w1.lanewise(LSHR, 31).or(w2.and(0x3).lanewise(LSHL, 1)).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.and(0x1c).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.and(0xe0).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.and(0x700).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.and(0x3800).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.and(0x1c000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.and(0xe0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.and(0x700000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.and(0x3800000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.and(0x1c000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w2.lanewise(LSHR, 29).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
        }
        return res;
    }

    /** One row times one token, 4-bit layout; returns the lane-wise result (see {@link #close}). */
    private static FloatVector dot4(PackedGptq w, int rowOff, float[] xp, float[] xsum, int gOff) {
        final int[] words = w.words, gSlots = w.groupSlots;
        final float[] sc = w.scales, zr = w.zeros;
        FloatVector res = FloatVector.zero(F), acc = res;
        int g = 0, rem = gSlots[0], xi = 0, wi = rowOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += 1 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            acc = ((FloatVector) w0.and(0xf).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xf0).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xf00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xf000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xf0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xf00000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xf000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.lanewise(LSHR, 28).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
        }
        return res;
    }

    /** One row times one token, 8-bit layout; returns the lane-wise result (see {@link #close}). */
    private static FloatVector dot8(PackedGptq w, int rowOff, float[] xp, float[] xsum, int gOff) {
        final int[] words = w.words, gSlots = w.groupSlots;
        final float[] sc = w.scales, zr = w.zeros;
        FloatVector res = FloatVector.zero(F), acc = res;
        int g = 0, rem = gSlots[0], xi = 0, wi = rowOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += 1 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            acc = ((FloatVector) w0.and(0xff).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xff00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.and(0xff0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
            acc = ((FloatVector) w0.lanewise(LSHR, 24).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), acc);
            xi += L;
            if (--rem == 0) { res = close(res, acc, xsum, g * L, zr[gOff + g], sc[gOff + g]); acc = FloatVector.zero(F); rem = gSlots[++g]; }
        }
        return res;
    }

    /** Decodes one row of the 2-bit layout to floats q << inPlaceShift, slot after slot. */
    private static void decode2(PackedGptq w, int rowOff, float[] dq) {
        final int[] words = w.words;
        int wi = rowOff, di = 0;
        for (int c = 0, n = w.chunks; c < n; c++, wi += 1 * L, di += 16 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            ((FloatVector) w0.and(0x3).convert(I2F, 0)).intoArray(dq, di + 0 * L);
            ((FloatVector) w0.and(0xc).convert(I2F, 0)).intoArray(dq, di + 1 * L);
            ((FloatVector) w0.and(0x30).convert(I2F, 0)).intoArray(dq, di + 2 * L);
            ((FloatVector) w0.and(0xc0).convert(I2F, 0)).intoArray(dq, di + 3 * L);
            ((FloatVector) w0.and(0x300).convert(I2F, 0)).intoArray(dq, di + 4 * L);
            ((FloatVector) w0.and(0xc00).convert(I2F, 0)).intoArray(dq, di + 5 * L);
            ((FloatVector) w0.and(0x3000).convert(I2F, 0)).intoArray(dq, di + 6 * L);
            ((FloatVector) w0.and(0xc000).convert(I2F, 0)).intoArray(dq, di + 7 * L);
            ((FloatVector) w0.and(0x30000).convert(I2F, 0)).intoArray(dq, di + 8 * L);
            ((FloatVector) w0.and(0xc0000).convert(I2F, 0)).intoArray(dq, di + 9 * L);
            ((FloatVector) w0.and(0x300000).convert(I2F, 0)).intoArray(dq, di + 10 * L);
            ((FloatVector) w0.and(0xc00000).convert(I2F, 0)).intoArray(dq, di + 11 * L);
            ((FloatVector) w0.and(0x3000000).convert(I2F, 0)).intoArray(dq, di + 12 * L);
            ((FloatVector) w0.and(0xc000000).convert(I2F, 0)).intoArray(dq, di + 13 * L);
            ((FloatVector) w0.and(0x30000000).convert(I2F, 0)).intoArray(dq, di + 14 * L);
            ((FloatVector) w0.lanewise(LSHR, 30).convert(I2F, 0)).intoArray(dq, di + 15 * L);
        }
    }

    /** Decodes one row of the 3-bit layout to floats q << inPlaceShift, slot after slot. */
    private static void decode3(PackedGptq w, int rowOff, float[] dq) {
        final int[] words = w.words;
        int wi = rowOff, di = 0;
        for (int c = 0, n = w.chunks; c < n; c++, wi += 3 * L, di += 32 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            IntVector w1 = IntVector.fromArray(I, words, wi + 1 * L);
            IntVector w2 = IntVector.fromArray(I, words, wi + 2 * L);
            ((FloatVector) w0.and(0x7).convert(I2F, 0)).intoArray(dq, di + 0 * L);
            ((FloatVector) w0.and(0x38).convert(I2F, 0)).intoArray(dq, di + 1 * L);
            ((FloatVector) w0.and(0x1c0).convert(I2F, 0)).intoArray(dq, di + 2 * L);
            ((FloatVector) w0.and(0xe00).convert(I2F, 0)).intoArray(dq, di + 3 * L);
            ((FloatVector) w0.and(0x7000).convert(I2F, 0)).intoArray(dq, di + 4 * L);
            ((FloatVector) w0.and(0x38000).convert(I2F, 0)).intoArray(dq, di + 5 * L);
            ((FloatVector) w0.and(0x1c0000).convert(I2F, 0)).intoArray(dq, di + 6 * L);
            ((FloatVector) w0.and(0xe00000).convert(I2F, 0)).intoArray(dq, di + 7 * L);
            ((FloatVector) w0.and(0x7000000).convert(I2F, 0)).intoArray(dq, di + 8 * L);
            ((FloatVector) w0.and(0x38000000).convert(I2F, 0)).intoArray(dq, di + 9 * L);
            ((FloatVector) w0.lanewise(LSHR, 30).or(w1.and(0x1).lanewise(LSHL, 2)).convert(I2F, 0)).intoArray(dq, di + 10 * L);
            ((FloatVector) w1.and(0xe).convert(I2F, 0)).intoArray(dq, di + 11 * L);
            ((FloatVector) w1.and(0x70).convert(I2F, 0)).intoArray(dq, di + 12 * L);
            ((FloatVector) w1.and(0x380).convert(I2F, 0)).intoArray(dq, di + 13 * L);
            ((FloatVector) w1.and(0x1c00).convert(I2F, 0)).intoArray(dq, di + 14 * L);
            ((FloatVector) w1.and(0xe000).convert(I2F, 0)).intoArray(dq, di + 15 * L);
            ((FloatVector) w1.and(0x70000).convert(I2F, 0)).intoArray(dq, di + 16 * L);
            ((FloatVector) w1.and(0x380000).convert(I2F, 0)).intoArray(dq, di + 17 * L);
            ((FloatVector) w1.and(0x1c00000).convert(I2F, 0)).intoArray(dq, di + 18 * L);
            ((FloatVector) w1.and(0xe000000).convert(I2F, 0)).intoArray(dq, di + 19 * L);
            ((FloatVector) w1.and(0x70000000).convert(I2F, 0)).intoArray(dq, di + 20 * L);
            ((FloatVector) w1.lanewise(LSHR, 31).or(w2.and(0x3).lanewise(LSHL, 1)).convert(I2F, 0)).intoArray(dq, di + 21 * L);
            ((FloatVector) w2.and(0x1c).convert(I2F, 0)).intoArray(dq, di + 22 * L);
            ((FloatVector) w2.and(0xe0).convert(I2F, 0)).intoArray(dq, di + 23 * L);
            ((FloatVector) w2.and(0x700).convert(I2F, 0)).intoArray(dq, di + 24 * L);
            ((FloatVector) w2.and(0x3800).convert(I2F, 0)).intoArray(dq, di + 25 * L);
            ((FloatVector) w2.and(0x1c000).convert(I2F, 0)).intoArray(dq, di + 26 * L);
            ((FloatVector) w2.and(0xe0000).convert(I2F, 0)).intoArray(dq, di + 27 * L);
            ((FloatVector) w2.and(0x700000).convert(I2F, 0)).intoArray(dq, di + 28 * L);
            ((FloatVector) w2.and(0x3800000).convert(I2F, 0)).intoArray(dq, di + 29 * L);
            ((FloatVector) w2.and(0x1c000000).convert(I2F, 0)).intoArray(dq, di + 30 * L);
            ((FloatVector) w2.lanewise(LSHR, 29).convert(I2F, 0)).intoArray(dq, di + 31 * L);
        }
    }

    /** Decodes one row of the 4-bit layout to floats q << inPlaceShift, slot after slot. */
    private static void decode4(PackedGptq w, int rowOff, float[] dq) {
        final int[] words = w.words;
        int wi = rowOff, di = 0;
        for (int c = 0, n = w.chunks; c < n; c++, wi += 1 * L, di += 8 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            ((FloatVector) w0.and(0xf).convert(I2F, 0)).intoArray(dq, di + 0 * L);
            ((FloatVector) w0.and(0xf0).convert(I2F, 0)).intoArray(dq, di + 1 * L);
            ((FloatVector) w0.and(0xf00).convert(I2F, 0)).intoArray(dq, di + 2 * L);
            ((FloatVector) w0.and(0xf000).convert(I2F, 0)).intoArray(dq, di + 3 * L);
            ((FloatVector) w0.and(0xf0000).convert(I2F, 0)).intoArray(dq, di + 4 * L);
            ((FloatVector) w0.and(0xf00000).convert(I2F, 0)).intoArray(dq, di + 5 * L);
            ((FloatVector) w0.and(0xf000000).convert(I2F, 0)).intoArray(dq, di + 6 * L);
            ((FloatVector) w0.lanewise(LSHR, 28).convert(I2F, 0)).intoArray(dq, di + 7 * L);
        }
    }

    /** Decodes one row of the 8-bit layout to floats q << inPlaceShift, slot after slot. */
    private static void decode8(PackedGptq w, int rowOff, float[] dq) {
        final int[] words = w.words;
        int wi = rowOff, di = 0;
        for (int c = 0, n = w.chunks; c < n; c++, wi += 1 * L, di += 4 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            ((FloatVector) w0.and(0xff).convert(I2F, 0)).intoArray(dq, di + 0 * L);
            ((FloatVector) w0.and(0xff00).convert(I2F, 0)).intoArray(dq, di + 1 * L);
            ((FloatVector) w0.and(0xff0000).convert(I2F, 0)).intoArray(dq, di + 2 * L);
            ((FloatVector) w0.lanewise(LSHR, 24).convert(I2F, 0)).intoArray(dq, di + 3 * L);
        }
    }

}
