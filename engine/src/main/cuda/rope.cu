// Rotary position embedding, rotate-half form: pairs (i, i + d/2) of every head rotate by
// pos * theta^(-2i/d). Angles are formed in double so long positions keep their precision.
#include "common.cuh"

// grid (T, heads + kv_heads), block d/2 threads: thread i rotates pair i of one head of one token.
// q [T][heads*d], k [T][kv_heads*d] in place.
GPTQ4J_KERNEL void rope_rotate_half(float* __restrict__ q, float* __restrict__ k, const int* __restrict__ positions,
                                    int heads, int kv_heads, int d, double log_theta) {
    GK_ENTER;
    const int t = blockIdx.x, h = blockIdx.y, i = threadIdx.x;
    const int half = d / 2;
    if (i >= half) return;
    const double ang = (double) positions[t] * exp(-(2.0 * i / d) * log_theta);
    double sd, cd;
    sincos(ang, &sd, &cd);
    const float s = (float) sd, c = (float) cd;
    float* v = h < heads ? q + (long) t * heads * d + h * d : k + (long) t * kv_heads * d + (h - heads) * d;
    const float a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
}
