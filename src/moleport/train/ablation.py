"""Generalisation ablation on HAM10000 under a fixed CPU budget (issue 8, experiment 4).

Variants (each adds one thing to the previous, except ``a``):

- ``a_scratch``: MobileNet (V1, Keras layout) from random weights, every layer trained;
- ``b_imagenet``: ImageNet weights (../shared/weights), the stem frozen (eval-mode BatchNorm),
  the last blocks + head trained;
- ``c_augment``: ``b`` + augmentation (8 flips/90-degree rotations from ``moleport.train.data.augment``,
  per-image brightness/contrast/saturation jitter ±20 %);
- ``d_sog``: ``c`` + Shades-of-Gray colour constancy (the ModelSpec option ``shades-of-gray-p6``, applied
  by :func:`moleport.preprocess.normalize_batch` to every image: train, val, test, external).

Training is step-based with a wall-clock budget and an optional image-step cap (batches drawn with
50 % melanoma), because the 2 shared CPU cores allow only a few thousand image-steps per run. Then
the threshold is chosen on VAL for the target sensitivity, and test (in-distribution, lesion-grouped
split) and the external ISIC set are evaluated at it with bootstrap CIs. Nothing is tuned on the
external set.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from torch import nn

from moleport.argtypes import add_dataclass_arguments, cli
from moleport.preprocess import melanoma_probability, normalize_batch
from moleport.procstate import torch_threads
from moleport.spec import SHADES_OF_GRAY as SOG_NAME
from moleport.spec import ModelSpec
from moleport.train.data import augment as dihedral
from moleport.train.data import colour_jitter
from moleport.train.loop import make_step_fn

VARIANTS = MappingProxyType({
    "a_scratch": dict(weights=None, freeze_blocks=0, augment=False, color_constancy=None, lr=1e-3),
    "b_imagenet": dict(weights="imagenet", freeze_blocks=10, augment=False, color_constancy=None, lr=3e-4),
    "c_augment": dict(weights="imagenet", freeze_blocks=10, augment=True, color_constancy=None, lr=3e-4),
    "d_sog": dict(weights="imagenet", freeze_blocks=10, augment=True, color_constancy=SOG_NAME, lr=3e-4),
})


@dataclass(frozen=True)
class AblationConfig:
    variant: str
    weights: str | None
    freeze_blocks: int  # features[:freeze_blocks] frozen (no grad, eval-mode BN); 0 = train all
    augment: bool
    color_constancy: str | None
    lr: float
    budget_s: float = field(default=420.0, metadata=cli("training wall-clock seconds"))
    max_images: int | None = field(default=None, metadata=cli(  # whichever of the two limits comes first
        "stop after this many training image-steps"))
    batch_size: int = 32
    val_nevi: int = field(default=400, metadata=cli(  # the threshold depends on melanomas only
        "val: every melanoma + this many nevi"))
    target_sensitivity: float = 0.95
    seed: int = field(default=0, metadata=cli("seed of weights, batches and the val subset"))
    arch: str = "mobilenet"

    @classmethod
    def of(cls, variant: str, **overrides) -> "AblationConfig":
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
        return cls(variant=variant, **{**VARIANTS[variant], **overrides})


def batch_input(x_u8: np.ndarray, spec: ModelSpec, augment: bool) -> torch.Tensor:
    """uint8 NHWC -> normalised NCHW; when asked, colour jitter ±20 % and a random flip/rotation
    (the training loop's own augmentations, :mod:`moleport.train.data`)."""
    x = torch.from_numpy(np.array(x_u8, copy=not x_u8.flags.writeable, order="C"))  # no read-only memmap view
    if not augment:
        return normalize_batch(x, spec)
    return dihedral(normalize_batch(colour_jitter(x, 0.2), spec))


def sample_batch(y: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a batch with half melanoma, half nevus (with replacement across steps)."""
    mel, nev = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    half = batch_size // 2
    return np.concatenate([rng.choice(mel, half), rng.choice(nev, batch_size - half)])


def train_budgeted(cfg: AblationConfig, x: np.ndarray, y: np.ndarray, spec: ModelSpec) -> tuple[nn.Module, list]:
    """Adam + BCE on one logit for ``cfg.budget_s`` seconds of wall clock; returns model and loss log."""
    from moleport.models import build_model, freeze_prefix, set_train_mode

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, cfg.weights)
    opt = torch.optim.Adam(freeze_prefix(model, cfg.freeze_blocks), lr=cfg.lr)
    step_fn = make_step_fn(model, opt, torch.device("cpu"), compile_=False, precision="fp32")  # the loop's own step
    rng = np.random.default_rng(cfg.seed)
    log, t0, step = [], time.perf_counter(), 0
    cap = cfg.max_images if cfg.max_images is not None else float("inf")
    while time.perf_counter() - t0 < cfg.budget_s and step * cfg.batch_size < cap:
        idx = np.sort(sample_batch(y, cfg.batch_size, rng))
        inp = batch_input(x[idx], spec, cfg.augment)
        set_train_mode(model, cfg.freeze_blocks)
        loss, _ = step_fn(inp, torch.from_numpy(y[idx].astype(np.float32)))
        step += 1
        if step % 10 == 0:
            log.append({"step": step, "images": step * cfg.batch_size, "loss": loss.item(),
                        "seconds": round(time.perf_counter() - t0, 1)})
    log.append({"step": step, "images": step * cfg.batch_size, "loss": loss.item(),
                "seconds": round(time.perf_counter() - t0, 1)})
    return model.eval(), log


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, spec: ModelSpec, batch: int = 64) -> np.ndarray:
    model.eval()
    out = [melanoma_probability(model(normalize_batch(np.ascontiguousarray(x[i:i + batch]), spec)).double(),
                                spec).reshape(-1) for i in range(0, len(x), batch)]
    return torch.cat(out).numpy()


def val_subset(y: np.ndarray, n_nevi: int, seed: int) -> np.ndarray:
    """Every melanoma of val and ``n_nevi`` nevi drawn with ``seed`` (sorted indices)."""
    rng = np.random.default_rng(seed + 1)
    nev = np.flatnonzero(y == 0)
    keep = rng.choice(nev, size=min(n_nevi, len(nev)), replace=False)
    return np.sort(np.concatenate([np.flatnonzero(y == 1), keep]))


def load_sets(manifest_path: Path, external: Path, cfg: AblationConfig, cache: Path) -> dict:
    """(items, pixels) for train / val subset / test / external (canonical uint8; colour constancy, when the
    variant has it, is the spec's and applied by ``normalize_batch``)."""
    from moleport.data.arrays import load_split
    from moleport.data.manifest import load_manifest
    from moleport.evaluate.dataset import EvalItem, load_pixels, open_eval_items

    m = load_manifest(manifest_path)
    sets = {}
    for split in ("train", "val", "test"):
        arr = load_split(m, split, 224, cache_dir=cache)
        items = [EvalItem(it.file, it.label, it.lesion_id, it.source) for it in m.split(split)]
        sets[split] = (items, arr.x, arr.y)
    keep = val_subset(sets["val"][2], cfg.val_nevi, cfg.seed)
    sets["val"] = ([sets["val"][0][i] for i in keep], sets["val"][1][keep], sets["val"][2][keep])
    ext_items = open_eval_items(external)
    sets["external"] = (ext_items, load_pixels(ext_items, 224), np.array([it.y for it in ext_items]))
    return sets


def run_variant(cfg: AblationConfig, manifest_path: Path, external: Path, out_dir: Path,
                cache: Path, n_boot: int = 1000) -> dict:
    """Train one variant, pick the threshold on val, evaluate test + external; write ``out_dir``.
    Runs on 2 torch threads; the caller's thread count comes back afterwards."""
    with torch_threads(2):
        return _run_variant(cfg, manifest_path, external, out_dir, cache, n_boot)


def _run_variant(cfg: AblationConfig, manifest_path: Path, external: Path, out_dir: Path,
                 cache: Path, n_boot: int) -> dict:
    from moleport.data.manifest import load_manifest
    from moleport.evaluate.evaluation import write_evaluation, write_json
    from moleport.evaluate.operating_point import choose_operating_point
    from moleport.evaluate.predictors import Predictor
    from moleport.models import get_architecture
    from moleport.models.checkpoint import save_checkpoint

    t0 = time.perf_counter()
    sets = load_sets(manifest_path, external, cfg, cache)
    arch = get_architecture(cfg.arch)
    spec = ModelSpec(cfg.arch, color_constancy=cfg.color_constancy, mean=arch.mean, std=arch.std)
    model, log = train_budgeted(cfg, np.asarray(sets["train"][1]), sets["train"][2], spec)
    p = {k: predict(model, sets[k][1], spec) for k in ("val", "test", "external")}
    op = choose_operating_point(sets["val"][2], p["val"], cfg.target_sensitivity)
    spec = spec.replace(threshold=float(op["threshold"]))
    ckpt = save_checkpoint(out_dir / "checkpoint.pt", model, spec, manifest_sha256=load_manifest(manifest_path).sha256,
                           history=log, run=asdict(cfg))
    pred = Predictor(spec, "checkpoint", ckpt, runner=None)
    res = {}
    for name in ("test", "external"):
        items = sets[name][0]
        r = write_evaluation(out_dir / name, items, p[name], pred, op["threshold"], n_boot=n_boot, seed=cfg.seed,
                             threshold_source=f"val (all melanomas + {cfg.val_nevi} nevi), sensitivity "
                                              f">= {cfg.target_sensitivity}",
                             data={"source": str(manifest_path if name == "test" else external), "split": name})
        res[name] = {k: r[k] for k in ("n", "counts", "auc", "auc_ci", "sensitivity", "sensitivity_ci",
                                       "specificity", "specificity_ci", "ece")}
    summary = {"config": asdict(cfg), "train_images_seen": log[-1]["images"], "train_steps": log[-1]["step"],
               "train_seconds": log[-1]["seconds"], "final_loss": log[-1]["loss"], "operating_point": op,
               "results": res, "total_seconds": round(time.perf_counter() - t0, 1), "checkpoint": str(ckpt)}
    write_json(out_dir / "ablation.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m moleport.train.ablation", description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("--manifest", required=True, help="lesion-grouped HAM split manifest .json")
    ap.add_argument("--external", required=True, help="external ImageFolder (evaluation only)")
    ap.add_argument("--out", required=True)
    tunable = add_dataclass_arguments(ap, AblationConfig, only=("budget_s", "max_images", "val_nevi", "seed"))
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--cache", default="artifacts/cache")
    a = ap.parse_args(argv)
    cfg = AblationConfig.of(a.variant, **{name: getattr(a, name) for name in tunable})
    s = run_variant(cfg, Path(a.manifest), Path(a.external), Path(a.out), Path(a.cache), a.bootstrap)
    print(json.dumps({k: s[k] for k in ("train_images_seen", "train_seconds", "operating_point", "results")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
