package org.moleport.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** ARGB decoding, EXIF orientation and square crops. */
public class ImageOpsTest {
    @Test
    public void argbOpaquePixelsPassThroughInOrder() {
        int[] argb = {0xFF102030, 0xFFA0B0C0};
        RgbImage img = ArgbDecoder.decode(argb, 2, 1);
        assertEquals(0x10, img.get(0, 0, 0));
        assertEquals(0x20, img.get(0, 0, 1));
        assertEquals(0x30, img.get(0, 0, 2));
        assertEquals(0xC0, img.get(1, 0, 2));
        assertEquals(argb[1], img.toArgb()[1]);
    }

    @Test
    public void argbAlphaIsCompositedOverWhite() {
        RgbImage img = ArgbDecoder.decode(new int[] {0x00000000, 0x80000000, 0x80FF0064}, 3, 1);
        assertEquals(255, img.get(0, 0, 0));
        // (0 * 128 + 255 * 127) / 255 = 127 exactly
        assertEquals(127, img.get(1, 0, 1));
        // (100 * 128 + 255 * 127) / 255 = 177.19... -> 177
        assertEquals(177, img.get(2, 0, 2));
        assertEquals(255, img.get(2, 0, 0));
    }

    @Test
    public void argbRejectsBadInput() {
        assertThrows(IllegalArgumentException.class, () -> ArgbDecoder.decode(null, 1, 1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ArgbDecoder.decode(new int[5], 2, 3));
        assertTrue(e.getMessage(), e.getMessage().contains("2x3 needs 6"));
        assertThrows(IllegalArgumentException.class, () -> ArgbDecoder.decode(new int[0], 0, 0));
    }

    /** 3x2 image whose R channel numbers the pixels 1..6 row by row: [[1,2,3],[4,5,6]]. */
    private static RgbImage numbered() {
        byte[] rgb = new byte[18];
        for (int i = 0; i < 6; i++) {
            rgb[3 * i] = (byte) (i + 1);
        }
        return new RgbImage(3, 2, rgb);
    }

    private static String rows(RgbImage img) {
        StringBuilder sb = new StringBuilder();
        for (int y = 0; y < img.height(); y++) {
            sb.append(y == 0 ? "" : "/");
            for (int x = 0; x < img.width(); x++) {
                sb.append(img.get(x, y, 0));
            }
        }
        return sb.toString();
    }

    @Test
    public void everyExifOrientationMatchesPillowExifTranspose() {
        RgbImage src = numbered();
        assertSame(src, ExifOrientation.apply(src, 1));
        assertEquals("321/654", rows(ExifOrientation.apply(src, 2)));
        assertEquals("654/321", rows(ExifOrientation.apply(src, 3)));
        assertEquals("456/123", rows(ExifOrientation.apply(src, 4)));
        assertEquals("14/25/36", rows(ExifOrientation.apply(src, 5)));
        assertEquals("41/52/63", rows(ExifOrientation.apply(src, 6)));
        assertEquals("63/52/41", rows(ExifOrientation.apply(src, 7)));
        assertEquals("36/25/14", rows(ExifOrientation.apply(src, 8)));
        assertTrue(ExifOrientation.swapsSides(6));
        assertTrue(!ExifOrientation.swapsSides(3));
    }

    @Test
    public void rawExifTagsMapLikePillow() {
        assertEquals(1, ExifOrientation.fromTag(0));
        assertEquals(6, ExifOrientation.fromTag(6));
        assertEquals(1, ExifOrientation.fromTag(9));
        assertEquals(1, ExifOrientation.fromTag(-1));
    }

    @Test
    public void orientationOutOfRangeIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> ExifOrientation.apply(numbered(), 0));
        assertThrows(IllegalArgumentException.class, () -> ExifOrientation.apply(numbered(), 9));
        assertThrows(IllegalArgumentException.class, () -> ExifOrientation.apply(null, 1));
    }

    @Test
    public void centreCropFollowsTheCanonicalRule() {
        assertEquals(new CropRect(50, 0, 200), CropRect.centre(300, 200));
        assertEquals(new CropRect(0, 26, 97), CropRect.centre(97, 150));
        assertEquals(new CropRect(0, 0, 224), CropRect.centre(224, 224));
        assertEquals(new CropRect(80, 0, 480), CropRect.centre(640, 480));
    }

    @Test
    public void cropCopiesTheFramedSquare() {
        RgbImage img = TestImages.gradient(100, 80);
        RgbImage crop = new CropRect(10, 20, 40).apply(img);
        assertEquals(40, crop.width());
        assertEquals(40, crop.height());
        assertEquals(10, crop.get(0, 0, 0));
        assertEquals(20, crop.get(0, 0, 1));
        assertEquals(49, crop.get(39, 39, 0));
        assertEquals(59, crop.get(39, 39, 1));
    }

    @Test
    public void framedCropIsClampedInsideTheImage() {
        assertEquals(new CropRect(0, 0, 80), CropRect.framed(100, 80, 5, 5, 500));
        assertEquals(new CropRect(68, 48, 32), CropRect.framed(100, 80, 99, 79, 10));
        assertEquals(new CropRect(30, 20, 40), CropRect.framed(100, 80, 50, 40, 40));
        assertThrows(IllegalArgumentException.class, () -> CropRect.framed(100, 80, Double.NaN, 1, 40));
        assertThrows(IllegalArgumentException.class, () -> CropRect.framed(20, 80, 10, 10, 40));
    }

    @Test
    public void badCropsAreRejectedWithClearMessages() {
        RgbImage img = TestImages.gradient(100, 80);
        IllegalArgumentException outside = assertThrows(IllegalArgumentException.class,
                () -> new CropRect(70, 0, 40).apply(img));
        assertTrue(outside.getMessage(), outside.getMessage().contains("does not fit"));
        IllegalArgumentException small = assertThrows(IllegalArgumentException.class,
                () -> new CropRect(0, 0, 31).apply(img));
        assertTrue(small.getMessage(), small.getMessage().contains("too small"));
        assertThrows(IllegalArgumentException.class, () -> new CropRect(-1, 0, 40));
        assertThrows(IllegalArgumentException.class, () -> new CropRect(0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new CropRect(0, 0, 40).apply(null));
    }

    @Test
    public void rgbImageRejectsWrongBufferSize() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new RgbImage(4, 4, new byte[47]));
        assertTrue(e.getMessage(), e.getMessage().contains("needs 48"));
        assertThrows(IllegalArgumentException.class, () -> new RgbImage(4, 4, null));
        assertThrows(IndexOutOfBoundsException.class, () -> TestImages.gradient(4, 4).get(4, 0, 0));
    }
}
