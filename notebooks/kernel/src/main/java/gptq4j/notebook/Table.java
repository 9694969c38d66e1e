package gptq4j.notebook;

import org.dflib.jjava.jupyter.kernel.display.DisplayDataRenderable;
import org.dflib.jjava.jupyter.kernel.display.RenderContext;
import org.dflib.jjava.jupyter.kernel.display.mime.MIMEType;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A small table for notebook output: HTML in Jupyter, aligned columns as plain text. Numbers are right-aligned;
 * doubles print with four significant decimals.
 */
public final class Table implements DisplayDataRenderable {
    private final List<String> header;
    private final List<List<String>> rows;
    private final List<Boolean> numeric;

    public Table(List<String> header, List<? extends List<?>> rows) {
        this.header = List.copyOf(header);
        this.rows = new ArrayList<>();
        List<Boolean> num = new ArrayList<>();
        for (int c = 0; c < header.size(); c++) num.add(!rows.isEmpty());
        for (List<?> r : rows) {
            if (r.size() != header.size()) {
                throw new IllegalArgumentException("row " + this.rows.size() + " has " + r.size() + " cells but the header has "
                        + header.size() + ": " + r);
            }
            List<String> cells = new ArrayList<>();
            for (int c = 0; c < r.size(); c++) {
                Object v = r.get(c);
                if (!(v instanceof Number)) num.set(c, false);
                cells.add(format(v));
            }
            this.rows.add(cells);
        }
        this.numeric = num;
    }

    private static String format(Object v) {
        if (v instanceof Double || v instanceof Float) {
            double d = ((Number) v).doubleValue();
            return Math.abs(d) >= 1e5 || (d != 0 && Math.abs(d) < 1e-3) ? String.format("%.4g", d) : String.format("%.4f", d);
        }
        return String.valueOf(v);
    }

    public List<String> header() { return header; }

    public List<List<String>> rows() { return rows; }

    @Override
    public Set<MIMEType> getSupportedRenderTypes() {
        return Set.of(MIMEType.TEXT_HTML, MIMEType.TEXT_PLAIN);
    }

    @Override
    public void render(RenderContext context) {
        context.renderIfRequested(MIMEType.TEXT_PLAIN, this::text);
        context.renderIfRequested(MIMEType.TEXT_HTML, this::html);
    }

    /** Aligned plain-text columns. */
    public String text() {
        int[] w = new int[header.size()];
        for (int c = 0; c < w.length; c++) {
            w[c] = header.get(c).length();
            for (List<String> r : rows) w[c] = Math.max(w[c], r.get(c).length());
        }
        StringBuilder sb = new StringBuilder();
        appendLine(sb, header, w);
        for (int c = 0; c < w.length; c++) sb.append(c == 0 ? "" : "  ").append("-".repeat(w[c]));
        sb.append('\n');
        for (List<String> r : rows) appendLine(sb, r, w);
        return sb.toString().stripTrailing();
    }

    private void appendLine(StringBuilder sb, List<String> cells, int[] w) {
        for (int c = 0; c < w.length; c++) {
            if (c > 0) sb.append("  ");
            String s = cells.get(c);
            String pad = " ".repeat(w[c] - s.length());
            sb.append(numeric.get(c) ? pad + s : s + pad);
        }
        sb.append('\n');
    }

    /** An HTML table. */
    public String html() {
        StringBuilder sb = new StringBuilder("<table>\n<thead><tr>");
        for (String h : header) sb.append("<th>").append(escape(h)).append("</th>");
        sb.append("</tr></thead>\n<tbody>\n");
        for (List<String> r : rows) {
            sb.append("<tr>");
            for (int c = 0; c < r.size(); c++) {
                sb.append(numeric.get(c) ? "<td style=\"text-align:right\">" : "<td style=\"text-align:left\">")
                        .append(escape(r.get(c))).append("</td>");
            }
            sb.append("</tr>\n");
        }
        return sb.append("</tbody>\n</table>").toString();
    }

    static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }

    @Override
    public String toString() { return text(); }
}
