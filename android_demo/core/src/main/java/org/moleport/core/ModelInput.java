package org.moleport.core;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Lays an {@code N x N} RGB image into the TFLite input tensor [1, N, N, 3] (NHWC): float32 raw
 * values 0..255 (normalisation is inside the graph) or int8 quantised with the tensor's scale/zero point.
 */
public final class ModelInput {
    private ModelInput() {
    }

    /** Float32 NHWC values 0..255, in a new array of {@code N * N * 3} floats. */
    public static float[] floatNhwc(RgbImage img) {
        byte[] rgb = requireImage(img).raw();
        float[] out = new float[rgb.length];
        for (int i = 0; i < rgb.length; i++) {
            out[i] = rgb[i] & 0xFF;
        }
        return out;
    }

    /** Writes float32 NHWC values into {@code buffer} from position 0; its capacity must be exactly N*N*3*4 bytes. */
    public static ByteBuffer writeFloatNhwc(RgbImage img, ByteBuffer buffer) {
        byte[] rgb = requireImage(img).raw();
        requireCapacity(buffer, (long) rgb.length * 4, "float32 [1," + img.height() + "," + img.width() + ",3]");
        buffer.clear();
        buffer.order(ByteOrder.nativeOrder());
        for (byte b : rgb) {
            buffer.putFloat(b & 0xFF);
        }
        buffer.rewind();
        return buffer;
    }

    /** Int8 NHWC values quantised with {@code q}, in a new array of {@code N * N * 3} bytes. */
    public static byte[] int8Nhwc(RgbImage img, Quantization q) {
        byte[] rgb = requireImage(img).raw();
        if (q == null) {
            throw new IllegalArgumentException("quantization parameters are null");
        }
        byte[] lut = new byte[256];
        for (int v = 0; v < 256; v++) {
            lut[v] = q.quantize(v);
        }
        byte[] out = new byte[rgb.length];
        for (int i = 0; i < rgb.length; i++) {
            out[i] = lut[rgb[i] & 0xFF];
        }
        return out;
    }

    /** Writes int8 NHWC values into {@code buffer}; its capacity must be exactly N*N*3 bytes. */
    public static ByteBuffer writeInt8Nhwc(RgbImage img, Quantization q, ByteBuffer buffer) {
        byte[] data = int8Nhwc(img, q);
        requireCapacity(buffer, data.length, "int8 [1," + img.height() + "," + img.width() + ",3]");
        buffer.clear();
        buffer.put(data);
        buffer.rewind();
        return buffer;
    }

    private static RgbImage requireImage(RgbImage img) {
        if (img == null) {
            throw new IllegalArgumentException("model input image is null");
        }
        return img;
    }

    private static void requireCapacity(ByteBuffer buffer, long bytes, String what) {
        if (buffer == null) {
            throw new IllegalArgumentException("input buffer is null");
        }
        if (buffer.capacity() != bytes) {
            throw new IllegalArgumentException("input buffer holds " + buffer.capacity() + " bytes; " + what
                    + " needs exactly " + bytes);
        }
    }
}
