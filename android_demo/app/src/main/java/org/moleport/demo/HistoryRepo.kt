package org.moleport.demo

import java.io.File
import org.moleport.core.CheckRecord
import org.moleport.core.HistoryStore
import org.moleport.core.MoleChecker
import org.moleport.core.MoleTrend

/** Per-mole history in app-private storage: history.json (core [HistoryStore]) plus PNG thumbnails. */
class HistoryRepo(private val dir: File) {
    private val store = HistoryStore(File(dir, "history.json"))

    fun moles(): List<String> = store.moles()

    fun checks(mole: String): List<CheckRecord> = store.checksFor(mole)

    fun trend(mole: String): MoleTrend = MoleTrend.of(checks(mole))

    fun thumbnail(record: CheckRecord): File = File(dir, record.thumbnail())

    /** Saves [result] under [mole] now; returns the stored record. */
    fun save(result: MoleChecker.Result, mole: String): CheckRecord {
        val now = System.currentTimeMillis()
        dir.mkdirs()
        val record = result.toRecord(mole, now, "check_$now.png")
        Bitmaps.savePng(result.thumbnail(), thumbnail(record))
        store.add(record)
        return record
    }

    /** Deletes every check of [mole] and its thumbnails. */
    fun delete(mole: String) {
        store.deleteMole(mole).forEach { thumbnail(it).delete() }
    }
}
