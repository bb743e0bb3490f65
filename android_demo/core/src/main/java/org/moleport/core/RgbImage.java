package org.moleport.core;

import java.util.Arrays;

/** An 8-bit RGB image, row-major, 3 bytes per pixel (R, G, B). Immutable. */
public final class RgbImage {
    private final int width;
    private final int height;
    private final byte[] rgb;

    /** Wraps a copy of {@code rgb} (length must be width * height * 3). */
    public RgbImage(int width, int height, byte[] rgb) {
        this(width, height, checkedCopy(width, height, rgb), true);
    }

    /** Non-copying constructor; {@code trusted} only distinguishes its signature from the public one. */
    private RgbImage(int width, int height, byte[] rgb, boolean trusted) {
        this.width = width;
        this.height = height;
        this.rgb = rgb;
    }

    private static byte[] checkedCopy(int width, int height, byte[] rgb) {
        if (rgb == null) {
            throw new IllegalArgumentException("rgb pixel array is null");
        }
        checkSize(width, height);
        long expected = (long) width * height * 3;
        if (rgb.length != expected) {
            throw new IllegalArgumentException("rgb array has " + rgb.length + " bytes; a "
                    + width + "x" + height + " RGB image needs " + expected);
        }
        return rgb.clone();
    }

    static void checkSize(int width, int height) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image size must be positive, got " + width + "x" + height);
        }
        if ((long) width * height > Preprocessor.MAX_PIXELS) {
            throw new IllegalArgumentException("image too large (" + width + "x" + height + " pixels; limit "
                    + Preprocessor.MAX_PIXELS + ")");
        }
    }

    /** Takes ownership of {@code rgb} without copying (package-internal producers only). */
    static RgbImage wrap(int width, int height, byte[] rgb) {
        checkSize(width, height);
        if (rgb.length != (long) width * height * 3) {
            throw new IllegalStateException("internal: rgb length does not match " + width + "x" + height);
        }
        return new RgbImage(width, height, rgb, true);
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    /** Channel value 0..255 of pixel (x, y); channel 0 = R, 1 = G, 2 = B. */
    public int get(int x, int y, int channel) {
        if (x < 0 || x >= width || y < 0 || y >= height || channel < 0 || channel > 2) {
            throw new IndexOutOfBoundsException("pixel (" + x + ", " + y + ", c" + channel + ") outside "
                    + width + "x" + height + "x3");
        }
        return rgb[(y * width + x) * 3 + channel] & 0xFF;
    }

    /** A copy of the packed RGB bytes. */
    public byte[] toRgbBytes() {
        return rgb.clone();
    }

    /** Packed bytes without copying, for package-internal hot loops. Never modify. */
    byte[] raw() {
        return rgb;
    }

    /** Opaque ARGB ints (0xFFRRGGBB), e.g. for {@code Bitmap.createBitmap(int[], w, h, ARGB_8888)}. */
    public int[] toArgb() {
        int[] out = new int[width * height];
        for (int i = 0; i < out.length; i++) {
            out[i] = 0xFF000000 | (rgb[3 * i] & 0xFF) << 16 | (rgb[3 * i + 1] & 0xFF) << 8 | (rgb[3 * i + 2] & 0xFF);
        }
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RgbImage other && other.width == width && other.height == height
                && Arrays.equals(other.rgb, rgb);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * width + height) + Arrays.hashCode(rgb);
    }

    @Override
    public String toString() {
        return "RgbImage(" + width + "x" + height + ")";
    }
}
