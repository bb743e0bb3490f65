package org.moleport.core;

/**
 * Affine int8 quantisation of a TFLite tensor: {@code q = round(x / scale) + zeroPoint} (round half away
 * from zero, clipped to [-128, 127]) and {@code x = (q - zeroPoint) * scale}.
 */
public record Quantization(double scale, int zeroPoint) {
    public Quantization {
        if (!(scale > 0.0) || !Double.isFinite(scale)) {
            throw new IllegalArgumentException("quantization scale must be a positive finite number, got " + scale);
        }
        if (zeroPoint < -128 || zeroPoint > 127) {
            throw new IllegalArgumentException("int8 zero point must be within [-128, 127], got " + zeroPoint);
        }
    }

    public byte quantize(double x) {
        double v = x / scale;
        double r = v >= 0 ? Math.floor(v + 0.5) : -Math.floor(-v + 0.5);
        double q = r + zeroPoint;
        return (byte) Math.max(-128, Math.min(127, (int) q));
    }

    public double dequantize(byte q) {
        return (q - zeroPoint) * scale;
    }
}
