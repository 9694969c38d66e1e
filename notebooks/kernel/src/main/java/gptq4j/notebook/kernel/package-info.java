/**
 * A Jupyter kernel for Java notebooks over gptq4j: {@link gptq4j.notebook.kernel.JavaKernel} (JShell snippets run
 * in the kernel's JVM), {@link gptq4j.notebook.kernel.InProcessExecution} (keeps each snippet's raw value, so
 * images render as PNG) and {@link gptq4j.notebook.kernel.KernelMain} (what kernel.json starts). Built on
 * {@code org.dflib.jjava:jjava-jupyter}, which speaks the Jupyter messaging protocol.
 */
package gptq4j.notebook.kernel;
