package gptq4j.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Command-line flags: {@code --name value}, repeatable flags, and boolean switches. */
final class Args {
    private final Map<String, List<String>> values = new LinkedHashMap<>();

    Args(String[] argv, int from, Set<String> known, Set<String> switches) {
        for (int i = from; i < argv.length; i++) {
            String a = argv[i];
            if (!a.startsWith("--")) throw new UsageException("unexpected argument '" + a + "'");
            String name = a.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            if (switches.contains(name)) {
                values.computeIfAbsent(name, k -> new ArrayList<>()).add(value == null ? "true" : value);
                continue;
            }
            if (!known.contains(name)) throw new UsageException("unknown flag --" + name);
            if (value == null) {
                if (i + 1 >= argv.length) throw new UsageException("flag --" + name + " needs a value");
                value = argv[++i];
            }
            values.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
        }
    }

    boolean has(String name) { return values.containsKey(name); }

    String get(String name, String dflt) {
        List<String> v = values.get(name);
        return v == null ? dflt : v.get(v.size() - 1);
    }

    List<String> all(String name) { return values.getOrDefault(name, List.of()); }

    boolean flag(String name) { return Boolean.parseBoolean(get(name, "false")); }

    int getInt(String name, int dflt) {
        String v = get(name, null);
        if (v == null) return dflt;
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " expects an integer, got '" + v + "'");
        }
    }

    long getLong(String name, long dflt) {
        String v = get(name, null);
        if (v == null) return dflt;
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " expects an integer, got '" + v + "'");
        }
    }

    double getDouble(String name, double dflt) {
        String v = get(name, null);
        if (v == null) return dflt;
        try {
            return Double.parseDouble(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("--" + name + " expects a number, got '" + v + "'");
        }
    }

    String require(String name) {
        String v = get(name, null);
        if (v == null) throw new UsageException("missing required flag --" + name);
        return v;
    }

    /** A command-line mistake: printed as one line with the usage hint, exit code 2. */
    static final class UsageException extends RuntimeException {
        UsageException(String m) { super(m); }
    }
}
