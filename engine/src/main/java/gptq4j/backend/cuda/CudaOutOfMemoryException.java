package gptq4j.backend.cuda;

/** A device allocation failed; the message gives the request and the free/total device memory. */
public class CudaOutOfMemoryException extends CudaException implements gptq4j.backend.OutOfDeviceMemory {
    private final long requested;

    public CudaOutOfMemoryException(String message, int code, long requested) {
        super(message, code);
        this.requested = requested;
    }

    /** Bytes asked for. */
    public long requested() { return requested; }
}
