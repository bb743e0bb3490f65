package org.moleport.core;

/** Small deterministic images for unit tests. */
final class TestImages {
    private TestImages() {
    }

    /** Each pixel's R = x, G = y, B = (x * 7 + y * 13) mod 256. */
    static RgbImage gradient(int w, int h) {
        byte[] rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int i = (y * w + x) * 3;
                rgb[i] = (byte) x;
                rgb[i + 1] = (byte) y;
                rgb[i + 2] = (byte) ((x * 7 + y * 13) % 256);
            }
        }
        return new RgbImage(w, h, rgb);
    }

    static RgbImage constant(int w, int h, int r, int g, int b) {
        byte[] rgb = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++) {
            rgb[3 * i] = (byte) r;
            rgb[3 * i + 1] = (byte) g;
            rgb[3 * i + 2] = (byte) b;
        }
        return new RgbImage(w, h, rgb);
    }

    /** A spec JSON as moleport.spec.ModelSpec.to_json writes it, with overridable parts. */
    static String specJson(String labels, String threshold, String extra) {
        return "{\n  \"architecture\": \"mobilenet_v1\",\n  \"color_order\": \"RGB\",\n"
                + "  \"export_input\": {\"dtype\": \"float32\", \"range\": [0.0, 255.0], \"layout\": {\"tflite\": \"NHWC\"}},\n"
                + "  \"input_size\": 224,\n  \"labels\": " + labels + ",\n"
                + "  \"mean\": [0.485, 0.456, 0.406],\n  \"positive_class\": \"melanoma\",\n"
                + "  \"resize_rule\": \"center-square-crop+triangle-antialias-v1\",\n"
                + "  \"std\": [0.229, 0.224, 0.225],\n  \"threshold\": " + threshold + ",\n  \"version\": 1" + extra + "\n}";
    }

    static String validSpecJson() {
        return specJson("[\"nevus\", \"melanoma\"]", "0.35", "");
    }
}
