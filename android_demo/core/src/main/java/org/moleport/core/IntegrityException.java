package org.moleport.core;

/**
 * An asset the app is about to load is not the file the packager ({@code copy_assets.sh}) listed in
 * {@code SHA256SUMS}: its sha256 differs, it is not listed, or the list itself is malformed. The message names
 * the file and, on a mismatch, both digests.
 */
public final class IntegrityException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String file;
    private final String expected;
    private final String actual;

    public IntegrityException(String file, String expected, String actual, String message) {
        super(message);
        this.file = file;
        this.expected = expected;
        this.actual = actual;
    }

    /** The file refused (as the message names it, e.g. "assets/model/spec.json"). */
    public String file() {
        return file;
    }

    /** The sha256 SHA256SUMS lists for {@link #file()}; null when it is not listed or the list is malformed. */
    public String expected() {
        return expected;
    }

    /** The sha256 of the bytes read; null when they were not hashed (not listed, malformed list). */
    public String actual() {
        return actual;
    }
}
