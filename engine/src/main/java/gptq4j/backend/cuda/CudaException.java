package gptq4j.backend.cuda;

/** A CUDA driver call failed; the message names the call and the driver's error. */
public class CudaException extends RuntimeException {
    private final int code;

    public CudaException(String message, int code) {
        super(message);
        this.code = code;
    }

    public CudaException(String message, int code, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    /** The CUresult code, or -1 when the failure did not come from a driver call. */
    public int code() { return code; }
}
