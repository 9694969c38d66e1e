package gptq4j.cli;

import gptq4j.loader.CheckpointException;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code bin/gptq4j COMMAND [flags]}: generate, bench, inspect, synthesize. Errors print one line
 * {@code error: …} on stderr with a non-zero exit; {@code --verbose} adds stack traces and engine logs.
 */
public final class Main {
    private Main() { }

    static final String USAGE = """
            usage: gptq4j COMMAND [flags]
              generate   --model DIR [--device auto|cpu|cpu-scalar|cuda|cuda:N] [--input FILE.jsonl] [--output FILE.jsonl]
                         [--prompt TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P]
                         [--repetition-penalty R] [--presence-penalty P] [--frequency-penalty F] [--seed S]
                         [--stop STRING]... [--logprobs K] [--batch-size N] [--max-tokens-per-step N]
                         [--kv-cache-mb N] [--threads N] [--prompt-policy error|truncate_left] [--parse-special-tokens]
                         [--progress] [--verbose]
              bench      --model DIR | --shape NAME  [--device cpu|cpu-scalar|cuda] [--batch N[,N...]] [--prompt-tokens P]
                         [--new-tokens T] [--threads N] [--bits B --group-size G] [--bandwidth-seconds S]
                         [--zeros centered|random|sym (cuda)] [--perms shared|separate (cuda)]
                         [--select device|host (cuda)] [--kv-cache-mb N (cuda)] [--warmup N (cuda)]
                         [--warmup-steps N (cuda)] [--activations fp32|fp16 (cuda)] [--layers N (cuda)]
              inspect    --model DIR
              synthesize --out DIR [--shape NAME] [--hidden H ...] --bits B --group-size G [--act-order] [--asym] [--single-file] [--tokenizer DIR]
            """;

    public static void main(String[] argv) {
        System.exit(run(argv, System.out, System.err));
    }

    /** Runs a command; returns the exit code (0 ok, 1 failure, 2 usage). */
    public static int run(String[] argv, PrintStream out, PrintStream err) {
        boolean verbose = Arrays.asList(argv).contains("--verbose");
        if (!verbose) Logger.getLogger("").setLevel(Level.WARNING);
        if (argv.length == 0 || argv[0].equals("--help") || argv[0].equals("-h") || argv[0].equals("help")) {
            out.print(USAGE);
            return argv.length == 0 ? 2 : 0;
        }
        try {
            return switch (argv[0]) {
                case "generate" -> GenerateCommand.run(argv, out, err);
                case "inspect" -> InspectCommand.run(argv, out);
                case "bench" -> BenchCommand.run(argv, out);
                case "synthesize" -> SynthesizeCommand.run(argv, out);
                default -> throw new Args.UsageException("unknown command '" + argv[0] + "'");
            };
        } catch (Args.UsageException e) {
            err.println("error: " + e.getMessage());
            err.print(USAGE);
            return 2;
        } catch (CheckpointException | IllegalArgumentException | IllegalStateException | java.io.UncheckedIOException e) {
            err.println("error: " + e.getMessage());
            if (verbose) e.printStackTrace(err);
            return 1;
        } catch (RuntimeException | Error e) {
            err.println("error: " + e);
            if (verbose) e.printStackTrace(err);
            return 1;
        }
    }
}
