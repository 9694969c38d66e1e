package gptq4j.cli;

import gptq4j.loader.CheckpointSynthesizer;
import gptq4j.model.Shapes;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.Set;

/** {@code synthesize}: a random checkpoint in the published GPTQ layout (meaningless text, real format). */
final class SynthesizeCommand {
    private SynthesizeCommand() { }

    static int run(String[] argv, PrintStream out) {
        Args a = new Args(argv, 1, Set.of("out", "shape", "hidden", "intermediate", "layers", "experts", "top-k", "heads",
                "kv-heads", "vocab", "bits", "group-size", "sliding-window", "seed", "tokenizer"),
                Set.of("act-order", "asym", "single-file", "verbose"));
        Shapes.Shape base = Shapes.named(a.get("shape", "tiny"));
        Shapes.Shape s = new Shapes.Shape(a.getInt("vocab", base.vocab()), a.getInt("hidden", base.hidden()),
                a.getInt("intermediate", base.intermediate()), a.getInt("layers", base.layers()),
                a.getInt("heads", base.heads()), a.getInt("kv-heads", base.kvHeads()),
                a.getInt("experts", base.experts()), a.getInt("top-k", base.topK()));
        Path dir = Path.of(a.require("out"));
        var o = new CheckpointSynthesizer.Options(s, a.getInt("bits", 4), a.getInt("group-size", 128), a.flag("act-order"),
                a.flag("asym"), a.flag("single-file"), a.getInt("sliding-window", 0), a.getLong("seed", 0),
                a.has("tokenizer") ? Path.of(a.get("tokenizer", null)) : null);
        try {
            CheckpointSynthesizer.write(o, dir);
        } catch (IOException e) {
            throw new UncheckedIOException(dir + ": " + e.getMessage(), e);
        }
        out.println("wrote " + dir + ": " + s + ", " + o.bits() + "-bit group " + o.groupSize()
                + (o.actOrder() ? ", act order" : "") + (o.asym() ? ", asymmetric" : "")
                + (o.tokenizerDir() == null ? " (no tokenizer: pass --tokenizer DIR to copy one)" : ""));
        return 0;
    }
}
