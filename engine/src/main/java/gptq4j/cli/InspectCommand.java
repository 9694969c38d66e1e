package gptq4j.cli;

import gptq4j.loader.Checkpoint;
import gptq4j.model.MixtralConfig;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;

/** {@code inspect --model DIR}: the config, the quantisation and the tensor count, after full validation. */
final class InspectCommand {
    private InspectCommand() { }

    static int run(String[] argv, PrintStream out) {
        Args a = new Args(argv, 1, Set.of("model"), Set.of("verbose"));
        try (Checkpoint ck = Checkpoint.open(Path.of(a.require("model")))) {
            MixtralConfig c = ck.config();
            // touching every tensor validates names, dtypes and shapes against the config; done first so a bad
            // checkpoint prints only its one error line, no half report
            gptq4j.model.MixtralWeights.load(ck, l -> l, m -> m);
            out.println("model:  " + ck.dir());
            out.println("config: " + c);
            out.println("quant:  " + ck.quant());
            out.println("tensors: all present with the expected shapes");
        }
        return 0;
    }
}
