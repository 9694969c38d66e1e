package gptq4j.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.MAX;

/**
 * Vector API kernel on the {@link PackedGptq} layout (lanes = the float species of {@link VectorWidth}).
 * Loaded only through {@link Kernels} (reflectively), never referenced directly by code that must run without
 * {@code jdk.incubator.vector}.
 *
 * <p>Per (token, row), lane by lane: for each group, four partial sums {@code a_k = sum q'*x'} over the group's
 * slots j with {@code j mod 4 == k}, each in slot order from zero (four independent FMA chains, so a matrix-vector
 * product is not bound by the FMA latency), where q' = q << shift is the value masked in place (no shift down)
 * and x' = x * 2^-shift was prescaled once per call, so q'*x' == q*x exactly; then
 * {@code acc = (a_0 + a_1) + (a_2 + a_3)} and {@code res = acc * scale + res} (FMA). The lanes of res are added in
 * lane order, then the zero points are taken off once per row: {@code out = sum(res) - sum_g (scale_g*zero_g) * xs_g}
 * with xs_g the sum of the group's x ({@link PackedGptq#groupSums}, {@link #zeroCorrection}); nothing of the zero is
 * left in the inner loop. When every group is exactly one or two chunks (4-bit, group 128, 256- or 512-bit vectors)
 * a branch-free loop runs over a row pair ({@code pair4m*}: both rows of a {@link PackedGptq} pair in one pass, each x
 * load serving two rows); the arithmetic per row is the same as the general code.
 *
 * <p>4-bit decode, two schemes with the same results ({@link #SUBNORMAL_PROPERTY}): <em>conversion</em> masks value k
 * in place and converts the int to float (q << 4k; x prescaled by 2^-4k); <em>subnormal</em> masks it (values 5..7
 * from the word shifted right by 12) and reads the bits as a float, q * 2^(pos-149), with x prescaled by
 * 2^(149-60-pos): one integer operation per value instead of two, every product q*x*2^-60 exactly, and the row result
 * scaled by 2^60 (exact) before the zero correction. Powers of two commute with rounding, so both schemes round
 * identically while values stay normal (products above 2^-66 in magnitude, activations below 2^39).
 * Only lane-wise IEEE operations are used (no reduceLanes), so the interpreter and the JIT agree bit for bit.
 *
 * <p>T = 1 decodes and multiplies in registers (generated code per bit width). T > 1 decodes two rows at a time to
 * floats, then runs tiles of two rows by two tokens (16 accumulators; each x load serves two rows, each weight load
 * two tokens). Both perform the same operations per (token, row), so results do not depend on T.
 * Scratch arrays are per thread and reused across calls.
 */
public final class VectorGptqKernel implements GptqKernel {
    static final VectorSpecies<Float> F = VectorWidth.FLOAT;
    static final VectorSpecies<Integer> I = VectorWidth.INT;
    static final int L = F.length();

    private final Parallel parallel;
    private final boolean subnormalDecode;

    /** Per-thread scratch: the permuted x and lane sums (caller), decoded rows and results (workers). */
    private static final class Scratch {
        float[] xp = new float[0], xsum = new float[0], dq = new float[0], res = new float[0], part = new float[16 * L], lanes = new float[L];

        float[] xp(int n) { return xp.length >= n ? xp : (xp = new float[n]); }
        float[] xsum(int n) { return xsum.length >= n ? xsum : (xsum = new float[n]); }
        float[] dq(int n) { return dq.length >= n ? dq : (dq = new float[n]); }
        float[] res(int n) { return res.length >= n ? res : (res = new float[n]); }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * System property: decode 4-bit values as subnormal floats ({@code true}), by int-to-float conversion
     * ({@code false}), or {@code auto} (default): subnormal on AMD CPUs, which take subnormal FMA operands at full
     * speed; Intel cores before Ice Lake take a microcode assist per such operand. Both give the same results.
     */
    static final String SUBNORMAL_PROPERTY = "gptq4j.cpu.subnormalDecode";

    static final boolean SUBNORMAL = subnormalDefault();

    /** The subnormal scheme computes every product 2^-SUB_EXP too small; the row result is scaled back (exact). */
    static final int SUB_EXP = 60;
    static final float SUB_POST = 0x1p60f;

    /** [slot] x prescale of the subnormal 4-bit scheme: 2^(149 - SUB_EXP - bit position of the value as masked). */
    private static final float[] SUB_SCALE = new float[8];

    static {
        for (int k = 0; k < 8; k++) SUB_SCALE[k] = Math.scalb(1f, 149 - SUB_EXP - (k < 5 ? 4 * k : 4 * k - 12));
    }

    private static boolean subnormalDefault() {
        String v = System.getProperty(SUBNORMAL_PROPERTY, "auto").trim();
        switch (v) {
            case "true": return true;
            case "false": return false;
            case "auto": break;
            default: throw new IllegalArgumentException("-D" + SUBNORMAL_PROPERTY + "=" + v + ": expected true, false or auto");
        }
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("vendor_id")) return line.contains("AuthenticAMD");
            }
        } catch (java.io.IOException | RuntimeException e) {
            // not Linux: conversion
        }
        return false;
    }

    /** Whether this kernel uses the subnormal scheme for w: 4-bit layouts whose groups are exactly 1 or 2 chunks. */
    private boolean subnormal(PackedGptq w) {
        return subnormalDecode && w.bits == 4 && (w.chunksPerGroup == 1 || w.chunksPerGroup == 2);
    }

    /**
     * xp *= SUB_SCALE[slot]: value k of a lane read as a float is q * 2^(pos_k - 149), so the product is
     * q * x * 2^-SUB_EXP exactly, i.e. the conversion scheme's product scaled by a power of two. Activations must stay
     * below 2^(128 - 149 + SUB_EXP + 16) = 2^39 in magnitude (prescaled x stays finite).
     */
    private static void prescaleSubnormal(PackedGptq w, float[] xp, int T) {
        int n = T * w.paddedIn;
        for (int pc = 0; pc < n; pc += L) {
            FloatVector.fromArray(F, xp, pc).mul(SUB_SCALE[(pc / L) & 7]).intoArray(xp, pc);
        }
    }

    /** Largest |x| the subnormal scheme takes: 2^38, a bit under the 2^39 at which prescaled x would overflow. */
    static final float SUB_MAX_ABS = 0x1p38f;

    /** max |a[i]| over [0, n), n a multiple of L; NaN if any is NaN (lanewise max is Math.max). */
    private static float maxAbs(float[] a, int n) {
        FloatVector m = FloatVector.zero(F);
        for (int i = 0; i < n; i += L) m = m.max(FloatVector.fromArray(F, a, i).abs());
        return m.reduceLanes(MAX);
    }

    public VectorGptqKernel(Parallel parallel) { this(parallel, SUBNORMAL); }

    /** @param subnormalDecode the 4-bit decode scheme (see {@link #SUBNORMAL_PROPERTY}); results are the same either way */
    public VectorGptqKernel(Parallel parallel, boolean subnormalDecode) {
        if (I.length() != L) {
            throw new IllegalStateException("int and float species differ (" + I + ", " + F + ")");
        }
        this.parallel = parallel;
        this.subnormalDecode = subnormalDecode;
    }

    /** The lane count of the float species in use. */
    public static int preferredLanes() { return L; }

    @Override public String name() { return "cpu-vector"; }

    /** Whether 4-bit values are decoded as subnormal floats (else by int-to-float conversion). */
    public boolean subnormalDecode() { return subnormalDecode; }

    @Override public int lanes() { return L; }

    @Override
    public void matmul(PackedGptq w, float[] x, int xOff, int T, float[] out, int outOff) {
        checkLayer(w, x, xOff, T, out, outOff);
        if (T == 0) return;
        Scratch s = SCRATCH.get();
        Job job = new Job(w, x, xOff, T, out, outOff, s.xp(T * w.paddedIn), s.xsum(T * w.groups));
        parallel.parallelFor(job.units, job.grain, job::run);
    }

    /**
     * All products in one parallel section: the inputs are prepared on the caller, then the row pairs of every
     * product are split among the threads as one index range (each thread one contiguous share), so the threads
     * meet once instead of once per product. Per (product, token, row) the operations are those of {@link #matmul}.
     */
    @Override
    public void matmulAll(PackedGptq[] w, float[][] x, int[] T, float[][] out) {
        GptqKernel.checkAll(w, x, T, out);
        int n = 0;
        for (int i = 0; i < w.length; i++) {
            checkLayer(w[i], x[i], 0, T[i], out[i], 0);
            if (T[i] > 0) n++;
        }
        Job[] jobs = new Job[n];
        int[] first = new int[n + 1];                           // first unit of each job in the joint range
        int grain = Integer.MAX_VALUE;
        for (int i = 0, j = 0; i < w.length; i++) {
            if (T[i] == 0) continue;
            PackedGptq l = w[i];
            jobs[j] = new Job(l, x[i], 0, T[i], out[i], 0, new float[T[i] * l.paddedIn], new float[T[i] * l.groups]);
            first[j + 1] = Math.addExact(first[j], jobs[j].units);
            grain = Math.min(grain, jobs[j].grain);
            j++;
        }
        if (n == 0) return;
        parallel.parallelFor(first[n], grain, (from, to) -> {
            int j = 0;
            while (first[j + 1] <= from) j++;
            while (from < to) {
                int end = Math.min(to, first[j + 1]);
                jobs[j].run(from - first[j], end - first[j]);
                from = end;
                j++;
            }
        });
    }

    private static void checkLayer(PackedGptq w, float[] x, int xOff, int T, float[] out, int outOff) {
        w.checkArgs(x, xOff, T, out, outOff);
        if (w.lanes != L) {
            throw new IllegalArgumentException(w.name + " was packed for " + w.lanes + " lanes but this vector kernel uses "
                    + L + " (" + F + "); pack it with Kernels.preferredLanes() or use the scalar kernel");
        }
    }

    /**
     * One product with its input prepared on the caller (permuted, group sums, prescaled for the decode scheme),
     * run over units (row pairs, or rows for the general T = 1 path) by whichever threads take them.
     */
    private final class Job {
        final PackedGptq w;
        final float[] xp, xs, out;
        final int T, outOff, units, grain, path;   // path: 0 = 4-bit T = 1 pairs, 1 = general T = 1 rows, 2 = T > 1 pairs
        final boolean sub;
        final float post;

        Job(PackedGptq w, float[] x, int xOff, int T, float[] out, int outOff, float[] xp, float[] xs) {
            final int K = w.paddedIn, N = w.out;
            this.w = w;
            this.T = T;
            this.out = out;
            this.outOff = outOff;
            this.xp = xp;
            this.xs = xs;
            w.permuteX(x, xOff, T, xp);
            w.groupSums(xp, T, xs);
            // the subnormal scheme needs |x| < 2^39; larger activations (never seen in a real model) take the conversion
            // scheme, which gives the same results, so the choice cannot make a row depend on the others of the batch
            sub = subnormal(w) && maxAbs(xp, T * K) < SUB_MAX_ABS;
            if (sub) prescaleSubnormal(w, xp, T);
            else w.prescale(xp, T);
            post = sub ? SUB_POST : 1f;
            int rowGrain = ScalarGptqKernel.rowGrain(w);
            if (T == 1 && w.bits == 4 && (w.chunksPerGroup == 1 || w.chunksPerGroup == 2)) {
                path = 0;
                units = (N + 1) / 2;
                grain = Math.max(1, rowGrain / 2);
            } else if (T == 1) {
                path = 1;
                units = N;
                grain = rowGrain;
            } else {
                path = 2;
                units = (N + 1) / 2;
                grain = Math.max(1, rowGrain / 2);
            }
        }

        void run(int from, int to) {
            final int K = w.paddedIn, G = w.groups, N = w.out;
            if (path == 0) {
                final int m = w.chunksPerGroup;
                Scratch ws = SCRATCH.get();
                float[] rv = ws.res(2 * (to - from) * L);
                for (int pr = from, r = 0; pr < to; pr++, r += 2 * L) {
                    if (sub) {
                        if (m == 1) pair4m1s(w, 2 * pr, xp, rv, r);
                        else pair4m2s(w, 2 * pr, xp, rv, r);
                    } else {
                        if (m == 1) pair4m1c(w, 2 * pr, xp, rv, r);
                        else pair4m2c(w, 2 * pr, xp, rv, r);
                    }
                }
                finishRows(w, rv, 2 * from, Math.min(N, 2 * to), xs, post, ws.dq(2 * (to - from) * L), out, outOff);
            } else if (path == 1) {
                float[] tmp = SCRATCH.get().res(L);
                for (int o = from; o < to; o++) {
                    out[outOff + o] = dot(w, o, xp, tmp) - zeroCorrection(w.scaledZeros, o * G, xs, 0, G, tmp);
                }
            } else {
                Scratch ws = SCRATCH.get();
                float[] dq = ws.dq(2 * K);
                float[] res = ws.res(T * 2 * L);
                for (int pr = from; pr < to; pr++) {
                    int o0 = 2 * pr, o1 = Math.min(o0 + 1, N - 1);   // an odd last row pairs with itself
                    decode(w, sub, w.rowBase(o0), dq, 0);
                    decode(w, sub, w.rowBase(o1), dq, K);
                    rowPair(w, o0, o1, dq, xp, T, res, ws.part);
                    for (int t = 0; t < T; t++) {
                        out[outOff + t * N + o0] = sumLanes(res, (t * 2) * L) * post - zeroCorrection(w.scaledZeros, o0 * G, xs, t * G, G, ws.lanes);
                        out[outOff + t * N + o1] = sumLanes(res, (t * 2 + 1) * L) * post - zeroCorrection(w.scaledZeros, o1 * G, xs, t * G, G, ws.lanes);
                    }
                }
            }
        }
    }

    /** a[off] + a[off+1] + ... + a[off+L-1], left to right. */
    static float sumLanes(float[] a, int off) {
        float s = a[off];
        for (int l = 1; l < L; l++) s += a[off + l];
        return s;
    }

    /**
     * sum_g sz[szOff+g] * xs[xsOff+g]: lane-wise FMA over whole vectors of groups, lanes added left to right,
     * then the remaining groups left to right.
     */
    static float zeroCorrection(float[] sz, int szOff, float[] xs, int xsOff, int G, float[] tmp) {
        int g = 0;
        float c = 0f;
        if (G >= L) {
            FloatVector a = FloatVector.zero(F);
            for (; g + L <= G; g += L) a = FloatVector.fromArray(F, sz, szOff + g).fma(FloatVector.fromArray(F, xs, xsOff + g), a);
            a.intoArray(tmp, 0);
            for (int l = 0; l < L; l++) c += tmp[l];
        }
        for (; g < G; g++) c += sz[szOff + g] * xs[xsOff + g];
        return c;
    }

    /**
     * out[outOff+o] = sumLanes(rv, (o-o0)*L) * post - zeroCorrection(row o, token 0) for o in [o0, o1): the same
     * operations in the same order as those two methods, four rows at a time so the four lane sums (dependent adds)
     * overlap. zv is scratch of (o1-o0)*L floats.
     */
    static void finishRows(PackedGptq w, float[] rv, int o0, int o1, float[] xs, float post, float[] zv, float[] out, int outOff) {
        final int G = w.groups, n = o1 - o0, gv = G / L * L;
        final float[] sz = w.scaledZeros;
        for (int r = 0; r < n; r++) {                                   // zero correction, lane-wise part
            FloatVector a = FloatVector.zero(F);
            for (int g = 0, so = (o0 + r) * G; g < gv; g += L) a = FloatVector.fromArray(F, sz, so + g).fma(FloatVector.fromArray(F, xs, g), a);
            a.intoArray(zv, r * L);
        }
        int r = 0;
        for (; r + 4 <= n; r += 4) {
            int b = r * L;
            float s0 = rv[b], s1 = rv[b + L], s2 = rv[b + 2 * L], s3 = rv[b + 3 * L];
            float c0 = 0f + zv[b], c1 = 0f + zv[b + L], c2 = 0f + zv[b + 2 * L], c3 = 0f + zv[b + 3 * L];   // 0f + : as zeroCorrection (sign of zero)
            for (int l = 1; l < L; l++) {
                s0 += rv[b + l]; s1 += rv[b + L + l]; s2 += rv[b + 2 * L + l]; s3 += rv[b + 3 * L + l];
                c0 += zv[b + l]; c1 += zv[b + L + l]; c2 += zv[b + 2 * L + l]; c3 += zv[b + 3 * L + l];
            }
            int so = (o0 + r) * G;
            for (int g = gv; g < G; g++) {
                c0 += sz[so + g] * xs[g]; c1 += sz[so + G + g] * xs[g]; c2 += sz[so + 2 * G + g] * xs[g]; c3 += sz[so + 3 * G + g] * xs[g];
            }
            out[outOff + o0 + r] = s0 * post - c0;
            out[outOff + o0 + r + 1] = s1 * post - c1;
            out[outOff + o0 + r + 2] = s2 * post - c2;
            out[outOff + o0 + r + 3] = s3 * post - c3;
        }
        for (; r < n; r++) {
            float s = sumLanes(rv, r * L), c = 0f;
            if (gv > 0) for (int l = 0; l < L; l++) c += zv[r * L + l];
            for (int g = gv, so = (o0 + r) * G; g < G; g++) c += sz[so + g] * xs[g];
            out[outOff + o0 + r] = s * post - c;
        }
    }

    /** The group's partial sums combined: (a0 + a1) + (a2 + a3). */
    private static FloatVector sum4(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3) {
        return a0.add(a1).add(a2.add(a3));
    }

    private static float dot(PackedGptq w, int o, float[] xp, float[] tmp) {
        int rowOff = w.rowBase(o), gOff = o * w.groups;
        switch (w.bits) {
            case 2: return dot2(w, rowOff, xp, gOff, tmp);
            case 3: return dot3(w, rowOff, xp, gOff, tmp);
            case 4: return dot4(w, rowOff, xp, gOff, tmp);
            case 8: return dot8(w, rowOff, xp, gOff, tmp);
            default: throw new IllegalStateException(w.name + ": unsupported bits " + w.bits);
        }
    }

    /**
     * 4-bit, every group exactly 1 chunk(s): rows o and o+1 (one row pair of the layout, one sequential stream of
     * words) times one token, each x load serving both rows; decode subnormal: value k of a lane is the masked bits themselves read as a float (q * 2^(pos-149), exact), values 5..7 masked from the word shifted right by 12.
     * Per row the operations are those of the class comment (four chains per group, the first product a plain
     * multiply). The lane-wise results of rows o and o+1 go to rv[rvOff..+L) and rv[rvOff+L..+2L) ({@link #finishRows}).
     */
    private static void pair4m1s(PackedGptq w, int o, float[] xp, float[] rv, int rvOff) {
        final int[] words = w.words;
        final float[] sc = w.scales;
        final int G = w.groups, cs = w.chunkStride, gA = o * G, gB = Math.min(o + 1, w.out - 1) * G;
        FloatVector rA = FloatVector.zero(F), rB = rA;
        for (int g = 0, wi = w.rowBase(o), xi = 0; g < G; g++, wi += cs, xi += 8 * L) {
            FloatVector a0, a1, a2, a3, b0, b1, b2, b3, x;
            IntVector wa0 = IntVector.fromArray(I, words, wi), wb0 = IntVector.fromArray(I, words, wi + L);
            IntVector va0 = wa0.lanewise(LSHR, 12), vb0 = wb0.lanewise(LSHR, 12);
            x = FloatVector.fromArray(F, xp, xi + 0 * L); a0 = wa0.and(0xf).reinterpretAsFloats().mul(x); b0 = wb0.and(0xf).reinterpretAsFloats().mul(x);
            x = FloatVector.fromArray(F, xp, xi + 1 * L); a1 = wa0.and(0xf0).reinterpretAsFloats().mul(x); b1 = wb0.and(0xf0).reinterpretAsFloats().mul(x);
            x = FloatVector.fromArray(F, xp, xi + 2 * L); a2 = wa0.and(0xf00).reinterpretAsFloats().mul(x); b2 = wb0.and(0xf00).reinterpretAsFloats().mul(x);
            x = FloatVector.fromArray(F, xp, xi + 3 * L); a3 = wa0.and(0xf000).reinterpretAsFloats().mul(x); b3 = wb0.and(0xf000).reinterpretAsFloats().mul(x);
            x = FloatVector.fromArray(F, xp, xi + 4 * L); a0 = wa0.and(0xf0000).reinterpretAsFloats().fma(x, a0); b0 = wb0.and(0xf0000).reinterpretAsFloats().fma(x, b0);
            x = FloatVector.fromArray(F, xp, xi + 5 * L); a1 = va0.and(0xf00).reinterpretAsFloats().fma(x, a1); b1 = vb0.and(0xf00).reinterpretAsFloats().fma(x, b1);
            x = FloatVector.fromArray(F, xp, xi + 6 * L); a2 = va0.and(0xf000).reinterpretAsFloats().fma(x, a2); b2 = vb0.and(0xf000).reinterpretAsFloats().fma(x, b2);
            x = FloatVector.fromArray(F, xp, xi + 7 * L); a3 = va0.and(0xf0000).reinterpretAsFloats().fma(x, a3); b3 = vb0.and(0xf0000).reinterpretAsFloats().fma(x, b3);
            rA = a0.add(a1).add(a2.add(a3)).fma(FloatVector.broadcast(F, sc[gA + g]), rA);   // sum4, written out (C2 node budget)
            rB = b0.add(b1).add(b2.add(b3)).fma(FloatVector.broadcast(F, sc[gB + g]), rB);
        }
        rA.intoArray(rv, rvOff);
        rB.intoArray(rv, rvOff + L);
    }

    /**
     * 4-bit, every group exactly 2 chunk(s): rows o and o+1 (one row pair of the layout, one sequential stream of
     * words) times one token, each x load serving both rows; decode subnormal: value k of a lane is the masked bits themselves read as a float (q * 2^(pos-149), exact), values 5..7 masked from the word shifted right by 12.
     * Per row the operations are those of the class comment (four chains per group, the first product a plain
     * multiply). The lane-wise results of rows o and o+1 go to rv[rvOff..+L) and rv[rvOff+L..+2L) ({@link #finishRows}).
     */
    private static void pair4m2s(PackedGptq w, int o, float[] xp, float[] rv, int rvOff) {
        final int[] words = w.words;
        final float[] sc = w.scales;
        final int G = w.groups, cs = w.chunkStride, gA = o * G, gB = Math.min(o + 1, w.out - 1) * G;
        FloatVector rA = FloatVector.zero(F), rB = rA;
        for (int g = 0, wi = w.rowBase(o), xi = 0; g < G; g++, wi += 2 * cs, xi += 16 * L) {
            FloatVector a0, a1, a2, a3, b0, b1, b2, b3, x;
            IntVector wa0 = IntVector.fromArray(I, words, wi), wb0 = IntVector.fromArray(I, words, wi + L);
            IntVector va0 = wa0.lanewise(LSHR, 12), vb0 = wb0.lanewise(LSHR, 12);
            x = FloatVector.fromArray(F, xp, xi + 0 * L); a0 = wa0.and(0xf).reinterpretAsFloats().mul(x); b0 = wb0.and(0xf).reinterpretAsFloats().mul(x);
            x = FloatVector.fromArray(F, xp, xi + 1 * L); a1 = wa0.and(0xf0).reinterpretAsFloats().mul(x); b1 = wb0.and(0xf0).reinterpretAsFloats().mul(x);
            x = FloatVector.fromArray(F, xp, xi + 2 * L); a2 = wa0.and(0xf00).reinterpretAsFloats().mul(x); b2 = wb0.and(0xf00).reinterpretAsFloats().mul(x);
            x = FloatVector.fromArray(F, xp, xi + 3 * L); a3 = wa0.and(0xf000).reinterpretAsFloats().mul(x); b3 = wb0.and(0xf000).reinterpretAsFloats().mul(x);
            x = FloatVector.fromArray(F, xp, xi + 4 * L); a0 = wa0.and(0xf0000).reinterpretAsFloats().fma(x, a0); b0 = wb0.and(0xf0000).reinterpretAsFloats().fma(x, b0);
            x = FloatVector.fromArray(F, xp, xi + 5 * L); a1 = va0.and(0xf00).reinterpretAsFloats().fma(x, a1); b1 = vb0.and(0xf00).reinterpretAsFloats().fma(x, b1);
            x = FloatVector.fromArray(F, xp, xi + 6 * L); a2 = va0.and(0xf000).reinterpretAsFloats().fma(x, a2); b2 = vb0.and(0xf000).reinterpretAsFloats().fma(x, b2);
            x = FloatVector.fromArray(F, xp, xi + 7 * L); a3 = va0.and(0xf0000).reinterpretAsFloats().fma(x, a3); b3 = vb0.and(0xf0000).reinterpretAsFloats().fma(x, b3);
            IntVector wa1 = IntVector.fromArray(I, words, wi + cs), wb1 = IntVector.fromArray(I, words, wi + cs + L);
            IntVector va1 = wa1.lanewise(LSHR, 12), vb1 = wb1.lanewise(LSHR, 12);
            x = FloatVector.fromArray(F, xp, xi + 8 * L); a0 = wa1.and(0xf).reinterpretAsFloats().fma(x, a0); b0 = wb1.and(0xf).reinterpretAsFloats().fma(x, b0);
            x = FloatVector.fromArray(F, xp, xi + 9 * L); a1 = wa1.and(0xf0).reinterpretAsFloats().fma(x, a1); b1 = wb1.and(0xf0).reinterpretAsFloats().fma(x, b1);
            x = FloatVector.fromArray(F, xp, xi + 10 * L); a2 = wa1.and(0xf00).reinterpretAsFloats().fma(x, a2); b2 = wb1.and(0xf00).reinterpretAsFloats().fma(x, b2);
            x = FloatVector.fromArray(F, xp, xi + 11 * L); a3 = wa1.and(0xf000).reinterpretAsFloats().fma(x, a3); b3 = wb1.and(0xf000).reinterpretAsFloats().fma(x, b3);
            x = FloatVector.fromArray(F, xp, xi + 12 * L); a0 = wa1.and(0xf0000).reinterpretAsFloats().fma(x, a0); b0 = wb1.and(0xf0000).reinterpretAsFloats().fma(x, b0);
            x = FloatVector.fromArray(F, xp, xi + 13 * L); a1 = va1.and(0xf00).reinterpretAsFloats().fma(x, a1); b1 = vb1.and(0xf00).reinterpretAsFloats().fma(x, b1);
            x = FloatVector.fromArray(F, xp, xi + 14 * L); a2 = va1.and(0xf000).reinterpretAsFloats().fma(x, a2); b2 = vb1.and(0xf000).reinterpretAsFloats().fma(x, b2);
            x = FloatVector.fromArray(F, xp, xi + 15 * L); a3 = va1.and(0xf0000).reinterpretAsFloats().fma(x, a3); b3 = vb1.and(0xf0000).reinterpretAsFloats().fma(x, b3);
            rA = a0.add(a1).add(a2.add(a3)).fma(FloatVector.broadcast(F, sc[gA + g]), rA);   // sum4, written out (C2 node budget)
            rB = b0.add(b1).add(b2.add(b3)).fma(FloatVector.broadcast(F, sc[gB + g]), rB);
        }
        rA.intoArray(rv, rvOff);
        rB.intoArray(rv, rvOff + L);
    }

    /**
     * 4-bit, every group exactly 1 chunk(s): rows o and o+1 (one row pair of the layout, one sequential stream of
     * words) times one token, each x load serving both rows; decode converted: value k of a lane is (q << 4k) converted to float (the top value shifted down).
     * Per row the operations are those of the class comment (four chains per group, the first product a plain
     * multiply). The lane-wise results of rows o and o+1 go to rv[rvOff..+L) and rv[rvOff+L..+2L) ({@link #finishRows}).
     */
    private static void pair4m1c(PackedGptq w, int o, float[] xp, float[] rv, int rvOff) {
        final int[] words = w.words;
        final float[] sc = w.scales;
        final int G = w.groups, cs = w.chunkStride, gA = o * G, gB = Math.min(o + 1, w.out - 1) * G;
        FloatVector rA = FloatVector.zero(F), rB = rA;
        for (int g = 0, wi = w.rowBase(o), xi = 0; g < G; g++, wi += cs, xi += 8 * L) {
            FloatVector a0, a1, a2, a3, b0, b1, b2, b3, x;
            IntVector wa0 = IntVector.fromArray(I, words, wi), wb0 = IntVector.fromArray(I, words, wi + L);
            x = FloatVector.fromArray(F, xp, xi + 0 * L); a0 = ((FloatVector) wa0.and(0xf).convert(I2F, 0)).mul(x); b0 = ((FloatVector) wb0.and(0xf).convert(I2F, 0)).mul(x);
            x = FloatVector.fromArray(F, xp, xi + 1 * L); a1 = ((FloatVector) wa0.and(0xf0).convert(I2F, 0)).mul(x); b1 = ((FloatVector) wb0.and(0xf0).convert(I2F, 0)).mul(x);
            x = FloatVector.fromArray(F, xp, xi + 2 * L); a2 = ((FloatVector) wa0.and(0xf00).convert(I2F, 0)).mul(x); b2 = ((FloatVector) wb0.and(0xf00).convert(I2F, 0)).mul(x);
            x = FloatVector.fromArray(F, xp, xi + 3 * L); a3 = ((FloatVector) wa0.and(0xf000).convert(I2F, 0)).mul(x); b3 = ((FloatVector) wb0.and(0xf000).convert(I2F, 0)).mul(x);
            x = FloatVector.fromArray(F, xp, xi + 4 * L); a0 = ((FloatVector) wa0.and(0xf0000).convert(I2F, 0)).fma(x, a0); b0 = ((FloatVector) wb0.and(0xf0000).convert(I2F, 0)).fma(x, b0);
            x = FloatVector.fromArray(F, xp, xi + 5 * L); a1 = ((FloatVector) wa0.and(0xf00000).convert(I2F, 0)).fma(x, a1); b1 = ((FloatVector) wb0.and(0xf00000).convert(I2F, 0)).fma(x, b1);
            x = FloatVector.fromArray(F, xp, xi + 6 * L); a2 = ((FloatVector) wa0.and(0xf000000).convert(I2F, 0)).fma(x, a2); b2 = ((FloatVector) wb0.and(0xf000000).convert(I2F, 0)).fma(x, b2);
            x = FloatVector.fromArray(F, xp, xi + 7 * L); a3 = ((FloatVector) wa0.lanewise(LSHR, 28).convert(I2F, 0)).fma(x, a3); b3 = ((FloatVector) wb0.lanewise(LSHR, 28).convert(I2F, 0)).fma(x, b3);
            rA = a0.add(a1).add(a2.add(a3)).fma(FloatVector.broadcast(F, sc[gA + g]), rA);   // sum4, written out (C2 node budget)
            rB = b0.add(b1).add(b2.add(b3)).fma(FloatVector.broadcast(F, sc[gB + g]), rB);
        }
        rA.intoArray(rv, rvOff);
        rB.intoArray(rv, rvOff + L);
    }

    /**
     * 4-bit, every group exactly 2 chunk(s): rows o and o+1 (one row pair of the layout, one sequential stream of
     * words) times one token, each x load serving both rows; decode converted: value k of a lane is (q << 4k) converted to float (the top value shifted down).
     * Per row the operations are those of the class comment (four chains per group, the first product a plain
     * multiply). The lane-wise results of rows o and o+1 go to rv[rvOff..+L) and rv[rvOff+L..+2L) ({@link #finishRows}).
     */
    private static void pair4m2c(PackedGptq w, int o, float[] xp, float[] rv, int rvOff) {
        final int[] words = w.words;
        final float[] sc = w.scales;
        final int G = w.groups, cs = w.chunkStride, gA = o * G, gB = Math.min(o + 1, w.out - 1) * G;
        FloatVector rA = FloatVector.zero(F), rB = rA;
        for (int g = 0, wi = w.rowBase(o), xi = 0; g < G; g++, wi += 2 * cs, xi += 16 * L) {
            FloatVector a0, a1, a2, a3, b0, b1, b2, b3, x;
            IntVector wa0 = IntVector.fromArray(I, words, wi), wb0 = IntVector.fromArray(I, words, wi + L);
            x = FloatVector.fromArray(F, xp, xi + 0 * L); a0 = ((FloatVector) wa0.and(0xf).convert(I2F, 0)).mul(x); b0 = ((FloatVector) wb0.and(0xf).convert(I2F, 0)).mul(x);
            x = FloatVector.fromArray(F, xp, xi + 1 * L); a1 = ((FloatVector) wa0.and(0xf0).convert(I2F, 0)).mul(x); b1 = ((FloatVector) wb0.and(0xf0).convert(I2F, 0)).mul(x);
            x = FloatVector.fromArray(F, xp, xi + 2 * L); a2 = ((FloatVector) wa0.and(0xf00).convert(I2F, 0)).mul(x); b2 = ((FloatVector) wb0.and(0xf00).convert(I2F, 0)).mul(x);
            x = FloatVector.fromArray(F, xp, xi + 3 * L); a3 = ((FloatVector) wa0.and(0xf000).convert(I2F, 0)).mul(x); b3 = ((FloatVector) wb0.and(0xf000).convert(I2F, 0)).mul(x);
            x = FloatVector.fromArray(F, xp, xi + 4 * L); a0 = ((FloatVector) wa0.and(0xf0000).convert(I2F, 0)).fma(x, a0); b0 = ((FloatVector) wb0.and(0xf0000).convert(I2F, 0)).fma(x, b0);
            x = FloatVector.fromArray(F, xp, xi + 5 * L); a1 = ((FloatVector) wa0.and(0xf00000).convert(I2F, 0)).fma(x, a1); b1 = ((FloatVector) wb0.and(0xf00000).convert(I2F, 0)).fma(x, b1);
            x = FloatVector.fromArray(F, xp, xi + 6 * L); a2 = ((FloatVector) wa0.and(0xf000000).convert(I2F, 0)).fma(x, a2); b2 = ((FloatVector) wb0.and(0xf000000).convert(I2F, 0)).fma(x, b2);
            x = FloatVector.fromArray(F, xp, xi + 7 * L); a3 = ((FloatVector) wa0.lanewise(LSHR, 28).convert(I2F, 0)).fma(x, a3); b3 = ((FloatVector) wb0.lanewise(LSHR, 28).convert(I2F, 0)).fma(x, b3);
            IntVector wa1 = IntVector.fromArray(I, words, wi + cs), wb1 = IntVector.fromArray(I, words, wi + cs + L);
            x = FloatVector.fromArray(F, xp, xi + 8 * L); a0 = ((FloatVector) wa1.and(0xf).convert(I2F, 0)).fma(x, a0); b0 = ((FloatVector) wb1.and(0xf).convert(I2F, 0)).fma(x, b0);
            x = FloatVector.fromArray(F, xp, xi + 9 * L); a1 = ((FloatVector) wa1.and(0xf0).convert(I2F, 0)).fma(x, a1); b1 = ((FloatVector) wb1.and(0xf0).convert(I2F, 0)).fma(x, b1);
            x = FloatVector.fromArray(F, xp, xi + 10 * L); a2 = ((FloatVector) wa1.and(0xf00).convert(I2F, 0)).fma(x, a2); b2 = ((FloatVector) wb1.and(0xf00).convert(I2F, 0)).fma(x, b2);
            x = FloatVector.fromArray(F, xp, xi + 11 * L); a3 = ((FloatVector) wa1.and(0xf000).convert(I2F, 0)).fma(x, a3); b3 = ((FloatVector) wb1.and(0xf000).convert(I2F, 0)).fma(x, b3);
            x = FloatVector.fromArray(F, xp, xi + 12 * L); a0 = ((FloatVector) wa1.and(0xf0000).convert(I2F, 0)).fma(x, a0); b0 = ((FloatVector) wb1.and(0xf0000).convert(I2F, 0)).fma(x, b0);
            x = FloatVector.fromArray(F, xp, xi + 13 * L); a1 = ((FloatVector) wa1.and(0xf00000).convert(I2F, 0)).fma(x, a1); b1 = ((FloatVector) wb1.and(0xf00000).convert(I2F, 0)).fma(x, b1);
            x = FloatVector.fromArray(F, xp, xi + 14 * L); a2 = ((FloatVector) wa1.and(0xf000000).convert(I2F, 0)).fma(x, a2); b2 = ((FloatVector) wb1.and(0xf000000).convert(I2F, 0)).fma(x, b2);
            x = FloatVector.fromArray(F, xp, xi + 15 * L); a3 = ((FloatVector) wa1.lanewise(LSHR, 28).convert(I2F, 0)).fma(x, a3); b3 = ((FloatVector) wb1.lanewise(LSHR, 28).convert(I2F, 0)).fma(x, b3);
            rA = a0.add(a1).add(a2.add(a3)).fma(FloatVector.broadcast(F, sc[gA + g]), rA);   // sum4, written out (C2 node budget)
            rB = b0.add(b1).add(b2.add(b3)).fma(FloatVector.broadcast(F, sc[gB + g]), rB);
        }
        rA.intoArray(rv, rvOff);
        rB.intoArray(rv, rvOff + L);
    }

    private static void decode(PackedGptq w, boolean sub, int rowOff, float[] dq, int dqOff) {
        switch (w.bits) {
            case 2: decode2(w, rowOff, dq, dqOff); break;
            case 3: decode3(w, rowOff, dq, dqOff); break;
            case 4: if (sub) decode4s(w, rowOff, dq, dqOff); else decode4(w, rowOff, dq, dqOff); break;
            case 8: decode8(w, rowOff, dq, dqOff); break;
            default: throw new IllegalStateException(w.name + ": unsupported bits " + w.bits);
        }
    }

    /**
     * Rows o0 and o1 (decoded in dq[0..K) and dq[K..2K)) times T tokens; res[(t*2 + r)*L ..] gets the lane-wise
     * result of token t, row r (before the zero correction). Per (token, row) the operations are those of {@code dot*}.
     */
    private static void rowPair(PackedGptq w, int o0, int o1, float[] dq, float[] xp, int T, float[] res, float[] part) {
        final int K = w.paddedIn, G = w.groups;
        final int[] gSlots = w.groupSlots;
        if (w.bits == 4 && (w.chunksPerGroup == 1 || w.chunksPerGroup == 2)) {
            for (int t = 0; t < T; t += 2) {
                int u = Math.min(t + 1, T - 1);                       // an odd last token pairs with itself
                if (w.chunksPerGroup == 1) flat8(dq, K, xp, t * K, u * K, G, w.scales, o0 * G, o1 * G, res, t, u);
                else flat16(dq, K, xp, t * K, u * K, G, w.scales, o0 * G, o1 * G, res, t, u);
            }
            return;
        }
        java.util.Arrays.fill(res, 0, T * 2 * L, 0f);
        int j0 = 0;
        for (int g = 0; g < G; g++) {
            int n = gSlots[g], j1 = j0 + n;
            float s0 = w.scales[o0 * G + g], s1 = w.scales[o1 * G + g];
            if (((j0 | n) & 3) == 0) {
                for (int t = 0; t < T; t += 2) {
                    int u = Math.min(t + 1, T - 1);                   // an odd last token pairs with itself
                    tile(dq, K, xp, t * K, u * K, j0, j1, part);
                    closePart(res, t * 2, part, 0, s0);
                    closePart(res, t * 2 + 1, part, 4, s1);
                    if (u != t) {
                        closePart(res, u * 2, part, 8, s0);
                        closePart(res, u * 2 + 1, part, 12, s1);
                    }
                }
            } else {
                for (int t = 0; t < T; t++) {
                    closeInto(res, t * 2, chains(dq, 0, xp, t * K, j0, j1, part), s0);
                    closeInto(res, t * 2 + 1, chains(dq, K, xp, t * K, j0, j1, part), s1);
                }
            }
            j0 = j1;
        }
    }

    /**
     * Rows o0, o1 (decoded in dq) by tokens t and u over all groups, every group exactly 8 slots (4-bit layouts that
     * {@code dot4m1} runs): one flat loop with the row results in registers; the operations per (token, row) are
     * those of {@code dot4m1} (first product of a chain a plain multiply). Results into res[(t*2 + r)*L ..] and,
     * when u != t, res[(u*2 + r)*L ..].
     */
    private static void flat8(float[] dq, int K, float[] xp, int xt, int xu, int G, float[] sc, int g0, int g1,
                              float[] res, int t, int u) {
        FloatVector r0t = FloatVector.zero(F), r1t = r0t, r0u = r0t, r1u = r0t;
        for (int g = 0, d = 0; g < G; g++, d += 8 * L) {
            FloatVector a0t0, a0t1, a0t2, a0t3, a0u0, a0u1, a0u2, a0u3, a1t0, a1t1, a1t2, a1t3, a1u0, a1u1, a1u2, a1u3;
            FloatVector q0, q1, xa, xb;
                q0 = FloatVector.fromArray(F, dq, d + 0 * L); q1 = FloatVector.fromArray(F, dq, K + d + 0 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 0 * L); xb = FloatVector.fromArray(F, xp, xu + d + 0 * L);
                a0t0 = q0.mul(xa); a0u0 = q0.mul(xb); a1t0 = q1.mul(xa); a1u0 = q1.mul(xb);
                q0 = FloatVector.fromArray(F, dq, d + 1 * L); q1 = FloatVector.fromArray(F, dq, K + d + 1 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 1 * L); xb = FloatVector.fromArray(F, xp, xu + d + 1 * L);
                a0t1 = q0.mul(xa); a0u1 = q0.mul(xb); a1t1 = q1.mul(xa); a1u1 = q1.mul(xb);
                q0 = FloatVector.fromArray(F, dq, d + 2 * L); q1 = FloatVector.fromArray(F, dq, K + d + 2 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 2 * L); xb = FloatVector.fromArray(F, xp, xu + d + 2 * L);
                a0t2 = q0.mul(xa); a0u2 = q0.mul(xb); a1t2 = q1.mul(xa); a1u2 = q1.mul(xb);
                q0 = FloatVector.fromArray(F, dq, d + 3 * L); q1 = FloatVector.fromArray(F, dq, K + d + 3 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 3 * L); xb = FloatVector.fromArray(F, xp, xu + d + 3 * L);
                a0t3 = q0.mul(xa); a0u3 = q0.mul(xb); a1t3 = q1.mul(xa); a1u3 = q1.mul(xb);
                q0 = FloatVector.fromArray(F, dq, d + 4 * L); q1 = FloatVector.fromArray(F, dq, K + d + 4 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 4 * L); xb = FloatVector.fromArray(F, xp, xu + d + 4 * L);
                a0t0 = q0.fma(xa, a0t0); a0u0 = q0.fma(xb, a0u0); a1t0 = q1.fma(xa, a1t0); a1u0 = q1.fma(xb, a1u0);
                q0 = FloatVector.fromArray(F, dq, d + 5 * L); q1 = FloatVector.fromArray(F, dq, K + d + 5 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 5 * L); xb = FloatVector.fromArray(F, xp, xu + d + 5 * L);
                a0t1 = q0.fma(xa, a0t1); a0u1 = q0.fma(xb, a0u1); a1t1 = q1.fma(xa, a1t1); a1u1 = q1.fma(xb, a1u1);
                q0 = FloatVector.fromArray(F, dq, d + 6 * L); q1 = FloatVector.fromArray(F, dq, K + d + 6 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 6 * L); xb = FloatVector.fromArray(F, xp, xu + d + 6 * L);
                a0t2 = q0.fma(xa, a0t2); a0u2 = q0.fma(xb, a0u2); a1t2 = q1.fma(xa, a1t2); a1u2 = q1.fma(xb, a1u2);
                q0 = FloatVector.fromArray(F, dq, d + 7 * L); q1 = FloatVector.fromArray(F, dq, K + d + 7 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 7 * L); xb = FloatVector.fromArray(F, xp, xu + d + 7 * L);
                a0t3 = q0.fma(xa, a0t3); a0u3 = q0.fma(xb, a0u3); a1t3 = q1.fma(xa, a1t3); a1u3 = q1.fma(xb, a1u3);
            FloatVector s0 = FloatVector.broadcast(F, sc[g0 + g]), s1 = FloatVector.broadcast(F, sc[g1 + g]);
            r0t = a0t0.add(a0t1).add(a0t2.add(a0t3)).fma(s0, r0t);
            r1t = a1t0.add(a1t1).add(a1t2.add(a1t3)).fma(s1, r1t);
            r0u = a0u0.add(a0u1).add(a0u2.add(a0u3)).fma(s0, r0u);
            r1u = a1u0.add(a1u1).add(a1u2.add(a1u3)).fma(s1, r1u);
        }
        r0t.intoArray(res, (t * 2) * L);
        r1t.intoArray(res, (t * 2 + 1) * L);
        if (u != t) {
            r0u.intoArray(res, (u * 2) * L);
            r1u.intoArray(res, (u * 2 + 1) * L);
        }
    }

    /**
     * Rows o0, o1 (decoded in dq) by tokens t and u over all groups, every group exactly 16 slots (4-bit layouts that
     * {@code dot4m2} runs): one flat loop with the row results in registers; the operations per (token, row) are
     * those of {@code dot4m2} (first product of a chain a plain multiply). Results into res[(t*2 + r)*L ..] and,
     * when u != t, res[(u*2 + r)*L ..].
     */
    private static void flat16(float[] dq, int K, float[] xp, int xt, int xu, int G, float[] sc, int g0, int g1,
                              float[] res, int t, int u) {
        FloatVector r0t = FloatVector.zero(F), r1t = r0t, r0u = r0t, r1u = r0t;
        for (int g = 0, d = 0; g < G; g++, d += 16 * L) {
            FloatVector a0t0, a0t1, a0t2, a0t3, a0u0, a0u1, a0u2, a0u3, a1t0, a1t1, a1t2, a1t3, a1u0, a1u1, a1u2, a1u3;
            FloatVector q0, q1, xa, xb;
                q0 = FloatVector.fromArray(F, dq, d + 0 * L); q1 = FloatVector.fromArray(F, dq, K + d + 0 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 0 * L); xb = FloatVector.fromArray(F, xp, xu + d + 0 * L);
                a0t0 = q0.mul(xa); a0u0 = q0.mul(xb); a1t0 = q1.mul(xa); a1u0 = q1.mul(xb);
                q0 = FloatVector.fromArray(F, dq, d + 1 * L); q1 = FloatVector.fromArray(F, dq, K + d + 1 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 1 * L); xb = FloatVector.fromArray(F, xp, xu + d + 1 * L);
                a0t1 = q0.mul(xa); a0u1 = q0.mul(xb); a1t1 = q1.mul(xa); a1u1 = q1.mul(xb);
                q0 = FloatVector.fromArray(F, dq, d + 2 * L); q1 = FloatVector.fromArray(F, dq, K + d + 2 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 2 * L); xb = FloatVector.fromArray(F, xp, xu + d + 2 * L);
                a0t2 = q0.mul(xa); a0u2 = q0.mul(xb); a1t2 = q1.mul(xa); a1u2 = q1.mul(xb);
                q0 = FloatVector.fromArray(F, dq, d + 3 * L); q1 = FloatVector.fromArray(F, dq, K + d + 3 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 3 * L); xb = FloatVector.fromArray(F, xp, xu + d + 3 * L);
                a0t3 = q0.mul(xa); a0u3 = q0.mul(xb); a1t3 = q1.mul(xa); a1u3 = q1.mul(xb);
                q0 = FloatVector.fromArray(F, dq, d + 4 * L); q1 = FloatVector.fromArray(F, dq, K + d + 4 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 4 * L); xb = FloatVector.fromArray(F, xp, xu + d + 4 * L);
                a0t0 = q0.fma(xa, a0t0); a0u0 = q0.fma(xb, a0u0); a1t0 = q1.fma(xa, a1t0); a1u0 = q1.fma(xb, a1u0);
                q0 = FloatVector.fromArray(F, dq, d + 5 * L); q1 = FloatVector.fromArray(F, dq, K + d + 5 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 5 * L); xb = FloatVector.fromArray(F, xp, xu + d + 5 * L);
                a0t1 = q0.fma(xa, a0t1); a0u1 = q0.fma(xb, a0u1); a1t1 = q1.fma(xa, a1t1); a1u1 = q1.fma(xb, a1u1);
                q0 = FloatVector.fromArray(F, dq, d + 6 * L); q1 = FloatVector.fromArray(F, dq, K + d + 6 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 6 * L); xb = FloatVector.fromArray(F, xp, xu + d + 6 * L);
                a0t2 = q0.fma(xa, a0t2); a0u2 = q0.fma(xb, a0u2); a1t2 = q1.fma(xa, a1t2); a1u2 = q1.fma(xb, a1u2);
                q0 = FloatVector.fromArray(F, dq, d + 7 * L); q1 = FloatVector.fromArray(F, dq, K + d + 7 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 7 * L); xb = FloatVector.fromArray(F, xp, xu + d + 7 * L);
                a0t3 = q0.fma(xa, a0t3); a0u3 = q0.fma(xb, a0u3); a1t3 = q1.fma(xa, a1t3); a1u3 = q1.fma(xb, a1u3);
                q0 = FloatVector.fromArray(F, dq, d + 8 * L); q1 = FloatVector.fromArray(F, dq, K + d + 8 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 8 * L); xb = FloatVector.fromArray(F, xp, xu + d + 8 * L);
                a0t0 = q0.fma(xa, a0t0); a0u0 = q0.fma(xb, a0u0); a1t0 = q1.fma(xa, a1t0); a1u0 = q1.fma(xb, a1u0);
                q0 = FloatVector.fromArray(F, dq, d + 9 * L); q1 = FloatVector.fromArray(F, dq, K + d + 9 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 9 * L); xb = FloatVector.fromArray(F, xp, xu + d + 9 * L);
                a0t1 = q0.fma(xa, a0t1); a0u1 = q0.fma(xb, a0u1); a1t1 = q1.fma(xa, a1t1); a1u1 = q1.fma(xb, a1u1);
                q0 = FloatVector.fromArray(F, dq, d + 10 * L); q1 = FloatVector.fromArray(F, dq, K + d + 10 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 10 * L); xb = FloatVector.fromArray(F, xp, xu + d + 10 * L);
                a0t2 = q0.fma(xa, a0t2); a0u2 = q0.fma(xb, a0u2); a1t2 = q1.fma(xa, a1t2); a1u2 = q1.fma(xb, a1u2);
                q0 = FloatVector.fromArray(F, dq, d + 11 * L); q1 = FloatVector.fromArray(F, dq, K + d + 11 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 11 * L); xb = FloatVector.fromArray(F, xp, xu + d + 11 * L);
                a0t3 = q0.fma(xa, a0t3); a0u3 = q0.fma(xb, a0u3); a1t3 = q1.fma(xa, a1t3); a1u3 = q1.fma(xb, a1u3);
                q0 = FloatVector.fromArray(F, dq, d + 12 * L); q1 = FloatVector.fromArray(F, dq, K + d + 12 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 12 * L); xb = FloatVector.fromArray(F, xp, xu + d + 12 * L);
                a0t0 = q0.fma(xa, a0t0); a0u0 = q0.fma(xb, a0u0); a1t0 = q1.fma(xa, a1t0); a1u0 = q1.fma(xb, a1u0);
                q0 = FloatVector.fromArray(F, dq, d + 13 * L); q1 = FloatVector.fromArray(F, dq, K + d + 13 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 13 * L); xb = FloatVector.fromArray(F, xp, xu + d + 13 * L);
                a0t1 = q0.fma(xa, a0t1); a0u1 = q0.fma(xb, a0u1); a1t1 = q1.fma(xa, a1t1); a1u1 = q1.fma(xb, a1u1);
                q0 = FloatVector.fromArray(F, dq, d + 14 * L); q1 = FloatVector.fromArray(F, dq, K + d + 14 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 14 * L); xb = FloatVector.fromArray(F, xp, xu + d + 14 * L);
                a0t2 = q0.fma(xa, a0t2); a0u2 = q0.fma(xb, a0u2); a1t2 = q1.fma(xa, a1t2); a1u2 = q1.fma(xb, a1u2);
                q0 = FloatVector.fromArray(F, dq, d + 15 * L); q1 = FloatVector.fromArray(F, dq, K + d + 15 * L);
                xa = FloatVector.fromArray(F, xp, xt + d + 15 * L); xb = FloatVector.fromArray(F, xp, xu + d + 15 * L);
                a0t3 = q0.fma(xa, a0t3); a0u3 = q0.fma(xb, a0u3); a1t3 = q1.fma(xa, a1t3); a1u3 = q1.fma(xb, a1u3);
            FloatVector s0 = FloatVector.broadcast(F, sc[g0 + g]), s1 = FloatVector.broadcast(F, sc[g1 + g]);
            r0t = a0t0.add(a0t1).add(a0t2.add(a0t3)).fma(s0, r0t);
            r1t = a1t0.add(a1t1).add(a1t2.add(a1t3)).fma(s1, r1t);
            r0u = a0u0.add(a0u1).add(a0u2.add(a0u3)).fma(s0, r0u);
            r1u = a1u0.add(a1u1).add(a1u2.add(a1u3)).fma(s1, r1u);
        }
        r0t.intoArray(res, (t * 2) * L);
        r1t.intoArray(res, (t * 2 + 1) * L);
        if (u != t) {
            r0u.intoArray(res, (u * 2) * L);
            r1u.intoArray(res, (u * 2 + 1) * L);
        }
    }

    /**
     * Two rows by tokens t and u over a group whose slots [j0, j1) start and end on a multiple of 4: the four partial
     * sums of (row 0, t), (row 1, t), (row 0, u), (row 1, u) into part[0..16L).
     */
    private static void tile(float[] dq, int K, float[] xp, int xt, int xu, int j0, int j1, float[] part) {
        FloatVector z = FloatVector.zero(F);
        FloatVector a0t0 = z, a0t1 = z, a0t2 = z, a0t3 = z, a0u0 = z, a0u1 = z, a0u2 = z, a0u3 = z;
        FloatVector a1t0 = z, a1t1 = z, a1t2 = z, a1t3 = z, a1u0 = z, a1u1 = z, a1u2 = z, a1u3 = z;
        for (int j = j0 * L, e = j1 * L; j < e; j += 4 * L) {
            FloatVector q0, q1, xa, xb;
            q0 = FloatVector.fromArray(F, dq, j); q1 = FloatVector.fromArray(F, dq, K + j);
            xa = FloatVector.fromArray(F, xp, xt + j); xb = FloatVector.fromArray(F, xp, xu + j);
            a0t0 = q0.fma(xa, a0t0); a0u0 = q0.fma(xb, a0u0); a1t0 = q1.fma(xa, a1t0); a1u0 = q1.fma(xb, a1u0);
            q0 = FloatVector.fromArray(F, dq, j + L); q1 = FloatVector.fromArray(F, dq, K + j + L);
            xa = FloatVector.fromArray(F, xp, xt + j + L); xb = FloatVector.fromArray(F, xp, xu + j + L);
            a0t1 = q0.fma(xa, a0t1); a0u1 = q0.fma(xb, a0u1); a1t1 = q1.fma(xa, a1t1); a1u1 = q1.fma(xb, a1u1);
            q0 = FloatVector.fromArray(F, dq, j + 2 * L); q1 = FloatVector.fromArray(F, dq, K + j + 2 * L);
            xa = FloatVector.fromArray(F, xp, xt + j + 2 * L); xb = FloatVector.fromArray(F, xp, xu + j + 2 * L);
            a0t2 = q0.fma(xa, a0t2); a0u2 = q0.fma(xb, a0u2); a1t2 = q1.fma(xa, a1t2); a1u2 = q1.fma(xb, a1u2);
            q0 = FloatVector.fromArray(F, dq, j + 3 * L); q1 = FloatVector.fromArray(F, dq, K + j + 3 * L);
            xa = FloatVector.fromArray(F, xp, xt + j + 3 * L); xb = FloatVector.fromArray(F, xp, xu + j + 3 * L);
            a0t3 = q0.fma(xa, a0t3); a0u3 = q0.fma(xb, a0u3); a1t3 = q1.fma(xa, a1t3); a1u3 = q1.fma(xb, a1u3);
        }
        a0t0.intoArray(part, 0); a0t1.intoArray(part, L); a0t2.intoArray(part, 2 * L); a0t3.intoArray(part, 3 * L);
        a1t0.intoArray(part, 4 * L); a1t1.intoArray(part, 5 * L); a1t2.intoArray(part, 6 * L); a1t3.intoArray(part, 7 * L);
        a0u0.intoArray(part, 8 * L); a0u1.intoArray(part, 9 * L); a0u2.intoArray(part, 10 * L); a0u3.intoArray(part, 11 * L);
        a1u0.intoArray(part, 12 * L); a1u1.intoArray(part, 13 * L); a1u2.intoArray(part, 14 * L); a1u3.intoArray(part, 15 * L);
    }

    /** res[i] += sum4(the four partial sums at part[p*L..]) * scale (kept out of {@link #tile}: C2 node budget). */
    private static void closePart(float[] res, int i, float[] part, int p, float scale) {
        FloatVector acc = sum4(FloatVector.fromArray(F, part, p * L), FloatVector.fromArray(F, part, (p + 1) * L),
                FloatVector.fromArray(F, part, (p + 2) * L), FloatVector.fromArray(F, part, (p + 3) * L));
        closeInto(res, i, acc, scale);
    }

    /** One row and token over any group: the four chains one after another, then combined as in {@link #sum4}. */
    private static FloatVector chains(float[] dq, int dqOff, float[] xp, int xOff, int j0, int j1, float[] part) {
        for (int k = 0; k < 4; k++) {
            FloatVector a = FloatVector.zero(F);
            for (int j = j0 + ((k - j0) & 3); j < j1; j += 4) {
                a = FloatVector.fromArray(F, dq, dqOff + j * L).fma(FloatVector.fromArray(F, xp, xOff + j * L), a);
            }
            a.intoArray(part, k * L);
        }
        return sum4(FloatVector.fromArray(F, part, 0), FloatVector.fromArray(F, part, L),
                FloatVector.fromArray(F, part, 2 * L), FloatVector.fromArray(F, part, 3 * L));
    }

    private static void closeInto(float[] res, int i, FloatVector acc, float scale) {
        acc.fma(FloatVector.broadcast(F, scale), FloatVector.fromArray(F, res, i * L)).intoArray(res, i * L);
    }

    // ---- generated per bit width: value s of a lane is column chunkStart + s*L + lane ----

    /** One row times one token, 2-bit layout; returns the lane-wise result (see {@link #close}). */
    private static float dot2(PackedGptq w, int rowOff, float[] xp, int gOff, float[] tmp) {
        final int[] words = w.words, gSlots = w.groupSlots;
        final float[] sc = w.scales;
        FloatVector res = FloatVector.zero(F), a0 = res, a1 = res, a2 = res, a3 = res;
        int g = 0, rem = gSlots[0], xi = 0, wi = rowOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += w.chunkStride) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            a0 = ((FloatVector) w0.and(0x3).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0xc).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.and(0x30).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w0.and(0xc0).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w0.and(0x300).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0xc00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.and(0x3000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w0.and(0xc000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w0.and(0x30000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0xc0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.and(0x300000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w0.and(0xc00000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w0.and(0x3000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0xc000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.and(0x30000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w0.lanewise(LSHR, 30).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
        }
        res.intoArray(tmp, 0);
        return sumLanes(tmp, 0);   // reduced here: returning the vector would box it
    }

    /** One row times one token, 3-bit layout; returns the lane-wise result (see {@link #close}). */
    private static float dot3(PackedGptq w, int rowOff, float[] xp, int gOff, float[] tmp) {
        final int[] words = w.words, gSlots = w.groupSlots;
        final float[] sc = w.scales;
        FloatVector res = FloatVector.zero(F), a0 = res, a1 = res, a2 = res, a3 = res;
        int g = 0, rem = gSlots[0], xi = 0, wi = rowOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += w.chunkStride) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            IntVector w1 = IntVector.fromArray(I, words, wi + 1 * L);
            IntVector w2 = IntVector.fromArray(I, words, wi + 2 * L);
            a0 = ((FloatVector) w0.and(0x7).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0x38).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.and(0x1c0).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w0.and(0xe00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w0.and(0x7000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0x38000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.and(0x1c0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w0.and(0xe00000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w0.and(0x7000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0x38000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.lanewise(LSHR, 30).or(w1.and(0x1).lanewise(LSHL, 2)).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w1.and(0xe).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w1.and(0x70).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w1.and(0x380).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w1.and(0x1c00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w1.and(0xe000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w1.and(0x70000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w1.and(0x380000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w1.and(0x1c00000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w1.and(0xe000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w1.and(0x70000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w1.lanewise(LSHR, 31).or(w2.and(0x3).lanewise(LSHL, 1)).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w2.and(0x1c).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w2.and(0xe0).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w2.and(0x700).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w2.and(0x3800).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w2.and(0x1c000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w2.and(0xe0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w2.and(0x700000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w2.and(0x3800000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w2.and(0x1c000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w2.lanewise(LSHR, 29).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
        }
        res.intoArray(tmp, 0);
        return sumLanes(tmp, 0);   // reduced here: returning the vector would box it
    }

    /** One row times one token, 4-bit layout; returns the lane-wise result (see {@link #close}). */
    private static float dot4(PackedGptq w, int rowOff, float[] xp, int gOff, float[] tmp) {
        final int[] words = w.words, gSlots = w.groupSlots;
        final float[] sc = w.scales;
        FloatVector res = FloatVector.zero(F), a0 = res, a1 = res, a2 = res, a3 = res;
        int g = 0, rem = gSlots[0], xi = 0, wi = rowOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += w.chunkStride) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            a0 = ((FloatVector) w0.and(0xf).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0xf0).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.and(0xf00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w0.and(0xf000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a0 = ((FloatVector) w0.and(0xf0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0xf00000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.and(0xf000000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w0.lanewise(LSHR, 28).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
        }
        res.intoArray(tmp, 0);
        return sumLanes(tmp, 0);   // reduced here: returning the vector would box it
    }

    /** One row times one token, 8-bit layout; returns the lane-wise result (see {@link #close}). */
    private static float dot8(PackedGptq w, int rowOff, float[] xp, int gOff, float[] tmp) {
        final int[] words = w.words, gSlots = w.groupSlots;
        final float[] sc = w.scales;
        FloatVector res = FloatVector.zero(F), a0 = res, a1 = res, a2 = res, a3 = res;
        int g = 0, rem = gSlots[0], xi = 0, wi = rowOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += w.chunkStride) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            a0 = ((FloatVector) w0.and(0xff).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a0);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a1 = ((FloatVector) w0.and(0xff00).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a1);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a2 = ((FloatVector) w0.and(0xff0000).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a2);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
            a3 = ((FloatVector) w0.lanewise(LSHR, 24).convert(I2F, 0)).fma(FloatVector.fromArray(F, xp, xi), a3);
            xi += L;
            if (--rem == 0) { res = sum4(a0, a1, a2, a3).fma(FloatVector.broadcast(F, sc[gOff + g]), res); a0 = a1 = a2 = a3 = FloatVector.zero(F); rem = gSlots[++g]; }
        }
        res.intoArray(tmp, 0);
        return sumLanes(tmp, 0);   // reduced here: returning the vector would box it
    }

    /** Decodes one row of the 2-bit layout to floats q << inPlaceShift, slot after slot. */
    private static void decode2(PackedGptq w, int rowOff, float[] dq, int dqOff) {
        final int[] words = w.words;
        int wi = rowOff, di = dqOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += w.chunkStride, di += 16 * L) {
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
    private static void decode3(PackedGptq w, int rowOff, float[] dq, int dqOff) {
        final int[] words = w.words;
        int wi = rowOff, di = dqOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += w.chunkStride, di += 32 * L) {
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
    private static void decode4(PackedGptq w, int rowOff, float[] dq, int dqOff) {
        final int[] words = w.words;
        int wi = rowOff, di = dqOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += w.chunkStride, di += 8 * L) {
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

    /** Decodes one row of the 4-bit layout to the subnormal floats of {@code pair4m*s} (q * 2^(pos-149)), slot after slot. */
    private static void decode4s(PackedGptq w, int rowOff, float[] dq, int dqOff) {
        final int[] words = w.words;
        int wi = rowOff, di = dqOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += w.chunkStride, di += 8 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi), v0 = w0.lanewise(LSHR, 12);
            w0.and(0xf).reinterpretAsFloats().intoArray(dq, di + 0 * L);
            w0.and(0xf0).reinterpretAsFloats().intoArray(dq, di + 1 * L);
            w0.and(0xf00).reinterpretAsFloats().intoArray(dq, di + 2 * L);
            w0.and(0xf000).reinterpretAsFloats().intoArray(dq, di + 3 * L);
            w0.and(0xf0000).reinterpretAsFloats().intoArray(dq, di + 4 * L);
            v0.and(0xf00).reinterpretAsFloats().intoArray(dq, di + 5 * L);
            v0.and(0xf000).reinterpretAsFloats().intoArray(dq, di + 6 * L);
            v0.and(0xf0000).reinterpretAsFloats().intoArray(dq, di + 7 * L);
        }
    }

    /** Decodes one row of the 8-bit layout to floats q << inPlaceShift, slot after slot. */
    private static void decode8(PackedGptq w, int rowOff, float[] dq, int dqOff) {
        final int[] words = w.words;
        int wi = rowOff, di = dqOff;
        for (int c = 0, n = w.chunks; c < n; c++, wi += w.chunkStride, di += 4 * L) {
            IntVector w0 = IntVector.fromArray(I, words, wi + 0 * L);
            ((FloatVector) w0.and(0xff).convert(I2F, 0)).intoArray(dq, di + 0 * L);
            ((FloatVector) w0.and(0xff00).convert(I2F, 0)).intoArray(dq, di + 1 * L);
            ((FloatVector) w0.and(0xff0000).convert(I2F, 0)).intoArray(dq, di + 2 * L);
            ((FloatVector) w0.lanewise(LSHR, 24).convert(I2F, 0)).intoArray(dq, di + 3 * L);
        }
    }

}
