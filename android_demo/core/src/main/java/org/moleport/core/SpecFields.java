package org.moleport.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/** Typed, strict access to the fields of a parsed spec JSON object; errors name the source and field. */
final class SpecFields {
    private final Map<String, Object> map;
    private final String source;

    SpecFields(Map<String, Object> map, String source) {
        this.map = map;
        this.source = source;
    }

    void checkKeys(Set<String> required, Set<String> optional) {
        Set<String> unknown = new TreeSet<>(map.keySet());
        unknown.removeAll(required);
        unknown.removeAll(optional);
        if (!unknown.isEmpty()) {
            throw new SpecException(source + ": unknown ModelSpec field(s) " + unknown);
        }
        Set<String> missing = new TreeSet<>(required);
        missing.removeAll(map.keySet());
        if (!missing.isEmpty()) {
            throw new SpecException(source + ": ModelSpec is missing field(s) " + missing);
        }
    }

    private Object get(String key) {
        Object v = map.get(key);
        if (v == null) {
            throw new SpecException(source + ": '" + key + "' must not be null");
        }
        return v;
    }

    private SpecException wrongType(String key, String expected) {
        return new SpecException(source + ": '" + key + "' must be " + expected + ", got " + map.get(key));
    }

    String string(String key) {
        if (!(get(key) instanceof String s) || s.isEmpty()) {
            throw wrongType(key, "a non-empty string");
        }
        return s;
    }

    double number(String key) {
        if (!(get(key) instanceof Double d) || !Double.isFinite(d)) {
            throw wrongType(key, "a number");
        }
        return d;
    }

    /** The string at {@code key}, or null when the key is absent or JSON null. */
    String optionalString(String key) {
        return map.get(key) == null ? null : string(key);
    }

    /** The number at {@code key}, or {@code fallback} when the key is absent or JSON null. */
    double numberOr(String key, double fallback) {
        return map.get(key) == null ? fallback : number(key);
    }

    int integer(String key) {
        double d = number(key);
        if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
            throw wrongType(key, "an integer");
        }
        return (int) d;
    }

    double[] triple(String key) {
        if (!(get(key) instanceof List<?> list) || list.size() != 3) {
            throw wrongType(key, "a list of exactly 3 numbers (one per channel)");
        }
        double[] out = new double[3];
        for (int i = 0; i < 3; i++) {
            if (!(list.get(i) instanceof Double d)) {
                throw wrongType(key, "a list of exactly 3 numbers (one per channel)");
            }
            out[i] = d;
        }
        return out;
    }

    List<String> strings(String key) {
        if (!(get(key) instanceof List<?> list)) {
            throw wrongType(key, "a list of strings");
        }
        List<String> out = new ArrayList<>();
        for (Object o : list) {
            if (!(o instanceof String s) || s.isEmpty()) {
                throw wrongType(key, "a list of non-empty strings");
            }
            out.add(s);
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    Map<String, Object> objectOrEmpty(String key) {
        if (!map.containsKey(key)) {
            return new LinkedHashMap<>();
        }
        if (!(map.get(key) instanceof Map<?, ?> m)) {
            throw wrongType(key, "an object");
        }
        return (Map<String, Object>) m;
    }
}
