package org.moleport.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.net.Uri
import androidx.exifinterface.media.ExifInterface
import java.io.File
import java.io.IOException
import org.moleport.core.ExifOrientation
import org.moleport.core.Preprocessor
import org.moleport.core.RgbImage

/** Android <-> core image conversions. All pixel decisions are made by the core module. */
object Bitmaps {
    /** Larger photos are decoded with a power-of-two subsample (documented deviation from the Python rule). */
    private const val MAX_DECODE_PIXELS = 24_000_000L

    /** Decodes [uri] at full resolution as non-premultiplied ARGB and makes it upright via the core module. */
    fun loadUpright(context: Context, uri: Uri): RgbImage {
        val resolver = context.contentResolver
        val tag = resolver.openInputStream(uri)?.use {
            ExifInterface(it).getAttributeInt(ExifInterface.TAG_ORIENTATION, ExifInterface.ORIENTATION_NORMAL)
        } ?: throw IOException("cannot open $uri")
        val bounds = BitmapFactory.Options().apply { inJustDecodeBounds = true }
        resolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, bounds) }
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) throw IOException("not a readable image: $uri")
        var sample = 1
        while (bounds.outWidth.toLong() * bounds.outHeight / (sample.toLong() * sample) > MAX_DECODE_PIXELS) sample *= 2
        val options = BitmapFactory.Options().apply {
            inPreferredConfig = Bitmap.Config.ARGB_8888
            inPremultiplied = false // getPixels then returns the stored colour values exactly
            inScaled = false
            inSampleSize = sample
        }
        val bitmap = resolver.openInputStream(uri)?.use { BitmapFactory.decodeStream(it, null, options) }
            ?: throw IOException("cannot decode $uri")
        try {
            val argb = IntArray(bitmap.width * bitmap.height)
            bitmap.getPixels(argb, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
            return Preprocessor.upright(argb, bitmap.width, bitmap.height, ExifOrientation.fromTag(tag))
        } finally {
            bitmap.recycle()
        }
    }

    fun toBitmap(image: RgbImage): Bitmap =
        Bitmap.createBitmap(image.toArgb(), image.width(), image.height(), Bitmap.Config.ARGB_8888)

    fun savePng(image: RgbImage, file: File) {
        file.outputStream().use { out ->
            if (!toBitmap(image).compress(Bitmap.CompressFormat.PNG, 100, out)) throw IOException("cannot write $file")
        }
    }

    fun loadFile(file: File): Bitmap? = BitmapFactory.decodeFile(file.path)
}
