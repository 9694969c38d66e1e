package gptq4j.notebook.kernel;

import org.dflib.jjava.jupyter.kernel.display.DisplayData;
import org.dflib.jjava.jupyter.kernel.display.mime.MIMEType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Base64;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The kernel's evaluation without Jupyter: values, declarations, errors, rendering. */
class JavaKernelTest {
    private static JavaKernel kernel;

    @BeforeAll
    static void start() {
        kernel = new JavaKernel(System.getProperty("java.class.path"));
    }

    @AfterAll
    static void stop() {
        kernel.close();
    }

    @Test
    void lastExpressionIsTheCellValueAndStatementsHaveNone() {
        assertEquals(7, kernel.evalRaw("int a = 3;\nint b = 4;\na + b"));
        assertNull(kernel.evalRaw("int c = a * b;"));
        assertEquals(12, kernel.evalRaw("c"));
        assertNull(kernel.evalRaw("System.out.println(c);"));
        assertNull(kernel.evalRaw("   \n // only a comment\n"));
    }

    @Test
    void valueIsTheObjectItselfNotItsString() {
        Object v = kernel.evalRaw("new java.awt.image.BufferedImage(30, 20, java.awt.image.BufferedImage.TYPE_INT_RGB)");
        BufferedImage img = assertInstanceOf(BufferedImage.class, v);
        assertEquals(30, img.getWidth());
    }

    @Test
    void methodsMayCallMethodsDeclaredLaterInTheSameCell() {
        assertEquals(42, kernel.evalRaw("int f() { return g() * 2; }\nint g() { return 21; }\nf()"));
    }

    @Test
    void defaultImportsIncludeCollectionsStreamsAndNotebookHelpers() {
        assertEquals(List.of(2, 4), kernel.evalRaw("List.of(1, 2).stream().map(x -> x * 2).collect(Collectors.toList())"));
        assertInstanceOf(gptq4j.notebook.Table.class, kernel.evalRaw("table(List.of(\"k\"), List.of(List.of(1)))"));
    }

    @Test
    void aTypeErrorNamesTheDiagnosticAndTheSourceLine() {
        CompilationError e = assertThrows(CompilationError.class, () -> kernel.evalRaw("int ok = 1;\nString s = 5;"));
        assertTrue(e.getMessage().contains("incompatible types"), e.getMessage());
        assertTrue(e.lines().contains("    String s = 5;"), e.lines().toString());
    }

    @Test
    void aDeclarationThatNeedsSomethingUndefinedFailsTheCell() {
        CompilationError e = assertThrows(CompilationError.class, () -> kernel.evalRaw("void h() { notDefinedAnywhere(); }"));
        assertTrue(e.getMessage().contains("notDefinedAnywhere"), e.getMessage());
    }

    @Test
    void incompleteCodeFailsInsteadOfBeingIgnored() {
        CompilationError e = assertThrows(CompilationError.class, () -> kernel.evalRaw("int q = 1;\nfor (int i = 0; i < 3; i++) {"));
        assertTrue(e.getMessage().startsWith("incomplete code"), e.getMessage());
    }

    @Test
    void theCellsOwnExceptionReachesJupyterWithItsTypeAndAShortStack() {
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> kernel.evalRaw("void boom() { throw new IllegalStateException(\"bad row 7\"); }\nboom();"));
        assertEquals("bad row 7", e.getMessage());
        List<String> lines = kernel.formatError(e);
        assertEquals("java.lang.IllegalStateException: bad row 7", lines.get(0));
        assertEquals("    at (the cell)", lines.get(lines.size() - 1), lines.toString());
        assertTrue(lines.stream().noneMatch(l -> l.contains("jdk.jshell") || l.contains("JavaKernel")), lines.toString());
    }

    @Test
    void checkedExceptionsAndErrorsFailTheCell() {
        assertThrows(IOException.class, () -> kernel.evalRaw("throw new java.io.IOException(\"disk full\");"));
        CellError e = assertThrows(CellError.class, () -> kernel.evalRaw("throw new AssertionError(\"not sorted\");"));
        assertInstanceOf(AssertionError.class, e.getCause());
        assertEquals("java.lang.AssertionError: not sorted", kernel.formatError(e).get(0));
    }

    @Test
    void stateSurvivesAFailedCell() {
        kernel.evalRaw("int kept = 5;");
        assertThrows(RuntimeException.class, () -> kernel.evalRaw("kept = 6;\nthrow new RuntimeException(\"x\");"));
        assertEquals(6, kernel.evalRaw("kept"));
    }

    @Test
    void imagesRenderAsPngWithACaptionAsText() throws IOException {
        DisplayData d = kernel.eval("gptq4j.notebook.Chart.bar(\"t\", \"rows\").bars(List.of(\"a\", \"b\"), List.of(1, 2)).size(300, 200).render()");
        assertEquals("<image 300 x 200>", d.getData(MIMEType.TEXT_PLAIN));
        Object png = d.getData(MIMEType.IMAGE_PNG);
        assertNotNull(png, "no image/png in " + d);
        BufferedImage back = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(png.toString())));
        assertEquals(300, back.getWidth());
        assertEquals(200, back.getHeight());
    }

    @Test
    void tablesRenderAsHtmlAndAlignedText() {
        DisplayData d = kernel.eval("table(List.of(\"lang\", \"rows\"), List.of(List.of(\"fr\", 3), List.of(\"de\", 12)))");
        assertEquals("lang  rows\n----  ----\nfr       3\nde      12", d.getData(MIMEType.TEXT_PLAIN));
        String html = d.getData(MIMEType.TEXT_HTML).toString();
        assertTrue(html.contains("<th>lang</th>") && html.contains("<td style=\"text-align:right\">12</td>"), html);
    }

    @Test
    void completionAndCompletenessUseJShellsAnalysis() {
        assertEquals(JavaKernel.IS_COMPLETE_YES, kernel.isComplete("int z = 1;"));
        assertEquals("    ", kernel.isComplete("if (true) {"));
        assertTrue(kernel.complete("\"abc\".toUpp", 11).getReplacements().contains("toUpperCase("));
    }
}
