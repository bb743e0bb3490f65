package org.moleport.core;

/**
 * Everything that decides what the model sees: ARGB pixels -> upright RGB -> square crop -> canonical
 * resize. The Android layer only decodes the file into ARGB ints and reads the EXIF orientation.
 */
public final class Preprocessor {
    /** Shorter side below this is refused (as moleport.preprocess.MIN_SIDE). */
    public static final int MIN_SIDE = 32;
    /** Larger images are refused (as moleport.preprocess.MAX_PIXELS). */
    public static final long MAX_PIXELS = 64_000_000L;

    private final int inputSize;

    public Preprocessor(int inputSize) {
        if (inputSize < MIN_SIDE) {
            throw new IllegalArgumentException("model input size must be >= " + MIN_SIDE + ", got " + inputSize);
        }
        this.inputSize = inputSize;
    }

    public Preprocessor(ModelSpec spec) {
        this(requireSpec(spec).inputSize());
    }

    private static ModelSpec requireSpec(ModelSpec spec) {
        if (spec == null) {
            throw new IllegalArgumentException("model spec is null");
        }
        return spec;
    }

    public int inputSize() {
        return inputSize;
    }

    /** Decoded, upright image (alpha composited over white, EXIF orientation applied, size checked). */
    public static RgbImage upright(int[] argb, int width, int height, int exifOrientation) {
        RgbImage img = ExifOrientation.apply(ArgbDecoder.decode(argb, width, height), exifOrientation);
        requireMinSide(img);
        return img;
    }

    /** The model input for a user-framed square ({@code crop == null}: the canonical centre square). */
    public RgbImage prepare(RgbImage upright, CropRect crop) {
        if (upright == null) {
            throw new IllegalArgumentException("image is null");
        }
        requireMinSide(upright);
        RgbImage square = crop == null ? upright : crop.apply(upright);
        return CanonicalResize.resize(square, inputSize);
    }

    /** Shortcut: ARGB ints + EXIF orientation + optional crop -> {@code inputSize x inputSize} RGB. */
    public RgbImage prepare(int[] argb, int width, int height, int exifOrientation, CropRect crop) {
        return prepare(upright(argb, width, height, exifOrientation), crop);
    }

    static void requireMinSide(RgbImage img) {
        if (Math.min(img.width(), img.height()) < MIN_SIDE) {
            throw new IllegalArgumentException("image too small (" + img.width() + "x" + img.height()
                    + "); the shorter side must be at least " + MIN_SIDE + " px");
        }
    }
}
