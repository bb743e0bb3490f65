package org.moleport.core;

/**
 * The canonical resize, {@code center-square-crop+triangle-antialias-v1}, bit-for-bit as
 * {@code moleport.preprocess.resize_canonical}: centre square crop, then a separable triangle filter
 * widened by the downscale factor; horizontal pass rounded to uint8, then vertical pass rounded to
 * uint8; double arithmetic; rounding {@code floor(v + 0.5)} clipped to [0, 255].
 */
public final class CanonicalResize {
    public static final String RULE = "center-square-crop+triangle-antialias-v1";

    private CanonicalResize() {
    }

    /** Filter taps of one axis: output i reads inputs {@code lo[i] .. lo[i] + weights[i].length - 1}. */
    public record Filter(int[] lo, double[][] weights) {
    }

    /** The triangle filter for {@code inSize -> outSize} (weights of each output sum to 1). */
    public static Filter filter(int inSize, int outSize) {
        if (inSize <= 0 || outSize <= 0) {
            throw new IllegalArgumentException("filter sizes must be positive, got " + inSize + " -> " + outSize);
        }
        double scale = (double) inSize / outSize;
        double fs = Math.max(scale, 1.0);
        int[] lo = new int[outSize];
        double[][] weights = new double[outSize][];
        for (int i = 0; i < outSize; i++) {
            double c = (i + 0.5) * scale;
            int a = Math.max((int) Math.floor(c - fs + 0.5), 0);
            int b = Math.min((int) Math.floor(c + fs + 0.5), inSize);
            double[] k = new double[Math.max(b - a, 0)];
            double total = 0.0;
            for (int j = a; j < b; j++) {
                k[j - a] = Math.max(0.0, 1.0 - Math.abs((j - c + 0.5) / fs));
                total += k[j - a];
            }
            if (total <= 0.0) {
                throw new IllegalStateException("degenerate filter for " + inSize + "->" + outSize + " at " + i);
            }
            for (int j = 0; j < k.length; j++) {
                k[j] /= total;
            }
            lo[i] = a;
            weights[i] = k;
        }
        return new Filter(lo, weights);
    }

    /** Centre-square-crop (if not square) and resize to {@code size x size}. */
    public static RgbImage resize(RgbImage src, int size) {
        if (src == null) {
            throw new IllegalArgumentException("image is null");
        }
        if (size < Preprocessor.MIN_SIDE) {
            throw new IllegalArgumentException("output size must be >= " + Preprocessor.MIN_SIDE + ", got " + size);
        }
        RgbImage sq = src.width() == src.height() ? src : CropRect.centre(src.width(), src.height()).apply(src);
        int s = sq.width();
        Filter f = filter(s, size);
        byte[] horiz = horizontalPass(sq.raw(), s, s, f, size);
        return RgbImage.wrap(size, size, verticalPass(horiz, size, f));
    }

    /** rows x inW x 3 -> rows x outW x 3, each value rounded to uint8. */
    private static byte[] horizontalPass(byte[] in, int rows, int inW, Filter f, int outW) {
        byte[] out = new byte[rows * outW * 3];
        for (int y = 0; y < rows; y++) {
            int rowIn = y * inW * 3;
            for (int o = 0; o < outW; o++) {
                double[] k = f.weights()[o];
                int base = rowIn + f.lo()[o] * 3;
                double r = 0.0;
                double g = 0.0;
                double b = 0.0;
                for (int j = 0; j < k.length; j++) {
                    int p = base + 3 * j;
                    r += (in[p] & 0xFF) * k[j];
                    g += (in[p + 1] & 0xFF) * k[j];
                    b += (in[p + 2] & 0xFF) * k[j];
                }
                int d = (y * outW + o) * 3;
                out[d] = (byte) Rounding.toUint8(r);
                out[d + 1] = (byte) Rounding.toUint8(g);
                out[d + 2] = (byte) Rounding.toUint8(b);
            }
        }
        return out;
    }

    /** inH x w x 3 -> outH x w x 3, each value rounded to uint8. */
    private static byte[] verticalPass(byte[] in, int w, Filter f) {
        int outH = f.lo().length;
        byte[] out = new byte[outH * w * 3];
        for (int o = 0; o < outH; o++) {
            double[] k = f.weights()[o];
            int lo = f.lo()[o];
            for (int x = 0; x < w * 3; x++) {
                double v = 0.0;
                for (int j = 0; j < k.length; j++) {
                    v += (in[(lo + j) * w * 3 + x] & 0xFF) * k[j];
                }
                out[o * w * 3 + x] = (byte) Rounding.toUint8(v);
            }
        }
        return out;
    }
}
