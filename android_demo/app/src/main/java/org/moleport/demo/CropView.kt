package org.moleport.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Paint
import android.graphics.RectF
import android.util.AttributeSet
import android.view.MotionEvent
import android.view.ScaleGestureDetector
import android.view.View
import kotlin.math.min
import org.moleport.core.CropRect
import org.moleport.core.Preprocessor
import org.moleport.core.RgbImage

/** Shows the upright photo with a square frame: drag to move it, pinch to resize it. */
class CropView(context: Context, attrs: AttributeSet? = null) : View(context, attrs) {
    private var image: RgbImage? = null
    private var bitmap: Bitmap? = null
    private var centreX = 0.0
    private var centreY = 0.0
    private var side = 0.0
    private var crop: CropRect? = null
    private var lastX = 0f
    private var lastY = 0f
    private val bitmapPaint = Paint(Paint.FILTER_BITMAP_FLAG)
    private val shade = Paint().apply { color = 0x99000000.toInt() }
    private val frame = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        style = Paint.Style.STROKE
        color = 0xFFFFFFFF.toInt()
        strokeWidth = 3f * resources.displayMetrics.density
    }
    private val scaler = ScaleGestureDetector(context, object : ScaleGestureDetector.SimpleOnScaleGestureListener() {
        override fun onScale(detector: ScaleGestureDetector): Boolean {
            update(centreX, centreY, side * detector.scaleFactor)
            return true
        }
    })

    fun setImage(img: RgbImage) {
        image = img
        bitmap = Bitmaps.toBitmap(img)
        val initial = CropRect.centre(img.width(), img.height())
        update(img.width() / 2.0, img.height() / 2.0, initial.side() * 0.6)
    }

    /** The framed square in image pixels (clamped inside the image by the core module). */
    fun cropRect(): CropRect = crop ?: throw IllegalStateException("no image loaded")

    private fun update(cx: Double, cy: Double, newSide: Double) {
        val img = image ?: return
        val s = newSide.coerceIn(Preprocessor.MIN_SIDE.toDouble(), min(img.width(), img.height()).toDouble())
        side = s
        centreX = cx.coerceIn(s / 2, img.width() - s / 2)
        centreY = cy.coerceIn(s / 2, img.height() - s / 2)
        crop = CropRect.framed(img.width(), img.height(), centreX, centreY, s)
        invalidate()
    }

    private fun scale(img: RgbImage): Float = min(width.toFloat() / img.width(), height.toFloat() / img.height())

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val img = image ?: return
        val bmp = bitmap ?: return
        val s = scale(img)
        val ox = (width - img.width() * s) / 2
        val oy = (height - img.height() * s) / 2
        canvas.save()
        canvas.translate(ox, oy)
        canvas.scale(s, s)
        canvas.drawBitmap(bmp, 0f, 0f, bitmapPaint)
        canvas.restore()
        val c = crop ?: return
        val r = RectF(ox + c.left() * s, oy + c.top() * s, ox + (c.left() + c.side()) * s, oy + (c.top() + c.side()) * s)
        canvas.drawRect(0f, 0f, width.toFloat(), r.top, shade)
        canvas.drawRect(0f, r.bottom, width.toFloat(), height.toFloat(), shade)
        canvas.drawRect(0f, r.top, r.left, r.bottom, shade)
        canvas.drawRect(r.right, r.top, width.toFloat(), r.bottom, shade)
        canvas.drawRect(r, frame)
    }

    override fun onTouchEvent(event: MotionEvent): Boolean {
        val img = image ?: return false
        scaler.onTouchEvent(event)
        when (event.actionMasked) {
            MotionEvent.ACTION_DOWN -> {
                lastX = event.x
                lastY = event.y
            }
            MotionEvent.ACTION_MOVE -> if (!scaler.isInProgress && event.pointerCount == 1) {
                val s = scale(img)
                update(centreX + (event.x - lastX) / s, centreY + (event.y - lastY) / s, side)
                lastX = event.x
                lastY = event.y
            }
            MotionEvent.ACTION_POINTER_UP -> {
                val keep = if (event.actionIndex == 0) 1 else 0
                lastX = event.getX(keep)
                lastY = event.getY(keep)
            }
            MotionEvent.ACTION_UP -> performClick()
        }
        return true
    }

    override fun performClick(): Boolean = super.performClick()
}
