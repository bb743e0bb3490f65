package org.moleport.demo

import android.content.Context
import org.moleport.core.AssetIntegrity
import org.moleport.core.ModelSpec

/**
 * The bundle copied into assets/model/ by `make android-assets` (scripts/copy_assets.sh). Every file is
 * checked against the SHA256SUMS list copy_assets.sh writes beside them (core [AssetIntegrity]) before use.
 */
object ModelAssets {
    const val FP32 = "model/model_fp32.tflite"
    private const val SUMS = "model/SHA256SUMS"
    private const val SHIP = "model/ship.json"
    private const val SPEC = "model/spec.json"
    private const val LABELS = "model/labels.txt"

    private fun readBytes(context: Context, path: String): ByteArray =
        context.assets.open(path).use { it.readBytes() }

    /** assets/model/SHA256SUMS: the sha256 of every packaged file; its absence is an error, not a skipped check. */
    fun integrity(context: Context): AssetIntegrity {
        check(has(context, SUMS)) { "assets/$SUMS missing: run `make android-assets` and rebuild the app" }
        return AssetIntegrity.parse(readBytes(context, SUMS), "assets/$SUMS")
    }

    /** spec.json and labels.txt, each sha256-checked against [sums], parsed strictly by the core module. */
    fun readSpec(context: Context, sums: AssetIntegrity): ModelSpec =
        sums.readSpec(readBytes(context, SPEC), readBytes(context, LABELS))

    /** The default model of parity's ship decision (ship.json, written by copy_assets.sh); fp32 without it. */
    fun shippedDefault(context: Context, sums: AssetIntegrity): String {
        if (!has(context, SHIP)) return FP32
        val text = String(sums.verify("ship.json", readBytes(context, SHIP)), Charsets.UTF_8)
        val name = org.json.JSONObject(text).optString("default", "model_fp32.tflite")
        require(Regex("model_(fp32|fp16|int8)\\.tflite").matches(name)) { "assets/$SHIP: unexpected default $name" }
        return "model/$name"
    }

    fun has(context: Context, path: String): Boolean =
        context.assets.list(path.substringBeforeLast('/'))?.contains(path.substringAfterLast('/')) == true
}
