package org.moleport.core;

/**
 * One check, end to end: upright image + the user's square -> canonical input -> model ->
 * prediction -> advice and thumbnail. The Android layer supplies pixels and a {@link ProbabilityModel}.
 */
public final class MoleChecker {
    public static final int THUMBNAIL_SIZE = 96;
    private final ModelSpec spec;
    private final ProbabilityModel model;
    private final Preprocessor preprocessor;

    /** The outcome of one check. */
    public record Result(RgbImage modelInput, RgbImage thumbnail, Prediction prediction, Advice advice,
                         String modelName) {
        /** A history entry for this result. */
        public CheckRecord toRecord(String mole, long timeMillis, String thumbnailFile) {
            return new CheckRecord(mole, timeMillis, thumbnailFile, prediction.pMelanoma(), prediction.band(),
                    modelName);
        }
    }

    public MoleChecker(ModelSpec spec, ProbabilityModel model) {
        if (spec == null || model == null) {
            throw new IllegalArgumentException("model spec and model must not be null");
        }
        this.spec = spec;
        this.model = model;
        this.preprocessor = new Preprocessor(spec);
    }

    public ModelSpec spec() {
        return spec;
    }

    /** Runs the model on the square {@code crop} of {@code upright} (null: the centre square). */
    public Result check(RgbImage upright, CropRect crop) {
        RgbImage input = preprocessor.prepare(upright, crop);
        float[] out = model.probabilities(input);
        Prediction p = Prediction.fromOutput(out, spec);
        RgbImage thumb = CanonicalResize.resize(input, THUMBNAIL_SIZE);
        return new Result(input, thumb, p, Advice.forPrediction(p), model.name());
    }
}
