package org.moleport.demo

import android.os.Bundle
import android.widget.ArrayAdapter
import android.widget.Toast
import androidx.appcompat.app.AppCompatActivity
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.moleport.core.CheckRecord
import org.moleport.core.RiskBand
import org.moleport.demo.databinding.ActivityResultBinding

/** P(melanoma), the risk band, the advice and the notice (all texts from the core module); save to a mole. */
class ResultActivity : AppCompatActivity() {
    private lateinit var binding: ActivityResultBinding

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityResultBinding.inflate(layoutInflater)
        setContentView(binding.root)
        val result = CheckSession.result ?: return finish()
        val prediction = result.prediction()
        val advice = result.advice()
        binding.image.setImageBitmap(Bitmaps.toBitmap(result.modelInput()))
        binding.score.text = getString(R.string.score, prediction.percent())
        binding.band.text = prediction.band().label()
        binding.band.setTextColor(bandColour(prediction.band()))
        binding.headline.text = advice.headline()
        binding.explanation.text = advice.explanation()
        binding.notice.text = advice.notice()
        binding.model.text = getString(R.string.model_used, result.modelName())
        binding.discard.setOnClickListener { CheckSession.result = null; finish() }
        binding.save.setOnClickListener { save() }
        lifecycleScope.launch {
            val names = withContext(Dispatchers.IO) { runCatching { Services.history(this@ResultActivity).moles() } }
            binding.moleName.setAdapter(ArrayAdapter(this@ResultActivity,
                android.R.layout.simple_dropdown_item_1line, names.getOrElse { listOf() }))
        }
    }

    private fun bandColour(band: RiskBand): Int = getColor(when (band) {
        RiskBand.HIGH -> R.color.band_high
        RiskBand.BORDERLINE -> R.color.band_borderline
        RiskBand.LOW -> R.color.band_low
    })

    private fun save() {
        val result = CheckSession.result ?: return
        val name = try {
            CheckRecord.normaliseName(binding.moleName.text?.toString())
        } catch (e: IllegalArgumentException) {
            binding.moleNameLayout.error = e.message
            return
        }
        binding.save.isEnabled = false
        lifecycleScope.launch {
            val saved = withContext(Dispatchers.IO) { runCatching { Services.history(this@ResultActivity).save(result, name) } }
            saved.onSuccess {
                CheckSession.clear()
                startActivity(HistoryActivity.intent(this@ResultActivity, name))
                finish()
            }.onFailure {
                binding.save.isEnabled = true
                Toast.makeText(this@ResultActivity, getString(R.string.save_failed, it.message), Toast.LENGTH_LONG).show()
            }
        }
    }
}
