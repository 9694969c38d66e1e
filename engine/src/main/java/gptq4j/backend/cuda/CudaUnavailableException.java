package gptq4j.backend.cuda;

/**
 * CUDA cannot be used on this machine: the driver library is missing ({@code libcuda.so.1}), it fails to
 * initialise, or the requested device does not exist. Under {@code --device auto} the engine falls back to the CPU.
 */
public class CudaUnavailableException extends CudaException {
    public CudaUnavailableException(String message, int code, Throwable cause) {
        super(message, code, cause);
    }
}
