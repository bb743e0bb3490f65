package org.moleport.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.List;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** The local per-mole history and its change-over-time summary. */
public class HistoryTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private static CheckRecord rec(String mole, long t, double p) {
        return new CheckRecord(mole, t, "thumb_" + t + ".png", p, RiskBand.of(p, 0.35), "litert-fp32 v1");
    }

    @Test
    public void checksArePersistedPerMoleOldestFirst() throws IOException {
        File f = new File(tmp.getRoot(), "sub/history.json");
        HistoryStore store = new HistoryStore(f);
        assertTrue(store.load().isEmpty());
        store.add(rec("left shoulder", 3_000L, 0.30));
        store.add(rec("back", 2_000L, 0.05));
        store.add(rec("  left shoulder ", 1_000L, 0.10));
        HistoryStore reopened = new HistoryStore(f);
        assertEquals(Arrays.asList("back", "left shoulder"), reopened.moles());
        List<CheckRecord> shoulder = reopened.checksFor("left shoulder");
        assertEquals(2, shoulder.size());
        assertEquals(1_000L, shoulder.get(0).timeMillis());
        assertEquals(RiskBand.BORDERLINE, shoulder.get(1).band());
        assertEquals("thumb_3000.png", shoulder.get(1).thumbnail());
        assertFalse(new File(f.getPath() + ".tmp").exists());
    }

    @Test
    public void deletingAMoleReturnsItsChecks() throws IOException {
        HistoryStore store = new HistoryStore(new File(tmp.getRoot(), "history.json"));
        store.add(rec("a", 1L, 0.1));
        store.add(rec("b", 2L, 0.2));
        store.add(rec("a", 3L, 0.3));
        assertEquals(2, store.deleteMole("a").size());
        assertEquals(Arrays.asList("b"), store.moles());
    }

    @Test
    public void corruptOrForeignFilesAreReported() throws IOException {
        File f = tmp.newFile("history.json");
        Files.write(f.toPath(), "{\"checks\": [".getBytes(StandardCharsets.UTF_8));
        IOException e = assertThrows(IOException.class, () -> new HistoryStore(f).load());
        assertTrue(e.getMessage(), e.getMessage().contains("corrupt history file"));
        Files.write(f.toPath(), "{\"format\": \"other\", \"checks\": []}".getBytes(StandardCharsets.UTF_8));
        assertThrows(IOException.class, () -> new HistoryStore(f).load());
        String extra = "{\"format\": \"moleport-history-v1\", \"checks\": [{\"mole\": \"a\", \"time_ms\": 1, "
                + "\"thumbnail\": \"t.png\", \"p_melanoma\": 0.1, \"band\": \"LOW\"}]}";
        Files.write(f.toPath(), extra.getBytes(StandardCharsets.UTF_8));
        assertThrows(IllegalArgumentException.class, () -> new HistoryStore(f).load());
    }

    @Test
    public void recordsValidateTheirFields() {
        assertThrows(IllegalArgumentException.class, () -> rec("  ", 1L, 0.1));
        assertThrows(IllegalArgumentException.class, () -> rec("x".repeat(61), 1L, 0.1));
        assertThrows(IllegalArgumentException.class, () -> rec("a", 0L, 0.1));
        assertThrows(IllegalArgumentException.class,
                () -> new CheckRecord("a", 1L, "../escape.png", 0.1, RiskBand.LOW, "m"));
        assertThrows(IllegalArgumentException.class, () -> new CheckRecord("a", 1L, "t.png", 1.5, RiskBand.LOW, "m"));
        assertThrows(IllegalArgumentException.class, () -> new HistoryStore(null));
    }

    @Test
    public void trendFlagsARiseOrAHigherBand() {
        MoleTrend first = MoleTrend.of(Arrays.asList(rec("a", 1L, 0.1)));
        assertNull(first.previous());
        assertTrue(first.summary().startsWith("First check"));
        MoleTrend rise = MoleTrend.of(Arrays.asList(rec("a", 1L, 0.05), rec("a", 2L, 0.16)));
        assertTrue(rise.worsened());
        assertEquals("Score up 11 points since the previous check. A changing mole should be seen by a dermatologist.",
                rise.summary());
        MoleTrend bandUp = MoleTrend.of(Arrays.asList(rec("a", 1L, 0.30), rec("a", 2L, 0.36)));
        assertTrue(bandUp.worsened());
        MoleTrend steady = MoleTrend.of(Arrays.asList(rec("a", 1L, 0.20), rec("a", 2L, 0.12)));
        assertFalse(steady.worsened());
        assertTrue(steady.summary(), steady.summary().startsWith("Score down 8 points"));
        assertThrows(IllegalArgumentException.class, () -> MoleTrend.of(Arrays.asList()));
        assertThrows(IllegalArgumentException.class,
                () -> MoleTrend.of(Arrays.asList(rec("a", 5L, 0.1), rec("a", 2L, 0.1))));
    }
}
