package org.moleport.core;

/**
 * Applies an EXIF orientation (1-8) so the image is upright, as Pillow's {@code ImageOps.exif_transpose}:
 * 1 none, 2 mirror horizontally, 3 rotate 180, 4 mirror vertically, 5 transpose,
 * 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
 */
public final class ExifOrientation {
    private ExifOrientation() {
    }

    /**
     * The orientation to apply for a raw EXIF tag value: 1..8 as is; anything else (0 = undefined, missing,
     * corrupt) means "as stored", which is what Pillow's {@code exif_transpose} does.
     */
    public static int fromTag(int tagValue) {
        return tagValue >= 1 && tagValue <= 8 ? tagValue : 1;
    }

    public static boolean swapsSides(int orientation) {
        check(orientation);
        return orientation >= 5;
    }

    public static RgbImage apply(RgbImage src, int orientation) {
        if (src == null) {
            throw new IllegalArgumentException("image is null");
        }
        check(orientation);
        if (orientation == 1) {
            return src;
        }
        int w = src.width();
        int h = src.height();
        boolean swap = orientation >= 5;
        int ow = swap ? h : w;
        int oh = swap ? w : h;
        byte[] in = src.raw();
        byte[] out = new byte[in.length];
        for (int y = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++) {
                int s = sourceIndex(orientation, x, y, w, h);
                int d = (y * ow + x) * 3;
                out[d] = in[3 * s];
                out[d + 1] = in[3 * s + 1];
                out[d + 2] = in[3 * s + 2];
            }
        }
        return RgbImage.wrap(ow, oh, out);
    }

    /** Index (in pixels) of the source pixel that lands on output (x, y). */
    private static int sourceIndex(int orientation, int x, int y, int w, int h) {
        return switch (orientation) {
            case 2 -> y * w + (w - 1 - x);
            case 3 -> (h - 1 - y) * w + (w - 1 - x);
            case 4 -> (h - 1 - y) * w + x;
            case 5 -> x * w + y;
            case 6 -> (h - 1 - x) * w + y;
            case 7 -> (h - 1 - x) * w + (w - 1 - y);
            case 8 -> x * w + (w - 1 - y);
            default -> throw new IllegalStateException("unreachable orientation " + orientation);
        };
    }

    private static void check(int orientation) {
        if (orientation < 1 || orientation > 8) {
            throw new IllegalArgumentException("EXIF orientation must be 1..8, got " + orientation);
        }
    }
}
