package gptq4j.tokenizer;

import java.util.Arrays;

/** A growable list of primitive ints (token ids), so that encoding a long prompt does not box every id. */
final class IntList {
    private int[] data;
    private int size;

    IntList(int capacity) {
        data = new int[Math.max(4, capacity)];
    }

    void add(int value) {
        if (size == data.length) {
            data = Arrays.copyOf(data, data.length * 2);
        }
        data[size++] = value;
    }

    void addAll(int[] values) {
        for (int v : values) {
            add(v);
        }
    }

    int get(int index) {
        return data[index];
    }

    int size() {
        return size;
    }

    void clear() {
        size = 0;
    }

    /** Removes the first {@code n} values, shifting the rest down. */
    void dropFirst(int n) {
        System.arraycopy(data, n, data, 0, size - n);
        size -= n;
    }

    int[] toArray() {
        return Arrays.copyOf(data, size);
    }

    int[] toArray(int from, int to) {
        return Arrays.copyOfRange(data, from, to);
    }
}
