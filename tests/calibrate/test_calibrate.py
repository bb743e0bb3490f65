"""``moleport calibrate`` (issue #16): a site's labelled images choose the threshold of a NEW, re-sealed, re-judged
bundle; the input bundle is never touched; too few melanomas is refused with the numbers.

Every file is made here: a random-weight MobileNet (BatchNorm statistics set on brightness-shifted noise so that its
output depends on the image), its real ONNX-only export with a tiny split manifest, parity run on it once, and a
synthetic site folder (30 melanoma, 20 nevus images).
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moleport.calibrate.site import min_melanomas, split_halves
from moleport.cli import main as moleport_main
from moleport.evaluate.dataset import EvalItem, labels_of, open_eval_items
from moleport.evaluate.errors import EvaluationError
from moleport.runtimes.bundle import load_verified, manifest_digest

ART = "onnx/model_fp32.onnx"


def _model():
    import torch

    from moleport.models import build_model

    torch.manual_seed(0)
    model = build_model("mobilenet")
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        model(torch.randn(16, 3, 224, 224, generator=g) + torch.linspace(-2, 2, 16).view(16, 1, 1, 1))
    return model.eval()


def _png(path: Path, rng, mean: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(rng.normal(mean, 40, (40, 48, 3)), 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(bundle folder, checkpoint, site folder)."""
    from moleport.data.manifest import Item, Manifest
    from moleport.export.bundle import export_bundle
    from moleport.models.checkpoint import save_checkpoint
    from moleport.parity.harness import run_parity
    from moleport.preprocess import load_image
    from moleport.spec import ModelSpec

    root = tmp_path_factory.mktemp("calibrate")
    mp = pytest.MonkeyPatch()
    mp.setenv("MOLEPORT_CACHE", str(root / "cache"))
    rng = np.random.default_rng(0)
    ckpt = save_checkpoint(root / "ckpt.pt", _model(), ModelSpec("mobilenet"), manifest_sha256=None)
    items = []
    for i in range(8):
        p = _png(root / "split" / f"s{i}.png", rng, 90 + 10 * i)
        items.append(Item(file=str(p), sha256=hashlib.sha256(load_image(p).tobytes()).hexdigest(),
                          label="melanoma" if i % 2 else "nevus", split="test" if i < 6 else "train",
                          lesion_id=f"L{i}", source="t"))
    split = Manifest(items=tuple(items), seed=0, source={"kind": "calibrate-test"}).save(root / "split.json")
    res = export_bundle(ckpt, root / "export", manifest=split, formats="onnx", name="b", calib_n=2)
    assert res.ok
    assert run_parity(res.out_dir, latency_runs=0)["passed"]
    for label, mean, n in (("melanoma", 90, 30), ("nevus", 170, 20)):
        for i in range(n):
            _png(root / "site" / label / f"{label}{i:02d}.png", rng, mean)
    yield res.out_dir, ckpt, root / "site"
    mp.undo()


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _calibrate(bundle: Path, site: Path, out: Path, *extra: str, target: str = "0.8") -> int:
    return moleport_main(["calibrate", str(bundle), "--data", str(site), "--target-sensitivity", target,
                          "--artifact", ART, "--out", str(out), "--bootstrap", "100", "--latency-runs", "0", *extra])


@pytest.fixture(scope="module")
def calibrated(world, tmp_path_factory):
    """(input digests before, output bundle) of one split-half calibration."""
    bundle, _, site = world
    before = _digests(bundle)
    out = tmp_path_factory.mktemp("out") / "site-b"
    assert _calibrate(bundle, site, out, "--split-half", "0", "--site", "clinic-x") == 0
    return before, out


def test_threshold_reaches_the_target_on_the_calibration_half(world, calibrated):
    from moleport.evaluate.evaluation import predict_with
    from moleport.evaluate.predictors import load_predictor

    _, out = calibrated
    rep = json.loads((out / "calibration.json").read_text())
    cal, _ = split_halves(open_eval_items(world[2]), 0)
    assert sorted(Path(it.path).relative_to(world[2]).as_posix() for it in cal) == sorted(rep["data"]["calibration_files"])
    pred = load_predictor(out / ART)  # the written bundle passes the verifying predictor
    assert pred.spec.threshold == pytest.approx(rep["threshold_after"]) and rep["threshold_before"] == 0.5
    p, y = predict_with(pred, cal), labels_of(cal)
    sens = float(np.mean(p[y == 1] >= pred.spec.threshold))
    assert sens >= 0.8 and rep["results"]["calibration"]["calibrated"]["sensitivity"] == pytest.approx(sens)
    assert rep["counts"]["calibration"]["melanoma"] == 15 and rep["counts"]["calibration"]["nevus"] == 10
    lo, hi = rep["results"]["calibration"]["calibrated"]["specificity_ci"]
    assert lo <= rep["results"]["calibration"]["calibrated"]["specificity"] <= hi


def test_the_written_bundle_is_sealed_rejudged_and_the_input_untouched(world, calibrated):
    bundle, _, _ = world
    before, out = calibrated
    assert _digests(bundle) == before
    b = load_verified(out, parity_seal=True)
    rep = json.loads((out / "calibration.json").read_text())
    assert b.spec.threshold == pytest.approx(rep["threshold_after"])
    assert b.manifest["spec"]["threshold"] == pytest.approx(rep["threshold_after"])
    assert b.manifest["site_calibration"]["site"] == "clinic-x"
    assert {"calibration.json", "calibration.md", "spec.json", "MODEL_CARD.md"} <= {d["path"] for d in b.manifest["documents"]}
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and parity["threshold"] == pytest.approx(rep["threshold_after"])
    assert parity["manifest_sha256"] == manifest_digest(out) and rep["parity"]["rerun"] and rep["parity"]["passed"]
    assert rep["parity"]["ok"] and rep["parity"]["regressed"] == [] and rep["parity"]["artifacts"] == {ART: True}
    assert "## Site calibration" in (out / "MODEL_CARD.md").read_text()


def test_the_check_half_is_reported_at_both_thresholds(calibrated):
    _, out = calibrated
    rep = json.loads((out / "calibration.json").read_text())
    chk = rep["results"]["check"]
    assert chk["original"]["threshold"] == 0.5 and chk["calibrated"]["threshold"] == pytest.approx(rep["threshold_after"])
    assert chk["calibrated"]["n"] == 25 and "specificity_ci" in chk["original"]
    md = (out / "calibration.md").read_text()
    assert "| check part | original 0.5000 |" in md and f"| check part | calibrated {rep['threshold_after']:.4f} |" in md


def test_a_tampered_calibrated_bundle_is_refused(calibrated, tmp_path, world, capsys):
    _, out = calibrated
    bad = Path(shutil.copytree(out, tmp_path / "bad"))
    spec = json.loads((bad / "spec.json").read_text())
    spec["threshold"] = 0.01
    (bad / "spec.json").write_text(json.dumps(spec))
    from moleport.evaluate.predictors import load_predictor

    with pytest.raises(EvaluationError, match="spec.json"):
        load_predictor(bad / ART)
    assert _calibrate(bad, world[2], tmp_path / "again") == 2
    assert "refusing the bundle" in capsys.readouterr().err and not (tmp_path / "again").exists()


def test_too_few_melanomas_is_refused_with_the_numbers(world, tmp_path, capsys):
    bundle, _, site = world
    assert _calibrate(bundle, site, tmp_path / "o", "--split-half", "0", target="0.95") == 2
    err = capsys.readouterr().err
    assert "15 melanoma images, 59 needed" in err and "add 44 more" in err and not (tmp_path / "o").exists()


def test_min_melanomas_is_the_clopper_pearson_rule():
    for target, need in ((0.95, 59), (0.9, 29), (0.99, 299), (0.8, 14)):
        assert min_melanomas(target) == need
        assert 0.05 ** (1 / need) >= target > 0.05 ** (1 / (need - 1))
        assert need >= math.ceil(1 / (1 - target))


@pytest.mark.parametrize("extra, message", [
    (("--refit-temperature",), "inside every exported graph"),
    (("--ckpt", "/nonexistent/ckpt.pt"), "reference checkpoint /nonexistent/ckpt.pt"),
])
def test_options_are_refused_before_anything_is_written(world, tmp_path, capsys, extra, message):
    assert _calibrate(world[0], world[2], tmp_path / "o", *extra) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_an_existing_out_needs_force_and_target_must_be_inside_0_1(world, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    assert _calibrate(world[0], world[2], tmp_path / "o") == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        _calibrate(world[0], world[2], tmp_path / "p", target="1.0")
    assert exc.value.code == 2 and "outside (0, 1)" in capsys.readouterr().err


def test_skip_parity_keeps_the_input_verdicts_resealed(world, tmp_path):
    out = tmp_path / "o"
    assert _calibrate(world[0], world[2], out, "--skip-parity", "--check", str(world[2])) == 0
    b = load_verified(out, parity_seal=True)
    parity = json.loads((out / "parity.json").read_text())
    assert parity["threshold"] == 0.5 and b.spec.threshold != 0.5  # verdicts as judged on the input
    assert "NOT re-run" in (out / "calibration.md").read_text()


def test_split_halves_keeps_lesions_together_and_balances_classes():
    items = [EvalItem(f"/x/{i}.png", "melanoma" if i < 40 else "nevus", f"L{i // 2}") for i in range(100)]
    cal, chk = split_halves(items, 3)
    lesions = lambda part: {it.lesion_id for it in part}  # noqa: E731
    assert not lesions(cal) & lesions(chk) and len(cal) + len(chk) == 100
    assert sum(it.label == "melanoma" for it in cal) == 20 and sum(it.label == "melanoma" for it in chk) == 20
    assert split_halves(items, 3) == (cal, chk) and split_halves(items, 4) != (cal, chk)


def test_parity_outcome_rejects_optional_precisions_and_fails_on_required_ones():
    from moleport.calibrate.site import parity_outcome

    def payload(**passed):
        arts = {f"x/model_{p}": {"passed": ok, "precision": p} for p, ok in passed.items()}
        return {"passed": all(passed.values()), "violations": [], "artifacts": arts,
                "ship": {"android": {"default": "x/model_fp16"}}}

    before = {"x/model_fp32": True, "x/model_fp16": True, "x/model_w8": True, "x/model_int8": False}
    w8_lost = parity_outcome(payload(fp32=True, fp16=True, w8=False, int8=False), before, "x/model_fp16")
    assert w8_lost["ok"] and w8_lost["regressed"] == [] and w8_lost["newly_rejected"] == ["x/model_w8"]
    fp32_lost = parity_outcome(payload(fp32=False, fp16=True, w8=True, int8=False), before, "x/model_fp16")
    assert not fp32_lost["ok"] and fp32_lost["regressed"] == ["x/model_fp32"]
    own_lost = parity_outcome(payload(fp32=True, fp16=False, w8=True, int8=False), before, "x/model_fp16")
    assert not own_lost["ok"]


def test_confidence_lowers_the_threshold_to_a_lower_bound_at_the_target(world, calibrated, tmp_path, capsys):
    point = json.loads((calibrated[1] / "calibration.json").read_text())
    out = tmp_path / "conf"
    assert _calibrate(world[0], world[2], out, "--split-half", "0", "--confidence", "0.95", "--skip-parity") == 0
    rep = json.loads((out / "calibration.json").read_text())
    cal = rep["results"]["calibration"]["calibrated"]
    # 15 calibration melanomas, target 0.8: only all 15 caught gives a 95 % lower bound >= 0.8 (0.05^(1/15) = 0.819)
    assert rep["confidence"] == 0.95 and cal["sensitivity"] == 1.0
    assert rep["calibration_lower_bound"] == pytest.approx(0.05 ** (1 / 15), abs=1e-9)
    assert rep["threshold_after"] <= point["threshold_after"] and rep["min_melanomas"] == 14
    assert "0.95 Clopper-Pearson lower bound on its sensitivity >= the target: 0.819" in (out / "calibration.md").read_text()
    assert load_verified(out, parity_seal=True).manifest["site_calibration"]["confidence"] == 0.95
    # at 99 % confidence 15 melanomas are too few: ln(0.01) / ln(0.8) -> 21 needed, refused before writing
    assert _calibrate(world[0], world[2], tmp_path / "c99", "--split-half", "0", "--confidence", "0.99") == 2
    err = capsys.readouterr().err
    assert "15 melanoma images, 21 needed" in err and "99%" in err and not (tmp_path / "c99").exists()
