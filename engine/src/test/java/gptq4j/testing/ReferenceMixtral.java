package gptq4j.testing;

import gptq4j.loader.Checkpoint;
import gptq4j.loader.HalfMatrix;
import gptq4j.loader.TensorNames;
import gptq4j.model.MixtralConfig;
import gptq4j.quant.gptq.GptqLinear;

/**
 * An independent float64 Mixtral forward pass for tests, written straight from the transformers
 * definitions with no code shared with the engine beyond reading tensors: weights dequantised from the
 * GPTQ definition, full attention recomputed per position, sliding window q - w < k ≤ q.
 */
public final class ReferenceMixtral {
    private final Checkpoint ck;
    private final MixtralConfig c;

    public ReferenceMixtral(Checkpoint ck) {
        this.ck = ck;
        this.c = ck.config();
    }

    private double[][] dequant(String prefix, int in, int out) {
        GptqLinear g = ck.gptq(prefix, in, out);
        double[][] w = new double[out][in];
        for (int o = 0; o < out; o++) for (int i = 0; i < in; i++) w[o][i] = g.weight(o, i);
        return w;
    }

    private double[][] half(String name, int rows, int cols) {
        HalfMatrix m = ck.half(name, rows, cols);
        double[][] w = new double[rows][cols];
        for (int r = 0; r < rows; r++) for (int k = 0; k < cols; k++) w[r][k] = m.get(r, k);
        return w;
    }

    private static double[] mul(double[][] w, double[] x) {
        double[] y = new double[w.length];
        for (int o = 0; o < w.length; o++) {
            double s = 0;
            for (int i = 0; i < x.length; i++) s += w[o][i] * x[i];
            y[o] = s;
        }
        return y;
    }

    private double[] norm(double[] x, double[] w) {
        double ss = 0;
        for (double v : x) ss += v * v;
        double r = 1 / Math.sqrt(ss / x.length + c.rmsNormEps());
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) y[i] = w[i] * x[i] * r;
        return y;
    }

    private void rope(double[] v, int nHeads, int pos) {
        int d = c.headDim(), half = d / 2;
        for (int h = 0; h < nHeads; h++) {
            for (int i = 0; i < half; i++) {
                double ang = pos * Math.pow(c.ropeTheta(), -2.0 * i / d);
                double a = v[h * d + i], b = v[h * d + i + half];
                v[h * d + i] = a * Math.cos(ang) - b * Math.sin(ang);
                v[h * d + i + half] = b * Math.cos(ang) + a * Math.sin(ang);
            }
        }
    }

    /** Logits [T][vocab] for every position of the token sequence. */
    public double[][] logits(int[] ids) {
        return logits(ids, 0, 0);
    }

    /**
     * Logits with every embedding value scaled by 1 ± perturb (signs from seed): how far a token's logits move under
     * a perturbation of float32's size says how well conditioned that token is (its float32 error is amplified as
     * much).
     */
    public double[][] logits(int[] ids, double perturb, long seed) {
        int T = ids.length, H = c.hidden(), d = c.headDim();
        double[][] emb = half(TensorNames.EMBED, c.vocabSize(), H);
        double[][] x = new double[T][];
        java.util.SplittableRandom sr = new java.util.SplittableRandom(seed);
        for (int t = 0; t < T; t++) {
            x[t] = emb[ids[t]].clone();
            if (perturb != 0) for (int i = 0; i < H; i++) x[t][i] *= 1 + (sr.nextBoolean() ? perturb : -perturb);
        }
        for (int l = 0; l < c.layers(); l++) {
            double[] an = half(TensorNames.attnNorm(l), 1, H)[0], fn = half(TensorNames.ffnNorm(l), 1, H)[0];
            double[][] wq = dequant(TensorNames.attn(l, 'q'), H, c.qDim()), wk = dequant(TensorNames.attn(l, 'k'), H, c.kvDim()),
                    wv = dequant(TensorNames.attn(l, 'v'), H, c.kvDim()), wo = dequant(TensorNames.attn(l, 'o'), c.qDim(), H);
            double[][] q = new double[T][], k = new double[T][], v = new double[T][];
            for (int t = 0; t < T; t++) {
                double[] xn = norm(x[t], an);
                q[t] = mul(wq, xn);
                k[t] = mul(wk, xn);
                v[t] = mul(wv, xn);
                rope(q[t], c.heads(), t);
                rope(k[t], c.kvHeads(), t);
            }
            for (int t = 0; t < T; t++) {
                double[] att = new double[c.qDim()];
                for (int h = 0; h < c.heads(); h++) {
                    int kh = h / c.groupSize();
                    int first = c.slidingWindow() > 0 ? Math.max(0, t - c.slidingWindow() + 1) : 0;
                    double[] s = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = first; j <= t; j++) {
                        double dot = 0;
                        for (int i = 0; i < d; i++) dot += q[t][h * d + i] * k[j][kh * d + i];
                        s[j] = dot / Math.sqrt(d);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = first; j <= t; j++) sum += (s[j] = Math.exp(s[j] - max));
                    for (int j = first; j <= t; j++) for (int i = 0; i < d; i++) att[h * d + i] += s[j] / sum * v[j][kh * d + i];
                }
                double[] o = mul(wo, att);
                for (int i = 0; i < H; i++) x[t][i] += o[i];
            }
            double[][] router = half(TensorNames.router(l), c.experts(), H);
            double[][][] w1 = new double[c.experts()][][], w2 = new double[c.experts()][][], w3 = new double[c.experts()][][];
            for (int t = 0; t < T; t++) {
                double[] xn = norm(x[t], fn);
                double[] rl = mul(router, xn);
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (double r : rl) max = Math.max(max, r);
                double[] p = new double[rl.length];
                for (int e = 0; e < p.length; e++) sum += (p[e] = Math.exp(rl[e] - max));
                for (int e = 0; e < p.length; e++) p[e] /= sum;
                int[] top = new int[c.topK()];
                double kept = 0;
                boolean[] taken = new boolean[p.length];
                for (int j = 0; j < top.length; j++) {
                    int best = -1;
                    for (int e = 0; e < p.length; e++) if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
                    taken[best] = true;
                    top[j] = best;
                    kept += p[best];
                }
                for (int e : top) {
                    if (w1[e] == null) {
                        w1[e] = dequant(TensorNames.expert(l, e, 1), H, c.intermediate());
                        w3[e] = dequant(TensorNames.expert(l, e, 3), H, c.intermediate());
                        w2[e] = dequant(TensorNames.expert(l, e, 2), c.intermediate(), H);
                    }
                    double[] a = mul(w1[e], xn), b = mul(w3[e], xn);
                    for (int i = 0; i < a.length; i++) a[i] = a[i] / (1 + Math.exp(-a[i])) * b[i];
                    double[] y = mul(w2[e], a);
                    for (int i = 0; i < H; i++) x[t][i] += p[e] / kept * y[i];
                }
            }
        }
        double[] fnw = half(TensorNames.FINAL_NORM, 1, H)[0];
        double[][] head = half(TensorNames.LM_HEAD, c.vocabSize(), H);
        double[][] out = new double[T][];
        for (int t = 0; t < T; t++) out[t] = mul(head, norm(x[t], fnw));
        return out;
    }
}
