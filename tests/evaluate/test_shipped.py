"""The shipped artifact's clinical numbers reach the bundle's MODEL_CARD (pipeline.evaluate_shipped), and a
spec's colour constancy and temperature are reproduced by the exported graph run in its own runtime."""
import json

import numpy as np
import pytest

from eval_helpers import make_imagefolder


@pytest.fixture(scope="module")
def sog_bundle(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from moleport.export.bundle import export_bundle
    from moleport.models import build_model
    from moleport.models.checkpoint import save_checkpoint
    from moleport.spec import ModelSpec

    torch.manual_seed(1)
    root = tmp_path_factory.mktemp("ship")
    spec = ModelSpec("mobilenet", color_constancy="shades-of-gray-p6", temperature=2.5, threshold=0.3)
    ckpt = save_checkpoint(root / "sog.pt", build_model("mobilenet").eval(), spec, manifest_sha256=None)
    res = export_bundle(ckpt, root / "export", formats="onnx", name="sog")
    return ckpt, res


def test_exported_graph_reproduces_colour_constancy_and_temperature(sog_bundle, tmp_path):
    from moleport.evaluate.predictors import load_predictor

    ckpt, res = sog_bundle
    folder = make_imagefolder(tmp_path / "imgs", n_per_class=3)
    from moleport.evaluate.dataset import open_eval_items
    from moleport.preprocess import load_image

    x = np.stack([load_image(it.path, 224) for it in open_eval_items(folder)])
    ref = load_predictor(ckpt).predict(x)
    onnx = load_predictor(res.out_dir / "onnx" / "model_fp32.onnx").predict(x)
    assert np.abs(ref - onnx).max() < 1e-5
    spec = json.loads((res.out_dir / "spec.json").read_text())
    assert spec["color_constancy"] == "shades-of-gray-p6" and spec["temperature"] == 2.5
    assert "shades-of-gray-p6" in spec["export_input"]["color_constancy"]


def test_evaluate_shipped_fills_the_model_card(sog_bundle, tmp_path):
    from moleport.export.card import PERFORMANCE_HEADING, PERFORMANCE_PENDING
    from moleport.pipeline import evaluate_shipped, shipped_artifact

    _, res = sog_bundle
    card = (res.out_dir / "MODEL_CARD.md").read_text()
    assert PERFORMANCE_HEADING in card and PERFORMANCE_PENDING in card
    assert shipped_artifact(res.manifest, None) == "onnx/model_fp32.onnx"
    failed_parity = {"artifacts": {"onnx/model_fp32.onnx": {"passed": False}}}
    assert shipped_artifact(res.manifest, failed_parity) is None  # what failed parity is never evaluated as shipped
    assert evaluate_shipped(res.out_dir, res.manifest, failed_parity, None, (tmp_path,)) is None
    ext = make_imagefolder(tmp_path / "external-set", n_per_class=4)
    summary = evaluate_shipped(res.out_dir, res.manifest, None, None, (ext,), n_boot=50)
    row = summary["results"]["external-set"]
    assert row["kind"] == "external" and row["n"] == 8 and row["threshold"] == pytest.approx(0.3)
    card = (res.out_dir / "MODEL_CARD.md").read_text()
    assert PERFORMANCE_PENDING not in card
    assert "| external-set (external) | 8 (4/4) |" in card and "external AUC ≥ 0.85" in card
    assert "## Known limits" in card  # the sections after it survive
    assert (res.out_dir / "evaluation" / "external-set" / "evaluation.json").is_file()
    assert json.loads((res.out_dir / "evaluation" / "summary.json").read_text())["artifact"] == "onnx/model_fp32.onnx"
