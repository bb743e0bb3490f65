"""Training loop: a tiny run end to end, resume, config."""
import json

import pytest
import torch

from moleport.models.checkpoint import load_checkpoint
from moleport.train.config import ConfigError, RunConfig, get_run, load_runs
from moleport.train.loop import lr_at, train_run


def _cfg(tmp_path, **kw) -> RunConfig:
    base = dict(name="tiny", arch="mobilenet", epochs=2, batch_size=5, lr=1e-3, input_size=64,
                early_stop_train_acc=None, out_dir=tmp_path / "run", device="cpu")
    base.update(kw)
    return RunConfig(**base)


def test_tiny_run_writes_everything(tmp_path, tiny_manifest):
    run_dir = train_run(_cfg(tmp_path, augment=True, acquisition=0.5), tiny_manifest)
    for name in ("checkpoint.pt", "metrics.json", "confusion.png", "roc.png", "curves.png", "last.pt", "best.pt"):
        assert (run_dir / name).is_file(), name
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["labels"] == {"1": "melanoma", "0": "nevus"} and m["best_by"] == "validation accuracy"
    for split in ("val", "test"):
        assert m[split]["n"] == 6
        assert set(m[split]["at_threshold"]) >= {"clinical", "paper", "confusion_matrix", "auc"}
    loaded = load_checkpoint(run_dir / "checkpoint.pt", expected_arch="mobilenet")
    assert loaded.spec.threshold == pytest.approx(m["threshold"]["threshold"])
    assert m["threshold"]["chosen_on"] == "val" and m["threshold"]["sensitivity"] >= 0.95
    assert loaded.spec.input_size == 64 and loaded.meta["manifest_sha256"] == tiny_manifest.sha256
    best_val = max(h["val_acc"] for h in loaded.meta["history"])
    assert m["val"]["at_0.5"]["clinical"]["accuracy"] == pytest.approx(best_val)


def test_resume_continues_from_last_epoch(tmp_path, tiny_manifest, capsys):
    straight = train_run(_cfg(tmp_path, out_dir=tmp_path / "a"), tiny_manifest)
    train_run(_cfg(tmp_path, out_dir=tmp_path / "b", epochs=1), tiny_manifest)  # "interrupted" after epoch 1
    capsys.readouterr()
    resumed = train_run(_cfg(tmp_path, out_dir=tmp_path / "b", resume=True), tiny_manifest)
    assert "resuming after epoch 1" in capsys.readouterr().out
    a = load_checkpoint(straight / "last.pt")
    b = load_checkpoint(resumed / "last.pt")
    assert [h["epoch"] for h in b.meta["history"]] == [1, 2]
    assert b.meta["history"][0] == a.meta["history"][0] | {"seconds": b.meta["history"][0]["seconds"]}
    for k, v in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[k], v, msg=k)


def test_the_spec_carries_the_normalisation_of_the_architecture(tmp_path):
    from moleport.models.efficientnet_lite import LITE_MEAN, LITE_STD
    from moleport.spec import IMAGENET_MEAN
    from moleport.train.loop import _prepare

    _, _, spec = _prepare(_cfg(tmp_path, arch="efficientnet_lite0", freeze_blocks=12), torch.device("cpu"))
    assert (spec.architecture, spec.mean, spec.std) == ("efficientnet_lite0", LITE_MEAN, LITE_STD)
    assert _prepare(_cfg(tmp_path), torch.device("cpu"))[2].mean == IMAGENET_MEAN


def test_spec_options_travel_into_the_checkpoint(tmp_path, tiny_manifest):
    """colour constancy, calibration, colour jitter and a frozen prefix: the spec carries what the run trained with."""
    from moleport.preprocess import melanoma_probability

    cfg = _cfg(tmp_path, augment=True, jitter=0.2, freeze_blocks=4, color_constancy="shades-of-gray-p6", calibrate=True)
    run_dir = train_run(cfg, tiny_manifest)
    m = json.loads((run_dir / "metrics.json").read_text())
    loaded = load_checkpoint(run_dir / "checkpoint.pt")
    assert loaded.spec.color_constancy == "shades-of-gray-p6"
    assert m["calibration"]["fitted_on"] == "val"
    assert loaded.spec.temperature == pytest.approx(m["calibration"]["temperature"]) and loaded.spec.temperature > 0
    assert m["spec"]["temperature"] == loaded.spec.temperature
    # frozen blocks did not move: compare with the ImageNet-less initialisation of the same seed
    from moleport.models import build_model
    from moleport.train.loop import seed_everything
    seed_everything(cfg.seed)
    init = build_model("mobilenet").state_dict()
    trained = loaded.model.state_dict()
    frozen = [k for k in init if k.startswith("features.0.") and k.endswith("weight")]
    assert frozen and all(torch.equal(init[k], trained[k]) for k in frozen)
    head = [k for k in init if k.startswith("classifier") and k.endswith("weight")]
    assert head and not all(torch.equal(init[k], trained[k]) for k in head)
    assert melanoma_probability(torch.tensor([0.0]), loaded.spec).item() == pytest.approx(0.5)


def test_new_options_are_validated(tmp_path, tiny_manifest):
    with pytest.raises(ConfigError, match="color_constancy"):
        _cfg(tmp_path, color_constancy="retinex")
    with pytest.raises(ConfigError, match="jitter"):
        _cfg(tmp_path, jitter=1.5)
    with pytest.raises(ConfigError, match="freeze_blocks"):
        _cfg(tmp_path, freeze_blocks=-1)
    from moleport.train.loop import TrainError
    with pytest.raises(TrainError, match="features"):
        train_run(_cfg(tmp_path, arch="resnet50", freeze_blocks=2), tiny_manifest)
    with pytest.raises(TrainError, match=r"melanoma image\(s\); .* needs at least 59"):  # before any epoch
        train_run(_cfg(tmp_path, sensitivity_confidence=0.95), tiny_manifest)
    with pytest.raises(ConfigError, match="sensitivity_confidence"):
        _cfg(tmp_path, sensitivity_confidence=0.0)


def test_choose_threshold_with_confidence_records_the_lower_bound():
    import numpy as np

    from moleport.train.report import choose_threshold

    y = np.r_[np.ones(60, int), np.zeros(60, int)]
    p = np.r_[np.linspace(0.3, 1.0, 60), np.linspace(0.0, 0.5, 60)]
    thr = choose_threshold(y, p, 0.95, 0.95)  # 60 melanomas: all must be caught (0.05^(1/60) = 0.9513)
    assert thr["threshold"] == pytest.approx(0.3) and thr["sensitivity"] == 1.0 and thr["chosen_on"] == "val"
    assert thr["sensitivity_lower_bound"] == pytest.approx(0.05 ** (1 / 60))
    assert choose_threshold(y, p, 0.95)["threshold"] > 0.3  # the point rule lets 3 of 60 go


def test_early_stop_rule(tmp_path, tiny_manifest):
    run_dir = train_run(_cfg(tmp_path, epochs=5, early_stop_train_acc=1e-6), tiny_manifest)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["stopped_early"] and m["epochs_run"] == 1


def test_table2_as_data():
    runs = load_runs()
    paper = {n: r for n, r in runs.items() if r.paper}
    assert len(paper) == 7
    assert (paper["mobilenet-bs8"].batch_size, paper["mobilenet-bs8"].lr, paper["mobilenet-bs8"].weights) == (8, 2e-6, "imagenet")
    assert paper["resnet50-e60"].epochs == 60 and paper["alexnet-bs16"].paper_accuracy == 0.6767
    assert all(r.early_stop_train_acc == 0.95 and not r.augment for r in paper.values())
    quick = get_run("quick")
    assert not quick.paper and quick.arch == "mobilenet" and quick.weights in (None, "none")
    with pytest.raises(ConfigError, match="quick"):
        get_run("nope")


def test_lr_schedules():
    c = RunConfig(name="x", arch="mobilenet", epochs=1, batch_size=1, lr=1e-3, schedule="onecycle")
    lrs = [lr_at(c, s, 100) for s in range(100)]
    assert max(lrs) == pytest.approx(1e-3, rel=1e-2) and lrs[0] < 1e-4 and lrs[-1] < 1e-6
    assert lr_at(c.replace(schedule="constant"), 50, 100) == 1e-3


def test_a_tta_run_chooses_its_threshold_through_the_views(tmp_path, tiny_manifest):
    """--tta: the checkpoint's spec carries the rule, and its val threshold is one of the view-averaged P(melanoma)
    the PyTorch reference (and every export) computes (that the views change the logits: tests/train/test_data.py)."""
    import numpy as np

    from moleport.data.arrays import load_split
    from moleport.runtimes.torch_ref import TorchReferenceRunner

    with pytest.raises(ConfigError, match="tta"):
        _cfg(tmp_path, tta="rot3")
    run_dir = train_run(_cfg(tmp_path, epochs=1, tta="dihedral8"), tiny_manifest)
    m = json.loads((run_dir / "metrics.json").read_text())
    loaded = load_checkpoint(run_dir / "checkpoint.pt")
    assert loaded.spec.tta == "dihedral8" and m["spec"]["tta"] == "dihedral8"
    val = load_split(tiny_manifest, "val", size=64)
    ref = TorchReferenceRunner(run_dir / "checkpoint.pt")
    ref.load()
    p = ref.predict(np.asarray(val.x))
    y = np.asarray(val.y)
    thr = loaded.spec.threshold  # the smallest val melanoma P(melanoma) at this size: one of the reference's values
    assert np.abs(p[y == 1] - thr).min() < 1e-6 and (p[y == 1] >= thr - 1e-6).mean() >= 0.95
    assert np.quantile(p, 0.5) == pytest.approx(m["val"]["probability"]["median"], abs=1e-6)
