package gptq4j.runtime;

import java.util.ArrayList;
import java.util.List;

/** Pearson's chi-square goodness of fit and the chi-square quantile, for the sampler tests. */
final class ChiSquare {
    private ChiSquare() { }

    private static final double[] LANCZOS = {
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7};

    /** ln Γ(x) for x ≥ 0.5 (Lanczos, g = 7). */
    static double lnGamma(double x) {
        double z = x - 1;
        double a = LANCZOS[0];
        double t = z + 7.5;
        for (int i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
        return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
    }

    /** The regularised lower incomplete gamma function P(a, x). */
    static double regularizedGammaP(double a, double x) {
        if (x <= 0) return 0;
        double logPrefix = -x + a * Math.log(x) - lnGamma(a);
        if (x < a + 1) {  // series
            double term = 1 / a;
            double sum = term;
            for (int n = 1; n < 10_000; n++) {
                term *= x / (a + n);
                sum += term;
                if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
            }
            return sum * Math.exp(logPrefix);
        }
        // continued fraction for Q(a, x) (modified Lentz)
        double tiny = 1e-300;
        double b = x + 1 - a;
        double c = 1 / tiny;
        double d = 1 / b;
        double h = d;
        for (int i = 1; i < 10_000; i++) {
            double an = -i * (i - a);
            b += 2;
            d = an * d + b;
            if (Math.abs(d) < tiny) d = tiny;
            c = b + an / c;
            if (Math.abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = d * c;
            h *= delta;
            if (Math.abs(delta - 1) < 1e-16) break;
        }
        return 1 - Math.exp(logPrefix) * h;
    }

    /** The chi-square CDF with {@code df} degrees of freedom. */
    static double cdf(int df, double x) {
        return regularizedGammaP(df / 2.0, x / 2);
    }

    /** The {@code q} quantile of the chi-square distribution with {@code df} degrees of freedom (bisection). */
    static double quantile(int df, double q) {
        double lo = 0;
        double hi = Math.max(1, df);
        while (cdf(df, hi) < q) hi *= 2;
        for (int i = 0; i < 200; i++) {
            double mid = (lo + hi) / 2;
            if (cdf(df, mid) < q) lo = mid;
            else hi = mid;
        }
        return (lo + hi) / 2;
    }

    /** A statistic and its degrees of freedom. */
    record Result(double statistic, int df) {
        double critical(double q) { return quantile(df, q); }
    }

    /**
     * Pearson's statistic of {@code observed} against {@code n × probs}, over the bins with a positive
     * probability. Bins expected below 5 are pooled (and the pool merged into the smallest bin if it is still
     * below 5), so the chi-square approximation holds.
     */
    static Result test(long[] observed, double[] probs, long n) {
        List<double[]> bins = new ArrayList<>();  // {expected, observed}
        double poolE = 0;
        double poolO = 0;
        for (int i = 0; i < probs.length; i++) {
            if (probs[i] <= 0) continue;
            double e = probs[i] * n;
            if (e < 5) {
                poolE += e;
                poolO += observed[i];
            } else {
                bins.add(new double[] {e, observed[i]});
            }
        }
        if (poolE > 0) {
            if (poolE >= 5 || bins.isEmpty()) {
                bins.add(new double[] {poolE, poolO});
            } else {
                double[] smallest = bins.get(0);
                for (double[] b : bins) if (b[0] < smallest[0]) smallest = b;
                smallest[0] += poolE;
                smallest[1] += poolO;
            }
        }
        double stat = 0;
        for (double[] b : bins) stat += (b[1] - b[0]) * (b[1] - b[0]) / b[0];
        return new Result(stat, bins.size() - 1);
    }
}
