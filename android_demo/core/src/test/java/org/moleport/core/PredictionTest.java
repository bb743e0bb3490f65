package org.moleport.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** Output parsing, risk bands and what the user is told. */
public class PredictionTest {
    private static final ModelSpec SPEC = ModelSpec.parse(TestImages.validSpecJson(), "spec.json"); // threshold 0.35

    @Test
    public void riskBandsFollowTheThreshold() {
        assertEquals(RiskBand.LOW, RiskBand.of(0.0, 0.35));
        assertEquals(RiskBand.LOW, RiskBand.of(0.1749, 0.35));
        assertEquals(RiskBand.BORDERLINE, RiskBand.of(0.175, 0.35));
        assertEquals(RiskBand.BORDERLINE, RiskBand.of(0.3499, 0.35));
        assertEquals(RiskBand.HIGH, RiskBand.of(0.35, 0.35));
        assertEquals(RiskBand.HIGH, RiskBand.of(1.0, 0.35));
        assertEquals(RiskBand.HIGH, RiskBand.of(0.0, 0.0));
        assertEquals("high - see a dermatologist", RiskBand.HIGH.label());
        assertThrows(IllegalArgumentException.class, () -> RiskBand.of(1.2, 0.5));
        assertThrows(IllegalArgumentException.class, () -> RiskBand.of(0.5, Double.NaN));
    }

    @Test
    public void outputIsReadByLabelIndex() {
        Prediction p = Prediction.fromOutput(new float[] {0.7f, 0.3f}, SPEC);
        assertEquals(0.3, p.pMelanoma(), 1e-6);
        assertEquals(0.7, p.pNevus(), 1e-6);
        assertEquals(RiskBand.BORDERLINE, p.band());
        assertEquals("30%", p.percent());
        ModelSpec reversed = ModelSpec.parse(TestImages.specJson("[\"melanoma\", \"nevus\"]", "0.35", ""), "s");
        Prediction q = Prediction.fromOutput(new float[] {0.7f, 0.3f}, reversed);
        assertEquals(0.7, q.pMelanoma(), 1e-6);
        assertEquals(RiskBand.HIGH, q.band());
    }

    @Test
    public void int8OutputIsDequantised() {
        // typical int8 softmax output: scale 1/256, zero point -128
        float[] out = Prediction.dequantize(new byte[] {(byte) 63, (byte) -63}, new Quantization(1.0 / 256, -128));
        assertEquals(191.0 / 256, out[0], 1e-7);
        assertEquals(65.0 / 256, out[1], 1e-7);
        Prediction p = Prediction.fromOutput(out, SPEC);
        assertEquals(RiskBand.BORDERLINE, p.band());
        assertThrows(IllegalArgumentException.class, () -> Prediction.dequantize(null, new Quantization(1, 0)));
    }

    @Test
    public void badOutputsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> Prediction.fromOutput(null, SPEC));
        assertThrows(IllegalArgumentException.class, () -> Prediction.fromOutput(new float[] {0.5f, 0.5f}, null));
        IllegalArgumentException len = assertThrows(IllegalArgumentException.class,
                () -> Prediction.fromOutput(new float[] {0.9f}, SPEC));
        assertTrue(len.getMessage(), len.getMessage().contains("has 1 values; expected 2"));
        assertThrows(IllegalArgumentException.class, () -> Prediction.fromOutput(new float[] {Float.NaN, 0.5f}, SPEC));
        assertThrows(IllegalArgumentException.class, () -> Prediction.fromOutput(new float[] {-3f, 4f}, SPEC));
        IllegalArgumentException sum = assertThrows(IllegalArgumentException.class,
                () -> Prediction.fromOutput(new float[] {0.2f, 0.2f}, SPEC));
        assertTrue(sum.getMessage(), sum.getMessage().contains("does not sum to 1"));
    }

    @Test
    public void adviceAlwaysCarriesTheNotice() {
        for (float pm : new float[] {0.05f, 0.2f, 0.9f}) {
            Advice a = Advice.forPrediction(Prediction.fromOutput(new float[] {1 - pm, pm}, SPEC));
            assertEquals(Advice.NOTICE, a.notice());
            assertTrue(a.notice().contains("not a diagnosis"));
            assertTrue(a.notice().contains("dermatologist"));
            assertTrue(a.explanation(), a.explanation().contains("threshold is 35%"));
        }
        Advice high = Advice.forPrediction(Prediction.fromOutput(new float[] {0.1f, 0.9f}, SPEC));
        assertTrue(high.headline().contains("see a dermatologist"));
        assertTrue(high.explanation().contains("90%"));
        assertThrows(IllegalArgumentException.class, () -> Advice.forPrediction(null));
    }
}
