package gptq4j.backend.cpu;

/** MoE routing as transformers' Mixtral does it: softmax in float32, top-k, renormalise the k weights. */
final class Routing {
    private Routing() { }

    /**
     * @param logits  [T][E] router logits
     * @param chosen  out [T][k] expert ids, in descending weight order (ties: lower id first)
     * @param weights out [T][k] renormalised weights
     */
    static void topK(float[] logits, int T, int E, int k, int[] chosen, float[] weights) {
        float[] p = new float[E];
        for (int t = 0; t < T; t++) {
            int b = t * E;
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < E; e++) max = Math.max(max, logits[b + e]);
            float sum = 0;
            for (int e = 0; e < E; e++) {
                p[e] = (float) Math.exp(logits[b + e] - max);
                sum += p[e];
            }
            for (int e = 0; e < E; e++) p[e] /= sum;
            float kept = 0;
            for (int j = 0; j < k; j++) {
                int best = -1;
                for (int e = 0; e < E; e++) {
                    if (p[e] >= 0 && (best < 0 || p[e] > p[best])) best = e;
                }
                chosen[t * k + j] = best;
                weights[t * k + j] = p[best];
                kept += p[best];
                p[best] = -1;                                        // taken
            }
            for (int j = 0; j < k; j++) weights[t * k + j] /= kept;
        }
    }
}
