package org.moleport.core;

/**
 * An on-device model runtime (LiteRT/TFLite, ExecuTorch, ...). It receives the canonical
 * {@code N x N} RGB input (already preprocessed) and returns the raw output
 * {@code [P(labels[0]), P(labels[1])]}, dequantised if the model is int8. Use
 * {@link ModelInput} to fill the runtime's input tensor.
 */
public interface ProbabilityModel extends AutoCloseable {
    float[] probabilities(RgbImage modelInput);

    /** Short name stored with each check, e.g. "litert-fp32 v1". */
    String name();

    @Override
    void close();
}
