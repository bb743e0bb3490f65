package org.moleport.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** The end-to-end check with a fake runtime standing in for LiteRT. */
public class MoleCheckerTest {
    /** P(melanoma) = 1 - mean brightness / 255: darker crops score higher. */
    private static final class DarknessModel implements ProbabilityModel {
        RgbImage seen;
        boolean closed;

        @Override
        public float[] probabilities(RgbImage input) {
            seen = input;
            float[] x = ModelInput.floatNhwc(input);
            double sum = 0;
            for (float v : x) {
                sum += v;
            }
            float p = (float) (1.0 - sum / x.length / 255.0);
            return new float[] {1 - p, p};
        }

        @Override
        public String name() {
            return "fake v1";
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    @Test
    public void checkRunsTheWholePipeline() {
        ModelSpec spec = ModelSpec.parse(TestImages.validSpecJson(), "spec.json");
        DarknessModel model = new DarknessModel();
        MoleChecker checker = new MoleChecker(spec, model);
        // left half black, right half white; framing the black half gives P(melanoma) = 1
        byte[] rgb = new byte[200 * 100 * 3];
        for (int i = 0; i < 200 * 100; i++) {
            if (i % 200 >= 100) {
                rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (byte) 255;
            }
        }
        RgbImage img = new RgbImage(200, 100, rgb);
        MoleChecker.Result dark = checker.check(img, new CropRect(0, 0, 100));
        assertEquals(224, model.seen.width());
        assertSame(model.seen, dark.modelInput());
        assertEquals(1.0, dark.prediction().pMelanoma(), 1e-6);
        assertEquals(RiskBand.HIGH, dark.prediction().band());
        assertEquals(MoleChecker.THUMBNAIL_SIZE, dark.thumbnail().width());
        assertTrue(dark.advice().headline().contains("dermatologist"));
        MoleChecker.Result light = checker.check(img, new CropRect(100, 0, 100));
        assertEquals(RiskBand.LOW, light.prediction().band());
        MoleChecker.Result centre = checker.check(img, null);
        assertEquals(0.5, centre.prediction().pMelanoma(), 0.01);
        CheckRecord r = dark.toRecord("arm", 42L, "arm_42.png");
        assertEquals("fake v1", r.model());
        assertEquals(RiskBand.HIGH, r.band());
    }

    @Test
    public void checkerRejectsMissingParts() {
        ModelSpec spec = ModelSpec.parse(TestImages.validSpecJson(), "spec.json");
        assertThrows(IllegalArgumentException.class, () -> new MoleChecker(null, new DarknessModel()));
        assertThrows(IllegalArgumentException.class, () -> new MoleChecker(spec, null));
        MoleChecker checker = new MoleChecker(spec, new DarknessModel());
        assertThrows(IllegalArgumentException.class, () -> checker.check(null, null));
        assertThrows(IllegalArgumentException.class,
                () -> checker.check(TestImages.gradient(40, 40), new CropRect(10, 10, 40)));
    }
}
