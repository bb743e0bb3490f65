package org.moleport.core;

import java.util.List;

/**
 * Change over time for one mole: the latest check against the previous one. A rise of
 * {@link #NOTABLE_RISE} or more in P(melanoma), or a move to a higher band, is flagged.
 */
public record MoleTrend(CheckRecord latest, CheckRecord previous, double change, boolean worsened) {
    /** A rise in P(melanoma) this large (absolute) is called out to the user. */
    public static final double NOTABLE_RISE = 0.10;

    /** Trend of checks sorted oldest first (as {@link HistoryStore#checksFor} returns them). */
    public static MoleTrend of(List<CheckRecord> checks) {
        if (checks == null || checks.isEmpty()) {
            throw new IllegalArgumentException("no checks recorded for this mole yet");
        }
        CheckRecord latest = checks.get(checks.size() - 1);
        if (checks.size() == 1) {
            return new MoleTrend(latest, null, 0.0, false);
        }
        CheckRecord previous = checks.get(checks.size() - 2);
        if (previous.timeMillis() > latest.timeMillis()) {
            throw new IllegalArgumentException("checks must be sorted oldest first");
        }
        double change = latest.pMelanoma() - previous.pMelanoma();
        boolean worsened = change >= NOTABLE_RISE || latest.band().ordinal() > previous.band().ordinal();
        return new MoleTrend(latest, previous, change, worsened);
    }

    /** One plain-language sentence for the history screen. */
    public String summary() {
        if (previous == null) {
            return "First check of this mole. Photograph it again in a few weeks to see change over time.";
        }
        long points = Math.round(change * 100.0);
        String delta = points == 0 ? "unchanged" : (points > 0 ? "up " : "down ") + Math.abs(points) + " points";
        if (worsened) {
            return "Score " + delta + " since the previous check. A changing mole should be seen by a dermatologist.";
        }
        return "Score " + delta + " since the previous check. Any visible change in the mole itself still "
                + "needs a dermatologist, whatever the score.";
    }
}
