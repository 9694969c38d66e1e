package gptq4j.util;

/** IEEE 754 binary16 conversions (JDK 17 has no Float.float16ToFloat). */
public final class Half {
    private Half() { }

    private static final float[] TABLE = new float[65536];

    static {
        for (int i = 0; i < 65536; i++) TABLE[i] = convert((short) i);
    }

    /** The float value of a half-precision bit pattern (table lookup). */
    public static float toFloat(short h) {
        return TABLE[h & 0xffff];
    }

    private static float convert(short hbits) {
        int h = hbits & 0xffff;
        int sign = (h >>> 15) << 31;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0) {
            if (mant == 0) return Float.intBitsToFloat(sign);
            // subnormal: mant * 2^-24
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        if (exp == 31) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    /** Rounds a float to the nearest half (ties to even), returning its bit pattern. */
    public static short fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int val = bits & 0x7fffffff;
        if (val >= 0x7f800000) { // inf or nan
            return (short) (sign | 0x7c00 | (val > 0x7f800000 ? 0x200 : 0));
        }
        if (val >= 0x477ff000) { // rounds to >= 65520 -> inf
            return (short) (sign | 0x7c00);
        }
        if (val < 0x38800000) { // subnormal or zero in half
            if (val < 0x33000000) return (short) sign; // < 2^-25 rounds to 0
            int exp = val >>> 23;
            int mant = (val & 0x7fffff) | 0x800000;
            // mant * 2^(exp-150) / 2^-24 = mant * 2^(exp-126)
            int s = 126 - exp;
            int q = mant >>> s;
            int rem = mant & ((1 << s) - 1);
            int half = 1 << (s - 1);
            if (rem > half || (rem == half && (q & 1) == 1)) q++;
            return (short) (sign | q);
        }
        int exp = (val >>> 23) - 127 + 15;
        int mant = val & 0x7fffff;
        int q = (exp << 10) | (mant >>> 13);
        int rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (q & 1) == 1)) q++;
        return (short) (sign | q);
    }
}
