package gptq4j.notebook.kernel;

import jdk.jshell.execution.DirectExecutionControl;
import jdk.jshell.spi.ExecutionControl;
import jdk.jshell.spi.ExecutionControlProvider;
import jdk.jshell.spi.ExecutionEnv;
import jdk.jshell.spi.SPIResolutionException;

import java.lang.reflect.Method;
import java.util.Map;

/**
 * Runs snippets in the kernel's own JVM and thread, so notebook code shares classes and objects with the kernel
 * (a chart returned by a cell is the {@code BufferedImage} itself, not its {@code toString}). Keeps the raw value
 * and the raw exception of the last snippet, which JShell's API only reports as strings.
 */
final class InProcessExecution extends DirectExecutionControl {

    private Object lastValue;
    private Throwable lastThrown;
    private volatile Thread running;

    /** The provider JShell asks for an execution engine; it hands out this one instance. */
    static final class Provider implements ExecutionControlProvider {
        private final InProcessExecution control = new InProcessExecution();

        @Override
        public String name() { return "gptq4j-in-process"; }

        @Override
        public ExecutionControl generate(ExecutionEnv env, Map<String, String> parameters) { return control; }

        InProcessExecution control() { return control; }
    }

    /** Forgets the last value and exception; call before evaluating a snippet. */
    void reset() {
        lastValue = null;
        lastThrown = null;
    }

    /** The value the last snippet computed (boxed), or null. */
    Object lastValue() { return lastValue; }

    /** What the last snippet threw, or null. */
    Throwable lastThrown() { return lastThrown; }

    /** Interrupts the thread running a snippet, if any (code that waits or checks its interrupt flag stops). */
    void interruptRunning() {
        Thread t = running;
        if (t != null) t.interrupt();
    }

    @Override
    protected String invoke(Method doitMethod) throws Exception {
        Object value = doitMethod.invoke(null);
        lastValue = value;
        return valueString(value);
    }

    @Override
    protected String throwConvertedInvocationException(Throwable cause) throws RunException, InternalException {
        if (!(cause instanceof SPIResolutionException)) lastThrown = cause;
        return super.throwConvertedInvocationException(cause);
    }

    @Override
    protected void clientCodeEnter() {
        running = Thread.currentThread();
    }

    @Override
    protected void clientCodeLeave() {
        running = null;
        Thread.interrupted(); // an interrupt that arrived as the snippet ended must not hit the next one
    }
}
