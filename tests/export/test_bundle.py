"""Bundle orchestration with the fast ONNX converter: errors, atomicity, --force, failure isolation, manifest."""
import json

import onnx
import pytest
import torch

from moleport.export import bundle as bundle_mod
from moleport.export.bundle import ExportError, export_bundle
from moleport.export.cli import register
from moleport.jsonio import sha256_file, size_bytes


def _cli(argv):
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    return args.func(args)


def test_onnx_bundle_manifest_and_refusal(source, tmp_path):
    res = export_bundle(source["ckpt"], tmp_path, formats="onnx", name="b")
    assert res.ok and sorted(p.name for p in res.out_dir.iterdir()) == [
        "MODEL_CARD.md", "labels.txt", "manifest.json", "onnx", "spec.json"]
    man = json.loads((res.out_dir / "manifest.json").read_text())
    (entry,) = man["files"]
    assert entry["path"] == "onnx/model_fp32.onnx" and entry["format"] == "onnx" and entry["precision"] == "fp32"
    onnx_file = res.out_dir / entry["path"]
    assert (entry["sha256"], entry["bytes"]) == (sha256_file(onnx_file), size_bytes(onnx_file))
    assert entry["input"]["shape"] == [1, 224, 224, 3] and entry["input"]["layout"] == "NHWC"
    assert man["source_checkpoint_sha256"] == sha256_file(source["ckpt"])
    assert man["spec"]["export_input"]["range"] == [0.0, 255.0] and man["failures"] == []
    assert (res.out_dir / "labels.txt").read_text().split() == ["nevus", "melanoma"]
    onnx.checker.check_model(onnx.load(res.out_dir / entry["path"]), full_check=True)
    card = (res.out_dir / "MODEL_CARD.md").read_text()
    assert "not a diagnosis" in card and "source" in card and "| test | clinical" in card
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(source["ckpt"], tmp_path, formats="onnx", name="b")
    (res.out_dir / "marker").write_text("old")
    again = export_bundle(source["ckpt"], tmp_path, formats="onnx", name="b", force=True)
    assert again.ok and not (again.out_dir / "marker").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temp folders left


def test_one_format_failing_keeps_the_others(source, calib_n, tmp_path, monkeypatch, capsys):
    from moleport.export import tflite

    def boom(*a, **k):
        raise RuntimeError("simulated onnx2tf crash")

    monkeypatch.setattr(tflite, "to_tflite", boom)
    code = _cli([str(source["ckpt"]), "--out", str(tmp_path), "--name", "x", "--formats", "onnx,tflite",
                 "--manifest", str(source["manifest"]), "--calib-n", str(calib_n)])
    assert code == 1
    man = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert [(f["format"], f["precision"]) for f in man["files"]] == [("onnx", "fp32"), ("tflite", "int8")]
    assert (tmp_path / "x" / "onnx" / "model_fp32.onnx").is_file()
    # onnx2tf makes fp32/fp16; int8 comes from litert-torch (the int8 backbone), so it survives
    assert {(f["format"], f["precision"]) for f in man["failures"]} == {("tflite", p) for p in ("fp32", "fp16")}
    assert all("simulated onnx2tf crash" in f["error"] for f in man["failures"])
    out = capsys.readouterr().out
    assert "FAILED" in out and "onnx" in out
    assert not (tmp_path / "x" / "tflite" / "model_fp32.tflite").exists()


def test_failure_midway_leaves_nothing(source, tmp_path, monkeypatch):
    def crash(*a, **k):
        raise KeyboardInterrupt  # e.g. the user hits Ctrl-C while documents are written

    monkeypatch.setattr(bundle_mod, "_write_documents", crash)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(source["ckpt"], tmp_path, formats="onnx", name="y")
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_are_clear_errors(source, tmp_path):
    from moleport.models.checkpoint import save_checkpoint

    out = tmp_path / "out"
    with pytest.raises(ExportError, match="not found"):
        export_bundle(tmp_path / "missing.pt", out, formats="onnx")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(source["ckpt"].read_bytes()[:1000])
    with pytest.raises(ExportError, match="corrupt"):
        export_bundle(bad, out, formats="onnx")
    wrong = save_checkpoint(tmp_path / "wrong.pt", source["model"], source["spec"].replace(architecture="mobilenet_v2"),
                            manifest_sha256=None)
    with pytest.raises(ExportError, match="does not fit"):
        export_bundle(wrong, out, formats="onnx")
    with pytest.raises(ExportError, match="--manifest"):
        export_bundle(source["ckpt"], out, formats="tflite")
    with pytest.raises(ExportError, match="need calib_n=1000"):
        export_bundle(source["ckpt"], out, formats="executorch", manifest=source["manifest"], calib_n=1000)
    with pytest.raises(ExportError, match="unknown export format"):
        export_bundle(source["ckpt"], out, formats="onnx,pdf")
    assert not out.exists() or list(out.iterdir()) == []


def test_cli_refuses_existing_without_force(source, tmp_path, capsys):
    (tmp_path / "z").mkdir()
    assert _cli([str(source["ckpt"]), "--out", str(tmp_path), "--name", "z", "--formats", "onnx"]) == 2
    assert "--force" in capsys.readouterr().err
