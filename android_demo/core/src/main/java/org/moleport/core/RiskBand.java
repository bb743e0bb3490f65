package org.moleport.core;

/**
 * Risk bands derived from P(melanoma) and the spec's threshold {@code t} (chosen at training time for
 * the target sensitivity):
 * <ul>
 *   <li>{@link #LOW}: {@code p < t / 2}</li>
 *   <li>{@link #BORDERLINE}: {@code t / 2 <= p < t} - below the threshold but not far from it</li>
 *   <li>{@link #HIGH}: {@code p >= t} - the model's positive call; see a dermatologist</li>
 * </ul>
 */
public enum RiskBand {
    LOW("low"),
    BORDERLINE("borderline"),
    HIGH("high - see a dermatologist");

    private final String label;

    RiskBand(String label) {
        this.label = label;
    }

    /** Short label shown on the result screen and stored in the history. */
    public String label() {
        return label;
    }

    public static RiskBand of(double pMelanoma, double threshold) {
        if (!(pMelanoma >= 0.0 && pMelanoma <= 1.0)) {
            throw new IllegalArgumentException("P(melanoma) must be within [0, 1], got " + pMelanoma);
        }
        if (!(threshold >= 0.0 && threshold <= 1.0)) {
            throw new IllegalArgumentException("threshold must be within [0, 1], got " + threshold);
        }
        if (pMelanoma >= threshold) {
            return HIGH;
        }
        return pMelanoma >= threshold / 2.0 ? BORDERLINE : LOW;
    }
}
