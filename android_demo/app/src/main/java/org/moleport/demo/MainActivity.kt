package org.moleport.demo

import android.content.Intent
import android.os.Bundle
import android.widget.Button
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.lifecycle.lifecycleScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.moleport.core.Advice
import org.moleport.demo.databinding.ActivityMainBinding

/** Home: take a photo or pick one, and the list of named moles with a history. */
class MainActivity : AppCompatActivity() {
    private lateinit var binding: ActivityMainBinding

    private val pickImage = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri ->
        if (uri != null) startActivity(CropActivity.intent(this, uri, deleteAfterLoading = false))
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityMainBinding.inflate(layoutInflater)
        setContentView(binding.root)
        binding.notice.text = Advice.NOTICE
        binding.takePhoto.setOnClickListener { startActivity(Intent(this, CaptureActivity::class.java)) }
        binding.pickPhoto.setOnClickListener {
            pickImage.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }
    }

    override fun onResume() {
        super.onResume()
        lifecycleScope.launch {
            val moles = withContext(Dispatchers.IO) { runCatching { Services.history(this@MainActivity).moles() } }
            showMoles(moles.getOrElse { listOf() }, moles.exceptionOrNull()?.message)
        }
    }

    private fun showMoles(moles: List<String>, error: String?) {
        binding.moleList.removeAllViews()
        binding.noMoles.text = error?.let { getString(R.string.history_unreadable, it) } ?: getString(R.string.no_moles)
        binding.noMoles.visibility = if (moles.isEmpty()) android.view.View.VISIBLE else android.view.View.GONE
        for (mole in moles) {
            val button = Button(this).apply {
                text = mole
                isAllCaps = false
                setOnClickListener { startActivity(HistoryActivity.intent(this@MainActivity, mole)) }
            }
            binding.moleList.addView(button)
        }
    }
}
