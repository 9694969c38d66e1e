package gptq4j.backend.cuda;

/**
 * A kernel launch failed or a kernel faulted (reported at the launch or at the next synchronising call).
 * After a fault the CUDA context is unusable: close the backend.
 */
public class CudaKernelException extends CudaException {
    public CudaKernelException(String message, int code) {
        super(message, code);
    }
}
