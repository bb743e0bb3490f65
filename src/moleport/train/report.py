"""End of a run: evaluate the best weights on val and test, choose the threshold on VAL, write
``checkpoint.pt``, ``metrics.json``, ``confusion.png``, ``roc.png`` and ``curves.png``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moleport import metrics as M
from moleport.jsonio import write_text_atomic
from moleport.models.checkpoint import save_checkpoint
from moleport.preprocess import melanoma_probability
from moleport.spec import LABELS, ModelSpec
from moleport.train.plots import plot_confusion, plot_curves, plot_roc

#: metrics.json ``labels``: class index (the model's output order, :data:`moleport.spec.LABELS`) -> name.
LABEL_NAMES = {"1": LABELS[1], "0": LABELS[0]}


def write_json(path: Path, data: Any) -> Path:
    """Atomic JSON write (NaN written as null)."""
    text = json.dumps(_nan_to_none(data), indent=2, sort_keys=False)
    return write_text_atomic(path, text + "\n", mode=0o644)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def prob_summary(p: np.ndarray) -> dict[str, float]:
    q = np.quantile(p, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"min": float(p.min()), "p05": float(q[0]), "p25": float(q[1]), "median": float(q[2]),
            "p75": float(q[3]), "p95": float(q[4]), "max": float(p.max()),
            "deciles_filled": int(len(np.unique(np.minimum((p * 10).astype(int), 9))))}


def choose_threshold(y_val: np.ndarray, p_val: np.ndarray, target: float,
                     confidence: float | None = None) -> dict[str, Any]:
    """Threshold on VAL for the target melanoma sensitivity (with ``confidence``: for a Clopper-Pearson lower bound
    >= target, :func:`moleport.metrics.threshold_for_sensitivity`); 0.5 with a note when val has no melanoma, or
    too few for the confidence."""
    try:
        return {**M.threshold_for_sensitivity(y_val, p_val, target, confidence), "chosen_on": "val"}
    except ValueError as exc:
        return {"threshold": 0.5, "target_sensitivity": target, "confidence": confidence, "chosen_on": "default",
                "note": str(exc)}


def fit_spec_temperature(y_val: np.ndarray, logits_val: torch.Tensor) -> dict[str, Any] | None:
    """Temperature fitted on VAL by NLL (:func:`moleport.calibration.fit_temperature`) with the ECE before and
    after; ``None`` (with nothing changed) when val lacks one of the classes."""
    from moleport.calibration import fit_temperature, reliability

    p_raw = torch.sigmoid(logits_val).numpy()
    try:
        fit = fit_temperature(y_val, p_raw)
    except ValueError as exc:
        print(f"calibration skipped: {exc}", flush=True)
        return None
    p_cal = torch.sigmoid(logits_val / fit["temperature"]).numpy()  # fit_temperature bounds T to [0.05, 20]
    return {**fit, "fitted_on": "val", "val_ece_before": reliability(y_val, p_raw)["ece"],
            "val_ece_after": reliability(y_val, p_cal)["ece"]}


def split_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    return {"n": int(len(y)), "n_melanoma": int(y.sum()), "n_nevus": int(len(y) - y.sum()),
            "auc": M.roc(y, p)["auc"], "at_0.5": M.evaluate(y, p, 0.5),
            "at_threshold": M.evaluate(y, p, threshold), "probability": prob_summary(p)}


def finish_run(cfg, model: torch.nn.Module, spec: ModelSpec, data: dict, device: torch.device, state,
               manifest_sha: str, timing: dict[str, float]) -> Path:
    """Evaluate best weights, store the VAL threshold in the spec, write checkpoint/metrics/figures."""
    from moleport.train.data import predict_logits

    run_dir = cfg.run_dir
    # best weights were chosen on single-view val accuracy; the final pass, temperature and threshold go through
    # the spec's test-time augmentation (the checkpoint's spec carries it into every export)
    spec = spec.replace(tta=getattr(cfg, "tta", None))
    logits = {s: predict_logits(model, data[s], spec, device).double() for s in ("val", "test")}
    ys = {s: data[s].labels for s in ("val", "test")}
    calibration = fit_spec_temperature(ys["val"], logits["val"]) if cfg.calibrate else None
    if calibration is not None:
        spec = spec.replace(temperature=calibration["temperature"])
    probs = {s: melanoma_probability(logits[s], spec).numpy() for s in ("val", "test")}
    thr = choose_threshold(ys["val"], probs["val"], cfg.target_sensitivity,
                           getattr(cfg, "sensitivity_confidence", None))
    spec = spec.replace(threshold=float(thr["threshold"]))
    result = {
        "run": cfg.name, "architecture": cfg.arch, "paper_run": cfg.paper, "paper_accuracy": cfg.paper_accuracy,
        "manifest_sha256": manifest_sha, "labels": LABEL_NAMES,
        "conventions": {"clinical": "melanoma is the positive class", "paper": "nevus is the positive class"},
        "best_epoch": state.best_epoch, "best_by": "validation accuracy", "epochs_run": state.epoch,
        "stopped_early": state.stopped_early, **timing, "threshold": thr, "calibration": calibration,
        "spec": spec.to_dict(),
        "val": split_metrics(ys["val"], probs["val"], spec.threshold),
        "test": split_metrics(ys["test"], probs["test"], spec.threshold),
        "config": cfg.to_dict(),
    }
    save_checkpoint(run_dir / "checkpoint.pt", model, spec, manifest_sha256=manifest_sha,
                    metrics=_nan_to_none({k: result[k] for k in ("val", "test", "threshold", "calibration")}), history=state.history,
                    epoch=state.best_epoch, run=cfg.to_dict(),
                    extra={"epochs_run": state.epoch, "stopped_early": state.stopped_early, **timing})
    write_json(run_dir / "metrics.json", result)
    plot_confusion(run_dir / "confusion.png", result, cfg.name)
    plot_roc(run_dir / "roc.png", ys, probs, spec.threshold, cfg.name)
    plot_curves(run_dir / "curves.png", state.history, state.best_epoch, cfg.name)
    print(f"[{cfg.name}] best epoch {state.best_epoch}: val acc {result['val']['at_0.5']['clinical']['accuracy']:.4f}"
          f" | test acc {result['test']['at_0.5']['clinical']['accuracy']:.4f} AUC {result['test']['auc']:.4f}"
          f" | threshold {spec.threshold:.4f} (val sensitivity {thr.get('sensitivity', float('nan')):.3f}"
          + (f", lower bound {thr['sensitivity_lower_bound']:.3f}" if "sensitivity_lower_bound" in thr else "") + ")"
          f" -> {run_dir}", flush=True)
    return run_dir
