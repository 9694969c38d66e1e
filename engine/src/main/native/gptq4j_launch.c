/*
 * cuLaunchKernelEx for the Java side (gptq4j.backend.cuda.CudaLaunchEx): JCuda 12.6 binds cuLaunchKernel only, and
 * the programmatic-dependent-launch attribute needs the Ex form. The driver is the one libJCudaDriver already
 * loaded (libcuda.so.1); nothing here links against CUDA. Built by bin/build-cuda.
 */
#include <jni.h>
#include <dlfcn.h>
#include <string.h>
#include <cuda.h>

/* the oldest x86-64 versions of dlopen/dlsym, so the library loads on glibc before 2.34 too */
#if defined(__x86_64__) && defined(__GLIBC__)
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
#endif

typedef CUresult (*launch_ex_fn)(const CUlaunchConfig*, CUfunction, void**, void**);
static launch_ex_fn launch_ex;

#define MAX_ARGS 64

/* 0 when cuLaunchKernelEx was found; -1: no libcuda.so.1; -2: the driver has no cuLaunchKernelEx (before CUDA 12). */
JNIEXPORT jint JNICALL Java_gptq4j_backend_cuda_CudaLaunchEx_init(JNIEnv* env, jclass cls) {
    (void) env; (void) cls;
    void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!h) h = dlopen("libcuda.so.1", RTLD_NOW);
    if (!h) return -1;
    launch_ex = (launch_ex_fn) dlsym(h, "cuLaunchKernelEx");
    return launch_ex ? 0 : -2;
}

/*
 * One launch. args: a direct buffer of nargs 8-byte slots, argument i in slot i (little-endian, so a 4-byte
 * argument is read from the slot's first bytes). pdl: with CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION.
 * Returns the CUresult (CUDA_ERROR_INVALID_VALUE for a bad buffer or too many arguments).
 */
JNIEXPORT jint JNICALL Java_gptq4j_backend_cuda_CudaLaunchEx_launch(JNIEnv* env, jclass cls, jlong function,
        jint gx, jint gy, jint gz, jint bx, jint by, jint bz, jint smem, jlong stream, jobject args, jint nargs,
        jboolean pdl) {
    (void) cls;
    if (!launch_ex) return CUDA_ERROR_NOT_INITIALIZED;
    char* base = args ? (char*) (*env)->GetDirectBufferAddress(env, args) : NULL;
    if (nargs < 0 || nargs > MAX_ARGS || (nargs > 0 && !base)) return CUDA_ERROR_INVALID_VALUE;
    void* params[MAX_ARGS];
    for (int i = 0; i < nargs; i++) params[i] = base + 8 * i;
    CUlaunchAttribute attr;
    memset(&attr, 0, sizeof attr);
    attr.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attr.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.gridDimX = (unsigned) gx; cfg.gridDimY = (unsigned) gy; cfg.gridDimZ = (unsigned) gz;
    cfg.blockDimX = (unsigned) bx; cfg.blockDimY = (unsigned) by; cfg.blockDimZ = (unsigned) bz;
    cfg.sharedMemBytes = (unsigned) smem;
    cfg.hStream = (CUstream) (size_t) stream;
    cfg.attrs = pdl ? &attr : NULL;
    cfg.numAttrs = pdl ? 1 : 0;
    return (jint) launch_ex(&cfg, (CUfunction) (size_t) function, params, NULL);
}
