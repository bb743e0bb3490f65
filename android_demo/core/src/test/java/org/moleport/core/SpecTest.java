package org.moleport.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** Strict reading of spec.json. */
public class SpecTest {
    private static void assertRejected(String json, String fragment) {
        SpecException e = assertThrows(SpecException.class, () -> ModelSpec.parse(json, "spec.json"));
        assertTrue("message should mention '" + fragment + "': " + e.getMessage(), e.getMessage().contains(fragment));
        assertTrue(e.getMessage().startsWith("spec.json: "));
    }

    @Test
    public void validSpecIsRead() {
        ModelSpec s = ModelSpec.parse(TestImages.validSpecJson(), "spec.json");
        assertEquals("mobilenet_v1", s.architecture());
        assertEquals(224, s.inputSize());
        assertEquals(0.35, s.threshold(), 0.0);
        assertEquals(1, s.melanomaIndex());
        assertEquals(0.229, s.std()[0], 0.0);
        assertEquals("NHWC", ((java.util.Map<?, ?>) s.exportInput().get("layout")).get("tflite"));
        assertEquals(1, s.version());
    }

    @Test
    public void melanomaIndexFollowsLabelOrder() {
        String json = TestImages.specJson("[\"melanoma\", \"nevus\"]", "0.5", "");
        assertEquals(0, ModelSpec.parse(json, "spec.json").melanomaIndex());
    }

    @Test
    public void unknownFieldIsRejected() {
        assertRejected(TestImages.specJson("[\"nevus\", \"melanoma\"]", "0.5", ",\n  \"thresold\": 0.4"),
                "unknown ModelSpec field(s) [thresold]");
    }

    @Test
    public void missingMelanomaLabelIsRejected() {
        assertRejected(TestImages.specJson("[\"nevus\", \"benign\"]", "0.5", ""), "missing the label \"melanoma\"");
        assertRejected(TestImages.specJson("[\"melanoma\"]", "0.5", ""), "two distinct names");
        assertRejected(TestImages.specJson("[\"melanoma\", \"melanoma\"]", "0.5", ""), "two distinct names");
    }

    @Test
    public void missingFieldIsRejected() {
        String json = TestImages.validSpecJson().replace("\"version\": 1", "\"verbose\": 1");
        SpecException e = assertThrows(SpecException.class, () -> ModelSpec.parse(json, "spec.json"));
        assertTrue(e.getMessage(), e.getMessage().contains("unknown ModelSpec field(s) [verbose]"));
        String noThreshold = TestImages.validSpecJson().replace("  \"threshold\": 0.35,\n", "");
        assertRejected(noThreshold, "missing field(s) [threshold]");
    }

    @Test
    public void badThresholdIsRejected() {
        assertRejected(TestImages.specJson("[\"nevus\", \"melanoma\"]", "1.5", ""), "threshold must be within [0, 1]");
        assertRejected(TestImages.specJson("[\"nevus\", \"melanoma\"]", "-0.1", ""), "threshold must be within [0, 1]");
        assertRejected(TestImages.specJson("[\"nevus\", \"melanoma\"]", "\"0.5\"", ""), "'threshold' must be a number");
        assertRejected(TestImages.specJson("[\"nevus\", \"melanoma\"]", "null", ""), "'threshold' must not be null");
    }

    @Test
    public void otherInvalidValuesAreRejected() {
        String good = TestImages.validSpecJson();
        assertRejected(good.replace("\"input_size\": 224", "\"input_size\": 224.5"), "'input_size' must be an integer");
        assertRejected(good.replace("\"input_size\": 224", "\"input_size\": 16"), "input_size must be >= 32");
        assertRejected(good.replace("triangle-antialias-v1", "bilinear-v0"), "is not implemented by this app");
        assertRejected(good.replace("\"RGB\"", "\"RGBA\""), "color_order must be RGB or BGR");
        assertRejected(good.replace("[0.229, 0.224, 0.225]", "[0.229, 0.224]"), "exactly 3 numbers");
        assertRejected(good.replace("[0.229, 0.224, 0.225]", "[0.229, 0, 0.225]"), "std values must be > 0");
        assertRejected(good.replace("\"positive_class\": \"melanoma\"", "\"positive_class\": \"mole\""),
                "positive_class \"mole\" is not one of labels");
    }

    @Test
    public void inGraphOptionsAreReadAndUnknownRulesRejected() {
        String base = "[\"nevus\", \"melanoma\"]";
        ModelSpec plain = ModelSpec.parse(TestImages.specJson(base, "0.5", ""), "spec.json");
        assertEquals(null, plain.colorConstancy());
        assertEquals(1.0, plain.temperature(), 0.0);
        ModelSpec sog = ModelSpec.parse(TestImages.specJson(base, "0.5",
                ",\n  \"color_constancy\": \"shades-of-gray-p6\",\n  \"temperature\": 1.25"), "spec.json");
        assertEquals("shades-of-gray-p6", sog.colorConstancy());
        assertEquals(1.25, sog.temperature(), 0.0);
        assertEquals(null, ModelSpec.parse(TestImages.specJson(base, "0.5", ",\n  \"color_constancy\": null"),
                "spec.json").colorConstancy());
        assertRejected(TestImages.specJson(base, "0.5", ",\n  \"color_constancy\": \"grey-world\""),
                "color_constancy \"grey-world\" is not a rule the exported graph implements");
        assertEquals(null, plain.tta());
        assertEquals("dihedral8", ModelSpec.parse(TestImages.specJson(base, "0.5", ",\n  \"tta\": \"dihedral8\""),
                "spec.json").tta());
        assertEquals(null, ModelSpec.parse(TestImages.specJson(base, "0.5", ",\n  \"tta\": null"), "spec.json").tta());
        assertRejected(TestImages.specJson(base, "0.5", ",\n  \"tta\": \"rot3\""),
                "tta \"rot3\" is not a test-time augmentation the exported graph implements");
        assertRejected(TestImages.specJson(base, "0.5", ",\n  \"temperature\": 0"), "temperature must be within");
        assertRejected(TestImages.specJson(base, "0.5", ",\n  \"temperature\": \"hot\""),
                "'temperature' must be a number");
    }

    @Test
    public void malformedJsonIsRejected() {
        assertRejected("{\"architecture\": ", "not valid JSON");
        assertRejected("[1, 2]", "must be an object");
        assertRejected(TestImages.validSpecJson().replace("\"version\": 1", "\"version\": 1, \"version\": 2"),
                "duplicate key \"version\"");
        assertThrows(SpecException.class, () -> ModelSpec.parse(null, "spec.json"));
    }

    @Test
    public void labelsFileMustMatchTheSpec() {
        ModelSpec s = ModelSpec.parse(TestImages.validSpecJson(), "spec.json");
        s.requireLabelsFile("nevus\nmelanoma\n", "labels.txt");
        s.requireLabelsFile("nevus\r\nmelanoma\r\n\n", "labels.txt");
        SpecException swapped = assertThrows(SpecException.class,
                () -> s.requireLabelsFile("melanoma\nnevus\n", "labels.txt"));
        assertTrue(swapped.getMessage(), swapped.getMessage().contains("do not match spec labels"));
        assertThrows(SpecException.class, () -> s.requireLabelsFile("nevus\n", "labels.txt"));
        assertThrows(SpecException.class, () -> s.requireLabelsFile(null, "labels.txt"));
    }
}
