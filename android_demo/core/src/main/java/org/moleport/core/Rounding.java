package org.moleport.core;

/** The canonical rounding rule: {@code floor(v + 0.5)} clipped to [0, 255]. */
final class Rounding {
    private Rounding() {
    }

    static int toUint8(double v) {
        double r = Math.floor(v + 0.5);
        if (r <= 0.0) {
            return 0;
        }
        return r >= 255.0 ? 255 : (int) r;
    }
}
