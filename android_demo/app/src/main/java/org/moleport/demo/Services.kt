package org.moleport.demo

import android.content.Context
import java.io.File
import org.moleport.core.MoleChecker
import org.moleport.core.RgbImage

/** Process-wide objects: the loaded model (expensive, created once) and what the current check is about. */
object Services {
    private var checker: MoleChecker? = null

    /** The fp32 model by default; set [useInt8] before the first check to try the int8 variant. */
    var useInt8: Boolean = false

    @Synchronized
    fun checker(context: Context): MoleChecker {
        checker?.let { return it }
        val app = context.applicationContext
        val spec = ModelAssets.readSpec(app)
        val asset = if (useInt8 && ModelAssets.has(app, ModelAssets.INT8)) ModelAssets.INT8 else ModelAssets.FP32
        return MoleChecker(spec, LiteRtModel.open(app, asset, spec)).also { checker = it }
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
