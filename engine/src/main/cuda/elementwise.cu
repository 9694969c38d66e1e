// Small element-wise operations.
#include "common.cuh"

GPTQ4J_KERNEL void add_inplace(float* __restrict__ x, const float* __restrict__ y, long n) {
    GK_ENTER;
    const long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

// out[r][:] = x[rows[r]][:]; grid (ceil(dim/256), R).
GPTQ4J_KERNEL void gather_rows(const float* __restrict__ x, const int* __restrict__ rows, int dim,
                               float* __restrict__ out) {
    GK_ENTER;
    const int r = blockIdx.y;
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c < dim) out[(long) r * dim + c] = x[(long) rows[r] * dim + c];
}
