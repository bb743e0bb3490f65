package org.moleport.demo

import android.content.Context
import android.content.Intent
import android.os.Bundle
import android.text.format.DateFormat
import android.view.LayoutInflater
import androidx.appcompat.app.AlertDialog
import androidx.appcompat.app.AppCompatActivity
import androidx.lifecycle.lifecycleScope
import java.util.Date
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.moleport.core.Advice
import org.moleport.core.CheckRecord
import org.moleport.core.MoleTrend
import org.moleport.demo.databinding.ActivityHistoryBinding
import org.moleport.demo.databinding.ItemCheckBinding

/** Past checks of one named mole, newest first, with the change since the previous check. */
class HistoryActivity : AppCompatActivity() {
    private lateinit var binding: ActivityHistoryBinding
    private lateinit var mole: String

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityHistoryBinding.inflate(layoutInflater)
        setContentView(binding.root)
        mole = intent.getStringExtra(EXTRA_MOLE) ?: return finish()
        title = mole
        binding.notice.text = Advice.NOTICE
        binding.delete.setOnClickListener { confirmDelete() }
        load()
    }

    private fun load() {
        lifecycleScope.launch {
            val repo = Services.history(this@HistoryActivity)
            val loaded = withContext(Dispatchers.IO) { runCatching { repo.checks(mole) } }
            val checks = loaded.getOrElse {
                binding.trend.text = getString(R.string.history_unreadable, it.message)
                return@launch
            }
            binding.trend.text = if (checks.isEmpty()) getString(R.string.no_checks) else MoleTrend.of(checks).summary()
            show(repo, checks)
        }
    }

    private fun show(repo: HistoryRepo, checks: List<CheckRecord>) {
        binding.checks.removeAllViews()
        val dateFormat = DateFormat.getMediumDateFormat(this)
        val timeFormat = DateFormat.getTimeFormat(this)
        for (check in checks.asReversed()) {
            val row = ItemCheckBinding.inflate(LayoutInflater.from(this), binding.checks, false)
            val date = Date(check.timeMillis())
            row.date.text = getString(R.string.check_date, dateFormat.format(date), timeFormat.format(date))
            row.result.text = getString(R.string.check_result, Math.round(check.pMelanoma() * 100), check.band().label())
            Bitmaps.loadFile(repo.thumbnail(check))?.let { row.thumbnail.setImageBitmap(it) }
            binding.checks.addView(row.root)
        }
    }

    private fun confirmDelete() {
        AlertDialog.Builder(this)
            .setMessage(getString(R.string.delete_confirm, mole))
            .setNegativeButton(android.R.string.cancel, null)
            .setPositiveButton(R.string.delete) { _, _ ->
                lifecycleScope.launch {
                    withContext(Dispatchers.IO) { runCatching { Services.history(this@HistoryActivity).delete(mole) } }
                    finish()
                }
            }
            .show()
    }

    companion object {
        private const val EXTRA_MOLE = "mole"

        fun intent(context: Context, mole: String): Intent =
            Intent(context, HistoryActivity::class.java).putExtra(EXTRA_MOLE, mole)
    }
}
