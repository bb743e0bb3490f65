import json

import numpy as np
import pytest

from eval_helpers import make_imagefolder
from moleport.evaluate.errors import EvaluationError
from moleport.evaluate.evaluation import evaluate_model, summarize
from moleport.evaluate.operating_point import choose_operating_point


def test_summarize_has_contract_fields():
    rng = np.random.default_rng(0)
    y = np.array([1] * 30 + [0] * 50)
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    res = summarize(y, p, 0.5, [f"L{i // 2}" for i in range(80)], n_boot=200, seed=0)
    for k in ("auc", "auc_ci", "sensitivity", "sensitivity_ci", "specificity", "specificity_ci", "threshold", "n",
              "counts", "metrics", "ece"):
        assert k in res
    assert res["bootstrap"]["grouping"] == "lesion" and res["n_resampling_units"] == 40
    assert res["metrics"]["clinical"]["recall"] == pytest.approx(res["sensitivity"])
    assert res["counts"] == {"melanoma": 30, "nevus": 50}


def test_evaluate_checkpoint_on_imagefolder(tiny_imagefolder, tiny_checkpoint, tmp_path):
    out = tmp_path / "eval"
    res = evaluate_model(tiny_checkpoint, tiny_imagefolder, out, n_boot=50, seed=0)
    data = json.loads((out / "evaluation.json").read_text())
    assert data["n"] == 8 and data["threshold"] == 0.5 and data["threshold_source"] == "spec.threshold"
    assert len(data["auc_ci"]) == 2 and data["bootstrap"]["grouping"] == "image"
    assert set(data["metrics"]) >= {"clinical", "paper", "confusion_matrix"}
    for name in ("roc.png", "reliability.png", "report.md", "report.html", "predictions.json"):
        assert (out / name).is_file()
    again = evaluate_model(tiny_checkpoint, tiny_imagefolder, tmp_path / "eval2", threshold=0.2, n_boot=50, seed=0)
    assert again["threshold"] == 0.2 and again["auc"] == res["auc"]


def test_other_class_names_are_refused(tmp_path, tiny_checkpoint):
    root = make_imagefolder(tmp_path / "other", classes=("benign", "malignant"))
    with pytest.raises(EvaluationError, match="melanoma|nevus"):
        evaluate_model(tiny_checkpoint, root, tmp_path / "o", n_boot=10)


def test_empty_source_is_refused(tmp_path, tiny_checkpoint):
    (tmp_path / "empty" / "melanoma").mkdir(parents=True)
    (tmp_path / "empty" / "nevus").mkdir(parents=True)
    with pytest.raises(EvaluationError, match="no usable images|empty|no images"):
        evaluate_model(tiny_checkpoint, tmp_path / "empty", tmp_path / "o", n_boot=10)


@pytest.mark.parametrize("spec_kw,extra,match", [
    ({"resize_rule": "stretch-bicubic"}, None, "resize_rule"),
    # a colour rule recorded outside the ModelSpec (an early ablation checkpoint) cannot be evaluated as trained
    ({}, {"color_constancy": "shades-of-gray-p6-v1"}, "shades-of-gray-p6-v1"),
])
def test_checkpoint_spec_mismatch_is_refused(tmp_path, tiny_imagefolder, spec_kw, extra, match):
    from moleport.models import build_model
    from moleport.models.checkpoint import save_checkpoint
    from moleport.spec import ModelSpec

    ckpt = save_checkpoint(tmp_path / "odd.pt", build_model("mobilenet"), ModelSpec("mobilenet", **spec_kw),
                           manifest_sha256=None, extra=extra)
    with pytest.raises(EvaluationError, match=match):
        evaluate_model(ckpt, tiny_imagefolder, tmp_path / "o", n_boot=10)


def test_artifact_spec_mismatch_is_refused(tmp_path, tiny_imagefolder):
    from moleport.spec import ModelSpec

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.onnx").write_bytes(b"not used")
    spec = ModelSpec("mobilenet", input_size=224, export_input={"size": [256, 256]})
    spec.save(bundle / "spec.json")
    with pytest.raises(EvaluationError, match="input_size"):
        evaluate_model(bundle / "model.onnx", tiny_imagefolder, tmp_path / "o", n_boot=10)
    (bundle / "spec.json").unlink()
    with pytest.raises(EvaluationError, match="spec.json"):
        evaluate_model(bundle / "model.onnx", tiny_imagefolder, tmp_path / "o", n_boot=10)


def test_unknown_model_type_and_missing_data(tmp_path, tiny_imagefolder, tiny_checkpoint):
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(EvaluationError, match="unknown model type"):
        evaluate_model(tmp_path / "m.h5", tiny_imagefolder, tmp_path / "o", n_boot=10)
    with pytest.raises(EvaluationError, match="not found"):
        evaluate_model(tiny_checkpoint, tmp_path / "nowhere", tmp_path / "o", n_boot=10)


def test_operating_point_reaches_target_on_val():
    rng = np.random.default_rng(1)
    y = np.array([1] * 100 + [0] * 300)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.15), 0, 1)
    op = choose_operating_point(y, p, target=0.95, calibrate=True)
    assert op["val"]["sensitivity"] >= 0.95 and op["chosen_on"] == "val"
    t = op["temperature"]
    assert t["stored_in_spec"] == "spec_with_threshold.json" and t["temperature"] > 0
    from moleport.calibration import apply_temperature
    pc = apply_temperature(p, t["temperature"])  # same decisions on the calibrated probabilities
    assert np.array_equal(pc >= t["calibrated_threshold"], p >= op["threshold"])
    with pytest.raises(EvaluationError):
        choose_operating_point(np.zeros(10), np.zeros(10))
    strict = choose_operating_point(y, p, target=0.95, confidence=0.95)
    assert strict["threshold"] <= op["threshold"] and strict["val"]["sensitivity"] == 0.99  # 99 of 100 melanomas
    assert strict["val"]["sensitivity_lower_bound"] >= 0.95 and strict["confidence"] == 0.95
    assert "sensitivity_lower_bound" not in op["val"] and op["confidence"] is None
    with pytest.raises(EvaluationError, match="100 melanomas cannot show sensitivity >= 0.99 .* at least 299"):
        choose_operating_point(y, p, target=0.99, confidence=0.95)


def test_cli_exit_codes(tmp_path, tiny_imagefolder, tiny_checkpoint, capsys):
    from moleport.cli import main

    assert main(["evaluate", str(tiny_checkpoint), "--data", str(tiny_imagefolder), "--out", str(tmp_path / "c"),
                 "--bootstrap", "20"]) == 0
    assert (tmp_path / "c" / "evaluation.json").is_file()
    assert main(["evaluate", str(tiny_checkpoint), "--data", str(tiny_imagefolder), "--out", str(tmp_path / "d"),
                 "--target-sensitivity", "0.95"]) == 2
    assert "manifest" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_checkpoint), "--data", str(tiny_imagefolder), "--out", str(tmp_path / "e"),
                 "--sensitivity-confidence", "0.95"]) == 2
    assert "--sensitivity-confidence need --target-sensitivity" in capsys.readouterr().err


def _tiny_manifest(root, tmp_path):
    from moleport.data.manifest import Item, Manifest

    items = []
    for label in ("melanoma", "nevus"):
        for i, f in enumerate(sorted((root / label).iterdir())):
            split = ("val", "test")[i % 2]
            items.append(Item(file=str(f), sha256=f"{label}{i}", label=label, split=split,
                              lesion_id=f"{label}-L{i // 4}"))
    return Manifest(items=tuple(items)).save(tmp_path / "manifest.json")


def test_operating_point_report_end_to_end(tmp_path, tiny_checkpoint, monkeypatch):
    from moleport.cli import main
    from moleport.spec import ModelSpec

    monkeypatch.setenv("MOLEPORT_CACHE", str(tmp_path / "cache"))
    root = make_imagefolder(tmp_path / "ham", n_per_class=8, seed=5)
    ext = make_imagefolder(tmp_path / "ext", n_per_class=3, seed=6)
    manifest = _tiny_manifest(root, tmp_path)
    out = tmp_path / "op"
    assert main(["evaluate", str(tiny_checkpoint), "--data", str(manifest), "--target-sensitivity", "0.9",
                 "--external", str(ext), "--calibrate", "--bootstrap", "30", "--out", str(out)]) == 0
    rep = json.loads((out / "operating_point.json").read_text())
    assert rep["operating_point"]["chosen_on"] == "val" and rep["operating_point"]["val"]["sensitivity"] >= 0.9
    assert set(rep["results"]) == {"test", "external-ext"} and rep["results"]["test"]["n"] == 8
    assert (out / "test" / "evaluation.json").is_file() and (out / "external-ext" / "roc.png").is_file()
    spec = ModelSpec.load(out / "spec_with_threshold.json")
    t = rep["operating_point"]["temperature"]
    assert spec.threshold == pytest.approx(t["calibrated_threshold"])
    assert spec.temperature == pytest.approx(t["temperature"])  # the tiny checkpoint's own temperature is 1
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # val and test through the shared split cache


def test_unknown_colour_constancy_in_a_bundle_spec_is_refused(tmp_path, tiny_imagefolder):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.onnx").write_bytes(b"not used")
    from moleport.spec import ModelSpec

    spec = {**ModelSpec("mobilenet").to_dict(), "color_constancy": "retinex"}
    (bundle / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(EvaluationError, match="color_constancy"):
        evaluate_model(bundle / "model.onnx", tiny_imagefolder, tmp_path / "o", n_boot=10)


def test_an_ensemble_averages_the_logits_of_its_members(tmp_path, tiny_imagefolder, tiny_checkpoint, capsys):
    import torch

    from moleport.cli import main
    from moleport.evaluate.dataset import load_pixels, open_eval_items
    from moleport.evaluate.predictors import load_predictor
    from moleport.models import build_model
    from moleport.models.checkpoint import save_checkpoint
    from moleport.spec import ModelSpec

    torch.manual_seed(1)
    other = save_checkpoint(tmp_path / "other.pt", build_model("mobilenet_v2").eval(), ModelSpec("mobilenet_v2"),
                            manifest_sha256=None)
    x = load_pixels(open_eval_items(tiny_imagefolder), 224)
    a, b = (load_predictor(m).predict(x) for m in (tiny_checkpoint, other))
    ens = load_predictor([tiny_checkpoint, other])
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    np.testing.assert_allclose(logit(ens.predict(x)), (logit(a) + logit(b)) / 2, rtol=1e-6, atol=1e-6)
    assert ens.spec.architecture == "ensemble(mobilenet, mobilenet_v2)" and ens.kind == "ensemble of 2"
    out = tmp_path / "e"
    args = ["evaluate", str(tiny_checkpoint), str(other), "--data", str(tiny_imagefolder), "--out", str(out)]
    assert main(args + ["--bootstrap", "20"]) == 2 and "no threshold of its own" in capsys.readouterr().err
    assert main(args + ["--bootstrap", "20", "--threshold", "0.5"]) == 0
    assert json.loads((out / "evaluation.json").read_text())["model"]["architecture"].startswith("ensemble(")


def test_tta_averages_the_logits_of_the_views(tmp_path, tiny_imagefolder, tiny_checkpoint, capsys):
    from moleport.cli import main
    from moleport.evaluate.dataset import load_pixels, open_eval_items
    from moleport.evaluate.predictors import load_predictor
    from moleport.preprocess import tta_views

    x = load_pixels(open_eval_items(tiny_imagefolder), 224)
    plain = load_predictor(tiny_checkpoint)
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    for rule, n in (("flips2", 2), ("flips4", 4), ("dihedral8", 8)):
        views = tta_views(x, rule)
        assert len(views) == n
        expected = np.mean([logit(plain.predict(v)) for v in views], axis=0)
        tta = load_predictor(tiny_checkpoint, tta=rule)
        np.testing.assert_allclose(logit(tta.predict(x)), expected, rtol=1e-6, atol=1e-6)
        assert tta.kind == f"checkpoint + test-time augmentation {rule}"
    # a runner that scores the top-left pixel sees a different image in each view: the mean is not the plain score
    corner = type("Corner", (), {"predict": lambda self, v: 1 / (1 + np.exp(-(v[:, 0, 0, 0] - 0.5) * 8))})()
    ramp = np.linspace(0, 1, 224, dtype=np.float32)
    img = np.broadcast_to(ramp[None, :, None, None] * ramp[None, None, :, None], (1, 224, 224, 3)).copy()
    from moleport.evaluate.predictors import TtaRunner

    assert not np.allclose(TtaRunner(corner, "dihedral8").predict(img), corner.predict(img))
    np.testing.assert_allclose(logit(TtaRunner(corner, "flips2").predict(img)), np.mean(
        [logit(corner.predict(v)) for v in tta_views(img, "flips2")], axis=0), rtol=1e-6)
    out = tmp_path / "tta"
    args = ["evaluate", str(tiny_checkpoint), "--data", str(tiny_imagefolder), "--out", str(out), "--bootstrap", "20"]
    assert main(args + ["--tta", "dihedral8"]) == 0
    assert json.loads((out / "evaluation.json").read_text())["model"]["kind"].endswith("augmentation dihedral8")
    with pytest.raises(SystemExit):
        main(args + ["--tta", "rot3"])
    assert "invalid choice: 'rot3'" in capsys.readouterr().err
