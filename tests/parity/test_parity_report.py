"""Report writing: parity.json schema, parity.md tables, parity.html with embedded figures."""
from __future__ import annotations

import json

import numpy as np

from moleport.parity.compare import summary
from moleport.parity.gates import Gates
from moleport.parity.harness import finish_row, row_key, tally
from moleport.parity.report import Predictions, load_predictions, save_predictions, write_reports


def _payload_and_preds():
    rng = np.random.default_rng(0)
    n = 60
    y = (np.arange(n) % 2).astype(np.int64)
    files = tuple(f"/data/img{i}.png" for i in range(n))
    p_ref = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.2, n), 0.01, 0.99)
    ref_sum = summary(y, p_ref, 0.5)
    ref = {"artifact": "checkpoint.pt", "format": "pytorch", "precision": "fp32", "runtime": "torch",
           "implementation": "pytorch-eager-fp32", "is_reference": True, "status": "ok", "error": None,
           "checkpoint": "/x/checkpoint.pt", "metrics": ref_sum["metrics"], "evaluation": ref_sum["evaluation"],
           "confusion_matrix": ref_sum["evaluation"]["confusion_matrix"], "violations": [], "passed": True,
           "n": n, "gate": "reference", "bytes": 123, "latency_ms": 3.0}
    preds = Predictions(files=files, y=y, reference=p_ref)
    rows = []
    for art, fmt_, prec, rt, p in [("m.onnx", "onnx", "fp32", "onnxruntime", p_ref + 1e-7),
                                   ("m_int8.tflite", "tflite", "int8", "litert", np.clip(p_ref + rng.normal(0, .02, n), 0, 1)),
                                   ("m_fp16.tflite", "tflite", "fp16", "litert", 1 - p_ref)]:
        row = {"artifact": art, "format": fmt_, "precision": prec, "runtime": rt, "implementation": "impl|x",
               "is_reference": False, "status": "ok", "error": None, "bytes": 4_000_000, "latency_ms": 2.5}
        rows.append(finish_row(row, p, y, files, p_ref, ref_sum, Gates(), 0.5))
        preds.rows[row_key(row)] = p
    broken = {"artifact": "m.pte", "format": "executorch", "precision": "fp32", "runtime": "executorch",
              "implementation": "executorch.runtime", "is_reference": False, "status": "error",
              "error": "m.pte@executorch: cannot load: truncated", "bytes": 10}
    rows.append(finish_row(broken, None, y, files, p_ref, ref_sum, Gates(), 0.5))
    payload = tally({"bundle": "/b", "split": "test", "n": n, "threshold": 0.5, "gates": Gates().to_dict(),
                     "problems": [], "reference": ref, "rows": [ref, *rows], "notes": ["runtime coreml: skipped"]})
    return payload, preds


def test_reports_are_written_and_well_formed(tmp_path):
    payload, preds = _payload_and_preds()
    out = write_reports(tmp_path, payload, preds)
    data = json.loads(out["json"].read_text())
    assert data["passed"] is False
    assert {"passed", "violations", "rows", "reference", "n", "split", "gates"} <= set(data)
    assert {r["runtime"] for r in data["rows"]} == {"torch", "onnxruntime", "litert", "executorch"}
    for row in data["rows"]:
        assert {"artifact", "format", "precision", "runtime", "implementation", "status", "passed"} <= set(row)
    assert any("fp16" in v and "flips" in v for v in data["violations"])
    assert any("truncated" in v for v in data["violations"])
    assert not any("onnx" in v and "fp32" in v for v in data["violations"])
    fp16 = next(r for r in data["rows"] if r["precision"] == "fp16")
    assert fp16["flips"] == len(fp16["flipped"]) > 0 and {"file", "p_reference", "p"} <= set(fp16["flipped"][0])
    assert "NaN" not in out["json"].read_text()


def test_markdown_has_a_table_per_format_and_precision(tmp_path):
    payload, preds = _payload_and_preds()
    md = write_reports(tmp_path, payload, preds)["md"].read_text()
    assert md.startswith("## Parity ❌ FAILED")
    for heading in ("### pytorch · fp32", "### onnx · fp32", "### tflite · fp16", "### tflite · int8",
                    "### executorch · fp32", "### Violations", "### Notes"):
        assert heading in md
    table_rows = [ln for ln in md.splitlines() if ln.startswith("| `") and not ln.startswith("| `/data")]
    assert len(table_rows) == 5
    assert all(ln.replace("\\|", "").count("|") == 14 for ln in table_rows)  # 13 cells; inner pipes escaped
    assert "<summary>m_fp16.tflite @ litert: 60 flipped image(s)</summary>" in md
    assert "❌ error" in md and "✅ pass" in md


def test_html_embeds_figures(tmp_path):
    payload, preds = _payload_and_preds()
    html = write_reports(tmp_path, payload, preds)["html"].read_text()
    assert html.count("data:image/png;base64,") == 3  # ROC, |Δp| histograms, confusion matrices
    assert "m_int8.tflite" in html and "FAILED" in html


def test_predictions_round_trip(tmp_path):
    _, preds = _payload_and_preds()
    save_predictions(tmp_path, preds)
    back = load_predictions(tmp_path)
    assert back.files == preds.files and np.array_equal(back.y, preds.y)
    assert set(back.rows) == set(preds.rows)
    for k in preds.rows:
        assert np.array_equal(back.rows[k], preds.rows[k])


def _only(payload, keep):
    rows = [r for r in payload["rows"] if r.get("is_reference") or r["artifact"] in keep]
    return tally({**payload, "rows": rows})


def test_rejected_optional_artifacts_are_not_a_failed_verdict(tmp_path):
    from moleport.parity.report_md import verdict_text

    payload, _ = _payload_and_preds()
    assert payload["required_passed"] is False  # the fp16 row and the broken fp32 .pte fail
    int8 = next(r for r in payload["rows"] if r["artifact"] == "m_int8.tflite")
    int8.update(passed=False, violations=["m_int8.tflite @ litert: int8 p99 |Δp| 0.1 > 0.04"])
    rejected = _only(payload, {"m.onnx", "m_int8.tflite"})
    assert rejected["passed"] is False and rejected["required_passed"] is True
    assert rejected["rejected"] == ["m_int8.tflite"]
    assert verdict_text(rejected).startswith("✅ PASSED (fp32/fp16) · ⚠️ 1 optional artifact(s) REJECTED")
    assert verdict_text(_only(payload, {"m.onnx"})) == "✅ PASSED"
    assert verdict_text(_only(payload, {"m.onnx", "m_int8.tflite", "m.pte"})).startswith("❌ FAILED")
    assert verdict_text({**rejected, "problems": ["spec.json: sha256 mismatch"],
                         "required_passed": tally({**rejected, "problems": ["x"]})["required_passed"]}).startswith("❌")
