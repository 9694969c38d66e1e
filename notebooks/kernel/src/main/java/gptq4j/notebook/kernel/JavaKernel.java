package gptq4j.notebook.kernel;

import jdk.jshell.DeclarationSnippet;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.SourceCodeAnalysis.Completeness;
import jdk.jshell.UnresolvedReferenceException;
import org.dflib.jjava.jupyter.kernel.BaseKernel;
import org.dflib.jjava.jupyter.kernel.LanguageInfo;
import org.dflib.jjava.jupyter.kernel.JupyterIO;
import org.dflib.jjava.jupyter.kernel.ReplacementOptions;
import org.dflib.jjava.jupyter.kernel.comm.CommManager;
import org.dflib.jjava.jupyter.kernel.display.DisplayData;
import org.dflib.jjava.jupyter.kernel.display.Renderer;
import org.dflib.jjava.jupyter.kernel.display.mime.MIMEType;
import org.dflib.jjava.jupyter.kernel.magic.MagicsRegistry;
import org.dflib.jjava.jupyter.kernel.util.StringStyler;

import java.awt.image.RenderedImage;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * A Java kernel: each cell is split into JShell snippets (statements, declarations, expressions) that run in this
 * JVM, against this JVM's classpath. A cell whose last snippet is an expression shows its value through the
 * renderer: a {@code java.awt.image.RenderedImage} as PNG, a {@code DisplayData} as is, anything else as text.
 * A snippet that does not compile, or throws, fails the cell with the diagnostics or the stack trace.
 */
public final class JavaKernel extends BaseKernel implements AutoCloseable {

    /** Imports every cell sees without writing them (JShell's usual ones plus the notebook helpers). */
    public static final List<String> DEFAULT_IMPORTS = List.of(
            "java.io.*", "java.nio.file.*", "java.util.*", "java.util.function.*", "java.util.stream.*",
            "static gptq4j.notebook.Notebook.*");

    private static final Set<Snippet.SubKind> VALUE_KINDS =
            EnumSet.of(Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND, Snippet.SubKind.VAR_VALUE_SUBKIND);
    private static final String REPL_PACKAGE = "REPL.";

    private final JShell shell;
    private final InProcessExecution execution;
    private final SourceCodeAnalysis analysis;

    /** A kernel whose cells compile against {@code classpath} (normally this JVM's {@code java.class.path}). */
    public JavaKernel(String classpath) {
        super("gptq4j-java", version(),
                new LanguageInfo("java", Runtime.version().toString(), "text/x-java", ".jshell", "java", "text/x-java", "script"),
                List.of(), null, new JupyterIO(StandardCharsets.UTF_8), new CommManager(), new Renderer(), null,
                new MagicsRegistry(), false, new StringStyler.Builder().build());
        InProcessExecution.Provider provider = new InProcessExecution.Provider();
        this.shell = JShell.builder().executionEngine(provider, java.util.Map.of()).build();
        this.execution = provider.control();
        this.analysis = shell.sourceCodeAnalysis();
        shell.addToClasspath(classpath);
        // images show as PNG (jjava's renderer); their plain-text form is a caption, not BufferedImage.toString()
        renderer.createRegistration(RenderedImage.class).preferring(MIMEType.TEXT_PLAIN).register((img, ctx) ->
                ctx.renderIfRequested(MIMEType.TEXT_PLAIN, () -> "<image " + img.getWidth() + " x " + img.getHeight() + ">"));
        for (String imp : DEFAULT_IMPORTS) {
            evalRaw("import " + imp + ";");
        }
    }

    private static String version() {
        String v = JavaKernel.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }

    @Override
    public String getBanner() {
        return "gptq4j Java kernel (JShell " + Runtime.version() + ")";
    }

    /**
     * Runs a cell and returns the value of its last snippet when that is an expression (null otherwise).
     *
     * @throws CompilationError when a snippet does not compile, or a declaration still misses something at the end
     * @throws RuntimeException the exception cell code threw (checked ones too), or a {@link CellError} for an Error
     */
    @Override
    public Object evalRaw(String cell) {
        List<Snippet> declared = new ArrayList<>();
        Object value = null;
        String remaining = cell;
        while (!remaining.isBlank()) {
            SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(remaining);
            Completeness c = info.completeness();
            if (c == Completeness.EMPTY) break;
            if (c == Completeness.DEFINITELY_INCOMPLETE || c == Completeness.CONSIDERED_INCOMPLETE) {
                throw new CompilationError(List.of("incomplete code (a missing ';', ')' or '}'?):", "    " + firstLine(remaining.strip())));
            }
            String source = c == Completeness.UNKNOWN ? remaining : info.source();
            remaining = c == Completeness.UNKNOWN ? "" : info.remaining();
            value = evalSnippet(source, declared);
        }
        checkResolved(declared);
        return value;
    }

    /** Evaluates one snippet; returns its value when it is an expression. */
    private Object evalSnippet(String source, List<Snippet> declared) {
        execution.reset();
        List<SnippetEvent> events = shell.eval(source);
        Object value = null;
        for (SnippetEvent e : events) {
            if (e.causeSnippet() != null) continue; // a dependent declaration updated, not this snippet
            Snippet s = e.snippet();
            if (e.status() == Snippet.Status.REJECTED) {
                throw compilationError(s);
            }
            if (e.exception() != null) {
                throw thrown(e.exception());
            }
            if (s instanceof DeclarationSnippet) declared.add(s);
            if (VALUE_KINDS.contains(s.subKind())) value = execution.lastValue();
        }
        return value;
    }

    /** A declaration that still needs something undefined once the whole cell ran is an error in a notebook. */
    private void checkResolved(List<Snippet> declared) {
        List<String> lines = new ArrayList<>();
        for (Snippet s : declared) {
            Snippet.Status st = shell.status(s);
            if (st == Snippet.Status.RECOVERABLE_DEFINED || st == Snippet.Status.RECOVERABLE_NOT_DEFINED) {
                String missing = shell.unresolvedDependencies((DeclarationSnippet) s).collect(Collectors.joining(", "));
                lines.add("cannot use " + ((DeclarationSnippet) s).name() + ": it needs " + missing + ", which is not defined");
                lines.add("    " + firstLine(s.source().strip()));
            }
        }
        if (!lines.isEmpty()) throw new CompilationError(lines);
    }

    private CompilationError compilationError(Snippet s) {
        List<String> lines = new ArrayList<>();
        String src = s.source();
        List<Diag> diags = shell.diagnostics(s).filter(Diag::isError).collect(Collectors.toList());
        for (Diag d : diags) {
            lines.add("error: " + d.getMessage(Locale.ROOT));
            int pos = (int) Math.max(0, Math.min(src.length(), d.getPosition() < 0 ? d.getStartPosition() : d.getPosition()));
            int lineStart = src.lastIndexOf('\n', pos - 1) + 1;
            int lineEnd = src.indexOf('\n', pos);
            if (lineEnd < 0) lineEnd = src.length();
            lines.add("    " + src.substring(lineStart, lineEnd));
            lines.add("    " + " ".repeat(Math.max(0, pos - lineStart)) + "^");
        }
        if (diags.isEmpty()) {
            lines.add("error: rejected (" + s.kind() + "):");
            lines.add("    " + firstLine(src.strip()));
        }
        return new CompilationError(lines);
    }

    private RuntimeException thrown(Exception reported) {
        Throwable t = execution.lastThrown();
        if (t == null) {
            if (reported instanceof UnresolvedReferenceException u) {
                String missing = shell.unresolvedDependencies(u.getSnippet()).collect(Collectors.joining(", "));
                return new CompilationError(List.of("cannot use " + u.getSnippet().name() + ": it needs " + missing + ", which is not defined"));
            }
            return new IllegalStateException(reported instanceof EvalException ee
                    ? ee.getExceptionClassName() + ": " + ee.getMessage() : reported.toString(), reported);
        }
        cutAtCell(t);
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Exception) return sneaky(t);
        return new CellError(t);
    }

    /** Drops the frames below the cell's own (JShell's and the kernel's) from t and its causes. */
    private static void cutAtCell(Throwable t) {
        for (Throwable x = t; x != null; x = x.getCause() == x ? null : x.getCause()) {
            StackTraceElement[] st = x.getStackTrace();
            for (int i = 0; i < st.length; i++) {
                if (st[i].getClassName().startsWith(REPL_PACKAGE)) {
                    x.setStackTrace(Arrays.copyOf(st, i + 1));
                    break;
                }
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> RuntimeException sneaky(Throwable t) throws T {
        throw (T) t;
    }

    private static String firstLine(String s) {
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl) + " ...";
    }

    /** Compiler diagnostics, or the stack trace cut where the notebook's own code starts. */
    @Override
    public List<String> formatError(Throwable e) {
        if (e instanceof CompilationError ce) return ce.lines();
        Throwable t = e instanceof CellError ? e.getCause() : e;
        List<String> lines = new ArrayList<>();
        String prefix = "";
        for (Throwable x = t; x != null; x = x.getCause() == x ? null : x.getCause()) {
            lines.add(prefix + x);
            for (StackTraceElement f : x.getStackTrace()) {
                lines.add(f.getClassName().startsWith(REPL_PACKAGE)
                        ? "    at (the cell)" : "    at " + f);
            }
            prefix = "Caused by: ";
        }
        return lines;
    }

    @Override
    public DisplayData inspect(String code, int at, boolean extraDetail) {
        List<SourceCodeAnalysis.Documentation> docs = analysis.documentation(code, at, true);
        if (docs.isEmpty()) return null;
        StringBuilder sb = new StringBuilder();
        for (SourceCodeAnalysis.Documentation d : docs) {
            sb.append(d.signature()).append('\n');
            if (d.javadoc() != null && !d.javadoc().isBlank()) sb.append(d.javadoc().strip()).append("\n\n");
        }
        return new DisplayData(sb.toString().strip());
    }

    @Override
    public ReplacementOptions complete(String code, int at) {
        int[] anchor = new int[1];
        List<String> options = analysis.completionSuggestions(code, at, anchor).stream()
                .map(SourceCodeAnalysis.Suggestion::continuation).distinct().collect(Collectors.toList());
        return new ReplacementOptions(options, anchor[0], at);
    }

    @Override
    public String isComplete(String code) {
        String remaining = code;
        while (!remaining.isBlank()) {
            SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(remaining);
            switch (info.completeness()) {
                case DEFINITELY_INCOMPLETE:
                case CONSIDERED_INCOMPLETE:
                    return "    ";
                case UNKNOWN:
                    return IS_COMPLETE_BAD;
                case EMPTY:
                    return IS_COMPLETE_YES;
                default:
                    remaining = info.remaining();
            }
        }
        return IS_COMPLETE_YES;
    }

    @Override
    public void interrupt() {
        execution.interruptRunning();
    }

    @Override
    public void close() {
        shell.close();
    }
}
