package org.moleport.core;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One past check of a named mole: when, which thumbnail file (relative to the history folder),
 * the result and the model version that produced it.
 */
public record CheckRecord(String mole, long timeMillis, String thumbnail, double pMelanoma, RiskBand band,
                          String model) {
    public static final int MAX_NAME_LENGTH = 60;

    public CheckRecord {
        mole = normaliseName(mole);
        if (timeMillis <= 0) {
            throw new IllegalArgumentException("check time must be a positive epoch milliseconds value, got " + timeMillis);
        }
        if (thumbnail == null || thumbnail.isEmpty() || thumbnail.contains("/") || thumbnail.contains("\\")
                || thumbnail.startsWith(".")) {
            throw new IllegalArgumentException("thumbnail must be a plain file name, got \"" + thumbnail + "\"");
        }
        if (!(pMelanoma >= 0.0 && pMelanoma <= 1.0)) {
            throw new IllegalArgumentException("P(melanoma) must be within [0, 1], got " + pMelanoma);
        }
        if (band == null || model == null) {
            throw new IllegalArgumentException("risk band and model name must not be null");
        }
    }

    /** Trims a mole name ("left shoulder") and rejects empty or overlong names. */
    public static String normaliseName(String name) {
        String n = name == null ? "" : name.trim();
        if (n.isEmpty()) {
            throw new IllegalArgumentException("mole name must not be empty");
        }
        if (n.length() > MAX_NAME_LENGTH) {
            throw new IllegalArgumentException("mole name longer than " + MAX_NAME_LENGTH + " characters");
        }
        return n;
    }

    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("mole", mole);
        m.put("time_ms", timeMillis);
        m.put("thumbnail", thumbnail);
        m.put("p_melanoma", pMelanoma);
        m.put("band", band.name());
        m.put("model", model);
        return m;
    }

    static CheckRecord fromJson(Object o, String source) {
        if (!(o instanceof Map<?, ?> m) || m.size() != 6) {
            throw new IllegalArgumentException(source + ": each check must be an object with exactly "
                    + "mole, time_ms, thumbnail, p_melanoma, band, model");
        }
        try {
            return new CheckRecord((String) m.get("mole"), ((Double) m.get("time_ms")).longValue(),
                    (String) m.get("thumbnail"), (Double) m.get("p_melanoma"),
                    RiskBand.valueOf((String) m.get("band")), (String) m.get("model"));
        } catch (ClassCastException | NullPointerException e) {
            throw new IllegalArgumentException(source + ": check has a missing or mistyped field: " + m, e);
        }
    }
}
