"""End to end, as CI runs it: synthetic data -> quick-profile MobileNet -> every export -> parity,
then the same bundle through the Android core's golden-vector tests and the browser (LiteRT.js).

This is the test that proves the spine on a clean machine; it prints parity.md into the log.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moleport.paths import REPO_ROOT

pytestmark = pytest.mark.heavy
EXPECTED = {("onnx", "fp32"), ("tflite", "fp32"), ("tflite", "fp16"), ("tflite", "int8"), ("coreml", "fp32"),
            ("coreml", "fp16"), ("executorch", "fp32"), ("executorch", "int8")}


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    art = tmp_path_factory.mktemp("artifacts")
    env = dict(os.environ, MOLEPORT_ARTIFACTS=str(art), PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "moleport.pipeline", "--name", "ci", "--n", "1000"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3600)
    return art, env, proc


def _log(text: str, capsys) -> None:
    with capsys.disabled():
        print("\n" + text, flush=True)


def test_make_export_pipeline_exports_every_format_and_passes_parity(e2e, capsys):
    art, _, proc = e2e
    bundle = art / "export" / "ci"
    tail = (proc.stdout[-4000:] + proc.stderr[-4000:])
    assert proc.returncode == 0, tail
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {(f["format"], f["precision"]) for f in manifest["files"]} == EXPECTED, tail
    assert manifest["failures"] == []
    parity = json.loads((bundle / "parity.json").read_text())
    _log((bundle / "parity.md").read_text(), capsys)
    summary = proc.stdout[proc.stdout.rfind("| format | precision"):]
    _log(summary + "\n" + proc.stderr[-2000:], capsys)  # what ships, and why the rejected variants don't
    runtimes = {r["runtime"] for r in parity["rows"]}
    assert {"torch", "onnxruntime", "litert", "executorch", "coreml", "mediapipe"} <= runtimes
    for row in parity["rows"]:
        if row.get("is_reference"):
            continue
        assert row["status"] == "ok", row
        if row["precision"] in ("fp32", "fp16"):
            assert row["passed"], (row["artifact"], row["runtime"], row["violations"])
    fp32 = [r for r in parity["rows"] if r["precision"] == "fp32" and not r.get("is_reference")]
    assert all(r["confusion_matrix"] == parity["rows"][0]["confusion_matrix"] for r in fp32)
    assert (bundle / "parity.html").stat().st_size > 10_000
    # int8 variants are judged by their own gates; a failure must be reported as a rejection, not hidden
    rejected = {r["artifact"] for r in parity["rows"] if r["precision"] == "int8" and not r["passed"]}
    for art_path in rejected:
        assert f"REJECTED (not shipped): {art_path}" in proc.stderr


def test_android_core_golden_vectors_against_the_bundle(e2e, capsys):
    art, env, _ = e2e
    proc = subprocess.run(["bash", "android_demo/scripts/core_test.sh"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=900, env=dict(env, MOLEPORT_BUNDLE=str(art / "export" / "ci"),
                                                           PY=sys.executable))
    _log(proc.stdout[-1500:], capsys)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " 0 failed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1]


def test_browser_runs_the_bundle_like_python(e2e, capsys):
    if shutil.which("node") is None:
        pytest.skip("node is not installed (the browser test needs Node.js and npm)")
    art, env, _ = e2e
    proc = subprocess.run(["bash", "web_demo/scripts/web_test.sh", str(art / "export" / "ci")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=1800, env=env)
    _log(proc.stdout[-1500:], capsys)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " 0 failed" in proc.stdout
    assert (art / "web" / "result.png").is_file()
