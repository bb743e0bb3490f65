package org.moleport.core;

/** What the user is told: a headline and explanation per risk band, and the fixed safety notice. */
public record Advice(String headline, String explanation, String notice) {
    /** Shown on every result, whatever the band. */
    public static final String NOTICE = "This is not a diagnosis. The app is a research demonstration and can be wrong "
            + "in both directions; a low score does not rule out skin cancer. Any mole that is new, changing in size, "
            + "shape or colour, itching, bleeding or otherwise worrying you needs to be examined by a dermatologist, "
            + "whatever this app says.";

    public static Advice forPrediction(Prediction p) {
        if (p == null) {
            throw new IllegalArgumentException("prediction is null");
        }
        String score = "The model's melanoma score for this photo is " + p.percent()
                + " (its threshold is " + Math.round(p.threshold() * 100.0) + "%). ";
        switch (p.band()) {
            case HIGH:
                return new Advice("High score - see a dermatologist", score
                        + "This is at or above the threshold. Please arrange for a dermatologist or your doctor "
                        + "to examine this mole soon.", NOTICE);
            case BORDERLINE:
                return new Advice("Borderline score", score
                        + "This is below the threshold but not far from it. Consider having the mole checked, "
                        + "and keep photographing it to watch for change.", NOTICE);
            default:
                return new Advice("Low score", score
                        + "This is well below the threshold. Keep an eye on the mole and repeat the check "
                        + "if it changes.", NOTICE);
        }
    }
}
