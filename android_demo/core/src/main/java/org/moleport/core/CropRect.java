package org.moleport.core;

/**
 * A square region {@code [left, left + side) x [top, top + side)} of an upright image, in pixels.
 * The crop screen produces one; {@link #centre} is the canonical default (moleport.preprocess step 1).
 */
public record CropRect(int left, int top, int side) {
    public CropRect {
        if (side <= 0) {
            throw new IllegalArgumentException("crop side must be positive, got " + side);
        }
        if (left < 0 || top < 0) {
            throw new IllegalArgumentException("crop origin must be >= 0, got (" + left + ", " + top + ")");
        }
    }

    /** The canonical centre square: {@code s = min(w, h)}, {@code x0 = (w - s) / 2}, {@code y0 = (h - s) / 2}. */
    public static CropRect centre(int width, int height) {
        RgbImage.checkSize(width, height);
        int s = Math.min(width, height);
        return new CropRect((width - s) / 2, (height - s) / 2, s);
    }

    /**
     * The square the user framed: centre ({@code cx}, {@code cy}) and side in image pixels (from the
     * crop screen's pan/zoom). The side is clamped to [{@link Preprocessor#MIN_SIDE}, min(w, h)] and the
     * square is shifted to lie inside the image.
     */
    public static CropRect framed(int width, int height, double cx, double cy, double side) {
        RgbImage.checkSize(width, height);
        if (!Double.isFinite(cx) || !Double.isFinite(cy) || !Double.isFinite(side)) {
            throw new IllegalArgumentException("crop centre and side must be finite numbers");
        }
        int maxSide = Math.min(width, height);
        if (maxSide < Preprocessor.MIN_SIDE) {
            throw new IllegalArgumentException("image too small to crop (" + width + "x" + height
                    + "); the shorter side must be at least " + Preprocessor.MIN_SIDE + " px");
        }
        int s = (int) Math.round(Math.max(Preprocessor.MIN_SIDE, Math.min(side, maxSide)));
        int left = clamp((int) Math.round(cx - s / 2.0), 0, width - s);
        int top = clamp((int) Math.round(cy - s / 2.0), 0, height - s);
        return new CropRect(left, top, s);
    }

    private static int clamp(int v, int lo, int hi) {
        return Math.max(lo, Math.min(hi, v));
    }

    /** True when the square lies inside a {@code width x height} image. */
    public boolean fits(int width, int height) {
        return (long) left + side <= width && (long) top + side <= height;
    }

    /** The cropped pixels; throws if the square is outside the image or smaller than the minimum side. */
    public RgbImage apply(RgbImage src) {
        if (src == null) {
            throw new IllegalArgumentException("image is null");
        }
        if (!fits(src.width(), src.height())) {
            throw new IllegalArgumentException("crop " + this + " does not fit inside a "
                    + src.width() + "x" + src.height() + " image");
        }
        if (side < Preprocessor.MIN_SIDE) {
            throw new IllegalArgumentException("crop side " + side + " px is too small; at least "
                    + Preprocessor.MIN_SIDE + " px needed");
        }
        byte[] in = src.raw();
        byte[] out = new byte[side * side * 3];
        for (int y = 0; y < side; y++) {
            System.arraycopy(in, ((top + y) * src.width() + left) * 3, out, y * side * 3, side * 3);
        }
        return RgbImage.wrap(side, side, out);
    }
}
