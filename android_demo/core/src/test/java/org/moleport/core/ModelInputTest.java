package org.moleport.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.Test;

/** Layout of the TFLite input tensor [1, N, N, 3] and int8 quantisation. */
public class ModelInputTest {
    @Test
    public void floatLayoutIsNhwcRawPixels() {
        RgbImage img = TestImages.gradient(40, 33);
        float[] x = ModelInput.floatNhwc(img);
        assertEquals(40 * 33 * 3, x.length);
        // element [0, y, x, c] sits at (y * W + x) * 3 + c
        assertEquals(17f, x[(5 * 40 + 17) * 3], 0f);
        assertEquals(5f, x[(5 * 40 + 17) * 3 + 1], 0f);
        assertEquals((17 * 7 + 5 * 13) % 256, x[(5 * 40 + 17) * 3 + 2], 0f);
    }

    @Test
    public void floatBufferIsFilledInNativeOrderAndRewound() {
        RgbImage img = TestImages.gradient(32, 32);
        ByteBuffer buf = ByteBuffer.allocateDirect(32 * 32 * 3 * 4);
        ModelInput.writeFloatNhwc(img, buf);
        assertEquals(0, buf.position());
        assertEquals(ByteOrder.nativeOrder(), buf.order());
        float[] back = new float[32 * 32 * 3];
        buf.asFloatBuffer().get(back);
        assertArrayEquals(ModelInput.floatNhwc(img), back, 0f);
    }

    @Test
    public void wrongBufferSizesAreRejected() {
        RgbImage img = TestImages.gradient(32, 32);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelInput.writeFloatNhwc(img, ByteBuffer.allocate(224 * 224 * 3 * 4)));
        assertTrue(e.getMessage(), e.getMessage().contains("needs exactly 12288"));
        assertThrows(IllegalArgumentException.class,
                () -> ModelInput.writeInt8Nhwc(img, new Quantization(1, 0), ByteBuffer.allocate(32 * 32 * 3 * 4)));
        assertThrows(IllegalArgumentException.class, () -> ModelInput.writeFloatNhwc(img, null));
        assertThrows(IllegalArgumentException.class, () -> ModelInput.floatNhwc(null));
    }

    @Test
    public void int8UsesScaleZeroPointAndClips() {
        RgbImage img = TestImages.constant(32, 32, 0, 128, 255);
        byte[] q = ModelInput.int8Nhwc(img, new Quantization(1.0, -128));
        assertEquals(-128, q[0]);
        assertEquals(0, q[1]);
        assertEquals(127, q[2]);
        // A typical calibrated input: scale 255/254 ~ 1.00394, zero point -128 -> 255 maps to 126, 128 to -1.
        byte[] r = ModelInput.int8Nhwc(img, new Quantization(1.003937, -128));
        assertEquals(-1, r[1]);
        assertEquals(126, r[2]);
        ByteBuffer buf = ModelInput.writeInt8Nhwc(img, new Quantization(1.0, -128), ByteBuffer.allocate(32 * 32 * 3));
        assertEquals(127, buf.get(2));
    }

    @Test
    public void quantizationRoundsHalfAwayFromZero() {
        Quantization q = new Quantization(2.0, 0);
        assertEquals(2, q.quantize(3.0));
        assertEquals(-2, q.quantize(-3.0));
        assertEquals(1, q.quantize(2.9));
        assertEquals(127, q.quantize(1e9));
        assertEquals(-128, q.quantize(-1e9));
        assertEquals(6.0, new Quantization(0.5, -10).dequantize((byte) 2), 1e-12);
    }

    @Test
    public void invalidQuantizationIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Quantization(0.0, 0));
        assertThrows(IllegalArgumentException.class, () -> new Quantization(Double.NaN, 0));
        assertThrows(IllegalArgumentException.class, () -> new Quantization(1.0, 128));
        assertThrows(IllegalArgumentException.class, () -> ModelInput.int8Nhwc(TestImages.gradient(32, 32), null));
    }
}
