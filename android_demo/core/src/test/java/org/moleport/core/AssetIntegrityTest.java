package org.moleport.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;
import org.junit.Test;

/** SHA256SUMS (written by copy_assets.sh) and the checks the app makes against it before loading spec and model. */
public class AssetIntegrityTest {
    private static final String SOURCE = "assets/model/SHA256SUMS";
    private static final byte[] SPEC = TestImages.validSpecJson().getBytes(StandardCharsets.UTF_8);
    private static final byte[] LABELS = "nevus\nmelanoma\n".getBytes(StandardCharsets.UTF_8);
    private static final byte[] SHIP = "{\"default\": \"model_int8.tflite\"}\n".getBytes(StandardCharsets.UTF_8);
    private static final byte[] MODEL = model();

    private static byte[] model() {
        byte[] b = new byte[200_000];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) (i * 31 + (i >> 8));
        }
        return b;
    }

    private static Map<String, byte[]> files() {
        Map<String, byte[]> files = new LinkedHashMap<>();
        files.put("spec.json", SPEC);
        files.put("labels.txt", LABELS);
        files.put("model_fp32.tflite", MODEL);
        files.put("ship.json", SHIP);
        return files;
    }

    private static AssetIntegrity sums() {
        return AssetIntegrity.parse(AssetIntegrity.format(files()), SOURCE);
    }

    private static byte[] flipped(byte[] data, int at) {
        byte[] copy = data.clone();
        copy[at] ^= 0x01;
        return copy;
    }

    private static void assertMismatch(IntegrityException e, String file, byte[] expected, byte[] actual) {
        String msg = e.getMessage();
        assertEquals(file, e.file());
        assertTrue(msg, msg.startsWith(file + ": sha256 "));
        assertEquals(AssetIntegrity.sha256Hex(expected), e.expected());
        assertEquals(AssetIntegrity.sha256Hex(actual), e.actual());
        assertTrue("message names both digests: " + msg, msg.contains(e.expected()) && msg.contains(e.actual()));
        assertTrue(msg, msg.contains("does not match " + SOURCE));
    }

    private static void assertMalformed(String text, String fragment) {
        IntegrityException e = assertThrows(IntegrityException.class, () -> AssetIntegrity.parse(text, SOURCE));
        assertTrue("message should mention '" + fragment + "': " + e.getMessage(), e.getMessage().contains(fragment));
        assertTrue(e.getMessage(), e.getMessage().startsWith(SOURCE));
        assertEquals(SOURCE, e.file());
        assertNull(e.expected());
    }

    @Test
    public void knownDigests() throws IOException {
        assertEquals("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                AssetIntegrity.sha256Hex("abc".getBytes(StandardCharsets.US_ASCII)));
        assertEquals("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                AssetIntegrity.sha256Hex(new byte[0]));
        String whole = AssetIntegrity.sha256Hex(MODEL);
        assertEquals(whole, AssetIntegrity.sha256Hex(new ByteArrayInputStream(MODEL)));
        assertEquals(whole, AssetIntegrity.sha256Hex(ByteBuffer.wrap(MODEL)));
    }

    @Test
    public void goodListPasses() throws IOException {
        AssetIntegrity sums = sums();
        assertEquals(new TreeSet<>(files().keySet()), new TreeSet<>(sums.digests().keySet()));
        for (Map.Entry<String, byte[]> f : files().entrySet()) {
            assertArrayEquals(f.getValue(), sums.verify(f.getKey(), f.getValue()));
            assertArrayEquals(f.getValue(), sums.readVerified(f.getKey(), new ByteArrayInputStream(f.getValue())));
        }
        ByteBuffer mapped = ByteBuffer.allocateDirect(MODEL.length).put(MODEL);
        mapped.rewind();
        sums.verify("model_fp32.tflite", mapped);
        assertEquals("hashing leaves the buffer's position alone", 0, mapped.position());
        ModelSpec spec = sums.readSpec(SPEC, LABELS);
        assertEquals(0.35, spec.threshold(), 0.0);
        assertEquals(1, spec.melanomaIndex());
    }

    @Test
    public void sha256sumVariantsAreAccepted() {
        String digest = AssetIntegrity.sha256Hex(SPEC);
        AssetIntegrity sums = AssetIntegrity.parse(digest.toUpperCase(java.util.Locale.ROOT) + " *spec.json\r\n\r\n"
                + AssetIntegrity.sha256Hex(LABELS) + "  labels.txt", SOURCE);
        assertEquals(digest, sums.expected("spec.json"));
        sums.readSpec(SPEC, LABELS);
        String text = AssetIntegrity.format(files());
        assertEquals(AssetIntegrity.parse(text, SOURCE).digests(),
                AssetIntegrity.parse(text.getBytes(StandardCharsets.UTF_8), SOURCE).digests());
    }

    @Test
    public void flippedByteInSpecIsRefusedByName() {
        AssetIntegrity sums = sums();
        byte[] bad = flipped(SPEC, SPEC.length / 2);
        assertMismatch(assertThrows(IntegrityException.class, () -> sums.verify("spec.json", bad)),
                "assets/model/spec.json", SPEC, bad);
        // the spec is refused before it is parsed (a changed threshold parses fine and would silently be used)
        byte[] edited = TestImages.specJson("[\"nevus\", \"melanoma\"]", "0.99", "").getBytes(StandardCharsets.UTF_8);
        assertMismatch(assertThrows(IntegrityException.class, () -> sums.readSpec(edited, LABELS)),
                "assets/model/spec.json", SPEC, edited);
        byte[] labels = flipped(LABELS, 0);
        assertMismatch(assertThrows(IntegrityException.class, () -> sums.readSpec(SPEC, labels)),
                "assets/model/labels.txt", LABELS, labels);
    }

    @Test
    public void flippedByteInModelIsRefusedByName() {
        AssetIntegrity sums = sums();
        for (int at : new int[] {0, MODEL.length / 3, MODEL.length - 1}) {
            byte[] bad = flipped(MODEL, at);
            assertMismatch(assertThrows(IntegrityException.class, () -> sums.verify("model_fp32.tflite", bad)),
                    "assets/model/model_fp32.tflite", MODEL, bad);
            assertMismatch(assertThrows(IntegrityException.class,
                    () -> sums.verify("model_fp32.tflite", ByteBuffer.wrap(bad))),
                    "assets/model/model_fp32.tflite", MODEL, bad);
            assertMismatch(assertThrows(IntegrityException.class,
                    () -> sums.readVerified("model_fp32.tflite", new ByteArrayInputStream(bad))),
                    "assets/model/model_fp32.tflite", MODEL, bad);
        }
        byte[] truncated = java.util.Arrays.copyOf(MODEL, MODEL.length - 1);
        assertMismatch(assertThrows(IntegrityException.class, () -> sums.verify("model_fp32.tflite", truncated)),
                "assets/model/model_fp32.tflite", MODEL, truncated);
        // a model listed under another name is not accepted for this one
        assertThrows(IntegrityException.class, () -> sums.verify("model_fp32.tflite", SPEC));
    }

    @Test
    public void fileMissingFromTheListIsRefused() {
        AssetIntegrity sums = sums();
        IntegrityException e = assertThrows(IntegrityException.class,
                () -> sums.verify("model_int8.tflite", MODEL));
        assertEquals("assets/model/model_int8.tflite", e.file());
        assertTrue(e.getMessage(),
                e.getMessage().startsWith("assets/model/model_int8.tflite: not listed in " + SOURCE));
        assertNull(e.expected());
        assertNull(e.actual());
        Map<String, byte[]> noSpec = files();
        noSpec.remove("spec.json");
        AssetIntegrity partial = AssetIntegrity.parse(AssetIntegrity.format(noSpec), SOURCE);
        IntegrityException s = assertThrows(IntegrityException.class, () -> partial.readSpec(SPEC, LABELS));
        assertTrue(s.getMessage(), s.getMessage().startsWith("assets/model/spec.json: not listed in " + SOURCE));
    }

    @Test
    public void malformedListIsRefused() {
        String d = AssetIntegrity.sha256Hex(SPEC);
        assertMalformed("", "lists no files");
        assertMalformed("\n\n", "lists no files");
        assertMalformed(d + "  spec.json\n" + d.substring(1) + "  labels.txt\n", "line 2: expected '<64 hex digits>");
        assertMalformed(d + "spec.json\n", "line 1: expected");                    // no separator
        assertMalformed(d + " spec.json\n", "line 1: expected");                   // one space
        assertMalformed(d + "  \n", "line 1: expected");                           // no name
        assertMalformed(d + "  spec.json \n", "line 1: expected");                 // trailing blank in the name
        assertMalformed(d + "  model/spec.json\n", "line 1: expected");            // a path, not a name beside it
        assertMalformed(d.replace(d.charAt(0), 'g') + "  spec.json\n", "line 1: expected");
        assertMalformed("spec.json  " + d + "\n", "line 1: expected");             // columns swapped
        assertMalformed(d + "  spec.json\n" + d + "  spec.json\n", "line 2: lists spec.json twice");
        IntegrityException e = assertThrows(IntegrityException.class,
                () -> AssetIntegrity.parse(new byte[] {(byte) 0xff, (byte) 0xfe, 'a'}, SOURCE));
        assertTrue(e.getMessage(), e.getMessage().contains("not UTF-8"));
        assertThrows(IntegrityException.class, () -> AssetIntegrity.parse((String) null, SOURCE));
    }

    /**
     * The assets copy_assets.sh packaged from a real bundle (core_test.sh passes -Dmoleport.assets when it has
     * one): every file is listed and passes, and a copy with one flipped byte in the spec or the model is refused.
     */
    @Test
    public void packagedAssetsPassAndTamperedCopiesAreRefused() throws IOException {
        String dir = System.getProperty("moleport.assets");
        assumeTrue("no packaged assets (core_test.sh copies them when it has a bundle)", dir != null);
        File assets = new File(dir);
        AssetIntegrity sums = AssetIntegrity.parse(read(new File(assets, AssetIntegrity.FILE_NAME)), SOURCE);
        String[] names = assets.list();
        assertTrue(dir, names != null);
        TreeSet<String> present = new TreeSet<>(java.util.Arrays.asList(names));
        present.remove(AssetIntegrity.FILE_NAME);
        assertEquals("SHA256SUMS lists exactly the copied files", present, new TreeSet<>(sums.digests().keySet()));
        for (String name : present) {
            try (InputStream in = new FileInputStream(new File(assets, name))) {
                sums.readVerified(name, in);
            }
        }
        byte[] spec = read(new File(assets, "spec.json"));
        byte[] labels = read(new File(assets, "labels.txt"));
        sums.readSpec(spec, labels);
        byte[] model = read(new File(assets, "model_fp32.tflite"));
        sums.verify("model_fp32.tflite", ByteBuffer.wrap(model));
        byte[] badSpec = flipped(spec, spec.length / 2);
        assertMismatch(assertThrows(IntegrityException.class, () -> sums.readSpec(badSpec, labels)),
                "assets/model/spec.json", spec, badSpec);
        byte[] badModel = flipped(model, model.length / 2);
        assertMismatch(assertThrows(IntegrityException.class,
                () -> sums.verify("model_fp32.tflite", ByteBuffer.wrap(badModel))),
                "assets/model/model_fp32.tflite", model, badModel);
    }

    private static byte[] read(File f) throws IOException {
        try (InputStream in = new FileInputStream(f)) {
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) != -1; ) {
                out.write(buf, 0, n);
            }
            return out.toByteArray();
        }
    }
}
