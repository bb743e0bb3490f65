package org.moleport.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The model's contract, read strictly from the bundle's {@code spec.json} (written by
 * {@code moleport.spec.ModelSpec.to_json}). Unknown fields, missing fields, a missing "melanoma"
 * label, an out-of-range threshold or a resize rule this app does not implement are errors.
 *
 * <p>{@code color_constancy}, {@code temperature} and {@code tta} (test-time augmentation) are applied inside the
 * exported graph (the app feeds
 * raw pixels either way); they are read so that a spec naming a rule the exporter does not implement in-graph
 * is refused instead of silently giving other answers than the parity-checked model.
 */
public record ModelSpec(String architecture, int inputSize, String colorOrder, String resizeRule,
                        double[] mean, double[] std, List<String> labels, String positiveClass,
                        double threshold, Map<String, Object> exportInput, int version,
                        String colorConstancy, double temperature, String tta) {
    public static final String MELANOMA = "melanoma";
    /** Colour-constancy rules the exporter implements inside the graph (moleport.spec.COLOR_CONSTANCY_RULES). */
    public static final Set<String> IN_GRAPH_COLOR_CONSTANCY = Collections.singleton("shades-of-gray-p6");
    /** Test-time augmentation rules the exporter implements inside the graph (moleport.spec.TTA_RULES). */
    public static final Set<String> IN_GRAPH_TTA = Collections.unmodifiableSet(new HashSet<>(Arrays.asList("flips2",
            "flips4", "dihedral8")));
    static final Set<String> REQUIRED = Collections.unmodifiableSet(new HashSet<>(Arrays.asList("architecture",
            "input_size", "color_order", "resize_rule", "mean", "std", "labels", "positive_class", "threshold",
            "version")));
    static final Set<String> OPTIONAL = Collections.unmodifiableSet(new HashSet<>(Arrays.asList("export_input",
            "color_constancy", "temperature", "tta")));

    public ModelSpec {
        mean = mean.clone();
        std = std.clone();
        labels = Collections.unmodifiableList(new ArrayList<>(labels));
        exportInput = Collections.unmodifiableMap(new LinkedHashMap<>(exportInput));
    }

    /** Index of "melanoma" in {@link #labels()}: where P(melanoma) sits in the model output. */
    public int melanomaIndex() {
        return labels.indexOf(MELANOMA);
    }

    public double[] mean() {
        return mean.clone();
    }

    public double[] std() {
        return std.clone();
    }

    /**
     * Checks the bundle's labels.txt (one label per line; blank lines ignored) against {@link #labels()}, so a
     * model and spec from different exports are never paired.
     */
    public void requireLabelsFile(String labelsText, String source) {
        if (labelsText == null) {
            throw new SpecException(source + ": labels file is null");
        }
        List<String> lines = new ArrayList<>();
        for (String line : labelsText.split("\\r?\\n")) {
            if (!line.trim().isEmpty()) {
                lines.add(line.trim());
            }
        }
        if (!lines.equals(labels)) {
            throw new SpecException(source + ": labels " + lines + " do not match spec labels " + labels);
        }
    }

    /** Parses and validates spec JSON; {@code source} (e.g. "assets/model/spec.json") prefixes errors. */
    public static ModelSpec parse(String json, String source) {
        Object root;
        try {
            root = Json.parse(json);
        } catch (Json.JsonException e) {
            throw new SpecException(source + ": not valid JSON (" + e.getMessage() + ")", e);
        }
        if (!(root instanceof Map<?, ?> raw)) {
            throw new SpecException(source + ": spec JSON must be an object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) raw;
        SpecFields f = new SpecFields(m, source);
        f.checkKeys(REQUIRED, OPTIONAL);
        ModelSpec spec = new ModelSpec(f.string("architecture"), f.integer("input_size"), f.string("color_order"),
                f.string("resize_rule"), f.triple("mean"), f.triple("std"), f.strings("labels"),
                f.string("positive_class"), f.number("threshold"), f.objectOrEmpty("export_input"),
                f.integer("version"), f.optionalString("color_constancy"), f.numberOr("temperature", 1.0),
                f.optionalString("tta"));
        spec.validate(source);
        return spec;
    }

    private void validate(String source) {
        if (inputSize < Preprocessor.MIN_SIDE) {
            throw new SpecException(source + ": input_size must be >= " + Preprocessor.MIN_SIDE + ", got " + inputSize);
        }
        if (!colorOrder.equals("RGB") && !colorOrder.equals("BGR")) {
            throw new SpecException(source + ": color_order must be RGB or BGR, got \"" + colorOrder + "\"");
        }
        if (!resizeRule.equals(CanonicalResize.RULE)) {
            throw new SpecException(source + ": resize_rule \"" + resizeRule + "\" is not implemented by this app (expects \""
                    + CanonicalResize.RULE + "\")");
        }
        for (double s : std) {
            if (!(s > 0)) {
                throw new SpecException(source + ": std values must be > 0, got " + s);
            }
        }
        if (labels.size() != 2 || labels.get(0).equals(labels.get(1))) {
            throw new SpecException(source + ": labels must be two distinct names, got " + labels);
        }
        if (!labels.contains(MELANOMA)) {
            throw new SpecException(source + ": labels " + labels + " are missing the label \"" + MELANOMA + "\"");
        }
        if (!labels.contains(positiveClass)) {
            throw new SpecException(source + ": positive_class \"" + positiveClass + "\" is not one of labels " + labels);
        }
        if (!(threshold >= 0.0 && threshold <= 1.0)) {
            throw new SpecException(source + ": threshold must be within [0, 1], got " + threshold);
        }
        if (colorConstancy != null && !IN_GRAPH_COLOR_CONSTANCY.contains(colorConstancy)) {
            throw new SpecException(source + ": color_constancy \"" + colorConstancy + "\" is not a rule the exported "
                    + "graph implements " + IN_GRAPH_COLOR_CONSTANCY);
        }
        if (tta != null && !IN_GRAPH_TTA.contains(tta)) {
            throw new SpecException(source + ": tta \"" + tta + "\" is not a test-time augmentation the exported "
                    + "graph implements " + IN_GRAPH_TTA);
        }
        if (!(temperature >= 0.01 && temperature <= 100.0)) {
            throw new SpecException(source + ": temperature must be within [0.01, 100], got " + temperature);
        }
        if (version < 1) {
            throw new SpecException(source + ": version must be >= 1, got " + version);
        }
    }
}
