"""The golden fixture for the demo apps, the asset copier, and the Java core tests (android_demo/core)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from moleport.apps import golden
from moleport.preprocess import load_image, resize_canonical
from moleport.spec import ModelSpec

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "android_demo" / "scripts"

#: numpy versions of Pillow's exif_transpose for orientations 1..8
ORIENT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
          5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
          8: lambda a: np.rot90(a, 1)}


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_fixture_is_deterministic(tmp_path):
    a = golden.write_fixture(tmp_path / "a", n=6).parent
    b = golden.write_fixture(tmp_path / "b", n=6).parent
    assert _files(a) == _files(b)
    assert len(json.loads((a / "index.json").read_text())["images"]) == 6


def test_tensors_equal_canonical_preprocessing(tmp_path):
    out = golden.write_fixture(tmp_path, n=len(golden.CASES)).parent
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == golden.FORMAT and index["bundle"] is None
    assert {e["orientation"] for e in index["images"]} == set(range(1, 9))
    for e in index["images"]:
        tensor = np.frombuffer((out / e["tensor_file"]).read_bytes(), np.uint8).reshape(224, 224, 3)
        assert np.array_equal(tensor, load_image(out / e["png"], 224)), e["name"]
        # independent route: stored RGBA -> composite over white -> orientation -> canonical resize
        rgba = np.frombuffer((out / e["rgba_file"]).read_bytes(), np.uint8).reshape(e["height"], e["width"], 4)
        a = rgba[..., 3:].astype(np.float64)
        rgb = np.clip(np.floor((rgba[..., :3] * a + 255 * (255 - a)) / 255 + 0.5), 0, 255).astype(np.uint8)
        upright = np.ascontiguousarray(ORIENT[e["orientation"]](rgb))
        assert upright.shape[:2] == (e["decoded_height"], e["decoded_width"]), e["name"]
        assert np.array_equal(resize_canonical(upright, 224), tensor), e["name"]


def test_bad_arguments_are_reported(tmp_path, capsys):
    with pytest.raises(golden.GoldenError, match="--n must be within"):
        golden.write_fixture(tmp_path, n=0)
    with pytest.raises(golden.GoldenError, match="manifest.json missing"):
        golden.write_fixture(tmp_path, n=1, bundle=tmp_path / "nope")
    from moleport.cli import main
    assert main(["golden", "--out", str(tmp_path / "g"), "--n", "99"]) == 2
    assert "--n must be within" in capsys.readouterr().err


def _tiny_tflite(path: Path, int8: bool) -> None:
    """P(melanoma) = sigmoid(mean(R - B) / 32), as [P(nevus), P(melanoma)]; optionally int8 in/out."""
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec([1, 224, 224, 3], tf.float32)])
    def model(x):
        p = tf.sigmoid(tf.reduce_mean(x[..., 0] - x[..., 2], axis=[1, 2])[:, None] / 32.0)
        return tf.concat([1.0 - p, p], axis=1)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    if int8:
        def calibration():  # covers the full range of mean(R - B): -255 .. 255
            for v in np.linspace(0, 255, 9):
                x = np.full((1, 224, 224, 3), 128.0, np.float32)
                x[..., 0], x[..., 2] = v, 255 - v
                yield [x]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = calibration
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    path.write_bytes(conv.convert())


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """A minimal export bundle (manifest.json, spec.json, labels.txt, fp32 + int8 TFLite)."""
    import hashlib

    d = tmp_path_factory.mktemp("bundle")
    files = []
    for precision in ("fp32", "int8"):
        p = d / f"tiny_{precision}.tflite"
        _tiny_tflite(p, precision == "int8")
        files.append({"path": p.name, "format": "tflite", "precision": precision, "bytes": p.stat().st_size,
                      "sha256": hashlib.sha256(p.read_bytes()).hexdigest()})
    ModelSpec(architecture="tiny", threshold=0.4).save(d / "spec.json")
    (d / "labels.txt").write_text("nevus\nmelanoma\n")
    from moleport.runtimes.bundle import document_entry

    documents = [document_entry(d, "spec.json"), document_entry(d, "labels.txt")]  # as export_bundle lists them
    (d / "manifest.json").write_text(json.dumps({"files": files, "documents": documents}))
    _judge(d, {"tiny_fp32.tflite": True, "tiny_int8.tflite": True})
    return d


def _judge(bundle, passed: dict[str, bool]) -> None:
    """parity.json with per-artifact verdicts and the ship decision moleport.parity.ship computes from them."""
    from moleport.parity.ship import decide

    files = json.loads((bundle / "manifest.json").read_text())["files"]
    verdicts = {path: {"passed": ok, "runtimes": {"litert": ok}} for path, ok in passed.items()}
    (bundle / "parity.json").write_text(json.dumps({"artifacts": verdicts, "ship": decide(files, verdicts)}))


def test_bundle_reference_probabilities(tmp_path, tiny_bundle):
    out = golden.write_fixture(tmp_path, n=6, bundle=tiny_bundle).parent
    index = json.loads((out / "index.json").read_text())
    assert index["bundle"]["threshold"] == 0.4 and (out / "spec.json").is_file()
    for e in index["images"]:
        t = np.frombuffer((out / e["tensor_file"]).read_bytes(), np.uint8).reshape(224, 224, 3).astype(np.float64)
        expected = 1 / (1 + np.exp(-(t[..., 0] - t[..., 2]).mean() / 32))
        assert e["p_melanoma"] == pytest.approx(expected, abs=1e-5), e["name"]
        assert e["p_melanoma_by_precision"]["int8"] == pytest.approx(expected, abs=0.03), e["name"]


def test_copy_assets(tmp_path, tiny_bundle):
    dest = tmp_path / "assets" / "model"
    env = dict(os.environ, ASSETS_DIR=str(dest))
    run = subprocess.run(["bash", str(SCRIPTS / "copy_assets.sh"), str(tiny_bundle)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    sizes = {p: (tiny_bundle / f"tiny_{p}.tflite").stat().st_size for p in ("fp32", "int8")}
    smallest = min(sizes, key=lambda p: (sizes[p], p != "fp32"))  # the smallest that passed, fp32 beside it
    models = sorted({"model_fp32.tflite", f"model_{smallest}.tflite"})
    assert sorted(p.name for p in dest.iterdir()) == sorted(["SHA256SUMS", "labels.txt", "ship.json", "spec.json",
                                                             *models])
    assert json.loads((dest / "ship.json").read_text())["default"] == f"model_{smallest}.tflite"
    sums = dict(line.split("  ")[::-1] for line in (dest / "SHA256SUMS").read_text().splitlines())
    assert sums == {n: hashlib.sha256((dest / n).read_bytes()).hexdigest()
                    for n in ("labels.txt", "ship.json", "spec.json", *models)}
    assert (dest / "model_fp32.tflite").read_bytes() == (tiny_bundle / "tiny_fp32.tflite").read_bytes()
    missing = subprocess.run(["bash", str(SCRIPTS / "copy_assets.sh"), str(tmp_path / "nope")], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "run 'make export' first" in missing.stderr
    unjudged = tmp_path / "unjudged"  # no parity.json: nothing decides what ships, so nothing is copied
    shutil.copytree(tiny_bundle, unjudged)
    (unjudged / "parity.json").unlink()
    bad = subprocess.run(["bash", str(SCRIPTS / "copy_assets.sh"), str(unjudged)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "parity.json decides what ships" in bad.stderr
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "tiny_fp32.tflite").write_bytes(b"not a model")
    bad = subprocess.run(["bash", str(SCRIPTS / "copy_assets.sh"), str(broken)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "does not match manifest.json" in bad.stderr
    assert (dest / "model_fp32.tflite").read_bytes() == (tiny_bundle / "tiny_fp32.tflite").read_bytes()
    edited = tmp_path / "edited"  # spec.json changed after export (e.g. threshold 0.999): refused by name
    shutil.copytree(tiny_bundle, edited)
    (edited / "spec.json").write_text((edited / "spec.json").read_text().replace("0.4", "0.999"))
    bad = subprocess.run(["bash", str(SCRIPTS / "copy_assets.sh"), str(edited)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "spec.json: sha256" in bad.stderr and "changed after export" in bad.stderr


def test_copy_assets_ships_only_what_parity_approved(tmp_path, tiny_bundle):
    """parity.json's ship decision decides: a rejected int8 is skipped, a failed fp32 stops the copy."""
    dest = tmp_path / "assets" / "model"
    env = dict(os.environ, ASSETS_DIR=str(dest))
    judged = tmp_path / "judged"
    shutil.copytree(tiny_bundle, judged)
    _judge(judged, {"tiny_fp32.tflite": True, "tiny_int8.tflite": False})
    run = subprocess.run(["bash", str(SCRIPTS / "copy_assets.sh"), str(judged)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "skipping tiny_int8.tflite: failed its parity gates" in run.stdout
    assert sorted(p.name for p in dest.iterdir()) == ["SHA256SUMS", "labels.txt", "model_fp32.tflite", "ship.json",
                                                      "spec.json"]
    assert json.loads((dest / "ship.json").read_text())["default"] == "model_fp32.tflite"
    _judge(judged, {"tiny_fp32.tflite": False, "tiny_int8.tflite": True})
    bad = subprocess.run(["bash", str(SCRIPTS / "copy_assets.sh"), str(judged)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "the fp32 model failed parity" in bad.stderr
    (judged / "parity.json").write_text(json.dumps({"rows": []}))  # an old report without a decision: refuse clearly
    old = subprocess.run(["bash", str(SCRIPTS / "copy_assets.sh"), str(judged)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert old.returncode != 0 and "no ship decision" in old.stderr


def _can_get_javac() -> bool:
    if shutil.which("javac") and Path("/usr/share/java/junit4.jar").is_file():
        return True
    return shutil.which("apt-get") is not None and (os.geteuid() == 0 or shutil.which("sudo") is not None)


@pytest.mark.skipif(not _can_get_javac(), reason="no javac/JUnit 4 and no apt-get to install default-jdk-headless junit4")
def test_java_core_tests_pass(tiny_bundle):
    env = dict(os.environ, MOLEPORT_BUNDLE=str(tiny_bundle), PY=sys.executable)
    run = subprocess.run(["bash", str(SCRIPTS / "core_test.sh")], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=900)
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    m = re.fullmatch(r"core: (\d+) passed, (\d+) failed", last)
    assert m and int(m.group(1)) > 0 and m.group(2) == "0", last
    assert "skipped" not in run.stdout  # with a bundle, the golden bundle test must run too
