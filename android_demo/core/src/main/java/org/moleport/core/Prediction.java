package org.moleport.core;

/** The model's answer for one image: probabilities by label and the risk band from the spec's threshold. */
public record Prediction(double pMelanoma, double pNevus, double threshold, RiskBand band) {
    /** Largest allowed deviation of P(nevus) + P(melanoma) from 1 (int8 outputs are quantised to ~1/256). */
    public static final double SUM_TOLERANCE = 0.02;
    private static final double RANGE_TOLERANCE = 1e-3;

    /** Reads the model output {@code [P(labels[0]), P(labels[1])]} by label index. */
    public static Prediction fromOutput(float[] output, ModelSpec spec) {
        if (output == null) {
            throw new IllegalArgumentException("model output is null");
        }
        if (spec == null) {
            throw new IllegalArgumentException("model spec is null");
        }
        if (output.length != spec.labels().size()) {
            throw new IllegalArgumentException("model output has " + output.length + " values; expected "
                    + spec.labels().size() + " (one per label " + spec.labels() + ")");
        }
        double[] p = new double[output.length];
        for (int i = 0; i < output.length; i++) {
            double v = output[i];
            if (!Double.isFinite(v) || v < -RANGE_TOLERANCE || v > 1 + RANGE_TOLERANCE) {
                throw new IllegalArgumentException("model output " + i + " (" + spec.labels().get(i)
                        + ") is not a probability: " + v);
            }
            p[i] = Math.max(0.0, Math.min(1.0, v));
        }
        if (Math.abs(p[0] + p[1] - 1.0) > SUM_TOLERANCE) {
            throw new IllegalArgumentException("model output " + p[0] + " + " + p[1]
                    + " does not sum to 1; is this the [P(nevus), P(melanoma)] head?");
        }
        int mel = spec.melanomaIndex();
        double threshold = spec.threshold();
        return new Prediction(p[mel], p[1 - mel], threshold, RiskBand.of(p[mel], threshold));
    }

    /** Dequantises an int8 output tensor (e.g. the int8 TFLite variant) to floats. */
    public static float[] dequantize(byte[] raw, Quantization q) {
        if (raw == null || q == null) {
            throw new IllegalArgumentException("int8 output and its quantization must not be null");
        }
        float[] out = new float[raw.length];
        for (int i = 0; i < raw.length; i++) {
            out[i] = (float) q.dequantize(raw[i]);
        }
        return out;
    }

    /** P(melanoma) as a whole percentage for display, e.g. 0.237 -> "24%". */
    public String percent() {
        return Math.round(pMelanoma * 100.0) + "%";
    }
}
