package gptq4j.notebook;

import org.dflib.jjava.jupyter.kernel.BaseKernel;
import org.dflib.jjava.jupyter.kernel.display.DisplayData;

import java.util.List;

/**
 * What a notebook cell calls to show things; statically imported into every cell by the gptq4j kernel.
 * <pre>
 *   display(chart);                         // a BufferedImage: shown as PNG
 *   html("&lt;b&gt;bold&lt;/b&gt;")                      // as a cell's last expression: shown as HTML
 *   table(List.of("a", "b"), rows)          // shown as an HTML table, text for plain front ends
 * </pre>
 */
public final class Notebook {
    private Notebook() { }

    /** Shows {@code value} now, below the cell, rendered as the kernel renders a cell's value. */
    public static void display(Object value) {
        BaseKernel kernel = BaseKernel.notebookKernel();
        DisplayData data = value instanceof DisplayData d ? d : kernel.getRenderer().render(value);
        kernel.display(data);
    }

    /** HTML output (with {@code text} as the plain-text fallback). */
    public static DisplayData html(String html, String text) {
        DisplayData d = new DisplayData(text);
        d.putHTML(html);
        return d;
    }

    /** HTML output; plain front ends see the HTML source. */
    public static DisplayData html(String html) {
        return html(html, html);
    }

    /** Markdown output (plain front ends see the source). */
    public static DisplayData markdown(String md) {
        DisplayData d = new DisplayData(md);
        d.putMarkdown(md);
        return d;
    }

    /** A table of rows (each a list of cells, rendered with {@link String#valueOf}). */
    public static Table table(List<String> header, List<? extends List<?>> rows) {
        return new Table(header, rows);
    }
}
