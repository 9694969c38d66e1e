// Rotary position embedding, rotate-half form: pairs (i, i + d/2) of every head rotate by
// pos * theta^(-2i/d). Angles are formed in double so long positions keep their precision.
#include "common.cuh"

// Rotates pair i of one head (v: the head's d values) of a token at position pos, in place.
__device__ __forceinline__ void rope_pair(float* v, int i, int d, int pos, double log_theta) {
    const int half = d / 2;
    const double ang = (double) pos * exp(-(2.0 * i / d) * log_theta);
    double sd, cd;
    sincos(ang, &sd, &cd);
    const float s = (float) sd, c = (float) cd;
    const float a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
}

// grid (T, heads + kv_heads), block d/2 threads: thread i rotates pair i of one head of one token.
// q [T][heads*d], k [T][kv_heads*d] in place.
GPTQ4J_KERNEL void rope_rotate_half(float* __restrict__ q, float* __restrict__ k, const int* __restrict__ positions,
                                    int heads, int kv_heads, int d, double log_theta) {
    GK_ENTER;
    const int t = blockIdx.x, h = blockIdx.y, i = threadIdx.x;
    if (i >= d / 2) return;
    float* v = h < heads ? q + (long) t * heads * d + h * d : k + (long) t * kv_heads * d + (h - heads) * d;
    rope_pair(v, i, d, positions[t], log_theta);
}
