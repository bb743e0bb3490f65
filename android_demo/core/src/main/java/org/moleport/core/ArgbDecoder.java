package org.moleport.core;

/**
 * ARGB ints (as {@code android.graphics.Bitmap.getPixels} returns them: non-premultiplied
 * 0xAARRGGBB, row-major) to an {@link RgbImage}.
 *
 * <p>Alpha is composited over white exactly as moleport.preprocess does:
 * {@code out = floor((c * a + 255 * (255 - a)) / 255 + 0.5)} in double arithmetic.
 */
public final class ArgbDecoder {
    private ArgbDecoder() {
    }

    public static RgbImage decode(int[] argb, int width, int height) {
        if (argb == null) {
            throw new IllegalArgumentException("ARGB pixel array is null");
        }
        RgbImage.checkSize(width, height);
        if (argb.length != (long) width * height) {
            throw new IllegalArgumentException("ARGB array has " + argb.length + " pixels; "
                    + width + "x" + height + " needs " + ((long) width * height));
        }
        byte[] rgb = new byte[argb.length * 3];
        for (int i = 0; i < argb.length; i++) {
            int p = argb[i];
            int a = p >>> 24;
            rgb[3 * i] = (byte) composite((p >> 16) & 0xFF, a);
            rgb[3 * i + 1] = (byte) composite((p >> 8) & 0xFF, a);
            rgb[3 * i + 2] = (byte) composite(p & 0xFF, a);
        }
        return RgbImage.wrap(width, height, rgb);
    }

    /** One channel over a white background; opaque pixels pass through unchanged. */
    static int composite(int channel, int alpha) {
        if (alpha == 255) {
            return channel;
        }
        double v = (channel * (double) alpha + 255.0 * (255.0 - alpha)) / 255.0;
        return Rounding.toUint8(v);
    }
}
