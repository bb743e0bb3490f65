package org.moleport.demo

import android.content.Context
import java.io.File
import org.moleport.core.MoleChecker
import org.moleport.core.RgbImage

/** Process-wide objects: the loaded model (expensive, created once) and what the current check is about. */
object Services {
    private var checker: MoleChecker? = null

    /** The model parity chose (assets/model/ship.json "default": the smallest that passed); set [useFp32]
     *  before the first check to run the fp32 model that ships beside it instead. */
    var useFp32: Boolean = false

    @Synchronized
    fun checker(context: Context): MoleChecker {
        checker?.let { return it }
        val app = context.applicationContext
        val sums = ModelAssets.integrity(app)  // spec, labels, ship.json and the model are sha256-checked
        val spec = ModelAssets.readSpec(app, sums)
        val asset = if (useFp32) ModelAssets.FP32 else ModelAssets.shippedDefault(app, sums)
        return MoleChecker(spec, LiteRtModel.open(app, asset, spec, sums)).also { checker = it }
    }

    fun history(context: Context): HistoryRepo =
        HistoryRepo(File(context.applicationContext.filesDir, "history"))
}

/** Hand-over between screens of one check (kept in memory only; never written unless the user saves it). */
object CheckSession {
    var upright: RgbImage? = null
    var result: MoleChecker.Result? = null

    fun clear() {
        upright = null
        result = null
    }
}
