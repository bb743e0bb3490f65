"""``moleport evaluate``: one model on one data set -> evaluation.json, figures and reports."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from moleport import metrics
from moleport.evaluate.bootstrap import clinical_cis, group_ids
from moleport.calibration import reliability
from moleport.evaluate.dataset import EvalItem, labels_of, open_eval_items, source_pixels
from moleport.evaluate.errors import EvaluationError
from moleport.evaluate.predictors import Predictor, load_predictor
from moleport.jsonio import write_text_atomic


def summarize(y, p, threshold: float, lesion_ids=None, n_boot: int = 1000, seed: int = 0,
              n_bins: int = 10) -> dict[str, Any]:
    """Every number of evaluation.json from labels, P(melanoma) and the threshold."""
    yt = np.asarray(y).astype(int)
    ps = np.asarray(p, dtype=np.float64)
    if len(yt) == 0:
        raise EvaluationError("no predictions to summarise")
    groups, grouping = group_ids(lesion_ids, len(yt))
    cis = clinical_cis(yt, ps, threshold, groups=groups, n_boot=n_boot, seed=seed)
    full = metrics.evaluate(yt, ps, threshold)
    calib = reliability(yt, ps, n_bins)
    return {
        "n": int(len(yt)),
        "counts": {"melanoma": int(yt.sum()), "nevus": int(len(yt) - yt.sum())},
        "n_resampling_units": int(len(np.unique(groups))),
        "threshold": float(threshold),
        "auc": cis["auc"]["point"], "auc_ci": cis["auc"]["ci"],
        "sensitivity": cis["sensitivity"]["point"], "sensitivity_ci": cis["sensitivity"]["ci"],
        "specificity": cis["specificity"]["point"], "specificity_ci": cis["specificity"]["ci"],
        "bootstrap": {"n_boot": int(n_boot), "seed": int(seed), "grouping": grouping, "method": "percentile",
                      "level": 0.95, "n_valid": {k: v["n_valid"] for k, v in cis.items()}},
        "positive_class": "melanoma",
        "metrics": full,
        "calibration": calib, "ece": calib["ece"],
        "roc": {k: v for k, v in metrics.roc(yt, ps).items() if k in ("fpr", "tpr", "thresholds")},
    }


def json_safe(obj: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, so the JSON is standard."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json(path: Path, data: dict) -> Path:
    """Atomic JSON write (standard JSON: NaN becomes null)."""
    return write_text_atomic(path, json.dumps(json_safe(data), indent=1, allow_nan=False))


def predict_with(pred: Predictor, items: list[EvalItem], source: str | Path | None = None,
                 split: str | None = None) -> np.ndarray:
    """P(melanoma) of ``items`` at the predictor's input size (colour constancy and temperature of its spec are
    applied by the model: in-graph for artifacts, by ``normalize_batch`` for checkpoints).

    ``source``/``split``: when the items are a manifest split its canonical-pixel cache is used.
    """
    x = source_pixels(items, pred.spec.input_size, source, split)
    return pred.predict(x)


def write_evaluation(out: str | Path, items: list[EvalItem], p: np.ndarray, pred: Predictor, threshold: float, *,
                     threshold_source: str, data: dict[str, Any], n_boot: int = 1000, seed: int = 0,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Summarise predictions and write evaluation.json, predictions.json, figures and reports to ``out``."""
    result = summarize(labels_of(items), p, threshold, [it.lesion_id for it in items], n_boot, seed)
    result.update({
        "model": {"path": str(Path(pred.path).resolve()), "kind": pred.kind,
                  "architecture": pred.spec.architecture, "spec": pred.spec.to_dict()},
        "data": data, "threshold_source": threshold_source, **(extra or {}),
    })
    from moleport.evaluate.report import write_reports

    out_dir = Path(out)
    result["figures"] = write_reports(result, out_dir)
    write_json(out_dir / "evaluation.json", result)
    write_json(out_dir / "predictions.json", {"files": [it.path for it in items], "y": labels_of(items).tolist(),
                                              "lesion_id": [it.lesion_id for it in items],
                                              "p_melanoma": [float(v) for v in p]})
    return result


def evaluate_model(model: str | Path, data: str | Path, out: str | Path, *, threshold: float | None = None,
                   n_boot: int = 1000, seed: int = 0, preset: str | None = None, split: str | None = None,
                   threads: int = 2, tta: str | None = None) -> dict[str, Any]:
    """Evaluate ``model`` on ``data`` (with ``tta``: its logits averaged over that rule's views); write
    ``out/evaluation.json``, figures and reports; return the result."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise EvaluationError(f"--threshold must be within [0, 1], got {threshold}")
    pred = load_predictor(model, threads=threads, tta=tta)
    items = open_eval_items(data, preset=preset, split=split)
    if str(data).lower().endswith(".json"):
        split = split or "test"
    t0 = time.perf_counter()
    p = predict_with(pred, items, data, split)
    thr = float(pred.spec.threshold if threshold is None else threshold)
    info = {"source": str(Path(data).resolve()), "preset": preset, "split": split}
    return write_evaluation(out, items, p, pred, thr, data=info, n_boot=n_boot, seed=seed,
                            threshold_source="--threshold" if threshold is not None else "spec.threshold",
                            extra={"seconds": round(time.perf_counter() - t0, 2)})
