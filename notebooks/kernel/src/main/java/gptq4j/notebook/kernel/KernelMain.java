package gptq4j.notebook.kernel;

import org.dflib.jjava.jupyter.channels.JupyterConnection;
import org.dflib.jjava.jupyter.kernel.KernelConnectionProperties;

import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Starts the kernel the way Jupyter does: {@code java @jvm.args gptq4j.notebook.kernel.KernelMain CONNECTION_FILE}
 * (see target/jupyter/kernels/gptq4j-java/kernel.json). Binds the five sockets named in the connection file, serves
 * until Jupyter asks it to shut down, then exits the JVM (ending threads a notebook left running, such as Spark's).
 */
public final class KernelMain {
    private KernelMain() { }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: java @jvm.args gptq4j.notebook.kernel.KernelMain CONNECTION_FILE.json"
                    + " (Jupyter passes the file; see target/jupyter/kernels/gptq4j-java/kernel.json)");
            System.exit(2);
        }
        String json;
        try {
            json = Files.readString(Path.of(args[0]));
        } catch (NoSuchFileException e) {
            System.err.println("error: connection file " + args[0] + " does not exist");
            System.exit(2);
            return;
        }
        KernelConnectionProperties props = KernelConnectionProperties.parse(json);
        JupyterConnection connection = new JupyterConnection(props);
        JavaKernel kernel = new JavaKernel(System.getProperty("java.class.path"));
        kernel.becomeHandlerForConnection(connection);
        kernel.onStartup();
        connection.connect();
        connection.waitUntilClose();
        kernel.close();
        System.exit(0);
    }
}
