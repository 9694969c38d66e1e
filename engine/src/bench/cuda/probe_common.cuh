// What every probe here shares: CK (a CUDA runtime call that must succeed, else the probe exits with its error and
// line) and the current device's properties (name, multiProcessorCount, l2CacheSize).
#pragma once
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdlib>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); std::exit(1); } } while (0)

inline cudaDeviceProp probe_device() {
    int dev = 0;
    CK(cudaGetDevice(&dev));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));
    return prop;
}
