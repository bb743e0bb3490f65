package org.moleport.demo

import android.content.Context
import org.moleport.core.ModelSpec

/** The bundle copied into assets/model/ by `make android-assets` (scripts/copy_assets.sh). */
object ModelAssets {
    const val FP32 = "model/model_fp32.tflite"
    private const val SHIP = "model/ship.json"
    private const val SPEC = "model/spec.json"
    private const val LABELS = "model/labels.txt"

    private fun readText(context: Context, path: String): String =
        context.assets.open(path).bufferedReader(Charsets.UTF_8).use { it.readText() }

    /** spec.json parsed strictly by the core module and cross-checked with labels.txt. */
    fun readSpec(context: Context): ModelSpec {
        val spec = ModelSpec.parse(readText(context, SPEC), "assets/$SPEC")
        spec.requireLabelsFile(readText(context, LABELS), "assets/$LABELS")
        return spec
    }

    /** The default model of parity's ship decision (ship.json, written by copy_assets.sh); fp32 without it. */
    fun shippedDefault(context: Context): String {
        if (!has(context, SHIP)) return FP32
        val name = org.json.JSONObject(readText(context, SHIP)).optString("default", "model_fp32.tflite")
        require(Regex("model_(fp32|fp16|int8)\\.tflite").matches(name)) { "assets/$SHIP: unexpected default $name" }
        return "model/$name"
    }

    fun has(context: Context, path: String): Boolean =
        context.assets.list(path.substringBeforeLast('/'))?.contains(path.substringAfterLast('/')) == true
}
