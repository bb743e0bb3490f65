package org.moleport.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** The canonical triangle-filter resize and the whole preprocessing chain. */
public class ResizeTest {
    @Test
    public void filterWeightsAreNormalisedAndInsideTheInput() {
        int[][] cases = {{640, 224}, {97, 224}, {224, 224}, {33, 224}, {3000, 224}};
        for (int[] c : cases) {
            CanonicalResize.Filter f = CanonicalResize.filter(c[0], c[1]);
            for (int i = 0; i < c[1]; i++) {
                double sum = 0;
                for (double w : f.weights()[i]) {
                    assertTrue(w >= 0);
                    sum += w;
                }
                assertEquals(c[0] + "->" + c[1] + " at " + i, 1.0, sum, 1e-12);
                assertTrue(f.lo()[i] >= 0 && f.lo()[i] + f.weights()[i].length <= c[0]);
            }
        }
    }

    @Test
    public void halvingUsesTheWidenedTriangle() {
        // scale 2: output i reads inputs 2i-1 .. 2i+2 with weights 1/8, 3/8, 3/8, 1/8 (clipped at the border).
        CanonicalResize.Filter f = CanonicalResize.filter(64, 32);
        assertEquals(9, f.lo()[5]);
        assertArrayEquals(new double[] {0.125, 0.375, 0.375, 0.125}, f.weights()[5], 1e-15);
        assertEquals(0, f.lo()[0]);
        assertArrayEquals(new double[] {0.75 / 1.75, 0.75 / 1.75, 0.25 / 1.75}, f.weights()[0], 1e-15);
    }

    @Test
    public void horizontalThenVerticalPassesRoundToUint8() {
        // 64x64 image: column x has value 10 for even x and 11 for odd x; halving averages 1/8,3/8,3/8,1/8:
        // interior 10*(1/8+3/8) + 11*(3/8+1/8) = 10.5 -> floor(11.0) = 11 after the horizontal pass.
        byte[] rgb = new byte[64 * 64 * 3];
        for (int i = 0; i < 64 * 64; i++) {
            int x = i % 64;
            rgb[3 * i] = (byte) (10 + (x % 2));
        }
        RgbImage out = CanonicalResize.resize(new RgbImage(64, 64, rgb), 32);
        assertEquals(11, out.get(5, 7, 0));
        // border output 0 reads columns 0,1,2 with weights 3/7,3/7,1/7: (30+33+10)/7 = 10.43 -> 10
        assertEquals(10, out.get(0, 7, 0));
        assertEquals(0, out.get(5, 7, 1));
    }

    @Test
    public void sameSizeIsIdentityAndConstantsStayConstant() {
        RgbImage g = TestImages.gradient(64, 64);
        assertEquals(g, CanonicalResize.resize(g, 64));
        RgbImage c = CanonicalResize.resize(TestImages.constant(97, 150, 200, 17, 255), 224);
        for (int y = 0; y < 224; y += 37) {
            for (int x = 0; x < 224; x += 29) {
                assertEquals(200, c.get(x, y, 0));
                assertEquals(17, c.get(x, y, 1));
                assertEquals(255, c.get(x, y, 2));
            }
        }
    }

    @Test
    public void nonSquareInputIsCentreCroppedFirst() {
        RgbImage wide = TestImages.gradient(300, 200);
        RgbImage viaCrop = CanonicalResize.resize(new CropRect(50, 0, 200).apply(wide), 224);
        assertEquals(viaCrop, CanonicalResize.resize(wide, 224));
        assertEquals(viaCrop, new Preprocessor(224).prepare(wide, null));
    }

    @Test
    public void preprocessorAppliesOrientationThenUserCrop() {
        RgbImage stored = TestImages.gradient(120, 90);
        int[] argb = stored.toArgb();
        RgbImage upright = Preprocessor.upright(argb, 120, 90, 6);
        assertEquals(90, upright.width());
        assertEquals(120, upright.height());
        CropRect crop = new CropRect(10, 40, 64);
        RgbImage expected = CanonicalResize.resize(crop.apply(ExifOrientation.apply(stored, 6)), 224);
        assertEquals(expected, new Preprocessor(224).prepare(argb, 120, 90, 6, crop));
    }

    @Test
    public void tooSmallOrMissingImagesAreRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Preprocessor.upright(new int[31 * 100], 31, 100, 1));
        assertTrue(e.getMessage(), e.getMessage().contains("too small (31x100)"));
        assertThrows(IllegalArgumentException.class, () -> new Preprocessor(224).prepare(null, null));
        assertThrows(IllegalArgumentException.class, () -> new Preprocessor(16));
        assertThrows(IllegalArgumentException.class, () -> CanonicalResize.resize(null, 224));
        assertThrows(IllegalArgumentException.class, () -> CanonicalResize.filter(0, 224));
        IllegalArgumentException big = assertThrows(IllegalArgumentException.class,
                () -> ArgbDecoder.decode(new int[1], 10_000, 10_000));
        assertTrue(big.getMessage(), big.getMessage().contains("too large"));
    }
}
