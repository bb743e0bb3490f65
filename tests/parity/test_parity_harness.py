"""The harness on a TRAINED MobileNet: the pristine artifact passes, every broken export is caught."""
from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

import parity_helpers as helpers
from moleport.parity.harness import ExternalResult, add_external_rows, run_parity
from moleport.parity.report import load_predictions
from moleport.paths import shared_path

FAST = {"latency_runs": 0}


def _bundle_with(tb, root, extra: list[tuple[str, str, str]]):
    """Rewrite manifest.json of ``root`` to list the pristine ONNX plus ``extra`` files."""
    helpers.write_bundle(root, tb.spec, tb.checkpoint, tb.split_manifest, tb.manifest_sha,
                         [("model_fp32.onnx", "onnx", "fp32"), *extra])
    return root


def _row(payload, artifact, runtime):
    return next(r for r in payload["rows"] if r["artifact"] == artifact and r["runtime"] == runtime)


def test_pristine_onnx_reproduces_the_reference(trained_bundle, bundle_copy):
    payload = run_parity(bundle_copy, runtimes=["onnxruntime"], cache_dir=trained_bundle.cache, latency_runs=2)
    assert payload["passed"], payload["violations"]
    ref, onnx_row = payload["rows"][0], _row(payload, "model_fp32.onnx", "onnxruntime")
    assert ref["is_reference"] and ref["runtime"] == "torch"
    # a trained model: the reference predictions vary and separate the classes
    preds = load_predictions(bundle_copy)
    assert preds.reference.std() > 0.05
    if shared_path("weights", "mobilenet_v1_keras_tflite_qat_imagenet.pth") is not None:
        # with ImageNet features the fitted head separates the classes; with the random-feature
        # fallback (no ../shared) only the spread of outputs, which parity needs, is guaranteed
        assert ref["metrics"]["accuracy"] >= 0.7
    assert onnx_row["max_abs_dp"] <= 1e-4 and onnx_row["flips"] == 0 and onnx_row["confusion_identical"]
    assert onnx_row["latency_ms"] > 0 and onnx_row["info"]["threads"] == 1
    for name in ("parity.json", "parity.md", "parity.html", "parity_predictions.npz"):
        assert (bundle_copy / name).is_file()
    written = json.loads((bundle_copy / "parity.json").read_text())
    assert written["passed"] is True
    assert written["artifacts"]["model_fp32.onnx"] == {"passed": True, "runtimes": {"onnxruntime": True},
                                                        "precision": "fp32", "format": "onnx"}


@pytest.mark.parametrize("kind", ["channel_swap", "double_normalisation", "perturbed_weight"])
def test_broken_onnx_exports_fail_the_fp32_gate(trained_bundle, bundle_copy, kind):
    src, dst = bundle_copy / "model_fp32.onnx", bundle_copy / f"broken_{kind}.onnx"
    if kind == "channel_swap":
        helpers.channel_swap(src, dst)
    elif kind == "double_normalisation":
        helpers.double_normalisation(src, dst, trained_bundle.spec)
    else:
        helpers.perturb_weight(src, dst, scale=1.02)
    _bundle_with(trained_bundle, bundle_copy, [(dst.name, "onnx", "fp32")])
    payload = run_parity(bundle_copy, runtimes=["onnxruntime"], cache_dir=trained_bundle.cache, **FAST)
    assert not payload["passed"]
    assert _row(payload, "model_fp32.onnx", "onnxruntime")["passed"]
    bad = _row(payload, dst.name, "onnxruntime")
    assert bad["status"] == "ok" and not bad["passed"]
    assert bad["max_abs_dp"] > 1e-4
    assert any(dst.name in v and "max |Δp|" in v for v in payload["violations"])
    assert payload["artifacts"][dst.name]["passed"] is False and payload["artifacts"]["model_fp32.onnx"]["passed"]


@pytest.mark.parametrize("fmt,runtime,name", [("onnx", "onnxruntime", "cut.onnx"), ("tflite", "litert", "cut.tflite")])
def test_truncated_file_is_a_clear_load_error(trained_bundle, bundle_copy, fmt, runtime, name):
    helpers.truncate(bundle_copy / "model_fp32.onnx", bundle_copy / name, keep=0.3)
    _bundle_with(trained_bundle, bundle_copy, [(name, fmt, "fp32")])  # manifest agrees with the cut file
    payload = run_parity(bundle_copy, runtimes=["onnxruntime", runtime], cache_dir=trained_bundle.cache, **FAST)
    row = _row(payload, name, runtime)
    assert row["status"] == "error" and not row["passed"]
    assert f"{name}@{runtime}: cannot load" in row["error"]
    assert any(name in v for v in payload["violations"])
    stem = "parity-partial" if payload["partial"] else "parity"  # litert alone leaves out mediapipe: partial
    assert "cannot load" in (bundle_copy / f"{stem}.md").read_text()


def test_file_changed_after_export_is_a_sha256_violation(trained_bundle, bundle_copy):
    path = bundle_copy / "model_fp32.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes
    path.write_bytes(bytes(data))
    payload = run_parity(bundle_copy, runtimes=["onnxruntime"], cache_dir=trained_bundle.cache, **FAST)
    row = _row(payload, "model_fp32.onnx", "onnxruntime")
    assert row["status"] == "error" and "sha256 mismatch" in row["error"]
    assert not payload["passed"]


def test_missing_reference_checkpoint_is_reported_not_raised(trained_bundle, bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["checkpoint"] = str(bundle_copy / "nope.pt")
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    payload = run_parity(bundle_copy, runtimes=["onnxruntime"], cache_dir=trained_bundle.cache, **FAST)
    assert not payload["passed"] and "reference failed" in payload["violations"][0]
    assert "nope.pt" in payload["violations"][0]
    assert (bundle_copy / "parity.md").is_file()


def test_other_split_manifest_is_a_violation(trained_bundle, bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["split_manifest_sha256"] = "0" * 64
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    payload = run_parity(bundle_copy, runtimes=["onnxruntime"], cache_dir=trained_bundle.cache, **FAST)
    assert not payload["passed"] and "not the one the bundle was exported with" in payload["violations"][0]


def test_external_rows_are_judged_and_reports_rewritten(trained_bundle, bundle_copy):
    run_parity(bundle_copy, runtimes=["onnxruntime"], cache_dir=trained_bundle.cache, **FAST)
    preds = load_predictions(bundle_copy)
    good = ExternalResult("model_fp32.onnx", "litertjs", "LiteRT.js / test", preds.reference + 1e-6, latency_ms=9.0)
    by_file = {f: float(1.0 - p) for f, p in zip(preds.files, preds.reference)}
    bad = ExternalResult("model_fp32.onnx", "litertjs", "LiteRT.js / inverted", by_file)
    payload = add_external_rows(bundle_copy, [good, bad])
    rows = [r for r in payload["rows"] if r["runtime"] == "litertjs"]
    assert [r["passed"] for r in rows] == [True, False]
    assert rows[1]["flips"] == len(preds.y)
    assert not payload["passed"] and any("inverted" in v for v in payload["violations"])
    assert "LiteRT.js / inverted" in (bundle_copy / "parity.md").read_text()
    assert len(load_predictions(bundle_copy).rows) == 3


PLUGIN = '''
import numpy as np
from moleport.runtimes.base import Runner
RUNTIME = "litertjs"
def available():
    return {available}
class ConstantRunner(Runner):
    runtime = RUNTIME
    implementation = "fake-browser"
    def _load(self):
        pass
    def _predict(self, x):
        return np.full(len(x), 0.5)
def runners_for(bundle, *, threads=1):
    return [ConstantRunner(f, bundle.spec, threads) for f in bundle.of_format("onnx")]
'''


@pytest.mark.parametrize("available", [True, False])
def test_runner_plugins_are_picked_up_when_available(trained_bundle, bundle_copy, tmp_path, monkeypatch, available):
    name = f"fake_litertjs_{str(available).lower()}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLUGIN.format(available=available)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MOLEPORT_PARITY_RUNNERS", name)
    payload = run_parity(bundle_copy, cache_dir=trained_bundle.cache, runtimes=None, **FAST)
    rows = [r for r in payload["rows"] if r["runtime"] == "litertjs"]
    if available:
        assert len(rows) == 1 and rows[0]["implementation"] == "fake-browser" and not rows[0]["passed"]
    else:
        assert rows == [] and any("litertjs" in n for n in payload["notes"])
    sys.modules.pop(name, None)


def test_cli_exits_non_zero_naming_each_violation(trained_bundle, bundle_copy, tmp_path, monkeypatch, capsys):
    from moleport.cli import main

    monkeypatch.chdir(tmp_path)  # the split cache goes under tmp_path/artifacts/cache
    args = ["parity", str(bundle_copy), "--runtimes", "onnxruntime", "--latency-runs", "0"]
    assert main(args) == 0
    assert "### onnx · fp32" in capsys.readouterr().out
    helpers.perturb_weight(bundle_copy / "model_fp32.onnx", bundle_copy / "w.onnx", scale=1.05)
    _bundle_with(trained_bundle, bundle_copy, [("w.onnx", "onnx", "fp32")])
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "parity FAILED" in err and "w.onnx @ onnxruntime" in err
    assert main(args + ["--gate", "fp32_max_abs_dp=1", "--gate", "fp32_identical_confusion=false"]) == 0
    assert main(["parity", str(tmp_path / "missing")]) == 2
