// The one compilation unit bin/build-cuda turns into gptq4j.fatbin: every operation family, then the values the host
// restates (host_constants.cu).
#include "gptq_gemm.cu"
#include "gq_mma.cu"
#include "gq_mmv.cu"
#include "gq_wg.cu"
#include "dense_fp16.cu"
#include "norm.cu"
#include "rope.cu"
#include "attention.cu"
#include "moe.cu"
#include "elementwise.cu"
#include "host_constants.cu"
