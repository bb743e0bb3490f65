package org.moleport.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.Assume;
import org.junit.Test;

/**
 * Compares the Java pipeline with moleport.preprocess on the golden fixture written by
 * {@code moleport golden} (path in system property {@code moleport.golden} or env {@code MOLEPORT_GOLDEN}).
 */
public class GoldenFixtureTest {
    static File fixtureDir() {
        String dir = System.getProperty("moleport.golden", System.getenv("MOLEPORT_GOLDEN"));
        Assume.assumeTrue("no golden fixture given (-Dmoleport.golden=DIR); run android_demo/scripts/core_test.sh",
                dir != null && !dir.isEmpty());
        File f = new File(dir);
        if (!new File(f, "index.json").isFile()) {
            fail("golden fixture " + f + " has no index.json");
        }
        return f;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> index(File dir) throws IOException {
        String text = new String(Files.readAllBytes(new File(dir, "index.json").toPath()), StandardCharsets.UTF_8);
        Map<String, Object> index = (Map<String, Object>) Json.parse(text);
        assertEquals("moleport-golden-v1", index.get("format"));
        assertEquals(CanonicalResize.RULE, index.get("resize_rule"));
        return index;
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> images(Map<String, Object> index) {
        List<Map<String, Object>> images = (List<Map<String, Object>>) (List<?>) index.get("images");
        assertTrue("golden fixture lists no images", images != null && !images.isEmpty());
        return images;
    }

    static int intOf(Map<String, Object> m, String key) {
        return ((Double) m.get(key)).intValue();
    }

    /** Stored RGBA bytes -> ARGB ints as Bitmap.getPixels gives them. */
    static int[] argbFromRgba(byte[] rgba) {
        int[] argb = new int[rgba.length / 4];
        for (int i = 0; i < argb.length; i++) {
            argb[i] = (rgba[4 * i + 3] & 0xFF) << 24 | (rgba[4 * i] & 0xFF) << 16
                    | (rgba[4 * i + 1] & 0xFF) << 8 | (rgba[4 * i + 2] & 0xFF);
        }
        return argb;
    }

    @Test
    public void preprocessingMatchesPythonWithinOneLevel() throws IOException {
        File dir = fixtureDir();
        Map<String, Object> index = index(dir);
        int size = intOf(index, "input_size");
        int tolerance = intOf(index, "tolerance_levels");
        Preprocessor pre = new Preprocessor(size);
        StringBuilder report = new StringBuilder();
        for (Map<String, Object> img : images(index)) {
            String name = (String) img.get("name");
            int w = intOf(img, "width");
            int h = intOf(img, "height");
            byte[] rgba = Files.readAllBytes(new File(dir, (String) img.get("rgba_file")).toPath());
            assertEquals(name + ": rgba file size", (long) w * h * 4, rgba.length);
            RgbImage upright = Preprocessor.upright(argbFromRgba(rgba), w, h, intOf(img, "orientation"));
            assertEquals(name + ": decoded width", intOf(img, "decoded_width"), upright.width());
            assertEquals(name + ": decoded height", intOf(img, "decoded_height"), upright.height());
            byte[] expected = Files.readAllBytes(new File(dir, (String) img.get("tensor_file")).toPath());
            byte[] actual = pre.prepare(upright, null).toRgbBytes();
            assertEquals(name + ": tensor size", (long) size * size * 3, expected.length);
            int maxDiff = 0;
            int differing = 0;
            for (int i = 0; i < expected.length; i++) {
                int d = Math.abs((expected[i] & 0xFF) - (actual[i] & 0xFF));
                maxDiff = Math.max(maxDiff, d);
                differing += d == 0 ? 0 : 1;
            }
            report.append(String.format("  golden %-16s max|diff|=%d, %d of %d values differ%n", name, maxDiff,
                    differing, expected.length));
            assertTrue(name + ": max difference " + maxDiff + " exceeds " + tolerance, maxDiff <= tolerance);
        }
        System.out.print(report);
    }

    @Test
    public void fixtureFilesAreIntactAndPngDecodesToStoredPixels() throws IOException, NoSuchAlgorithmException {
        File dir = fixtureDir();
        for (Map<String, Object> img : images(index(dir))) {
            String name = (String) img.get("name");
            byte[] tensor = Files.readAllBytes(new File(dir, (String) img.get("tensor_file")).toPath());
            assertEquals(name + ": tensor sha256", img.get("tensor_sha256"), sha256(tensor));
            BufferedImage png = ImageIO.read(new File(dir, (String) img.get("png")));
            int w = intOf(img, "width");
            int h = intOf(img, "height");
            assertEquals(name + ": PNG width", w, png.getWidth());
            assertEquals(name + ": PNG height", h, png.getHeight());
            int[] fromPng = png.getRGB(0, 0, w, h, null, 0, w);
            byte[] rgba = Files.readAllBytes(new File(dir, (String) img.get("rgba_file")).toPath());
            int[] stored = argbFromRgba(rgba);
            for (int i = 0; i < stored.length; i++) {
                if (fromPng[i] != stored[i]) {
                    fail(name + ": PNG pixel " + i + " is " + Integer.toHexString(fromPng[i]) + ", rgba file has "
                            + Integer.toHexString(stored[i]));
                }
            }
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    public void bundleSpecParsesAndReferenceProbabilitiesAreUsable() throws IOException {
        File dir = fixtureDir();
        Map<String, Object> index = index(dir);
        Map<String, Object> bundle = (Map<String, Object>) index.get("bundle");
        Assume.assumeTrue("golden fixture was written without --bundle (no exported model yet)", bundle != null);
        String json = new String(Files.readAllBytes(new File(dir, (String) bundle.get("spec")).toPath()),
                StandardCharsets.UTF_8);
        ModelSpec spec = ModelSpec.parse(json, "golden/spec.json");
        assertEquals((Double) bundle.get("threshold"), spec.threshold(), 0.0);
        for (Map<String, Object> img : images(index)) {
            double p = (Double) img.get("p_melanoma");
            float[] output = new float[2];
            output[spec.melanomaIndex()] = (float) p;
            output[1 - spec.melanomaIndex()] = (float) (1.0 - p);
            Prediction pred = Prediction.fromOutput(output, spec);
            assertEquals(img.get("name") + ": P(melanoma)", p, pred.pMelanoma(), 1e-6);
            assertEquals(RiskBand.of(p, spec.threshold()), pred.band());
        }
    }

    static String sha256(byte[] data) throws NoSuchAlgorithmException {
        StringBuilder sb = new StringBuilder();
        for (byte b : MessageDigest.getInstance("SHA-256").digest(data)) {
            sb.append(String.format("%02x", b));
        }
        return sb.toString();
    }
}
