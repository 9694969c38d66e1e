package gptq4j.runtime;

import java.util.List;

/** Stop strings matched on decoded text. */
final class StopStrings {
    private StopStrings() { }

    /** Index of the earliest occurrence of any stop string in text, or -1. */
    static int find(String text, List<String> stops) {
        int best = -1;
        for (String s : stops) {
            int i = text.indexOf(s);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }
}
