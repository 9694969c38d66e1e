package gptq4j.notebook;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Line and bar charts drawn with java.awt into a {@link BufferedImage} (headless; no charting library). A cell that
 * ends with {@code chart.render()} shows the PNG.
 * <pre>
 *   Chart.line("Throughput", "batch size", "tokens/s").series("cpu", xs, ys).render()
 *   Chart.bar("Rows by finish reason", "rows").bars(List.of("stop", "length"), List.of(3, 9)).render()
 * </pre>
 */
public final class Chart {
    private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c),
            new Color(0xd62728), new Color(0x9467bd), new Color(0x8c564b)};
    private static final Color GRID = new Color(0xe6e6e6);
    private static final Color INK = new Color(0x333333);

    private enum Kind { LINE, BAR }

    private record Series(String name, double[] x, double[] y) { }

    private final Kind kind;
    private final String title;
    private final String xLabel;
    private final String yLabel;
    private final List<Series> series = new ArrayList<>();
    private final List<String> categories = new ArrayList<>();
    private final List<Double> values = new ArrayList<>();
    private int width = 640;
    private int height = 400;

    private Chart(Kind kind, String title, String xLabel, String yLabel) {
        this.kind = kind;
        this.title = title;
        this.xLabel = xLabel;
        this.yLabel = yLabel;
    }

    /** A line chart with numeric axes; add lines with {@link #series}. */
    public static Chart line(String title, String xLabel, String yLabel) {
        return new Chart(Kind.LINE, title, xLabel, yLabel);
    }

    /** A bar chart of categories; set them with {@link #bars}. */
    public static Chart bar(String title, String yLabel) {
        return new Chart(Kind.BAR, title, "", yLabel);
    }

    /** Adds a line through the points (x[i], y[i]), drawn in order. */
    public Chart series(String name, List<? extends Number> x, List<? extends Number> y) {
        if (kind != Kind.LINE) throw new IllegalStateException("series() is for line charts; use bars() for a bar chart");
        if (x.size() != y.size()) throw new IllegalArgumentException("series " + name + ": " + x.size() + " x values but " + y.size() + " y values");
        if (x.isEmpty()) throw new IllegalArgumentException("series " + name + " has no points");
        series.add(new Series(name, x.stream().mapToDouble(Number::doubleValue).toArray(), y.stream().mapToDouble(Number::doubleValue).toArray()));
        return this;
    }

    /** Sets the bars: one per label, in order. */
    public Chart bars(List<String> labels, List<? extends Number> heights) {
        if (kind != Kind.BAR) throw new IllegalStateException("bars() is for bar charts; use series() for a line chart");
        if (labels.size() != heights.size()) throw new IllegalArgumentException(labels.size() + " labels but " + heights.size() + " values");
        categories.clear();
        values.clear();
        categories.addAll(labels);
        for (Number n : heights) values.add(n.doubleValue());
        return this;
    }

    /** Image size in pixels (default 640 × 400). */
    public Chart size(int w, int h) {
        if (w < 200 || h < 150) throw new IllegalArgumentException("chart size must be at least 200 x 150, got " + w + " x " + h);
        this.width = w;
        this.height = h;
        return this;
    }

    /** Draws the chart. */
    public BufferedImage render() {
        if (kind == Kind.LINE && series.isEmpty()) throw new IllegalStateException("line chart '" + title + "' has no series");
        if (kind == Kind.BAR && categories.isEmpty()) throw new IllegalStateException("bar chart '" + title + "' has no bars");
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            Font base = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
            g.setFont(base.deriveFont(Font.BOLD, 15f));
            g.setColor(INK);
            centered(g, title, width / 2, 24);
            g.setFont(base);
            int left = 72, right = width - 20, top = 44, bottom = height - 52;
            if (kind == Kind.LINE && series.size() > 1) right -= 130;
            double[] yr = yRange();
            Axis y = Axis.nice(yr[0], yr[1]);
            drawYAxis(g, y, left, right, top, bottom);
            if (kind == Kind.LINE) drawLines(g, y, left, right, top, bottom);
            else drawBars(g, y, left, right, top, bottom);
            g.setColor(INK);
            g.drawLine(left, bottom, right, bottom);
            g.drawLine(left, top, left, bottom);
            centered(g, xLabel, (left + right) / 2, height - 12);
            AffineTransform at = g.getTransform();
            g.rotate(-Math.PI / 2);
            centered(g, yLabel, -(top + bottom) / 2, 18);
            g.setTransform(at);
        } finally {
            g.dispose();
        }
        return img;
    }

    private double[] yRange() {
        double lo = 0, hi = 0;
        if (kind == Kind.LINE) {
            for (Series s : series) for (double v : s.y) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
        } else {
            for (double v : values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
        }
        if (hi == lo) hi = lo + 1;
        double room = (hi - lo) * 0.06; // keeps the top point and its label off the frame
        return new double[] {lo < 0 ? lo - room : lo, hi > 0 ? hi + room : hi};
    }

    private void drawYAxis(Graphics2D g, Axis y, int left, int right, int top, int bottom) {
        FontMetrics fm = g.getFontMetrics();
        for (double t = y.lo; t <= y.hi + y.step / 2; t += y.step) {
            int py = py(t, y, top, bottom);
            g.setColor(GRID);
            g.drawLine(left + 1, py, right, py);
            g.setColor(INK);
            String s = Axis.label(t, y.step);
            g.drawString(s, left - 6 - fm.stringWidth(s), py + fm.getAscent() / 2 - 1);
        }
    }

    private void drawLines(Graphics2D g, Axis y, int left, int right, int top, int bottom) {
        double xlo = Double.POSITIVE_INFINITY, xhi = Double.NEGATIVE_INFINITY;
        for (Series s : series) for (double v : s.x) { xlo = Math.min(xlo, v); xhi = Math.max(xhi, v); }
        if (xhi == xlo) { xlo -= 1; xhi += 1; }
        Axis x = Axis.nice(xlo, xhi);
        FontMetrics fm = g.getFontMetrics();
        for (double t = x.lo; t <= x.hi + x.step / 2; t += x.step) {
            int px = px(t, x, left, right);
            g.setColor(INK);
            g.drawLine(px, bottom, px, bottom + 4);
            centered(g, Axis.label(t, x.step), px, bottom + 6 + fm.getAscent());
        }
        for (int i = 0; i < series.size(); i++) {
            Series s = series.get(i);
            g.setColor(PALETTE[i % PALETTE.length]);
            g.setStroke(new BasicStroke(2.2f));
            for (int p = 1; p < s.x.length; p++) {
                g.drawLine(px(s.x[p - 1], x, left, right), py(s.y[p - 1], y, top, bottom), px(s.x[p], x, left, right), py(s.y[p], y, top, bottom));
            }
            for (int p = 0; p < s.x.length; p++) {
                g.fillOval(px(s.x[p], x, left, right) - 4, py(s.y[p], y, top, bottom) - 4, 8, 8);
            }
            g.setStroke(new BasicStroke(1f));
            if (series.size() > 1) {
                int ly = top + 10 + 20 * i;
                g.fillRect(right + 14, ly - 6, 14, 4);
                g.setColor(INK);
                g.drawString(s.name, right + 34, ly);
            }
        }
    }

    private void drawBars(Graphics2D g, Axis y, int left, int right, int top, int bottom) {
        FontMetrics fm = g.getFontMetrics();
        int n = categories.size();
        double slot = (right - left) / (double) n;
        int base = py(Math.max(y.lo, 0), y, top, bottom);
        for (int i = 0; i < n; i++) {
            double v = values.get(i);
            int x0 = (int) Math.round(left + slot * i + slot * 0.15);
            int w = Math.max(1, (int) Math.round(slot * 0.7));
            int py = py(v, y, top, bottom);
            g.setColor(PALETTE[i % PALETTE.length]);
            g.fillRect(x0, Math.min(py, base), w, Math.abs(base - py));
            g.setColor(INK);
            centered(g, Axis.label(v, v == Math.rint(v) ? 1 : 0.01), x0 + w / 2, Math.min(py, base) - 4);
            centered(g, categories.get(i), x0 + w / 2, bottom + 6 + fm.getAscent());
        }
    }

    private static int px(double v, Axis a, int left, int right) {
        return (int) Math.round(left + (v - a.lo) / (a.hi - a.lo) * (right - left));
    }

    private static int py(double v, Axis a, int top, int bottom) {
        return (int) Math.round(bottom - (v - a.lo) / (a.hi - a.lo) * (bottom - top));
    }

    private static void centered(Graphics2D g, String s, int cx, int baseline) {
        if (s == null || s.isEmpty()) return;
        g.drawString(s, cx - g.getFontMetrics().stringWidth(s) / 2, baseline);
    }

    /** An axis from lo to hi in steps of 1, 2 or 5 times a power of ten, about five ticks. */
    private record Axis(double lo, double hi, double step) {
        static Axis nice(double lo, double hi) {
            double raw = (hi - lo) / 5;
            double mag = Math.pow(10, Math.floor(Math.log10(raw)));
            double f = raw / mag;
            double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
            return new Axis(Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step);
        }

        static String label(double v, double step) {
            if (Math.abs(v) < step * 1e-9) return "0";
            int decimals = step >= 1 ? 0 : (int) Math.ceil(-Math.log10(step));
            return String.format(Locale.ROOT, "%." + decimals + "f", v);
        }
    }
}
