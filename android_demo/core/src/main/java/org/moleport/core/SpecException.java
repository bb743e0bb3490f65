package org.moleport.core;

/** A model spec (spec.json) is malformed or not usable by this app; the message names the source and field. */
public final class SpecException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public SpecException(String message) {
        super(message);
    }

    public SpecException(String message, Throwable cause) {
        super(message, cause);
    }
}
