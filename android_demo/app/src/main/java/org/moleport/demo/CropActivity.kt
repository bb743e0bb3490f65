package org.moleport.demo

import android.content.Context
import android.content.Intent
import android.net.Uri
import android.os.Bundle
import android.view.View
import androidx.appcompat.app.AppCompatActivity
import androidx.lifecycle.lifecycleScope
import java.io.File
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.moleport.demo.databinding.ActivityCropBinding

/** The user frames the lesion in a square; "Check" runs the model on exactly that square. */
class CropActivity : AppCompatActivity() {
    private lateinit var binding: ActivityCropBinding

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityCropBinding.inflate(layoutInflater)
        setContentView(binding.root)
        binding.check.isEnabled = false
        binding.check.setOnClickListener { runCheck() }
        val uri = intent.data ?: return finish()
        CheckSession.upright?.takeIf { savedInstanceState != null }?.let { showImage(it); return }
        load(uri, intent.getBooleanExtra(EXTRA_DELETE, false))
    }

    private fun load(uri: Uri, deleteAfter: Boolean) {
        binding.status.setText(R.string.loading)
        lifecycleScope.launch {
            val image = withContext(Dispatchers.IO) {
                try {
                    runCatching { Bitmaps.loadUpright(this@CropActivity, uri) }
                } finally {
                    if (deleteAfter && uri.scheme == "file") uri.path?.let { File(it).delete() }
                }
            }
            image.onSuccess { showImage(it) }
                .onFailure { binding.status.text = getString(R.string.image_error, it.message) }
        }
    }

    private fun showImage(image: org.moleport.core.RgbImage) {
        CheckSession.upright = image
        binding.cropView.setImage(image)
        binding.status.setText(R.string.crop_hint)
        binding.check.isEnabled = true
    }

    private fun runCheck() {
        val image = CheckSession.upright ?: return
        val crop = binding.cropView.cropRect()
        binding.check.isEnabled = false
        binding.progress.visibility = View.VISIBLE
        lifecycleScope.launch {
            val result = withContext(Dispatchers.Default) {
                runCatching { Services.checker(this@CropActivity).check(image, crop) }
            }
            binding.progress.visibility = View.GONE
            binding.check.isEnabled = true
            result.onSuccess {
                CheckSession.result = it
                startActivity(Intent(this@CropActivity, ResultActivity::class.java))
            }.onFailure { binding.status.text = getString(R.string.model_error, it.message) }
        }
    }

    companion object {
        private const val EXTRA_DELETE = "delete_after_loading"

        fun intent(context: Context, uri: Uri, deleteAfterLoading: Boolean): Intent =
            Intent(context, CropActivity::class.java)
                .setData(uri)
                .putExtra(EXTRA_DELETE, deleteAfterLoading)
                .addFlags(Intent.FLAG_GRANT_READ_URI_PERMISSION)
    }
}
