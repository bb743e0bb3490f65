"""In-graph test-time augmentation end to end: a checkpoint whose ModelSpec names ``dihedral8`` exports to every
format with the 8 views averaged inside the graph (same [1, H, W, 3] -> [1, 2] contract), and every artifact
reproduces the PyTorch reference, which averages preprocess.tta_views on its own."""
from __future__ import annotations

import json

import pytest

from moleport.models.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.heavy


@pytest.fixture(scope="module")
def tta_bundle(source, calib_n, tmp_path_factory):
    from moleport.export.bundle import export_bundle

    root = tmp_path_factory.mktemp("tta")
    loaded = load_checkpoint(source["ckpt"])
    ckpt = save_checkpoint(root / "run" / "checkpoint.pt", loaded.model, loaded.spec.replace(tta="dihedral8"),
                           manifest_sha256=loaded.meta["manifest_sha256"], metrics=loaded.meta.get("metrics"), epoch=3)
    result = export_bundle(ckpt, root / "export", manifest=source["manifest"], calib_n=calib_n, name="tta")
    return result, root / "export" / "tta"


def test_every_format_exports_with_the_views_in_graph(tta_bundle):
    result, bundle = tta_bundle
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["failures"] == [], manifest["failures"]
    assert {f["format"] for f in manifest["files"]} >= {"onnx", "tflite", "coreml", "executorch"}
    spec = json.loads((bundle / "spec.json").read_text())
    assert spec["tta"] == "dihedral8" and "dihedral8" in spec["export_input"]["tta"]
    assert spec["export_input"]["shape"]["NHWC"] == [1, 224, 224, 3]


def test_every_artifact_reproduces_the_view_averaged_reference(tta_bundle):
    from moleport.parity.harness import run_parity

    _, bundle = tta_bundle
    payload = run_parity(bundle, latency_runs=0, cache_dir=None)
    rows = [r for r in payload["rows"] if not r.get("is_reference")]
    assert {r["runtime"] for r in rows} >= {"onnxruntime", "litert", "executorch", "coreml"}
    for row in rows:
        assert row["status"] == "ok", row
        if row["precision"] in ("fp32", "fp16"):
            assert row["passed"], (row["artifact"], row["runtime"], row["violations"])
    reference = payload["rows"][0]
    assert reference.get("is_reference") and reference["runtime"] == "torch"


def test_bench_times_each_rule_against_none_side_by_side(source, calib_n, tmp_path, monkeypatch):
    """make bench's tta section: one export per rule, the same weights, latency ratios against no views."""
    import shutil

    from moleport.bench import artifact_latencies, split_manifest_of
    from moleport.export.bench import bench_tta

    monkeypatch.setenv("MOLEPORT_ARTIFACTS", str(tmp_path / "artifacts"))
    assert split_manifest_of(source["ckpt"]) is None
    (tmp_path / "artifacts" / "splits").mkdir(parents=True)
    found = shutil.copy(source["manifest"], tmp_path / "artifacts" / "splits" / "run.json")
    assert split_manifest_of(source["ckpt"]) == found
    rows = bench_tta(source["ckpt"], found, rules=("flips2",), formats=("executorch",), calib_n=calib_n,
                     measure=lambda bundle: artifact_latencies(bundle, runs=3))
    assert {(r["tta"], r["precision"]) for r in rows} == {(t, p) for t in ("none", "flips2") for p in ("fp32", "int8")}
    for r in rows:
        assert r["status"] == "ok" and r["latency_ms"] > 0, r
    # the ratio is each row's own measured latency over the no-view row of its precision (no timing threshold here:
    # the machines are shared and noisy; make bench prints the numbers)
    none = {r["precision"]: r["latency_ms"] for r in rows if r["tta"] == "none"}
    for r in rows:
        assert r["latency_vs_none"] == pytest.approx(r["latency_ms"] / none[r["precision"]], abs=0.006), r
