/**
 * The CUDA backend: {@link gptq4j.backend.cuda.CudaBackend} runs every {@link gptq4j.backend.Backend}
 * operation on one NVIDIA GPU through JCuda's driver API only (no NVRTC, no cuBLAS, so only
 * {@code libcuda.so.1} from the NVIDIA driver is needed).
 *
 * <p>The kernels are CUDA C++ in {@code engine/src/main/cuda}, one file per operation family, compiled by
 * {@code bin/build-cuda} into one fatbin resource ({@code gptq4j/cuda/gptq4j.fatbin}: SASS for sm_80 and
 * sm_90a plus compute_80 PTX) with a stamp of the sources' hash that a unit test checks.
 *
 * <p>Roles: {@link gptq4j.backend.cuda.CudaDriver} owns the context, the module and error mapping;
 * {@link gptq4j.backend.cuda.CudaBuf},
 * {@link gptq4j.backend.cuda.CudaGptq}, {@link gptq4j.backend.cuda.CudaDense} and
 * {@link gptq4j.backend.cuda.CudaKvCache} are device-resident data; the exceptions say which failure happened.
 */
package gptq4j.backend.cuda;
