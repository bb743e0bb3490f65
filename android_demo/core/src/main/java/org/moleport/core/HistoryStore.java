package org.moleport.core;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Local history of checks, one JSON file in app-private storage
 * ({@code {"format": "moleport-history-v1", "checks": [...]}}). Nothing leaves the device.
 * Writes go to a temporary file that then replaces the old one.
 */
public final class HistoryStore {
    public static final String FORMAT = "moleport-history-v1";
    private final File file;

    public HistoryStore(File file) {
        if (file == null) {
            throw new IllegalArgumentException("history file is null");
        }
        this.file = file;
    }

    /** All checks, oldest first; empty when no history file exists yet. */
    public List<CheckRecord> load() throws IOException {
        if (!file.exists()) {
            return new ArrayList<>();
        }
        String text = readUtf8(file);
        Object root;
        try {
            root = Json.parse(text);
        } catch (Json.JsonException e) {
            throw new IOException(file + ": corrupt history file (" + e.getMessage() + ")", e);
        }
        if (!(root instanceof Map<?, ?> m) || !FORMAT.equals(m.get("format")) || !(m.get("checks") instanceof List<?> list)) {
            throw new IOException(file + ": not a " + FORMAT + " history file");
        }
        List<CheckRecord> out = new ArrayList<>();
        for (Object o : list) {
            out.add(CheckRecord.fromJson(o, file.toString()));
        }
        out.sort(Comparator.comparingLong(CheckRecord::timeMillis));
        return out;
    }

    public void add(CheckRecord record) throws IOException {
        if (record == null) {
            throw new IllegalArgumentException("check record is null");
        }
        List<CheckRecord> all = load();
        all.add(record);
        save(all);
    }

    /** The checks of one mole, oldest first. */
    public List<CheckRecord> checksFor(String mole) throws IOException {
        String name = CheckRecord.normaliseName(mole);
        List<CheckRecord> out = new ArrayList<>();
        for (CheckRecord r : load()) {
            if (r.mole().equals(name)) {
                out.add(r);
            }
        }
        return out;
    }

    /** Distinct mole names, sorted. */
    public List<String> moles() throws IOException {
        TreeSet<String> names = new TreeSet<>();
        for (CheckRecord r : load()) {
            names.add(r.mole());
        }
        return new ArrayList<>(names);
    }

    /** Removes every check of {@code mole}; returns them so the caller can delete their thumbnails. */
    public List<CheckRecord> deleteMole(String mole) throws IOException {
        String name = CheckRecord.normaliseName(mole);
        List<CheckRecord> keep = new ArrayList<>();
        List<CheckRecord> removed = new ArrayList<>();
        for (CheckRecord r : load()) {
            (r.mole().equals(name) ? removed : keep).add(r);
        }
        save(keep);
        return removed;
    }

    private static String readUtf8(File f) throws IOException {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        byte[] chunk = new byte[8192];
        try (InputStream in = new FileInputStream(f)) {
            for (int n = in.read(chunk); n >= 0; n = in.read(chunk)) {
                buf.write(chunk, 0, n);
            }
        }
        return new String(buf.toByteArray(), StandardCharsets.UTF_8);
    }

    private void save(List<CheckRecord> records) throws IOException {
        List<Object> checks = new ArrayList<>();
        for (CheckRecord r : records) {
            checks.add(r.toJson());
        }
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("format", FORMAT);
        root.put("checks", Collections.unmodifiableList(checks));
        File parent = file.getAbsoluteFile().getParentFile();
        if (parent != null && !parent.isDirectory() && !parent.mkdirs()) {
            throw new IOException("cannot create folder " + parent);
        }
        File tmp = new File(parent, file.getName() + ".tmp");
        try (FileOutputStream out = new FileOutputStream(tmp)) {
            out.write(Json.write(root).getBytes(StandardCharsets.UTF_8));
            out.getFD().sync();
        }
        if (!tmp.renameTo(file)) {
            throw new IOException("cannot replace " + file + " with " + tmp);
        }
    }
}
