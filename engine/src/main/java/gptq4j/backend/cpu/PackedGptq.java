package gptq4j.backend.cpu;

import gptq4j.quant.gptq.GptqLinear;

import java.util.Arrays;

/**
 * A GPTQ linear repacked once at load for the CPU kernels, at its original bit width.
 *
 * <p>Layout, for a lane count L (the kernel's vector width, in 32-bit words):
 * <ul>
 * <li>Input columns are sorted by group (stable), so with act order every group is contiguous; the
 *     activations are permuted the same way once per call ({@link #permuteX}, O(in) per token).
 *     Groups that no column uses are dropped.</li>
 * <li>A <em>slot</em> is L consecutive (sorted) columns. Each group starts on a slot boundary and is padded
 *     with zero weights to whole slots; the row is padded to whole chunks (padding columns read x = 0).</li>
 * <li>A <em>chunk</em> is {@code bits} words per lane ({@code bits*L} words) holding 32 slots for 3 bits,
 *     else L words holding {@code 32/bits} slots. Lane l of a chunk is a little-endian bit stream: value s of
 *     it (s-th slot) is column {@code chunkStart + s*L + l}; 3-bit values 10 and 21 straddle words, as in GPTQ.</li>
 * <li>Rows are stored in pairs (2p, 2p+1), interleaved chunk by chunk: chunk c of row o starts at
 *     {@link #rowBase rowBase(o)} {@code + c*chunkStride}, with {@code chunkStride = 2*wordsPerChunk}, so a kernel
 *     computing both rows of a pair reads one sequential stream. An odd last row is paired with a row of zeros.</li>
 * <li>Scales, effective zeros (stored zero + 1) and their products are floats per (row, group).</li>
 * </ul>
 * So one L-lane integer vector holds one slot's worth of values for several slots, and the x values a slot
 * multiplies are L contiguous floats.
 */
public final class PackedGptq {
    final String name;
    final int in;
    final int out;
    final int bits;
    final int lanes;          // L
    final int slotsPerChunk;  // 32 for 3 bits, else 32/bits
    final int wordsPerChunk;  // bits*L*slotsPerChunk/32
    final int chunks;         // per row
    final int rowWords;       // chunks*wordsPerChunk
    final int chunkStride;    // 2*wordsPerChunk: from one chunk of a row to its next (rows interleaved in pairs)
    final int paddedIn;       // chunks*slotsPerChunk*L
    final int groups;         // non-empty groups
    final int[] groupSlots;   // [groups+1] slots per group (last absorbs row padding), sentinel 1 at the end
    final int[] perm;         // [paddedIn] original input column of each packed column, -1 = padding
    final int[] words;        // [ceil(out/2)][chunks][2][wordsPerChunk]: row pairs interleaved chunk by chunk
    final float[] scales;     // [out][groups]
    final float[] zeros;      // [out][groups] effective zero point
    final float[] scaledZeros; // [out][groups] scale * zero (float32 product), for kernels that fold the zero out
    final int chunksPerGroup; // m when every group is exactly m chunks, else 0
    final float[] slotScale;  // [slotsPerChunk] 2^-shift: vector kernel masks values in place (q << shift)

    private PackedGptq(String name, int in, int out, int bits, int lanes, int slotsPerChunk, int chunks,
                       int groups, int[] groupSlots, int[] perm) {
        this.name = name;
        this.in = in;
        this.out = out;
        this.bits = bits;
        this.lanes = lanes;
        this.slotsPerChunk = slotsPerChunk;
        this.wordsPerChunk = bits * lanes * slotsPerChunk / 32;
        this.chunks = chunks;
        this.rowWords = Math.multiplyExact(chunks, wordsPerChunk);
        this.chunkStride = 2 * wordsPerChunk;
        this.paddedIn = chunks * slotsPerChunk * lanes;
        this.groups = groups;
        this.groupSlots = groupSlots;
        this.perm = perm;
        this.words = new int[Math.multiplyExact((out + 1) / 2 * 2, rowWords)];
        this.scales = new float[Math.multiplyExact(out, groups)];
        this.zeros = new float[out * groups];
        this.scaledZeros = new float[out * groups];
        int m = groupSlots[0] % slotsPerChunk == 0 ? groupSlots[0] / slotsPerChunk : 0;
        for (int g = 1; g < groups; g++) if (groupSlots[g] != groupSlots[0]) m = 0;
        this.chunksPerGroup = m;
        this.slotScale = new float[slotsPerChunk];
        for (int s = 0; s < slotsPerChunk; s++) slotScale[s] = Math.scalb(1f, -inPlaceShift(bits, s));
    }

    /** Index in {@link #words} of row o's first chunk; chunk c is at {@code rowBase(o) + c*chunkStride}. */
    int rowBase(int o) { return (o >> 1) * 2 * rowWords + (o & 1) * wordsPerChunk; }

    /**
     * The shift at which the vector kernel leaves value s of a lane stream when it masks it in place
     * (its int is q << shift): the bit offset inside its word, or 0 for values it shifts down instead
     * (the top value of a word, whose mask would include the sign bit, and 3-bit straddling values).
     */
    static int inPlaceShift(int bits, int s) {
        int bit = s * bits;
        int off = bit & 31;
        return off + bits >= 32 ? 0 : off;
    }

    /** Repacks w for kernels of {@code lanes} lanes ({@link Kernels#preferredLanes()} for the default kernels). */
    public static PackedGptq pack(GptqLinear w, int lanes) {
        if (lanes < 1) throw new IllegalArgumentException("lanes must be positive, got " + lanes);
        int in = w.in(), out = w.out(), bits = w.bits();
        int[] gIdx = w.gIdx();
        if (gIdx.length != in) {
            throw new IllegalArgumentException(w.name() + ": g_idx has " + gIdx.length + " entries, expected in=" + in);
        }
        int[] count = new int[w.groups()];
        for (int i = 0; i < in; i++) {
            int g = gIdx[i];
            if (g < 0 || g >= w.groups()) {
                throw new IllegalArgumentException(w.name() + ": g_idx[" + i + "] = " + g + " outside [0, "
                        + w.groups() + "); the checkpoint's g_idx does not match its scales/qzeros");
            }
            count[g]++;
        }
        int[] packedGroup = new int[w.groups()]; // original group -> packed group, -1 if empty
        int groups = 0;
        for (int g = 0; g < count.length; g++) packedGroup[g] = count[g] == 0 ? -1 : groups++;
        if (groups == 0) throw new IllegalArgumentException(w.name() + ": layer has no input columns");
        int[] origGroup = new int[groups];
        int[] groupSlots = new int[groups + 1];
        int totalSlots = 0;
        for (int g = 0; g < count.length; g++) {
            if (packedGroup[g] < 0) continue;
            origGroup[packedGroup[g]] = g;
            int slots = (count[g] + lanes - 1) / lanes;
            groupSlots[packedGroup[g]] = slots;
            totalSlots += slots;
        }
        int spc = bits == 3 ? 32 : 32 / bits;
        int chunks = (totalSlots + spc - 1) / spc;
        groupSlots[groups - 1] += chunks * spc - totalSlots;
        groupSlots[groups] = 1; // sentinel read after the last group closes
        // sorted, padded column order
        int[] start = new int[groups];
        for (int g = 1; g < groups; g++) start[g] = start[g - 1] + groupSlots[g - 1] * lanes;
        int[] perm = new int[chunks * spc * lanes];
        Arrays.fill(perm, -1);
        int[] fill = new int[groups];
        for (int i = 0; i < in; i++) {
            int pg = packedGroup[gIdx[i]];
            perm[start[pg] + fill[pg]++] = i;
        }
        PackedGptq p = new PackedGptq(w.name(), in, out, bits, lanes, spc, chunks, groups, groupSlots, perm);
        p.fill(w, origGroup);
        return p;
    }

    private void fill(GptqLinear w, int[] origGroup) {
        int chunkCols = slotsPerChunk * lanes;
        for (int o = 0; o < out; o++) {
            int rowOff = rowBase(o);
            for (int pc = 0; pc < paddedIn; pc++) {
                int i = perm[pc];
                if (i < 0) continue;
                int q = w.q(i, o);
                int c = pc / chunkCols, r = pc % chunkCols;
                int s = r / lanes, l = r % lanes;
                int bit = s * bits;
                int k = bit >>> 5, sh = bit & 31;
                int base = rowOff + c * chunkStride + l;
                words[base + k * lanes] |= q << sh;
                if (sh + bits > 32) words[base + (k + 1) * lanes] |= q >>> (32 - sh);
            }
            for (int g = 0; g < groups; g++) {
                scales[o * groups + g] = w.scale(origGroup[g], o);
                zeros[o * groups + g] = w.zero(origGroup[g], o);
                scaledZeros[o * groups + g] = scales[o * groups + g] * zeros[o * groups + g];
            }
        }
    }

    public String name() { return name; }

    /** Input features (columns of W). */
    public int in() { return in; }

    /** Output features (rows of W). */
    public int out() { return out; }

    public int bits() { return bits; }

    /** The lane count the layout was built for. */
    public int lanes() { return lanes; }

    /** Input columns after sorting by group and padding. */
    public int paddedIn() { return paddedIn; }

    /** Groups that hold at least one input column. */
    public int groups() { return groups; }

    /** Bytes of packed weights (what a matrix-vector product streams from memory). */
    public long weightBytes() { return (long) words.length * 4; }

    /**
     * Bytes one product reads from this layer, whatever T: the packed weights, the scales and scale*zero products
     * the vector kernel reads per (row, group), and the column permutation.
     */
    public long bytesPerProduct() { return weightBytes() + (long) scales.length * 4 + (long) scaledZeros.length * 4 + perm.length * 4L; }

    /** Bytes held: weights, scales, zeros and the column permutation. */
    public long bytes() { return weightBytes() + (long) scales.length * 12 + perm.length * 4L; }

    /**
     * The packed value of (sorted, padded) column pc of row o; for tests and {@link ScalarGptqKernel}-style readers.
     */
    int q(int o, int pc) {
        int chunkCols = slotsPerChunk * lanes;
        int c = pc / chunkCols, r = pc % chunkCols;
        int s = r / lanes, l = r % lanes;
        int bit = s * bits;
        int k = bit >>> 5, sh = bit & 31;
        int base = rowBase(o) + c * chunkStride + l;
        int v = words[base + k * lanes] >>> sh;
        if (sh + bits > 32) v |= words[base + (k + 1) * lanes] << (32 - sh);
        return v & ((1 << bits) - 1);
    }

    /** dst[t*paddedIn + pc] = x[xOff + t*in + perm[pc]], 0 for padding columns. */
    void permuteX(float[] x, int xOff, int T, float[] dst) {
        for (int t = 0; t < T; t++) {
            int src = xOff + t * in, d = t * paddedIn;
            for (int pc = 0; pc < paddedIn; pc++) {
                int i = perm[pc];
                dst[d + pc] = i < 0 ? 0f : x[src + i];
            }
        }
    }

    /** xp[t*paddedIn + pc] *= slotScale[slot of pc within its chunk] (exact: powers of two). */
    void prescale(float[] xp, int T) {
        int chunkCols = slotsPerChunk * lanes;
        for (int t = 0; t < T; t++) {
            for (int pc = 0, d = t * paddedIn; pc < paddedIn; pc++) xp[d + pc] *= slotScale[(pc % chunkCols) / lanes];
        }
    }

    /**
     * Sums of each group's (unscaled, permuted) x: dst[t*groups + g] = sum over the group's packed columns, left to
     * right, of xPerm[t*paddedIn + pc]; xPerm as {@link #permuteX} (padding columns are 0).
     */
    void groupSums(float[] xPerm, int T, float[] dst) {
        for (int t = 0; t < T; t++) {
            int pc = t * paddedIn;
            for (int g = 0; g < groups; g++) {
                float s = 0f;
                for (int e = pc + groupSlots[g] * lanes; pc < e; pc++) s += xPerm[pc];
                dst[t * groups + g] = s;
            }
        }
    }

    void checkArgs(float[] x, int xOff, int T, float[] outArr, int outOff) {
        MatmulArgs.check(name, in, out, x, xOff, T, outArr, outOff);
    }
}
