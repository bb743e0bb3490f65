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
            ("coreml", "fp16"), ("coreml", "w8"), ("executorch", "fp32"), ("executorch", "int8")}


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
    # int8 artifacts are int8 backbones with fp32 pre/post-processing, whatever their verdict
    sizes = {(f["format"], f["precision"]): f["bytes"] for f in manifest["files"]}
    for fmt in ("tflite", "executorch"):
        assert sizes[(fmt, "int8")] <= sizes[(fmt, "fp32")] / 3.5, sizes
    qat = json.loads(Path(manifest["int8_program"]["report"]).read_text())
    layers, scope = qat["quantized_layers"], qat["scope"]
    assert layers["linear"] == 0 and layers["float_linear"] == 1 and scope["float_classifier"]
    assert layers["conv"] + layers["float_conv"] == 27 and layers["conv"] >= 27 - 2 * 6  # at most 6 blocks fp32
    assert layers["float_conv"] == (2 * scope["float_blocks"] - 1 if scope["float_blocks"] else 0)
    assert scope["float_blocks"] in [r["float_blocks"] for r in qat["scope_search"]]  # the scope PTQ measured
    # one ship decision, in parity.json, that the apps obey
    ship = parity["ship"]["android"]
    assert ship["fp32"] == "tflite/model_fp32.tflite" and ship["default"] in ship["ships"]
    assert "TensorSpec" not in proc.stdout  # converter noise goes to the export log, not the console


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


def _whole_graph_int8_pte(ckpt: Path, manifest: Path, out: Path) -> Path:
    """The retired int8 recipe: PT2E over the WHOLE wrapped graph (colour constancy, x**6, exp/log and the
    sigmoid head quantized too), calibrated on training images, lowered to XNNPACK like the real export."""
    import numpy as np
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from moleport.data.arrays import load_split
    from moleport.data.manifest import load_manifest
    from moleport.export.wrapper import wrap
    from moleport.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(ckpt)
    wrapped = wrap(loaded.model, loaded.spec, "NHWC")
    calib = load_split(load_manifest(manifest), "train").x[:64].astype(np.float32)
    batch = torch.export.Dim("batch", min=1, max=32)
    ep = torch.export.export(wrapped, (torch.as_tensor(calib[:2]),), dynamic_shapes=({0: batch},))
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(ep.module(), quantizer)
    with torch.no_grad():
        for i in range(0, len(calib), 32):
            prepared(torch.as_tensor(calib[i:i + 32]))
    converted = convert_pt2e(prepared)
    example = (torch.zeros(1, 224, 224, 3),)
    edge = to_edge_transform_and_lower(torch.export.export(converted, example), partitioner=[XnnpackPartitioner()])
    out.write_bytes(edge.to_executorch().buffer)
    return out


def test_int8_that_quantizes_the_colour_constancy_fails_parity(e2e, tmp_path):
    """The int8 recipe this project shipped before (whole graph quantized) must be caught by the gates."""
    from moleport.parity.harness import run_parity

    art, _, proc = e2e
    assert proc.returncode == 0
    bundle = Path(shutil.copytree(art / "export" / "ci", tmp_path / "ci"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    if not manifest["spec"].get("color_constancy"):
        pytest.skip("the default model has no in-graph colour constancy")
    old = _whole_graph_int8_pte(Path(manifest["checkpoint"]), Path(manifest["split_manifest"]),
                                bundle / "executorch" / "model_int8_whole_graph.pte")
    import hashlib

    entry = {"path": "executorch/model_int8_whole_graph.pte", "format": "executorch", "precision": "int8",
             "sha256": hashlib.sha256(old.read_bytes()).hexdigest(), "bytes": old.stat().st_size}
    manifest["files"] = [f for f in manifest["files"] if f["format"] == "executorch"] + [entry]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    payload = run_parity(bundle, runtimes=["executorch"], latency_runs=0)
    row = next(r for r in payload["rows"] if r["artifact"] == entry["path"])
    assert row["status"] == "ok" and not row["passed"], row.get("violations")
    print("\n".join(row["violations"]))
    assert any("int8" in v for v in row["violations"])
