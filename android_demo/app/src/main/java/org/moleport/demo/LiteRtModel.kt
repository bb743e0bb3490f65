package org.moleport.demo

import android.content.Context
import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.moleport.core.AssetIntegrity
import org.moleport.core.ModelInput
import org.moleport.core.ModelSpec
import org.moleport.core.Prediction
import org.moleport.core.ProbabilityModel
import org.moleport.core.Quantization
import org.moleport.core.RgbImage
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import org.tensorflow.lite.support.common.FileUtil
import org.tensorflow.lite.support.metadata.MetadataExtractor

/**
 * LiteRT (TensorFlow Lite) runtime behind the core [ProbabilityModel] interface. Input [1, N, N, 3]
 * float32 raw 0..255 or int8 (scale/zero point read from the tensor); output [P(nevus), P(melanoma)].
 * Buffer layout and output parsing live in the core module ([ModelInput], [Prediction]).
 */
class LiteRtModel private constructor(
    private val interpreter: Interpreter,
    private val displayName: String,
) : ProbabilityModel {
    private val input: Tensor = interpreter.getInputTensor(0)
    private val output: Tensor = interpreter.getOutputTensor(0)
    private val inputQuant: Quantization? = quantizationOf(input)
    private val outputQuant: Quantization? = quantizationOf(output)
    private val inputBuffer = ByteBuffer.allocateDirect(input.numBytes()).order(ByteOrder.nativeOrder())
    private val outputBuffer = ByteBuffer.allocateDirect(output.numBytes()).order(ByteOrder.nativeOrder())

    @Synchronized
    override fun probabilities(modelInput: RgbImage): FloatArray {
        val expected = intArrayOf(1, modelInput.height(), modelInput.width(), 3)
        require(input.shape().contentEquals(expected)) {
            "model input is ${input.shape().contentToString()}, image gives ${expected.contentToString()}"
        }
        if (inputQuant == null) {
            ModelInput.writeFloatNhwc(modelInput, inputBuffer)
        } else {
            ModelInput.writeInt8Nhwc(modelInput, inputQuant, inputBuffer)
        }
        outputBuffer.clear()
        interpreter.run(inputBuffer, outputBuffer)
        outputBuffer.rewind()
        val n = output.numElements()
        if (outputQuant == null) {
            return FloatArray(n) { outputBuffer.float }
        }
        val raw = ByteArray(n).also { outputBuffer.get(it) }
        return Prediction.dequantize(raw, outputQuant)
    }

    override fun name(): String = displayName

    override fun close() = interpreter.close()

    companion object {
        /** Loads [assetPath] (memory-mapped, stored uncompressed), checks its sha256 against [sums]
         *  (assets/model/SHA256SUMS) before the interpreter sees it, then checks it against [spec]. */
        fun open(
            context: Context, assetPath: String, spec: ModelSpec, sums: AssetIntegrity, threads: Int = 2,
        ): LiteRtModel {
            val buffer = FileUtil.loadMappedFile(context, assetPath)
            sums.verify(assetPath.substringAfterLast('/'), buffer)
            checkMetadataLabels(buffer.duplicate(), spec, assetPath)
            val interpreter = Interpreter(buffer, Interpreter.Options().setNumThreads(threads))
            val precision = if (interpreter.getInputTensor(0).dataType() == DataType.INT8) "int8" else "fp32"
            return LiteRtModel(interpreter, "litert-$precision ${spec.architecture()} v${spec.version()}")
        }

        private fun quantizationOf(tensor: Tensor): Quantization? = when (tensor.dataType()) {
            DataType.FLOAT32 -> null
            DataType.INT8 -> tensor.quantizationParams().let { Quantization(it.scale.toDouble(), it.zeroPoint) }
            else -> throw IllegalArgumentException(
                "unsupported tensor type ${tensor.dataType()} for ${tensor.name()}; expected FLOAT32 or INT8"
            )
        }

        /** MediaPipe-style metadata may carry a labels file; when it does, it must agree with spec.json. */
        private fun checkMetadataLabels(buffer: ByteBuffer, spec: ModelSpec, source: String) {
            val metadata = MetadataExtractor(buffer)
            if (!metadata.hasMetadata()) return
            val labelFile = metadata.associatedFileNames.firstOrNull { it.endsWith(".txt") } ?: return
            val text = metadata.getAssociatedFile(labelFile).bufferedReader(Charsets.UTF_8).use { it.readText() }
            spec.requireLabelsFile(text, "$source metadata/$labelFile")
        }
    }
}
