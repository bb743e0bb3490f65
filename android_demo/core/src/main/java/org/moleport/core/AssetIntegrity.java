package org.moleport.core;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The sha256 list ({@code SHA256SUMS}, {@code sha256sum} format: {@code <64 hex>  <name>} per line) that
 * {@code android_demo/scripts/copy_assets.sh} writes beside the model, spec.json, labels.txt and ship.json it
 * copies into the app's assets. The app checks every one of those files against it before using it, so a model
 * or spec changed (or swapped) after packaging is refused with an {@link IntegrityException} naming the file and
 * both digests, like the web page does with models.json.
 */
public final class AssetIntegrity {
    public static final String FILE_NAME = "SHA256SUMS";
    public static final String SPEC = "spec.json";
    public static final String LABELS = "labels.txt";
    /** {@code sha256sum} text ("  ") or binary (" *") mode; names are plain file names beside SHA256SUMS. */
    private static final Pattern LINE = Pattern.compile("([0-9a-fA-F]{64}) [ *]([^/\\\\]+)");

    private final String source;
    private final String prefix;
    private final Map<String, String> digests;

    private AssetIntegrity(String source, Map<String, String> digests) {
        this.source = source;
        int slash = source.lastIndexOf('/');
        this.prefix = slash < 0 ? "" : source.substring(0, slash + 1);
        this.digests = Collections.unmodifiableMap(digests);
    }

    /** Parses SHA256SUMS bytes (UTF-8); {@code source} (e.g. "assets/model/SHA256SUMS") prefixes errors. */
    public static AssetIntegrity parse(byte[] sums, String source) {
        if (sums == null) {
            throw malformed(source, source + ": is null");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(sums)).toString();
        } catch (CharacterCodingException e) {
            throw malformed(source, source + ": not UTF-8 text; re-run copy_assets.sh (make android-assets)");
        }
        return parse(text, source);
    }

    /** Parses SHA256SUMS text; blank lines are ignored, anything else must be {@code <64 hex>  <name>}. */
    public static AssetIntegrity parse(String text, String source) {
        if (text == null) {
            throw malformed(source, source + ": is null");
        }
        Map<String, String> digests = new LinkedHashMap<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].endsWith("\r") ? lines[i].substring(0, lines[i].length() - 1) : lines[i];
            if (line.trim().isEmpty()) {
                continue;
            }
            Matcher m = LINE.matcher(line);
            if (!m.matches() || !m.group(2).equals(m.group(2).trim())) {
                throw malformed(source, source + " line " + (i + 1) + ": expected '<64 hex digits>  <file name>' "
                        + "(sha256sum format), got '" + abbreviate(line) + "'");
            }
            String name = m.group(2);
            if (digests.put(name, m.group(1).toLowerCase(Locale.ROOT)) != null) {
                throw malformed(source, source + " line " + (i + 1) + ": lists " + name + " twice");
            }
        }
        if (digests.isEmpty()) {
            throw malformed(source, source + ": lists no files; re-run copy_assets.sh (make android-assets)");
        }
        return new AssetIntegrity(source, digests);
    }

    /** Where the list came from (e.g. "assets/model/SHA256SUMS"). */
    public String source() {
        return source;
    }

    /** File name -> lowercase hex sha256, in list order. */
    public Map<String, String> digests() {
        return digests;
    }

    /** The listed sha256 of {@code name}; an {@link IntegrityException} when SHA256SUMS does not list it. */
    public String expected(String name) {
        String digest = digests.get(name);
        if (digest == null) {
            throw new IntegrityException(prefix + name, null, null, prefix + name + ": not listed in " + source
                    + " (lists " + new ArrayList<>(digests.keySet()) + "); refusing to load a file the packager did "
                    + "not check; re-run copy_assets.sh (make android-assets)");
        }
        return digest;
    }

    /** Checks {@code data} against the sha256 listed for {@code name}; returns {@code data}. */
    public byte[] verify(String name, byte[] data) {
        String expected = expected(name);
        compare(name, expected, sha256Hex(data));
        return data;
    }

    /**
     * Checks the remaining bytes of {@code data} (e.g. a memory-mapped model) against {@code name}'s sha256;
     * hashes a duplicate, so {@code data}'s position is left as it was.
     */
    public void verify(String name, ByteBuffer data) {
        String expected = expected(name);
        compare(name, expected, sha256Hex(data));
    }

    /** Reads {@code in} to its end (does not close it), checks it against {@code name}'s sha256, returns the bytes. */
    public byte[] readVerified(String name, InputStream in) throws IOException {
        String expected = expected(name);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[1 << 16];
        for (int n; (n = in.read(buf)) != -1; ) {
            out.write(buf, 0, n);
        }
        byte[] data = out.toByteArray();
        compare(name, expected, sha256Hex(data));
        return data;
    }

    /**
     * spec.json and labels.txt, each checked against this list before it is parsed: the spec read strictly
     * ({@link ModelSpec#parse}) and cross-checked with the labels file.
     */
    public ModelSpec readSpec(byte[] specJson, byte[] labelsTxt) {
        verify(SPEC, specJson);
        verify(LABELS, labelsTxt);
        ModelSpec spec = ModelSpec.parse(new String(specJson, StandardCharsets.UTF_8), prefix + SPEC);
        spec.requireLabelsFile(new String(labelsTxt, StandardCharsets.UTF_8), prefix + LABELS);
        return spec;
    }

    private void compare(String name, String expected, String actual) {
        if (!expected.equals(actual)) {
            throw new IntegrityException(prefix + name, expected, actual, prefix + name + ": sha256 " + actual
                    + " does not match " + source + " (" + expected + "): not the file copy_assets.sh packaged; "
                    + "re-run make android-assets and rebuild the app");
        }
    }

    public static String sha256Hex(byte[] data) {
        if (data == null) {
            throw new IllegalArgumentException("data is null");
        }
        MessageDigest md = sha256();
        md.update(data);
        return hex(md.digest());
    }

    public static String sha256Hex(ByteBuffer data) {
        if (data == null) {
            throw new IllegalArgumentException("data is null");
        }
        MessageDigest md = sha256();
        md.update(data.duplicate());
        return hex(md.digest());
    }

    /** sha256 of everything left in {@code in} (read to its end, not closed). */
    public static String sha256Hex(InputStream in) throws IOException {
        MessageDigest md = sha256();
        byte[] buf = new byte[1 << 16];
        for (int n; (n = in.read(buf)) != -1; ) {
            md.update(buf, 0, n);
        }
        return hex(md.digest());
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is not available", e);
        }
    }

    private static String hex(byte[] digest) {
        StringBuilder sb = new StringBuilder(digest.length * 2);
        for (byte b : digest) {
            sb.append(Character.forDigit((b >> 4) & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
        }
        return sb.toString();
    }

    private static IntegrityException malformed(String source, String message) {
        return new IntegrityException(source, null, null, message);
    }

    private static String abbreviate(String line) {
        return line.length() > 120 ? line.substring(0, 120) + "..." : line;
    }

    /** Lines of a well-formed list for {@code name -> data} (what copy_assets.sh writes); for tests and tools. */
    static String format(Map<String, byte[]> files) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, byte[]> e : files.entrySet()) {
            sb.append(sha256Hex(e.getValue())).append("  ").append(e.getKey()).append('\n');
        }
        return sb.toString();
    }
}
