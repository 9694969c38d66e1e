package gptq4j.backend.cpu;

import gptq4j.util.Half;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.LSHL;

/**
 * Vector API product with an fp16 {@link HalfDense} matrix. fp16 → float32 in registers, exact for finite values:
 * the half's sign goes to bit 31 and its 15 exponent/mantissa bits to bits 27..13 ({@code (h << 16 >> 3) &
 * 0x8FFFE000}), which reads as the value times 2^-112 (normal and subnormal halves alike), then one multiply by
 * 2^112.
 *
 * <p>Per (token, row): four FMA chains over the columns, chain k taking the k-th of each run of 4L columns (k = 0, 1:
 * low and high halves of an even block; 2, 3: of the odd block), combined {@code (a0 + a1) + (a2 + a3)}, lanes added
 * left to right, then the tail columns left to right. T = 1 converts in registers; T > 1 converts each row once to
 * floats and runs tiles of 4 tokens (16 accumulators); both perform the same operations per (token, row).
 * Loaded only through {@link Kernels}.
 */
public final class VectorHalfDenseKernel implements HalfDenseKernel {
    static final VectorSpecies<Float> F = VectorWidth.FLOAT;
    static final VectorSpecies<Integer> I = VectorWidth.INT;
    static final int L = F.length();
    private static final float TWO_112 = 0x1p112f;
    private static final int MASK = 0x8FFFE000;

    private final Parallel parallel;

    private static final class Scratch {
        float[] row = new float[0];
        final float[] part = new float[16 * L];
        final float[] tmp = new float[L];

        float[] row(int n) { return row.length >= n ? row : (row = new float[n]); }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    public VectorHalfDenseKernel(Parallel parallel) { this.parallel = parallel; }

    @Override public String name() { return "cpu-vector"; }

    @Override
    public void matmul(HalfDense m, float[] x, int xOff, int T, float[] out, int outOff) {
        m.checkArgs(x, xOff, T, out, outOff);
        if (m.lanes != L) {
            throw new IllegalArgumentException(m.name + " was packed for " + m.lanes + " lanes but this kernel uses " + L);
        }
        final int C = m.cols, R = m.rows, pairs = m.blocks / 2, cv = m.blocks * 2 * L;
        parallel.parallelFor(R, ScalarHalfDenseKernel.rowGrain(m), (from, to) -> {
            Scratch s = SCRATCH.get();
            if (T == 1) {
                for (int r = from; r < to; r++) {
                    float v = dotPacked(m.packed, r * m.blocks * L, pairs, x, xOff, s.tmp);
                    out[outOff + r] = tail(m, r, v, x, xOff, cv);
                }
                return;
            }
            float[] row = s.row(cv);
            for (int r = from; r < to; r++) {
                decode(m.packed, r * m.blocks * L, m.blocks, row);
                int t = 0;
                for (; t + 4 <= T; t += 4) {
                    int x0 = xOff + t * C;
                    tile4(row, pairs, x, x0, x0 + C, x0 + 2 * C, x0 + 3 * C, s.part);
                    for (int k = 0; k < 4; k++) {
                        float v = reducePart(s.part, 4 * k, s.tmp);
                        out[outOff + (t + k) * R + r] = tail(m, r, v, x, xOff + (t + k) * C, cv);
                    }
                }
                for (; t < T; t++) {
                    float v = dotRow(row, pairs, x, xOff + t * C, s.tmp);
                    out[outOff + t * R + r] = tail(m, r, v, x, xOff + t * C, cv);
                }
            }
        });
    }

    /** v plus the tail columns [cv, cols) left to right. */
    private static float tail(HalfDense m, int r, float v, float[] x, int xo, int cv) {
        for (int c = 0; c < m.tailCols; c++) v += Half.toFloat(m.tail[r * m.tailCols + c]) * x[xo + cv + c];
        return v;
    }

    /** T = 1: converts and multiplies in registers; returns the chains combined and lane-summed. */
    private static float dotPacked(int[] p, int po, int pairs, float[] x, int xo, float[] tmp) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < pairs; k++, po += 2 * L, xo += 4 * L) {
            IntVector w0 = IntVector.fromArray(I, p, po), w1 = IntVector.fromArray(I, p, po + L);
            FloatVector q0 = w0.lanewise(LSHL, 16).lanewise(ASHR, 3).and(MASK).reinterpretAsFloats().mul(TWO_112);
            FloatVector q1 = w0.lanewise(ASHR, 3).and(MASK).reinterpretAsFloats().mul(TWO_112);
            FloatVector q2 = w1.lanewise(LSHL, 16).lanewise(ASHR, 3).and(MASK).reinterpretAsFloats().mul(TWO_112);
            FloatVector q3 = w1.lanewise(ASHR, 3).and(MASK).reinterpretAsFloats().mul(TWO_112);
            a0 = q0.fma(FloatVector.fromArray(F, x, xo), a0);
            a1 = q1.fma(FloatVector.fromArray(F, x, xo + L), a1);
            a2 = q2.fma(FloatVector.fromArray(F, x, xo + 2 * L), a2);
            a3 = q3.fma(FloatVector.fromArray(F, x, xo + 3 * L), a3);
        }
        a0.add(a1).add(a2.add(a3)).intoArray(tmp, 0);
        return VectorGptqKernel.sumLanes(tmp, 0);
    }

    /** Row to floats in column order (the values {@link #dotPacked} computes). */
    private static void decode(int[] p, int po, int blocks, float[] row) {
        for (int b = 0, ro = 0; b < blocks; b++, po += L, ro += 2 * L) {
            IntVector w = IntVector.fromArray(I, p, po);
            w.lanewise(LSHL, 16).lanewise(ASHR, 3).and(MASK).reinterpretAsFloats().mul(TWO_112).intoArray(row, ro);
            w.lanewise(ASHR, 3).and(MASK).reinterpretAsFloats().mul(TWO_112).intoArray(row, ro + L);
        }
    }

    /** One token on a decoded row, the operations of {@link #dotPacked}. */
    private static float dotRow(float[] row, int pairs, float[] x, int xo, float[] tmp) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0, ro = 0; k < pairs; k++, ro += 4 * L, xo += 4 * L) {
            a0 = FloatVector.fromArray(F, row, ro).fma(FloatVector.fromArray(F, x, xo), a0);
            a1 = FloatVector.fromArray(F, row, ro + L).fma(FloatVector.fromArray(F, x, xo + L), a1);
            a2 = FloatVector.fromArray(F, row, ro + 2 * L).fma(FloatVector.fromArray(F, x, xo + 2 * L), a2);
            a3 = FloatVector.fromArray(F, row, ro + 3 * L).fma(FloatVector.fromArray(F, x, xo + 3 * L), a3);
        }
        a0.add(a1).add(a2.add(a3)).intoArray(tmp, 0);
        return VectorGptqKernel.sumLanes(tmp, 0);
    }

    /** Four tokens on a decoded row: token k's four chains into part[(4k + j)*L ..]. */
    private static void tile4(float[] row, int pairs, float[] x, int xa, int xb, int xc, int xd, float[] part) {
        FloatVector z = FloatVector.zero(F);
        FloatVector a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
        FloatVector c0 = z, c1 = z, c2 = z, c3 = z, d0 = z, d1 = z, d2 = z, d3 = z;
        for (int k = 0, o = 0; k < pairs; k++, o += 4 * L) {
            FloatVector q0 = FloatVector.fromArray(F, row, o), q1 = FloatVector.fromArray(F, row, o + L);
            FloatVector q2 = FloatVector.fromArray(F, row, o + 2 * L), q3 = FloatVector.fromArray(F, row, o + 3 * L);
            a0 = q0.fma(FloatVector.fromArray(F, x, xa + o), a0);
            a1 = q1.fma(FloatVector.fromArray(F, x, xa + o + L), a1);
            a2 = q2.fma(FloatVector.fromArray(F, x, xa + o + 2 * L), a2);
            a3 = q3.fma(FloatVector.fromArray(F, x, xa + o + 3 * L), a3);
            b0 = q0.fma(FloatVector.fromArray(F, x, xb + o), b0);
            b1 = q1.fma(FloatVector.fromArray(F, x, xb + o + L), b1);
            b2 = q2.fma(FloatVector.fromArray(F, x, xb + o + 2 * L), b2);
            b3 = q3.fma(FloatVector.fromArray(F, x, xb + o + 3 * L), b3);
            c0 = q0.fma(FloatVector.fromArray(F, x, xc + o), c0);
            c1 = q1.fma(FloatVector.fromArray(F, x, xc + o + L), c1);
            c2 = q2.fma(FloatVector.fromArray(F, x, xc + o + 2 * L), c2);
            c3 = q3.fma(FloatVector.fromArray(F, x, xc + o + 3 * L), c3);
            d0 = q0.fma(FloatVector.fromArray(F, x, xd + o), d0);
            d1 = q1.fma(FloatVector.fromArray(F, x, xd + o + L), d1);
            d2 = q2.fma(FloatVector.fromArray(F, x, xd + o + 2 * L), d2);
            d3 = q3.fma(FloatVector.fromArray(F, x, xd + o + 3 * L), d3);
        }
        a0.intoArray(part, 0); a1.intoArray(part, L); a2.intoArray(part, 2 * L); a3.intoArray(part, 3 * L);
        b0.intoArray(part, 4 * L); b1.intoArray(part, 5 * L); b2.intoArray(part, 6 * L); b3.intoArray(part, 7 * L);
        c0.intoArray(part, 8 * L); c1.intoArray(part, 9 * L); c2.intoArray(part, 10 * L); c3.intoArray(part, 11 * L);
        d0.intoArray(part, 12 * L); d1.intoArray(part, 13 * L); d2.intoArray(part, 14 * L); d3.intoArray(part, 15 * L);
    }

    /** (p0 + p1) + (p2 + p3) lane-wise from part[i*L ..], lanes added left to right. */
    private static float reducePart(float[] part, int i, float[] tmp) {
        FloatVector p0 = FloatVector.fromArray(F, part, i * L), p1 = FloatVector.fromArray(F, part, (i + 1) * L);
        FloatVector p2 = FloatVector.fromArray(F, part, (i + 2) * L), p3 = FloatVector.fromArray(F, part, (i + 3) * L);
        p0.add(p1).add(p2.add(p3)).intoArray(tmp, 0);
        return VectorGptqKernel.sumLanes(tmp, 0);
    }
}
